"""Our client: embedded engine and remote server give the same frames; callbacks, progress,
failures, discovery, indexer, toregion, gps2utc."""

import json
import threading

import geopandas
import numpy as np
import pandas as pd
import pytest
import shapely

from icesat2sr import icesat2
from icesat2sr.engine import process_granule
from icesat2sr.formats.frames import result_frame
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.errors import ParameterError
from icesat2sr.request.params import Parms
from icesat2sr.science.records import concat
from icesat2sr.service.routes import Config
from icesat2sr.service.server import Server

PARMS = {"cnf": 1, "ats": 20.0, "cnt": 10, "len": 40.0, "res": 20.0, "maxi": 6}


@pytest.fixture(scope="module")
def url(synth_dir):
    srv = Server(Config(path=str(synth_dir), workers=2), "127.0.0.1", 0).start()
    yield f"127.0.0.1:{srv.port}"
    srv.stop()


@pytest.fixture
def embedded(synth_dir):
    assert icesat2.init(path=str(synth_dir)) is True
    yield
    icesat2.init(path=str(synth_dir))


@pytest.fixture
def remote(url, synth_dir):
    assert icesat2.init(url) is True
    yield
    icesat2.init(path=str(synth_dir))


@pytest.fixture(scope="module")
def reference(synth_dir, synth_names):
    """The engine's frame for PARMS on both granules (the CLI's path)."""
    asset = resolve_asset("atlas-local", str(synth_dir))
    results = [process_granule(asset, n, Parms.from_dict(PARMS), "atl06") for n in synth_names]
    return result_frame(concat(results, "atl06"))


def test_embedded_atl06p_is_the_engine_result(embedded, synth_names, reference):
    gdf = icesat2.atl06p(PARMS, resources=synth_names)
    pd.testing.assert_frame_equal(gdf, reference)
    assert gdf.index.name == "time" and str(gdf.index.dtype) == "datetime64[ns]" and gdf.crs == "EPSG:7912"
    assert gdf.attrs["failed"] == {}


def test_remote_atl06p_equals_embedded(remote, synth_names, reference):
    pd.testing.assert_frame_equal(icesat2.atl06p(PARMS, resources=synth_names), reference)


@pytest.mark.parametrize("mode", ["embedded", "remote"])
def test_discovery_when_no_resources(mode, request, synth_names, reference):
    request.getfixturevalue(mode)
    gdf = icesat2.atl06p({**PARMS, "rgt": 567})
    pd.testing.assert_frame_equal(gdf, reference[reference["rgt"] == 567])


@pytest.mark.parametrize("mode", ["embedded", "remote"])
def test_callback_gets_each_granule_and_nothing_is_returned(mode, request, synth_names, reference):
    request.getfixturevalue(mode)
    calls = []
    out = icesat2.atl06p(PARMS, resources=synth_names,
                         callback=lambda resource, result, cnt, total: calls.append((resource, result, cnt, total)))
    assert out is None
    assert sorted(c[0] for c in calls) == synth_names
    assert [c[2] for c in calls] == [1, 2] and {c[3] for c in calls} == {2}
    for resource, result, _, _ in calls:
        rgt = int(resource.split("_")[2][:4])
        pd.testing.assert_frame_equal(result, reference[reference["rgt"] == rgt])


@pytest.mark.parametrize("mode", ["embedded", "remote"])
def test_failed_granule_is_reported_and_the_others_kept(mode, request, synth_names, reference, caplog):
    request.getfixturevalue(mode)
    missing = synth_names[0].replace("_01.h5", "_02.h5")
    gdf = icesat2.atl06p(PARMS, resources=[missing, *synth_names])
    pd.testing.assert_frame_equal(gdf, reference)
    assert list(gdf.attrs["failed"]) == [missing] and "granule not found" in gdf.attrs["failed"][missing]
    assert missing in caplog.text


