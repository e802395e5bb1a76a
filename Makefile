# icesat2sr developer commands. Every target sets up what it needs (idempotent).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.setup-stamp
DEMO_DIR ?= demo-output

.PHONY: setup demo test bench bench-full lint lock clean setup-clients setup-tools layer

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

test: setup setup-clients setup-tools
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/icesat2sr bench

# also a full-size granule (140,000 segments per beam, ~1.8 GB; synthesised once into ~/.cache/icesat2sr)
bench-full: setup
	$(BIN)/icesat2sr bench --full

lint: setup setup-tools
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	AWS_DEFAULT_REGION=us-west-2 $(TOOLS)/bin/cfn-lint template.yaml
	AWS_DEFAULT_REGION=us-west-2 SAM_CLI_TELEMETRY=0 $(TOOLS)/bin/sam validate --lint -t template.yaml
	@mkdir -p .aws-sam && $(BIN)/python tools/asl/render.py template.yaml statemachine/atl06p.asl.json > .aws-sam/atl06p.asl.json
	cd tools/asl && npx --no-install asl-validator --json-path ../../.aws-sam/atl06p.asl.json

# Template and state machine linters, each in its own pinned environment (offline at run time):
# aws-sam-cli + cfn-lint (requirements/tools.lock) and npm's asl-validator (tools/asl/package-lock.json).
TOOLS := .venv-tools
TOOLS_UV = $(shell test -x $(UV) && echo $(UV) || command -v uv)
setup-tools: $(TOOLS)/.stamp tools/asl/node_modules/.stamp
$(TOOLS)/.stamp: requirements/tools.lock | $(STAMP)
	@test -x $(TOOLS)/bin/python || $(TOOLS_UV) venv --quiet --python $(BIN)/python $(TOOLS)
	$(TOOLS_UV) pip sync --quiet --python $(TOOLS)/bin/python $<
	@touch $@
tools/asl/node_modules/.stamp: tools/asl/package.json tools/asl/package-lock.json
	cd tools/asl && npm ci --no-audit --no-fund --silent
	@touch $@

# The Lambda layers as SAM's makefile build makes them (python3.12/arm64 wheels), and their size.
layer: setup
	$(MAKE) --no-print-directory -f layers/icesat2sr/Makefile build-Icesat2srLayer \
		ARTIFACTS_DIR=$(CURDIR)/.aws-sam/layers/Icesat2srLayer UV=$(TOOLS_UV)
	$(MAKE) --no-print-directory -f layers/pyarrow/Makefile build-ArrowLayer \
		ARTIFACTS_DIR=$(CURDIR)/.aws-sam/layers/ArrowLayer UV=$(TOOLS_UV)
	@for d in .aws-sam/layers/*; do printf '%s unzipped: ' $$d; \
		find $$d -type f -printf '%s\n' | awk '{s+=$$1} END {printf "%.1f MB\n", s/1e6}'; done

lock:
	$(UV) pip compile --quiet pyproject.toml --extra dev --override requirements/overrides.txt \
		--python-version 3.11 -o requirements/dev.lock

clean:
	rm -rf $(VENV) .venv-sr4 .venv-sr5 .venv-tools $(DEMO_DIR) .pytest_cache .hypothesis .aws-sam
