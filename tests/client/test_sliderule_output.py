"""``output`` and ``sliderule.run("atl03x", ...)`` through the official clients (4.20.0, 5.7.0, unmodified).

The server writes each file in its own scratch folder and streams it back (``arrowrec`` records);
the client writes it at ``output.path`` and, with ``open_on_complete``, opens it. Every file (each
format, opened or not, atl06p and atl03sp) must hold the same rows, columns and values as the CLI's
file for the same request; ``sliderule.run("atl03x", ...)`` (photons, photons + fit, with YAPC and
ATL08 classes) returns the frame SlideRule's examples expect (their column counts) and equal to the
CLI's ``atl03x``.
"""

import json
from pathlib import Path

import geopandas
import numpy as np
import pandas as pd
import pytest

from icesat2sr.cli import main as cli

from .test_sliderule_clients import ATL03, ATL06, CLIENTS, region, run_client, server_url  # noqa: F401

SCRIPT = Path(__file__).with_name("sliderule_output_script.py")
FORMATS = ("geoparquet", "parquet", "feather", "csv")
SUFFIX = {"geoparquet": ".parquet", "parquet": ".parquet", "feather": ".feather", "csv": ".csv"}
READ = {"geoparquet": geopandas.read_parquet, "parquet": pd.read_parquet, "feather": pd.read_feather,
        "csv": pd.read_csv}
OPENED = {"geoparquet": "GeoDataFrame", "parquet": "DataFrame", "feather": "DataFrame", "csv": "DataFrame"}
X = {"cnf": 1, "srt": 3}
ALL_CLASSES = ["atl08_noise", "atl08_ground", "atl08_canopy", "atl08_top_of_canopy", "atl08_unclassified"]
XRUNS = {   # SlideRule's test_atl03x.py requests; the number of columns its tests expect
    "x_photons": (X, 17),
    "x_fit": ({**X, "fit": {"maxi": 3}}, 18),
    "x_yapc_atl08": ({"cnf": 0, "srt": 3, "yapc": {"score": 0}, "atl08_class": ALL_CLASSES}, 19),
    # test_phoreal's 26 columns less its atl08_fields column
    "x_phoreal": ({"cnf": 0, "srt": 0, "phoreal": {"binsize": 1.0}}, 25),
}
RENAMED = {"photon_count": "ph_count", "ground_photon_count": "gnd_ph_count",
           "vegetation_photon_count": "veg_ph_count"}   # x-series PhoREAL frame -> our atl08 frame

pytestmark = pytest.mark.client


def file_cases(names, poly, folder: Path) -> dict:
    """atl06p in every format, opened and not; atl03sp in every format (opened), and once not."""
    both = [names[1], names[0]]
    cases = {}
    for api, parms in (("atl06p", ATL06), ("atl03sp", {**ATL03, "poly": poly})):
        for fmt in FORMATS:
            for opened in (True, False):
                if api == "atl03sp" and not opened and fmt != "parquet":
                    continue
                key = f"{api}_{fmt}_{'open' if opened else 'path'}"
                output = {"path": str(folder / f"{key}{SUFFIX[fmt]}"), "format": fmt, "open_on_complete": opened}
                cases[key] = {"api": api, "parms": {**parms, "output": output}, "resources": both}
    return cases


def run_cases(names, poly) -> dict:
    both = [names[1], names[0]]
    return {key: {"api": "run:atl03x", "parms": parms, "aoi": poly, "resources": both}
            for key, (parms, _) in XRUNS.items()}


@pytest.fixture(scope="module", params=list(CLIENTS))
def client(request, server_url, synth_names, region, tmp_path_factory):  # noqa: F811
    d = tmp_path_factory.mktemp(f"output-{request.param}")
    (d / "files").mkdir()
    cases = file_cases(synth_names, region, d / "files") | run_cases(synth_names, region)
    out = run_client(request.param, SCRIPT, server_url, cases, d)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["client"] == f"v{request.param}"
    return cases, summary, out


@pytest.fixture(scope="module")
def cli_files(synth_dir, synth_names, region, tmp_path_factory):  # noqa: F811
    """The CLI's files for the same requests (the reference), one per kind and format."""
    d = tmp_path_factory.mktemp("cli-output")
    both = [synth_names[1], synth_names[0]]
    out = {}
    runs = [("atl06p", "atl06", ATL06, fmt) for fmt in FORMATS]
    runs += [("atl03sp", "atl03s", {**ATL03, "poly": region}, fmt) for fmt in FORMATS]
    runs += [(key, "atl03x", {**parms, "poly": region}, "geoparquet") for key, (parms, _) in XRUNS.items()]
    runs += [("x_phoreal_atl08", "atl08", {**XRUNS["x_phoreal"][0], "podppd": 1, "poly": region}, "geoparquet")]
    for key, kind, parms, fmt in runs:
        path = d / f"{key}-{fmt}{SUFFIX[fmt]}"
        assert cli([kind, *both, "--path", str(synth_dir), "--parms", json.dumps(parms), "--format", fmt,
                    "-o", str(path), "-q", "--workers", "1"]) == 0
        out[key, fmt] = path
    return out


