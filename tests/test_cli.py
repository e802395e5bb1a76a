"""The CLI: results on good input; exit 2, one `error:` line and an untouched output on bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import h5py
import numpy as np
import pandas as pd
import pytest

from icesat2sr.cli import main

from .conftest import REAL, VEGR_NAME

GOOD = "ATL03_20210601120000_12340512_006_01.h5"  # conftest's 600-segment granule (rgt 1234, cycle 5)
SQUARE = {"type": "Polygon", "coordinates": [[[-41, -73], [-39, -73], [-39, -72], [-41, -72], [-41, -73]]]}


@pytest.fixture(scope="module")
def data(synth_dir, tmp_path_factory):
    """A folder with one good granule and every kind of bad one."""
    d = tmp_path_factory.mktemp("cli")
    shutil.copy(synth_dir / GOOD, d / GOOD)
    raw = (d / GOOD).read_bytes()
    (d / "ATL03_20210601120000_12340512_006_02.h5").write_bytes(raw[: len(raw) // 3])  # truncated
    (d / "ATL03_20210601120000_12340512_006_03.h5").write_text("this is not HDF5\n" * 100)
    shutil.copy(d / GOOD, d / "ATL03_20210601120000_12340512_006_04.h5")
    with h5py.File(d / "ATL03_20210601120000_12340512_006_04.h5", "a") as f:
        del f["gt2r/heights/dist_ph_along"]  # a granule missing a dataset
    shutil.copy(d / GOOD, d / "ATL03_20210601120000_12340512_006_05.h5")
    with h5py.File(d / "ATL03_20210601120000_12340512_006_05.h5", "a") as f:
        f["gt1l/heights/lat_ph"][5] = -475.2  # an impossible value
    shutil.copy(REAL / "ICESat2VegR" / "atl03_clip.h5", d / VEGR_NAME)  # doubled deflate: h5coro misreads it
    (d / "degenerate.geojson").write_text(json.dumps(
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [2, 2], [0, 0]]]}))
    ring = [[np.cos(t), np.sin(t)] for t in np.linspace(0, 2 * np.pi, 17000)]
    (d / "huge.geojson").write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
    (d / "square.geojson").write_text(json.dumps(SQUARE))
    (d / "bad.json").write_text("{cnf: 4")
    return d


def test_atl06_writes_geoparquet(data, tmp_path, capsys):
    out = tmp_path / "out.parquet"
    assert main(["atl06", GOOD, "--path", str(data), "-o", str(out), "--parms", '{"cnf": 4, "maxi": 3}']) == 0
    gdf = gpd.read_parquet(out)
    assert out.stat().st_mode & 0o044  # readable by others, like any file the user writes
    assert gdf.crs.to_epsg() == 7912 and gdf.index.name == "time"
    assert isinstance(gdf.index, pd.DatetimeIndex) and gdf.index.is_monotonic_increasing
    assert len(gdf) > 1000 and {"h_mean", "lat", "lon", "distance", "delta_time", "dh_fit_dy"} <= set(gdf.columns)
    assert "elevations" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".csv", ".h5"])
def test_other_formats(data, tmp_path, suffix):
    out = tmp_path / f"photons{suffix}"
    assert main(["atl03s", GOOD, "--path", str(data), "-o", str(out), "--parms", '{"cnf": 4}', "-q",
                 "--poly", str(data / "square.geojson")]) == 0
    if suffix == ".csv":
        frame = pd.read_csv(out)
        assert {"time", "height", "latitude", "longitude", "atl03_cnf"} <= set(frame.columns)
        assert (frame["atl03_cnf"] == 4).all() and len(frame) > 0
    else:
        with h5py.File(out) as f:
            assert f.attrs["crs"] == "EPSG:7912" and len(f["height"]) == len(f["time"]) > 0


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".h5"])
def test_atl08_vegetation_in_every_format(synth_dir, tmp_path, suffix, capsys):
    out = tmp_path / f"veg{suffix}"
    parms = {"srt": 0, "len": 100.0, "res": 100.0, "phoreal": {"binsize": 1.0, "send_waveform": True}}
    assert main(["atl08", GOOD, "--path", str(synth_dir), "-o", str(out), "--parms", json.dumps(parms)]) == 0
    assert "vegetation extents" in capsys.readouterr().out
    if suffix == ".parquet":
        gdf = gpd.read_parquet(out)
        assert len(gdf) > 500 and gdf.crs.to_epsg() == 7912 and (gdf["canopy_h_metrics"].map(len) == 20).all()
        assert (gdf["waveform"].map(len) == gdf["num_bins"]).all() and gdf["h_canopy"].max() > 10.0
    elif suffix == ".csv":
        frame = pd.read_csv(out)
        assert {"h_canopy", "canopy_h_metrics_0", "canopy_h_metrics_19", "waveform"} <= set(frame.columns)
        assert frame["waveform"].astype(str).str.split().map(len).tolist() == frame["num_bins"].tolist()
    else:
        with h5py.File(out) as f:
            assert f["canopy_h_metrics"].shape == (len(f["time"]), 20) and len(f["waveform"]) == len(f["time"])


BAD = [
    (["--parms", '{"foo": 1}'], "foo"),
    (["--parms", '{"cnt": "ten"}'], "cnt"),
    (["--parms", '{"len": -5}'], "len"),
    (["--parms", '{"cnf": "atl03_sure"}'], "cnf"),
    (["--parms", "{cnf: 4"], "JSON"),
    (["--parms", "@{data}/bad.json"], "JSON"),
    (["--parms", "@{data}/absent.json"], "absent.json"),
    (["--poly", "{data}/degenerate.geojson"], "degenerate"),
    (["--poly", "{data}/huge.geojson"], "16384"),
    (["--poly", "{data}/absent.geojson"], "absent.geojson"),
    (["--parms", '{"phoreal": {"binsize": -1}}'], "phoreal.binsize"),
    (["--parms", '{"phoreal": {"geoloc": "middle"}}'], "phoreal.geoloc"),
]
BAD_RESOURCES = [
    ("../" + GOOD, "folders"),
    ("/etc/passwd", "folders"),
    ("ATL08_20210601120000_12340512_006_01.h5", "ATL03"),
    ("notes.txt", "granule name"),
    ("ATL03_20210601120000_12340512_006_09.h5", "not found"),  # missing
    ("ATL03_20210601120000_12340512_006_02.h5", ""),  # truncated
    ("ATL03_20210601120000_12340512_006_03.h5", "not an HDF5 file"),
    ("ATL03_20210601120000_12340512_006_04.h5", "dist_ph_along"),  # missing dataset
    ("ATL03_20210601120000_12340512_006_05.h5", "impossible values"),
    (VEGR_NAME, ""),  # doubled deflate filter
]


def _check_bad(argv, needle, out, capsys, before):
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err
    assert needle in lines[0]
    assert (out.read_bytes() if out.exists() else None) == before


@pytest.mark.parametrize("options, needle", BAD)
@pytest.mark.parametrize("preexisting", [False, True])
def test_bad_parameters(data, tmp_path, capsys, options, needle, preexisting):
    out = tmp_path / "out.parquet"
    before = None
    if preexisting:
        out.write_bytes(b"precious")
        before = b"precious"
    options = [o.replace("{data}", str(data)) for o in options]
    _check_bad(["atl06", GOOD, "--path", str(data), "-o", str(out), *options], needle, out, capsys, before)


@pytest.mark.parametrize("resource, needle", BAD_RESOURCES)
def test_bad_resources(data, tmp_path, capsys, resource, needle):
    out = tmp_path / "out.parquet"
    out.write_bytes(b"precious")
    _check_bad(["atl06", resource, "--path", str(data), "-o", str(out)], needle, out, capsys, b"precious")


def test_one_bad_granule_among_good_ones_writes_nothing(data, tmp_path, capsys):
    out = tmp_path / "out.parquet"
    _check_bad(["atl06", GOOD, "ATL03_20210601120000_12340512_006_03.h5", "--path", str(data), "-o", str(out),
                "--workers", "1"], "not an HDF5 file", out, capsys, None)


@pytest.mark.parametrize("argv, needle", [
    (["atl06", GOOD, "-o", "{tmp}/out.txt", "--path", "{data}"], ".parquet"),
    (["atl06", GOOD, "-o", "{tmp}/nowhere/out.parquet", "--path", "{data}"], "does not exist"),
    (["atl06", GOOD, "-o", "{tmp}/out.parquet", "--path", "{tmp}/no-such-folder"], "does not exist"),
    (["atl06", GOOD, "--path", "{data}"], "required"),
    (["atl06", GOOD, "-o", "{tmp}/out.parquet", "--path", "{data}", "--asset", "disk"], "asset"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_command_lines(data, tmp_path, capsys, argv, needle):
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{data}", str(data)) for a in argv]
    _check_bad(argv, needle, tmp_path / "out.parquet", capsys, None)


def test_console_script_has_no_traceback(data, tmp_path):
    out = tmp_path / "out.parquet"
    proc = subprocess.run([sys.executable, "-m", "icesat2sr.cli", "atl06", "../x.h5", "--path", str(data), "-o",
                           str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and proc.stderr.startswith("error:")
    assert not out.exists()
    proc = subprocess.run([sys.executable, "-m", "icesat2sr.cli", "synth", str(tmp_path / "s"), "--segments", "150",
                           "--seed", "4"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0
    assert [Path(p).name[:5] for p in proc.stdout.split()] == ["ATL03"]
