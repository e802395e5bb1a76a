"""Streamed photon output: rows released in the whole granule's time order, files equal to whole-frame files."""

from __future__ import annotations

import itertools
from pathlib import Path

import geopandas as gpd
import h5py
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icesat2sr.engine import empty_result, iter_granule, process_granule
from icesat2sr.formats.destination import write_results
from icesat2sr.formats.output import OutputWriter, format_of
from icesat2sr.formats.stream import OrderedOutput, Spill, TimeOrder
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms
from icesat2sr.science.records import EXTENT, PHOTON, GranuleResult


def _part(times: np.ndarray, beam: int, first: int = 0) -> GranuleResult:
    """A partial atl03s result: one extent per photon, photon times as given, photons numbered from ``first``."""
    n = len(times)
    extents = np.zeros(n, EXTENT)
    extents["count"], extents["track"], extents["pair"] = 1, beam // 2 + 1, beam % 2
    photons = np.zeros(n, PHOTON)
    photons["time"] = times
    photons["height"] = np.arange(first, first + n, dtype=np.float32) + 1000 * beam     # who is who
    return GranuleResult("g", "atl03s", extents=extents, photons=photons, offsets=np.arange(n + 1))


@st.composite
def streams(draw):
    """Beams of non-decreasing times (with ties within and across beams) cut into parts at random."""
    beams = draw(st.integers(1, 4))
    out = []
    for _b in range(beams):
        times = np.sort(np.array(draw(st.lists(st.integers(0, 30), max_size=40)), dtype=np.int64))
        cuts = sorted(draw(st.lists(st.integers(0, len(times)), max_size=4)))
        pieces = np.split(times, cuts)
        out.append([(p, int(pieces[i + 1:][0][0]) if i + 1 < len(pieces) and len(pieces[i + 1]) else None)
                    for i, p in enumerate(pieces)])
    return out


@settings(max_examples=200, deadline=None)
@given(streams(), st.integers(1, 9))
def test_time_order_equals_a_stable_sort_of_the_whole(beams, block):
    # parts come beam after beam within a round, rounds in order (as iter_granule yields them);
    # rows are released in blocks of at most ``block`` rows
    queue = [(b, i) for i in range(max(len(p) for p in beams)) for b in range(len(beams)) if i < len(beams[b])]
    order = TimeOrder(len(beams), block=block)
    released = []
    for b, i in queue:
        times, _ = beams[b][i]
        rest = np.concatenate([t for t, _ in beams[b][i + 1:]] or [np.zeros(0, np.int64)])
        horizon = int(rest.min()) if rest.size else np.iinfo(np.int64).max
        first = sum(len(t) for t, _ in beams[b][:i])
        released += order.push(_part(times, b, first), b, horizon)
    released += order.flush()
    assert all(0 < len(rows) <= block for rows in released)
    whole = [_part(np.concatenate([t for t, _ in parts]), b) for b, parts in enumerate(beams)]
    photons = np.concatenate([w.photons for w in whole])
    expect = np.argsort(photons["time"], kind="stable")
    got_time = np.concatenate([r.time_ns for r in released] or [np.zeros(0, np.int64)])
    got_height = np.concatenate([r.columns["height"] for r in released] or [np.zeros(0, np.float32)])
    assert np.array_equal(got_time, photons["time"][expect])
    assert np.array_equal(got_height, photons["height"][expect])


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".h5", ".feather"])
@pytest.mark.parametrize("spill", [False, True])
def test_streamed_file_equals_the_whole_result_file(synth_dir, synth_names, tmp_path, suffix, spill):
    asset = resolve_asset("atlas-local", str(synth_dir))
    parms = Parms.from_dict({"cnf": 3, "len": 40.0, "res": 20.0})
    whole = process_granule(asset, synth_names[0], parms, "atl03s")
    fmt = format_of(f"x{suffix}")
    write_results([whole], "atl03s", tmp_path / f"whole{suffix}", fmt, parms.to_dict(), [synth_names[0]])
    order = None
    held = Spill(tmp_path / "x") if spill else None
    with OutputWriter(tmp_path / f"streamed{suffix}", fmt, kind="atl03s", parms=parms.to_dict(),
                      granules=[synth_names[0]]) as writer:
        def emit(blocks):
            for rows in blocks:
                table = writer.rows_table(rows.time_ns, rows.columns, rows.lon, rows.lat)
                held.add(table) if held else writer.add_table(table)
        for part in iter_granule(asset, synth_names[0], parms, "atl03s", chunk_photons=4000):
            order = order or TimeOrder(part.beams)
            emit(order.push(part.result, part.beam, part.horizon_ns))
        emit(order.flush())
        for table in held.tables() if held else ():
            writer.add_table(table)
    assert not list(tmp_path.glob("*.spill"))
    assert_same_file(tmp_path / f"streamed{suffix}", tmp_path / f"whole{suffix}")


