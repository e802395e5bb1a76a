"""The server's granules run in the one process pool (icesat2sr.pool) with a per-granule time
limit: the server's own (``serve --granule-timeout``) unless the request's ``node_timeout`` is
shorter. A granule that hangs never holds a server worker for longer."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest

from icesat2sr import cli
from icesat2sr.formats import wire
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms
from icesat2sr.service import routes
from tests.engine.test_time_limit import GOOD, STALLS, Misbehaving, no_shared_memory

from .test_routes import body_of, call


@dataclass
class HangingConfig(routes.Config):
    """A server whose data folder has a granule whose read never returns."""

    def resolve(self, name):
        return Misbehaving("atlas-local", "file", self.path)


def messages(response) -> list:
    return [m for m in wire.decode(body_of(response)).messages if m.code is not None]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_hanging_granule_is_stopped_by_the_servers_limit(synth_dir, workers):
    config = HangingConfig(path=str(synth_dir), workers=workers, granule_timeout=10.0, heartbeat_s=0.05)
    started = time.monotonic()
    r = call(config, "/source/atl06p", {"resources": [STALLS, GOOD], "parms": {"cnf": 1}})   # no node_timeout
    tables = wire.decode(body_of(r))
    assert time.monotonic() - started < 60   # not the hour the read asks for
    [stopped] = [m for m in tables.messages if m.code is not None]
    assert stopped.code == wire.TIMEOUT and STALLS in stopped.text
    assert "took longer than 10 s (the server's granule time limit) and was stopped" in stopped.text
    rows = np.concatenate(tables.elevations)
    assert len(rows) > 1000 and set(rows["rgt"]) == {1234}   # GOOD came through


@pytest.mark.parametrize(("node_timeout", "limit", "named"), [(1.0, 600.0, "1 s (node_timeout)"),
                                                              (10_000.0, 2.0, "2 s (the server's granule time limit)"),
                                                              (2.0, None, "2 s (node_timeout)")])
def test_node_timeout_shortens_the_limit_and_never_lifts_it(synth_dir, node_timeout, limit, named):
    config = HangingConfig(path=str(synth_dir), workers=2, granule_timeout=limit, heartbeat_s=0.05)
    started = time.monotonic()
    r = call(config, "/source/atl06p", {"resources": [STALLS], "parms": {"node_timeout": node_timeout}})
    [stopped] = messages(r)
    assert time.monotonic() - started < 30
    assert stopped.code == wire.TIMEOUT and named in stopped.text


def test_the_limit_a_job_gets(synth_dir):
    server = routes.Config(path=str(synth_dir), granule_timeout=100.0)
    assert routes.granule_limit(None, server) == (100.0, "the server's granule time limit")
    assert routes.granule_limit(5.0, server) == (5.0, "node_timeout")
    assert routes.granule_limit(500.0, server) == (100.0, "the server's granule time limit")
    assert routes.granule_limit(5.0, routes.Config(inline=True, granule_timeout=None))[0] is None
    for bad in (0, -1.0, float("nan"), float("inf"), "60"):
        with pytest.raises(ValueError, match="granule_timeout"):
            routes.Config(path=str(synth_dir), granule_timeout=bad)


def test_server_granule_processes_need_no_semaphores(synth_dir, synth_names, monkeypatch):
    """The server's per-granule processes are pool.run's (pipes): no multiprocessing queue or lock."""
    import multiprocessing.synchronize

    monkeypatch.setattr(multiprocessing.synchronize.SemLock, "__init__", no_shared_memory)
    asset = resolve_asset("atlas-local", str(synth_dir))
    items = [r for r in routes.run_granules(asset, synth_names, Parms(), "atl06", workers=2, heartbeat_s=0.05,
                                            granule_timeout=60.0) if r is not None]
    results = [r for r in items if not isinstance(r, routes.Partial)]   # elevations come in parts, then an end
    assert sorted(r.granule for r in results) == synth_names and all(r.error is None for r in results)
    for name in synth_names:
        assert sum(len(p.result.elevations) for p in items
                   if isinstance(p, routes.Partial) and p.result.granule == name) > 100


def test_serve_takes_a_granule_timeout(synth_dir, monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr("icesat2sr.service.server.serve", lambda config, *a, **k: seen.setdefault("config", config))
    assert cli.main(["serve", "--path", str(synth_dir), "--granule-timeout", "42"]) == 0
    assert seen.pop("config").granule_timeout == 42.0
    assert cli.main(["serve", "--path", str(synth_dir)]) == 0
    assert seen["config"].granule_timeout == routes.DEFAULT_GRANULE_TIMEOUT_S
    for bad in ("0", "-1", "nan", "inf", "soon"):
        assert cli.main(["serve", "--path", str(synth_dir), "--granule-timeout", bad]) == 2
        assert "--granule-timeout" in capsys.readouterr().err
