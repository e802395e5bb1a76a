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

The processing endpoints live in :mod:`.processing`, the pieces every endpoint uses (``Config``,
``Response``, errors, public messages) in :mod:`.protocol`; their public names are importable from
here too.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping

from .. import __version__
from ..formats import wire
from ..granules.assets import Asset, check_resource_name
from ..request.errors import Icesat2srError, ParameterError, ResourceError
from ..request.params import Parms
from ..request.timeutil import gps_to_utc, utc_to_gps
from .limits import DEFAULT_GRANULE_TIMEOUT_S, DEFAULT_MAX_RESOURCES
from .processing import (
    Job,
    Partial,
    check_count,
    check_output,
    discover,
    endpoint,
    granule_limit,
    max_resources,
    parse_job,
    require_query,
    run_granules,
    stream_job,
    upload_output,
)
from .protocol import JSON, OCTET, PROCESSING, BadRequest, Config, NotFound, Response, public_message, shorten

log = logging.getLogger(__name__)

DEFAULT_VERSION = "v4.20.0"     # reported to clients that do not say which version they are
MAX_CLIENT_HEADER = 64          # characters of the client's version header that are looked at


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
        What the deployment serves (limits, assets).

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
            raise NotFound(f"no endpoint {shorten(route) or '/'}; this server offers {offered} "
                           "(its x-series is atl03x, with fit or phoreal; atl06x/atl08x are not offered)")
        if method.upper() not in ("GET", "POST"):
            return _json({"error": f"method {shorten(method)} not allowed"}, 405)
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
        raise BadRequest(f"request body is not usable JSON ({shorten(str(exc))})") from None
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
        raise NotFound(f"no record type {shorten(repr(rectype), 80)}")
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
                             f"either way), got {shorten(repr(value), 40)}")
        gps_s = value / 1000.0
    elif source in ("GMT", "DATE"):
        gps_s = utc_to_gps(_parse_date(value))
    else:
        raise BadRequest(f"unknown input time format {shorten(repr(source), 40)} (NOW, GPS, GMT, DATE)")
    if target == "GPS":
        return _json({"time": round(gps_s * 1000), "format": "GPS"})
    when = gps_to_utc(gps_s)
    if target == "DATE":
        return _json({"time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "format": "DATE"})
    if target == "GMT":
        day = when.timetuple().tm_yday
        return _json({"time": f"{when.year}:{day}:{when.hour}:{when.minute}:{when.second}", "format": "GMT"})
    raise BadRequest(f"unknown output time format {shorten(repr(target), 40)} (GPS, GMT, DATE)")


def _parse_date(value: object) -> dt.datetime:
    if isinstance(value, str):
        for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y:%j:%H:%M:%S"):
            try:
                return dt.datetime.strptime(value, fmt).replace(tzinfo=dt.UTC)
            except ValueError:
                pass
    raise BadRequest(f"time {shorten(repr(value), 40)} is not a date like 2019-02-27T19:33:36Z or 2019:58:19:33:36")


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
    check_count(len(dict.fromkeys(resources)), limit)
    asset = config.resolve(_asset_name(request.get("atl03-asset") or parms.get("asset")))
    names = [check_resource_name(r) for r in dict.fromkeys(resources)]
    return Response(200, OCTET, _index_stream(asset, names, config))


def _asset_name(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ParameterError("asset", f"expected an asset name, got {shorten(repr(value), 80)}")


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
    "/source/atl06": endpoint("atl06", single=True),
    "/source/atl03s": endpoint("atl03s", single=True),
    "/source/atl06p": endpoint("atl06"),
    "/source/atl03sp": endpoint("atl03s"),
    "/source/atl08": endpoint("atl08", single=True),
    "/source/atl08p": endpoint("atl08"),
    "/source/atl03x": endpoint("atl03x"),
    "/source/indexer": _indexer,
}


# what the endpoints are made of, importable from here as before the module was split
__all__ = [
    "DEFAULT_GRANULE_TIMEOUT_S", "DEFAULT_MAX_RESOURCES", "DEFAULT_VERSION", "JSON", "OCTET", "PROCESSING",
    "BadRequest", "Config", "Job", "NotFound", "Partial", "Response", "check_output", "discover",
    "granule_limit", "handle", "parse_body", "parse_job", "public_message", "require_query", "run_granules",
    "stream_job", "upload_output",
]
