"""Per-photon selection: confidence, quality, the ATL08 join, the combined mask (SPEC §2, §4)."""

from __future__ import annotations

import numpy as np
import pytest

from icesat2sr.request.errors import ResourceError
from icesat2sr.request.params import Parms
from icesat2sr.science.select import photon_confidence, photon_mask

GRANULE = "ATL03_20181019065445_03150111_005_01.h5"
ALL_CNF = np.arange(-2, 5, dtype=np.int8)


def _mask(parms: dict, conf, quality=None, atl08=None, yapc=None) -> np.ndarray:
    conf = np.asarray(conf, dtype=np.int8)
    quality = np.zeros(len(conf), np.int8) if quality is None else np.asarray(quality, np.int8)
    return photon_mask(conf, quality, Parms.from_dict(parms), atl08, yapc, granule=GRANULE)


# ---------------------------------------------------------------------- confidence
def test_confidence_one_column_passes_through():
    conf = np.array([-2, 0, 4, 3], dtype=np.int8)
    assert photon_confidence(conf, 3).tolist() == [-2, 0, 4, 3]
    assert photon_confidence(conf[:, None], 0).tolist() == [-2, 0, 4, 3]
    assert photon_confidence(conf, 3).dtype == np.int8


def test_confidence_five_columns_picks_srt_or_max():
    conf = np.array([[0, 1, 2, 3, 4], [4, -1, 0, 0, 1], [-2, -2, -1, -2, -2]], dtype=np.int8)
    assert photon_confidence(conf, 1).tolist() == [1, -1, -2]
    assert photon_confidence(conf, 3).tolist() == [3, 0, -2]
    assert photon_confidence(conf, -1).tolist() == [4, 4, -1]


def test_dynamic_srt_needs_all_columns():
    with pytest.raises(ValueError, match="srt -1"):
        photon_confidence(np.zeros(3, np.int8), -1)


@pytest.mark.parametrize("bad", [5, -3, 127, -128])
def test_invalid_confidence_in_data_is_a_granule_error(bad):
    conf = np.array([0, 4, bad, 1], dtype=np.int8)
    with pytest.raises(ResourceError, match=f"invalid atl03 signal confidence: {bad}") as err:
        photon_confidence(conf, 3, GRANULE)
    assert err.value.resource == GRANULE


def test_dynamic_validates_the_maximum_only():
    # SlideRule takes the max first, then checks it: a bad value in another column is harmless
    conf = np.array([[-3, 4, 0, 0, 0]], dtype=np.int8)
    assert photon_confidence(conf, -1).tolist() == [4]
    with pytest.raises(ResourceError):
        photon_confidence(np.array([[5, 4, 0, 0, 0]], dtype=np.int8), -1)


# ---------------------------------------------------------------------- cnf
@pytest.mark.parametrize(("value", "allowed"), [
    (0, {0, 1, 2, 3, 4}),
    (2, {2, 3, 4}),
    (-2, {-2, -1, 0, 1, 2, 3, 4}),
    ("atl03_medium", {3, 4}),
    ("high", {4}),
    ("atl03_not_considered", {-1, 0, 1, 2, 3, 4}),
    ([0, 4], {0, 4}),
    (["atl03_low", "atl03_tep"], {2, -2}),
    ([3], {3}),
])
def test_cnf_single_is_at_least_list_is_membership(value, allowed):
    mask = _mask({"cnf": value}, ALL_CNF)
    assert set(ALL_CNF[mask].tolist()) == allowed


def test_default_cnf_is_background_or_better():
    assert set(ALL_CNF[_mask({}, ALL_CNF)].tolist()) == {0, 1, 2, 3, 4}


# ---------------------------------------------------------------------- quality_ph
QUALITIES = np.array([0, 1, 2, 3, 4, 5, 10, 25, 0, 3], dtype=np.int8)


def test_quality_default_equals_explicit_zero():
    conf = np.full(len(QUALITIES), 4, np.int8)
    default = _mask({}, conf, QUALITIES)
    for explicit in (0, "atl03_quality_nominal", "nominal", [0]):
        assert np.array_equal(_mask({"quality_ph": explicit}, conf, QUALITIES), default)
    assert QUALITIES[default].tolist() == [0, 0]


