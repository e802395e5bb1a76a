"""The ATL08 join (SPEC §2): every ATL03 photon's class, equal to SlideRule's two-pointer merge."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icesat2sr.granules.ancillary import land_segment_index
from icesat2sr.granules.atl08 import atl08_classes, atl08_rows, phoreal_inputs
from icesat2sr.request.errors import ResourceError

from .reference_atl08 import reference_atl08

GRANULE = "ATL03_20181019065445_03150111_005_01.h5"


def test_atl08_join_by_segment_and_index():
    segment_id = np.array([100, 101, 102, 103], np.int32)
    counts = np.array([3, 0, 2, 2], np.int32)
    seg08 = np.array([99, 100, 100, 102, 103, 103, 104], np.int32)
    idx08 = np.array([1, 1, 3, 2, 1, 5, 1], np.int32)
    flag08 = np.array([2, 1, 2, 3, 0, 1, 1], np.int8)
    out = atl08_classes(segment_id, counts, 8, seg08, idx08, flag08, GRANULE)
    assert out.dtype == np.uint8
    # photons: (100,1) (100,2) (100,3) (102,1) (102,2) (103,1) (103,2), then one uncovered
    assert out.tolist() == [1, 4, 2, 4, 3, 0, 4, 4]


def test_atl08_duplicate_rows_first_wins_and_repeated_segment_consumes_the_next():
    segment_id = np.array([7, 7], np.int32)
    counts = np.array([2, 2], np.int32)
    seg08 = np.array([7, 7, 7], np.int32)
    idx08 = np.array([1, 1, 2], np.int32)
    flag08 = np.array([1, 2, 3], np.int8)
    out = atl08_classes(segment_id, counts, 4, seg08, idx08, flag08)
    ref = reference_atl08(segment_id, counts, 4, seg08, idx08, flag08)
    assert out.tolist() == ref == [1, 3, 4, 4]


def test_atl08_repeated_segment_takes_a_duplicate_left_behind_the_pointer():
    # segment 7 appears twice; its first pass consumes the first (7, 1) row only
    segment_id = np.array([7, 6, 7], np.int32)
    counts = np.array([1, 1, 2], np.int32)
    seg08 = np.array([6, 7, 7, 7], np.int32)
    idx08 = np.array([1, 1, 1, 2], np.int32)
    flag08 = np.array([0, 1, 2, 3], np.int8)
    out = atl08_classes(segment_id, counts, 4, seg08, idx08, flag08)
    assert out.tolist() == reference_atl08(segment_id, counts, 4, seg08, idx08, flag08) == [1, 4, 2, 3]


def test_atl08_unsorted_rows_are_joined_by_key():
    segment_id = np.array([5, 6], np.int32)
    counts = np.array([2, 2], np.int32)
    seg08 = np.array([6, 5, 5, 6], np.int32)
    idx08 = np.array([2, 2, 1, 2], np.int32)
    flag08 = np.array([3, 2, 1, 0], np.int8)
    out = atl08_classes(segment_id, counts, 4, seg08, idx08, flag08)
    assert out.tolist() == [1, 2, 4, 3]     # (6,2): first row in file order wins
    # SlideRule's merge would miss the rows that come after a larger key
    assert reference_atl08(segment_id, counts, 4, seg08, idx08, flag08) == [4, 4, 4, 3]


def test_atl08_invalid_flag_given_to_a_photon_is_an_error():
    args = (np.array([1], np.int32), np.array([2], np.int32), 2)
    with pytest.raises(ResourceError, match="invalid atl08 classification: 5"):
        atl08_classes(*args, np.array([1], np.int32), np.array([2], np.int32), np.array([5], np.int8))
    # a bad flag on a row that matches no photon is never used
    out = atl08_classes(*args, np.array([1, 9], np.int32), np.array([1, 1], np.int32),
                        np.array([0, -1], np.int8))
    assert out.tolist() == [0, 4]


def test_atl08_empty_inputs():
    empty_i4 = np.zeros(0, np.int32)
    assert atl08_classes(empty_i4, empty_i4, 0, empty_i4, empty_i4, np.zeros(0, np.int8)).shape == (0,)
    out = atl08_classes(np.array([3], np.int32), np.array([2], np.int32), 2, empty_i4, empty_i4,
                        np.zeros(0, np.int8))
    assert out.tolist() == [4, 4]


def test_atl08_negative_count_is_an_error():
    with pytest.raises(ResourceError, match="negative segment_ph_cnt"):
        atl08_classes(np.array([1], np.int32), np.array([-1], np.int32), 0,
                      np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int8))


@st.composite
def atl08_inputs(draw, sort_rows=True):
    m = draw(st.integers(0, 8))
    narrow = draw(st.booleans())  # few distinct keys: many duplicates and repeated segments
    if not narrow and draw(st.booleans()):  # real granules: increasing ids with gaps
        steps = draw(st.lists(st.integers(1, 3), min_size=m, max_size=m))
        segment_id = 100 + np.cumsum(np.array(steps, dtype=np.int64))
    else:                    # odd inputs: repeated or decreasing ids
        ids = st.integers(100, 101) if narrow else st.integers(98, 108)
        segment_id = np.array(draw(st.lists(ids, min_size=m, max_size=m)), dtype=np.int64)
    counts = draw(st.lists(st.integers(0, 3 if narrow else 6), min_size=m, max_size=m))
    n_photons = max(0, sum(counts) + draw(st.integers(-3, 2)))
    seg_ids = st.integers(99, 102) if narrow else st.integers(96, 112)
    indices = st.integers(1, 3) if narrow else st.integers(0, 8)
    rows = draw(st.lists(st.tuples(seg_ids, indices, st.integers(0, 3)), max_size=40))
    if sort_rows:
        rows.sort(key=lambda r: (r[0], r[1]))   # stable: duplicates keep their order
    seg08 = np.array([r[0] for r in rows], dtype=np.int32)
    idx08 = np.array([r[1] for r in rows], dtype=np.int32)
    flag08 = np.array([r[2] for r in rows], dtype=np.int8)
    return (segment_id.astype(np.int32), np.array(counts, dtype=np.int32), n_photons,
            seg08, idx08, flag08)


@settings(max_examples=400, deadline=None)
@given(atl08_inputs())
def test_atl08_join_equals_the_two_pointer_merge(args):
    out = atl08_classes(*args)
    assert out.tolist() == reference_atl08(*args)
    assert len(out) == args[2]


@settings(max_examples=150, deadline=None)
@given(atl08_inputs(sort_rows=False))
def test_atl08_unsorted_equals_merge_of_stably_sorted_rows(args):
    segment_id, counts, n, seg08, idx08, flag08 = args
    order = np.lexsort((idx08, seg08))  # lexsort is stable
    expected = reference_atl08(segment_id, counts, n, seg08[order], idx08[order], flag08[order])
    assert atl08_classes(*args).tolist() == expected


@settings(max_examples=100, deadline=None)
@given(atl08_inputs())
def test_atl08_unlisted_photons_are_unclassified(args):
    segment_id, counts, n, seg08, idx08, _ = args
    out = atl08_classes(*args)
    listed = set(zip(seg08.tolist(), idx08.tolist(), strict=True))
    keys = [(int(s), k) for s, c in zip(segment_id, counts, strict=True) for k in range(1, c + 1)][:n]
    for i, key in enumerate(keys):
        if key not in listed:
            assert out[i] == 4
    assert np.all(out[len(keys):] == 4)


# ---------------------------------------------------------------------- PhoREAL inputs (ph_h, land segments)
def _sliderule_land_segment(segment_of_photon, segment_id_beg):
    """SlideRule's walk (Atl08Class::classify): the last land segment starting at or before the
    photon's segment, never checking where it ends, starting from the first one."""
    index, out = 0, []
    for seg in segment_of_photon:
        while index < len(segment_id_beg) - 1 and segment_id_beg[index + 1] <= seg:
            index += 1
        out.append(index)
    return out


