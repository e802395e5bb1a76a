"""The transport-neutral /source/* handlers (SPEC §8): request shapes, answers, errors, streams."""

import json
import os
import signal
import time

import numpy as np
import pytest

from icesat2sr.engine import process_granule
from icesat2sr.formats import wire
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms
from icesat2sr.service import routes


@pytest.fixture(scope="module")
def config(synth_dir):
    return routes.Config(path=str(synth_dir), workers=2, heartbeat_s=0.05)


def call(config, path, body=None, method="POST", headers=None):
    data = b"" if body is None else json.dumps(body).encode()
    return routes.handle(method, path, headers or {}, data, config)


def body_of(response) -> bytes:
    return response.body if isinstance(response.body, bytes) else b"".join(response.body)


def as_json(response):
    assert response.content_type == "application/json"   # exactly: 4.x compares with ==
    return json.loads(body_of(response))


@pytest.mark.parametrize("header, expected", [
    ({"x-sliderule-client": "python-v4.20.0"}, "v4.20.0"),
    ({"X-SlideRule-Client": "python-v5.7.0"}, "v5.7.0"),
    ({"x-sliderule-client": "python-4.1.2"}, "v4.1.2"),
    ({}, routes.DEFAULT_VERSION),
])
def test_version_echoes_the_client_version(config, header, expected):
    info = as_json(call(config, "/source/version", method="GET", headers=header))
    assert info["server"]["version"] == expected
    # the 4.x client's parse: [1:] split on "." -> three ints
    assert len([int(x) for x in info["server"]["version"][1:].split(".")]) == 3


def test_definitions_and_unknown_types(config):
    d = as_json(call(config, "/source/definition", {"rectype": "atl06rec.elevation"}, method="GET"))
    assert d == wire.DEFINITIONS["atl06rec.elevation"]
    assert call(config, "/source/definition", {"rectype": "atl24rec"}, method="GET").status == 404
    for rectype in ("atl08rec", "atl08rec.vegetation", "waverec"):
        assert as_json(call(config, "/source/definition", {"rectype": rectype}, method="GET")) == \
            wire.DEFINITIONS[rectype]
    assert call(config, "/source/definition", {}, method="GET").status == 400


@pytest.mark.parametrize("endpoint", ["/source/time", "/source/datetime"])
def test_gps_to_date_as_the_clients_ask(config, endpoint):
    # SPEC §9: GPS 1235331234 s -> 2019-02-27T19:33:36Z (GPS - 18 leap seconds)
    answer = as_json(call(config, endpoint, {"time": 1235331234000, "input": "GPS", "output": "DATE"}, "GET"))
    assert answer == {"time": "2019-02-27T19:33:36Z", "format": "DATE"}


def test_time_conversions_round_trip(config):
    gps = as_json(call(config, "/source/time", {"time": "2019-02-27T19:33:36Z", "input": "DATE", "output": "GPS"}))
    assert gps == {"time": 1235331234000, "format": "GPS"}
    gmt = as_json(call(config, "/source/time", {"time": 1235331234000, "input": "GPS", "output": "GMT"}))
    assert gmt["time"] == "2019:58:19:33:36"   # SlideRule's unpadded GMT form (day of year 58)
    now = as_json(call(config, "/source/time", {"time": "NOW", "input": "NOW", "output": "GPS"}))
    assert abs(now["time"] / 1000 - (time.time() - 315964800 + 18)) < 5
    assert call(config, "/source/time", {"time": "x", "input": "GPS"}).status == 400


def test_health_unknown_route_and_bad_bodies(config):
    assert as_json(call(config, "/source/health", method="GET")) == {"healthy": True}
    assert call(config, "/source/atl24p", {}).status == 404
    assert routes.handle("POST", "/source/atl06p", {}, b"{nope", config).status == 400
    assert routes.handle("POST", "/source/atl06p", {}, b"[1, 2]", config).status == 400
    assert routes.handle("DELETE", "/source/version", {}, b"", config).status == 405


@pytest.mark.parametrize("path", ["/source/atl06x", "/source/atl08x"])
def test_x_series_endpoints_not_offered_name_what_exists(config, path):
    answer = call(config, path, {"resources": [], "parms": {}})
    message = as_json(answer)["error"]
    assert answer.status == 404 and path.rsplit("/", 1)[1] in message
    assert all(name in message for name in ("atl03x", "atl06p", "atl08p", "atl03sp"))


