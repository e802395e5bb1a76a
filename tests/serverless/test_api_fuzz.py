"""Property: no API Gateway event, however malformed, makes the API Lambda answer 5xx or raise.

Events carry the fuzzed method, path, headers and body of ``tests/fuzz_requests.py``, the body
as API Gateway sends it: text, or base64 (valid or not) with ``isBase64Encoded``. The data bucket
prefix is empty and the orchestrator is not run, so each example is quick while every parsing
and validation path of the synchronous routes, job submission and job status is exercised.
``pytest --hypothesis-show-statistics`` lists what was tried (route -> status).
"""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ..fuzz_requests import PATHS, bodies, headers, methods, paths
from .conftest import DATA_BUCKET, Context, load_event, load_function

TEMPLATE_ROUTES = {"/source/version", "/source/definition", "/source/time", "/source/datetime", "/source/health",
                   "/health", "/source/atl06", "/source/atl03s", "/source/indexer", "/source/atl06p",
                   "/source/atl03sp"}
ENCODINGS = st.sampled_from(["text", "text", "base64", "bad-base64", "none"])
ROUTED = sorted({(m, p) for m, ps in [("GET", ("/source/version", "/source/definition", "/source/time",
                                                "/source/datetime", "/source/health", "/health")),
                                       ("POST", ("/source/atl06", "/source/atl03s", "/source/indexer",
                                                 "/source/definition", "/source/time", "/source/datetime",
                                                 "/source/atl06p", "/source/atl03sp"))] for p in ps})
# mostly a route the API has, with its method; else anything (404/405 paths)
calls = st.one_of(st.sampled_from(ROUTED), st.sampled_from(ROUTED), st.sampled_from(ROUTED), st.tuples(methods, paths),
                  st.tuples(st.just("GET"), st.text(max_size=20).map(lambda t: "/jobs/" + t)))


@pytest.fixture
def api(stack, monkeypatch):
    monkeypatch.setenv("ICESAT2SR_ATLAS_S3", f"{DATA_BUCKET}/empty")
    stack.hooks["orchestrator"] = lambda event, attempt: (_ for _ in ()).throw(RuntimeError("not in this test"))
    return load_function("api")


def api_event(method: str, path: str, head: dict[str, str], body: bytes, encoding: str, job: str) -> dict:
    event = load_event("api-version.json")
    event.update(httpMethod=method, path=path, headers=head or None,
                 multiValueHeaders={k: [v] for k, v in head.items()} or None,
                 resource=path if path in TEMPLATE_ROUTES else "/jobs/{job_id}" if path.startswith("/jobs/")
                 else "/{proxy+}",
                 pathParameters={"job_id": job} if path.startswith("/jobs/") else None)
    event["requestContext"] = {**event["requestContext"], "httpMethod": method, "resourcePath": event["resource"]}
    if encoding == "none":
        event.update(body=None, isBase64Encoded=False)
    elif encoding == "base64":
        event.update(body=base64.b64encode(body).decode(), isBase64Encoded=True)
    elif encoding == "bad-base64":
        event.update(body=body.decode("latin-1") + "*", isBase64Encoded=True)
    else:
        event.update(body=body.decode("utf-8", "surrogateescape"), isBase64Encoded=False)
    return event


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(call=calls, head=headers, body=bodies, encoding=ENCODINGS, job=st.text(max_size=90))
def test_no_event_gets_a_5xx(api, call, head, body, encoding, job):
    method, path = call
    out = api.handler(api_event(method, path, head, body, encoding, job), Context(function_name="api"))
    status = int(out["statusCode"])
    shown = path if path in PATHS else "/jobs/{id}" if path.startswith("/jobs/") else "other path"
    event(f"{shown} -> {status}")
    assert 200 <= status < 500, (status, out.get("body", "")[:300], method, path, body[:200], encoding)
    if not out.get("isBase64Encoded") and status >= 400:
        assert json.loads(out["body"])   # a JSON error with a message, not an empty answer


def test_the_api_still_answers_after_the_fuzz(api):
    out = api.handler(load_event("api-health.json"), Context(function_name="api"))
    assert out["statusCode"] == 200
