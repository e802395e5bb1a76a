"""YAPC scores (SPEC §4.4): version 3 against a photon-by-photon reference, v1/2, dispatch."""

from __future__ import annotations

import dataclasses
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icesat2sr.request.errors import ResourceError
from icesat2sr.request.params import Yapc
from icesat2sr.science import yapc as yapc_mod
from icesat2sr.science.yapc import yapc_scores, yapc_v2, yapc_v3

from .beams import make_beam
from .reference_yapc import reference_yapc_v2, reference_yapc_v3

F32 = np.float32
# heights where float32 and float64 arithmetic disagree, and window edges (win_h 0.2 / 6 / 6.2)
TRICKY_H = [0.0, float(F32(2.0 ** -23)), float(F32(0.1)), float(F32(3.0000002)), 1.0, float(F32(3.1)),
            float(F32(-3.1)), 3.0, -3.0, 0.5]


def v3(sdx, counts, dpa, h, win_x=15.0, win_h=6.0, min_knn=5, **kw) -> list[int]:
    out = yapc_v3(np.asarray(sdx, np.float64), np.asarray(counts, np.int32), np.asarray(dpa, F32),
                  np.asarray(h, F32), win_x=win_x, win_h=win_h, min_knn=min_knn, **kw)
    assert out.dtype == np.uint8 and out.shape == (len(h),)
    return out.tolist()


# ---------------------------------------------------------------------- hand-checked cases
def test_two_photons_hand_computed():
    # n = 1 each, knn = min_knn = 5, w = hWZ - p, K_s = 5: score = (w / (3 * 5)) * 255
    assert v3([0.0], [2], [0.0, 1.0], [0.0, 0.0]) == [51, 51]
    assert v3([0.0], [2], [0.0, 1.0], [0.0, 1.0]) == [34, 34]
    assert v3([0.0], [2], [0.0, 1.0], [0.0, 0.0], min_knn=1) == [255, 255]


def test_window_edges():
    # dx <= hWX is inside; |dh| <= hWZ is inside
    assert v3([0.0], [2], [0.0, 7.5], [0.0, 0.0]) == [51, 51]
    assert v3([0.0], [2], [0.0, 7.75], [0.0, 0.0]) == [0, 0]
    assert v3([0.0], [2], [0.0, 1.0], [0.0, 3.0]) == [0, 0]       # p = hWZ: in, but weight 0
    assert v3([0.0], [2], [0.0, 1.0], [0.0, 2.5], win_x=1.0) == [0, 0]
    assert v3([0.0], [2], [0.0, 1.0], [0.0, 2.5], win_h=4.0) == [0, 0]
    assert v3([0.0], [2], [0.0, 1.0], [0.0, 1.5], win_h=4.0) == [12, 12]  # (0.5 / 10) * 255


def test_neighbours_across_segments_use_segment_dist_x():
    # same dist_ph_along, but the segments are 20 m apart: not neighbours
    assert v3([0.0, 20.0], [1, 1], [1.0, 1.0], [0.0, 0.0]) == [0, 0]
    assert v3([0.0, 20.0], [1, 1], [19.0, 1.0], [0.0, 0.0]) == [51, 51]


def test_scan_stops_after_dx_reaches_half_window_plus_one():
    # file order x = 0, 9, 1: photon 0's forward scan stops at x = 9 and never sees x = 1;
    # photon 2 looks back through x = 9 (dx = -8 counts as inside) and finds x = 0
    h = [0.0, 0.0, 0.0]
    assert v3([0.0], [3], [0.0, 9.0, 1.0], h, min_knn=1) == [0, 255, 255]
    # a gap in [hWX, hWX + 1) does not stop the scan
    assert v3([0.0], [3], [0.0, 8.0, 1.0], h, min_knn=1) == [255, 255, 255]


def test_knn_normalised_per_segment():
    # segment 0: a dense cluster (large knn); segment 1: a photon with one neighbour
    n = 40
    dpa = np.r_[np.linspace(0.0, 5.0, n), [19.0]]
    h = np.zeros(n + 1)
    sdx = [0.0, 100.0]
    out = v3(sdx, [n, 0], dpa[:n], h[:n])
    # every photon of the cluster has 39 neighbours at p = 0: knn = 6, w = 6 * 3, K = 6
    assert out == [255] * n
    two = v3([0.0, 100.0], [n, 2], np.r_[dpa[:n], [1.0, 2.0]], np.zeros(n + 2))
    assert two[:n] == [255] * n and two[n:] == [51, 51]   # K of segment 1 is min_knn


