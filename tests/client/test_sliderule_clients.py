"""The official sliderule client (PyPI 4.20.0 and 5.7.0, unmodified) against ``icesat2sr serve``.

A session fixture starts ``icesat2sr serve`` on a free port over the synthetic granules; each
client runs ``tests/sliderule_client_script.py`` in its own environment (``make setup-clients``)
and writes its GeoDataFrames to GeoParquet; here they are compared row for row with the CLI's
output for the same parameters (``icesat2sr atl06 / atl03s``), every common column exactly.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import geopandas
import numpy as np
import pandas as pd
import pytest

from icesat2sr.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("sliderule_client_script.py")
CLIENTS = {"4.20.0": ROOT / ".venv-sr4" / "bin" / "python", "5.7.0": ROOT / ".venv-sr5" / "bin" / "python"}
ATL06 = {"cnf": 1, "ats": 20.0, "cnt": 10, "len": 40.0, "res": 20.0, "maxi": 6}
ATL03 = {"cnf": 2, "len": 20.0, "res": 20.0, "ats": 10.0, "cnt": 5, "yapc": {"score": 0},
         "atl08_class": ["atl08_ground", "atl08_canopy", "atl08_unclassified"]}
ATL08 = {"srt": 0, "cnf": 0, "len": 100.0, "res": 100.0, "phoreal": {"binsize": 1.0, "send_waveform": True}}
ATL08_DISCOVERED = {"phoreal": {"binsize": 1.0}}      # `icesat2sr atl08p --path DIR --parms '...'` (every granule)

pytestmark = pytest.mark.client


@pytest.fixture(scope="session")
def server_url(synth_dir):
    proc = subprocess.Popen([sys.executable, "-m", "icesat2sr.cli", "serve", "--path", str(synth_dir), "--port", "0",
                             "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if " on http://" not in line:
        proc.kill()
        pytest.fail(f"icesat2sr serve did not start: {line}{proc.stderr.read()}")
    url = line.split(" on http://", 1)[1].split()[0]
    yield url
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.fixture(scope="session")
def region(synth_dir, synth_names, tmp_path_factory):
    """A small box over 1 km of gt1l/gt1r of the first granule (keeps photon requests small)."""
    out = tmp_path_factory.mktemp("region") / "atl06.parquet"
    assert cli(["atl06", synth_names[1], "--path", str(synth_dir), "-o", str(out), "-q", "--workers", "1"]) == 0
    g = geopandas.read_parquet(out)
    s = g[g["gt"].isin([10, 20])]
    s = s[(s["distance"] > s["distance"].min() + 2000) & (s["distance"] < s["distance"].min() + 3000)]
    lo0, lo1 = s["lon"].min() - 0.002, s["lon"].max() + 0.002
    la0, la1 = s["lat"].min() - 0.002, s["lat"].max() + 0.002
    return [{"lon": lo0, "lat": la0}, {"lon": lo1, "lat": la0}, {"lon": lo1, "lat": la1},
            {"lon": lo0, "lat": la1}, {"lon": lo0, "lat": la0}]


@pytest.fixture(scope="session")
def cli_outputs(synth_dir, synth_names, region, tmp_path_factory):
    """The CLI's results for the same requests (the reference)."""
    d = tmp_path_factory.mktemp("cli")
    atl03 = {**ATL03, "poly": region}
    runs = {"atl06p": ("atl06", synth_names, ATL06), "atl06": ("atl06", synth_names[1:], ATL06),
            "atl03sp": ("atl03s", synth_names, atl03), "atl03s": ("atl03s", synth_names[1:], atl03),
            "atl08p": ("atl08", synth_names, ATL08), "atl08p_discovered": ("atl08p", [], ATL08_DISCOVERED)}
    out = {}
    for key, (kind, names, parms) in runs.items():
        path = d / f"{key}.parquet"
        assert cli([kind, *names, "--path", str(synth_dir), "--parms", json.dumps(parms), "-o", str(path), "-q",
                    "--workers", "1"]) == 0
        out[key] = geopandas.read_parquet(path)
    return out


