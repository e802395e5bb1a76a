"""Polygons over a pole or the whole world, in every projection: handled (checked against an
independent point-in-polygon computation) or refused with the reason, never silently empty
(issue 10, item 8)."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import shapely

from icesat2sr.discovery import find as discovery
from icesat2sr.request.errors import ParameterError
from icesat2sr.request.params import Parms
from icesat2sr.request.polygon import choose_projection, inside

from ..discovery import discovery_data as dd

WORLD = [(-180, -90), (180, -90), (180, 90), (-180, 90)]
EAST = [(0, -90), (180, -90), (180, 90), (0, 90)]
NORTH_CAP_BOX = [(-180, 80), (180, 80), (180, 90), (-180, 90)]


def parallel(lat: float, n: int = 720) -> list[tuple[float, float]]:
    return [(float(lon), lat) for lon in np.linspace(-180, 180, n, endpoint=False)]


def parms(ring, proj="auto") -> Parms:
    return Parms.from_dict({"poly": [{"lon": lon, "lat": lat} for lon, lat in ring], "proj": proj})


@pytest.fixture(scope="module")
def points():
    rng = np.random.default_rng(8)
    lon = rng.uniform(-179.999, 179.999, 20_000)
    lat = np.degrees(np.arcsin(rng.uniform(-0.99999, 0.99999, 20_000)))   # uniform on the sphere
    return lon, lat


# analytic truth: what each ring encloses, as drawn in the plane of the projection used
@pytest.mark.parametrize("ring, proj, plane, truth, away", [
    (WORLD, "auto", "plate_carree", lambda lon, lat: np.ones(lon.shape, bool), None),
    (WORLD, "plate_carree", "plate_carree", lambda lon, lat: np.ones(lon.shape, bool), None),
    (EAST, "auto", "plate_carree", lambda lon, lat: lon > 0, lambda lon, lat: np.abs(lon) > 1e-6),
    (NORTH_CAP_BOX, "auto", "plate_carree", lambda lon, lat: lat > 80, lambda lon, lat: np.abs(lat - 80) > 1e-6),
    (parallel(-60), "south_polar", "south_polar", lambda lon, lat: lat < -60, lambda lon, lat: np.abs(lat + 60) > 0.01),
    (parallel(-60), "north_polar", "north_polar", lambda lon, lat: lat > -60, lambda lon, lat: np.abs(lat + 60) > 0.1),
    (parallel(75), "auto", "north_polar", lambda lon, lat: lat > 75, lambda lon, lat: np.abs(lat - 75) > 0.01),
    ([*parallel(-80), (180, -80), (180, -90), (-180, -90)], "plate_carree", "plate_carree",
     lambda lon, lat: lat < -80, lambda lon, lat: np.abs(lat + 80) > 1e-6),
])
def test_poles_and_the_world_against_the_truth(points, ring, proj, plane, truth, away):
    lon, lat = points
    p = parms(ring, proj)
    assert choose_projection(p.poly, p.proj) == plane
    keep = np.ones(lon.shape, bool) if away is None else away(lon, lat)
    got = inside(lon[keep], lat[keep], p.poly, p.proj)
    assert got.any()
    assert np.array_equal(got, truth(lon[keep], lat[keep]))


@pytest.mark.parametrize("pole, proj", [(90, "north_polar"), (-90, "south_polar")])
def test_polar_polygons_against_pyproj_and_shapely(points, pole, proj):
    # random star-shaped rings near the pole; the plane comes from pyproj's polar stereographic
    # (a rotation of SlideRule's), the inclusion from shapely
    lon, lat = points
    plane = pyproj.Proj(f"+proj=stere +lat_0={pole} +R=1 +k_0=1")
    rng = np.random.default_rng(abs(pole))
    for _ in range(5):
        angles = np.sort(rng.uniform(-180, 180, 12))
        lats = pole - np.sign(pole) * rng.uniform(5, 40, 12)
        ring = list(zip(angles.tolist(), lats.tolist(), strict=True))
        p = parms(ring, proj)
        x, y = plane([q[0] for q in ring], [q[1] for q in ring])
        px, py = plane(lon, lat)
        polygon = shapely.Polygon(np.column_stack((x, y)))
        distance = shapely.distance(polygon.exterior, shapely.points(px, py))
        keep = distance > 1e-9
        want = shapely.contains_xy(polygon, px[keep], py[keep])
        assert want.any() and np.array_equal(inside(lon[keep], lat[keep], p.poly, p.proj), want)


@pytest.mark.parametrize("ring, proj, message", [
    (WORLD, "south_polar", "vertex 2 (180, 90) is the north pole, which south_polar cannot draw; "
                           "use \"proj\": \"plate_carree\""),
    (WORLD, "north_polar", "vertex 0 (-180, -90) is the south pole, which north_polar cannot draw"),
    (NORTH_CAP_BOX, "north_polar", "enclose no area in north_polar); use \"proj\": \"plate_carree\""),
    (parallel(-60, 8), "auto", "enclose no area in plate_carree); a ring around a pole needs "
                               "\"proj\": \"south_polar\""),
    (parallel(-80, 8), "plate_carree", "a ring around a pole needs \"proj\": \"south_polar\""),
    (parallel(85, 8), "plate_carree", "a ring around a pole needs \"proj\": \"north_polar\""),
])
def test_undrawable_polygons_are_refused_with_the_reason(ring, proj, message):
    with pytest.raises(ParameterError) as info:
        parms(ring, proj)
    assert info.value.key == "poly" and message in str(info.value)


def test_the_whole_world_selects_every_granule(places, asset):
    everything = discovery.find_granules(Parms(), asset)
    assert everything and discovery.find_granules(parms(WORLD), asset) == everything
    south = parms(parallel(-70), "south_polar")
    assert discovery.find_granules(south, asset) == [dd.NAMES["antarctic"]]
