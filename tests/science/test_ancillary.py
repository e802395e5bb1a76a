"""Per-extent ancillary values of PhoREAL rows (``science.ancillary.vegetation_columns``) against
``reference_ancillary`` (SlideRule's rules, one extent at a time)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from icesat2sr.granules.ancillary import AncField
from icesat2sr.science.ancillary import column_key, sequential_sums, vegetation_columns

from .reference_ancillary import FLT_MAX, mean, nearest


@st.composite
def extents(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    counts = rng.integers(1, draw(st.sampled_from([2, 8, 40, 300])), int(rng.integers(1, 30)))
    n = int(counts.sum())
    floats = draw(st.booleans())
    if floats:
        pool = np.array([0.0, -0.0, 1.5, -2.25, 1e-300, 3.0e38, np.inf, -np.inf, np.nan,
                         float(np.float32(FLT_MAX)), 7.0])
        values = np.where(rng.random(n) < 0.5, rng.choice(pool, n), rng.normal(0, 100, n))
        values = values.astype(draw(st.sampled_from([np.float32, np.float64])))
    else:
        values = rng.choice(np.array([-1, 0, 1, 2, 3, 121, 255, -7]), n).astype(
            draw(st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint8])))
    photon = rng.permutation(n)                       # the extents' photons, in any order of the beam
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return values, photon, offsets


@settings(max_examples=150, deadline=None)
@given(extents())
def test_vegetation_columns_follow_sliderules_rules(case):
    values, photon, offsets = case
    plain, averaged = AncField("atl08_fields", 0, "f", "land_segments/f"), AncField("atl08_fields", 1, "f%",
                                                                                    "land_segments/f")
    out = vegetation_columns({plain: values, averaged: values}, photon, offsets)
    floats = values.dtype.kind == "f"
    for e in range(len(offsets) - 1):
        members = [v.item() for v in values[photon[offsets[e]:offsets[e + 1]]]]
        if floats:
            members = [float(v) for v in members]
        want_mode, want_mean = nearest(members, floats), mean(members, floats)
        got_mode, got_mean = out[column_key(plain)][e], out[column_key(averaged)][e]
        assert got_mode == want_mode and (not floats or math.copysign(1, got_mode) == math.copysign(1, want_mode))
        assert got_mean == want_mean or (math.isnan(got_mean) and math.isnan(want_mean)), (e, members)
    kind = np.float64 if floats else np.int64
    assert out[column_key(plain)].dtype == kind and out[column_key(averaged)].dtype == kind


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), max_size=40), max_size=12))
def test_sequential_sums_add_value_after_value(segments):
    """As a C loop from 0.0 adds them: the order matters for floats (1e16 + 1 + 1 != 1e16 + 2)."""
    values = np.array([v for seg in segments for v in seg], dtype=np.float64)
    offsets = np.concatenate(([0], np.cumsum([len(seg) for seg in segments], dtype=np.int64))).astype(np.int64)
    got = sequential_sums(values, offsets)
    for i, seg in enumerate(segments):
        total = 0.0
        for v in seg:
            total += v
        assert got[i] == total or (math.isnan(got[i]) and math.isnan(total))


def test_sequential_sums_are_not_pairwise():
    values = np.array([1e16] + [1.0] * 20)
    assert sequential_sums(values, np.array([0, 21]))[0] == 1e16   # each 1.0 is lost on 1e16 (pairwise: 1e16 + 20)
