"""Granule discovery on synthetic granules at known places and times (SPEC §4.6).

The polygon decision must be the reader's: a granule is selected iff a requested beam has a
segment with photons whose reference point is inside the polygon (``polygon.inside``). The
oracle below reads those points with h5py; a few cases also run the reader itself.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import shapely

from icesat2sr.discovery import catalog
from icesat2sr.discovery import find as discovery
from icesat2sr.granules.assets import resolve_asset
from icesat2sr.granules.reader import read_beams
from icesat2sr.request.errors import ParameterError
from icesat2sr.request.params import Parms
from icesat2sr.request.polygon import inside

from . import discovery_data as dd

N = dd.NAMES




def parms(ring=None, **kw) -> Parms:
    if ring is not None:
        kw["poly"] = [{"lon": lon, "lat": lat} for lon, lat in ring]
    return Parms.from_dict(kw)


def box(w, s, e, n):
    return [(w, s), (e, s), (e, n), (w, n), (w, s)]


def find(asset, **kw):
    return discovery.find_granules(parms(**kw), asset)


def keys(names):
    inverse = {v: k for k, v in N.items()}
    return sorted(inverse[n] for n in names)


def reference_points(folder, name, beam):
    with h5py.File(folder / name) as f:
        g = f[beam]["geolocation"]
        return g["reference_photon_lon"][()], g["reference_photon_lat"][()], g["segment_ph_cnt"][()]


def oracle(folder, name, p: Parms) -> bool:
    """SPEC §4.5 by hand: some requested beam has a segment with photons inside the polygon."""
    for beam in p.selected_beams:
        lon, lat, cnt = reference_points(folder, name, beam)
        if (inside(lon, lat, p.poly, p.proj) & (cnt != 0)).any():
            return True
    return False


# ---------------------------------------------------------------------- names
def test_listing_ignores_other_files(asset):
    assert discovery.find_granules(Parms(), asset) == sorted(N.values())


@pytest.mark.parametrize(("kw", "expected"), [
    ({"rgt": 100}, ["mid", "mid_repeat"]),
    ({"cycle": 11}, ["mid_repeat"]),
    ({"region": 8}, ["dateline", "greenwich"]),
    ({"version": 5}, ["europe"]),
    ({"rgt": 100, "cycle": 10}, ["mid"]),
    ({"rgt": 100, "region": 8}, []),
    # SlideRule's name_filter (a CMR producer_granule_id pattern); with rgt/cycle/region, both apply
    ({"name_filter": "*_0100????_*"}, ["mid", "mid_repeat"]),
    ({"name_filter": "ATL03_*_005_0?.h5"}, ["europe"]),
    ({"name_filter": "*_0100????_*", "cycle": 11}, ["mid_repeat"]),
    ({"name_filter": "*[01]*"}, []),   # brackets are literal, as in CMR
])
def test_name_filters(asset, kw, expected):
    assert keys(find(asset, **kw)) == expected


def test_empty_folder_and_folder_without_granules(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert discovery.find_granules(parms(box(0, 0, 1, 1)), resolve_asset("atlas-local", str(empty))) == []
    junk = tmp_path / "junk"
    junk.mkdir()
    for name, data in dd.JUNK.items():
        (junk / name).write_bytes(data)
    assert discovery.find_granules(Parms(), resolve_asset("atlas-local", str(junk))) == []
    assert not (junk / catalog.CATALOG_NAME).exists()


# ---------------------------------------------------------------------- time
@pytest.mark.parametrize(("kw", "expected"), [
    ({"t0": "2020-01-05T00:00:00Z"}, ["antarctic", "greenwich", "mid_repeat"]),
    ({"t1": "2020-01-02T05:00:01Z"}, ["europe", "mid"]),
    # europe's first segment is at 05:00:00.0014, after t1: no overlap
    ({"t1": "2020-01-02T05:00:00Z"}, ["mid"]),
    # mid's segments end at 00:00:00.86; its name alone would allow 10 minutes
    ({"t0": "2020-01-01T00:00:01Z", "t1": "2020-01-02T00:00:00Z"}, []),
    ({"t0": "2020-01-01T00:00:00Z", "t1": "2020-01-01T00:00:00Z"}, []),
    ({"t0": "2019-12-31T23:59:59Z", "t1": "2020-01-01T00:00:01Z"}, ["mid"]),
    ({"t0": "2020-03-01T00:00:00Z", "rgt": 100}, ["mid_repeat"]),
    # every form SlideRule's server parses, and a bare date; the fraction of a second counts
    ({"t0": "2020-01-05"}, ["antarctic", "greenwich", "mid_repeat"]),
    ({"t1": "2020-01-02 05:00:01"}, ["europe", "mid"]),
    ({"t1": "2020-01-02T07:00:01+02:00"}, ["europe", "mid"]),
    ({"t1": "2020-01-02T04:00:00-01:00"}, ["mid"]),
    ({"t1": "2020:01:02:05:00:01"}, ["europe", "mid"]),
    ({"t1": "2020:002:05:00:01"}, ["europe", "mid"]),
    ({"t1": "2020-01-02T05:00:00.0015Z"}, ["europe", "mid"]),
    ({"t1": "2020-01-02T05:00:00.0013Z"}, ["mid"]),
])
def test_time_overlap_with_segment_span(asset, kw, expected):
    assert keys(find(asset, **kw)) == expected


def test_t0_after_t1_is_an_error_naming_t0(asset):
    with pytest.raises(ParameterError, match="parameter 't0'"):
        parms(t0="2020-02-01T00:00:00Z", t1="2020-01-01T00:00:00Z")


# ---------------------------------------------------------------------- polygons
def test_polygon_contains_misses(asset):
    assert keys(find(asset, ring=box(-105.2, 39.9, -104.8, 40.2))) == ["mid", "mid_repeat"]
    assert find(asset, ring=box(0.5, 0.5, 1.0, 1.0)) == []
    # combined with time and name filters
    assert keys(find(asset, ring=box(-105.2, 39.9, -104.8, 40.2), t1="2020-02-01T00:00:00Z")) == ["mid"]
    assert keys(find(asset, ring=box(-105.2, 39.9, -104.8, 40.2), cycle=11)) == ["mid_repeat"]


def _segment_point(places, key, beam, segment):
    lon, lat, cnt = reference_points(places, N[key], beam)
    assert cnt[segment] > 0
    return lon, lat, cnt


def test_polygon_touching_one_reference_point(places, asset, monkeypatch):
    # a 4 m box around the reference point of segment 150 of gt2l (not a catalogue vertex)
    lon, lat, _ = _segment_point(places, "mid", "gt2l", 150)
    d = 2e-5
    ring = box(lon[150] - d, lat[150] - d, lon[150] + d, lat[150] + d)
    calls = []
    real = discovery.reads_enter_polygon
    monkeypatch.setattr(discovery, "reads_enter_polygon", lambda *a: calls.append(a[1]) or real(*a))
    assert keys(find(asset, ring=ring)) == ["mid", "mid_repeat"]
    assert sorted(calls) == sorted([N["mid"], N["mid_repeat"]])  # undecided by the vertices: read
    beams = read_beams(asset, N["mid"], parms(ring))
    assert [(b.beam, b.first_segment, len(b.segment_id)) for b in beams] == [("gt2l", 150, 1)]


def test_sliver_across_the_track_between_reference_points(places, asset):
    # crosses gt2l's track between segments 150 and 151 but holds no reference point
    lon, lat, _ = _segment_point(places, "mid", "gt2l", 150)
    mid_lat = (lat[150] + lat[151]) / 2
    ring = box(lon[150] - 0.002, mid_lat - 1e-6, lon[150] + 0.002, mid_lat + 1e-6)
    assert find(asset, ring=ring) == []
    assert read_beams(asset, N["mid"], parms(ring)) == []


def test_polygon_near_but_outside_a_track(places, asset):
    # 100-300 m west of gt1l (the westmost beam of a northbound track): within the catalogue
    # radius of its vertices, so the granule is read and rejected
    lon, lat, _ = reference_points(places, N["mid"], "gt1l")
    west = lon.min()
    ring = box(west - 0.0035, lat.min(), west - 0.0012, lat.max())
    assert find(asset, ring=ring) == []


@pytest.mark.parametrize(("kw", "selected"), [({"track": 1}, True), ({"track": 2}, False),
                                              ({"beams": ["gt1r"]}, True), ({"beams": ["gt3r", "gt2l"]}, False)])
def test_polygon_and_requested_beams(places, asset, kw, selected):
    lon, lat, _ = reference_points(places, N["mid"], "gt1l")  # pair 1 is 3.3 km west of pair 2
    ring = box(lon.min() - 0.005, lat.min(), lon.max() + 0.005, lat.max())
    assert (N["mid"] in find(asset, ring=ring, **kw)) is selected
    assert bool(read_beams(asset, N["mid"], parms(ring, **kw))) is selected


def test_polar_cap_around_the_north_pole(places, asset):
    cap = [(-180, 80), (-90, 80), (0, 80), (90, 80), (180, 80), (180, 90), (-180, 90), (-180, 80)]
    p = parms(cap)
    assert p.proj == "auto" and keys(discovery.find_granules(p, asset)) == ["north_pole"]
    assert oracle(places, N["north_pole"], p)
    # the same ring read in plate carree is a lon/lat rectangle: the track (lat > 89.9) is inside too
    assert keys(find(asset, ring=cap, proj="plate_carree")) == ["north_pole"]
    # a small polar polygon beside the track (which passes the pole at lon 0/180)
    assert find(asset, ring=[(90, 89.9), (100, 89.9), (100, 89.95), (90, 89.95), (90, 89.9)]) == []


def test_polar_polygons_in_the_south(places, asset):
    assert keys(find(asset, ring=box(40, -85.1, 50, -84.9))) == ["antarctic"]
    cap = [(-180, -80), (-180, -90), (180, -90), (180, -80), (90, -80), (0, -80), (-90, -80), (-180, -80)]
    assert keys(find(asset, ring=cap)) == ["antarctic"]
    assert find(asset, ring=box(-140, -86, -130, -84)) == []


def test_antimeridian_polygon(places, asset):
    crossing = box(179.9, -20.1, -179.9, -19.9)  # 0.2 deg wide, across 180
    assert keys(find(asset, ring=crossing)) == ["dateline"]
    # SlideRule's literal reading spans -179.9..179.9 and would take the granule at lon 0
    lon, lat, _ = reference_points(places, N["greenwich"], "gt2l")
    assert shapely.contains_xy(shapely.Polygon(crossing), lon, lat).all()
    assert keys(find(asset, ring=box(-179.99, -20.1, -179.9, -19.9))) == ["dateline"]  # east of 180 only
    assert keys(find(asset, ring=box(179.9, -20.1, 179.99, -19.9))) == ["dateline"]    # west of 180 only
    assert find(asset, ring=box(179.0, -20.1, 179.5, -19.9)) == []


POLYGONS = [
    box(-105.2, 39.9, -104.8, 40.2), box(179.9, -20.1, -179.9, -19.9), box(-0.01, -20.1, 0.02, -19.99),
    box(9.9, 44.9, 10.1, 44.95), box(40, -85.1, 50, -84.9), [(-10, -30), (10, -30), (0, -10), (-10, -30)],
]


@pytest.mark.parametrize("ring", POLYGONS)
def test_selection_equals_the_reader(places, asset, ring):
    p = parms(ring)
    got = set(discovery.find_granules(p, asset))
    assert got == {n for n in N.values() if oracle(places, n, p)}
    for name in N.values():
        assert bool(read_beams(asset, name, p)) is (name in got)


def test_random_small_polygons_near_a_track(places, tmp_path):
    folder = dd.copy_folder(places, tmp_path / "one", keys=["mid"], junk=False)
    a = resolve_asset("atlas-local", str(folder))
    rng = np.random.default_rng(7)
    lon, lat, _ = reference_points(places, N["mid"], "gt2r")
    outcomes = []
    for _ in range(40):
        c = rng.integers(0, len(lon))
        x, y = lon[c] + rng.normal(0, 0.002), lat[c] + rng.normal(0, 0.0005)
        r = rng.uniform(2e-5, 2e-3, 3)
        ang = np.sort(rng.uniform(0, 2 * np.pi, 3))
        ring = [(x + r[i] * np.cos(ang[i]), y + r[i] * np.sin(ang[i]) / 2) for i in range(3)]
        p = parms([*ring, ring[0]])
        expected = oracle(folder, N["mid"], p)
        assert discovery.find_granules(p, a) == ([N["mid"]] if expected else [])
        outcomes.append(expected)
    assert 5 < sum(outcomes) < 35  # both outcomes were exercised


def test_vertices_settle_clear_cases_without_reading(asset, monkeypatch):
    monkeypatch.setattr(discovery, "reads_enter_polygon", lambda *a: pytest.fail("read a granule"))
    assert keys(find(asset, ring=box(-105.2, 39.9, -104.8, 40.2))) == ["mid", "mid_repeat"]
    assert find(asset, ring=box(-110, 30, -100, 39.9)) == []


# ---------------------------------------------------------------------- catalogue use
def test_catalogue_is_written_and_reused(places, tmp_path, monkeypatch):
    folder = dd.copy_folder(places, tmp_path / "d", keys=["mid", "europe"])
    a = resolve_asset("atlas-local", str(folder))
    ring = box(-105.2, 39.9, -104.8, 40.2)
    assert discovery.find_granules(parms(ring), a, use_catalog=False) == [N["mid"]]
    assert not (folder / catalog.CATALOG_NAME).exists()
    assert discovery.find_granules(parms(ring), a, save_catalog=False) == [N["mid"]]
    assert not (folder / catalog.CATALOG_NAME).exists()
    assert discovery.find_granules(parms(ring), a) == [N["mid"]]
    assert (folder / catalog.CATALOG_NAME).exists()
    monkeypatch.setattr(catalog, "index_granule", lambda *a, **k: pytest.fail("indexed again"))
    assert discovery.find_granules(parms(ring, t0="2020-01-01T00:00:00Z"), a) == [N["mid"]]


def test_read_only_folder_still_answers(places, tmp_path, monkeypatch):
    folder = dd.copy_folder(places, tmp_path / "ro", keys=["mid"])

    def refuse(*a, **k):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(discovery, "write_catalog", refuse)
    a = resolve_asset("atlas-local", str(folder))
    assert discovery.find_granules(parms(box(-105.2, 39.9, -104.8, 40.2)), a) == [N["mid"]]


def test_unindexable_granule_is_selected_by_name_and_nominal_time(places, tmp_path):
    folder = dd.copy_folder(places, tmp_path / "bad", keys=["mid"], corrupt=True)
    a = resolve_asset("atlas-local", str(folder))
    assert discovery.find_granules(Parms(), a) == sorted([N["mid"], dd.CORRUPT])
    assert discovery.find_granules(parms(box(-105.2, 39.9, -104.8, 40.2)), a) == sorted([N["mid"], dd.CORRUPT])
    # its name says 2020-01-07T00:00:00: nominal span up to 600 s later
    assert discovery.find_granules(parms(t0="2020-01-07T00:09:59Z"), a) == [dd.CORRUPT]
    assert discovery.find_granules(parms(t0="2020-01-07T00:10:01Z"), a) == []
    assert discovery.find_granules(parms(rgt=100), a) == [N["mid"]]


# ---------------------------------------------------------------------- the geometry bound
@pytest.mark.parametrize(("lat0", "proj"), [(0.0, "plate_carree"), (75.0, "plate_carree"), (89.5, "plate_carree"),
                                            (75.0, "north_polar"), (88.0, "north_polar"), (-80.0, "south_polar"),
                                            (-20.0, "antimeridian")])
def test_may_enter_is_sound(lat0, proj):
    """Whenever a point within the radius of a vertex is inside, may_enter must say so."""
    rng = np.random.default_rng(abs(int(lat0 * 10)) + len(proj))
    checked = 0
    for _ in range(60):
        vlon = 179.99 if proj == "antimeridian" else rng.uniform(-180, 180)
        vlat = lat0 + rng.uniform(-0.05, 0.05)
        radius = rng.uniform(200, 3000)
        # random points in the cap (great-circle destination formula)
        d = np.sqrt(rng.uniform(0, 1, 3000)) * radius / catalog.R_EARTH
        az = rng.uniform(0, 2 * np.pi, 3000)
        p1, l1 = np.radians(vlat), np.radians(vlon)
        p2 = np.arcsin(np.sin(p1) * np.cos(d) + np.cos(p1) * np.sin(d) * np.cos(az))
        l2 = l1 + np.arctan2(np.sin(az) * np.sin(d) * np.cos(p1), np.cos(d) - np.sin(p1) * np.sin(p2))
        plon, plat = (np.degrees(l2) + 180) % 360 - 180, np.degrees(p2)
        # a small random triangle near the cap's edge
        c = rng.integers(0, 3000)
        s = rng.uniform(0.0005, 0.02)
        ring = [(plon[c] + s * np.cos(a), plat[c] + s * np.sin(a) / 5) for a in rng.uniform(0, 2 * np.pi, 3)]
        ring = [((x + 180) % 360 - 180, float(np.clip(y, -89.99, 89.99))) for x, y in ring]
        try:
            p = parms([*ring, ring[0]], proj="plate_carree" if proj == "antimeridian" else proj)
        except ParameterError:
            continue
        hit = inside(plon, plat, p.poly, p.proj).any()
        may = discovery.may_enter(np.array([vlon]), np.array([vlat]), radius, p.poly, p.proj)
        assert may or not hit
        checked += hit
    assert checked >= 3