@pytest.mark.parametrize("mode", ["embedded", "remote"])
def test_atl03s_photons(mode, request, synth_dir, synth_names):
    request.getfixturevalue(mode)
    parms = {"cnf": 4, "track": 3, "len": 20.0, "res": 20.0}
    gdf = icesat2.atl03s(parms, synth_names[0])
    asset = resolve_asset("atlas-local", str(synth_dir))
    want = result_frame(process_granule(asset, synth_names[0], Parms.from_dict(parms), "atl03s"))
    pd.testing.assert_frame_equal(gdf, want)
    assert set(gdf["track"]) == {3} and (gdf["atl03_cnf"] == 4).all()


VEGETATION = {"srt": 0, "cnf": 0, "len": 100.0, "res": 100.0, "phoreal": {"binsize": 1.0, "send_waveform": True}}


def _vegetation_reference(synth_dir, names, parms=VEGETATION):
    asset = resolve_asset("atlas-local", str(synth_dir))
    return [process_granule(asset, n, Parms.from_dict(parms), "atl08") for n in names]


@pytest.mark.parametrize("mode", ["embedded", "remote"])
def test_atl08p_vegetation_with_waveforms(mode, request, synth_dir, synth_names):
    request.getfixturevalue(mode)
    gdf = icesat2.atl08p(VEGETATION, resources=synth_names)
    pd.testing.assert_frame_equal(gdf, result_frame(concat(_vegetation_reference(synth_dir, synth_names), "atl08")))
    assert len(gdf) > 100 and len(gdf["canopy_h_metrics"].iloc[0]) == 20
    assert (gdf["num_bins"] == gdf["waveform"].map(len)).all() and (gdf["binsize"] == 1.0).all()
    one = icesat2.atl08({**VEGETATION, "phoreal": {}, "rgt": 567}, synth_names[0])
    assert len(one) > 50 and "waveform" not in one.columns and set(one["rgt"]) == {567}
    discovered = icesat2.atl08p({**VEGETATION, "rgt": 567})        # resources=None: the server finds them
    pd.testing.assert_frame_equal(discovered, gdf[gdf["rgt"] == 567])


def test_merged_vegetation_splits_back_into_granules(synth_dir, synth_names):
    from icesat2sr.science.records import pack, unpack

    results = _vegetation_reference(synth_dir, synth_names)
    merged = unpack(pack(concat(results, "atl08")))
    merged.granule = ",".join(synth_names)
    for part, want in zip(icesat2._split_granules(merged), results, strict=True):
        pd.testing.assert_frame_equal(result_frame(part), result_frame(want))


@pytest.mark.parametrize("mode", ["embedded", "remote"])
def test_output_files_are_written_here(mode, request, synth_names, reference, tmp_path):
    request.getfixturevalue(mode)
    path = tmp_path / "out.parquet"
    gdf = icesat2.atl06p({**PARMS, "output": {"path": str(path), "format": "geoparquet", "open_on_complete": True}},
                         resources=synth_names)
    assert gdf.index.name == "time" and len(gdf) == len(reference)
    key = ["h_mean", "segment_id", "gt"]
    pd.testing.assert_frame_equal(gdf[key].sort_values(key).reset_index(drop=True),
                                  reference[key].sort_values(key).reset_index(drop=True))
    csv = tmp_path / "out.csv"
    assert icesat2.atl06p({**PARMS, "output": {"path": str(csv), "format": "csv"}}, resources=synth_names) == str(csv)
    assert len(pd.read_csv(csv)) == len(reference)
    with pytest.raises(ParameterError, match="local path"):
        icesat2.atl06p({**PARMS, "output": {"path": "s3://bucket/x.parquet"}}, resources=synth_names)


def test_compact_results(embedded, url, synth_names):
    a = icesat2.atl06({**PARMS, "compact": True}, synth_names[0])
    icesat2.init(url)
    b = icesat2.atl06({**PARMS, "compact": True}, synth_names[0])
    pd.testing.assert_frame_equal(a, b)
    assert set(a.columns) == {"h_mean", "delta_time", "lat", "lon", "geometry"}


