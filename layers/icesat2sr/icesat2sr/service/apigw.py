"""What API Gateway changes for the synchronous ``/source/*`` routes: time and size limits.

A REST API integration gives up after 29 s, and a Lambda's synchronous answer holds at most 6 MB,
base64 included (binary bodies grow by 4/3), so a record stream is collected within
:data:`DEADLINE_S` and :data:`MAX_BODY_BYTES`. Past either limit the answer is a JSON error that
names the asynchronous route doing the same work without limits (``/source/atl06p``,
``/source/atl03sp``), instead of a bare 504 from the gateway or a truncated stream.

:func:`answer` runs a request that reads granules (discovery included) in a forked child process
that is killed at the deadline: a warm container's next invocation never finds the last one's
work still running (a thread cannot be stopped, and a frozen container resumes it).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from collections.abc import Iterator, Mapping

from .. import pool
from ..formats import wire
from . import routes
from .protocol import JSON, OCTET, Response

log = logging.getLogger(__name__)

DEADLINE_S = 27.0                  # API Gateway's integration timeout is 29 s
MARGIN_S = 1.5                     # kept for answering before the Lambda's own timeout
LAMBDA_RESPONSE_BYTES = 6_291_556  # synchronous Lambda response payload limit
MAX_BODY_BYTES = 4_500_000         # base64 of this, plus the JSON envelope, fits in LAMBDA_RESPONSE_BYTES
ASYNC_ROUTE = {"/source/atl06": "/source/atl06p", "/source/atl03s": "/source/atl03sp",
               "/source/atl06p": "/source/atl06p", "/source/atl03sp": "/source/atl03sp",
               "/source/atl08": "/source/atl08p", "/source/atl08p": "/source/atl08p"}


def too_big(path: str, what: str) -> Response:
    """A 413/504 answer that tells the client where to send the request instead."""
    route = ASYNC_ROUTE.get(path)
    hint = (f"POST the same request to {route}: it runs as an asynchronous job (202 + job id; "
            f"GET /jobs/{{id}} for progress and the result URLs)") if route else \
        "split the request into smaller ones"
    status = 504 if what == "time" else 413
    limit = ("API Gateway's 29 s limit" if what == "time"
             else f"API Gateway/Lambda's response size limit ({MAX_BODY_BYTES / 1e6:.1f} MB of records)")
    return Response(status, JSON, json.dumps({"error": f"request exceeds {limit}; {hint}",
                                              "async_route": route}).encode())


def timed_out(seconds: float) -> Response:
    """A record stream holding only SlideRule's TIMEOUT exception: the request's own time limit passed."""
    message = f"rqst_timeout of {seconds:g} s passed before the request completed; nothing was returned"
    return Response(200, OCTET, wire.exception_record(wire.TIMEOUT, wire.ERROR_LEVEL, message))


def answer(method: str, path: str, headers: Mapping[str, str], body: bytes, config: routes.Config, *,
           deadline_s: float | None = None, max_bytes: int | None = None) -> Response:
    """:func:`icesat2sr.service.routes.handle`, collected within API Gateway's limits.

    Processing routes (:data:`icesat2sr.service.routes.PROCESSING`) run in a forked child
    process, from request parsing and granule discovery to the last record, and the child is
    killed when the deadline passes: ``deadline_s`` (default :data:`DEADLINE_S`), shortened by
    the request's own ``rqst_timeout`` (or ``timeout``). Other routes answer from memory.
    """
    deadline_s = DEADLINE_S if deadline_s is None else deadline_s
    route = path.split("?", 1)[0].rstrip("/")
    if route not in routes.PROCESSING:
        return collect(routes.handle(method, path, headers, body, config), path, max_bytes)
    requested = _requested_deadline(body)
    task = (method, path, headers, body, config, max_bytes)
    # forked: a Lambda has no /dev/shm (pipes only) and no fork server
    for event in pool.run(_answer_in_child, [(route, task)], deadline=min(deadline_s, requested),
                          context=multiprocessing.get_context("fork")):
        if isinstance(event, pool.Item):
            return event.value
        if isinstance(event, pool.Expired):
            # the client's own rqst_timeout: the stream ends with a TIMEOUT record, as on the local server
            return timed_out(requested) if requested < deadline_s else too_big(path, "time")
        if isinstance(event, pool.End):   # the child died (out of memory?) before answering
            log.error("%s: request process failed: %s", path, event.error)
            break
    return Response(500, JSON, json.dumps({"error": "request processing failed (out of memory?); "
                                           f"try {ASYNC_ROUTE.get(route, 'a smaller request')}"}).encode())


def _answer_in_child(method: str, path: str, headers: Mapping[str, str], body: bytes, config: routes.Config,
                     max_bytes: int | None) -> Iterator[Response]:
    yield collect(routes.handle(method, path, headers, body, config), path, max_bytes)


def collect(response: Response, path: str, max_bytes: int | None = None) -> Response:
    """A response with its whole body in memory, or a :func:`too_big` error past ``max_bytes``
    (default :data:`MAX_BODY_BYTES`; the stream is then closed, which stops the work)."""
    max_bytes = MAX_BODY_BYTES if max_bytes is None else max_bytes
    if not response.streaming:
        return too_big(path, "size") if len(response.body) > max_bytes else response
    chunks, size = [], 0
    try:
        for chunk in response.body:
            size += len(chunk)
            if size > max_bytes:
                return too_big(path, "size")
            chunks.append(chunk)
    finally:
        close = getattr(response.body, "close", None)
        if close is not None:
            close()
    return Response(response.status, response.content_type, b"".join(chunks), dict(response.headers))


def _requested_deadline(body: bytes) -> float:
    """The request's ``rqst_timeout`` (else ``timeout``) in seconds; infinity when it has none
    or it is not valid (the request's parsing then reports that)."""
    try:
        request = routes.parse_body(body)
        parms = request.get("parms") or {}
        values = [parms.get("rqst_timeout"), request.get("timeout"), parms.get("timeout")]
        value = next(v for v in values if v is not None)
        return float(value) if not isinstance(value, bool) and float(value) > 0 else float("inf")
    except (routes.BadRequest, AttributeError, StopIteration, TypeError, ValueError, OverflowError):
        return float("inf")
