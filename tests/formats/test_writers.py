"""Writers as callbacks: the seed's Hdf5Writer example as written; every callback file equals the
CLI's for the same request (one set of writers); a failed write leaves nothing and says why."""

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap

import geopandas
import h5py
import numpy as np
import pandas as pd
import pytest

from icesat2sr import icesat2
from icesat2sr.cli import main
from icesat2sr.formats.writers import CsvWriter, GeoParquetWriter, Hdf5Writer, writer_for

PARMS = {"srt": 3, "cnf": 1, "ats": 20.0, "cnt": 10, "len": 40.0, "res": 20.0, "maxi": 6}


@pytest.fixture(scope="module")
def expected(synth_dir, synth_names):
    icesat2.init(path=str(synth_dir))
    return icesat2.atl06p(PARMS, resources=synth_names)


@pytest.fixture(scope="module")
def cli_files(synth_dir, tmp_path_factory):
    """The CLI's files for the same request (``icesat2sr atl06p -o``)."""
    folder = tmp_path_factory.mktemp("cli")
    files = {}
    for suffix in (".h5", ".parquet", ".csv"):
        files[suffix] = folder / f"cli{suffix}"
        assert main(["atl06p", "--path", str(synth_dir), "--parms", json.dumps(PARMS),
                     "-o", str(files[suffix]), "-q", "--workers", "1"]) == 0
    return files


def _h5_columns(path) -> dict:
    with h5py.File(path, "r") as f:
        order = np.lexsort((f["segment_id"][:], f["gt"][:], f["time"][:]))
        return {name: f[name][:][order] for name in f}, dict(f.attrs)


def test_the_seeds_hdf5writer_callback_example_runs_as_written(synth_dir, synth_names, tmp_path, expected,
                                                                cli_files):
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
    got, attrs = _h5_columns(cfg["filename"])
    want = expected.reset_index().sort_values(["time", "gt", "segment_id"], kind="stable")
    assert len(got["time"]) == len(expected) > 0
    assert np.array_equal(got["time"], want["time"].to_numpy().astype(np.int64))
    assert np.array_equal(got["h_mean"], want["h_mean"].to_numpy())
    assert np.array_equal(got["latitude"], want["lat"].to_numpy())
    assert attrs["crs"] == "EPSG:7912" and json.loads(attrs["parms"])["maxi"] == 6
    cli, _ = _h5_columns(cli_files[".h5"])          # the CLI's file, column for column
    assert sorted(got) == sorted(cli)
    for name in cli:
        assert np.array_equal(got[name], cli[name], equal_nan=got[name].dtype.kind == "f"), name


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_file_writers_as_callbacks_equal_the_cli_files(synth_dir, synth_names, tmp_path, expected, cli_files, suffix):
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
        pd.testing.assert_frame_equal(_sorted(got), _sorted(expected), check_index_type=False)
        cli = geopandas.read_parquet(cli_files[suffix])
    else:
        got = pd.read_csv(path)
        assert len(got) == len(expected) and "geometry" not in got.columns
        assert np.allclose(np.sort(got["h_mean"].to_numpy()), np.sort(expected["h_mean"].to_numpy()), rtol=1e-9)
        cli = pd.read_csv(cli_files[suffix])
    pd.testing.assert_frame_equal(_sorted(got), _sorted(cli))


def _sorted(frame):
    if frame.index.name == "time":
        frame = frame.reset_index()
    return frame.sort_values(["time", "gt", "segment_id"], kind="stable", ignore_index=True)


def test_an_aborted_writer_leaves_no_file(tmp_path, expected):
    path = tmp_path / "x.parquet"
    with pytest.raises(RuntimeError), GeoParquetWriter(path) as w:
        w.run("ATL03_a.h5", expected.iloc[:10], 1, 2)
        raise RuntimeError("interrupted")
    assert not path.exists() and not list(tmp_path.iterdir())


def test_empty_run_gives_valid_files(tmp_path):
    with GeoParquetWriter(tmp_path / "e.parquet") as w:
        pass
    empty = geopandas.read_parquet(w.filename)
    assert len(empty) == 0 and "h_mean" in empty.columns and empty.crs == "EPSG:7912"
    with CsvWriter(tmp_path / "e.csv", kind="atl03s") as w:
        pass
    header = w.filename.read_text().splitlines()
    assert len(header) == 1 and '"height"' in header[0]
    with pytest.raises(ValueError, match="no writer"):
        writer_for(tmp_path / "x.txt")


_FAILING = textwrap.dedent("""
    import sys
    from icesat2sr import icesat2
    from icesat2sr.formats.writers import writer_for
    from icesat2sr.request.errors import WriteError

    folder, out, names, parms, seed_style = sys.argv[1], sys.argv[2], sys.argv[3].split(","), eval(sys.argv[4]), \\
        sys.argv[5] == "1"
    icesat2.init(path=folder)
    try:
        if seed_style:   # the seed's form: no context manager, finish() never reached
            writer = writer_for(out, parms)
            icesat2.atl06p(parms, resources=names, max_workers=1, callback=writer.run)
            writer.finish()
        else:
            with writer_for(out, parms) as writer:
                icesat2.atl06p(parms, resources=names, max_workers=1, callback=writer)
    except WriteError as exc:
        print(exc, file=sys.stderr)
        sys.exit(3)
""")


def _file_size_limit(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # the write fails with EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("limit", [4_000, 60_000, 150_000])
@pytest.mark.parametrize("suffix, seed_style", [(".h5", True), (".h5", False), (".parquet", True),
                                                (".csv", False)])
def test_a_failed_write_raises_a_clear_error_and_leaves_nothing(synth_dir, synth_names, tmp_path, suffix,
                                                                 seed_style, limit):
    out = tmp_path / "out" / f"result{suffix}"
    out.parent.mkdir()
    proc = subprocess.run([sys.executable, "-c", _FAILING, str(synth_dir), str(out), ",".join(synth_names),
                           repr(PARMS), "1" if seed_style else "0"],
                          preexec_fn=_file_size_limit(limit), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr   # not a crash (h5py used to segfault here: -11)
    assert proc.stderr.strip() == (f"cannot write {out}: File too large (the file size limit); "
                                   "nothing was written")
    assert list(out.parent.iterdir()) == []
