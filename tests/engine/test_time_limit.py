"""run_many's per-granule time limit: a granule that never finishes, or whose worker dies, fails
alone and soon; the others' results come through (issue 10, item 2, defence in depth)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import pytest

from icesat2sr.batch import run_many
from icesat2sr.granules.assets import Asset
from icesat2sr.request.params import Parms

GOOD = "ATL03_20210601120000_12340512_006_01.h5"   # conftest's synthetic granule
STALLS = "ATL03_20210601120000_12340512_006_07.h5"
CRASHES = "ATL03_20210601120000_12340512_006_08.h5"


@dataclass(frozen=True)
class Misbehaving(Asset):
    """A local folder where one granule's read never returns and another's kills its process."""

    def open(self, resource: str):
        if resource == STALLS:
            time.sleep(3600)
        if resource == CRASHES:
            os._exit(70)
        return super().open(resource)


@pytest.mark.parametrize("workers", [1])  # one worker process: the stall must not block the rest
def test_a_stalled_or_dying_granule_fails_alone(synth_dir, workers):
    asset = Misbehaving("atlas-local", "file", str(synth_dir))
    started = time.monotonic()
    results = {r.granule: r for r in run_many(asset, [STALLS, GOOD, CRASHES], Parms(), workers=workers,
                                               timeout=8.0)}
    assert time.monotonic() - started < 120   # not the hour the stalled read asks for
    assert results[GOOD].error is None and len(results[GOOD].elevations) > 1000
    assert results[STALLS].error[1] == (f"{STALLS}: processing took longer than 8 s and was stopped "
                                        "(a corrupt granule?)")
    assert results[CRASHES].error[1].startswith(f"{CRASHES}: the worker process died (exit code 70")


@pytest.mark.parametrize("kwargs", [{"workers": -1}, {"timeout": 0}, {"timeout": float("nan")},
                                    {"timeout": float("inf")}, {"timeout": "10"}])
def test_bad_pool_arguments(synth_dir, kwargs):
    asset = Asset("atlas-local", "file", str(synth_dir))
    with pytest.raises(ValueError, match=r"workers|timeout"):
        next(run_many(asset, [GOOD], Parms(), **kwargs))


def no_shared_memory(*args, **kwargs):
    raise OSError(38, "Function not implemented")   # what a semaphore gives where /dev/shm is missing


def test_granule_processes_need_no_semaphores(synth_dir, synth_names, monkeypatch):
    """The CLI's pool is pool.run's pipes (it runs on a Lambda, which has no /dev/shm): no
    queue or lock of multiprocessing, which pebble's pool needed."""
    import multiprocessing.synchronize

    monkeypatch.setattr(multiprocessing.synchronize.SemLock, "__init__", no_shared_memory)
    asset = Asset("atlas-local", "file", str(synth_dir))
    results = {r.granule: r for r in run_many(asset, synth_names, Parms(), workers=2, timeout=60.0)}
    assert sorted(results) == synth_names
    assert all(r.error is None and len(r.elevations) > 100 for r in results.values())


def test_closing_run_many_kills_its_granule_processes(synth_dir):
    """What Ctrl-C in the CLI does (the generator is closed): the stalled granule's process goes."""
    from tests.service.test_routes import _grandchildren, wait_for

    asset = Misbehaving("atlas-local", "file", str(synth_dir))
    before = _grandchildren()
    results = run_many(asset, [GOOD, STALLS], Parms(), workers=2, timeout=600.0)
    assert next(results).granule == GOOD   # STALLS sleeps in its process
    stalled = _grandchildren() - before
    assert stalled
    results.close()
    assert wait_for(lambda: not _grandchildren() & stalled, 5.0)
