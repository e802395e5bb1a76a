"""Our Python client, with the field's names: ``init``, ``atl06``, ``atl06p``, ``atl03s``,
``atl03sp``, ``atl08``, ``atl08p`` (PhoREAL), ``indexer``, ``toregion``, ``gps2utc``.

``init()`` (no URL) runs everything on this machine (the embedded engine, a process pool over
local granules); ``init("host:port")`` or ``init("https://...")`` sends the same requests to an
``icesat2sr serve`` server or a deployed API and decodes the record stream (:mod:`icesat2sr.formats.wire`).
Either way results are GeoDataFrames indexed by UTC ``time`` (:mod:`icesat2sr.formats.frames`), or, with a
``callback(resource, result, result_cnt, total_resources)``, are handed over one granule at a time
and nothing is returned (the seed's callbacks, e.g. :class:`icesat2sr.formats.writers.Hdf5Writer`).
With SlideRule's ``output`` parameter the rows go to that file instead (written here, on the
client's machine, by the shared writers of :mod:`icesat2sr.formats.output`) and the call returns
its frame (``open_on_complete``) or its path, as the official client does.

Examples
--------
>>> from icesat2sr import icesat2
>>> icesat2.init(path="data/")                                       # doctest: +SKIP
>>> gdf = icesat2.atl06p({"cnf": 1, "maxi": 6}, resources=names)     # doctest: +SKIP
>>> gdf.groupby("gt").h_mean.describe()                              # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass

from ..formats import wire
from ..granules.ancillary import requested_fields
from ..granules.assets import check_resource_name, resolve_asset
from ..request.errors import Icesat2srError, ParameterError
from ..request.params import Parms
from ..request.polygon import MAX_POLY_POINTS
from ..request.timeutil import gps_to_utc
from ..science.records import GranuleResult, concat

log = logging.getLogger(__name__)

Callback = Callable[[str, object, int, int], None]
DEFAULT_REMOTE_WORKERS = 4
JOB_POLL_S = 2.0
_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR, 4: logging.CRITICAL}


class RequestError(Icesat2srError):
    """A server refused or failed a request."""


@dataclass
class _Session:
    url: str | None = None           # None = embedded engine
    path: str | None = None          # atlas-local data folder (embedded)
    asset: str = "atlas-local"       # what "icesat2" / no asset means (embedded)
    workers: int | None = None
    timeout: tuple[float, float | None] = (10.0, None)
    http: object = None


_session = _Session()


def init(url: str | None = None, verbose: bool = False, loglevel: int = logging.INFO, organization: object = None,
         *, path: str | None = None, asset: str | None = None, max_workers: int | None = None,
         rqst_timeout: tuple[float, float | None] = (10.0, None), auth: object = None, api_key: str | None = None,
         **_ignored) -> bool:
    """Choose where requests run.

    Parameters
    ----------
    url : str, optional
        None: the embedded engine on this machine. ``"127.0.0.1:9081"`` (an ``icesat2sr serve``
        server; ``http://`` is assumed) or a deployed API's ``https://...`` base URL.
    verbose, loglevel : optional
        Log to the console at this level.
    organization : optional
        Accepted for compatibility with SlideRule scripts; ignored (no authentication).
    path : str, optional
        Embedded: the data folder of ``atlas-local`` (default env ``ICESAT2SR_DATA_DIR``).
    asset : str, optional
        Embedded: the asset used when a request names none (default ``atlas-local``).
    max_workers : int, optional
        Embedded: processes (default all cores); remote: parallel requests (default 4).
    rqst_timeout : (float, float or None)
        Remote: (connect, read) timeouts in seconds; read None waits as long as granules take.
    auth : requests auth, optional
        Remote: e.g. :class:`icesat2sr.client.auth.SigV4` for a deployment that requires IAM
        (template.yaml's default).
    api_key : str, optional
        Remote: the ``x-api-key`` of a deployment made with ``ApiAuth=API_KEY``.

    Returns
    -------
    bool
        True when the engine or server is usable (a server answers ``/source/version``).
    """
    global _session
    if verbose and not logging.getLogger("icesat2sr").handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        logging.getLogger("icesat2sr").addHandler(handler)
        logging.getLogger("icesat2sr").setLevel(loglevel)
    if url is None:
        if path is not None and not os.path.isdir(path):
            raise ParameterError("path", f"data folder {path} does not exist")
        _session = _Session(path=path, asset=asset or "atlas-local", workers=max_workers)
        return True
    import requests

    base = url.rstrip("/")
    if "://" not in base:
        base = "http://" + base
    http = requests.Session()
    http.auth = auth
    if api_key:
        http.headers["x-api-key"] = api_key
    _session = _Session(url=base, workers=max_workers, timeout=tuple(rqst_timeout), http=http)
    info = _get_json("version", {})
    log.info("connected to %s (server %s)", base, info.get("server", {}).get("version"))
    return True


# ---------------------------------------------------------------------- processing APIs
def atl06(parm: dict, resource: str, asset: str | None = None):
    """ATL06-SR elevations of one granule, as a GeoDataFrame indexed by UTC ``time``."""
    return atl06p(parm, asset, resources=[resource], progress=False)


def atl06p(parm: dict, asset: str | None = None, max_workers: int = 0, version: str | int | None = None,
           callback: Callback | None = None, resources: list[str] | None = None, keep_id: bool = False,
           progress: bool | None = None):
    """ATL06-SR elevations of many granules, processed in parallel.

    Parameters
    ----------
    parm : dict
        Request parameters (seed names: ``cnf``, ``srt``, ``len``, ``res``, ``poly``, ...).
    asset : str, optional
        ``atlas-local``, ``atlas-s3``, ``nsidc-s3`` (default: the session's).
    max_workers : int
        Parallel workers (0 = the session's default).
    version : str or int, optional
        ATL03 release for granule discovery (e.g. ``"006"``), when ``parm`` has no ``version``.
    callback : callable, optional
        ``callback(resource, result, result_cnt, total_resources)`` per granule; then nothing is
        returned.
    resources : list of str, optional
        Granule names; None finds them from ``poly``/``t0``/``t1``/``rgt``/``cycle``/``region``.
    keep_id : bool
        Keep the ``extent_id`` column.
    progress : bool, optional
        Progress bar on stderr (default: on for several granules in a terminal).

    Returns
    -------
    GeoDataFrame or None
        One row per elevation (index ``time``, UTC); ``attrs["failed"]`` maps granules that
        failed to the reason. None when ``callback`` is given.
    """
    return _request("atl06", parm, asset, max_workers, version, callback, resources, keep_id, progress)


def atl03s(parm: dict, resource: str, asset: str | None = None):
    """Photon extents of one granule: one row per photon (GeoDataFrame indexed by ``time``)."""
    return atl03sp(parm, asset, resources=[resource], progress=False)


def atl03sp(parm: dict, asset: str | None = None, max_workers: int = 0, version: str | int | None = None,
            callback: Callback | None = None, resources: list[str] | None = None, keep_id: bool = False,
            progress: bool | None = None):
    """Photon extents of many granules; arguments as :func:`atl06p`."""
    return _request("atl03s", parm, asset, max_workers, version, callback, resources, keep_id, progress)


def atl08(parm: dict, resource: str, asset: str | None = None):
    """PhoREAL vegetation metrics of one granule (GeoDataFrame indexed by ``time``)."""
    return atl08p(parm, asset, resources=[resource], progress=False)


def atl08p(parm: dict, asset: str | None = None, max_workers: int = 0, version: str | int | None = None,
           callback: Callback | None = None, resources: list[str] | None = None, keep_id: bool = False,
           progress: bool | None = None):
    """PhoREAL vegetation metrics of many granules; arguments as :func:`atl06p`.

    ``parm["phoreal"]`` (``binsize``, ``geoloc``, ``use_abs_h``, ``send_waveform``,
    ``above_classifier``) configures the algorithm; without it PhoREAL runs with its defaults.
    One row per extent, SlideRule's columns (``h_canopy``, ``h_te_median``, ``canopy_h_metrics``:
    the relief at percentiles 5, 10, ..., 95, 100 as one array per row, ...).

    Examples
    --------
    >>> gdf = icesat2.atl08p({"len": 100, "res": 100, "phoreal": {"binsize": 1.0}}, resources=names)  # doctest: +SKIP
    >>> gdf["canopy_h_metrics"].str[9]      # the 50th percentile                                   # doctest: +SKIP
    """
    return _request("atl08", parm, asset, max_workers, version, callback, resources, keep_id, progress)


def indexer(resources: list[str], asset: str | None = None):
    """SlideRule's index records (``atl03rec.index``) of granules, as a pandas DataFrame.

    Columns: ``name``, ``t0``/``t1`` (GPS seconds), ``lat0``/``lon0`` (first gt3r reference
    point), ``lat1``/``lon1`` (last gt1l one), ``cycle``, ``rgt``.
    """
    import pandas as pd

    names = [check_resource_name(r) for r in resources]
    if _session.url is None:
        from ..discovery.catalog import indexer_record

        a = _asset(asset)
        rows = [indexer_record(a, n) for n in names]
        return pd.DataFrame(rows, columns=list(wire.INDEX.names))
    tables = wire.Tables()
    response = _post("indexer", {"atl03-asset": asset or "icesat2", "resources": names})
    for rectype, payload in wire.iter_records(response.iter_content(chunk_size=None)):
        message = tables.add(rectype, payload)
        if message is not None:
            _log_message(message)
    rows = tables.index_rows()
    frame = pd.DataFrame({n: rows[n] for n in wire.INDEX.names})
    frame["name"] = frame["name"].str.decode("ascii")
    return frame


# ---------------------------------------------------------------------- conversions
def gps2utc(gps_time: float, as_str: bool = True):
    """GPS seconds (since 1980-01-06) to UTC: ``'YYYY-MM-DDThh:mm:ssZ'`` or a naive datetime.

    Examples
    --------
    >>> gps2utc(1235331234)
    '2019-02-27T19:33:36Z'
    """
    when = gps_to_utc(float(gps_time))
    text = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return text if as_str else dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


class Region(list):
    """A region for ``parm["poly"]``: a closed, counter-clockwise list of ``{"lon", "lat"}``.

    It is a list (so ``parms["poly"] = toregion(...)`` works as in the seed) that also answers
    SlideRule 4.x/5.x style lookups: ``region["poly"]`` (the same points), ``region["gdf"]`` (the
    input as a GeoDataFrame), ``region["clusters"]`` (``[]``), ``region["raster"]``.
    """

    def __init__(self, points: list[dict], gdf=None, geojson: str | None = None, cellsize: float = 0.01):
        super().__init__(points)
        self.gdf = gdf
        self._extra = {"clusters": [], "raster": {"geojson": geojson or "", "length": len(geojson or ""),
                                                  "cellsize": cellsize}}

    @property
    def poly(self) -> list[dict]:
        """The region's polygon, as SlideRule's ``[{"lon", "lat"}, ...]`` list."""
        return list(self)

    def __getitem__(self, key):
        if isinstance(key, str):
            if key == "poly":
                return self.poly
            if key == "gdf":
                return self.gdf
            if key in self._extra:
                return self._extra[key]
            raise KeyError(key)
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        """The keys of SlideRule's region dictionary (``sliderule.toregion``)."""
        return ["gdf", "poly", "clusters", "raster"]


def toregion(source, tolerance: float = 0.0, cellsize: float = 0.01, n_clusters: int = 1) -> Region:
    """A polygon region from GeoJSON, a shapefile or a GeoDataFrame.

    Parameters
    ----------
    source : str, path, dict, GeoDataFrame, shapely geometry or list
        A ``.geojson``/``.json`` file, a ``.shp`` file (any CRS; reprojected to lon/lat), a
        GeoJSON dict, a GeoDataFrame, a shapely (Multi)Polygon, a list of ``{"lon","lat"}``, or
        a flat ``[lon, lat, lon, lat, ...]`` list (4 numbers = a bounding box).
    tolerance : float
        Simplification tolerance in degrees (0 = none); use it to get under 16384 points.
    cellsize, n_clusters : optional
        Accepted for compatibility; the region is one polygon (several polygons become their
        convex hull, as SlideRule's client does).

    Returns
    -------
    Region
        Closed, counter-clockwise list of ``{"lon", "lat"}``.

    Raises
    ------
    ParameterError
        Not a polygon, or more than 16384 points after simplification.
    """
    from ..request.polygon import region_from_geojson

    gdf = _to_gdf(source)
    if gdf.crs is not None and not gdf.crs.equals("EPSG:4326") and gdf.crs.is_projected:
        gdf = gdf.to_crs("EPSG:4326")
    geojson = gdf.to_json()
    points = region_from_geojson(json.loads(geojson), tolerance=tolerance)
    if len(points) > MAX_POLY_POINTS:  # region_from_geojson refuses these too; keep the promise here
        raise ParameterError("poly", f"has {len(points)} points; at most {MAX_POLY_POINTS} are supported")
    return Region(points, gdf=gdf, geojson=geojson, cellsize=cellsize)


def _to_gdf(source):
    import geopandas
    import shapely

    if isinstance(source, geopandas.GeoDataFrame):
        return source
    if isinstance(source, geopandas.GeoSeries):
        return geopandas.GeoDataFrame(geometry=source)
    if isinstance(source, shapely.Geometry):
        return geopandas.GeoDataFrame(geometry=[source], crs="EPSG:4326")
    if isinstance(source, dict):
        feats = source.get("features") if source.get("type") == "FeatureCollection" else [
            source if source.get("type") == "Feature" else {"type": "Feature", "geometry": source, "properties": {}}]
        return geopandas.GeoDataFrame.from_features(feats or [], crs="EPSG:4326")
    if isinstance(source, list) and source and isinstance(source[0], dict):
        ring = [(p["lon"], p["lat"]) for p in source]
        return geopandas.GeoDataFrame(geometry=[shapely.Polygon(ring)], crs="EPSG:4326")
    if isinstance(source, list | tuple) and len(source) >= 4 and len(source) % 2 == 0:
        v = [float(x) for x in source]
        if len(v) == 4:
            ring = [(v[0], v[1]), (v[2], v[1]), (v[2], v[3]), (v[0], v[3])]
        else:
            ring = list(zip(v[0::2], v[1::2], strict=True))
        return geopandas.GeoDataFrame(geometry=[shapely.Polygon(ring)], crs="EPSG:4326")
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise ParameterError("poly", f"region file {path} does not exist")
        try:
            return geopandas.read_file(path)
        except Exception as exc:
            raise ParameterError("poly", f"cannot read {path} as GeoJSON or a shapefile ({exc})") from None
    raise ParameterError("poly", f"cannot make a region from {type(source).__name__} "
                                 "(use a .geojson or .shp file, a GeoDataFrame or GeoJSON)")


# ---------------------------------------------------------------------- the work
def _request(kind: str, parm: dict, asset: str | None, max_workers: int, version, callback: Callback | None,
             resources: list[str] | None, keep_id: bool, progress: bool | None):
    from ..formats.frames import result_frame

    parm = dict(parm or {})
    output = _local_output(parm.pop("output", None))
    if output is not None:
        callback = None   # as SlideRule: with output, the rows go to the file
    if asset is not None:
        parm["asset"] = asset
    if version is not None and "version" not in parm:
        parm["version"] = int(version)
    compact = bool(parm.get("compact", False))
    if resources is not None:
        resources = [check_resource_name(r) for r in dict.fromkeys(resources)]
    if _session.url is None:
        results, total = _embedded(kind, parm, resources, max_workers)
    else:
        results, total = _remote(kind, parm, resources, max_workers)
    order = {name: i for i, name in enumerate(resources or [])}
    done, failed = [], {}
    bar = _progress_bar(total, progress)
    try:
        for count, result in enumerate(results, start=1):
            if bar is not None:
                if total is None and result.stats.get("total"):
                    bar.total = int(result.stats["total"])
                bar.update(1)
            if result.error is not None:
                failed[result.granule] = result.error[1]
                log.warning("%s failed: %s", result.granule, result.error[1])
                continue
            if callback is not None:
                callback(result.granule, result_frame(result, keep_id=keep_id), count,
                         total or int(result.stats.get("total", count)))
            else:
                done.append(result)
    finally:
        if bar is not None:
            bar.close()
    if callback is not None:
        return None
    done.sort(key=lambda r: (order.get(r.granule, len(order)), r.granule))
    if output is not None:
        return _write_output(output, kind, parm, done)
    gdf = result_frame(concat(done, kind, compact=compact), keep_id=keep_id)
    gdf.attrs["failed"] = failed
    return gdf


def _local_output(value):
    """The request's ``output``, checked; our client writes it on this machine (no ``s3://``)."""
    if value is None:
        return None
    from ..request.output import parse_output

    output = parse_output("output", value)
    if output.remote:
        raise ParameterError("output.path", "this client writes output files on this machine: name a local path "
                                            "(s3:// output is written by a deployment's jobs)")
    return output


def _write_output(output, kind: str, parm: dict, results: list[GranuleResult]):
    """Write the results to ``output.path``; its frame when ``open_on_complete``, else the path."""
    from ..formats.output import OutputWriter

    with OutputWriter(output.path, output.format, kind=kind, parms=Parms.from_dict(parm).to_dict(),
                      granules=[r.granule for r in results], fields=output.fields,
                      validate=output.with_validation) as writer:
        writer.extend(results)
    if not output.open_on_complete:
        return output.path
    import geopandas
    import pandas as pd

    read = {"geoparquet": geopandas.read_parquet, "parquet": pd.read_parquet, "feather": pd.read_feather,
            "csv": pd.read_csv}
    return read[output.format](output.path)


def _progress_bar(total: int | None, progress: bool | None):
    if progress is None:
        progress = (total is None or total > 1) and (sys.stderr.isatty() or "ipykernel" in sys.modules)
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="granule", desc="granules")


def _asset(name: str | None):
    if name in (None, "icesat2"):
        name = _session.asset
    return resolve_asset(name, _session.path if name == "atlas-local" else None)


def _embedded(kind: str, parm: dict, resources: list[str] | None, max_workers: int):
    from ..batch import run_many

    asset = _asset(parm.get("asset"))
    parm.setdefault("asset", asset.name)
    parms = Parms.from_dict(parm)
    parms.for_kind(kind)
    if resources is None:
        from ..discovery.find import find_granules

        resources = list(find_granules(parms, asset))
    workers = max_workers or _session.workers
    return run_many(asset, resources, parms, kind, workers=workers), len(resources)


# ---------------------------------------------------------------------- remote
def _remote(kind: str, parm: dict, resources: list[str] | None, max_workers: int):
    """Results of a server: one request per named granule (in parallel), or one request that
    lets the server find the granules (``resources: null``)."""
    parm.setdefault("asset", "icesat2")
    Parms.from_dict(parm).for_kind(kind)  # fail here, with the same message, rather than once per granule
    endpoint = kind
    if resources is None:
        return _remote_discovered(kind, parm), None
    workers = max(1, min(max_workers or _session.workers or DEFAULT_REMOTE_WORKERS, len(resources) or 1))
    return _remote_each(kind, endpoint, parm, resources, workers), len(resources)


def _remote_each(kind: str, endpoint: str, parm: dict, resources: list[str], workers: int) -> Iterator[GranuleResult]:
    def one(name: str) -> GranuleResult:
        try:
            response = _post(endpoint, {"resource": name, "parms": parm})
            return _collect(kind, name, response, parm)
        except RequestError as exc:
            return GranuleResult(name, kind, error=(wire.ERROR, str(exc)))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = {pool.submit(one, n) for n in resources}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()


def _collect(kind: str, name: str, response, parm: dict) -> GranuleResult:
    """One granule's stream -> result (error = the first error exceptrec when no rows came)."""
    tables = wire.Tables()
    error = None
    for rectype, payload in wire.iter_records(response.iter_content(chunk_size=None)):
        message = tables.add(rectype, payload)
        if message is not None:
            _log_message(message)
            if message.code is not None and message.code < 0 and message.level >= wire.ERROR_LEVEL and error is None:
                error = (message.code, message.text)
    if error is not None and tables.empty:
        return GranuleResult(name, kind, error=error)
    return tables.result(name, kind, bool(parm.get("compact")), requested_fields(Parms.from_dict(parm)))


def _remote_discovered(kind: str, parm: dict) -> Iterator[GranuleResult]:
    """``resources: null``: the server finds the granules; split its stream at the end-of-granule
    events (:func:`icesat2sr.formats.wire.result_records`), or follow an asynchronous job (HTTP 202)."""
    endpoint = {"atl06": "atl06p", "atl03s": "atl03sp", "atl08": "atl08p"}[kind]
    response = _post(endpoint, {"resources": None, "parms": parm}, accept_job=True)
    if response.status_code == 202:
        yield from _follow_job(kind, response.json())
        return
    tables, errors = wire.Tables(), []
    for rectype, payload in wire.iter_records(response.iter_content(chunk_size=None)):
        message = tables.add(rectype, payload)
        if message is None:
            continue
        done = message.granule_done
        if done is None:
            _log_message(message)
            if message.code is not None and message.code < 0 and message.level >= wire.ERROR_LEVEL:
                errors.append((message.code, message.text))
            continue
        granule, _, total = done
        if errors and tables.empty:
            result = GranuleResult(granule, kind, error=errors[0])
        else:
            result = tables.result(granule, kind, bool(parm.get("compact")), requested_fields(Parms.from_dict(parm)))
        result.stats["total"] = float(total)
        yield result
        tables, errors = wire.Tables(), []


def _follow_job(kind: str, job: dict) -> Iterator[GranuleResult]:
    """Follow a deployed API's asynchronous job until it ends, then read its merged msgpack result.

    The API answers ``202 {"job", "status", "status_url"}``; ``GET /jobs/{id}`` gives ``state``
    (SUBMITTED, RUNNING, then SUCCEEDED, PARTIAL or FAILED), ``total``, ``done``, ``failures``
    (``{"granule", "code", "reason"}``) and, when done, presigned ``urls`` (``msgpack``,
    ``parquet``). The merged result is split back into granules by the rgt/cycle/region bits of
    its extent ids, so callbacks still get one granule at a time.
    """
    from ..science.records import unpack

    job_id = job.get("job")
    if not job_id:
        raise RequestError(f"the server accepted the request but named no job: {job}")
    status_path = str(job.get("status_url") or f"/jobs/{job_id}").lstrip("/")
    log.info("job %s submitted; polling %s", job_id, status_path)
    while True:
        status = _get_json(status_path, None, prefix="")
        state = str(status.get("state", "")).upper()
        if state in ("SUCCEEDED", "PARTIAL", "FAILED"):
            break
        time.sleep(JOB_POLL_S)
    total = float(status.get("total") or 0)
    failures = status.get("failures") or []
    for failure in failures:
        failed = GranuleResult(failure.get("granule", "?"), kind, error=(int(failure.get("code", -1)),
                                                                         str(failure.get("reason"))))
        failed.stats["total"] = total
        yield failed
    url = (status.get("urls") or {}).get("msgpack")
    if state == "FAILED" or not url:
        if state == "FAILED" and not status.get("failures"):
            raise RequestError(f"job {job_id} failed: {status.get('error', 'no reason given')}")
        return
    data = _session.http.get(url, timeout=_session.timeout)
    data.raise_for_status()
    for part in _split_granules(unpack(data.content), skip={f.get("granule") for f in failures}):
        part.stats["total"] = total
        yield part


def _split_granules(merged: GranuleResult, skip: set = frozenset()) -> list[GranuleResult]:
    """Per-granule results from a merged one (``granule`` = the names joined by commas), except
    the names in ``skip`` (failed granules, which have no rows)."""
    import numpy as np

    from ..request.names import parse_name

    names = [n for n in merged.granule.split(",") if n and n not in skip]
    key = {}
    for n in names:
        g = parse_name(n)
        key.setdefault((g.rgt, g.cycle, g.region), n)
    table = {"atl06": merged.elevations, "atl08": merged.vegetation}.get(merged.kind, merged.extents)
    ids = table["extent_id"].astype(np.uint64)
    triples = np.stack([ids >> np.uint64(52), (ids >> np.uint64(36)) & np.uint64(0xFFFF),
                        (ids >> np.uint64(32)) & np.uint64(0xF)], axis=1).astype(np.int64)
    owner = np.array([key.get(tuple(t), names[0] if names else "") for t in triples.tolist()], dtype=object)
    out = []
    for name in names:
        sel = owner == name
        part = GranuleResult(name, merged.kind)
        if merged.kind == "atl06":
            part.elevations = merged.elevations[sel]
        elif merged.kind == "atl08":
            part.vegetation = merged.vegetation[sel]
            if merged.waveforms is not None:   # one waveform per vegetation row, in the same order
                bins = np.repeat(sel, merged.waveforms["num_bins"].astype(np.int64))
                part.waveforms, part.waveform = merged.waveforms[sel], merged.waveform[bins]
        else:
            counts = np.diff(merged.offsets)
            keep = np.repeat(sel, counts)
            part.extents, part.photons = merged.extents[sel], merged.photons[keep]
            part.offsets = np.concatenate(([0], np.cumsum(counts[sel]))).astype(np.int64)
        out.append(part)
    return out


def _url(api: str, prefix: str = "source/") -> str:
    return f"{_session.url}/{prefix}{api}"


def _headers() -> dict:
    from .. import __version__

    return {"x-sliderule-client": f"icesat2sr-v{__version__}", "Content-Type": "application/json"}


def _get_json(api: str, body: dict | None, prefix: str = "source/") -> dict:
    import requests

    try:
        r = _session.http.get(_url(api, prefix), data=None if body is None else json.dumps(body),
                              headers=_headers(), timeout=_session.timeout)
    except requests.RequestException as exc:
        raise RequestError(f"cannot reach {_session.url}: {exc}") from None
    if r.status_code >= 400:
        raise RequestError(f"{api}: HTTP {r.status_code}: {_error_text(r)}")
    return r.json()


def _post(api: str, body: dict, accept_job: bool = False):
    import requests

    if _session.url is None or _session.http is None:
        raise RequestError("not connected: call icesat2.init(url)")
    try:
        r = _session.http.post(_url(api), data=json.dumps(body), headers=_headers(), stream=True,
                               timeout=_session.timeout)
    except requests.RequestException as exc:
        raise RequestError(f"cannot reach {_session.url}: {exc}") from None
    if r.status_code >= 400:
        raise RequestError(f"{api}: HTTP {r.status_code}: {_error_text(r)}")
    kind = r.headers.get("Content-Type", "")
    if not (kind.startswith("application/octet-stream") or (accept_job and r.status_code == 202)):
        raise RequestError(f"{api}: expected a record stream, got {kind or 'no content type'}")
    return r


def _error_text(r) -> str:
    try:
        return str(r.json().get("error", r.text))
    except ValueError:
        return r.text[:500]


def _log_message(message: wire.Message) -> None:
    if message.code is None:
        log.log(_LEVELS.get(message.level, logging.INFO), "%s: %s", message.source, message.text)
    else:
        log.log(_LEVELS.get(message.level, logging.INFO), "<%d> %s", message.code, message.text)


__all__ = ["Region", "RequestError", "atl03s", "atl03sp", "atl06", "atl06p", "atl08", "atl08p", "gps2utc", "indexer",
           "init", "toregion"]
