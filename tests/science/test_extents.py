"""Extents (SPEC §5): the vectorised walk equals a literal transcription of SlideRule's loop."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import icesat2sr.science.extents as extents_module
from icesat2sr.request.params import Parms
from icesat2sr.science.extents import (
    WalkState,
    assemble,
    background_rates,
    concat_extents,
    make_extents,
    run_beam,
    segment_runs,
    walk_window,
    window_segments,
)

from .beams import make_beam
from .reference_extents import reference_extents


@st.composite
def beams(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    m = draw(st.integers(1, 40))
    lengths = 20.0 + rng.normal(0, 0.02, m)
    if draw(st.booleans()):  # a jump in segment distance (two runs of a track, or a gap)
        lengths[rng.integers(0, m)] += rng.uniform(20, 2000)
    sdx = 1e6 + np.concatenate(([0.0], np.cumsum(lengths[:-1])))
    counts = rng.poisson(draw(st.floats(0, 15)), m)
    counts[rng.random(m) < 0.15] = 0
    disorder = draw(st.sampled_from([0.0, 0.0, 0.3, 3.0]))
    dpa = np.concatenate([np.sort(rng.uniform(0, 20, c)) + rng.normal(0, disorder, c) for c in counts]) \
        if counts.sum() else np.zeros(0)
    selected = rng.random(counts.sum()) < draw(st.floats(0.2, 1.0))
    return sdx, counts, dpa.astype(np.float32), selected


@st.composite
def extent_parms(draw):
    if draw(st.booleans()):
        return dict(len=float(draw(st.integers(1, 4))), res=float(draw(st.integers(1, 4))), dist_in_seg=True,
                    pass_invalid=draw(st.booleans()), ats=draw(st.sampled_from([0.0, 10.0, 20.0])),
                    cnt=draw(st.integers(0, 12)))
    return dict(len=draw(st.sampled_from([40.0, 20.0, 10.0, 33.3, 60.0])),
                res=draw(st.sampled_from([20.0, 10.0, 40.0, 5.5, 1.0])),
                pass_invalid=draw(st.booleans()), ats=draw(st.sampled_from([0.0, 5.0, 20.0])),
                cnt=draw(st.integers(0, 12)))


def _as_dicts(ext):
    return [{"counter": int(ext.counter[i]), "segment": int(ext.segment[i]), "segment_id": int(ext.segment_id[i]),
             "distance": float(ext.distance[i]), "valid": bool(ext.valid[i]),
             "photons": ext.photon[ext.offsets[i]:ext.offsets[i + 1]].tolist(),
             "x_rel": ext.x_rel[ext.offsets[i]:ext.offsets[i + 1]].tolist()} for i in range(len(ext))]


def _reference(beam, selected, p):
    return reference_extents(beam.segment_dist_x, beam.segment_ph_cnt, beam.segment_id, beam.dist_ph_along,
                             selected, length=p["len"], res=p["res"], dist_in_seg=p.get("dist_in_seg", False),
                             pass_invalid=p["pass_invalid"], ats=p["ats"], min_count=p["cnt"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(beams(), extent_parms())
def test_equals_literal_loop(beam_arrays, p):
    sdx, counts, dpa, selected = beam_arrays
    beam = make_beam(sdx, counts, dpa)
    assert _as_dicts(make_extents(beam, selected, Parms(**p))) == _reference(beam, selected, p)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(beams(), extent_parms())
def test_scalar_fallback_equals_literal_loop(beam_arrays, p):
    sdx, counts, dpa, selected = beam_arrays
    beam = make_beam(sdx, counts, dpa)
    original = extents_module._walk_vectorised
    extents_module._walk_vectorised = lambda *a: None
    try:
        got = _as_dicts(make_extents(beam, selected, Parms(**p)))
    finally:
        extents_module._walk_vectorised = original
    assert got == _reference(beam, selected, p)


def test_regular_track_counts_and_ids():
    # 10 segments of exactly 20 m, 20 photons each spread evenly: 40 m / 20 m extents
    counts = np.full(10, 20)
    dpa = np.tile(np.arange(20) + 0.5, 10)
    beam = make_beam(1e6 + 20.0 * np.arange(10), counts, dpa)
    ext = make_extents(beam, np.ones(200, dtype=bool), Parms())
    assert len(ext) == 9  # the last extent holds only one segment's 20 photons spread 19 m < ats
    assert ext.count.tolist() == [40] * 9
    assert np.allclose(ext.distance, 1e6 + 20.0 + 20.0 * np.arange(9))
    # centre segment id: first segment id + 0.5/20 + int(40/20/2) rounded
    assert ext.segment_id.tolist() == (1_000_000 + 1 + np.arange(9)).tolist()
    assert np.allclose(ext.x_rel[:40], np.arange(40) + 0.5 - 20.0)


def test_rejected_photons_still_advance_but_are_not_members():
    counts = np.full(4, 10)
    dpa = np.tile(np.arange(10) * 2.0, 4)
    selected = np.ones(40, dtype=bool)
    selected[::2] = False
    ext = make_extents(make_beam(1e6 + 20.0 * np.arange(4), counts, dpa), selected, Parms(cnt=1, ats=0))
    assert all(p % 2 == 1 for p in ext.photon)
    assert ext.count[0] == 10


def test_pass_invalid_keeps_counter_gaps():
    counts = np.array([20, 0, 0, 0, 0, 20])
    dpa = np.tile(np.arange(20) + 0.5, 2)
    beam = make_beam(1e6 + 20.0 * np.arange(6), counts, dpa)
    valid_only = make_extents(beam, np.ones(40, dtype=bool), Parms(cnt=5, ats=5))
    everything = make_extents(beam, np.ones(40, dtype=bool), Parms(cnt=5, ats=5, pass_invalid=True))
    assert len(everything) > len(valid_only)
    assert set(valid_only.counter.tolist()) <= set(everything.counter.tolist())
    assert (~everything.valid).sum() > 0


def test_empty_beam():
    ext = make_extents(make_beam([1e6], [0], []), np.zeros(0, dtype=bool), Parms())
    assert len(ext) == 0 and ext.offsets.tolist() == [0]


def test_background_interpolation():
    beam = make_beam(1e6 + 20.0 * np.arange(4), [1, 1, 1, 1], [1, 1, 1, 1], seg_time=[0.5, 1.0, 2.5, 9.0],
                     bckgrd_time=[1.0, 2.0, 3.0], bckgrd_rate=[100.0, 200.0, 400.0])
    # before the first sample: the first rate; at a sample: that rate; between: linear; after: the last
    rates, pointer = background_rates(beam, np.arange(4))
    assert rates.tolist() == [100.0, 100.0, 300.0, 400.0] and pointer == 3


def test_velocity_and_solar_elevation():
    counts = np.full(3, 20)
    beam = make_beam(1e6 + 20.0 * np.arange(3), counts, np.tile(np.arange(20) + 0.5, 3), velocity=(3.0, 4.0, 0.0))
    ext = make_extents(beam, np.ones(60, dtype=bool), Parms())
    assert ext.velocity.dtype == np.float32 and np.all(ext.velocity == 5.0)
    assert np.array_equal(ext.solar_elevation, beam.solar_elevation[ext.segment])


@pytest.mark.parametrize("res", [20.0, 7.0])
def test_first_extent_uses_segment_zero_even_if_empty(res):
    # SlideRule starts at segment 0 with its start distance; photon 0 may be in a later segment
    counts = np.array([0, 0, 15, 15])
    beam = make_beam(1e6 + 20.0 * np.arange(4), counts, np.tile(np.arange(15) + 2.0, 2))
    ext = make_extents(beam, np.ones(30, dtype=bool), Parms(cnt=1, ats=0, res=res, pass_invalid=True))
    assert ext.segment[0] == 0 and ext.counter[0] == 0


# --- resumable walks: chunks of a beam give the whole beam's extents ---------------------------

def walk_in_chunks(beam, selected, parms, cuts, look, budget):
    """Extents of a beam walked chunk by chunk (as the engine does), over windows of photons that
    start at each chunk's first photon and reach ``look`` segments past its end (more when needed)."""
    parts, counter, first_photon = [], 0, 0
    for s0, s1 in segment_runs(beam.segment_id):
        n_run = int(beam.segment_ph_cnt[s0:s1].sum())
        run = run_beam(beam, s0, s1, first_photon, first_photon + n_run)
        ends = np.cumsum(run.segment_ph_cnt, dtype=np.int64)
        m = s1 - s0
        edges = [c - s0 for c in cuts if s0 < c < s1] + [m]
        state, pointer = WalkState.initial(run.segment_dist_x, counter), 0
        for i, edge in enumerate(edges):
            final_chunk = i == len(edges) - 1
            if state.done or n_run == 0:
                break
            extra = look
            while True:
                end = m if final_chunk else min(m, edge + extra)
                pb = max(int(ends[end - 1]), state.first + 1)
                window = run_beam(run, 0, m, state.first, pb)
                walked = walk_window(window, state.first, state, Parms(**parms), final=pb >= n_run,
                                     boundary=None if final_chunk else edge)
                if walked is not None:
                    break
                extra *= 2
            walk, after = walked
            for a, b in walk.batches(budget):
                part, pointer = assemble(window, state.first, selected[first_photon + state.first:first_photon + pb],
                                         walk.take(a, b), Parms(**parms), pointer)
                part.photon += first_photon + state.first
                part.segment += s0
                parts.append(part)
            state = after
        counter = state.counter
        first_photon += n_run
    return concat_extents(parts, Parms(**parms).extent_length_m)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(beams(), extent_parms(), st.lists(st.integers(1, 39), max_size=6), st.integers(1, 4), st.integers(1, 400))