def test_float32_height_difference_as_in_slideRule():
    # photon 0 at h = 2^-23 has three neighbours at p = 0.5 and one at h = 3.0000002f:
    # float32 |dh| rounds to 3.0 <= hWZ (n = 4, knn 2); in float64 it would be outside (knn 1)
    h = [2.0 ** -23, 0.5 + 2.0 ** -23, 0.5 + 2.0 ** -23, 0.5 + 2.0 ** -23, 3.0000002]
    dpa = [0.0, 0.1, 0.2, 0.3, 0.4]
    out = v3([0.0], [5], dpa, h, min_knn=1)
    assert out == reference_yapc_v3([0.0], [5], dpa, h, 15.0, 6.0, 1)
    assert out[0] == 212     # (2 * 2.5 / (3 * 2)) * 255; float64 would give knn 1: 106


def test_height_window_not_representable_in_float32():
    # win_h = 0.2: hWZ = 0.1 < float32(0.1), so |dh| = float32(0.1) is outside
    assert v3([0.0], [2], [0.0, 1.0], [0.0, float(F32(0.1))], win_h=0.2, min_knn=1) == [0, 0]
    assert v3([0.0], [2], [0.0, 1.0], [0.0, 0.05], win_h=0.2, min_knn=1) == [127, 127]


def test_empty_and_single_photon_beams():
    assert v3([], [], [], []) == []
    assert v3([0.0], [0], [], []) == []
    assert v3([0.0], [1], [3.0], [5.0]) == [0]
    # photons past the segments' counts are nobody's neighbours and score 0
    assert v3([0.0], [2], [0.0, 1.0, 1.5], [0.0, 0.0, 0.0]) == [51, 51, 0]


def test_invalid_settings():
    with pytest.raises(ValueError):
        v3([0.0], [1], [0.0], [0.0], win_h=0.0)
    with pytest.raises(ValueError):
        v3([0.0], [1], [0.0], [0.0], min_knn=0)


# ---------------------------------------------------------------------- against the reference
@st.composite
def small_beams(draw):
    m = draw(st.integers(0, 6))
    counts = draw(st.lists(st.integers(0, 14), min_size=m, max_size=m))
    n = sum(counts) + draw(st.integers(0, 2))
    start = draw(st.floats(-1e6, 1e7, allow_nan=False))
    gaps = draw(st.lists(st.floats(0.0, 30.0), min_size=m, max_size=m))
    sdx = start + np.cumsum(gaps)
    if m and draw(st.booleans()):
        sdx = sdx[draw(st.permutations(range(m)))]            # segments out of order
    x_pool = st.one_of(st.floats(-2.0, 22.0, width=32), st.sampled_from([0.0, 0.5, 7.5, 8.5, 20.0]))
    dpa = draw(st.lists(x_pool, min_size=n, max_size=n))     # duplicates and disorder included
    h_pool = st.one_of(st.floats(-4.0, 4.0, width=32), st.sampled_from(TRICKY_H))
    h = draw(st.lists(h_pool, min_size=n, max_size=n))
    win_x = draw(st.sampled_from([1.0, 3.0, 15.0, 16.5]))
    win_h = draw(st.sampled_from([0.2, 1.0, 6.0, 6.2]))
    min_knn = draw(st.integers(1, 7))
    chunk = draw(st.integers(1, 50))
    return sdx, np.array(counts, np.int32), np.array(dpa, F32), np.array(h, F32), win_x, win_h, min_knn, chunk


# dense default; always one photon at a time; a tiny dense part and pruning
MODES = {
    "dense": {"_SPARSE_BELOW": yapc_mod._SPARSE_BELOW},
    "sparse": {"_SPARSE_BELOW": 1.01, "_MAX_PAIRS": 3},
    "mixed": {"_SPARSE_BELOW": 0.5, "_MAX_DENSE": 2, "_MAX_PAIRS": 1},
}


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=120, deadline=None)
@given(beam=small_beams())
def test_v3_equals_reference(mode, beam):
    sdx, counts, dpa, h, win_x, win_h, min_knn, chunk = beam
    with mock.patch.multiple(yapc_mod, **MODES[mode]):
        out = v3(sdx, counts, dpa, h, win_x, win_h, min_knn, chunk=chunk)
    assert out == reference_yapc_v3(sdx, counts, dpa, h, win_x, win_h, min_knn)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), reverse=st.booleans())
