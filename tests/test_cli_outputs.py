"""Outputs never touch inputs, unwritable destinations are refused before any work, a failed write
leaves nothing behind (issue 10, items 1, 9 and 10)."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from icesat2sr.cli import main
from icesat2sr.service import routes

GOOD = "ATL03_20210601120000_12340512_006_01.h5"   # conftest's granule, with its ATL08
COMPANION = GOOD.replace("ATL03", "ATL08")
OTHER = "ATL03_20201102030405_05670910_006_01.h5"  # conftest's second granule
TRUNCATED = "ATL03_20210601120000_12340512_006_02.h5"
ICESAT2SR = [sys.executable, "-m", "icesat2sr.cli"]


@pytest.fixture
def data(synth_dir, tmp_path):
    d = tmp_path / "data"
    shutil.copytree(synth_dir, d)
    (d / TRUNCATED).write_bytes((d / GOOD).read_bytes()[:100_000])
    return d


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _refused(argv, needle, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:") and needle in err, err
    return err


@pytest.mark.parametrize("command, target", [
    ("atl06", GOOD), ("atl06", COMPANION), ("atl03s", GOOD), ("atl06", OTHER),   # read, companion, any granule
    ("atl06p", GOOD), ("atl03sp", COMPANION), ("atl06p", ".icesat2sr-catalog.parquet"),
    ("atl06", "ATL03_20990101000000_00010101_006_01.h5"),   # would become a granule of the folder
])
def test_output_inside_the_inputs_is_refused(data, capsys, command, target):
    before = _digest(data)
    names = [GOOD] if command in ("atl06", "atl03s") else []
    _refused([command, *names, "--path", str(data), "-o", str(data / target), "-q"], "elsewhere", capsys)
    assert _digest(data) == before


@pytest.mark.parametrize("link", ["symbolic", "hard", "folder"])
def test_output_linked_to_an_input_is_refused(data, tmp_path, capsys, link):
    out = tmp_path / "out" / "result.h5"
    out.parent.mkdir()
    if link == "symbolic":
        out.symlink_to(data / GOOD)
    elif link == "hard":
        os.link(data / COMPANION, out)
    else:
        out = tmp_path / "alias" / GOOD
        out.parent.symlink_to(data, target_is_directory=True)
    before = _digest(data)
    _refused(["atl06", GOOD, "--path", str(data), "-o", str(out), "--parms", '{"atl08_class": "atl08_ground"}'],
             "elsewhere", capsys)
    assert _digest(data) == before


def test_results_beside_the_granules_are_fine(data, capsys):
    out = data / "result.parquet"
    assert main(["atl06", GOOD, "--path", str(data), "-o", str(out), "-q"]) == 0 and out.stat().st_size > 0


@pytest.mark.parametrize("option, value", [("--workers", "0"), ("--workers", "-3"), ("--workers", "two"),
                                           ("--granule-timeout", "0"), ("--granule-timeout", "nan")])
def test_workers_and_time_limit_must_be_positive(data, tmp_path, capsys, option, value):
    err = _refused(["atl06", GOOD, "--path", str(data), "-o", str(tmp_path / "o.parquet"), option, value],
                   option, capsys)
    assert "positive" in err or "expected a number" in err


@pytest.mark.parametrize("name", [f" {GOOD}", f"{GOOD} ", f"{GOOD}\n", f"{GOOD}\t"])
def test_granule_names_with_whitespace_are_refused_everywhere(data, tmp_path, capsys, name):
    _refused(["atl06", name, "--path", str(data), "-o", str(tmp_path / "o.parquet")], "whitespace", capsys)
    config = routes.Config(path=str(data), workers=1)
    for path in ("/source/atl06p", "/source/atl03sp", "/source/indexer"):
        answer = routes.handle("POST", path, {}, json.dumps({"resources": [name]}).encode(), config)
        assert answer.status == 400 and "whitespace" in json.loads(answer.body)["error"]


@pytest.mark.parametrize("folder", ["/sys", "/sys/kernel"])   # the kernel refuses new files there, even to root
def test_unwritable_folder_is_reported_before_any_work(data, capsys, folder):
    # the granule named is truncated: had processing started, its error would be reported instead
    _refused(["atl06", TRUNCATED, "--path", str(data), "-o", f"{folder}/out.parquet"],
             f"cannot write in output folder {folder}: Permission denied", capsys)


def _file_size_limit(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # the write fails with EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".h5"])
def test_a_failed_write_exits_1_and_leaves_nothing(data, tmp_path, suffix):
    out = tmp_path / "out" / f"result{suffix}"
    out.parent.mkdir()
    proc = subprocess.run([*ICESAT2SR, "atl06", GOOD, "--path", str(data), "-o", str(out), "-q", "--workers", "1"],
                          preexec_fn=_file_size_limit(60_000), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr   # not a crash (h5py used to segfault here: -11)
    assert proc.stderr.strip() == (f"error: cannot write {out}: File too large (the file size limit); "
                                   "nothing was written")
    assert list(out.parent.iterdir()) == []
