"""Parameters: the seed's defaults and value forms, JSON round trip, clear errors naming the key."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icesat2sr.request.errors import ParameterError
from icesat2sr.request.params import Parms

GRAND_MESA = [{"lon": -108.3435200747503, "lat": 38.89102961045247},
              {"lon": -107.7677425431139, "lat": 38.90611184543033},
              {"lon": -107.7818591266989, "lat": 39.26613714985466},
              {"lon": -108.3605610678553, "lat": 39.25086131372244},
              {"lon": -108.3435200747503, "lat": 38.89102961045247}]


def test_seed_defaults():
    p = Parms.from_dict({})
    assert (p.srt, p.cnf, p.quality_ph, p.atl08_class, p.yapc) == (3, (0, 1, 2, 3, 4), (0,), None, None)
    assert (p.len, p.res, p.dist_in_seg, p.pass_invalid, p.ats, p.cnt) == (40.0, 20.0, False, False, 20.0, 10)
    assert (p.maxi, p.H_min_win, p.sigma_r_max, p.compact, p.track) == (5, 3.0, 5.0, False, 0)


def test_cnf_single_is_at_least_and_list_is_membership():
    assert Parms.from_dict({"cnf": "atl03_medium"}).cnf == (3, 4)
    assert Parms.from_dict({"cnf": 1}).cnf == (1, 2, 3, 4)
    assert Parms.from_dict({"cnf": ["atl03_tep", 4, "high"]}).cnf == (-2, 4)


def test_quality_single_is_exactly():
    assert Parms.from_dict({"quality_ph": 0}).quality_ph == Parms().quality_ph == (0,)
    assert Parms.from_dict({"quality_ph": "atl03_quality_afterpulse"}).quality_ph == (1,)
    assert Parms.from_dict({"quality_ph": [0, 1, 2]}).quality_ph == (0, 1, 2)


def test_atl08_yapc_track_beams():
    p = Parms.from_dict({"atl08_class": ["atl08_ground", "atl08_canopy"], "yapc": {"score": 100, "knn": 4},
                         "track": 2, "beams": ["gt2l", 40, "gt1r"]})
    assert p.atl08_class == (1, 2)
    assert (p.yapc.score, p.yapc.knn, p.yapc.version, p.yapc.win_h) == (100, 4, 3, 6.0)
    assert p.selected_beams == ("gt2l", "gt2r")
    assert Parms.from_dict({"atl08_class": "atl08_noise"}).atl08_class == (0,)


def test_dist_in_seg_length():
    assert Parms.from_dict({"len": 2, "res": 1, "dist_in_seg": True}).extent_length_m == 40.0


@pytest.mark.parametrize("bad, key", [
    ({"cnt": "ten"}, "cnt"), ({"len": -1}, "len"), ({"res": 0}, "res"), ({"maxi": 0}, "maxi"),
    ({"srt": 7}, "srt"), ({"cnf": "atl03_sure"}, "cnf"), ({"cnf": 5}, "cnf"), ({"cnf": []}, "cnf"),
    ({"quality_ph": 26}, "quality_ph"), ({"atl08_class": "trees"}, "atl08_class"),
    ({"yapc": {"score": 300}}, "yapc.score"), ({"yapc": {"colour": 1}}, "yapc.colour"), ({"yapc": 3}, "yapc"),
    ({"pass_invalid": "yes"}, "pass_invalid"), ({"compact": 1}, "compact"), ({"track": 4}, "track"),
    ({"beams": "gt4l"}, "beams"), ({"t0": "2020-02-30"}, "t0"), ({"t1": "yesterday"}, "t1"), ({"bogus": 1}, "bogus"),
    ({"t0": "2020-02-01T00:00:00Z", "t1": "2020-01-01T00:00:00Z"}, "t0"), ({"len": float("nan")}, "len"),
    ({"poly": [{"lon": 0, "lat": 0}, {"lon": 1, "lat": 1}, {"lon": 2, "lat": 2}, {"lon": 0, "lat": 0}]}, "poly"),
    ({"poly": [{"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}]}, "poly"),
    ({"poly": [{"lon": 0, "lat": 95}, {"lon": 1, "lat": 0}, {"lon": 1, "lat": 1}]}, "poly[0].lat"),
    ({"poly": [{"x": 0}]}, "poly"), ({"samples": {"dem": {}}}, "samples"), ({"asset": "disk"}, "asset"),
    ({"output": "x.parquet"}, "output"), ({"output": {"format": "csv"}}, "output.path"),
    ({"output": {"path": "x", "format": "h5"}}, "output.format"),
    ({"output": {"path": "x", "format": 6}}, "output.format"),
    ({"output": {"path": "file:///etc/passwd"}}, "output.path"), ({"output": {"path": "a\nb"}}, "output.path"),
    ({"output": {"path": "x" * 128}}, "output.path"), ({"output": {"path": "s3://B/k"}}, "output.path"),
    ({"output": {"path": "s3://bucket/a/../k"}}, "output.path"),
    ({"output": {"path": "x", "asset": "s3"}}, "output.asset"),
    ({"output": {"path": "x", "as_geo": "yes"}}, "output.as_geo"),
    ({"output": {"path": "x", "colour": 1}}, "output.colour"),
    ({"output": {"path": "x", "fields": "height"}}, "output.fields"), ({"fit": {"maxi": 0}}, "fit.maxi"),
    ({"fit": {"window": 3}}, "fit.window"), ({"fit": 3}, "fit"), ({"podppd": 256}, "podppd"),
    ({"dist_in_seg": True, "res": 0.5}, "res"),
])
def test_bad_values_name_the_key(bad, key):
    with pytest.raises(ParameterError) as info:
        Parms.from_dict(bad)
    assert info.value.key == key
    assert f"'{key}'" in str(info.value)


def test_output_is_normalised_as_slideRule_does():
    as_geo = Parms.from_dict({"output": {"path": "out.parquet", "format": "parquet", "as_geo": True}}).output
    assert (as_geo.format, as_geo.as_geo, as_geo.geo, as_geo.remote) == ("geoparquet", True, True, False)
    geo = Parms.from_dict({"output": {"path": "out.parquet", "format": 3}}).output
    assert (geo.format, geo.as_geo) == ("geoparquet", True)
    plain = Parms.from_dict({"output": {"path": "s3://my-bucket/runs/a.csv", "format": "CSV", "asset": "",
                                        "credentials": {}, "fields": ["height", "height"]}})
    assert plain.output.format == "csv" and plain.output.s3_location() == ("my-bucket", "runs/a.csv")
    assert plain.output.fields == ("height",)
    default = Parms.from_dict({"output": {"path": "x"}}).output
    assert (default.format, default.open_on_complete, default.with_checksum) == ("geoparquet", False, False)
    for p in (Parms.from_dict({"output": {"path": "x", "format": "feather", "open_on_complete": True},
                               "fit": {"maxi": 2}, "podppd": 0}), plain):
        assert Parms.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_too_many_polygon_points():
    ring = [{"lon": float(i) / 1000, "lat": float((i * 7919) % 1000) / 1000} for i in range(16385)]
    with pytest.raises(ParameterError, match="16384"):
        Parms.from_dict({"poly": ring})


def test_unclosed_polygon_is_closed():
    p = Parms.from_dict({"poly": GRAND_MESA[:-1]})
    assert p.poly[0] == p.poly[-1] and len(p.poly) == 5


def test_json_errors():
    with pytest.raises(ParameterError, match="not valid JSON"):
        Parms.from_json("{cnf: 4")
    with pytest.raises(ParameterError, match="JSON object"):
        Parms.from_dict([1, 2])


def test_client_keys_accepted():
    p = Parms.from_dict({"asset": "icesat2", "poly": GRAND_MESA, "rqst-timeout": 600})
    assert p.asset == "icesat2"


_value = st.fixed_dictionaries({}, optional={
    "srt": st.integers(-1, 4), "cnf": st.one_of(st.integers(-2, 4), st.lists(st.integers(-2, 4), min_size=1)),
    "quality_ph": st.one_of(st.integers(0, 25), st.lists(st.integers(0, 25), min_size=1)),
    "atl08_class": st.lists(st.sampled_from(["atl08_noise", "atl08_ground", "atl08_canopy"]), min_size=1),
    "yapc": st.fixed_dictionaries({"score": st.integers(0, 255), "win_h": st.floats(0.5, 50)}),
    "len": st.floats(1, 1000), "res": st.floats(1, 1000), "ats": st.floats(0, 100), "cnt": st.integers(0, 100),
    "maxi": st.integers(1, 50), "H_min_win": st.floats(0, 10), "sigma_r_max": st.floats(0.1, 10),
    "pass_invalid": st.booleans(), "compact": st.booleans(), "track": st.integers(0, 3),
    "rgt": st.integers(1, 1387), "cycle": st.integers(1, 99), "region": st.integers(1, 14),
})


@settings(max_examples=200, deadline=None)
@given(_value)
def test_json_round_trip(data):
    p = Parms.from_dict(data)
    assert Parms.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_ring_around_a_pole_is_valid():
    # four points on one parallel: a line in lon/lat, a square in SlideRule's polar projection
    ring = [{"lon": lon, "lat": 85.0} for lon in (0.0, 90.0, 180.0, -90.0)]
    assert len(Parms.from_dict({"poly": ring}).poly) == 5
