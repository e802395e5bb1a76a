"""Region of interest: polygon checks, SlideRule's projections and even-odd test (SPEC §4.5)."""

from __future__ import annotations

import numpy as np

from .errors import ParameterError

_EDGE_CHUNK = 256


def validate_polygon(key: str, points: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """Check a (lon, lat) ring and return it closed.

    Raises
    ------
    ParameterError
        Fewer than three distinct vertices, or a ring that encloses no area.
    """
    import shapely

    ring = list(points)
    if len(ring) > 1 and ring[0] == ring[-1]:
        ring = ring[:-1]
    if len(set(ring)) < 3:
        raise ParameterError(key, f"a polygon needs at least 3 distinct points, got {len(set(ring))}")
    if shapely.Polygon(ring).area <= 0.0:
        raise ParameterError(key, "the polygon is degenerate (its points enclose no area)")
    return (*ring, ring[0])


def choose_projection(poly: tuple[tuple[float, float], ...], proj: str = "auto") -> str:
    """SlideRule's projection choice: from the first vertex when ``proj`` is ``auto``."""
    if proj != "auto":
        return proj
    lat = poly[0][1]
    return "north_polar" if lat > 70.0 else "south_polar" if lat < -70.0 else "plate_carree"


def project(lon: np.ndarray, lat: np.ndarray, projection: str) -> tuple[np.ndarray, np.ndarray]:
    """Project degrees to SlideRule's planar coordinates (polar stereographic or plate carree)."""
    lam = np.radians(np.asarray(lon, dtype=np.float64))
    phi = np.radians(np.asarray(lat, dtype=np.float64))
    if projection == "north_polar":
        r, theta = 2.0 * np.tan(np.pi / 4.0 - phi / 2.0), lam
    elif projection == "south_polar":
        r, theta = -2.0 * np.tan(-np.pi / 4.0 - phi / 2.0), -lam
    else:
        return lam, phi
    return r * np.cos(theta), r * np.sin(theta)


def inside(lon: np.ndarray, lat: np.ndarray, poly: tuple[tuple[float, float], ...],
           proj: str = "auto") -> np.ndarray:
    """Even-odd (ray casting) inclusion of points in a polygon, in the chosen projection.

    Parameters
    ----------
    lon, lat : ndarray
        Test points in degrees.
    poly : sequence of (lon, lat)
        Closed ring as returned by :func:`validate_polygon`.
    proj : str
        ``auto``, ``plate_carree``, ``north_polar`` or ``south_polar``.

    Returns
    -------
    ndarray of bool
    """
    projection = choose_projection(poly, proj)
    vx, vy = project(np.array([p[0] for p in poly]), np.array([p[1] for p in poly]), projection)
    px, py = project(lon, lat, projection)
    result = np.zeros(px.shape, dtype=bool)
    # points outside the polygon's bounding box can never toggle
    cand = np.nonzero((px >= vx.min()) & (px <= vx.max()) & (py >= vy.min()) & (py <= vy.max()))[0]
    if cand.size == 0:
        return result
    x, y = px[cand][None, :], py[cand][None, :]
    xi, yi = vx, vy
    xj, yj = np.roll(vx, 1), np.roll(vy, 1)  # edge (i, j = i - 1, cyclic)
    toggles = np.zeros(cand.size, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for s in range(0, len(xi), _EDGE_CHUNK):
            e = slice(s, s + _EDGE_CHUNK)
            a_xi, a_yi = xi[e, None], yi[e, None]
            a_xj, a_yj = xj[e, None], yj[e, None]
            crosses = (a_yi > y) != (a_yj > y)
            x_cross = (a_xj - a_xi) * (y - a_yi) / (a_yj - a_yi) + a_xi
            toggles += np.count_nonzero(crosses & (x < x_cross), axis=0)
    result[cand] = (toggles % 2) == 1
    return result


def region_from_geojson(geojson: dict, tolerance: float = 0.0) -> list[dict[str, float]]:
    """A GeoJSON polygon region as SlideRule's ``poly``: closed, counter-clockwise ``{"lon","lat"}``.

    Parameters
    ----------
    geojson : dict
        FeatureCollection, Feature or Polygon/MultiPolygon geometry (lon/lat degrees).
        Several polygons are replaced by their convex hull, as SlideRule's ``toregion`` does.
    tolerance : float
        Douglas-Peucker simplification tolerance in degrees (0 = none).

    Raises
    ------
    ParameterError
        Not a polygon, empty, or more than 16384 points after simplification.
    """
    import shapely
    from shapely.geometry import shape
    from shapely.geometry.polygon import orient

    from .params import MAX_POLY_POINTS

    if not isinstance(geojson, dict):
        raise ParameterError("poly", "GeoJSON must be an object")
    if geojson.get("type") == "FeatureCollection":
        geometries = [f.get("geometry") for f in geojson.get("features") or []]
    elif geojson.get("type") == "Feature":
        geometries = [geojson.get("geometry")]
    else:
        geometries = [geojson]
    try:
        shapes = [shape(g) for g in geometries if g]
    except Exception as exc:
        raise ParameterError("poly", f"invalid GeoJSON geometry ({exc})") from None
    polygons = [s for s in shapes if s.geom_type in ("Polygon", "MultiPolygon") and not s.is_empty]
    if not polygons:
        raise ParameterError("poly", "the GeoJSON holds no polygon")
    merged = shapely.union_all(polygons) if len(polygons) > 1 else polygons[0]
    if merged.geom_type != "Polygon":
        merged = merged.convex_hull
    if tolerance > 0:
        merged = merged.simplify(tolerance, preserve_topology=True)
    ring = list(orient(merged, sign=1.0).exterior.coords)
    if len(ring) > MAX_POLY_POINTS:
        raise ParameterError("poly", f"has {len(ring)} points; at most {MAX_POLY_POINTS} are supported "
                                     "(use a simplification tolerance)")
    return [{"lon": float(x), "lat": float(y)} for x, y, *_ in ring]