def test_chunked_walk_equals_whole_beam(beam_arrays, p, cuts, look, budget):
    sdx, counts, dpa, selected = beam_arrays
    beam = make_beam(sdx, counts, dpa)
    whole = make_extents(beam, selected, Parms(**p))
    chunked = walk_in_chunks(beam, selected, p, sorted(set(cuts)), look, budget)
    assert _as_dicts(chunked) == _as_dicts(whole)
    assert np.array_equal(chunked.background_rate, whole.background_rate)
    assert chunked.walked == whole.walked


def test_window_too_short_asks_for_more():
    counts = np.full(6, 20)
    beam = make_beam(1e6 + 20.0 * np.arange(6), counts, np.tile(np.arange(20) + 0.5, 6))
    state = WalkState.initial(beam.segment_dist_x)
    short = run_beam(beam, 0, 6, 0, 30)             # photons of 1.5 segments: a 40 m extent cannot end
    assert walk_window(short, 0, state, Parms(), final=False, boundary=1) is None
    walk, after = walk_window(run_beam(beam, 0, 6, 0, 80), 0, state, Parms(), final=False, boundary=1)
    assert len(walk) == 1 and after.first == 20 and after.counter == 1 and not after.done


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=14), st.integers(0, 60), st.integers(0, 60))
def test_window_segments_is_a_search_per_photon(counts, p0, n):
    """The segment of each photon of a window is the one a per-photon search finds (past the run: m)."""
    counts = np.array(counts, dtype=np.int32)
    ends = np.cumsum(counts, dtype=np.int64)
    want = np.searchsorted(ends, np.arange(p0, p0 + n, dtype=np.int64), side="right")
    got = window_segments(counts, p0, n)
    assert got.dtype == np.int64 and np.array_equal(got, want)
