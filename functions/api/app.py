"""API Lambda: SlideRule's ``/source/*`` routes behind API Gateway, and asynchronous jobs.

Synchronous routes are :mod:`icesat2sr.service.routes` (the local server's code: same request parsing, same
record encoder) within API Gateway's limits (:mod:`icesat2sr.service.apigw`). ``POST /source/atl06p``,
``/source/atl03sp`` and ``/source/atl08p`` start a job instead of streaming (202 + job id); ``GET /jobs/{id}``
reports it.
"""

from __future__ import annotations

import json
import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from icesat2sr.service.jobs import client

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


def _sync() -> Response:
    from icesat2sr.service import apigw, jobs, routes

    event = app.current_event
    body = (event.decoded_body or "").encode()
    response = routes.handle(event.http_method, event.path, dict(event.headers or {}), body, jobs.route_config())
    return _answer(apigw.collect(response, event.path))


for _method, _paths in SYNC_ROUTES.items():
    for _path in _paths:
        app.route(_path, method=_method)(_sync)


def _submit(route: str) -> Response:
    from icesat2sr.request.errors import Icesat2srError
    from icesat2sr.service import jobs, routes

    try:
        body = json.loads(app.current_event.decoded_body or "{}")
        if not isinstance(body, dict):
            raise routes.BadRequest("request body must be a JSON object")
        answer = jobs.submit(client("lambda"), client("s3"), jobs.Settings.from_env(), jobs.API_KINDS[route],
                             body, jobs.route_config())
    except json.JSONDecodeError as exc:
        return _error(400, f"request body is not valid JSON ({exc})")
    except (Icesat2srError, ValueError) as exc:
        return _error(400, str(exc))
    logger.info("job submitted", extra={"job": answer["job"], "route": route})
    return Response(status_code=202, content_type="application/json", body=json.dumps(answer),
                    headers={"Location": answer["status_url"]})


@app.post("/source/atl06p")
def atl06p() -> Response:
    return _submit("atl06p")


@app.post("/source/atl03sp")
def atl03sp() -> Response:
    return _submit("atl03sp")


@app.post("/source/atl08p")
def atl08p() -> Response:
    return _submit("atl08p")


@app.get("/jobs/<job_id>")
def job(job_id: str) -> Response:
    from icesat2sr.service import jobs

    try:
        status = jobs.job_status(client("s3"), jobs.Settings.from_env(), job_id, sfn=client("stepfunctions"))
    except jobs.JobError as exc:
        return _error(404, str(exc))
    return Response(status_code=200, content_type="application/json", body=json.dumps(status))


@logger.inject_lambda_context(log_event=os.environ.get("POWERTOOLS_LOGGER_LOG_EVENT") == "true")
def handler(event: dict, context) -> dict:
    """Lambda entry point (API Gateway REST proxy event)."""
    return app.resolve(event, context)
