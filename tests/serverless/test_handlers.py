"""Each handler driven by its events/ file (the same files `sam local invoke -e` uses)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from icesat2sr.formats import wire
from icesat2sr.science import records
from icesat2sr.service import apigw, jobs
from icesat2sr.service.routes import Response

from .conftest import EVENTS, RESULTS_BUCKET, Context, load_event, load_function
from .test_e2e import api_call

JOB = "atl06p-20260101T000000-00000000"


def test_every_function_and_route_has_an_event():
    names = {p.name for p in EVENTS.glob("*.json")}
    for fn in ("orchestrator-start", "orchestrator-plan", "worker", "aggregator", "statemachine-batch"):
        assert f"{fn}.json" in names
    template = (EVENTS.parent / "template.yaml").read_text()
    for route in ("version", "health", "definition", "time", "atl06", "atl03s", "atl08", "indexer", "atl06p", "atl03sp",
                  "atl08p", "atl03x", "job"):
        assert f"api-{route}.json" in names
        path = load_event(f"api-{route}.json")["resource"]
        assert f"Path: {path}," in template or f'Path: "{path}",' in template, path


def test_version_health_definition_time(stack):
    status, body = api_call(load_event("api-version.json"))
    assert status == 200 and body["server"]["version"] == "v4.20.0"  # echoes x-sliderule-client
    assert api_call(load_event("api-health.json")) == (200, {"healthy": True})
    status, body = api_call(load_event("api-definition.json"))
    assert status == 200 and body["__datasize"] == records.ELEVATION.itemsize
    assert api_call(load_event("api-time.json")) == (200, {"time": "2019-02-27T19:33:36Z", "format": "DATE"})


def test_sync_atl06_is_the_record_stream(stack):
    out = load_function("api").handler(load_event("api-atl06.json"), Context())
    assert out["statusCode"] == 200 and out["isBase64Encoded"]
    assert out["multiValueHeaders"]["Content-Type"] == ["application/octet-stream"]
    import base64
    rows = np.concatenate(wire.decode(base64.b64decode(out["body"])).elevations)
    assert len(rows) > 100 and set(np.unique(rows["rgt"])) == {1234}


@pytest.mark.parametrize("name, rectype", [("api-atl03s.json", "atl03rec"), ("api-indexer.json", "atl03rec.index"),
                                           ("api-atl08.json", "atl08rec"), ("api-atl08.json", "waverec")])
def test_sync_atl03s_atl08_and_indexer(stack, name, rectype):
    out = load_function("api").handler(load_event(name), Context())
    assert out["statusCode"] == 200 and out["isBase64Encoded"]
    rectypes = {rectype for rectype, _ in wire.iter_records([__import__("base64").b64decode(out["body"])])}
    assert rectype in rectypes


def test_too_big_names_the_async_route(stack, monkeypatch):
    monkeypatch.setattr(apigw, "MAX_BODY_BYTES", 1000)
    status, body = api_call(load_event("api-atl06.json"))
    assert status == 413 and "/source/atl06p" in body["error"] and body["async_route"] == "/source/atl06p"


def test_collect_passes_small_answers_through():
    answer = apigw.collect(Response(200, "application/octet-stream", iter([b"ab", b"cd"])), "/source/atl06")
    assert (answer.status, answer.body) == (200, b"abcd")


def test_unknown_job_is_404(stack):
    status, body = api_call(load_event("api-job.json"))
    assert status == 404 and JOB in body["error"]


def test_orchestrator_worker_aggregator_events(stack):
    """orchestrator-start -> (execution) ; then worker.json and aggregator.json by hand on the same job."""
    orchestrator, worker, aggregator = (load_function(n) for n in ("orchestrator", "worker", "aggregator"))
    out = orchestrator.handler(load_event("orchestrator-start.json"), Context())
    assert out["job"] == JOB and out["count"] == 2 and out["execution"].endswith(JOB)
    stack.wait(out["execution"])
    summary = worker.handler(load_event("worker.json"), Context())
    assert summary["granule"] == load_event("worker.json")["granule"] and summary["rows"] > 100
    assert summary["error"] is None
    final = aggregator.handler(load_event("aggregator.json"), Context())
    assert final["state"] == "SUCCEEDED" and final["succeeded"] == 2
    assert stack.s3.head_object(Bucket=RESULTS_BUCKET, Key=f"results/{JOB}/output.parquet")


def test_orchestrator_plan_event(stack):
    out = load_function("orchestrator").handler(load_event("orchestrator-plan.json"), Context())
    assert out["count"] == 2 and out["manifest"]["key"] == f"results/{JOB}/manifest.json"
    status = json.loads(stack.read(f"results/{JOB}/status.json"))
    assert status["state"] == "RUNNING" and status["execution"].endswith(JOB)


def test_orchestrator_plan_failure_is_recorded(stack):
    event = load_event("orchestrator-plan.json")
    event["request"]["parms"]["cnf"] = 99
    with pytest.raises(Exception, match="cnf"):
        load_function("orchestrator").handler(event, Context())
    assert json.loads(stack.read(f"results/{JOB}/status.json"))["state"] == "FAILED"


def test_job_ids_cannot_escape_the_prefix():
    for bad in ("../x", "a/b", "", "x" * 81, "a b"):
        with pytest.raises(jobs.JobError):
            jobs.job_prefix(bad)
    assert jobs.granule_key(JOB, "ATL03_20210601120000_12340512_006_01.h5") == \
        f"results/{JOB}/ATL03_20210601120000_12340512_006_01.msgpack"


def test_cost_estimate_golden():
    # 66 granules x 10 s at 2048 MB = 1320 GB-s x $0.0000133334 + 69 requests x $0.2e-6; 66*3+6 transitions
    cost = jobs.estimate_cost([10.0] * 66, 2048)
    assert cost["lambda_gb_s"] == 1320.0
    assert cost["lambda_usd"] == pytest.approx(1320 * 0.0000133334 + 69 * 0.2e-6, abs=1e-6)
    assert cost["state_transitions"] == 204 and cost["stepfunctions_usd"] == pytest.approx(204 * 0.025e-3, abs=1e-6)
