"""Faults under moto: a corrupt granule, S3 throttling, a worker that times out.

In every case the job completes, the good granules' results are delivered unchanged, and a
granule that could not be processed is reported with its reason. (moto's Distributed Map turns a
failed child into ``null`` and ignores the failure tolerance, see the notes; the aggregator does
not depend on either: it compares the manifest with the results under the job's prefix.)
"""

from __future__ import annotations

import io
import json
import threading

import geopandas
import pytest
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

from .conftest import DATA_BUCKET, DATA_PREFIX, load_event
from .test_e2e import api_call, assert_same_frame, cli_frame, job_event, submit_and_wait

G1 = "ATL03_20210601120000_12340512_006_01.h5"
G2 = "ATL03_20201102030405_05670910_006_01.h5"
CORRUPT = "ATL03_20190101000000_00010110_006_01.h5"
PARMS = {"cnf": 1, "ats": 20.0, "cnt": 10, "len": 40.0, "res": 20.0, "maxi": 6}
SLOW_DOWN = (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
             b"<Message>Please reduce your request rate.</Message></Error>")


def atl06p_event(resources: list[str]) -> dict:
    event = load_event("api-atl06p.json")
    event["body"] = json.dumps({"resources": resources, "parms": {**PARMS, "asset": "atlas-s3"}})
    return event


def merged_frame(stack, job: str):
    return geopandas.read_parquet(io.BytesIO(stack.read(f"results/{job}/output.parquet")))


class Throttle:
    """Answers S3 GETs of one granule with 503 SlowDown while ``should_fail()`` says so."""

    def __init__(self, granule: str, should_fail):
        self.granule, self.should_fail, self.injected = granule, should_fail, 0
        self.lock = threading.Lock()

    def install(self, monkeypatch) -> None:
        original = BotocoreStubber.__call__
        throttle = self

        def call(stubber, event_name, request, **kwargs):
            if stubber.enabled and request.method == "GET" and f"{DATA_PREFIX}/{throttle.granule}" in request.url:
                with throttle.lock:
                    fail = throttle.should_fail()
                    throttle.injected += fail
                if fail:
                    return AWSResponse(request.url, 503, {"Content-Type": "application/xml"},
                                       MockRawResponse(SLOW_DOWN))
            return original(stubber, event_name, request, **kwargs)

        monkeypatch.setattr(BotocoreStubber, "__call__", call)


def test_corrupt_granule_reported_others_delivered(stack, synth_dir, tmp_path):
    stack.s3.put_object(Bucket=DATA_BUCKET, Key=f"{DATA_PREFIX}/{CORRUPT}", Body=b"\x89HDF\r\n\x1a\n" + b"\0" * 5000)
    job, _ = submit_and_wait(stack, atl06p_event([G1, CORRUPT]))
    assert_same_frame(merged_frame(stack, job), cli_frame(tmp_path, synth_dir, "atl06", [G1], PARMS))
    status, report = api_call(job_event(job))
    assert status == 200 and report["state"] == "PARTIAL"
    assert report["succeeded"] == 1 and report["failed"] == 1
    (failure,) = report["failures"]
    assert failure["granule"] == CORRUPT and CORRUPT in failure["reason"] and failure["code"] < 0
    assert stack.attempts("worker", CORRUPT) == 1  # a bad file is not retried


def test_missing_granule_reported(stack):
    job, _ = submit_and_wait(stack, atl06p_event([G1, "ATL03_20190101000000_00020110_006_01.h5"]))
    report = api_call(job_event(job))[1]
    assert report["state"] == "PARTIAL" and report["failures"][0]["code"] == -3  # RESOURCE_DOES_NOT_EXIST


def test_throttling_bursts_absorbed_by_the_reader(stack, synth_dir, tmp_path, monkeypatch):
    """A few 503s: the S3 reader retries them; same rows, one worker call per granule."""
    throttle = Throttle(G2, lambda: throttle.injected < 5)
    throttle.install(monkeypatch)
    job, _ = submit_and_wait(stack, atl06p_event([G1, G2]))
    assert throttle.injected == 5
    assert_same_frame(merged_frame(stack, job), cli_frame(tmp_path, synth_dir, "atl06", [G1, G2], PARMS))
    assert stack.attempts("worker", G2) == 1
    assert api_call(job_event(job))[1]["state"] == "SUCCEEDED"


def test_persistent_throttling_retried_by_the_state_machine(stack, synth_dir, tmp_path, monkeypatch):
    """Every read of G2 throttled during the first worker attempt: the worker raises
    TransientGranuleError, Step Functions' Retry runs it again, nothing is lost."""
    throttle = Throttle(G2, lambda: stack.attempts("worker", G2) == 1)
    throttle.install(monkeypatch)
    job, _ = submit_and_wait(stack, atl06p_event([G1, G2]))
    assert throttle.injected > 0
    assert stack.attempts("worker", G2) == 2 and stack.attempts("worker", G1) == 1
    assert_same_frame(merged_frame(stack, job), cli_frame(tmp_path, synth_dir, "atl06", [G1, G2], PARMS))
    report = api_call(job_event(job))[1]
    assert report["state"] == "SUCCEEDED" and report["failures"] == []


def _hang(release: threading.Event, attempts: set[int]):
    def hook(event, attempt):
        if event.get("granule") == G2 and attempt in attempts:
            release.wait(30)
            raise RuntimeError("stale attempt after a timeout")  # never writes a result
    return hook


@pytest.mark.parametrize("stack", [{"WorkerTaskTimeoutSeconds": "2", "WorkerMaxRetries": "1"}], indirect=True)
def test_worker_timeout_retried(stack, synth_dir, tmp_path):
    release = threading.Event()
    stack.hooks["worker"] = _hang(release, {1})
    try:
        job, _ = submit_and_wait(stack, atl06p_event([G1, G2]))
    finally:
        release.set()
    assert stack.attempts("worker", G2) == 2
    assert_same_frame(merged_frame(stack, job), cli_frame(tmp_path, synth_dir, "atl06", [G1, G2], PARMS))


@pytest.mark.parametrize("stack", [{"WorkerTaskTimeoutSeconds": "2", "WorkerMaxRetries": "1"}], indirect=True)
def test_worker_timing_out_every_time_is_reported(stack, synth_dir, tmp_path):
    release = threading.Event()
    stack.hooks["worker"] = _hang(release, {1, 2, 3})
    try:
        job, _ = submit_and_wait(stack, atl06p_event([G1, G2]))
    finally:
        release.set()
    assert stack.attempts("worker", G2) == 2  # first try + WorkerMaxRetries
    assert_same_frame(merged_frame(stack, job), cli_frame(tmp_path, synth_dir, "atl06", [G1], PARMS))
    report = api_call(job_event(job))[1]
    assert report["state"] == "PARTIAL"
    (failure,) = report["failures"]
    assert failure["granule"] == G2 and "timed out" in failure["reason"]
