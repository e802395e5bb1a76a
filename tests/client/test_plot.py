"""plot(): along-track elevation per beam + a map; `icesat2sr plot`, `serve`, `demo` commands."""

import subprocess
import sys

import geopandas
import numpy as np
import pytest
from matplotlib.image import imread

from icesat2sr import icesat2
from icesat2sr.cli import main as cli
from icesat2sr.client.plot import plot, plot_vegetation


@pytest.fixture(scope="module")
def elevations(synth_dir, synth_names):
    icesat2.init(path=str(synth_dir))
    return icesat2.atl06p({"cnf": 1, "maxi": 6}, resources=synth_names)


def test_plot_has_a_panel_per_granule_a_line_per_beam_and_a_map(elevations, tmp_path):
    fig = plot(elevations, tmp_path / "p.png")
    axes = fig.get_axes()
    panels = [a for a in axes if a.get_ylabel() == "h_mean (m)" and a.get_label() != "<colorbar>"]
    assert len(panels) == 2                                        # two granules
    for ax in panels:
        assert len(ax.get_lines()) == 6                            # six beams
        heights = np.concatenate([line.get_ydata() for line in ax.get_lines()])
        assert np.nanmin(heights) > 0 and np.isfinite(heights).all()
    total = sum(len(line.get_ydata()) for ax in panels for line in ax.get_lines())
    assert total == len(elevations)                                # every elevation is drawn
    maps = [a for a in axes if "EPSG:3031" in a.get_xlabel()]     # Antarctic points: polar stereographic
    assert len(maps) == 1
    image = imread(tmp_path / "p.png")
    assert image.shape[0] > 500 and image[..., :3].std() > 0.05    # not a blank canvas


def test_photons_and_empty_frames_plot(synth_dir, synth_names, tmp_path):
    icesat2.init(path=str(synth_dir))
    photons = icesat2.atl03s({"cnf": 4, "track": 1}, synth_names[0])
    fig = plot(photons, tmp_path / "ph.png")
    panel = [a for a in fig.get_axes() if a.get_ylabel() == "photon height (m)" and a.get_label() != "<colorbar>"]
    assert len(panel) == 1 and len(panel[0].get_lines()) == 2      # gt1l, gt1r
    fig = plot(photons.iloc[:0], tmp_path / "empty.png")
    assert (tmp_path / "empty.png").stat().st_size > 1000


def test_vegetation_plot_draws_canopy_per_strong_beam_and_the_truth(forest_dir, tmp_path):
    icesat2.init(path=str(forest_dir))
    veg = icesat2.atl08p({"srt": 0, "len": 100.0, "res": 100.0, "phoreal": {}})
    fig = plot(veg, tmp_path / "veg.png")                           # plot() recognises a PhoREAL frame
    canopy = [a for a in fig.get_axes() if a.get_ylabel().startswith("canopy height")]
    assert len(canopy) == 1
    labels = [line.get_label() for line in canopy[0].get_lines()]
    strong = sorted(f"{b} h_canopy" for b in ("gt1r", "gt2r", "gt3r"))   # forward orientation: right beams
    assert sorted(label for label in labels if label.endswith("h_canopy")) == strong
    drawn = sum(len(line.get_ydata()) for line in canopy[0].get_lines() if line.get_label() in strong)
    assert drawn == int(((veg["veg_ph_count"] > 0) & veg["spot"].isin((1, 3, 5))).sum()) > 30
    truth = veg["h_canopy"].to_numpy() + 0.5
    fig = plot_vegetation(veg, tmp_path / "veg.png", truth=truth)
    assert sum("truth" in line.get_label() for ax in fig.get_axes() for line in ax.get_lines()) == 3
    assert imread(tmp_path / "veg.png")[..., :3].std() > 0.05


def test_plot_command(elevations, tmp_path, capsys):
    result = tmp_path / "r.parquet"
    elevations.to_parquet(result)
    assert cli(["plot", str(result), "-o", str(tmp_path / "r.png")]) == 0
    assert imread(tmp_path / "r.png").shape[1] > 1000
    assert cli(["plot", str(tmp_path / "missing.parquet"), "-o", str(tmp_path / "r.png")]) == 2
    assert cli(["plot", str(result), "-o", str(tmp_path / "r.jpg")]) == 2
    assert "error:" in capsys.readouterr().err


def test_serve_refuses_bad_arguments(tmp_path, capsys):
    assert cli(["serve", "--path", str(tmp_path / "nope")]) == 2
    assert cli(["serve", "--path", str(tmp_path), "--port", "70000"]) == 2
    assert capsys.readouterr().err.count("error:") == 2


def test_demo_writes_geoparquet_and_png(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-m", "icesat2sr.cli", "demo", "--out", str(out), "--granules", "2",
                           "--segments", "300"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    gdf = geopandas.read_parquet(out / "atl06.parquet")
    assert len(gdf) > 1000 and gdf.index.name == "time"
    assert imread(out / "atl06.png")[..., :3].std() > 0.05
    text = done.stdout
    assert "elevations ->" in text and "time span:" in text and "plot ->" in text
    for gt in (10, 20, 30, 40, 50, 60):                            # rows per beam
        assert f"{gt:>10} {int((gdf['gt'] == gt).sum()):>8}" in text
    # the vegetation panel: PhoREAL over a synthetic forest, with its truth
    veg = geopandas.read_parquet(out / "atl08.parquet")
    assert len(veg) > 500 and veg["h_canopy"].max() > 20.0 and "vegetation extents ->" in text
    assert "h_canopy - truth" in text and imread(out / "atl08.png")[..., :3].std() > 0.05