@pytest.fixture(scope="session", params=list(CLIENTS))
def client_run(request, server_url, synth_names, region, tmp_path_factory):
    spec = {"names": [synth_names[1], synth_names[0]], "atl06": ATL06, "atl03": {**ATL03, "poly": region},
            "atl08": ATL08, "atl08_discovered": ATL08_DISCOVERED,
            "missing": synth_names[0].replace("_01.h5", "_02.h5"), "rgt": 1234}
    out = run_client(request.param, SCRIPT, server_url, spec, tmp_path_factory.mktemp(f"sliderule-{request.param}"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["client"] == f"v{request.param}"
    return request.param, out, summary


def run_client(version: str, script: Path, url: str, spec: dict, folder: Path, timeout: float = 600) -> Path:
    """Run ``script URL INPUT.json OUTDIR`` with a client's python (``spec`` as INPUT); returns OUTDIR."""
    python = CLIENTS[version]
    if not python.exists():
        pytest.fail(f"{python} is missing: run `make setup-clients`")
    (folder / "input.json").write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    done = subprocess.run([str(python), str(script), url, str(folder / "input.json"), str(folder / "out")],
                          capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return folder / "out"


def canonical(gdf, columns: list[str]) -> pd.DataFrame:
    """``columns`` (+ time and coordinates) with rows sorted by all of them: a full key (the
    client sorts by time only, with an unstable sort)."""
    df = pd.DataFrame(gdf.drop(columns="geometry")).reset_index()[["time", *columns]]
    df["geometry.x"], df["geometry.y"] = gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()
    return df.sort_values(list(df.columns), kind="stable").reset_index(drop=True)


def assert_same_rows(client, ours, loose_dtype=()):
    assert client.crs == ours.crs == "EPSG:7912"
    assert client.index.name == ours.index.name == "time"
    missing = set(client.columns) - set(ours.columns)
    assert not missing, f"client columns the CLI lacks: {missing}"
    columns = [c for c in client.columns if c != "geometry"]
    a, b = canonical(client, columns), canonical(ours, columns)
    assert len(a) == len(b) > 0
    for column in a.columns:
        if column not in loose_dtype:
            assert a[column].dtype == b[column].dtype, column
        np.testing.assert_array_equal(a[column].to_numpy(), b[column].to_numpy(), err_msg=column)


@pytest.mark.parametrize("key", ["atl06p", "atl06"])
def test_elevations_equal_the_cli_row_for_row(client_run, cli_outputs, key):
    _, out, _ = client_run
    client = geopandas.read_parquet(out / f"{key}.parquet")
    assert_same_rows(client, cli_outputs[key])
    assert set(client.columns) == {"segment_id", "n_fit_photons", "pflags", "rgt", "cycle", "region", "spot", "gt",
                                   "h_mean", "dh_fit_dx", "x_atc", "y_atc", "w_surface_window_final", "rms_misfit",
                                   "h_sigma", "distance", "delta_time", "dh_fit_dy", "geometry"}


@pytest.mark.parametrize("key", ["atl03sp", "atl03s"])
def test_photons_equal_the_cli_row_for_row(client_run, cli_outputs, key):
    _, out, _ = client_run
    client = geopandas.read_parquet(out / f"{key}.parquet")
    # the client computes `spot` itself (int64) from sc_orient/track/pair; ours is uint8
    assert_same_rows(client, cli_outputs[key], loose_dtype=("spot",))
    assert {"count", "segment_dist", "background_rate", "atl08_class", "yapc_score", "distance",
            "delta_time"} <= set(client.columns)


VEGETATION_COLUMNS = {"segment_id", "rgt", "cycle", "spot", "gt", "ph_count", "gnd_ph_count", "veg_ph_count",
                      "landcover", "snowcover", "x_atc", "solar_elevation", "h_te_median", "h_max_canopy",
                      "h_min_canopy", "h_mean_canopy", "h_canopy", "canopy_openness", "canopy_h_metrics", "geometry"}


@pytest.mark.parametrize("key", ["atl08p", "atl08p_discovered"])
def test_vegetation_equals_the_cli_row_for_row(client_run, cli_outputs, key):
    _, out, _ = client_run
    client, ours = geopandas.read_parquet(out / f"{key}.parquet"), cli_outputs[key]
    arrays = ["canopy_h_metrics", *(["waveform"] if key == "atl08p" else [])]
    expected = VEGETATION_COLUMNS | ({"num_bins", "binsize", "waveform"} if key == "atl08p" else set())
    assert set(client.columns) == set(ours.columns) == expected
    # rows keyed by time, beam and along-track distance; the client's arrays hold float64 copies of our float32
    scalars = [c for c in client.columns if c not in (*arrays, "geometry")]
    # the client widens the merged waverec fields to int64/float64; ours keep the record's uint16/float32
    assert_same_rows(client.drop(columns=arrays), ours.drop(columns=arrays), loose_dtype=("num_bins", "binsize"))
    a = client.reset_index().sort_values(["time", "gt", "x_atc"], kind="stable")
    b = ours.reset_index().sort_values(["time", "gt", "x_atc"], kind="stable")
    assert np.array_equal(a[scalars].to_numpy(), b[scalars].to_numpy()) and len(a) > 100
    for column in arrays:
        assert np.array_equal(np.concatenate(a[column].to_list()), np.concatenate(b[column].to_list()).astype(float))
        assert a[column].map(len).tolist() == b[column].map(len).tolist()
    assert (b["canopy_h_metrics"].map(len) == 20).all()


def test_init_version_and_gps2utc(client_run):
    version, _, summary = client_run
    assert summary["init"] is True and summary["server_version"] == f"v{version}"
    assert summary["gps2utc"] == "2019-02-27T19:33:36Z"


def test_record_callbacks_get_every_elevation(client_run, cli_outputs):
    _, _, summary = client_run
    assert summary["callback_frame_rows"] == 0                 # records went to the callback
    assert all(0 < n <= 256 for n in summary["callback_batches"])
    assert summary["callback_h_mean"] == sorted(cli_outputs["atl06p"]["h_mean"].tolist())


def test_a_missing_granule_is_reported_and_the_others_arrive(client_run, cli_outputs):
    _, _, summary = client_run
    assert summary["missing_rows"] == len(cli_outputs["atl06p"])
    (code, level, text), = summary["missing_errors"]
    assert (code, level) == (-3, 3) and "granule not found" in text


def test_server_side_discovery(client_run, cli_outputs):
    _, _, summary = client_run
    assert summary["discovered_rows"] == int((cli_outputs["atl06p"]["rgt"] == 1234).sum()) > 0
    assert any("granule" in message for _, message in summary["log"])   # our eventrecs were logged
