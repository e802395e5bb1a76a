"""Along-track chunks: a granule processed in chunks of any size equals it processed whole, row for row.

The whole-beam path (one chunk per beam) is checked against straightforward references elsewhere
(tests/science: extents, fit, YAPC, the ATL08 join); here chunk sizes, extent lengths and steps,
``dist_in_seg``, ``pass_invalid``, polygons, YAPC windows and ATL08 classes vary together.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from icesat2sr import engine
from icesat2sr.engine import iter_granule, process_granule
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.request.params import Parms

from ..conftest import HARMONY_NAME

BEAMS = ["gt1l", "gt2r"]


def same(a, b) -> bool:
    """Equal tables (structured arrays compared field by field, NaN equal to NaN)."""
    if a is None or b is None:
        return a is b
    if a.dtype.names is None:
        return a.dtype == b.dtype and np.array_equal(a, b)
    return a.dtype == b.dtype and len(a) == len(b) and all(
        np.array_equal(a[n], b[n], equal_nan=a[n].dtype.kind == "f") for n in a.dtype.names)


def assert_same_result(got, want) -> None:
    assert got.error == want.error
    for table in ("elevations", "extents", "photons", "offsets"):
        assert same(getattr(got, table), getattr(want, table)), table
    assert (got.ancillary is None) == (want.ancillary is None)
    for key in want.ancillary or {}:
        assert np.array_equal(got.ancillary[key], want.ancillary[key], equal_nan=True), key


@pytest.fixture(scope="module")
def box(synth_dir, synth_names):
    """A polygon around segments 150..420 of gt1l of the first granule."""
    with h5py.File(synth_dir / synth_names[-1]) as f:
        lat = f["gt1l/geolocation/reference_photon_lat"][150:420]
        lon = f["gt1l/geolocation/reference_photon_lon"][150:420]
    pad = 0.01
    return [{"lon": lon.min() - pad, "lat": lat.min()}, {"lon": lon.max() + pad, "lat": lat.min()},
            {"lon": lon.max() + pad, "lat": lat.max()}, {"lon": lon.min() - pad, "lat": lat.max()}]


@st.composite
def requests(draw):
    if draw(st.booleans()):
        parms = {"dist_in_seg": True, "len": float(draw(st.integers(1, 4))), "res": float(draw(st.integers(1, 3)))}
    else:
        parms = {"len": draw(st.sampled_from([40.0, 20.0, 10.0, 73.5])),
                 "res": draw(st.sampled_from([20.0, 10.0, 40.0, 3.5, 0.7]))}
    parms.update(cnf=draw(st.sampled_from([0, 1, 3])), cnt=draw(st.sampled_from([0, 5, 10])),
                 ats=draw(st.sampled_from([0.0, 20.0])), pass_invalid=draw(st.booleans()), beams=BEAMS)
    extra = draw(st.sampled_from(["", "", "yapc3", "yapc2", "yapc1", "atl08", "poly"]))
    if extra.startswith("yapc"):
        version = int(extra[-1])
        parms["yapc"] = {"score": draw(st.integers(0, 200)), "version": version, "knn": draw(st.sampled_from([0, 4])),
                         "win_h": draw(st.sampled_from([3.0, 6.0])),
                         "win_x": draw(st.sampled_from([5.0, 15.0, 60.0]))}
    elif extra == "atl08":
        parms["atl08_class"] = ["atl08_ground", "atl08_canopy", "atl08_top_of_canopy"]
    return parms, extra == "poly", draw(st.sampled_from(["atl06", "atl03s"]))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(requests(), st.integers(2_000, 40_000), st.integers(1, 2))
def test_chunked_equals_whole(synth_dir, synth_names, box, request_, chunk, workers):
    parms, poly, kind = request_
    if poly:
        parms = {**parms, "poly": box}
    asset = resolve_asset("atlas-local", str(synth_dir))
    p = Parms.from_dict(parms)
    whole = process_granule(asset, synth_names[-1], p, kind)
    chunked = process_granule(asset, synth_names[-1], p, kind, workers=workers, chunk_photons=chunk)
    assert whole.error is None
    assert_same_result(chunked, whole)


@pytest.mark.parametrize("parms", [{"srt": 1, "cnf": 0},
                                   {"srt": 1, "cnf": 0, "len": 20.0, "res": 0.5, "cnt": 2, "ats": 5.0},
                                   {"srt": 1, "cnf": 0, "dist_in_seg": True, "len": 2, "res": 1, "pass_invalid": True}])
@pytest.mark.parametrize("kind", ["atl06", "atl03s"])
def test_subsetted_real_granule_in_chunks(real_dir, parms, kind):
    """The harmony clip holds runs of segments far apart (a subsetted granule): chunks cross them."""
    asset = resolve_asset("atlas-local", str(real_dir))
    whole = process_granule(asset, HARMONY_NAME, Parms.from_dict(parms), kind)
    assert whole.error is None and whole.rows > 0
    for chunk in (500, 3000):
        assert_same_result(process_granule(asset, HARMONY_NAME, Parms.from_dict(parms), kind, chunk_photons=chunk),
                           whole)


def test_ancillary_fields_in_chunks(synth_dir, synth_names):
    parms = Parms.from_dict({"cnf": 1, "beams": BEAMS, "atl03_ph_fields": ["h_ph", "ph_id_count"],
                             "atl03_geo_fields": ["dem_h", "surf_type"], "atl03_bckgrd_fields": ["bckgrd_counts"],
                             "atl08_fields": ["h_dif_ref%", "segment_landcover"]})
    asset = resolve_asset("atlas-local", str(synth_dir))
    for kind in ("atl06", "atl03s"):
        whole = process_granule(asset, synth_names[-1], parms, kind)
        assert whole.ancillary and whole.rows > 0
        assert_same_result(process_granule(asset, synth_names[-1], parms, kind, chunk_photons=700), whole)


def test_batches_hold_a_bounded_number_of_photon_entries(synth_dir, synth_names, monkeypatch):
    """A fine step multiplies extents, not memory: each fitted batch holds at most BATCH_ENTRIES
    photon entries (or one extent), and each chunk reads a bounded window of photons."""
    monkeypatch.setattr(engine.chunks, "BATCH_ENTRIES", 20_000)
    seen, windows = [], []
    step = engine.KIND_STEPS["atl06"]
    read = engine._Window.read

    def spy(chunk):
        seen.append((len(chunk.extents.photon), int(np.diff(chunk.extents.offsets).max(initial=0))))
        return step(chunk)

    def read_spy(task, a, b):
        windows.append(b - a)
        return read(task, a, b)

    monkeypatch.setitem(engine.KIND_STEPS, "atl06", spy)
    monkeypatch.setattr(engine._Window, "read", staticmethod(read_spy))
    asset = resolve_asset("atlas-local", str(synth_dir))
    parms = Parms.from_dict({"cnf": 0, "len": 40.0, "res": 0.25, "cnt": 5, "beams": ["gt1l"]})
    result = process_granule(asset, synth_names[-1], parms)
    assert result.error is None and result.rows > 10_000
    assert len(seen) > 5 and all(entries <= 20_000 or entries == largest for entries, largest in seen)
    chunk = engine.chunks._chunk_photons(parms)
    assert chunk < engine.CHUNK_PHOTONS                     # a fine step makes chunks smaller
    assert max(windows) <= chunk + 2000                     # a chunk and its look-ahead


def test_parts_stream_in_order_with_horizons(synth_dir, synth_names):
    """Parts come chunk by chunk, beams in turn; a beam's later parts never hold earlier photons."""
    asset = resolve_asset("atlas-local", str(synth_dir))
    parms = Parms.from_dict({"cnf": 2})
    parts = list(iter_granule(asset, synth_names[-1], parms, "atl03s", chunk_photons=5000))
    assert all(p.result.error is None for p in parts) and len({p.beam for p in parts}) == 6
    first_seen = [p.beam for p in parts][:6]
    assert first_seen == list(range(6))                     # every beam's first chunk comes first
    for beam in range(6):
        mine = [p for p in parts if p.beam == beam]
        assert [p.seq for p in mine] == sorted(p.seq for p in mine)
        for i, part in enumerate(mine[:-1]):
            later = [q.result.photons["time"] for q in mine[i + 1:] if q.result.rows]
            if later:
                assert min(t.min() for t in later) >= part.horizon_ns
        assert mine[-1].horizon_ns == np.iinfo(np.int64).max