@pytest.mark.parametrize(("value", "allowed"), [
    (1, {1}),                               # exactly, not "at least"
    ("atl03_quality_impulse_response", {2}),
    (3, {3}),
    ([0, 1], {0, 1}),
    (["nominal", "tep", 25], {0, 3, 25}),
])
def test_quality_single_is_exact_list_is_membership(value, allowed):
    conf = np.full(len(QUALITIES), 4, np.int8)
    mask = _mask({"quality_ph": value}, conf, QUALITIES)
    assert set(QUALITIES[mask].tolist()) == allowed


@pytest.mark.parametrize("bad", [26, -1, 100])
def test_invalid_quality_in_data_is_a_granule_error(bad):
    with pytest.raises(ResourceError, match=f"invalid atl03 photon quality: {bad}"):
        _mask({}, [4, 4], [0, bad])


def test_quality_is_validated_only_on_photons_passing_cnf():
    # photon 1 is rejected by cnf before SlideRule ever looks at its quality
    mask = _mask({"cnf": 4}, [4, 0], [0, 77])
    assert mask.tolist() == [True, False]


# ---------------------------------------------------------------------- the combined mask
def test_photon_mask_applies_every_stage():
    #            cnf ok  cnf bad  qual bad  class bad  yapc low  all ok
    conf = [4, 1, 4, 4, 4, 3]
    quality = [0, 0, 1, 0, 0, 0]
    classes = np.array([1, 1, 1, 2, 1, 1], np.uint8)
    scores = np.array([200, 200, 200, 200, 99, 100], np.uint8)
    parms = {"cnf": 3, "atl08_class": ["atl08_ground"], "yapc": {"score": 100}}
    assert _mask(parms, conf, quality, classes, scores).tolist() == [True, False, False, False, False, True]


def test_atl08_stage_off_when_not_requested():
    conf = [4, 4]
    # no ATL08 array needed, and even garbage classes are ignored
    assert _mask({}, conf).tolist() == [True, True]
    assert _mask({"atl08_class": None}, conf, atl08=np.array([9, 2], np.uint8)).tolist() == [True, True]
    with pytest.raises(ValueError, match="atl08_class"):
        _mask({"atl08_class": "atl08_noise"}, conf)


def test_atl08_single_class_is_exact():
    classes = np.arange(5, dtype=np.uint8)
    mask = _mask({"atl08_class": "atl08_canopy"}, [4] * 5, atl08=classes)
    assert mask.tolist() == [False, False, True, False, False]
    mask = _mask({"atl08_class": [0, "unclassified"]}, [4] * 5, atl08=classes)
    assert mask.tolist() == [True, False, False, False, True]


def test_yapc_stage_threshold_is_inclusive_and_off_without_yapc():
    scores = np.array([0, 9, 10, 255], np.uint8)
    assert _mask({"yapc": {"score": 10}}, [4] * 4, yapc=scores).tolist() == [False, False, True, True]
    assert _mask({"yapc": {"score": 0}}, [4] * 4, yapc=scores).all()
    assert _mask({}, [4] * 4, yapc=np.zeros(4, np.uint8)).all()
    wide = np.array([300, 256, 255, 0], np.uint16)   # release 007 weights are uint16
    assert _mask({"yapc": {"score": 255, "version": 0}}, [4] * 4, yapc=wide).tolist() == [True, True, True, False]
    with pytest.raises(ValueError, match="yapc_score"):
        _mask({"yapc": {"score": 1}}, [4] * 4)


def test_validation_follows_the_order_of_the_tests():
    # class 7 on a photon already rejected by quality is never checked...
    assert _mask({"atl08_class": [1]}, [4, 4], [0, 1], np.array([1, 7], np.uint8)).tolist() == [True, False]
    # ...but on a photon that reaches the ATL08 test it fails the granule
    with pytest.raises(ResourceError, match="invalid atl08 classification: 7"):
        _mask({"atl08_class": [1]}, [4, 4], [0, 0], np.array([1, 7], np.uint8))
    # confidence is validated for every photon
    with pytest.raises(ResourceError, match="signal confidence"):
        _mask({"cnf": 4}, [4, 9])


def test_mask_arrays_must_match_in_length():
    with pytest.raises(ValueError, match="quality_ph"):
        _mask({}, [4, 4], [0])
