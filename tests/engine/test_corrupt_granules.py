"""Corrupt granules fail fast: truncations and flipped bytes end in a clear per-granule error or in
correct output, never in a hang, a crash or garbage rows (issue 10, item 2).

The clean run records every byte range the HDF5 reader asks for, which tells the bytes that matter
(superblock, object headers, B-trees and heaps: small reads; chunk data: large reads) from the
bytes nothing reads (a flip there must leave the output unchanged).
"""

from __future__ import annotations

import collections
import datetime as dt

import numpy as np
import pytest

from icesat2sr.batch import run_many
from icesat2sr.engine import process_granule
from icesat2sr.granules import h5read
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms
from icesat2sr.synth import GranuleSpec, write_granule

TIME_LIMIT_S = 30.0          # per granule; a clean run of this granule takes ~0.2 s
METADATA_READ = 64           # bytes: reads up to this size are headers, B-tree nodes, heaps
NAME_FIELDS = ("rgt", "extent_id")   # the cases differ in rgt only (their file names)
SANE = {"latitude": (-90, 90), "longitude": (-180, 180), "h_mean": (-20000, 20000),
        "delta_time": (0, 1e10), "x_atc": (0, 5e7), "y_atc": (-1e5, 1e5)}


def _name(i: int) -> str:
    return f"ATL03_20210601120000_{i:04d}0512_006_01.h5"


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory):
    """A small granule, its clean result, the byte ranges read, and >= 50 truncations and flips."""
    clean_dir = tmp_path_factory.mktemp("clean")
    write_granule(clean_dir, GranuleSpec(segments=100, atl08=False, seed=3,
                                         start=dt.datetime(2021, 6, 1, 12, tzinfo=dt.UTC)))
    source = next(clean_dir.glob("ATL03_*.h5"))
    raw = source.read_bytes()
    reads: list[tuple[int, int]] = []
    original = h5read._BoundedH5Coro.ioRequest

    def recording(self, pos, size, caching=True, prefetch=False):
        reads.append((pos + self.baseAddress, size))
        return original(self, pos, size, caching, prefetch)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(h5read._BoundedH5Coro, "ioRequest", recording)
        clean = process_granule(resolve_asset("atlas-local", str(clean_dir)), source.name, Parms())
    assert clean.error is None and len(clean.elevations) > 100
    used = np.zeros(len(raw), dtype=bool)
    for pos, size in reads:
        used[pos:pos + size] = True
    metadata = np.unique(np.concatenate([np.arange(p, p + s) for p, s in reads if s <= METADATA_READ]))
    chunks = np.flatnonzero(used & ~np.isin(np.arange(len(raw)), metadata))
    last_used = max(p + s for p, s in reads)

    rng = np.random.default_rng(10)
    folder = tmp_path_factory.mktemp("corrupt")
    cases: dict[str, tuple[str, int, bool]] = {}   # name -> (kind, offset, touches used bytes)
    cuts = {0, 1, 8, 9, 48, 100, 512, 1000, 2048, 4096, len(raw) - 1, last_used - 1, last_used}
    cuts |= set(np.geomspace(5000, len(raw) - 2, 45).astype(int).tolist())
    for cut in sorted(cuts):
        name = _name(len(cases) + 1)
        (folder / name).write_bytes(raw[:cut])
        cases[name] = ("truncate", cut, cut < last_used)
    picks = [("flip header", x) for x in rng.choice(np.flatnonzero(used[:2048]), 15, replace=False)]
    picks += [("flip metadata", x) for x in rng.choice(metadata[metadata >= 2048], 25, replace=False)]
    picks += [("flip chunk", x) for x in rng.choice(chunks, 12, replace=False)]
    picks += [("flip unused", x) for x in rng.choice(np.flatnonzero(~used), 13, replace=False)]
    for kind, x in picks:
        data = bytearray(raw)
        data[x] ^= 0xFF
        name = _name(len(cases) + 1)
        (folder / name).write_bytes(bytes(data))
        cases[name] = (kind, int(x), bool(used[x]))
    return folder, cases, clean


def _same(rows: np.ndarray, clean: np.ndarray) -> bool:
    return len(rows) == len(clean) and all(
        np.array_equal(rows[f], clean[f], equal_nan=True) for f in clean.dtype.names if f not in NAME_FIELDS)


def test_truncated_and_flipped_granules_fail_fast_or_read_right(fuzz):
    folder, cases, clean = fuzz
    kinds = collections.Counter(kind.split()[0] for kind, _, _ in cases.values())
    assert kinds["truncate"] >= 50 and kinds["flip"] >= 50
    outcomes = collections.Counter()
    for result in run_many(resolve_asset("atlas-local", str(folder)), list(cases), Parms(), workers=2,
                           timeout=TIME_LIMIT_S):
        kind, offset, touches = cases[result.granule]
        where = f"{kind} at {offset}"
        if result.error:
            message = result.error[1]
            assert "took longer" not in message and "died" not in message, where   # no hang, no crash
            assert "internal error" not in message and "\n" not in message, where
            assert message.startswith(f"{result.granule}: "), where
            assert touches, f"{where}: unread bytes changed and the granule failed: {message}"
            outcomes[(kind, "error")] += 1
            continue
        rows = result.elevations
        if _same(rows, clean.elevations):
            outcomes[(kind, "same")] += 1
            continue
        assert touches, f"{where}: nothing read changed, yet the rows differ"
        assert kind != "truncate", f"{where}: a truncated file gave rows"
        for field, (lo, hi) in SANE.items():   # a changed value, never garbage
            values = rows[field][np.isfinite(rows[field])]
            assert ((values >= lo) & (values <= hi)).all(), f"{where}: {field} out of range"
        outcomes[(kind, "changed")] += 1
    print(dict(sorted(outcomes.items())))
    assert sum(outcomes.values()) == len(cases)
    assert outcomes[("flip unused", "same")] == 13