def expected_rows(synth_dir, names, parms):
    asset = resolve_asset("atlas-local", str(synth_dir))
    return {n: process_granule(asset, n, Parms.from_dict(parms), "atl06").elevations for n in names}


def test_client_shape_streams_every_granule(config, synth_dir, synth_names):
    parms = {"cnf": 1, "maxi": 6, "asset": "icesat2"}
    r = call(config, "/source/atl06p", {"resources": synth_names, "parms": parms})
    assert r.status == 200 and r.content_type == "application/octet-stream"
    tables = wire.decode(body_of(r))
    assert all(0 < len(e) <= 256 for e in tables.elevations)
    got = np.concatenate(tables.elevations)
    want = np.concatenate(list(expected_rows(synth_dir, synth_names, parms).values()))
    order_g, order_w = np.argsort(got["extent_id"]), np.argsort(want["extent_id"])
    for name in want.dtype.names:
        np.testing.assert_array_equal(got[name][order_g], want[name][order_w], err_msg=name)
    done = [m.granule_done for m in tables.messages if m.granule_done]
    assert sorted(d[0] for d in done) == synth_names and sorted(d[1] for d in done) == [1, 2]


def test_seed_shape_single_granule(config, synth_dir, synth_names):
    r = call(config, "/source/atl06", {"atl03-asset": "atlas-local", "resource": synth_names[0],
                                       "parms": {"cnf": 4, "ats": 20.0, "cnt": 10, "len": 40.0, "maxi": 1},
                                       "timeout": 600})
    got = np.concatenate(wire.decode(body_of(r)).elevations)
    want = expected_rows(synth_dir, synth_names[:1], {"cnf": 4, "maxi": 1})[synth_names[0]]
    assert np.array_equal(np.sort(got["extent_id"]), np.sort(want["extent_id"]))
    assert np.array_equal(got["h_mean"][np.argsort(got["extent_id"])], want["h_mean"][np.argsort(want["extent_id"])])


def test_photon_endpoint(config, synth_names):
    r = call(config, "/source/atl03s", {"resource": synth_names[1], "parms": {"cnf": 3, "track": 2}})
    tables = wire.decode(body_of(r))
    result = tables.result(synth_names[1], "atl03s")
    assert len(result.extents) > 10 and set(result.extents["track"]) == {2}
    assert result.offsets[-1] == len(result.photons) == result.extents["count"].sum()
    assert (result.photons["atl03_cnf"] >= 3).all()


def test_a_missing_granule_is_an_exceptrec_and_the_others_stream(config, synth_names):
    missing = synth_names[0].replace("_01.h5", "_02.h5")
    tables = wire.decode(body_of(call(config, "/source/atl06p", {"resources": [missing, *synth_names]})))
    errors = [m for m in tables.messages if m.code is not None]
    assert [(m.code, m.level) for m in errors] == [(-3, 3)] and missing in errors[0].text
    assert sum(len(e) for e in tables.elevations) > 1000
    assert len([m for m in tables.messages if m.granule_done]) == 3


def test_request_errors_are_400_before_any_work(config, synth_names):
    bad = call(config, "/source/atl06p", {"resources": synth_names, "parms": {"cnf": "very_high"}})
    assert bad.status == 400 and "cnf" in as_json(bad)["error"]
    assert call(config, "/source/atl06p", {"resources": ["../etc/passwd"]}).status == 400
    assert call(config, "/source/atl06p", {"resources": "x", "parms": []}).status == 400
    unsupported = call(config, "/source/atl06p", {"resources": synth_names, "parms": {"samples": {"dem": {}}}})
    assert unsupported.status == 400 and "samples" in as_json(unsupported)["error"]


