# icesat2sr developer commands. Every target sets up what it needs (idempotent).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.setup-stamp
DEMO_DIR ?= demo-output

.PHONY: setup demo test bench lint lock clean setup-clients setup-tools

setup: $(STAMP)

# uv installs the exact pins of requirements/dev.lock without running a resolver (seconds, not minutes).
# Bytecode is compiled at install: with PYTHONDONTWRITEBYTECODE set (as on these machines) every
# command would otherwise recompile pandas/geopandas (~2 s).
$(STAMP): requirements/dev.lock pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@test -x $(UV) || { $(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip >/dev/null; \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check uv; }
	$(UV) pip sync --quiet --compile-bytecode --python $(BIN)/python requirements/dev.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

# The official SlideRule clients, one environment each (they cannot share one).
setup-clients: .venv-sr4/.stamp .venv-sr5/.stamp
.venv-sr%/.stamp: requirements/sliderule-%.lock | $(STAMP)
	@test -x .venv-sr$*/bin/python || $(UV) venv --quiet --python $(BIN)/python .venv-sr$*
	$(UV) pip sync --quiet --compile-bytecode --python .venv-sr$*/bin/python $<
	@touch $@

demo: setup
	$(BIN)/icesat2sr demo --out $(DEMO_DIR)

test: setup setup-clients
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/icesat2sr bench

lint: setup
	$(BIN)/ruff check .

lock:
	$(UV) pip compile --quiet pyproject.toml --extra dev --override requirements/overrides.txt \
		--python-version 3.11 -o requirements/dev.lock

clean:
	rm -rf $(VENV) .venv-sr4 .venv-sr5 .venv-tools $(DEMO_DIR) .pytest_cache .hypothesis .aws-sam
