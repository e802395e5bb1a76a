"""API Lambda: SlideRule's ``/source/*`` routes behind API Gateway, and asynchronous jobs.

Synchronous routes are :mod:`icesat2sr.service.routes` (the local server's code: same request parsing, same
record encoder) within API Gateway's limits (:mod:`icesat2sr.service.apigw`). ``POST /source/atl06p``,
``/source/atl03sp``, ``/source/atl08p`` and ``/source/atl03x`` start a job instead of streaming (202 + job
id); ``GET /jobs/{id}`` reports it (with the job's ``output`` file, if the request named one).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError

from icesat2sr.service.jobs import API_KINDS, client

logger = Logger()
app = APIGatewayRestResolver()

SYNC_ROUTES = {"GET": ("/source/version", "/source/definition", "/source/time", "/source/datetime",
                       "/source/health", "/health"),
               "POST": ("/source/atl06", "/source/atl03s", "/source/atl08", "/source/indexer", "/source/definition",
                        "/source/time", "/source/datetime")}


def _answer(response) -> Response:
    body = response.body
    if response.content_type != "application/octet-stream" and isinstance(body, bytes | bytearray):
        body = bytes(body).decode()  # text answers go out as text, records as base64 binary
    return Response(status_code=response.status, content_type=response.content_type, body=body,
                    headers=response.headers or None)


def _error(status: int, message: str) -> Response:
    return Response(status_code=status, content_type="application/json", body=json.dumps({"error": message}))


class BadEvent(ValueError):
    """The request's body cannot be read as sent (HTTP 400)."""


def _body() -> bytes:
    """The request body as bytes: base64-decoded when API Gateway says so, else UTF-8 text."""
    event = app.current_event
    body = event.body
    if body is None:
        return b""
    if not isinstance(body, str):
        raise BadEvent("request body must be text")
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadEvent("request body is not valid base64 (isBase64Encoded is set)") from None
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError:
        raise BadEvent("request body is not valid UTF-8 text") from None


def _sync() -> Response:
    from icesat2sr.service import apigw, jobs

    event = app.current_event
    headers = {str(k): str(v) for k, v in (event.headers or {}).items()}
    remaining = _context.get_remaining_time_in_millis() / 1000 if _context is not None else apigw.DEADLINE_S
    deadline = min(apigw.DEADLINE_S, remaining - apigw.MARGIN_S)
    config = dataclasses.replace(jobs.route_config(), output_files=False)   # no pyarrow here: files come from jobs
    return _answer(apigw.answer(event.http_method, event.path, headers, _body(), config, deadline_s=deadline))


for _method, _paths in SYNC_ROUTES.items():
    for _path in _paths:
        app.route(_path, method=_method)(_sync)


def _submit() -> Response:
    """Start the job of an asynchronous route (202, its id and status URL), or answer 400."""
    from icesat2sr.request.errors import Icesat2srError
    from icesat2sr.service import jobs, routes

    route = app.current_event.path.rstrip("/").rsplit("/", 1)[-1]   # a route of jobs.API_KINDS
    try:
        body = routes.parse_body(_body())
        answer = jobs.submit(client("lambda"), client("s3"), jobs.Settings.from_env(), jobs.API_KINDS[route],
                             body, jobs.route_config())
    except (Icesat2srError, ValueError) as exc:   # BadRequest, ParameterError, BadEvent, ...
        return _error(400, routes.public_message(str(exc)))
    except RecursionError:
        return _error(400, "request is nested too deeply")
    logger.info("job submitted", extra={"job": answer["job"], "route": route})
    return Response(status_code=202, content_type="application/json", body=json.dumps(answer),
                    headers={"Location": answer["status_url"]})


for _route in API_KINDS:
    app.post(f"/source/{_route}")(_submit)


@app.get("/jobs/<job_id>")
def job(job_id: str) -> Response:
    """``GET /jobs/{id}``: the job's status (404 for an unknown or malformed id)."""
    from icesat2sr.service import jobs

    try:
        status = jobs.job_status(client("s3"), jobs.Settings.from_env(), job_id, sfn=client("stepfunctions"))
    except jobs.JobError as exc:
        return _error(404, str(exc))
    return Response(status_code=200, content_type="application/json", body=json.dumps(status))


@app.exception_handler(BadEvent)
def _bad_event(exc: BadEvent) -> Response:
    return _error(400, str(exc))


@app.exception_handler(ServiceError)   # powertools' own: no such route (404) and the like
def _service_error(exc: ServiceError) -> Response:
    from icesat2sr.service.routes import public_message

    if isinstance(exc, NotFoundError):
        event = app.current_event
        return _error(404, public_message(f"no endpoint {event.http_method} {event.path}"[:200]))
    return _error(int(exc.status_code), str(exc.msg))


@app.exception_handler(Exception)
def _bug(exc: Exception) -> Response:
    logger.error("request failed", exc_info=exc)
    return _error(500, f"internal error ({type(exc).__name__}); the function's log has the details")


_context = None


@logger.inject_lambda_context(log_event=os.environ.get("POWERTOOLS_LOGGER_LOG_EVENT") == "true")
def handler(event: dict, context) -> dict:
    """Lambda entry point (API Gateway REST proxy event)."""
    global _context
    _context = context
    return app.resolve(event, context)
