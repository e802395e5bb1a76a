"""End to end under moto: API event -> orchestrator -> the real state machine (Distributed Map) ->
workers reading synthetic granules from S3 through h5coro -> aggregator; the merged GeoParquet
equals the embedded CLI's output on the same granules and parameters, row for row."""

from __future__ import annotations

import base64
import io
import json

import geopandas
import numpy as np
import pandas as pd
import pytest

from icesat2sr import cli
from icesat2sr.science import records

from .conftest import RESULTS_BUCKET, Context, load_event, load_function


def api_call(event: dict) -> tuple[int, dict | bytes]:
    out = load_function("api").handler(event, Context(function_name="api"))
    body = out["body"]
    if out.get("isBase64Encoded"):
        return out["statusCode"], base64.b64decode(body)
    return out["statusCode"], json.loads(body)


def job_event(job: str) -> dict:
    event = load_event("api-job.json")
    event["path"] = f"/jobs/{job}"
    event["pathParameters"] = {"job_id": job}
    return event


def submit_and_wait(stack, event: dict) -> tuple[str, dict]:
    status, answer = api_call(event)
    assert status == 202, answer
    job = answer["job"]
    state = json.loads(stack.read(f"results/{job}/status.json"))
    assert state["state"] == "RUNNING", state  # the orchestrator ran (async invoke) and started the execution
    execution = stack.wait(state["execution"])
    assert execution["status"] == "SUCCEEDED", execution
    return job, execution


def cli_frame(tmp_path, synth_dir, kind: str, names: list[str], parms: dict):
    out = tmp_path / f"cli-{kind}.parquet"
    parms = {k: v for k, v in parms.items() if k != "asset"}
    assert cli.main([kind, *names, "--path", str(synth_dir), "-o", str(out), "--parms", json.dumps(parms), "-q",
                     "--workers", "1"]) == 0
    return geopandas.read_parquet(out)


def assert_same_frame(ours, theirs) -> None:
    assert len(ours) > 100
    assert ours.crs.to_epsg() == 7912 and theirs.crs.to_epsg() == 7912
    assert ours.index.name == "time" and ours.index.dtype == np.dtype("datetime64[ns]")
    pd.testing.assert_frame_equal(pd.DataFrame(ours.drop(columns="geometry")),
                                  pd.DataFrame(theirs.drop(columns="geometry")), check_exact=True)
    assert ours.geometry.geom_equals_exact(theirs.geometry, 0.0).all()


def job_equals_cli(stack, synth_dir, tmp_path, kind: str):
    """Submit ``events/api-<kind>p.json``, wait, and check its GeoParquet equals the CLI's."""
    event = load_event(f"api-{kind}p.json")
    request = json.loads(event["body"])
    job, execution = submit_and_wait(stack, event)
    ours = geopandas.read_parquet(io.BytesIO(stack.read(f"results/{job}/output.parquet")))
    assert_same_frame(ours, cli_frame(tmp_path, synth_dir, kind, request["resources"], request["parms"]))
    return job, execution, request, ours


def test_atl06p_job_equals_cli(stack, synth_dir, tmp_path):
    job, execution, request, ours = job_equals_cli(stack, synth_dir, tmp_path, "atl06")
    merged = records.unpack(stack.read(f"results/{job}/output.msgpack"))
    assert merged.rows == len(ours)
    # one worker per granule, each wrote its own result; the execution output stays small
    assert stack.attempts("worker") == 2
    assert all(stack.s3.head_object(Bucket=RESULTS_BUCKET, Key=f"results/{job}/{g[:-3]}.msgpack")
               for g in request["resources"])
    assert len(execution["output"]) < 2000

    status, report = api_call(job_event(job))
    assert status == 200
    assert report["state"] == "SUCCEEDED" and report["succeeded"] == 2 and report["failed"] == 0
    assert report["rows"] == len(ours) and report["failures"] == []
    assert report["cost"]["lambda_gb_s"] > 0 and report["cost"]["state_transitions"] == 2 * 3 + 6
    assert set(report["urls"]) == {"parquet", "msgpack"}
    assert f"results/{job}/output.parquet" in report["urls"]["parquet"]


def test_atl03sp_job_equals_cli(stack, synth_dir, tmp_path):
    *_, ours = job_equals_cli(stack, synth_dir, tmp_path, "atl03s")
    assert set(ours["spot"]) <= {1, 2, 3, 4, 5, 6} and set(ours["track"]) == {1}


def test_atl08p_job_equals_cli(stack, synth_dir, tmp_path):
    job, *_, ours = job_equals_cli(stack, synth_dir, tmp_path, "atl08")
    assert {"h_canopy", "canopy_h_metrics", "waveform"} <= set(ours.columns) and set(ours["gt"]) <= {10, 20}
    merged = records.unpack(stack.read(f"results/{job}/output.msgpack"))
    assert merged.kind == "atl08" and len(merged.waveforms) == len(merged.vegetation) == len(ours)


def test_batch_execution_started_directly(stack, synth_names):
    """The same state machine without the API: its input names the granules; Plan writes the manifest."""
    batch = load_event("statemachine-batch.json")
    arn = stack.sfn.start_execution(stateMachineArn=stack.state_machine_arn, name="batch-test-1",
                                    input=json.dumps(batch))["executionArn"]
    execution = stack.wait(arn)
    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["state"] == "SUCCEEDED" and output["succeeded"] == len(batch["resources"])
    manifest = json.loads(stack.read("results/batch-test-1/manifest.json"))
    assert [m["granule"] for m in manifest] == batch["resources"]
    assert stack.attempts("orchestrator") == 1


def test_batch_execution_with_discovery_query(stack):
    """A discovery query instead of names: rgt 1234, cycle 5 selects one of the two granules."""
    batch = load_event("statemachine-batch-query.json")
    arn = stack.sfn.start_execution(stateMachineArn=stack.state_machine_arn, name="batch-test-2",
                                    input=json.dumps(batch))["executionArn"]
    execution = stack.wait(arn)
    assert execution["status"] == "SUCCEEDED", execution
    manifest = json.loads(stack.read("results/batch-test-2/manifest.json"))
    assert [m["granule"] for m in manifest] == ["ATL03_20210601120000_12340512_006_01.h5"]
    assert json.loads(execution["output"])["succeeded"] == 1


@pytest.mark.parametrize("body", [{"resources": ["not-a-granule.h5"], "parms": {}},
                                  {"resources": ["ATL03_20210601120000_12340512_006_01.h5"], "parms": {"cnf": 9}}])
def test_bad_async_request_is_400_and_starts_nothing(stack, body):
    event = load_event("api-atl06p.json")
    event["body"] = json.dumps(body)
    status, answer = api_call(event)
    assert status == 400 and answer["error"]
    assert stack.attempts("orchestrator") == 0
