"""Polygon inclusion: SlideRule's projections and even-odd rule, and SPEC §4.5's segment run."""

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from icesat2sr.granules.reader import polygon_run
from icesat2sr.request.errors import ParameterError
from icesat2sr.request.polygon import choose_projection, inside, project, region_from_geojson, validate_polygon

SQUARE = validate_polygon("poly", [(-108.0, 38.0), (-107.0, 38.0), (-107.0, 39.0), (-108.0, 39.0)])


def test_projection_choice_from_first_vertex():
    assert choose_projection(((0, 71), (1, 60), (2, 60))) == "north_polar"
    assert choose_projection(((0, -80.75), (1, -81), (2, -81))) == "south_polar"
    assert choose_projection(((0, 38), (1, 39), (2, 39))) == "plate_carree"
    assert choose_projection(((0, 38), (1, 39), (2, 39)), "south_polar") == "south_polar"


def test_polar_formulas():
    # SPEC §4.5 north: r = 2 tan(pi/4 - phi/2), theta = lambda; the pole maps to the origin
    x, y = project(np.array([30.0]), np.array([90.0]), "north_polar")
    assert abs(x[0]) < 1e-12 and abs(y[0]) < 1e-12
    x, y = project(np.array([90.0]), np.array([0.0]), "north_polar")
    assert np.isclose(x[0], 0.0, atol=1e-12) and np.isclose(y[0], 2.0)
    x, y = project(np.array([90.0]), np.array([0.0]), "south_polar")  # theta = -lambda
    assert np.isclose(y[0], -2.0)


def test_inside_square():
    lon = np.array([-107.5, -106.5, -107.5, -108.5])
    lat = np.array([38.5, 38.5, 39.5, 38.5])
    assert inside(lon, lat, SQUARE).tolist() == [True, False, False, False]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(-60, 60), st.floats(-60, 60)), min_size=3, max_size=12),
       st.integers(0, 2**31))
def test_even_odd_matches_shapely_away_from_edges(vertices, seed):
    ring = shapely.Polygon(vertices)
    if not ring.is_valid or ring.area < 1.0:
        return
    poly = validate_polygon("poly", vertices)
    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(-65, 65, 300), rng.uniform(-65, 65, 300)
    points = shapely.points(lon, lat)
    with np.errstate(divide="ignore", invalid="ignore"):   # GEOS flags a zero-length edge (a repeated vertex)
        far = shapely.distance(points, ring.exterior) > 1e-6
    expected = shapely.contains_xy(ring, lon, lat)
    got = inside(lon, lat, poly, "plate_carree")
    assert np.array_equal(got[far], expected[far])


def test_antarctic_polygon_in_polar_projection():
    # the AOI of SlideRule's main test (SPEC §10.1): lat -80.75..-81, lon -70..-65
    aoi = validate_polygon("poly", [(-70, -80.75), (-70, -81.0), (-65, -81.0), (-65, -80.75)])
    assert choose_projection(aoi) == "south_polar"
    got = inside(np.array([-67.5, -67.5, -60.0]), np.array([-80.9, -80.5, -80.9]), aoi)
    assert got.tolist() == [True, False, False]


def test_polygon_run_rules():
    # SPEC §4.5: first inside segment with photons, until the first outside one with photons;
    # zero-photon segments never end the run; later re-entries are dropped
    mask = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1], dtype=bool)
    counts = np.array([5, 0, 3, 0, 4, 0, 2, 6, 6])
    assert polygon_run(mask, counts) == (2, 6)
    assert polygon_run(np.zeros(4, dtype=bool), np.ones(4)) == (0, 0)
    assert polygon_run(np.ones(3, dtype=bool), np.array([0, 0, 0])) == (0, 0)
    assert polygon_run(np.array([0, 1, 1], dtype=bool), np.array([1, 2, 0])) == (1, 3)


def test_region_from_geojson_ccw_closed():
    geo = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": {
        "type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]]}}]}  # clockwise
    region = region_from_geojson(geo)
    assert region[0] == region[-1]
    ring = shapely.LinearRing([(p["lon"], p["lat"]) for p in region])
    assert ring.is_ccw


def test_region_from_geojson_errors():
    with pytest.raises(ParameterError, match="no polygon"):
        region_from_geojson({"type": "Point", "coordinates": [0, 0]})
    big = {"type": "Polygon", "coordinates": [[[np.cos(t), np.sin(t)] for t in np.linspace(0, 6.28, 20000)]]}
    with pytest.raises(ParameterError, match="16384"):
        region_from_geojson(big)
    assert len(region_from_geojson(big, tolerance=0.01)) < 200
