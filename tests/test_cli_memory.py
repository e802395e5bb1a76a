"""The CLI's peak memory does not grow with the granule's length, whatever the parameters (issue 11).

``{"len": 40, "res": 0.1}`` gives 200 elevations per 20 m segment: before streaming, the CLI held a
granule's whole result (in its worker and again while writing), so its peak grew with the
granule. Two granules four times apart in length are processed by the CLI in a subprocess; the
peak RSS of its whole process tree (the CLI and its worker processes, sampled from /proc) must
stay within a margin far below the growth that holding the rows would cost (before: +86 MB).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from icesat2sr.bench import process_tree
from icesat2sr.synth import GranuleSpec, granule_name, write_granule

SMALL, LARGE = 400, 1600           # segments: ~80,000 and ~320,000 elevations on one beam
HOSTILE = '{"len": 40, "res": 0.1, "beams": ["gt1l"]}'
MARGIN_MB = 40                     # the 240,000 extra rows held whole cost well over 100 MB


def _spec(segments: int) -> GranuleSpec:
    return GranuleSpec(segments=segments, seed=3, signal_rate=1.0, background_rate=3e5, gap=False, canopy=False,
                       zero_photon_segments=False, afterpulses=False, atl08=False)


@pytest.fixture(scope="module")
def granules(tmp_path_factory) -> dict[int, Path]:
    out = {}
    for segments in (SMALL, LARGE):
        d = tmp_path_factory.mktemp(f"seg{segments}")
        write_granule(d, _spec(segments))
        out[segments] = d / granule_name(_spec(segments))
    return out


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_peak_memory_of_a_hostile_request_does_not_grow_with_the_granule(granules, tmp_path):
    peaks = {}
    for segments, path in granules.items():
        out = tmp_path / f"out{segments}.parquet"
        run = process_tree([sys.executable, "-m", "icesat2sr.cli", "atl06", path.name, "--path", str(path.parent),
                            "--parms", HOSTILE, "-o", str(out), "-q"])
        assert run["returncode"] == 0, run["stderr"]
        assert pq.ParquetFile(out).metadata.num_rows > 150 * segments   # the rows are all there
        peaks[segments] = run["peak_rss_mb"]
    assert peaks[LARGE] - peaks[SMALL] < MARGIN_MB, peaks