def test_vegetation_endpoint_streams_batches_and_waveforms(config, synth_dir, synth_names):
    parms = {"srt": 0, "len": 100.0, "res": 100.0, "phoreal": {"binsize": 2.0, "send_waveform": True}}
    r = call(config, "/source/atl08p", {"resources": synth_names, "parms": parms})
    assert r.status == 200 and r.content_type == "application/octet-stream"
    tables = wire.decode(body_of(r))
    assert all(0 < len(v) <= 256 for v in tables.vegetation)
    assert len(tables.waveforms) == sum(map(len, tables.vegetation))
    got = tables.result("all", "atl08")
    asset = resolve_asset("atlas-local", str(synth_dir))
    want = [process_granule(asset, n, Parms.from_dict(parms), "atl08") for n in synth_names]
    want_rows = np.concatenate([w.vegetation for w in want])
    order_g, order_w = np.argsort(got.vegetation["extent_id"]), np.argsort(want_rows["extent_id"])
    for name in want_rows.dtype.names:
        np.testing.assert_array_equal(got.vegetation[name][order_g], want_rows[name][order_w], err_msg=name)
    assert np.all(got.waveforms["binsize"] == 2.0)
    assert np.array_equal(np.sort(got.waveform), np.sort(np.concatenate([w.waveform for w in want])))


@pytest.mark.parametrize("phoreal, key", [({"binsize": 0}, "phoreal.binsize"), ({"geoloc": "mode"}, "phoreal.geoloc"),
                                          ({"send_waveform": "yes"}, "phoreal.send_waveform"),
                                          ({"colour": 1}, "phoreal.colour"), ([1.0], "phoreal")])
def test_bad_phoreal_settings_are_400(config, synth_names, phoreal, key):
    bad = call(config, "/source/atl08", {"resource": synth_names[0], "parms": {"phoreal": phoreal}})
    assert bad.status == 400 and key in as_json(bad)["error"]


def test_ancillary_fields_with_phoreal_travel_as_sliderules_records(config, synth_dir, synth_names):
    """atl08p with ancillary fields: each batch a ``conrec`` of its ``atl08rec`` and one ``ancfrec``
    per extent, whose values are the engine's."""
    from icesat2sr.granules.ancillary import requested_fields

    parms = {"srt": 0, "len": 100.0, "res": 100.0, "phoreal": {}, "atl08_fields": ["h_dif_ref", "segment_landcover"],
             "atl03_geo_fields": ["dem_h"]}
    r = call(config, "/source/atl08p", {"resources": synth_names, "parms": parms})
    assert r.status == 200
    body = body_of(r)
    records = [t for t, _ in wire.iter_records([body])]
    assert "conrec" in records and "atl08rec" not in records     # every batch inside its container
    fields = requested_fields(Parms.from_dict(parms))
    got = wire.decode(body).result("all", "atl08", fields=fields)
    asset = resolve_asset("atlas-local", str(synth_dir))
    want = [process_granule(asset, n, Parms.from_dict(parms), "atl08") for n in synth_names]
    ids = np.concatenate([w.vegetation["extent_id"] for w in want])
    order_g, order_w = np.argsort(got.vegetation["extent_id"]), np.argsort(ids)
    assert np.array_equal(got.vegetation["extent_id"][order_g], ids[order_w])
    for key in want[0].ancillary:
        values = np.concatenate([w.ancillary[key] for w in want])
        assert got.ancillary[key].dtype == values.dtype, key
        np.testing.assert_array_equal(got.ancillary[key][order_g], values[order_w], err_msg=key)


def test_atl08_without_its_companion_or_its_land_segments_fails_that_granule(config, synth_dir, synth_names, tmp_path):
    import shutil

    import h5py

    for name in synth_names:
        shutil.copy(synth_dir / name, tmp_path / name)
    broken = synth_names[1].replace("ATL03", "ATL08")
    shutil.copy(synth_dir / broken, tmp_path / broken)   # the other granule has no ATL08 at all
    with h5py.File(tmp_path / broken, "a") as f:
        del f["gt2l/land_segments/segment_snowcover"]
    local = routes.Config(path=str(tmp_path), workers=1)
    tables = wire.decode(body_of(call(local, "/source/atl08p", {"resources": synth_names, "parms": {"phoreal": {}}})))
    errors = sorted((m.code, m.text) for m in tables.messages if m.code is not None)
    assert [code for code, _ in errors] == [-3, -3] and not tables.vegetation
    assert any("segment_snowcover" in text for _, text in errors) and any("ATL08" in text for _, text in errors)


