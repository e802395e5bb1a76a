"""``icesat2sr atl06p`` / ``atl03sp`` (discovery + process pool) and ``icesat2sr index``."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
from geopandas.testing import assert_geodataframe_equal

from icesat2sr.cli import main
from icesat2sr.discovery import catalog

from .discovery import discovery_data as dd

N = dd.NAMES
# crosses the tracks of "mid" and "mid_repeat" (lat 40.0 .. 40.054) over part of their length
BAND = {"type": "Polygon", "coordinates": [[[-105.1, 40.01], [-104.9, 40.01], [-104.9, 40.03],
                                            [-105.1, 40.03], [-105.1, 40.01]]]}
FAR = {"type": "Polygon", "coordinates": [[[20, 20], [21, 20], [21, 21], [20, 21], [20, 20]]]}
FAST = '{"cnf": 4, "maxi": 3}'


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    return dd.places(tmp_path_factory)


@pytest.fixture(scope="module")
def polys(tmp_path_factory):
    d = tmp_path_factory.mktemp("polys")
    for name, geo in (("band", BAND), ("far", FAR)):
        (d / f"{name}.geojson").write_text(json.dumps(geo))
    return d


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("kind", "single", "workers"), [("atl06p", "atl06", 2), ("atl03sp", "atl03s", 1)])
def test_region_run_equals_naming_granules_one_by_one(places, polys, tmp_path, capsys, kind, single, workers):
    out = tmp_path / f"{kind}.parquet"
    code, _, err = run(capsys, kind, "--path", places, "--poly", polys / "band.geojson", "--parms", FAST,
                       "-o", out, "--workers", workers)
    assert code == 0 and "2 granules selected" in err
    region = gpd.read_parquet(out)
    parts = []
    for name in sorted(N.values()):  # every granule of the folder, named alone, same request
        one = tmp_path / f"{single}-{name}.parquet"
        assert run(capsys, single, name, "--path", places, "--poly", polys / "band.geojson", "--parms", FAST,
                   "-o", one, "--workers", 1)[0] == 0
        frame = gpd.read_parquet(one)
        assert (len(frame) > 0) is (name in (N["mid"], N["mid_repeat"]))
        parts.append(frame)
    expected = pd.concat(parts).sort_index(kind="stable")
    assert len(region) > 100
    assert_geodataframe_equal(region, expected, check_like=False)
    assert sorted(region["cycle"].unique()) == [10, 11] and set(region["rgt"]) == {100}


def test_a_failing_granule_is_reported_and_the_others_kept(places, tmp_path, capsys):
    folder = dd.copy_folder(places, tmp_path / "d", keys=["mid", "europe"], corrupt=True)
    out = tmp_path / "out.parquet"
    code, _, err = run(capsys, "atl06p", "--path", folder, "--parms", FAST, "-o", out, "--workers", 1)
    assert code == 0
    assert f"failed: {dd.CORRUPT}: not an HDF5 file" in err
    assert "1 of 3 granules failed" in err
    good = tmp_path / "good.parquet"
    assert run(capsys, "atl06", N["mid"], N["europe"], "--path", folder, "--parms", FAST, "-o", good, "-q")[0] == 0
    assert_geodataframe_equal(gpd.read_parquet(out), gpd.read_parquet(good))


def test_all_granules_failing_exits_1_and_writes_nothing(places, tmp_path, capsys):
    folder = dd.copy_folder(places, tmp_path / "d", keys=[], corrupt=True)
    out = tmp_path / "out.parquet"
    code, _, err = run(capsys, "atl06p", "--path", folder, "-o", out, "--workers", 1, "-q")
    assert code == 1 and not out.exists()
    assert err.strip().splitlines()[-1] == "error: all 1 selected granules failed; nothing written"


def test_nothing_matched_writes_an_empty_result(places, polys, tmp_path, capsys):
    out = tmp_path / "out.parquet"
    code, _, err = run(capsys, "atl06p", "--path", places, "--poly", polys / "far.geojson", "-o", out)
    assert code == 0 and "0 granules selected" in err
    assert f"no granule matched the request; wrote an empty result to {out}" in err
    empty = gpd.read_parquet(out)
    assert len(empty) == 0 and "h_mean" in empty.columns
    out3 = tmp_path / "out.csv"
    assert run(capsys, "atl03sp", "--path", places, "--parms", '{"rgt": 999}', "-o", out3, "-q")[0] == 0
    empty3 = pd.read_csv(out3)
    assert len(empty3) == 0 and list(empty3.columns[:2]) == ["time", "region"]   # arrow's CSV, as SlideRule's


def test_t0_after_t1_is_one_error_line(places, tmp_path, capsys):
    out = tmp_path / "out.parquet"
    parms = '{"t0": "2020-02-01T00:00:00Z", "t1": "2020-01-01T00:00:00Z"}'
    code, stdout, err = run(capsys, "atl06p", "--path", places, "--parms", parms, "-o", out)
    assert code == 2 and stdout == "" and not out.exists()
    assert err == "error: parameter 't0': start time 2020-02-01T00:00:00Z is after t1 2020-01-01T00:00:00Z\n"


def test_time_and_name_filters_from_the_command_line(places, tmp_path, capsys):
    out = tmp_path / "out.parquet"
    parms = '{"t0": "2020-01-03T00:00:00Z", "t1": "2020-01-04T12:00:00Z", "region": 8, "cnf": 4}'
    code, _, err = run(capsys, "atl06p", "--path", places, "--parms", parms, "-o", out, "--workers", 1)
    assert code == 0 and "1 granule selected" in err
    assert set(gpd.read_parquet(out)["rgt"]) == {400}  # the dateline granule


def test_index_command(places, tmp_path, capsys):
    folder = dd.copy_folder(places, tmp_path / "d", keys=["mid", "europe"], corrupt=True)
    code, out, _ = run(capsys, "index", folder)
    lines = out.splitlines()
    assert code == 0 and sorted(lines[:3]) == sorted(f"   added {n}" for n in (N["mid"], N["europe"], dd.CORRUPT))
    assert lines[3].startswith(f"  failed {dd.CORRUPT}: not an HDF5 file")
    assert lines[-1].startswith("3 granules: 3 added, 0 updated, 0 removed, 0 unchanged, 1 failed (")
    assert lines[-1].endswith(f"-> {folder / catalog.CATALOG_NAME}") and "s per granule indexed" in lines[-1]
    (folder / N["europe"]).unlink()
    code, out, _ = run(capsys, "index", folder)
    assert out.splitlines()[0] == f" removed {N['europe']}"
    assert "2 granules: 0 added, 0 updated, 1 removed, 2 unchanged, 0 failed" in out
    code, out, _ = run(capsys, "index", folder, "-q")
    assert out.endswith("-> catalogue unchanged\n") and len(out.splitlines()) == 1
    code, out, err = run(capsys, "index", tmp_path / "absent")
    assert code == 2 and err.startswith("error: parameter 'asset': data folder") and "does not exist" in err
