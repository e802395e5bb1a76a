"""Granule discovery: which ATL03 granules a request (``resources: null``) covers.

``find_granules(parms, asset)`` applies, in order:

1. ``rgt``, ``cycle``, ``region``, ``version``: the file name.
2. ``t0``/``t1``: the granule's time span (first/last segment ``delta_time``, from the index
   record) must overlap ``[t0, t1]`` (either end may be open). Without a usable record (a file
   that could not be indexed) the span is the name's start time to :data:`NOMINAL_GRANULE_S`
   later; granules not yet indexed are indexed only when that span overlaps.
3. ``poly`` (with ``proj``): a granule is selected iff one of the requested beams (``beams`` /
   ``track``) has a segment with photons whose reference point is inside the polygon by
   :func:`icesat2sr.request.polygon.inside` -- exactly the test the reader uses to find each beam's
   segment run, so a selected granule always yields that run and a rejected one never does.
   The index record settles most granules: a vertex inside means yes; no vertex inside and the
   polygon farther than ``radius_m`` from every vertex (in the reader's projection) means no.
   Otherwise the granule's reference points are read and tested one by one.

``atlas-local`` and ``atlas-s3`` list the folder or bucket prefix and use the catalogue
(:mod:`icesat2sr.discovery.catalog`), indexing missing or changed granules on the fly and saving them back
(best effort). ``nsidc-s3`` asks NASA CMR (:mod:`icesat2sr.discovery.cmr`) with the polygon's lon/lat box,
the time range and a name pattern; its polygon answer is CMR's, refined only by the reader.
A granule that cannot be indexed is never dropped silently: it is selected whenever its name
and nominal time match, so processing reports why it fails.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ..granules.assets import Asset
from ..granules.h5read import Read
from ..request.errors import ResourceError
from ..request.names import GT_CODE, matches_pattern, parse_name
from ..request.params import Parms
from ..request.polygon import inside, planar, project_points, region_bounds
from ..request.timeutil import parse_utc
from .catalog import R_EARTH, list_granules, update_catalog, write_catalog

log = logging.getLogger(__name__)

NOMINAL_GRANULE_S = 600.0   # longest ATL03 granule (region 2/6/9/13: ~32.6 deg of orbit) is ~512 s
NAME_TIME_MARGIN_S = 10.0   # the name's start time is truncated to whole seconds; allow some slack
_NS = 1_000_000_000


def find_granules(parms: Parms, asset: Asset, *, use_catalog: bool = True, save_catalog: bool = True) -> list[str]:
    """Names of the ATL03 granules of ``asset`` that the request's filters select.

    Parameters
    ----------
    parms : Parms
        The request: ``rgt``, ``cycle``, ``region``, ``version``, ``t0``, ``t1``, ``poly``, ``proj``,
        ``beams``, ``track``.
    asset : Asset
        ``atlas-local`` (a folder), ``atlas-s3`` (bucket/prefix) or ``nsidc-s3`` (CMR).
    use_catalog : bool
        Read the catalogue beside the data (else index every candidate afresh).
    save_catalog : bool
        Write back records indexed on the fly (failures to write are logged, not raised).

    Returns
    -------
    list of str
        Sorted granule names.

    Raises
    ------
    ParameterError
        The folder cannot be listed.
    icesat2sr.discovery.cmr.CmrError
        The CMR search failed (``nsidc-s3``).
    """
    if asset.layout == "nsidc":
        return _search_cmr(parms)
    listing = list_granules(asset)
    names = sorted(n for n in listing if matches_name(n, parms))
    if not (parms.t0 or parms.t1 or parms.poly):
        return names
    lo, hi = query_window(parms)
    # only granules whose name allows an overlap are (re)indexed; fresh records are used as they are
    candidates = [n for n in names if _overlaps(name_window(n), lo, hi)]
    update = update_catalog(asset, names=candidates, listing=listing, rebuild=not use_catalog, write=False)
    if use_catalog and save_catalog and update.changed:
        try:
            write_catalog(asset, update.records.values())
        except Exception as exc:  # a read-only folder or bucket must not stop the search
            log.warning("could not save the catalogue of %s: %s", asset.root, exc)
    selected = []
    for name in names:
        record = update.records.get(name)
        if record is None or not _overlaps(record_window(record), lo, hi):
            continue
        if parms.poly and not record["error"]:
            decision = enters_polygon(record, parms)
            if decision is None:
                decision = reads_enter_polygon(asset, name, parms)
            if not decision:
                continue
        selected.append(name)
    return selected


# ---------------------------------------------------------------------- names and times
def matches_name(name: str, parms: Parms) -> bool:
    """rgt/cycle/region/version and ``name_filter`` of an ATL03 file name against the request (None = any)."""
    g = parse_name(name)
    return g.product == 3 and all(want is None or want == have for want, have in (
        (parms.rgt, g.rgt), (parms.cycle, g.cycle), (parms.region, g.region), (parms.version, g.version))) \
        and (parms.name_filter is None or matches_pattern(name, parms.name_filter))


def query_window(parms: Parms) -> tuple[int | None, int | None]:
    """``t0``/``t1`` as UTC ns (None = open)."""
    return tuple(None if t is None else round(parse_utc(t).timestamp() * 1e6) * 1000 for t in (parms.t0, parms.t1))


def name_window(name: str) -> tuple[int, int]:
    """Time span a granule may cover, from its name: start - margin .. start + nominal duration."""
    start = int(parse_name(name).start.timestamp()) * _NS
    return start - int(NAME_TIME_MARGIN_S * _NS), start + int(NOMINAL_GRANULE_S * _NS)


def record_window(record: dict) -> tuple[int, int]:
    """First/last segment time of an index record, or the name's window when it has none."""
    if record["t0"] is None or record["t1"] is None:
        return name_window(record["name"])
    return record["t0"], record["t1"]