def test_bad_parameters_raise_before_any_work(embedded, url, synth_names):
    with pytest.raises(ParameterError, match="cnf"):
        icesat2.atl06p({"cnf": "nope"}, resources=synth_names)
    icesat2.init(url)
    with pytest.raises(ParameterError, match="cnf"):
        icesat2.atl06p({"cnf": "nope"}, resources=synth_names)


def test_progress_bar_on_stderr(embedded, synth_names, capsys):
    icesat2.atl06p(PARMS, resources=synth_names, progress=True)
    err = capsys.readouterr().err
    assert "2/2" in err and "granule" in err


def test_indexer_embedded_and_remote_agree(embedded, url, synth_names):
    a = icesat2.indexer(synth_names)
    icesat2.init(url)
    b = icesat2.indexer(synth_names)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    assert a["name"].tolist() == synth_names and sorted(a["rgt"]) == [567, 1234]


def test_gps2utc():
    # SPEC §9: GPS - 18 leap seconds (not the old client's docstring value, which added 27 s)
    assert icesat2.gps2utc(1235331234) == "2019-02-27T19:33:36Z"
    assert icesat2.gps2utc(1198800018) == "2018-01-01T00:00:00Z"   # the ATLAS SDP epoch
    assert icesat2.gps2utc(1235331234, as_str=False).isoformat() == "2019-02-27T19:33:36"


