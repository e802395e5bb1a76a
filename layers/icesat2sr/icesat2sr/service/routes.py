"""SlideRule's ``/source/*`` endpoints, independent of any HTTP server (SPEC §8).

:func:`handle` takes a method, a path, headers and a body and returns a :class:`Response`; the
local server (:mod:`icesat2sr.service.server`) and the API Lambda both call it. Processing endpoints
answer the seed's request shapes (``{"atl03-asset", "resource" | "resources", "parms",
"timeout"}``) and the official clients' (``{"resources": [...] | null, "parms": {..., "asset"}}``)
with the record stream of :mod:`icesat2sr.formats.wire`, produced lazily: nothing runs until the body is
iterated, and closing the iterator stops the work (worker processes are terminated).

| endpoint | method | answer |
|---|---|---|
| ``/source/version`` | GET | server version (echoes the client's, SPEC §8.1) |
| ``/source/definition`` | GET | record definition ``{"rectype": ...}`` |
| ``/source/time``, ``/source/datetime`` | GET | time conversion (GPS ms <-> UTC date) |
| ``/source/health``, ``/health`` | GET | ``{"healthy": true}`` |
| ``/source/atl06``, ``/source/atl06p`` | POST | ``atl06rec`` stream |
| ``/source/atl03s``, ``/source/atl03sp`` | POST | ``atl03rec`` stream |
| ``/source/atl08``, ``/source/atl08p`` | POST | ``atl08rec`` (+ ``waverec``) stream: PhoREAL |
| ``/source/atl03x`` | POST | an output file (``output`` required): ``arrowrec`` records |
| ``/source/indexer`` | POST | ``atl03rec.index`` stream |

Errors in the request itself are HTTP 400 with ``{"error": ...}``; a granule that cannot be
processed is an ``exceptrec`` inside a 200 stream, and the other granules still stream. Messages
sent to clients name granules and parameter keys, never a path on this machine.

Every request is bounded: at most ``max_resources`` granules (the request's value, capped by the
server's :attr:`Config.max_resources`), found by discovery or named; ``rqst_timeout`` ends a
stream, ``node_timeout`` ends one granule (see docs/parameters.md).

With ``output`` (SlideRule's server-written file) the rows go to a file in the server's own scratch
folder (:attr:`Config.scratch`, never a client-named server path) instead of records; when every
granule is done the file is streamed back as ``arrowrec.meta``/``arrowrec.data`` (and
``arrowrec.eof`` with ``with_checksum``) records naming the client's ``output.path``, then deleted.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from .. import __version__
from ..formats import wire
from ..granules.assets import Asset, check_resource_name, resolve_asset
from ..request.errors import Icesat2srError, ParameterError, ResourceError
from ..request.params import Parms
from ..request.timeutil import gps_to_utc, utc_to_gps
from ..science.records import GranuleResult
from .limits import DEFAULT_GRANULE_TIMEOUT_S, DEFAULT_MAX_RESOURCES

log = logging.getLogger(__name__)

JSON = "application/json"
OCTET = "application/octet-stream"
DEFAULT_VERSION = "v4.20.0"     # reported to clients that do not say which version they are
CHUNK_BYTES = 1 << 20           # coalesce records into writes of about this size
MAX_CLIENT_HEADER = 64          # characters of the client's version header that are looked at
# endpoints that read granules (the others answer from memory)
PROCESSING = frozenset({"/source/atl06", "/source/atl03s", "/source/atl08", "/source/atl06p", "/source/atl03sp",
                        "/source/atl08p", "/source/atl03x", "/source/indexer"})


@dataclass
class Response:
    """An HTTP answer: ``body`` is bytes, or an iterator of byte chunks for a stream.

    An empty chunk in a stream is a heartbeat (nothing to send yet): a server may use it to
    check that the client is still there.
    """

    status: int
    content_type: str
    body: bytes | Iterator[bytes]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def streaming(self) -> bool:
        return not isinstance(self.body, bytes | bytearray)


@dataclass
class Config:
    """What a deployment serves.

    Parameters
    ----------
    asset : str
        The asset behind the clients' ``icesat2`` (and the seed's default ``atlas-local``).
    path : str, optional
        Its data folder (``atlas-local``) or ``bucket/prefix`` (``atlas-s3``).
    workers : int, optional
        Processes per request (default: CPU count). ``1`` without a granule time limit processes
        granules in the calling thread.
    granule_timeout : float, optional
        Seconds one granule may run before its process is killed and it fails with a TIMEOUT
        error; a request's ``node_timeout`` may shorten it, never lengthen it. None: no limit
        unless the request sets one.
    inline : bool
        Granules run one at a time in the calling thread and no per-granule limit applies (the
        API Lambda's sync route: its whole request runs in a process killed at its deadline).
    heartbeat_s : float
        How often a stream yields an empty chunk while it waits for results.
    max_resources : int
        Largest number of granules one request may name or discover (SlideRule's
        ``max_resources``); a request may ask for fewer, never more.
    environment : str
        Reported by ``/source/version``.
    scratch : str, optional
        Folder for output files being written (default: a private folder made on first use
        under the system's temporary folder).
    remote_output : str, optional
        ``s3://bucket/prefix/`` under which requests may have their ``output`` written (uploaded,
        then announced by an ``arrowrec.remote`` record); None: no ``s3://`` output.
    output_files : bool
        Whether the streaming endpoints write ``output`` files (the API Lambda, without pyarrow,
        leaves them to its jobs).
    """

    asset: str = "atlas-local"
    path: str | None = None
    workers: int | None = None
    granule_timeout: float | None = DEFAULT_GRANULE_TIMEOUT_S
    inline: bool = False
    heartbeat_s: float = 0.5
    max_resources: int = DEFAULT_MAX_RESOURCES
    environment: str = "icesat2sr-local"
    scratch: str | None = None
    remote_output: str | None = None
    output_files: bool = True
    started: float = field(default_factory=time.time)

    def __post_init__(self):
        if self.granule_timeout is not None:
            from ..batch import check_time_limit

            check_time_limit(self.granule_timeout, "granule_timeout")

    def scratch_file(self, fmt: str) -> str:
        """A fresh file name in the scratch folder (created private, 0700, on first use)."""
        if self.scratch is None:
            self.scratch = tempfile.mkdtemp(prefix="icesat2sr-output-")
        os.makedirs(self.scratch, mode=0o700, exist_ok=True)
        return os.path.join(self.scratch, f"{uuid.uuid4().hex}.{fmt}")

    def resolve(self, name: str | None) -> Asset:
        """The :class:`Asset` for a requested asset name (``icesat2`` = this deployment's)."""
        if name in (None, "icesat2", self.asset):
            return resolve_asset(self.asset, self.path)
        return resolve_asset(name, None)


class BadRequest(Icesat2srError):
    """The request cannot be served as sent (HTTP 400)."""


class NotFound(Icesat2srError):
    """No such endpoint or record type (HTTP 404)."""


# ---------------------------------------------------------------------- entry point
def handle(method: str, path: str, headers: Mapping[str, str], body: bytes, config: Config) -> Response:
    """Answer one request.

    Parameters
    ----------
    method : str
        ``GET`` or ``POST`` (the clients send bodies with both).
    path : str
        URL path, e.g. ``/source/atl06p`` (a query string is ignored).
    headers : mapping
        Request headers (any case).
    body : bytes
        Request body: JSON, or empty.
    config : Config

    Returns
    -------
    Response
    """
    headers = {str(k).lower(): v for k, v in headers.items()}
    route = path.split("?", 1)[0].rstrip("/")
    endpoint = _ROUTES.get(route)
    try:
        if endpoint is None:
            offered = ", ".join(r for r in _ROUTES if r.startswith("/source/"))
            raise NotFound(f"no endpoint {_shorten(route) or '/'}; this server offers {offered} "
                           "(its x-series is atl03x, with fit or phoreal; atl06x/atl08x are not offered)")
        if method.upper() not in ("GET", "POST"):
            return _json({"error": f"method {_shorten(method)} not allowed"}, 405)
        return endpoint(parse_body(body), headers, config)
    except NotFound as exc:
        return _json({"error": public_message(str(exc), config)}, 404)
    except (ParameterError, ResourceError, BadRequest) as exc:
        return _json({"error": public_message(str(exc), config)}, 400)
    except RecursionError:   # a structure nested beyond what any request needs
        return _json({"error": "request is nested too deeply"}, 400)
    except Icesat2srError as exc:   # e.g. granule discovery could not reach its catalogue
        return _json({"error": public_message(str(exc), config)}, 502)
    except Exception as exc:
        log.exception("%s %s failed", method, route)
        return _json({"error": f"internal error ({type(exc).__name__}); the server log has the details"}, 500)


MAX_JSON_DEPTH = 64   # SlideRule's requests nest 3 levels; a polygon is a flat list of points


def parse_body(body: bytes | str) -> dict:
    """A request body as a JSON object (empty body: ``{}``).

    Raises
    ------
    BadRequest
        Not UTF-8, not JSON (NaN and Infinity are not JSON), nested deeper than
        :data:`MAX_JSON_DEPTH`, integers beyond Python's digit limit, or not an object.
    """
    if isinstance(body, bytes | bytearray):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"request body is not UTF-8 text (byte {exc.start})") from None
    if not body.strip():
        return {}
    if _depth(body) > MAX_JSON_DEPTH:
        raise BadRequest(f"request body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") \
            from None
    except (ValueError, RecursionError) as exc:   # e.g. an integer of more than 4300 digits
        raise BadRequest(f"request body is not usable JSON ({_shorten(str(exc))})") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    return data


def _depth(text: str) -> int:
    """Deepest bracket nesting, brackets inside strings included (an over-estimate is harmless)."""
    depth = deepest = 0
    for char in re.findall(r"[\[\]{}]", text):
        depth += 1 if char in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


# an absolute path's folders, e.g. "/srv/data/" in "/srv/data/ATL03_...h5" (not URLs: "https://host/x")
_FOLDERS = re.compile(r"(?<![\w.:/~-])/(?:[^\s/'\"():,;]+/)+")


def public_message(text: str, config: Config | None = None) -> str:
    """``text`` without this machine's folders: a client learns which granule or key failed,
    not where the server keeps its data."""
    if config is not None and config.path and config.asset == "atlas-local":
        for root in {config.path.rstrip("/"), os.path.realpath(config.path)}:
            if root and root != "/":
                text = text.replace(root, f"<{config.asset}>")
    return _shorten(_FOLDERS.sub("", text), 1000)


def _json(data: object, status: int = 200) -> Response:
    return Response(status, JSON, json.dumps(data).encode())


# ---------------------------------------------------------------------- small endpoints
_CLIENT_VERSION = re.compile(r"(?<!\d)v?(\d{1,4})\.(\d{1,4})\.(\d{1,4})(?!\d)", re.ASCII)


def _version(request: dict, headers: dict, config: Config) -> Response:
    """Echo the client's version so both 4.x and 5.x clients pass their version check.

    Only the first :data:`MAX_CLIENT_HEADER` characters are read, and only an ASCII
    ``major.minor.patch`` of at most four digits each is echoed; anything else gets the default.
    """
    m = _CLIENT_VERSION.search(str(headers.get("x-sliderule-client", ""))[:MAX_CLIENT_HEADER])
    version = f"v{m[1]}.{m[2]}.{m[3]}" if m else DEFAULT_VERSION
    build = f"icesat2sr-{__version__}"
    launch = dt.datetime.fromtimestamp(config.started, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _json({
        "server": {"version": version, "build": build, "launch": launch,
                   "duration": int((time.time() - config.started) * 1000),
                   "environment": config.environment, "cluster": "icesat2sr"},
        "icesat2": {"version": version, "build": build},
        "icesat2sr": {"version": __version__, "build": build},
    })


def _definition(request: dict, headers: dict, config: Config) -> Response:
    rectype = request.get("rectype")
    if not isinstance(rectype, str):
        raise BadRequest("definition needs {\"rectype\": <record type name>}")
    definition = wire.definition(rectype)
    if definition is None:
        raise NotFound(f"no record type {_shorten(repr(rectype), 80)}")
    return _json(definition)


def _health(request: dict, headers: dict, config: Config) -> Response:
    return _json({"healthy": True})


MAX_GPS_MS = 1e13   # +-317 years around 1980: beyond any date a granule has


def _time(request: dict, headers: dict, config: Config) -> Response:
    """SlideRule's time conversion: ``input`` NOW/GPS/GMT/DATE -> ``output`` GPS/GMT/DATE."""
    value, source, target = request.get("time"), request.get("input", "GPS"), request.get("output", "DATE")
    if source == "NOW" or value == "NOW":
        gps_s = utc_to_gps(dt.datetime.now(dt.UTC))
    elif source == "GPS":
        if isinstance(value, bool) or not isinstance(value, int | float) or not -MAX_GPS_MS <= value <= MAX_GPS_MS:
            raise BadRequest(f"time must be milliseconds since the GPS epoch (at most {MAX_GPS_MS:.0e} "
                             f"either way), got {_shorten(repr(value), 40)}")
        gps_s = value / 1000.0
    elif source in ("GMT", "DATE"):
        gps_s = utc_to_gps(_parse_date(value))
    else:
        raise BadRequest(f"unknown input time format {_shorten(repr(source), 40)} (NOW, GPS, GMT, DATE)")
    if target == "GPS":
        return _json({"time": round(gps_s * 1000), "format": "GPS"})
    when = gps_to_utc(gps_s)
    if target == "DATE":
        return _json({"time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "format": "DATE"})
    if target == "GMT":
        day = when.timetuple().tm_yday
        return _json({"time": f"{when.year}:{day}:{when.hour}:{when.minute}:{when.second}", "format": "GMT"})
    raise BadRequest(f"unknown output time format {_shorten(repr(target), 40)} (GPS, GMT, DATE)")


def _parse_date(value: object) -> dt.datetime:
    if isinstance(value, str):
        for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y:%j:%H:%M:%S"):
            try:
                return dt.datetime.strptime(value, fmt).replace(tzinfo=dt.UTC)
            except ValueError:
                pass
    raise BadRequest(f"time {_shorten(repr(value), 40)} is not a date like 2019-02-27T19:33:36Z or 2019:58:19:33:36")


# ---------------------------------------------------------------------- processing
@dataclass
class Job:
    """A validated processing request."""

    kind: str                 # "atl06", "atl03s" or "atl08"
    asset: Asset
    parms: Parms
    resources: list[str]
    timeout: float | None     # rqst_timeout: the whole request
    granule_timeout: float | None = None   # one granule: node_timeout, at most the server's limit
    limit_name: str = "node_timeout"       # which limit granule_timeout is


def parse_job(kind: str, request: dict, config: Config, *, single: bool = False) -> Job:
    """Validate a processing request (seed or client shape) and find its granules.

    Parameters
    ----------
    kind : {"atl06", "atl03s", "atl08"}
    request : dict
        The request body.
    config : Config
    single : bool
        A single-granule endpoint (``/source/atl06``, ``/source/atl03s``, ``/source/atl08``): exactly one granule
        must be named.

    Raises
    ------
    ParameterError, ResourceError, BadRequest
        A bad parameter, a malformed granule name, or too many granules.
    """
    parms = request.get("parms", {})
    if parms is None:
        parms = {}
    if not isinstance(parms, dict):
        raise ParameterError("parms", "must be a JSON object")
    parms = dict(parms)
    asset_name = request.get("atl03-asset") or parms.get("asset") or "icesat2"
    parms["asset"] = asset_name
    if request.get("timeout") is not None:   # the seed's top-level timeout: validated as parms' own
        parms["timeout"] = request["timeout"]
    resources = _resources(request, parms)
    parms.pop("resources", None)
    checked = Parms.from_dict(parms)
    checked.for_kind(kind)  # what the kind cannot do is a 400 before any work
    if single and (resources is None or len(resources) != 1):
        raise ParameterError("resource", "this endpoint processes one granule: name it in \"resource\" "
                                         "(the ...p endpoints take a list or a query)")
    asset = config.resolve(asset_name)
    limit = max_resources(checked, config)
    if resources is None:
        resources = discover(checked, asset, limit)
    names = [check_resource_name(r) for r in dict.fromkeys(resources)]
    _check_count(len(names), limit)
    if checked.output is not None and not config.output_files:
        raise ParameterError("output", "this deployment writes output files in its asynchronous jobs: send the "
                                       "request to atl06p, atl03sp or atl03x")
    check_output(kind, checked, config.remote_output)
    rqst_timeout, node_timeout, _ = checked.deadlines
    return Job(kind, asset, checked, names, rqst_timeout, *granule_limit(node_timeout, config))


def granule_limit(node_timeout: float | None, config: Config) -> tuple[float | None, str]:
    """A granule's time limit and its name: the request's ``node_timeout`` when it is shorter than
    the server's :attr:`Config.granule_timeout` (a request may shorten the limit, never lift it)."""
    if config.inline:
        return None, "none"
    server = config.granule_timeout
    if node_timeout is not None and (server is None or node_timeout <= server):
        return node_timeout, "node_timeout"
    return server, "the server's granule time limit"


def max_resources(parms: Parms, config: Config) -> int:
    """The request's granule limit: its ``max_resources``, never above the server's."""
    return min(parms.max_resources or config.max_resources, config.max_resources)


def _check_count(count: int, limit: int, what: str = "granules requested") -> None:
    if count > limit:
        raise BadRequest(f"{count} {what}; at most {limit} per request (max_resources): split the "
                         f"request into lists of at most {limit} resources, or narrow it (t0/t1, poly, rgt, "
                         "cycle, region)")


_FILTERS = ("poly", "t0", "t1", "rgt", "cycle", "region")


def check_output(kind: str, parms: Parms, remote_prefix: str | None = None) -> None:
    """Where a request's results may go: ``atl03x`` only to an ``output`` file, ``s3://`` only
    under the deployment's ``remote_prefix``.

    Raises
    ------
    ParameterError
    """
    if kind == "atl03x" and parms.output is None:
        raise ParameterError("output", "atl03x returns a file: give output {\"path\": ..., \"format\": ...} "
                                       "(sliderule.run sets it)")
    if parms.output is None or not parms.output.remote:
        return
    if not remote_prefix:
        raise ParameterError("output.path", "this server writes no s3:// output (it streams the file back): "
                                            "name a client-side path")
    if not parms.output.path.startswith(remote_prefix):
        raise ParameterError("output.path", f"s3:// output must be under {remote_prefix}")


def _resources(request: dict, parms: dict) -> list[str] | None:
    if "resource" in request:  # the seed's single-granule endpoints
        value = request["resource"]
        if not isinstance(value, str):
            raise ParameterError("resource", f"expected a granule name, got {_shorten(repr(value), 80)}")
        return [value]
    value = request.get("resources", parms.get("resources"))
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ParameterError("resources", f"expected a list of granule names, got {_shorten(repr(value), 80)}")
    return value


def discover(parms: Parms, asset: Asset, limit: int | None = None) -> list[str]:
    """Granules matching the request (``resources: null``), through the discovery module.

    A query needs at least one filter (``poly``, ``t0``/``t1``, ``rgt``, ``cycle``, ``region``):
    an empty request does not list a whole bucket. More than ``limit`` matches is a
    :class:`BadRequest` saying how to split the request.
    """
    require_query(parms)
    try:
        from ..discovery.find import find_granules
    except ImportError:
        raise BadRequest("no granules named and granule discovery is not available: "
                         "name the granules in \"resources\"") from None
    names = list(find_granules(parms, asset))
    if limit is not None:
        _check_count(len(names), limit, "granules match the query")
    return names


def require_query(parms: Parms) -> None:
    """A discovery query must select something: an empty one would list a whole bucket."""
    if not any(getattr(parms, key) for key in _FILTERS):
        raise BadRequest("no granules named and no query: name them in \"resources\" or select them with "
                         f"{', '.join(_FILTERS)}")


def stream_job(job: Job, config: Config) -> Iterator[bytes]:
    """The record stream of a job: per-granule records as granules complete, in ~1 MB chunks.

    Empty chunks are heartbeats. Closing the iterator stops the work.
    """
    total = len(job.resources)
    yield wire.event_record(wire.INFO_LEVEL, f"{job.kind}: processing {total} granule(s)")
    output = job.parms.output
    writer = _output_writer(job, config) if output is not None else None
    if not total:
        yield wire.exception_record(wire.EMPTY_SUBSET, wire.WARNING_LEVEL, "no granules match the request")
        if writer is None:
            return
    ordered = _ordered_output(writer, job) if writer is not None and job.kind in TIME_ORDERED_KINDS else None
    done = 0
    counts: dict[str, tuple[int, int]] = {}   # rows and extents sent in parts, per granule
    results = run_granules(job.asset, job.resources, job.parms, job.kind, workers=config.workers,
                           heartbeat_s=config.heartbeat_s, timeout=job.timeout, granule_timeout=job.granule_timeout,
                           limit_name=job.limit_name)
    try:
        for item in results:
            if item is None:
                yield b""
            elif isinstance(item, Partial):   # a chunk of a granule: passed on as it comes
                rows, extents = counts.get(item.result.granule, (0, 0))
                more = wire.table_counts(item.result)
                counts[item.result.granule] = (rows + more[0], extents + more[1])
                if ordered is not None:
                    ordered.part(item.result.granule, item.result, item.beam, item.horizon_ns, item.beams)
                elif writer is not None:   # x-series frames: written as they come
                    writer.add(item.result)
                else:
                    yield from _coalesce(wire.data_records(item.result))
            elif isinstance(item, str):  # the request's deadline passed: the names not done
                yield wire.exception_record(wire.TIMEOUT, wire.ERROR_LEVEL,
                                            _shorten(f"request timed out after {job.timeout:g} s (rqst_timeout); "
                                                     f"not processed: {item}", 250))
                return
            else:
                done += 1
                if item.error:
                    item.error = (item.error[0], public_message(item.error[1], config))
                if ordered is not None:
                    ordered.end(item.granule, failed=item.error is not None)
                if item.granule in counts:   # its rows came in parts: only its end is left
                    yield from _coalesce(wire.end_records(item, done, total, rows=writer is None,
                                                          counted=counts.pop(item.granule)))
                    continue
                if writer is not None and ordered is None and item.rows:
                    writer.add(item)
                yield from _coalesce(wire.result_records(item, done, total, rows=writer is None))
        if ordered is not None:
            ordered.close()
        if writer is not None:
            yield from _send_file(writer, output)
    except Exception as exc:  # a bug: end the stream cleanly (a broken stream makes clients retry)
        log.exception("%s stream failed", job.kind)
        yield wire.exception_record(wire.ERROR, wire.CRITICAL_LEVEL, f"internal error ({type(exc).__name__})")
    finally:
        results.close()
        if ordered is not None:
            ordered.discard()
        if writer is not None:
            writer.abort()
            writer.path.unlink(missing_ok=True)


def _output_writer(job: Job, config: Config):
    from ..formats.output import OutputWriter

    output = job.parms.output
    return OutputWriter(config.scratch_file(output.format), output.format, kind=job.kind, parms=job.parms.to_dict(),
                        granules=job.resources, fields=output.fields, validate=output.with_validation)


def _ordered_output(writer, job: Job):
    """The output file's rows as they stream in: each granule's in time order, granules in the
    request's order, a granule that fails left out (as a file written from whole results)."""
    from ..engine import empty_result
    from ..formats.stream import OrderedOutput

    return OrderedOutput(writer, job.resources, atomic=True,
                         empty=lambda name: empty_result(name, job.parms, job.kind))


def _send_file(writer, output) -> Iterator[bytes]:
    """Close the output file and deliver it as SlideRule does: streamed back (the client writes
    ``output.path``), or uploaded to its ``s3://`` path and announced by ``arrowrec.remote``."""
    path = writer.finish()
    size = path.stat().st_size
    yield wire.event_record(wire.INFO_LEVEL, f"output: {writer.rows} rows, {size} bytes of {output.format} "
                                             f"to {output.path}")
    if output.remote:
        yield from upload_output(path, output)
    else:
        yield from _coalesce(wire.file_records(path, output.path, checksum=output.with_checksum))


def upload_output(path: str | os.PathLike, output, s3=None) -> Iterator[bytes]:
    """Upload a finished output file to its ``s3://`` path; yield the ``arrowrec.remote`` record."""
    import boto3

    bucket, key = output.s3_location()
    size = os.path.getsize(path)
    (s3 or boto3.client("s3")).upload_file(str(path), bucket, key)
    yield wire.remote_record(output.path, size)


def _coalesce(records: Iterable[bytes], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    buffer: list[bytes] = []
    length = 0
    for record in records:
        buffer.append(record)
        length += len(record)
        if length >= size:
            yield b"".join(buffer)
            buffer, length = [], 0
    if buffer:
        yield b"".join(buffer)


@dataclass
class Partial:
    """A chunk of a granule's result, passed on before the granule is done (``beam``,
    ``horizon_ns`` and ``beams`` as :class:`icesat2sr.engine.Part` has them)."""

    result: GranuleResult
    beam: int = 0
    horizon_ns: int = 2**63 - 1
    beams: int = 1


STREAMED_KINDS = ("atl03s", "atl06", "atl08", "atl03x")   # every kind's rows come chunk by chunk
TIME_ORDERED_KINDS = ("atl03s", "atl06", "atl08")   # their files hold each granule's rows in time order


def run_granules(asset: Asset, names: list[str], parms: Parms, kind: str, *, workers: int | None = None,
                 heartbeat_s: float = 0.5, timeout: float | None = None, granule_timeout: float | None = None,
                 limit_name: str = "node_timeout") -> Iterator[GranuleResult | Partial | str | None]:
    """Process granules, yielding each result as it completes.

    Each granule runs in a process of its own (:func:`icesat2sr.batch.pooled`, at most
    ``workers`` at a time), so a process that dies (e.g. killed for lack of memory) fails only its
    granule, and its memory is returned after every granule. Yields ``None`` every
    ``heartbeat_s`` while waiting. When ``timeout`` seconds have passed since the start, yields a
    comma-separated string of the unfinished names (then stops); a granule still running after
    ``granule_timeout`` seconds is killed and reported as that granule's TIMEOUT error
    (``limit_name`` names the limit). Closing the generator kills the running processes at once.
    ``workers=1`` without a ``granule_timeout`` runs in the calling thread instead (no processes;
    the timeout is then only noticed between granules).
    A granule of a streamed kind (:data:`STREAMED_KINDS`) first comes in :class:`Partial` results
    (rows are never held whole); its final result then has no rows.
    """
    from .. import pool
    from ..batch import granule_results, pooled, worker_count
    from ..engine import Part

    workers = worker_count(workers, len(names))
    streamed = kind in STREAMED_KINDS
    if workers == 1 and granule_timeout is None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for i, name in enumerate(names):
            if deadline is not None and time.monotonic() > deadline:
                yield ", ".join(names[i:])
                return
            for item in granule_results(asset, name, parms, kind, streamed):
                yield Partial(item.result, item.beam, item.horizon_ns, item.beams) if isinstance(item, Part) else item
        return
    events = pooled(asset, names, parms, kind, workers=workers, timeout=granule_timeout, deadline=timeout,
                    heartbeat_s=heartbeat_s, parts=streamed, limit_name=limit_name)
    try:
        for item in events:
            if isinstance(item, Part):
                yield Partial(item.result, item.beam, item.horizon_ns, item.beams)
            elif isinstance(item, pool.Expired):
                yield ", ".join(item.keys)
                return
            else:
                yield item
    finally:
        events.close()


def _process(kind: str, single: bool = False) -> Callable[[dict, dict, Config], Response]:
    def endpoint(request: dict, headers: dict, config: Config) -> Response:
        job = parse_job(kind, request, config, single=single)
        return Response(200, OCTET, stream_job(job, config))
    endpoint.__name__ = f"_{kind}{'' if single else 'p'}"
    return endpoint


# ---------------------------------------------------------------------- indexer
def _indexer(request: dict, headers: dict, config: Config) -> Response:
    resources = request.get("resources")
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise ParameterError("resources", "indexer needs a list of granule names")
    parms = request.get("parms") or {}
    if not isinstance(parms, dict):
        raise ParameterError("parms", "must be a JSON object")
    limit = config.max_resources
    if parms.get("max_resources") is not None:
        limit = max_resources(Parms.from_dict({"max_resources": parms["max_resources"]}), config)
    _check_count(len(dict.fromkeys(resources)), limit)
    asset = config.resolve(_asset_name(request.get("atl03-asset") or parms.get("asset")))
    names = [check_resource_name(r) for r in dict.fromkeys(resources)]
    return Response(200, OCTET, _index_stream(asset, names, config))


def _asset_name(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ParameterError("asset", f"expected an asset name, got {_shorten(repr(value), 80)}")


def _index_stream(asset: Asset, names: list[str], config: Config) -> Iterator[bytes]:
    import numpy as np

    from ..discovery.catalog import indexer_record

    for name in names:
        try:
            record = indexer_record(asset, name)
        except ResourceError as exc:
            yield wire.exception_record(exc.code, wire.ERROR_LEVEL, public_message(str(exc), config))
            continue
        row = np.zeros(1, dtype=wire.INDEX)
        for key in wire.INDEX.names:
            row[key] = record[key].encode("ascii", "replace") if key == "name" else record[key]
        yield from wire.index_records(row)


_ROUTES: dict[str, Callable[[dict, dict, Config], Response]] = {
    "/source/version": _version,
    "/source/definition": _definition,
    "/source/time": _time,
    "/source/datetime": _time,
    "/source/health": _health,
    "/health": _health,
    "/source/atl06": _process("atl06", single=True),
    "/source/atl03s": _process("atl03s", single=True),
    "/source/atl06p": _process("atl06"),
    "/source/atl03sp": _process("atl03s"),
    "/source/atl08": _process("atl08", single=True),
    "/source/atl08p": _process("atl08"),
    "/source/atl03x": _process("atl03x"),
    "/source/indexer": _indexer,
}