def canonical(frame) -> pd.DataFrame:
    """Rows sorted by every column (the server writes granules as they complete), geometry as x/y."""
    frame = pd.DataFrame(frame).reset_index()
    frame = frame.drop(columns=[c for c in frame.columns if c == "index"])
    if "geometry" in frame:
        points = geopandas.GeoSeries(frame.pop("geometry"))
        frame["geometry.x"], frame["geometry.y"] = points.x.to_numpy(), points.y.to_numpy()
    for column in frame.columns:   # array cells (canopy_h_metrics) as tuples, so rows sort and compare
        if frame[column].dtype == object and len(frame) and isinstance(frame[column].iloc[0], np.ndarray):
            frame[column] = frame[column].map(tuple)
    return frame.sort_values(list(frame.columns), kind="stable").reset_index(drop=True)


def assert_same(ours, theirs) -> None:
    a, b = canonical(ours), canonical(theirs)
    assert list(a.columns) == list(b.columns) and len(a) == len(b) > 0
    pd.testing.assert_frame_equal(a, b, check_exact=True)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("api", ["atl06p", "atl03sp"])
def test_output_files_equal_the_clis(client, cli_files, api, fmt):
    cases, summary, _ = client
    reference = READ[fmt](cli_files[api, fmt])
    for how in ("open", "path"):
        key = f"{api}_{fmt}_{how}"
        if key not in cases:
            continue
        path = cases[key]["parms"]["output"]["path"]
        assert_same(READ[fmt](path), reference)      # the file the client wrote where output.path said
        got = summary[key]
        if how == "path":
            assert got == {"type": "str", "path": path}
        else:
            assert got["type"] == OPENED[fmt] and got["rows"] == len(reference)
            assert set(got["columns"]) == {str(c) for c in reference.columns}
            if fmt in ("geoparquet", "parquet"):
                assert got["index"] == "time" and "sliderule" in got["attrs"]   # our metadata, read by the client


def test_geoparquet_output_is_the_streamed_frame(client, cli_files):
    """The file's frame and the record stream's frame (the CLI's, tested against the clients) agree."""
    cases, _, _ = client
    frame = geopandas.read_parquet(cases["atl06p_geoparquet_open"]["parms"]["output"]["path"])
    assert frame.crs.to_epsg() == 7912 and frame.index.name == "time"
    assert {"h_mean", "segment_id", "gt", "n_fit_photons"} <= set(frame.columns)


@pytest.mark.parametrize("key", list(XRUNS))
def test_run_atl03x_gives_slideRules_frames(client, cli_files, key):
    _, summary, out = client
    got = summary[key]
    assert got["type"] == "GeoDataFrame" and got["index"] == "time_ns"
    assert len(got["columns"]) == XRUNS[key][1]                 # SlideRule's test_atl03x.py expectations
    assert {"meta", "recordinfo", "sliderule"} <= set(got["attrs"])
    frame = geopandas.read_parquet(out / f"{key}.parquet")
    assert_same(frame, geopandas.read_parquet(cli_files[key, "geoparquet"]))
    assert set(np.unique(frame["srcid"])) == {0}              # the region lies on the first named granule
    if key == "x_phoreal":   # our atl08 rows for the same request, columns renamed as SlideRule names them
        veg = geopandas.read_parquet(cli_files["x_phoreal_atl08", "geoparquet"])
        veg.index.name = "time_ns"
        veg = veg.rename(columns={v: k for k, v in RENAMED.items()})
        shared = [c for c in veg.columns if c in frame.columns and c != "x_atc"]
        assert len(shared) == 18 and frame["canopy_h_metrics"].map(len).eq(20).all()
        meta = {c: frame[c].dtype for c in ("rgt", "cycle", "spot", "gt")}   # frame metadata: SlideRule's types
        assert (veg[list(meta)].astype(np.int64) == veg[list(meta)].astype(meta).astype(np.int64)).all().all()
        assert_same(frame[shared], veg[shared].astype(meta))
        np.testing.assert_array_equal(np.sort(frame["x_atc"].to_numpy()),
                                      np.sort(veg["x_atc"].to_numpy().astype(np.float64)))
    if key == "x_fit":
        assert {"h_mean", "rms_misfit", "segment_id_beg", "photon_start"} <= set(frame.columns)
        assert frame["h_mean"].dtype == np.float32 and (frame["pflags"] == 0).all()
