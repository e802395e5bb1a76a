"""The vectorised PhoREAL (icesat2sr.science.phoreal) against a per-extent reference, edge cases,
and the departures from SlideRule written in docs/decisions.md (PhoREAL).

Golden values come from ``reference_phoreal`` (a photon-by-photon transcription of SlideRule's
Atl08Dispatch.cpp) or from hand computation.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icesat2sr.science.phoreal import (
    MAX_BINS,
    PFLAG_BIN_OVERFLOW,
    PFLAG_BIN_UNDERFLOW,
    above_classifier,
    canopy_metrics,
    geolocation,
)

from .reference_phoreal import reference_geolocation, reference_metrics

SCALARS = ("ph_count", "gnd_ph_count", "veg_ph_count", "pflags", "num_bins", "h_te_median", "h_min_canopy",
           "h_max_canopy", "h_mean_canopy", "canopy_openness", "h_canopy")


def assert_metrics_equal(got: dict, offsets: np.ndarray, classes, height, relief, binsize: float) -> None:
    """Every column of every extent equals the reference, bit for bit (NaN never allowed)."""
    wave_at = np.concatenate(([0], np.cumsum(got["num_bins"])))
    for e in range(len(offsets) - 1):
        s = slice(offsets[e], offsets[e + 1])
        ref = reference_metrics(classes[s], height[s], relief[s], binsize)
        for name in SCALARS:
            assert got[name][e] == ref[name], (e, name, got[name][e], ref[name])
        assert np.array_equal(got["canopy_h_metrics"][e], np.array(ref["canopy_h_metrics"], np.float32)), e
        if "waveform" in got:
            assert np.array_equal(got["waveform"][wave_at[e]:wave_at[e + 1]], np.array(ref["waveform"], np.float32))


@st.composite
def extents(draw):
    """Random extents of classified photons: ties, one-photon extents, no ground, no canopy, tiny bins."""
    seed = draw(st.integers(0, 2**32 - 1))
    binsize = draw(st.sampled_from([0.01, 0.1, 0.25, 1.0, 2.5, 3.0, 50.0]))
    gridded = draw(st.booleans())      # reliefs on the bin grid: photons exactly on bin edges
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, int(rng.integers(1, 80)) + 1, int(rng.integers(1, 40)))
    n = int(counts.sum())
    mix = rng.dirichlet(np.ones(5))
    classes = rng.choice(5, size=n, p=mix).astype(np.uint8)
    relief = rng.uniform(-2.0, 40.0, n)
    if gridded:
        relief = np.round(relief / binsize) * binsize
    relief[rng.random(n) < 0.2] = 7.0                   # many ties (and whole extents in one bin)
    height = (1500.0 + rng.normal(0.0, 2.0, n)).astype(np.float32)
    height[rng.random(n) < 0.1] = 1500.0
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return offsets, classes, height, relief.astype(np.float32), binsize


@settings(max_examples=60, deadline=None)
@given(extents())
def test_metrics_equal_the_per_extent_reference(case):
    offsets, classes, height, relief, binsize = case
    got = canopy_metrics(offsets, classes, height, relief, binsize, waveform=True)
    assert_metrics_equal(got, offsets, classes, height, relief, binsize)


@pytest.mark.parametrize("classes, relief, expect", [
    ([1, 1, 0, 4], [0, 0, 9, 9], {"veg_ph_count": 0, "h_canopy": 0, "pflags": PFLAG_BIN_UNDERFLOW}),  # no canopy
    ([2, 3, 2], [5, 5, 5], {"veg_ph_count": 3, "gnd_ph_count": 0, "h_te_median": 0, "h_canopy": 5,
                            "pflags": PFLAG_BIN_UNDERFLOW}),                                      # no ground, one bin
    ([3], [12.5], {"veg_ph_count": 1, "h_canopy": 12.5, "canopy_openness": 0, "num_bins": 1}),  # one photon
    ([1], [0], {"gnd_ph_count": 1, "h_te_median": 1500, "veg_ph_count": 0}),
])
def test_edge_cases(classes, relief, expect):
    classes = np.array(classes, np.uint8)
    height = np.full(len(classes), 1500.0, np.float32)
    relief = np.array(relief, np.float32)
    offsets = np.array([0, len(classes)])
    got = canopy_metrics(offsets, classes, height, relief, 1.0, waveform=True)
    for name, value in expect.items():
        assert got[name][0] == value, name
    assert_metrics_equal(got, offsets, classes, height, relief, 1.0)
    assert not any(np.isnan(got[k]).any() for k in ("h_mean_canopy", "canopy_openness"))


def test_empty_extents_and_no_photons():
    got = canopy_metrics(np.array([0, 0, 2, 2]), np.array([1, 2], np.uint8), np.ones(2, np.float32),
                         np.array([0, 3], np.float32), waveform=True)
    assert list(got["ph_count"]) == [0, 2, 0] and list(got["num_bins"]) == [1, 1, 1]
    assert list(got["waveform"]) == [0.0, 0.5, 0.0]
    none = canopy_metrics(np.array([0]), np.zeros(0, np.uint8), np.zeros(0, np.float32), np.zeros(0, np.float32))
    assert all(len(v) == 0 for v in none.values())


def test_binsize_overflow_caps_the_bins_and_flags():
    relief = np.array([0.0, 15.0, 20.0], np.float32)
    got = canopy_metrics(np.array([0, 3]), np.full(3, 2, np.uint8), np.zeros(3, np.float32), relief, 0.01,
                         waveform=True)
    assert got["num_bins"][0] == MAX_BINS and got["pflags"][0] == PFLAG_BIN_OVERFLOW
    assert got["waveform"][-1] == np.float32(2 / 3)       # the photons past the last bin land in it


# ---------------------------------------------------------------------- departures from SlideRule
def test_binsize_is_honoured():
    # SlideRule always bins by 1 m; here 0.5 m bins split photons that 1 m bins merge
    relief = np.array([10.0, 10.4, 10.6, 11.2], np.float32)
    args = (np.array([0, 4]), np.full(4, 2, np.uint8), np.zeros(4, np.float32), relief)
    one, half = canopy_metrics(*args, 1.0), canopy_metrics(*args, 0.5)
    assert one["num_bins"][0] == 2 and half["num_bins"][0] == 3
    # 50th percentile: first bin holding >= 2 of 4 photons, its highest photon
    assert one["canopy_h_metrics"][0, 9] == np.float32(10.6) and half["canopy_h_metrics"][0, 9] == np.float32(10.4)


def test_twentieth_percentile_slot_is_the_100th():
    relief = np.arange(1, 41, dtype=np.float32)
    got = canopy_metrics(np.array([0, 40]), np.full(40, 2, np.uint8), np.zeros(40, np.float32), relief)
    assert list(got["canopy_h_metrics"][0]) == [2.0 * (k + 1) for k in range(20)]
    assert got["canopy_h_metrics"][0, 19] == got["h_max_canopy"][0] == 40.0 != got["canopy_h_metrics"][0, 18]


def test_zero_canopy_photons_give_zero_mean_and_openness():
    got = canopy_metrics(np.array([0, 2]), np.array([1, 1], np.uint8), np.ones(2, np.float32), np.zeros(2, np.float32))
    assert got["h_mean_canopy"][0] == 0.0 and got["canopy_openness"][0] == 0.0


def test_above_classifier_leaves_ground_photons():
    classes = np.array([0, 1, 2, 3, 4, 2, 2, 2], np.uint8)
    relief = np.array([1, 1, 1, 1, 1, 40, 1, 1], np.float32)
    conf = np.array([4, 4, 4, 4, 4, 4, 3, 4], np.int8)
    solar = np.array([0, 0, 0, 0, 0, 0, 0, 6], np.float32)
    assert list(above_classifier(classes, relief, conf, solar, spot=3)) == [3, 1, 3, 3, 4, 2, 2, 2]
    assert list(above_classifier(classes, relief, conf, solar, spot=2)) == list(classes)   # weak spot


# ---------------------------------------------------------------------- geolocation
@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["median", "mean", "center"]))
def test_geolocation_equals_the_reference(seed, geoloc):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 30, int(rng.integers(1, 20)))
    n = int(counts.sum())
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    t = 1_600_000_000_000_000_000 + np.cumsum(rng.integers(0, 200_000, n)).astype(np.int64)
    lat, lon = rng.uniform(-80, 80, n), rng.uniform(-180, 180, n)
    x = rng.uniform(-50, 50, n).astype(np.float32)
    distance = rng.uniform(1e6, 2e7, len(counts))
    got = geolocation(offsets, t, lat, lon, x, distance, geoloc)
    for e in range(len(counts)):
        s = slice(offsets[e], offsets[e + 1])
        ref = reference_geolocation(t[s], lat[s], lon[s], x[s], float(distance[e]), geoloc)
        assert got["time"][e] == ref["time"] and got["x_atc"][e] == ref["x_atc"]
        assert got["latitude"][e] == ref["latitude"] and got["longitude"][e] == ref["longitude"]
        assert got["photon"][e] == offsets[e] + ref["photon"]


def test_geolocation_median_of_two_and_cover_photon():
    got = geolocation(np.array([0, 2]), np.array([100, 201]), np.array([1.0, 2.0]), np.array([3.0, 5.0]),
                      np.array([-1.0, 2.0], np.float32), np.array([1000.0]))
    assert (got["time"][0], got["latitude"][0], got["longitude"][0], got["x_atc"][0]) == (150, 1.5, 4.0, 1000.5)
    assert got["photon"][0] == 0      # both photons are 50/51 ns away: the nearer one