def assert_same_file(a: Path, b: Path) -> None:
    """Two result files hold the same rows, columns, values and metadata."""
    suffix = a.suffix
    if suffix == ".csv":
        assert a.read_text() == b.read_text()
    elif suffix == ".h5":
        with h5py.File(a) as f, h5py.File(b) as g:
            assert set(f) == set(g) and dict(f.attrs) == dict(g.attrs)
            for k in f:
                assert f[k].dtype == g[k].dtype, k
                x, y = f[k][()], g[k][()]
                if x.dtype == object:   # variable-length arrays
                    assert len(x) == len(y) and all(np.array_equal(u, v) for u, v in zip(x, y, strict=True)), k
                else:
                    assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), k
    elif suffix == ".feather":
        import pyarrow.feather as feather
        assert feather.read_table(a).equals(feather.read_table(b))
    else:
        import pyarrow.parquet as pq
        assert pq.read_table(a).equals(pq.read_table(b))
        assert pq.read_schema(a).metadata == pq.read_schema(b).metadata
        x, y = gpd.read_parquet(a), gpd.read_parquet(b)
        pd.testing.assert_frame_equal(pd.DataFrame(x.drop(columns="geometry")),
                                      pd.DataFrame(y.drop(columns="geometry")))
        assert x.geometry.geom_equals(y.geometry).all() and x.crs == y.crs


REQUESTS = [   # kind, parameters: elevations with ancillary fields, compact, PhoREAL with waveforms, no rows
    ("atl06", {"len": 40.0, "res": 20.0, "atl03_ph_fields": ["ph_id_count"], "atl08_fields": ["segment_landcover"]}),
    ("atl06", {"len": 40.0, "res": 10.0, "compact": True}),
    ("atl08", {"phoreal": {"send_waveform": True}}),
    ("atl06", {"cnt": 1000, "atl03_ph_fields": ["ph_id_count"]}),
]


@pytest.mark.parametrize("kind, request_parms", REQUESTS)
@pytest.mark.parametrize("chunk_photons", [3000, 50_000])
def test_ordered_output_equals_the_file_of_whole_results(synth_dir, synth_names, tmp_path, kind, request_parms,
                                                         chunk_photons):
    """Two granules' parts, interleaved, a failed third granule in between: the file of whole results,
    in every format."""
    asset = resolve_asset("atlas-local", str(synth_dir))
    parms = Parms.from_dict(request_parms)
    whole = [process_granule(asset, name, parms, kind) for name in synth_names]
    order = [synth_names[1], "failed", synth_names[0]]
    streams = {name: list(iter_granule(asset, name, parms, kind, chunk_photons=chunk_photons)) for name in synth_names}
    streams["failed"] = streams[synth_names[0]][:3]
    for suffix in (".parquet", ".csv", ".h5", ".feather"):
        fmt = format_of(f"x{suffix}")
        write_results(whole, kind, tmp_path / f"whole{suffix}", fmt, parms.to_dict(), order)
        with OutputWriter(tmp_path / f"streamed{suffix}", fmt, kind=kind, parms=parms.to_dict(), granules=order) as w:
            out = OrderedOutput(w, order, atomic=True, empty=lambda name: empty_result(name, parms, kind))
            for parts in itertools.zip_longest(*streams.values()):   # round robin: granules arrive interleaved
                for name, part in zip(streams, parts, strict=True):
                    if part is not None:
                        out.part(name, part.result, part.beam, part.horizon_ns, part.beams)
            for name in reversed(order):   # the last granule ends first: it waits for the others
                out.end(name, failed=name == "failed")
            out.close()
        assert not list(tmp_path.glob(".*"))   # no spill file left
        assert_same_file(tmp_path / f"streamed{suffix}", tmp_path / f"whole{suffix}")


def test_the_running_granule_writes_straight_through_when_not_atomic(synth_dir, synth_names, tmp_path):
    asset = resolve_asset("atlas-local", str(synth_dir))
    parms = Parms.from_dict({"len": 40.0, "res": 20.0})
    write_results([process_granule(asset, n, parms) for n in synth_names], "atl06", tmp_path / "whole.feather",
                  "feather", parms.to_dict(), synth_names)
    with OutputWriter(tmp_path / "streamed.feather", "feather", kind="atl06", parms=parms.to_dict()) as w:
        out = OrderedOutput(w, synth_names, atomic=False)
        spilled = []
        for name in synth_names:
            for part in iter_granule(asset, name, parms, chunk_photons=3000):
                out.part(name, part.result, part.beam, part.horizon_ns, part.beams)
                spilled.append(bool(list(tmp_path.glob(".*.spill"))))
            out.end(name)
        out.close()
    assert not any(spilled)
    assert_same_file(tmp_path / "streamed.feather", tmp_path / "whole.feather")


def test_a_dropped_spill_leaves_nothing(tmp_path):
    held = Spill(tmp_path / "out.parquet")
    import pyarrow as pa
    held.add(pa.table({"a": [1, 2]}))
    held.drop()
    assert list(tmp_path.iterdir()) == []
