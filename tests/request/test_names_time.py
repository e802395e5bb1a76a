"""Granule names, beams/spots and SlideRule's time arithmetic."""

import datetime as dt

import numpy as np
import pytest

from icesat2sr.request.errors import ResourceError
from icesat2sr.request.names import GT_CODE, parse_atl03_name, parse_name, spot, spot_from_track_pair, track_pair
from icesat2sr.request.timeutil import delta_time_to_ns, gps_to_utc, utc_to_gps


def test_parse_name_fields():
    g = parse_name("ATL03_20181019065445_03150111_005_01.h5")
    assert (g.product, g.rgt, g.cycle, g.region, g.version, g.revision) == (3, 315, 1, 11, 5, 1)
    assert g.start == dt.datetime(2018, 10, 19, 6, 54, 45, tzinfo=dt.UTC)


@pytest.mark.parametrize("name, atl08", [
    ("ATL03_20181019065445_03150111_005_01.h5", "ATL08_20181019065445_03150111_005_01.h5"),
    ("ATL03_20181019065445_03150111_007_02.h5", "ATL08_20181019065445_03150111_007_01.h5"),
    ("ATL03_20181019065445_03150111_006_02.h5", "ATL08_20181019065445_03150111_006_02.h5"),
])
def test_atl08_companion(name, atl08):
    assert parse_name(name).atl08 == atl08


@pytest.mark.parametrize("bad", ["ATL03_2018101906544_03150111_005_01.h5", "atl03.h5", "../ATL03.h5",
                                 "ATL03_20181319065445_03150111_005_01.h5", "ATL03_20181019065445_03150111_005_01.nc"])
def test_bad_names(bad):
    with pytest.raises(ResourceError):
        parse_name(bad)


def test_atl08_name_is_not_atl03():
    with pytest.raises(ResourceError, match="ATL03"):
        parse_atl03_name("ATL08_20181019065445_03150111_005_01.h5")


def test_spots_and_codes():
    # SPEC §3 table
    assert [spot(0, b) for b in ("gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r")] == [1, 2, 3, 4, 5, 6]
    assert [spot(1, b) for b in ("gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r")] == [6, 5, 4, 3, 2, 1]
    assert spot(2, "gt2l") == 0
    assert spot_from_track_pair(1, 3, 1) == spot(1, "gt3r")
    assert GT_CODE["gt3r"] == 60 and track_pair("gt2r") == (2, 1)


def test_time_reference_points():
    # SPEC §10.2: delta_time 0 is 2018-01-01T00:00:00Z
    assert delta_time_to_ns(0.0) == 1514764800 * 10**9
    ns = delta_time_to_ns(np.array([0.0, 24712010.80]))
    assert np.datetime64(int(ns[1]), "ns") == np.datetime64("2018-10-14T00:26:50.800", "ns") + (
        ns[1] - delta_time_to_ns(24712010.80))  # same expression, same bits
    # SPEC §9: the expression is evaluated left to right in float64, then truncated
    t = 123456789.123456
    assert delta_time_to_ns(t) == np.int64((((t + 1198800018.0) + 315964800.0) - 18.0) * 1e9)


def test_gps2utc():
    # SPEC §9: GPS 1235331234 -> 2019-02-27T19:33:36Z (GPS - 18 s)
    assert gps_to_utc(1235331234).strftime("%Y-%m-%dT%H:%M:%SZ") == "2019-02-27T19:33:36Z"
    assert utc_to_gps(dt.datetime(2019, 2, 27, 19, 33, 36, tzinfo=dt.UTC)) == 1235331234
    # 2016-01-01 was 17 leap seconds after GPS time (the 2017 one came later)
    assert gps_to_utc(1451606400 - 315964800 + 17).strftime("%Y-%m-%dT%H:%M:%SZ") == "2016-01-01T00:00:00Z"
