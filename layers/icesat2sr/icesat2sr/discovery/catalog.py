"""Index records of ATL03 granules and the GeoParquet catalogue that caches them.

An index record describes one granule from its segment reference positions and times only
(``geolocation/{segment_ph_cnt, reference_photon_lat, reference_photon_lon, delta_time}`` of
every beam, plus the three ``ancillary_data`` scalars SlideRule's indexer reads), read through
h5coro. It holds the time span, bounds, and per beam the reference points of every ``step``-th
segment with photons (the *vertices*) with ``radius_m``: no segment with photons lies farther
than that from a vertex of its beam. Discovery decides polygon inclusion exactly from that (see
:mod:`icesat2sr.discovery.find`).

The catalogue is one GeoParquet file per data folder, :data:`CATALOG_NAME`, beside the granules
(``atlas-local``: in the folder; ``atlas-s3``: an object under the prefix). One row per granule,
keyed by name and by the file's size and modification time, so :func:`update_catalog` re-indexes
changed files, adds new ones and drops removed ones. A granule that cannot be indexed keeps a row
with ``error`` set (and no geometry), so it is not re-read until the file changes.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..granules.assets import CATALOG_NAME, Asset
from ..granules.h5read import Read
from ..request.errors import ParameterError, ResourceError
from ..request.names import BEAMS, GT_CODE, parse_name
from ..request.timeutil import ATLAS_SDP_EPOCH_GPS, delta_time_to_ns

log = logging.getLogger(__name__)

DEFAULT_STEP = 100          # vertex every 100 segments with photons (~2 km)
CATALOG_VERSION = 1         # bump when the columns change: older files are rebuilt
R_EARTH = 6371008.8         # sphere for vertex distances (m); the tests in discovery use the same
S3_PAGE_SIZE = 1000         # keys per S3 listing page
_GEO = ("segment_ph_cnt", "reference_photon_lat", "reference_photon_lon", "delta_time")
_ANCILLARY = ("atlas_sdp_gps_epoch", "start_delta_time", "end_delta_time")
_CACHE: dict[tuple[str, int, int], dict[str, dict]] = {}  # (path, mtime_ns, size) -> records
_CACHE_LOCK = threading.Lock()

# column -> dtype of the catalogue (geometry and the list columns are added separately)
COLUMNS = {
    "name": "string", "size": "int64", "mtime_ns": "int64",
    "rgt": "int16", "cycle": "int16", "region": "int16", "version": "int16", "revision": "int16",
    "t0": "datetime64[ns, UTC]", "t1": "datetime64[ns, UTC]", "gps_t0": "float64", "gps_t1": "float64",
    "lat0": "float64", "lon0": "float64", "lat1": "float64", "lon1": "float64",
    "lat_min": "float64", "lat_max": "float64", "lon_min": "float64", "lon_max": "float64",
    "n_segments": "int64", "n_photons": "int64", "beams": "string",
    "step": "int32", "radius_m": "float64", "catalog_version": "int16", "error": "string",
}
LIST_COLUMNS = {"vertex_lon": np.float64, "vertex_lat": np.float64, "vertex_beam": np.uint8}


# ---------------------------------------------------------------------- one granule
def index_granule(asset: Asset, name: str, step: int = DEFAULT_STEP) -> dict:
    """Index record of one ATL03 granule (see the module docstring).

    Parameters
    ----------
    asset : Asset
        Where the granule lives.
    name : str
        ATL03 granule file name.
    step : int
        Keep the reference point of every ``step``-th segment with photons (and the last one).

    Returns
    -------
    dict
        Keys of :data:`COLUMNS` and :data:`LIST_COLUMNS` (``t0``/``t1`` as int ns UTC; ``size`` and
        ``mtime_ns`` are left to the caller). A granule that cannot be read gives a record with
        ``error`` set and empty vertices; this function never raises for a bad file.
    """
    g = parse_name(name)
    record = _empty_record(name, step)
    record.update(rgt=g.rgt, cycle=g.cycle, region=g.region, version=g.version, revision=g.revision)
    if g.product != 3:
        record["error"] = f"{name}: not an ATL03 granule"
        return record
    try:
        with asset.open(name) as h5:
            present = h5.groups("/")
            beams = [b for b in BEAMS if b in present]
            reads = [Read(f"/{b}/geolocation/{d}") for b in beams for d in _GEO]
            if "ancillary_data" in present:
                reads += [Read(f"/ancillary_data/{d}", optional=True) for d in _ANCILLARY]
            data = h5.read(reads)
    except ResourceError as exc:
        record["error"] = str(exc)
        return record
    except Exception as exc:  # never let one file stop a catalogue
        log.exception("unexpected failure indexing %s", name)
        record["error"] = f"{name}: {exc!r}"
        return record
    _fill(record, beams, data, step)
    return record


def _empty_record(name: str, step: int) -> dict:
    nan = float("nan")
    record = dict.fromkeys(("lat0", "lon0", "lat1", "lon1", "lat_min", "lat_max", "lon_min", "lon_max",
                            "gps_t0", "gps_t1", "radius_m"), nan)
    record.update(name=name, size=0, mtime_ns=0, t0=None, t1=None, n_segments=0, n_photons=0, beams="",
                  step=int(step), catalog_version=CATALOG_VERSION, error=None)
    record.update({key: np.zeros(0, dtype=dt) for key, dt in LIST_COLUMNS.items()})
    return record


def _fill(record: dict, beams: list[str], data: dict, step: int) -> None:
    """Compute the record's fields from the datasets read."""
    lons, lats, codes, radius = [], [], [], 0.0
    times, ends = [], {}
    for b in beams:
        cnt = data[f"/{b}/geolocation/segment_ph_cnt"].astype(np.int64)
        lat = data[f"/{b}/geolocation/reference_photon_lat"].astype(np.float64)
        lon = data[f"/{b}/geolocation/reference_photon_lon"].astype(np.float64)
        dt = data[f"/{b}/geolocation/delta_time"].astype(np.float64)
        if not (len(cnt) == len(lat) == len(lon) == len(dt)):
            record["error"] = f"{record['name']}: /{b}/geolocation datasets differ in length"
            return
        record["n_segments"] += len(cnt)
        record["n_photons"] += int(cnt[cnt > 0].sum())
        if len(lat):
            ends[b] = (lat[0], lon[0], lat[-1], lon[-1])
        with np.errstate(invalid="ignore"):
            times.append(dt[(dt > 0) & (dt < 1e10)])
            good = (cnt > 0) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
        idx = np.flatnonzero(good)
        if idx.size == 0:
            continue
        v, r = _vertices(lon[idx], lat[idx], step)
        lons.append(lon[idx][v])
        lats.append(lat[idx][v])
        codes.append(np.full(len(v), GT_CODE[b], dtype=np.uint8))
        radius = max(radius, r)
        record["beams"] += ("," if record["beams"] else "") + b
    if lons:
        all_lon, all_lat = np.concatenate(lons), np.concatenate(lats)
        record.update(vertex_lon=all_lon, vertex_lat=all_lat, vertex_beam=np.concatenate(codes), radius_m=radius)
        # bounds cover every segment with photons: the vertices' plus the radius around them
        pad = np.degrees(radius / R_EARTH)
        record.update(lat_min=max(-90.0, float(all_lat.min()) - pad), lat_max=min(90.0, float(all_lat.max()) + pad),
                      lon_min=float(all_lon.min()), lon_max=float(all_lon.max()))
    t = np.concatenate(times) if times else np.zeros(0)
    if t.size:
        record["t0"], record["t1"] = (int(delta_time_to_ns(v)) for v in (t.min(), t.max()))
    epoch, start, end = (_scalar(data.get(f"/ancillary_data/{d}")) for d in _ANCILLARY)
    epoch = ATLAS_SDP_EPOCH_GPS if epoch is None else epoch
    start = float(t.min()) if start is None and t.size else start
    end = float(t.max()) if end is None and t.size else end
    if start is not None and end is not None:
        record["gps_t0"], record["gps_t1"] = epoch + start, epoch + end
    # SlideRule's indexer: first gt3r reference point, last gt1l one (else the outermost beams present)
    first = ends.get("gt3r") or next((ends[b] for b in reversed(BEAMS) if b in ends), None)
    last = ends.get("gt1l") or next((ends[b] for b in BEAMS if b in ends), None)
    if first is not None:
        record["lat0"], record["lon0"] = float(first[0]), float(first[1])
        record["lat1"], record["lon1"] = float(last[2]), float(last[3])


