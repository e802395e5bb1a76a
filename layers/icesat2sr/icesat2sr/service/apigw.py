"""What API Gateway changes for the synchronous ``/source/*`` routes: time and size limits.

A REST API integration gives up after 29 s, and a Lambda's synchronous answer holds at most 6 MB,
base64 included (binary bodies grow by 4/3), so a record stream is collected within
:data:`DEADLINE_S` and :data:`MAX_BODY_BYTES`. Past either limit the answer is a JSON error that
names the asynchronous route doing the same work without limits (``/source/atl06p``,
``/source/atl03sp``), instead of a bare 504 from the gateway or a truncated stream.
"""

from __future__ import annotations

import json
import threading
import time

from .routes import JSON, Response

DEADLINE_S = 27.0                  # API Gateway's integration timeout is 29 s
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


def collect(response: Response, path: str, *, deadline_s: float | None = None,
            max_bytes: int | None = None) -> Response:
    """A response with its whole body in memory, or a :func:`too_big` error.

    A streaming body is consumed in a background thread (the work happens while it is iterated);
    past ``deadline_s`` the caller gets the error at once, past ``max_bytes`` the stream is closed
    (which stops the work). Defaults: :data:`DEADLINE_S`, :data:`MAX_BODY_BYTES`.
    """
    deadline_s = DEADLINE_S if deadline_s is None else deadline_s
    max_bytes = MAX_BODY_BYTES if max_bytes is None else max_bytes
    if not response.streaming:
        if len(response.body) > max_bytes:
            return too_big(path, "size")
        return response
    chunks: list[bytes] = []
    outcome: dict[str, object] = {}
    finished = threading.Event()

    def consume() -> None:
        size = 0
        try:
            for chunk in response.body:
                size += len(chunk)
                if size > max_bytes:
                    outcome["overflow"] = True
                    break
                chunks.append(chunk)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc
        finally:
            close = getattr(response.body, "close", None)
            if close is not None:
                close()
            finished.set()

    started = time.monotonic()
    threading.Thread(target=consume, name="collect-stream", daemon=True).start()
    if not finished.wait(max(0.0, deadline_s - (time.monotonic() - started))):
        return too_big(path, "time")
    if "error" in outcome:
        raise outcome["error"]
    if outcome.get("overflow"):
        return too_big(path, "size")
    return Response(response.status, response.content_type, b"".join(chunks), dict(response.headers))