def test_init_refuses_a_missing_folder_and_an_unreachable_server(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        icesat2.init(path=str(tmp_path / "nope"))
    with pytest.raises(icesat2.RequestError, match="cannot reach"):
        icesat2.init("127.0.0.1:9", rqst_timeout=(0.5, 0.5))


# ---------------------------------------------------------------------- toregion
SQUARE_CW = [(-108.3, 38.9), (-108.3, 39.2), (-107.8, 39.2), (-107.8, 38.9), (-108.3, 38.9)]


def _ccw_closed(region) -> bool:
    pts = [(p["lon"], p["lat"]) for p in region]
    return pts[0] == pts[-1] and shapely.LinearRing(pts).is_ccw


def test_toregion_geojson_file_is_ccw_and_closed(tmp_path):
    path = tmp_path / "r.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [SQUARE_CW]}}]}))
    region = icesat2.toregion(str(path))
    assert _ccw_closed(region) and len(region) == 5
    assert {(p["lon"], p["lat"]) for p in region} == set(SQUARE_CW)
    assert region["poly"] == list(region) and isinstance(region["gdf"], geopandas.GeoDataFrame)
    assert Parms.from_dict({"poly": region}).poly[0] == (region[0]["lon"], region[0]["lat"])
    assert json.loads(json.dumps({"poly": region}))["poly"] == list(region)


def test_toregion_shapefile_in_a_projected_crs(tmp_path):
    gdf = geopandas.GeoDataFrame(geometry=[shapely.Polygon(SQUARE_CW)], crs="EPSG:4326").to_crs("EPSG:32612")
    gdf.to_file(tmp_path / "r.shp")
    region = icesat2.toregion(str(tmp_path / "r.shp"))
    assert _ccw_closed(region)
    lons, lats = [p["lon"] for p in region], [p["lat"] for p in region]
    assert min(lons) == pytest.approx(-108.3, abs=1e-6) and max(lats) == pytest.approx(39.2, abs=1e-6)


def test_toregion_geodataframe_and_several_polygons_give_their_hull():
    a = shapely.box(0, 0, 1, 1)
    b = shapely.box(3, 0, 4, 1)
    region = icesat2.toregion(geopandas.GeoDataFrame(geometry=[a, b], crs="EPSG:4326"))
    assert _ccw_closed(region)
    assert shapely.Polygon([(p["lon"], p["lat"]) for p in region]).equals(shapely.box(0, 0, 4, 1))


def test_toregion_tolerance_simplifies_and_too_many_points_are_refused():
    circle = shapely.Point(10.0, 45.0).buffer(1.0, quad_segs=5000)   # 20001 points
    with pytest.raises(ParameterError, match="16384"):
        icesat2.toregion(circle)
    region = icesat2.toregion(circle, tolerance=0.001)
    assert 10 < len(region) < 16384 and _ccw_closed(region)


def test_toregion_rejects_what_is_not_a_polygon(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        icesat2.toregion(str(tmp_path / "missing.geojson"))
    with pytest.raises(ParameterError):
        icesat2.toregion(shapely.Point(0, 0))
    with pytest.raises(ParameterError):
        icesat2.toregion(42)


def test_toregion_accepts_bbox_and_point_lists():
    assert _ccw_closed(icesat2.toregion([-108.3, 38.9, -107.8, 39.2]))
    pts = [{"lon": x, "lat": y} for x, y in SQUARE_CW]
    assert {(p["lon"], p["lat"]) for p in icesat2.toregion(pts)} == set(SQUARE_CW)
    assert np.isclose(shapely.Polygon([(p["lon"], p["lat"]) for p in icesat2.toregion(pts)]).area, 0.15)


# ---------------------------------------------------------------------- a deployed API's async jobs
def test_async_job_of_a_deployed_api(synth_dir, synth_names, reference):
    """POST atl06p -> 202 job; GET /jobs/{id} until done; merged msgpack split back per granule."""
    import http.server

    from icesat2sr.science.records import pack

    asset = resolve_asset("atlas-local", str(synth_dir))
    missing = synth_names[0].replace("_01.h5", "_02.h5")
    results = [process_granule(asset, n, Parms.from_dict(PARMS), "atl06") for n in [missing, *synth_names]]
    merged = pack(concat(results, "atl06"))
    polls = []

    class Api(http.server.BaseHTTPRequestHandler):
        def _send(self, status, body, kind="application/json"):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert self.path == "/prod/source/atl06p" and request["resources"] is None
            self._send(202, {"job": "atl06p-1", "status": "SUBMITTED", "status_url": "/jobs/atl06p-1"})

        def do_GET(self):
            if self.path == "/prod/source/version":
                self._send(200, {"server": {"version": "v4.20.0"}})
            elif self.path == "/prod/jobs/atl06p-1":
                polls.append(1)
                done = len(polls) >= 2
                self._send(200, {"job": "atl06p-1", "state": "PARTIAL" if done else "RUNNING", "total": 3,
                                 "done": 3 if done else 1,
                                 "failures": [{"granule": missing, "code": -3, "reason": "granule not found"}],
                                 **({"urls": {"msgpack": f"{base}/files/out.msgpack"}} if done else {})})
            elif self.path == "/files/out.msgpack":
                self._send(200, merged, "application/octet-stream")
            else:
                self._send(404, {"error": self.path})

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    port = srv.server_address[1]
    base = f"http://127.0.0.1:{port}"
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        icesat2.JOB_POLL_S, saved = 0.01, icesat2.JOB_POLL_S
        assert icesat2.init(f"{base}/prod/")
        calls = []
        assert icesat2.atl06p(PARMS, callback=lambda *a: calls.append(a)) is None
        assert sorted(c[0] for c in calls) == synth_names and {c[3] for c in calls} == {3}
        for resource, gdf, _, _ in calls:
            rgt = int(resource.split("_")[2][:4])
            pd.testing.assert_frame_equal(gdf, reference[reference["rgt"] == rgt])
        gdf = icesat2.atl06p(PARMS)
        pd.testing.assert_frame_equal(gdf, reference)
        assert gdf.attrs["failed"] == {missing: "granule not found"}
    finally:
        icesat2.JOB_POLL_S = saved
        icesat2.init(path=str(synth_dir))
        srv.shutdown()
        srv.server_close()