def _scalar(value) -> float | None:
    if value is None or np.size(value) == 0:
        return None
    return float(np.ravel(value)[0])


def _vertices(lon: np.ndarray, lat: np.ndarray, step: int) -> tuple[np.ndarray, float]:
    """Positions of every ``step``-th point (and the last), and the largest distance (m) from any
    point to the nearer of the two vertices around it."""
    n = len(lon)
    v = np.arange(0, n, step)
    if v[-1] != n - 1:
        v = np.append(v, n - 1)
    j = np.arange(n) // step
    lo, hi = v[j], v[np.minimum(j + 1, len(v) - 1)]
    d = np.minimum(great_circle(lon, lat, lon[lo], lat[lo]), great_circle(lon, lat, lon[hi], lat[hi]))
    return v, float(d.max()) if n else 0.0


def great_circle(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle distance (m) on the sphere of radius :data:`R_EARTH` (haversine)."""
    l1, p1, l2, p2 = (np.radians(np.asarray(a, dtype=np.float64)) for a in (lon1, lat1, lon2, lat2))
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin((l2 - l1) / 2) ** 2
    return 2.0 * R_EARTH * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def indexer_record(asset: Asset, name: str) -> dict:
    """SlideRule's ``atl03rec.index`` fields of one granule (SPEC §7.3).

    Returns
    -------
    dict
        ``name``, ``t0``/``t1`` (GPS seconds: ``atlas_sdp_gps_epoch + start/end_delta_time``; the
        first/last segment time when ``ancillary_data`` is missing), ``lat0``/``lon0`` (first gt3r
        reference point), ``lat1``/``lon1`` (last gt1l one), ``cycle``, ``rgt`` (from the name).

    Raises
    ------
    ResourceError
        The granule cannot be read.
    """
    record = index_granule(asset, name, step=1 << 30)
    if record["error"]:
        raise ResourceError(name, record["error"].removeprefix(f"{name}: "))
    return to_indexer(record)


def to_indexer(record: dict) -> dict:
    """The ``atl03rec.index`` fields of an index record (or of a catalogue row as a dict)."""
    return {"name": record["name"], "t0": float(record["gps_t0"]), "t1": float(record["gps_t1"]),
            "lat0": float(record["lat0"]), "lon0": float(record["lon0"]), "lat1": float(record["lat1"]),
            "lon1": float(record["lon1"]), "cycle": int(record["cycle"]), "rgt": int(record["rgt"])}


# ---------------------------------------------------------------------- listing
def list_granules(asset: Asset) -> dict[str, tuple[int, int]]:
    """ATL03 granules of a folder or bucket prefix: name -> (size in bytes, mtime in ns).

    Other files (ATL08 companions, the catalogue, anything else) are ignored.
    """
    if asset.layout != "flat":
        raise ParameterError("asset", f"{asset.name} is searched through NASA CMR, not listed")
    out = {}
    if asset.driver == "file":
        try:
            entries = list(os.scandir(asset.root))
        except OSError as exc:
            raise ParameterError("asset", f"cannot list {asset.root}: {exc.strerror}") from None
        for e in entries:
            if _is_atl03(e.name) and e.is_file():
                st = e.stat()
                out[e.name] = (int(st.st_size), int(st.st_mtime_ns))
        return out
    bucket, prefix = _bucket_prefix(asset)
    pages = _s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/",
                                                          PaginationConfig={"PageSize": S3_PAGE_SIZE})
    for page in pages:
        for obj in page.get("Contents", []):
            name = obj["Key"][len(prefix):]
            if _is_atl03(name):
                out[name] = (int(obj["Size"]), _ns(obj["LastModified"]))
    return out


def _is_atl03(name: str) -> bool:
    try:
        return parse_name(name).product == 3
    except ResourceError:
        return False


def _ns(when) -> int:
    return round(when.timestamp() * 1e6) * 1000


def _s3():
    import boto3

    from ..granules.assets import DATA_REGION

    return boto3.client("s3", region_name=boto3.session.Session().region_name or DATA_REGION)


def _bucket_prefix(asset: Asset) -> tuple[str, str]:
    bucket, _, prefix = asset.root.strip("/").partition("/")
    return bucket, (prefix.rstrip("/") + "/" if prefix else "")


def catalog_location(asset: Asset) -> str:
    """Path (``atlas-local``) or ``s3://bucket/key`` (``atlas-s3``) of the catalogue."""
    if asset.driver == "file":
        return os.path.join(asset.root, CATALOG_NAME)
    bucket, prefix = _bucket_prefix(asset)
    return f"s3://{bucket}/{prefix}{CATALOG_NAME}"


# ---------------------------------------------------------------------- the file
def load_catalog(asset: Asset):
    """The catalogue as a GeoDataFrame, or None when absent, unreadable or of an older version."""
    try:
        import geopandas
    except ImportError:  # e.g. a Lambda without the local extra: discovery indexes on the fly
        return None
    try:
        if asset.driver == "file":
            path = catalog_location(asset)
            if not os.path.isfile(path):
                return None
            gdf = geopandas.read_parquet(path)
        else:
            bucket, prefix = _bucket_prefix(asset)
            client = _s3()
            try:
                body = client.get_object(Bucket=bucket, Key=prefix + CATALOG_NAME)["Body"].read()
            except client.exceptions.NoSuchKey:
                return None
            gdf = geopandas.read_parquet(io.BytesIO(body))
    except Exception as exc:
        log.warning("ignoring unreadable catalogue %s: %s", catalog_location(asset), exc)
        return None
    missing = set(COLUMNS) - set(gdf.columns)
    if missing or (len(gdf) and (gdf["catalog_version"] != CATALOG_VERSION).any()):
        log.info("catalogue %s is of another version; it will be rebuilt", catalog_location(asset))
        return None
    return gdf


def load_records(asset: Asset) -> dict[str, dict] | None:
    """The catalogue as index records (name -> dict; treat them as read-only), or None.

    Local catalogues are kept in memory until the file changes (a server answers many requests).
    """
    key = None
    if asset.driver == "file":
        path = catalog_location(asset)
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = (path, st.st_mtime_ns, st.st_size)
        with _CACHE_LOCK:
            if key in _CACHE:
                return _CACHE[key]
    records = records_from_frame(frame) if (frame := load_catalog(asset)) is not None else None
    if key is not None and records is not None:
        with _CACHE_LOCK:
            for stale in [k for k in _CACHE if k[0] == key[0]]:  # older versions of this file
                del _CACHE[stale]
            while len(_CACHE) >= 8:
                del _CACHE[next(iter(_CACHE))]  # the oldest entry
            _CACHE[key] = records
    return records


def records_from_frame(gdf) -> dict[str, dict]:
    """Catalogue rows as index records (name -> dict), the inverse of :func:`frame_from_records`."""
    out = {}
    if gdf is None:
        return out
    columns = {c: gdf[c].to_numpy() for c in COLUMNS if c not in ("t0", "t1")}
    times = {c: gdf[c].to_numpy(dtype="datetime64[ns]").astype(np.int64) for c in ("t0", "t1")}
    nat = np.iinfo(np.int64).min
    for i in range(len(gdf)):
        r = {c: _plain(v[i]) for c, v in columns.items()}
        for c in ("t0", "t1"):
            r[c] = None if times[c][i] == nat else int(times[c][i])
        for c, dt in LIST_COLUMNS.items():
            value = gdf[c].iat[i]
            r[c] = np.zeros(0, dtype=dt) if value is None else np.asarray(value, dtype=dt)
        out[r["name"]] = r
    return out


def _plain(value):
    import pandas as pd

    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def frame_from_records(records: Iterable[dict]):
    """GeoDataFrame of index records; geometry = per-beam track lines through the vertices."""
    import geopandas
    import pandas as pd

    records = sorted(records, key=lambda r: r["name"])
    data = {}
    for c, dtype in COLUMNS.items():
        values = [r[c] for r in records]
        if c in ("t0", "t1"):
            data[c] = pd.to_datetime(pd.array([pd.NA if v is None else v for v in values], dtype="Int64"),
                                     utc=True, unit="ns")
        else:
            data[c] = pd.array(values, dtype=dtype)
    for c, dt in LIST_COLUMNS.items():
        data[c] = pd.Series([np.asarray(r[c], dtype=dt) for r in records], dtype=object)
    return geopandas.GeoDataFrame(data, geometry=[track_geometry(r) for r in records], crs="EPSG:4326")


def track_geometry(record: dict):
    """MultiLineString of each beam's vertices, broken where a beam crosses the antimeridian.

    None for a granule without photons or that could not be indexed.
    """
    import shapely

    lon, lat, beam = record["vertex_lon"], record["vertex_lat"], record["vertex_beam"]
    if len(lon) == 0:
        return None
    parts = []
    starts = np.flatnonzero(np.diff(beam.astype(np.int16)) != 0) + 1
    for b_lon, b_lat in zip(np.split(lon, starts), np.split(lat, starts), strict=True):
        cuts = np.flatnonzero(np.abs(np.diff(b_lon)) > 180.0) + 1
        for p_lon, p_lat in zip(np.split(b_lon, cuts), np.split(b_lat, cuts), strict=True):
            xy = np.column_stack([p_lon, p_lat])
            parts.append(xy if len(xy) > 1 else np.vstack([xy, xy]))
    return shapely.MultiLineString(parts)


def write_catalog(asset: Asset, records: Iterable[dict]) -> str:
    """Write the catalogue atomically (local: temporary file + rename); returns its location."""
    gdf = frame_from_records(records)
    location = catalog_location(asset)
    if asset.driver == "file":
        fd, tmp = tempfile.mkstemp(prefix=".icesat2sr-catalog-", suffix=".tmp", dir=asset.root)
        os.close(fd)
        try:
            gdf.to_parquet(tmp, write_covering_bbox=True)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; others may read the catalogue
            os.replace(tmp, location)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return location
    buffer = io.BytesIO()
    gdf.to_parquet(buffer, write_covering_bbox=True)
    bucket, prefix = _bucket_prefix(asset)
    _s3().put_object(Bucket=bucket, Key=prefix + CATALOG_NAME, Body=buffer.getvalue())
    return location


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------- updates
@dataclass
class CatalogUpdate:
    """What :func:`update_catalog` did.

    ``records`` holds every up-to-date record it knows (name -> dict), including unchanged ones.
    """

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    written: str | None = None
    records: dict[str, dict] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether the update added, updated or removed any granule (the catalogue must be written)."""
        return bool(self.added or self.updated or self.removed)


def update_catalog(asset: Asset, *, names: Iterable[str] | None = None, step: int = DEFAULT_STEP,
                   rebuild: bool = False, write: bool = True, listing: dict | None = None,
                   threads: int = 4, progress: Callable[[int, int], None] | None = None) -> CatalogUpdate:
    """Bring the catalogue up to date with the folder (or bucket prefix) and write it.

    Parameters
    ----------
    asset : Asset
        ``atlas-local`` or ``atlas-s3``.
    names : iterable of str, optional
        Only (re)index these granules (discovery's candidates); others keep their rows when
        still up to date. Default: every ATL03 granule listed.
    step : int
        Vertex spacing (segments with photons); rows made with another step are re-indexed.
    rebuild : bool
        Ignore the existing catalogue.
    write : bool
        Write the catalogue when something changed (or when it does not exist yet).
    listing : dict, optional
        A :func:`list_granules` result to reuse.
    threads : int
        Granules indexed at once.
    progress : callable, optional
        Called with ``(done, total)`` after each granule indexed.

    Returns
    -------
    CatalogUpdate
    """
    started = time.perf_counter()
    listing = list_granules(asset) if listing is None else listing
    loaded = None if rebuild else load_records(asset)
    old = loaded or {}
    wanted = set(listing) if names is None else set(names) & set(listing)
    result = CatalogUpdate()
    result.removed = sorted(n for n in old if n not in listing)
    todo = []
    for name in sorted(listing):
        r = old.get(name)
        fresh = r is not None and (r["size"], r["mtime_ns"]) == listing[name] and r["step"] == step
        if fresh:
            result.records[name] = r
            result.unchanged += 1
        elif name in wanted:
            todo.append(name)
    done = 0

    def work(name: str) -> dict:
        record = index_granule(asset, name, step)
        record["size"], record["mtime_ns"] = listing[name]
        return record

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(todo) or 1))) as pool:
        for record in pool.map(work, todo):
            name = record["name"]
            (result.updated if name in old else result.added).append(name)
            if record["error"]:
                result.failed[name] = record["error"]
            result.records[name] = record
            done += 1
            if progress:
                progress(done, len(todo))
    if write and (result.changed or loaded is None):
        result.written = write_catalog(asset, result.records.values())
    result.seconds = time.perf_counter() - started
    return result


def build_catalog(asset: Asset, **kwargs) -> CatalogUpdate:
    """Index every granule afresh and write the catalogue (:func:`update_catalog` with ``rebuild``)."""
    return update_catalog(asset, rebuild=True, **kwargs)


__all__ = ["CATALOG_NAME", "COLUMNS", "DEFAULT_STEP", "LIST_COLUMNS", "CatalogUpdate", "build_catalog",
           "catalog_location", "frame_from_records", "index_granule", "indexer_record", "list_granules",
           "load_catalog", "load_records", "records_from_frame", "to_indexer", "track_geometry", "update_catalog",
           "write_catalog"]
