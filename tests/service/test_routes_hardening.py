"""Hostile or careless requests to the /source/* handlers: 400s with reasons, bounds, deadlines."""

import json
import time

import pytest

from icesat2sr.formats import wire
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms
from icesat2sr.service import routes

from .test_routes import as_json, body_of, call


@pytest.fixture(scope="module")
def config(synth_dir):
    return routes.Config(path=str(synth_dir), workers=2, heartbeat_s=0.05)


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 1e300, -1, 0, "10", True])
def test_top_level_timeout_must_be_a_usable_number(config, synth_names, timeout):
    r = call(config, "/source/atl06p", {"resources": synth_names, "timeout": timeout})
    assert r.status == 400
    error = as_json(r)["error"]
    assert "timeout" in error or "NaN" in error or "Infinity" in error


@pytest.mark.parametrize("body", [b"[" * 50_000 + b"]" * 50_000, b'{"a":' * 3000 + b"1" + b"}" * 3000,
                                  b'{"resources": [' + b"7" * 5000 + b"]}", b"\xff\xfe", b'{"time": NaN}'])
def test_unusable_bodies_are_400(config, body):
    for path in ("/source/atl06p", "/source/time", "/source/indexer", "/source/definition"):
        r = routes.handle("POST", path, {}, body, config)
        assert r.status == 400 and as_json(r)["error"], path


@pytest.mark.parametrize("time_value", [1e300, -1e300, 10**400, float("inf")])
def test_time_conversion_of_absurd_times_is_400(config, time_value):
    body = json.dumps({"time": time_value, "input": "GPS", "output": "DATE"}).encode() \
        if not isinstance(time_value, int) else b'{"time": %d, "input": "GPS"}' % time_value
    r = routes.handle("GET", "/source/time", {}, body, config)
    assert r.status == 400


@pytest.mark.parametrize("header", ["python-v\u0664.\u0662.\u0660", "v" + "9" * 5000 + ".1.1", "x" * 100_000,
                                    "python-v12345.1.1", "\u0000\u00ff"])
def test_the_version_echo_is_bounded_and_ascii(config, header):
    info = as_json(call(config, "/source/version", method="GET", headers={"x-sliderule-client": header}))
    version = info["server"]["version"]
    assert version == routes.DEFAULT_VERSION or (len(version) <= 15 and version.isascii())
    assert version == routes.DEFAULT_VERSION   # none of these is a plain ASCII x.y.z


def test_single_granule_endpoints_need_one_granule(config, synth_names):
    for path in ("/source/atl06", "/source/atl03s"):
        for body in ({}, {"parms": {"rgt": 1234}}, {"resources": synth_names}):
            r = call(config, path, body)
            assert r.status == 400 and "one granule" in as_json(r)["error"], (path, body)


def test_max_resources_bounds_named_and_discovered_granules(synth_dir, synth_names):
    capped = routes.Config(path=str(synth_dir), workers=1, max_resources=1)
    for path in ("/source/atl06p", "/source/atl03sp", "/source/indexer"):
        r = call(capped, path, {"resources": synth_names})
        assert r.status == 400 and "at most 1" in as_json(r)["error"] and "split" in as_json(r)["error"]
    found = call(capped, "/source/atl06p", {"parms": {"t0": "2018-01-01T00:00:00Z"}})   # both granules match
    assert found.status == 400 and "match the query" in as_json(found)["error"]
    roomy = routes.Config(path=str(synth_dir), workers=1, max_resources=5)
    asked = call(roomy, "/source/atl06p", {"resources": synth_names, "parms": {"max_resources": 1}})
    assert asked.status == 400 and "at most 1" in as_json(asked)["error"]     # a request may lower it
    above = call(capped, "/source/atl06p", {"resources": synth_names, "parms": {"max_resources": 10}})
    assert above.status == 400 and "at most 1" in as_json(above)["error"]     # never raise it
    assert call(roomy, "/source/atl06p", {"parms": {}}).status == 400          # an empty query lists nothing
    assert call(roomy, "/source/indexer", {"resources": synth_names, "parms": [1]}).status == 400


def test_messages_name_granules_not_server_folders(config, synth_dir, synth_names):
    missing = synth_names[0].replace("_01.h5", "_02.h5")
    tables = wire.decode(body_of(call(config, "/source/atl06p", {"resources": [missing]})))
    texts = [m.text for m in tables.messages if m.code is not None]
    assert texts and missing in texts[0] and str(synth_dir) not in texts[0] and "/tmp" not in texts[0]
    index = wire.decode(body_of(call(config, "/source/indexer", {"resources": [missing]})))
    assert all(str(synth_dir) not in m.text for m in index.messages if m.code is not None)


def test_public_message_strips_folders_but_keeps_names_and_urls(config):
    text = (f"{config.path}/ATL03_x.h5: cannot open /var/lib/data/ATL03_y.h5 (see "
            "https://cmr.earthdata.nasa.gov/search/granules.json)")
    out = routes.public_message(text, config)
    assert out == ("<atlas-local>/ATL03_x.h5: cannot open ATL03_y.h5 (see "
                   "https://cmr.earthdata.nasa.gov/search/granules.json)")


def test_rqst_timeout_ends_the_stream_and_names_what_was_not_done(config, synth_names):
    started = time.monotonic()
    r = call(config, "/source/atl06p", {"resources": synth_names,
                                        "parms": {"cnf": 0, "maxi": 50, "res": 1.0, "rqst_timeout": 0.5}})
    tables = wire.decode(body_of(r))
    assert time.monotonic() - started < 3   # ~5 s of work
    [timeout] = [m for m in tables.messages if m.code == wire.TIMEOUT]
    assert "rqst_timeout" in timeout.text and all(n in timeout.text for n in synth_names)


def test_node_timeout_stops_one_granule_and_reports_it(synth_dir, synth_names):
    asset = resolve_asset("atlas-local", str(synth_dir))
    started = time.monotonic()
    items = [r for r in routes.run_granules(asset, synth_names, Parms.from_dict({"cnf": 0, "maxi": 50, "res": 1.0}),
                                            "atl06", workers=2, heartbeat_s=0.05, granule_timeout=0.5) if r]
    assert time.monotonic() - started < 3
    results = [r for r in items if not isinstance(r, routes.Partial)]   # parts may come before the stop
    assert sorted(r.granule for r in results) == synth_names
    assert all(r.error and r.error[0] == wire.TIMEOUT and "node_timeout" in r.error[1] for r in results)
