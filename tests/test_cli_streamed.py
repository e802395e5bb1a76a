"""The CLI writes atl06/atl08/atl03s files a chunk at a time: the same file as one written from whole
results, whatever the format, the number of worker processes or the granules' order (issue 11)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from icesat2sr.cli import main
from icesat2sr.engine import process_granule
from icesat2sr.formats.destination import write_results
from icesat2sr.formats.output import format_of
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms
from tests.formats.test_stream import assert_same_file
from tests.test_cli_outputs import _file_size_limit

CASES = [("atl06", '{"len": 40.0, "res": 10.0, "atl03_ph_fields": ["ph_id_count"]}', ".parquet", 2),
         ("atl06", '{"len": 40.0, "res": 20.0}', ".h5", 1),
         ("atl08", '{"phoreal": {"send_waveform": true}}', ".csv", 2),
         ("atl03s", '{"cnf": 3, "len": 40.0, "res": 20.0}', ".feather", 2)]


@pytest.mark.parametrize("kind, parms, suffix, workers", CASES)
def test_the_cli_file_equals_the_file_of_whole_results(synth_dir, synth_names, tmp_path, kind, parms, suffix,
                                                       workers):
    names = list(reversed(synth_names))   # the file follows the command line's order
    out = tmp_path / f"cli{suffix}"
    argv = [kind, *names, "--path", str(synth_dir), "--parms", parms, "-o", str(out), "-q", "--workers", str(workers)]
    assert main(argv) == 0
    request = Parms.from_dict(json.loads(parms) | {"asset": "atlas-local"})
    asset = resolve_asset("atlas-local", str(synth_dir))
    whole = [process_granule(asset, name, request, kind) for name in names]
    expected = tmp_path / f"whole{suffix}"
    write_results(whole, kind, expected, format_of(expected), request.to_dict(), names)
    assert_same_file(out, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, expected.name])   # no spill, no part


def test_a_failing_granule_is_left_out_of_a_discovered_request(synth_dir, synth_names, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    broken = synth_names[0]
    (data / broken).write_bytes((synth_dir / broken).read_bytes()[:200_000])   # fails once it is read
    out = tmp_path / "out.parquet"
    assert main(["atl06p", "--path", str(data), "--parms", '{"t0": "2000-01-01T00:00:00Z"}', "-o", str(out),
                 "-q"]) == 0
    assert broken in capsys.readouterr().err
    request = Parms.from_dict({"t0": "2000-01-01T00:00:00Z", "asset": "atlas-local"})
    whole = [process_granule(resolve_asset("atlas-local", str(synth_dir)), synth_names[1], request)]
    expected = tmp_path / "whole.parquet"
    write_results(whole, "atl06", expected, "geoparquet", request.to_dict(), synth_names)
    assert_same_file(out, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out.parquet", "whole.parquet"]


@pytest.mark.parametrize("command", ["atl06p", "atl08p"])
def test_a_failed_streamed_write_leaves_nothing(synth_dir, tmp_path, command):
    out = tmp_path / "out" / "result.parquet"
    out.parent.mkdir()
    parms = '{"t0": "2000-01-01T00:00:00Z", "len": 40.0, "res": 5.0}'
    proc = subprocess.run([sys.executable, "-m", "icesat2sr.cli", command, "--path", str(synth_dir), "--parms", parms,
                           "-o", str(out), "-q"], preexec_fn=_file_size_limit(60_000), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().endswith(f"error: cannot write {out}: File too large (the file size limit); "
                                        "nothing was written"), proc.stderr
    assert list(out.parent.iterdir()) == []   # neither the file, nor its part, nor a spill
