"""SlideRule's whole parameter vocabulary on atl06/atl06p/atl03s/atl03sp (issue 12, item 2).

The key lists come from SlideRule's source (v5): RequestParameters.cpp, Icesat2Parameters.cpp,
Atl03Parameters.cpp, Atl06DispatchParameters.cpp (``addParameter``) and the keys its Lua
discovery reads from the request (earth_data_query.lua: ``name_filter``, ``cmr``; proxy.lua:
``ignore_poly_for_cmr``).
"""

from __future__ import annotations

import datetime as dt

import pytest

from icesat2sr.request.errors import ParameterError
from icesat2sr.request.names import matches_pattern
from icesat2sr.request.params import Parms
from icesat2sr.request.timeutil import format_utc, parse_utc

# a valid value for every key SlideRule registers on these endpoints, as its documentation gives them
SLIDERULE_KEYS = {
    # RequestParameters
    "asset": "icesat2", "resource": "ATL03_20181019065445_03150111_005_01.h5", "resources": [],
    "t0": "2019-01-01T00:00:00Z", "t1": "2019-02-01T00:00:00Z",
    "poly": [{"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}, {"lon": 1, "lat": 1}], "proj": "plate_carree",
    "points_in_polygon": 3, "cluster_size_hint": 4, "key_space": 12345,
    "sliderule_version": "v5.0.0", "build_information": "x", "environment_version": "y",
    # Icesat2Parameters / Atl03Parameters
    "spots": [1, 3, 5], "beams": ["gt1l"], "track": 1, "granule": {"rgt": 1},
    "srt": "land", "pass_invalid": True, "dist_in_seg": False, "cnf": "atl03_high", "quality_ph": [0],
    "atl08_class": ["atl08_ground"], "cnt": 5, "ats": 10.0, "len": 40.0, "res": 20.0, "podppd": 1,
    "fit": {"maxi": 3, "H_min_win": 2.0, "sigma_r_max": 4.0}, "yapc": {"score": 0},
    "atl03_geo_fields": ["solar_azimuth"], "atl03_corr_fields": ["geoid"], "atl03_ph_fields": ["ph_id_count"],
    "atl03_bckgrd_fields": ["bckgrd_counts"], "atl08_fields": ["h_dif_ref"],
    "phoreal": {"binsize": 1.0, "geoloc": "center", "use_abs_h": False, "send_waveform": True,
                "above_classifier": False},
    # Atl06DispatchParameters (deprecated top-level fit keys)
    "maxi": 3, "H_min_win": 2.0, "sigma_r_max": 4.0,
    # read by the Lua discovery and proxy
    "name_filter": "*_0315????_*", "cmr": {"version": "005"}, "ignore_poly_for_cmr": True,
    # the seed's own
    "rgt": 315, "cycle": 1, "region": 11, "version": 5, "compact": False, "timeout": 600,
}
# SlideRule options that other work implements (outputs, PhoREAL...): refused by name
REFUSED_BY_NAME = ["atl09_fields", "samples", "region_mask", "als", "atl24"]
# rqst_timeout, node_timeout, read_timeout and max_resources belong to the service work (not listed here)
NO_EFFECT = ["cluster_size_hint", "key_space", "ignore_poly_for_cmr", "points_in_polygon", "granule",
             "sliderule_version", "build_information", "environment_version", "resource"]


def test_every_sliderule_key_is_accepted_together():
    p = Parms.from_dict(dict(SLIDERULE_KEYS))
    assert (p.spots, p.podppd, p.name_filter, p.version) == ((1, 3, 5), 1, "*_0315????_*", 5)
    assert (p.maxi, p.H_min_win, p.sigma_r_max) == (3, 2.0, 4.0)
    assert Parms.from_dict(p.to_dict()) == p


@pytest.mark.parametrize("key", sorted(SLIDERULE_KEYS))
def test_each_sliderule_key_is_accepted_alone(key):
    Parms.from_dict({key: SLIDERULE_KEYS[key]})


@pytest.mark.parametrize("key", NO_EFFECT)
def test_keys_without_meaning_here_change_nothing(key):
    assert Parms.from_dict({key: SLIDERULE_KEYS[key]}) == Parms()


@pytest.mark.parametrize("key", REFUSED_BY_NAME)
def test_options_of_other_work_are_refused_by_name(key):
    with pytest.raises(ParameterError, match=f"'{key}': is a SlideRule option that icesat2sr does not support"):
        Parms.from_dict({key: ["x"]})


def test_atl06_fields_are_refused_with_the_reason():
    with pytest.raises(ParameterError, match="'atl06_fields': selects ATL06 standard-product fields"):
        Parms.from_dict({"atl06_fields": ["h_li"]})


@pytest.mark.parametrize("data, message", [
    ({"cnff": 4}, "parameter 'cnff': unknown parameter; did you mean 'cnf'?"),
    ({"H_min_Win": 4}, "parameter 'H_min_Win': unknown parameter; did you mean 'H_min_win'?"),
    ({"sigma_r": 4}, "parameter 'sigma_r': unknown parameter; did you mean 'sigma_r_max'?"),
    ({"name_filer": "*"}, "did you mean 'name_filter'?"),
    ({"fit": {"maxii": 3}}, "parameter 'fit.maxii': unknown parameter; did you mean 'maxi'?"),
    ({"cmr": {"versoin": 6}}, "parameter 'cmr.versoin': unknown parameter; did you mean 'version'?"),
    ({"xyzzy": 1}, "parameter 'xyzzy': unknown parameter (docs/parameters.md lists every accepted key)"),
])
def test_unknown_keys_name_the_closest_known_one(data, message):
    with pytest.raises(ParameterError) as info:
        Parms.from_dict(data)
    assert message in str(info.value)


def test_fit_object_means_the_top_level_keys():
    nested = Parms.from_dict({"fit": {"maxi": 3, "H_min_win": 2.5, "sigma_r_max": 4.0}})
    top = Parms.from_dict({"maxi": 3, "H_min_win": 2.5, "sigma_r_max": 4.0})
    assert (nested.maxi, nested.H_min_win, nested.sigma_r_max) == (top.maxi, top.H_min_win, top.sigma_r_max)
    assert nested.fit and not top.fit   # a fit object also asks atl03x for its surface fit
    assert Parms.from_dict({"fit": {"maxi": 3}, "maxi": 3}).maxi == 3   # both, the same: fine
    assert Parms.from_dict({"fit": {"maxi": 7}, "H_min_win": 1.0}).H_min_win == 1.0   # different keys mix
    with pytest.raises(ParameterError, match=r"'fit\.maxi': is 7 but 'maxi' is 3; give one of them"):
        Parms.from_dict({"fit": {"maxi": 7}, "maxi": 3})
    with pytest.raises(ParameterError, match=r"'fit\.maxi'"):
        Parms.from_dict({"fit": {"maxi": 0}})
    with pytest.raises(ParameterError, match="'fit': expected an object"):
        Parms.from_dict({"fit": 3})


def test_cmr_version_is_the_release_searched():
    assert Parms.from_dict({"cmr": {"version": "006"}}).version == 6
    assert Parms.from_dict({"cmr": {"version": 7}, "version": "007"}).version == 7
    with pytest.raises(ParameterError, match=r"'cmr\.version': is 6 but 'version' is 5"):
        Parms.from_dict({"cmr": {"version": "006"}, "version": 5})


def test_datum_is_not_supported():
    with pytest.raises(ParameterError, match="'datum': is not supported: heights are in the granule's own frame"):
        Parms.from_dict({"datum": "EGM08"})
    assert Parms.from_dict({"datum": None}) == Parms()


@pytest.mark.parametrize("value, expected", [([1, 3, 5], (1, 3, 5)), (4, (4,)), ([6, 6, 2], (2, 6))])
def test_spots(value, expected):
    assert Parms.from_dict({"spots": value}).spots == expected


@pytest.mark.parametrize("bad", [0, 7, [], ["1"], True])
def test_bad_spots(bad):
    with pytest.raises(ParameterError, match="'spots'"):
        Parms.from_dict({"spots": bad})


@pytest.mark.parametrize("bad", [-1, 256, "nominal", 1.5])
def test_bad_podppd(bad):
    with pytest.raises(ParameterError, match="'podppd'"):
        Parms.from_dict({"podppd": bad})


# t0/t1: SlideRule's TimeLib::str2gpstime forms, checked against Python's own ISO 8601 parser
@pytest.mark.parametrize("text, iso", [
    ("2021-01-01", "2021-01-01T00:00:00+00:00"),
    ("2021-01-01T00:00:00", "2021-01-01T00:00:00+00:00"),
    ("2021-01-01T00:00:00Z", "2021-01-01T00:00:00+00:00"),
    ("2021-06-30T23:59:59.25Z", "2021-06-30T23:59:59.250000+00:00"),
    ("2021-06-30 23:59:59", "2021-06-30T23:59:59+00:00"),
    ("2021-01-01 02:30:00+02:00", "2021-01-01T02:30:00+02:00"),
    ("2021-01-01T00:30:00-05:30", "2021-01-01T00:30:00-05:30"),
    ("2020-12-31T23:00:00+0100", "2020-12-31T23:00:00+01:00"),
])
def test_iso_times(text, iso):
    assert parse_utc(text) == dt.datetime.fromisoformat(iso)
    assert Parms.from_dict({"t0": text}).t0 == format_utc(dt.datetime.fromisoformat(iso))


@pytest.mark.parametrize("text, want", [
    ("2021:01:02:03:04:05", dt.datetime(2021, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),        # colons only
    ("2021:032:03:04:05.5", dt.datetime(2021, 2, 1, 3, 4, 5, 500000, tzinfo=dt.UTC)),  # day of year
    ("2020:366:00:00:00", dt.datetime(2020, 12, 31, tzinfo=dt.UTC)),
])
def test_sliderule_colon_times(text, want):
    assert parse_utc(text) == want


@pytest.mark.parametrize("bad", ["2021-02-30", "2021-13-01", "2021-01-01T24:00:00Z", "2021:366:00:00:00",
                                 "2021-01-01T00:00:00+25:00", "01/02/2021", "2021", "now", ""])
def test_bad_times_name_the_key(bad):
    with pytest.raises(ParameterError, match="'t1'"):
        Parms.from_dict({"t1": bad})


@pytest.mark.parametrize("pattern, expected", [
    ("*_0315????_*", True), ("ATL03_2018*", True), ("*_005_01.h5", True), ("*_0316????_*", False),
    ("ATL03_2018", False), ("*[0-9]*", False), ("ATL0?_20181019065445_03150111_005_01.h5", True),
])
def test_name_filter_is_a_cmr_pattern(pattern, expected):
    assert matches_pattern("ATL03_20181019065445_03150111_005_01.h5", pattern) is expected
