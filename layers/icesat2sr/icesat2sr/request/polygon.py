"""Region of interest: polygon checks, SlideRule's projections and even-odd test (SPEC §4.5)."""

from __future__ import annotations

import functools

import numpy as np

from .errors import ParameterError

MAX_POLY_POINTS = 16384      # SlideRule's limit

_EDGE_CHUNK = 256


def validate_polygon(key: str, points: list[tuple[float, float]], proj: str = "auto"
                     ) -> tuple[tuple[float, float], ...]:
    """Check a (lon, lat) ring in the projection it will be used in and return it closed.

    Raises
    ------
    ParameterError
        Fewer than three distinct vertices, a vertex the projection cannot draw (the opposite
        pole of a polar projection), or a ring that encloses no area in that projection.
    """
    ring = list(points)
    if len(ring) > 1 and ring[0] == ring[-1]:
        ring = ring[:-1]
    if len(set(ring)) < 3:
        raise ParameterError(key, f"a polygon needs at least 3 distinct points, got {len(set(ring))}")
    closed = (*ring, ring[0])
    projection = choose_projection(closed, proj)
    problem = _undrawable(closed, projection)
    if problem is not None:
        hint = ""
        if projection == "plate_carree" and "no area" in problem:
            pole = "north_polar" if sum(p[1] for p in ring) > 0 else "south_polar"
            if _undrawable(closed, pole) is None:
                hint = f"; a ring around a pole needs \"proj\": \"{pole}\""
        elif projection != "plate_carree" and _undrawable(closed, "plate_carree") is None:
            hint = "; use \"proj\": \"plate_carree\""
        raise ParameterError(key, f"{problem}{hint}")
    return closed


def choose_projection(poly: tuple[tuple[float, float], ...], proj: str = "auto") -> str:
    """The plane a ring is read in: ``proj``, or for ``auto`` SlideRule's choice from the first
    vertex (polar stereographic beyond +-70 deg), unless the ring cannot be drawn there and can
    in plate carree (e.g. a whole-world box, which reaches both poles): then plate carree."""
    if proj != "auto":
        return proj
    return _auto_projection(tuple((float(p[0]), float(p[1])) for p in poly))


@functools.lru_cache(maxsize=64)
def _auto_projection(poly: tuple[tuple[float, float], ...]) -> str:
    lat = poly[0][1]
    first = "north_polar" if lat > 70.0 else "south_polar" if lat < -70.0 else "plate_carree"
    if first != "plate_carree" and _undrawable(poly, first) and not _undrawable(poly, "plate_carree"):
        return "plate_carree"
    return first


def _undrawable(poly: tuple[tuple[float, float], ...], projection: str) -> str | None:
    """Why a closed ring is no polygon in a projection, or None when it is one."""
    import shapely

    lon = np.array([p[0] for p in poly], dtype=np.float64)
    lat = np.array([p[1] for p in poly], dtype=np.float64)
    if projection in ("north_polar", "south_polar"):
        far = -90.0 if projection == "north_polar" else 90.0
        at_far = np.flatnonzero(lat == far)
        if at_far.size:
            i = int(at_far[0])
            return (f"vertex {i} ({lon[i]:g}, {lat[i]:g}) is the {'south' if far < 0 else 'north'} pole, which "
                    f"{projection} cannot draw")
    unwrap = projection == "plate_carree" and crosses_antimeridian(poly)
    x, y = project_points(lon, lat, projection, unwrap)
    extent = float(max(np.ptp(x), np.ptp(y))) ** 2
    # relative to its size: rounding makes a collapsed ring (e.g. +-180 deg meeting in a polar
    # plane) enclose a few 1e-17
    if not extent > 0.0 or abs(shapely.Polygon(np.column_stack((x, y))).area) <= 1e-9 * extent:
        return f"the polygon is degenerate (its points enclose no area in {projection})"
    return None


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


def crosses_antimeridian(poly: tuple[tuple[float, float], ...]) -> bool:
    """Whether a (lon, lat) ring is meant to cross the antimeridian (icesat2sr's reading).

    True when two consecutive vertices are more than 180 deg of longitude apart and no vertex
    lies exactly on +-180 (a ring that uses +-180 as an edge is taken literally). SlideRule takes
    every plate carree ring literally; see ``docs/decisions.md`` (Granule discovery).
    """
    lons = [p[0] for p in poly]
    if any(abs(lon) == 180.0 for lon in lons):
        return False
    return any(abs(b - a) > 180.0 for a, b in zip(lons, lons[1:] + lons[:1], strict=True))


def planar(poly: tuple[tuple[float, float], ...], proj: str = "auto") -> tuple[str, bool, np.ndarray, np.ndarray]:
    """The ring in the plane where :func:`inside` tests it.

    Returns
    -------
    projection : str
        As chosen by :func:`choose_projection`.
    unwrap : bool
        Plate carree longitudes are unwrapped (negative ones + 360 deg) for the polygon and the
        test points (:func:`crosses_antimeridian`).
    x, y : ndarray
        Projected vertices.
    """
    projection = choose_projection(poly, proj)
    unwrap = projection == "plate_carree" and crosses_antimeridian(poly)
    x, y = project_points(np.array([p[0] for p in poly]), np.array([p[1] for p in poly]), projection, unwrap)
    return projection, unwrap, x, y