def test_v3_equals_reference_on_noisy_surface(seed, reverse):
    sdx, counts, dpa, h, _ = _surface_beam(seed, segments=4, signal=3, noise=2)
    if reverse:  # the whole beam in reverse file order: scans never stop backwards
        dpa, h = dpa[::-1].copy(), h[::-1].copy()
    assert v3(sdx, counts, dpa, h, chunk=64) == reference_yapc_v3(sdx, counts, dpa, h, 15.0, 6.0, 5)


# ---------------------------------------------------------------------- behaviour
def _surface_beam(seed: int, segments: int, signal: int, noise: int, band: float = 60.0):
    """Shots every 0.7 m: ``signal`` photons in a 0.1 m surface, ``noise`` uniform in ``band``."""
    rng = np.random.default_rng(seed)
    shots = int(segments * 20 / 0.7)
    x = np.repeat(0.7 * np.arange(shots), signal + noise)
    truth = np.tile(np.r_[np.ones(signal, bool), np.zeros(noise, bool)], shots)
    h = np.where(truth, 100.0 + rng.uniform(-0.05, 0.05, len(x)), 100.0 + rng.uniform(-band / 2, band / 2, len(x)))
    seg = np.minimum((x // 20.0).astype(np.int64), segments - 1)
    counts = np.bincount(seg, minlength=segments).astype(np.int32)
    sdx = 5.0e6 + 20.0 * np.arange(segments)
    dpa = (x - 20.0 * seg).astype(F32)
    return sdx, counts, dpa, h.astype(F32), truth


def test_dense_surface_scores_high_and_noise_low():
    sdx, counts, dpa, h, truth = _surface_beam(7, segments=60, signal=4, noise=3)
    score = np.asarray(v3(sdx, counts, dpa, h))
    assert np.median(score[truth]) >= 220
    assert np.median(score[~truth]) <= 100
    far = ~truth & (np.abs(h - 100.0) > 3.0)        # noise away from the surface
    assert np.percentile(score[far], 90) < np.percentile(score[truth], 5)


def test_window_and_min_knn_effects():
    sdx, counts, dpa, h, truth = _surface_beam(8, segments=20, signal=4, noise=3)
    base = np.asarray(v3(sdx, counts, dpa, h))
    # a height window thinner than the noise band but wider than the surface: noise drops
    thin = np.asarray(v3(sdx, counts, dpa, h, win_h=1.0))
    assert np.mean(thin[~truth]) < np.mean(base[~truth])
    assert np.median(thin[truth]) >= 200
    # min_knn above every photon's neighbour count (~100 here): all neighbours are summed but
    # the normaliser is 200, so even the surface cannot come near 255
    big = np.asarray(v3(sdx, counts, dpa, h, min_knn=200))
    assert big.max() < 160 and np.median(big[truth]) < np.median(base[truth]) - 80
    # a narrower along-track window sees fewer neighbours: knn shrinks, surface still wins
    narrow = np.asarray(v3(sdx, counts, dpa, h, win_x=3.0))
    assert np.median(narrow[truth]) > np.median(narrow[~truth])


def test_chunking_does_not_change_scores():
    sdx, counts, dpa, h, _ = _surface_beam(9, segments=10, signal=4, noise=3)
    assert v3(sdx, counts, dpa, h, chunk=97) == v3(sdx, counts, dpa, h)


# ---------------------------------------------------------------------- versions 1/2
def v2(counts, dpa, h, knn=0, win_x=15.0, win_h=6.0, min_photons=10) -> list[int]:
    out = yapc_v2(np.asarray(counts, np.int32), np.asarray(dpa, F32), np.asarray(h, F32), knn=knn,
                  win_x=win_x, win_h=win_h, min_photons=min_photons)
    assert out.dtype == np.uint8 and out.shape == (len(h),)
    return out.tolist()


def test_v2_scores_surface_above_noise_and_skips_small_segments():
    _, counts, dpa, h, truth = _surface_beam(3, segments=12, signal=4, noise=3)
    score = np.asarray(v2(counts, dpa, h))
    assert score.min() >= 0 and score.max() <= 255
    assert np.median(score[truth]) > np.median(score[~truth])
    # min_photons above every segment's count: nothing is scored
    assert not any(v2(counts, dpa, h, min_photons=int(counts.max()) + 1))


def test_v2_skipped_segment_is_zero():
    counts = np.array([12, 3, 12], np.int32)
    rng = np.random.default_rng(1)
    dpa = rng.uniform(0, 20, 27).astype(F32)
    h = rng.normal(0, 0.2, 27).astype(F32)
    out = v2(counts, dpa, h, min_photons=5)
    assert out[12:15] == [0, 0, 0]
    assert any(out[:12]) and any(out[15:])


@settings(max_examples=80, deadline=None)
@given(beam=small_beams(), knn=st.integers(0, 4), min_photons=st.integers(0, 12),
       derive_h=st.booleans())
def test_v2_equals_reference(beam, knn, min_photons, derive_h):
    _, counts, dpa, h, win_x, win_h, _, _ = beam
    win_h = 0.0 if derive_h else win_h
    assert v2(counts, dpa, h, knn, win_x, win_h, min_photons) == \
        reference_yapc_v2(counts, dpa, h, knn, win_x, win_h, min_photons)


# ---------------------------------------------------------------------- dispatch
def _beam():
    sdx, counts, dpa, h, _ = _surface_beam(4, segments=5, signal=4, noise=2)
    return make_beam(sdx, counts, dpa, h=h)


def test_dispatch_by_version():
    beam = _beam()
    settings3 = Yapc(version=3, win_x=10.0, win_h=4.0, min_knn=3)
    expected = yapc_v3(beam.segment_dist_x, beam.segment_ph_cnt, beam.dist_ph_along, beam.h_ph,
                       win_x=10.0, win_h=4.0, min_knn=3)
    assert np.array_equal(yapc_scores(beam, settings3), expected)
    for version in (1, 2):
        got = yapc_scores(beam, dataclasses.replace(settings3, version=version), min_photons=3)
        assert np.array_equal(got, yapc_v2(beam.segment_ph_cnt, beam.dist_ph_along, beam.h_ph, knn=0,
                                           win_x=10.0, win_h=4.0, min_photons=3))


def test_version_0_reads_weight_ph():
    beam = _beam()
    with pytest.raises(ResourceError, match="weight_ph"):
        yapc_scores(beam, Yapc(version=0))
    beam.weight_ph = np.arange(len(beam.h_ph), dtype=np.uint16)
    out = yapc_scores(beam, Yapc(version=0))
    assert out.dtype == np.uint16 and np.array_equal(out, beam.weight_ph)


# ---------------------------------------------------------------------- windows of a beam
@st.composite
def windowed(draw):
    """A beam (disordered photons, empty segments) and a range of its photons."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    m = int(rng.integers(3, 40))
    counts = rng.poisson(draw(st.floats(0.5, 30.0)), m)
    counts[rng.random(m) < 0.2] = 0
    n = int(counts.sum())
    sdx = 1e6 + 20.0 * np.arange(m)
    disorder = draw(st.sampled_from([0.0, 0.5, 6.0]))
    dpa = np.concatenate([np.sort(rng.uniform(0, 20, c)) for c in counts]) + rng.normal(0, disorder, n) \
        if n else np.zeros(0)
    h = rng.normal(0, draw(st.sampled_from([0.5, 3.0])), n)
    a = int(rng.integers(0, max(n, 1)))
    b = int(rng.integers(a, n + 1))
    version = draw(st.sampled_from([1, 2, 3]))
    yapc = Yapc(score=0, version=version, knn=draw(st.sampled_from([0, 3])), min_knn=draw(st.integers(1, 6)),
                win_x=draw(st.sampled_from([5.0, 15.0, 40.0])), win_h=draw(st.sampled_from([2.0, 6.0])))
    return make_beam(sdx, counts, dpa.astype(F32), h=h.astype(F32)), a, b, yapc, draw(st.integers(0, 8))


@settings(max_examples=150, deadline=None)
@given(windowed())
def test_window_scores_equal_the_whole_beam(case):
    beam, a, b, yapc, cnt = case
    if b <= a:
        return
    whole = yapc_scores(beam, yapc, min_photons=cnt)
    ends = np.cumsum(beam.segment_ph_cnt, dtype=np.int64)
    s0 = int(np.searchsorted(ends, a, side="right"))
    s1 = int(np.searchsorted(ends, b - 1, side="right")) + 1
    head = lambda k: (beam.dist_ph_along[:k], beam.h_ph[:k])     # noqa: E731
    widen = 1
    while True:
        lo, hi = yapc_mod.context_segments(yapc, beam.segment_dist_x, s0, s1, widen)
        p0, p1 = (int(ends[lo - 1]) if lo else 0), int(ends[hi - 1])
        got = yapc_mod.yapc_window(yapc, beam.segment_dist_x, beam.segment_ph_cnt, p0, beam.dist_ph_along[p0:p1],
                                   beam.h_ph[p0:p1], a, b, min_photons=cnt, head=head)
        if got is not None:
            break
        widen *= 2
    assert np.array_equal(got, whole[a:b])
