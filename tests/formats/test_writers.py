"""Writers as callbacks: the seed's Hdf5Writer example as written, GeoParquet, CSV."""

import os

import geopandas
import h5py
import numpy as np
import pandas as pd
import pytest

from icesat2sr import icesat2
from icesat2sr.formats.writers import CsvWriter, GeoParquetWriter, Hdf5Writer, writer_for

PARMS = {"srt": 3, "cnf": 1, "ats": 20.0, "cnt": 10, "len": 40.0, "res": 20.0, "maxi": 6}


@pytest.fixture(scope="module")
def expected(synth_dir, synth_names):
    icesat2.init(path=str(synth_dir))
    return icesat2.atl06p(PARMS, resources=synth_names)


def test_the_seeds_hdf5writer_callback_example_runs_as_written(synth_dir, synth_names, tmp_path, expected):
    icesat2.init(path=str(synth_dir))
    parms = dict(PARMS)
    cfg = {"filename": str(tmp_path / "out.h5"), "asset": "atlas-local", "max_workers": 2}
    # --- the seed, section 5 (Callbacks), verbatim (granules found by discovery: no CMR here) ---
    # create hdf5 writer
    hdf5writer = Hdf5Writer(cfg["filename"], parms)
    # atl06 processing request
    icesat2.atl06p(parms, cfg["asset"], max_workers=cfg["max_workers"], callback=lambda resource, result, index, total : hdf5writer.run(resource, result, index, total))  # noqa: E501
    # close hdf5 file
    hdf5writer.finish()
    # ---
    with h5py.File(cfg["filename"], "r") as f:
        assert sorted(f) == sorted(n[:-3] for n in synth_names)
        assert f.attrs["cnf"] == 1 and f.attrs["maxi"] == 6
        for name in synth_names:
            g = f[name[:-3]]
            rgt = int(name.split("_")[2][:4])
            want = expected[expected["rgt"] == rgt]
            order = np.lexsort((g["segment_id"][:], g["gt"][:], g["time"][:]))
            want = want.reset_index().sort_values(["time", "gt", "segment_id"], kind="stable")
            assert np.array_equal(g["time"][:][order], want["time"].to_numpy().astype(np.int64))
            assert np.array_equal(g["h_mean"][:][order], want["h_mean"].to_numpy())
            assert np.array_equal(g["latitude"][:][order], want["lat"].to_numpy())
            assert g.attrs["crs"] == "EPSG:7912"


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_file_writers_as_callbacks_equal_the_returned_frame(synth_dir, synth_names, tmp_path, expected, suffix):
    icesat2.init(path=str(synth_dir))
    path = tmp_path / f"out{suffix}"
    with writer_for(path, PARMS) as writer:
        assert icesat2.atl06p(PARMS, resources=synth_names, callback=writer) is None
        assert not path.exists()                      # only renamed into place by finish()
    assert writer.rows == len(expected) and sorted(writer.granules) == synth_names
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask          # a normal file, not mkstemp's 0600
    if suffix == ".parquet":
        got = geopandas.read_parquet(path)
        assert got.crs == "EPSG:7912"
        got = got.sort_index(kind="stable")
        pd.testing.assert_frame_equal(got.reset_index().sort_values(["time", "gt"], kind="stable"),
                                      expected.reset_index().sort_values(["time", "gt"], kind="stable"),
                                      check_index_type=False)
    else:
        got = pd.read_csv(path)
        assert len(got) == len(expected) and "geometry" not in got.columns
        assert np.allclose(np.sort(got["h_mean"].to_numpy()), np.sort(expected["h_mean"].to_numpy()), rtol=1e-9)
        assert got["time"].iloc[0].endswith("Z")


def test_an_aborted_writer_leaves_no_file(tmp_path, expected):
    path = tmp_path / "x.parquet"
    with pytest.raises(RuntimeError), GeoParquetWriter(path) as w:
        w.run("ATL03_a.h5", expected.iloc[:10], 1, 2)
        raise RuntimeError("interrupted")
    assert not path.exists() and not list(tmp_path.iterdir())


def test_empty_run_gives_valid_files(tmp_path):
    with GeoParquetWriter(tmp_path / "e.parquet") as w:
        pass
    assert len(geopandas.read_parquet(w.filename)) == 0
    with CsvWriter(tmp_path / "e.csv") as w:
        pass
    assert w.filename.read_text() == ""
    with pytest.raises(ValueError, match="no writer"):
        writer_for(tmp_path / "x.txt")