def project_points(lon: np.ndarray, lat: np.ndarray, projection: str,
                   unwrap: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """:func:`project`, with plate carree longitudes unwrapped to [0, 360) deg when ``unwrap``."""
    lon = np.asarray(lon, dtype=np.float64)
    if unwrap:
        lon = np.where(lon < 0.0, lon + 360.0, lon)
    return project(lon, lat, projection)


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

    Notes
    -----
    In plate carree, a ring that crosses the antimeridian (:func:`crosses_antimeridian`) is
    tested with unwrapped longitudes; SlideRule would take it literally.
    """
    projection, unwrap, vx, vy = planar(poly, proj)
    px, py = project_points(lon, lat, projection, unwrap)
    result = np.zeros(px.shape, dtype=bool)
    # points outside the polygon's bounding box can never toggle
    cand = np.nonzero((px >= vx.min()) & (px <= vx.max()) & (py >= vy.min()) & (py <= vy.max()))[0]
    if cand.size == 0:
        return result
    x, y = px[cand][None, :], py[cand][None, :]
    xi, yi = vx, vy
    xj, yj = np.roll(vx, 1), np.roll(vy, 1)  # edge (i, j = i - 1, cyclic)
    toggles = np.zeros(cand.size, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # horizontal edges never cross
        for s in range(0, len(xi), _EDGE_CHUNK):
            e = slice(s, s + _EDGE_CHUNK)
            a_xi, a_yi = xi[e, None], yi[e, None]
            a_xj, a_yj = xj[e, None], yj[e, None]
            crosses = (a_yi > y) != (a_yj > y)
            x_cross = (a_xj - a_xi) * (y - a_yi) / (a_yj - a_yi) + a_xi
            toggles += np.count_nonzero(crosses & (x < x_cross), axis=0)
    result[cand] = (toggles % 2) == 1
    return result


def region_bounds(poly: tuple[tuple[float, float], ...], proj: str = "auto") -> tuple[float, float, float, float]:
    """A lon/lat box holding every point :func:`inside` accepts: ``(west, south, east, north)``.

    ``west > east`` means the box crosses the antimeridian (CMR's convention).
    """
    return _region_bounds(tuple((float(p[0]), float(p[1])) for p in poly), proj)


@functools.lru_cache(maxsize=64)
def _region_bounds(poly: tuple[tuple[float, float], ...], proj: str) -> tuple[float, float, float, float]:
    projection, unwrap, x, y = planar(poly, proj)
    if projection == "plate_carree":
        west, east = np.degrees(x.min()), np.degrees(x.max())
        if unwrap:
            west, east = (w - 360.0 if w > 180.0 else w for w in (west, east))
        return float(west), float(np.degrees(y.min())), float(east), float(np.degrees(y.max()))
    import shapely

    north = projection == "north_polar"
    r = np.hypot(x, y)
    pole = bool(inside(np.array([0.0]), np.array([90.0 if north else -90.0]), poly, projection)[0])
    r_min = 0.0 if pole else float(shapely.LineString(np.column_stack([x, y])).distance(shapely.Point(0.0, 0.0)))
    lat_far, lat_near = (_polar_lat(v, north) for v in (float(r.max()), r_min))
    west, east = (-180.0, 180.0) if pole else _angular_cover(np.arctan2(y, x) * (1.0 if north else -1.0))
    return (west, lat_far, east, lat_near) if north else (west, lat_near, east, lat_far)


def _polar_lat(r: float, north: bool) -> float:
    """Latitude (deg) at distance ``r`` from the pole in SlideRule's polar projections."""
    phi = np.pi / 2.0 - 2.0 * np.arctan(r / 2.0)
    return float(np.degrees(phi if north else -phi))


def _angular_cover(theta: np.ndarray) -> tuple[float, float]:
    """Longitude range (deg, west/east) swept by a closed ring of angles around the pole.

    Each edge sweeps the shorter arc between its ends (a straight edge that misses the pole).
    """
    start = np.mod(theta[:-1], 2 * np.pi)
    sweep = np.mod(theta[1:] - theta[:-1] + np.pi, 2 * np.pi) - np.pi
    if np.any(np.abs(sweep) > np.pi - 1e-9):  # an edge through the pole: no direction is safe
        return -180.0, 180.0
    lo = np.mod(np.where(sweep < 0, start + sweep, start), 2 * np.pi)
    arcs = list(zip(lo.tolist(), np.abs(sweep).tolist(), strict=True))
    # two turns, so that arcs running past 2 pi cover the start of the second one; the largest
    # uncovered gap is then found among the gaps that end in the second turn
    items = sorted(arcs + [(a + 2 * np.pi, length) for a, length in arcs])
    best_gap, best_at = 0.0, None
    reach = items[0][0] + items[0][1]
    for a, length in items[1:]:
        if a >= 2 * np.pi and a - reach > best_gap:
            best_gap, best_at = a - reach, (reach, a)
        reach = max(reach, a + length)
    if best_at is None:
        return -180.0, 180.0
    west, east = (float((np.degrees(v) + 180.0) % 360.0 - 180.0) for v in (best_at[1], best_at[0]))
    return west, east


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