def test_null_resources_use_discovery(config, synth_names):
    tables = wire.decode(body_of(call(config, "/source/atl06p", {"resources": None, "parms": {"rgt": 1234}})))
    done = [m.granule_done[0] for m in tables.messages if m.granule_done]
    assert done == [n for n in synth_names if "_1234" in n]


def test_no_matching_granule_is_a_warning_not_an_error(config):
    r = call(config, "/source/atl06p", {"resources": None, "parms": {"rgt": 1}})
    assert r.status == 200
    tables = wire.decode(body_of(r))
    assert [m.code for m in tables.messages if m.code is not None] == [wire.EMPTY_SUBSET]


def test_indexer_records(config, synth_names):
    tables = wire.decode(body_of(call(config, "/source/indexer", {"atl03-asset": "atlas-local",
                                                                   "resources": synth_names})))
    rows = tables.index_rows()
    assert [n.decode() for n in rows["name"]] == synth_names
    assert sorted(rows["rgt"].tolist()) == [567, 1234] and sorted(rows["cycle"].tolist()) == [5, 9]
    assert (rows["t1"] > rows["t0"]).all() and (rows["t0"] > 1.2e9).all()   # GPS seconds


def process_parents() -> dict[int, int]:
    """pid -> parent pid of every process (Linux /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return parents


def _grandchildren(pid: int | None = None) -> set[int]:
    """PIDs of the children's children of ``pid`` (default: this process): the pool workers,
    which the forkserver (a child) forks."""
    pid = os.getpid() if pid is None else pid
    parents = process_parents()
    children = {p for p, pp in parents.items() if pp == pid}
    return {p for p, pp in parents.items() if pp in children}


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_closing_a_stream_terminates_its_workers(synth_dir, synth_names):
    asset = resolve_asset("atlas-local", str(synth_dir))
    before = _grandchildren()
    gen = routes.run_granules(asset, synth_names, Parms.from_dict({"cnf": 0, "maxi": 50, "res": 1.0}), "atl06",
                              workers=2, heartbeat_s=0.01)
    assert next(gen) is None                     # workers busy: a heartbeat comes first
    assert wait_for(lambda: len(_grandchildren() - before) >= 2, 10)
    workers = _grandchildren() - before
    gen.close()
    assert wait_for(lambda: not _grandchildren() & workers, 1.0)   # ~5 s of work left


def test_a_worker_that_dies_fails_only_its_granule(synth_dir, synth_names):
    asset = resolve_asset("atlas-local", str(synth_dir))
    before = _grandchildren()
    gen = routes.run_granules(asset, synth_names, Parms.from_dict({"cnf": 0, "maxi": 50, "res": 5.0}), "atl06",
                              workers=2, heartbeat_s=0.01)
    assert next(gen) is None
    assert wait_for(lambda: len(_grandchildren() - before) >= 2, 10)
    victim = min(_grandchildren() - before)
    os.kill(victim, signal.SIGKILL)               # what the kernel's OOM killer does
    items = [r for r in gen if r is not None]
    results = [r for r in items if not isinstance(r, routes.Partial)]   # elevations come in parts, then an end
    assert len(results) == 2
    failed = [r for r in results if r.error]
    assert len(failed) == 1 and "died (exit code -9" in failed[0].error[1]
    ok = [r for r in results if not r.error]
    parts = [r.result for r in items if isinstance(r, routes.Partial) and r.result.granule == ok[0].granule]
    assert len(ok) == 1 and sum(len(p.elevations) for p in parts) > 1000


def test_timeout_reports_the_unfinished_granules(synth_dir, synth_names):
    asset = resolve_asset("atlas-local", str(synth_dir))
    items = list(routes.run_granules(asset, synth_names, Parms(), "atl06", workers=2, heartbeat_s=0.01,
                                     timeout=0.001))
    assert isinstance(items[-1], str) and set(items[-1].split(", ")) == set(synth_names)


def test_a_bug_is_a_json_500_not_a_dropped_connection(config, monkeypatch):
    def broken(request, headers, config):
        raise ZeroDivisionError("oops")

    monkeypatch.setitem(routes._ROUTES, "/source/health", broken)
    r = call(config, "/source/health", method="GET")
    assert r.status == 500 and "ZeroDivisionError" in as_json(r)["error"]