def _phoreal_case():
    segment_id = np.arange(100, 112, dtype=np.int32)
    counts = np.full(12, 2, np.int32)
    seg08 = np.repeat(segment_id, 2)[:-1]           # every photon listed but the last
    idx08 = np.tile([1, 2], 12)[:-1].astype(np.int32)
    atl08 = {"ph_h": np.arange(23, dtype=np.float32) + 0.5,
             # land segments 100-104 and 108-111: segments 105-107 lie in a gap
             "segment_id_beg": np.array([100, 108], np.int32), "segment_id_end": np.array([104, 111], np.int32),
             "segment_landcover": np.array([111, 60], np.int16), "segment_snowcover": np.array([1, 2], np.int8)}
    return segment_id, counts, seg08, idx08, atl08


def test_phoreal_inputs_relief_and_cover_of_classified_photons():
    segment_id, counts, seg08, idx08, atl08 = _phoreal_case()
    row = atl08_rows(segment_id, counts, 24, seg08, idx08, GRANULE)
    out = phoreal_inputs(row, segment_id, counts, atl08, GRANULE)
    assert out["relief"].dtype == np.float32 and out["relief"].tolist() == [*(np.arange(23) + 0.5), 0.0]
    segment = np.repeat(segment_id, 2)
    expected = np.where(segment <= 104, 111, np.where(segment >= 108, 60, 255))
    expected[-1] = 255                               # the unlisted photon
    assert out["landcover"].tolist() == expected.tolist()
    assert out["snowcover"].tolist() == np.select([expected == 111, expected == 60], [1, 2], 255).tolist()


def test_photons_in_a_land_segment_gap_get_no_cover_unlike_sliderule():
    segment_id, *_, atl08 = _phoreal_case()
    segment = np.repeat(segment_id, 2)
    ours = land_segment_index(segment, atl08["segment_id_beg"], atl08["segment_id_end"], None)
    theirs = np.array(_sliderule_land_segment(segment, atl08["segment_id_beg"]))
    gap = (segment >= 105) & (segment <= 107)
    assert np.all(ours[gap] == -1) and np.all(theirs[gap] == 0)       # SlideRule: the previous segment's
    assert np.array_equal(ours[~gap], theirs[~gap])


@pytest.mark.parametrize("broken, message", [
    ({"ph_h": None}, "ph_h"),
    ({"segment_landcover": None}, "segment_landcover"),
    ({"ph_h": np.zeros(3, np.float32)}, "differ in length"),
    ({"segment_id_end": np.array([104], np.int32)}, "differ in length"),
    ({"ph_h": np.full(23, np.nan, np.float32)}, "not finite"),
])
def test_phoreal_inputs_reject_missing_or_inconsistent_atl08(broken, message):
    segment_id, counts, seg08, idx08, atl08 = _phoreal_case()
    row = atl08_rows(segment_id, counts, 24, seg08, idx08, GRANULE)
    with pytest.raises(ResourceError, match=message):
        phoreal_inputs(row, segment_id, counts, {**atl08, **broken}, GRANULE)
