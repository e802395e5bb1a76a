"""Polygon extensions for discovery: antimeridian unwrapping and the lon/lat box of a region."""

from __future__ import annotations

import numpy as np
import pytest

from icesat2sr.request.polygon import crosses_antimeridian, inside, planar, region_bounds, validate_polygon

CROSSING = validate_polygon("poly", [(179.0, -1.0), (-179.0, -1.0), (-179.0, 1.0), (179.0, 1.0)])


def test_crosses_antimeridian():
    assert crosses_antimeridian(CROSSING)
    assert not crosses_antimeridian(validate_polygon("poly", [(-10, 0), (10, 0), (10, 5)]))
    # a vertex exactly at +-180 means the ring is meant literally
    assert not crosses_antimeridian(validate_polygon("poly", [(180, -1), (-179, -1), (-179, 1), (180, 1)]))
    # the closing edge counts too
    assert crosses_antimeridian(((170.0, 0.0), (175.0, 5.0), (-175.0, 5.0)))


def test_inside_unwraps_a_crossing_ring():
    lon = np.array([179.5, -179.5, 180.0, -180.0, 0.0, 178.5, -178.5])
    lat = np.zeros(7)
    assert inside(lon, lat, CROSSING).tolist() == [True, True, True, True, False, False, False]
    projection, unwrap, x, _ = planar(CROSSING)
    assert projection == "plate_carree" and unwrap and np.degrees(x).max() == pytest.approx(181.0)
    # polar projections are left alone (continuous in longitude)
    polar = validate_polygon("poly", [(170, 80), (-170, 80), (-170, 85), (170, 85)])
    assert planar(polar)[:2] == ("north_polar", False)
    assert inside(np.array([180.0, 0.0]), np.array([82.0, 82.0]), polar).tolist() == [True, False]


def _sample_bounds(poly, proj="auto", n=200_000, seed=0):
    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(-180, 180, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    keep = inside(lon, lat, poly, proj)
    return lon[keep], lat[keep]


@pytest.mark.parametrize(("ring", "expected"), [
    ([(-108, 38), (-107, 38), (-107, 39), (-108, 39)], (-108, 38, -107, 39)),
    ([(179, -1), (-179, -1), (-179, 1), (179, 1)], (179, -1, -179, 1)),
    ([(-180, 80), (-90, 80), (0, 80), (90, 80), (180, 80), (180, 90), (-180, 90)], (-180, 80, 180, 90)),
    ([(-180, -80), (-180, -90), (180, -90), (180, -80), (90, -80), (0, -80), (-90, -80)], (-180, -90, 180, -80)),
])
def test_region_bounds(ring, expected):
    assert region_bounds(validate_polygon("poly", ring)) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("ring", [
    [(-108, 38), (-100, 30), (-95, 45)],
    [(170, 72), (-170, 72), (-150, 85), (150, 85)],         # polar, across 180, pole outside
    [(-30, -75), (30, -75), (20, -85), (-20, -85)],         # south polar, pole outside
    [(60, 75), (120, 75), (-120, 75), (-60, 75), (0, 88)],  # wide north-polar polygon, pole inside
    [(175, 10), (-170, 12), (-172, 20), (178, 25)],          # plate carree across 180
])
def test_region_bounds_hold_every_inside_point(ring):
    poly = validate_polygon("poly", ring)
    west, south, east, north = region_bounds(poly)
    lon, lat = _sample_bounds(poly)
    assert lon.size > 20
    assert south - 1e-9 <= lat.min() and lat.max() <= north + 1e-9
    in_lon = (lon >= west) & (lon <= east) if west <= east else (lon >= west) | (lon <= east)
    assert in_lon.all()
    # and the box is not much larger than the sampled region (latitude)
    assert lat.min() - south < 0.5 and north - lat.max() < 0.5