def _overlaps(span: tuple[int, int], lo: int | None, hi: int | None) -> bool:
    return (lo is None or span[1] >= lo) and (hi is None or span[0] <= hi)


# ---------------------------------------------------------------------- polygon
def enters_polygon(record: dict, parms: Parms) -> bool | None:
    """Polygon decision from an index record: True, False, or None when only the file can tell."""
    lon, lat = _selected_vertices(record, parms)
    if lon.size == 0:
        return False
    _, south, _, north = region_bounds(parms.poly, parms.proj)
    if record["lat_max"] < south - 1e-9 or record["lat_min"] > north + 1e-9:
        return False
    if inside(lon, lat, parms.poly, parms.proj).any():
        return True
    if not may_enter(lon, lat, record["radius_m"], parms.poly, parms.proj):
        return False
    return None


def _selected_vertices(record: dict, parms: Parms) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isin(record["vertex_beam"], [GT_CODE[b] for b in parms.selected_beams])
    return record["vertex_lon"][keep], record["vertex_lat"][keep]


def may_enter(lon: np.ndarray, lat: np.ndarray, radius_m: float, poly, proj: str = "auto") -> bool:
    """Whether any point within ``radius_m`` (great circle) of a vertex can be inside the polygon.

    Sound, not exact: False guarantees that no such point passes :func:`icesat2sr.request.polygon.inside`.
    In the reader's plane, the cap of angular radius ``a`` around a vertex lies in a lon/lat box
    (plate carree: ``dlat = a``, ``dlon = asin(sin a / cos lat)``, all longitudes if the cap holds
    a pole) or in a disc of radius ``a * k`` (polar stereographic, ``k`` its largest scale over the
    cap, ``2 / (1 +- sin lat)``); the polygon (its convex hull if self-intersecting) is tested
    against those with shapely.
    """
    import shapely

    projection, unwrap, vx, vy = planar(poly, proj)
    region = shapely.Polygon(np.column_stack([vx, vy]))
    if not region.is_valid:
        region = shapely.MultiPoint(np.column_stack([vx, vy])).convex_hull
    shapely.prepare(region)
    a = radius_m / R_EARTH * (1.0 + 1e-6) + 1e-12
    phi = np.radians(np.asarray(lat, dtype=np.float64))
    px, py = project_points(lon, lat, projection, unwrap)
    if projection == "plate_carree":
        reach = np.abs(phi) + a
        with np.errstate(divide="ignore", invalid="ignore"):
            dlon = np.where(reach < np.pi / 2, np.arcsin(np.clip(np.sin(a) / np.cos(phi), 0.0, 1.0)), np.pi)
        dlon = dlon * (1.0 + 1e-9) + 1e-12
        for shift in (0.0, -2 * np.pi, 2 * np.pi):  # caps that wrap around in longitude
            boxes = shapely.box(px - dlon + shift, py - a, px + dlon + shift, py + a)
            if shapely.intersects(region, boxes).any():
                return True
        return False
    north = projection == "north_polar"
    far = phi - a if north else phi + a  # latitude of the largest scale factor over the cap
    if (north and np.any(far <= -np.pi / 2 + 1e-9)) or (not north and np.any(far >= np.pi / 2 - 1e-9)):
        return True
    scale = 2.0 / (1.0 + np.sin(far)) if north else 2.0 / (1.0 - np.sin(far))
    return bool(shapely.dwithin(region, shapely.points(px, py), a * scale * (1.0 + 1e-9) + 1e-12).any())


def reads_enter_polygon(asset: Asset, name: str, parms: Parms) -> bool:
    """The reader's own test on every segment: a requested beam with photons in a segment whose
    reference point is inside the polygon. A granule that cannot be read counts as entering (the
    processing then reports why it fails)."""
    try:
        with asset.open(name) as h5:
            present = h5.groups("/")
            beams = [b for b in parms.selected_beams if b in present]
            data = h5.read([Read(f"/{b}/geolocation/{d}") for b in beams
                            for d in ("segment_ph_cnt", "reference_photon_lat", "reference_photon_lon")])
    except ResourceError as exc:
        log.warning("%s; selected so that processing reports it", exc)
        return True
    for b in beams:
        counts = data[f"/{b}/geolocation/segment_ph_cnt"]
        lat = data[f"/{b}/geolocation/reference_photon_lat"]
        lon = data[f"/{b}/geolocation/reference_photon_lon"]
        if len(counts) == len(lat) == len(lon) and (inside(lon, lat, parms.poly, parms.proj) & (counts != 0)).any():
            return True
    return False


# ---------------------------------------------------------------------- CMR
def _search_cmr(parms: Parms) -> list[str]:
    from . import cmr

    box = None
    if parms.poly:
        west, south, east, north = region_bounds(parms.poly, parms.proj)
        box = (max(-180.0, west), max(-90.0, south), min(180.0, east), min(90.0, north))
        box = tuple(math.floor(v * 1e6) / 1e6 if i < 2 else math.ceil(v * 1e6) / 1e6 for i, v in enumerate(box))
    temporal = (parms.t0, parms.t1) if (parms.t0 or parms.t1) else None
    granules = cmr.search(version=parms.version or cmr.DEFAULT_VERSION, bounding_box=box, temporal=temporal,
                          pattern=parms.name_filter or cmr.name_pattern(parms.rgt, parms.cycle, parms.region))
    return sorted({g.name for g in granules if matches_name(g.name, parms)})


__all__ = ["NOMINAL_GRANULE_S", "enters_polygon", "find_granules", "matches_name", "may_enter",
           "reads_enter_polygon"]
