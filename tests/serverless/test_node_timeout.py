"""node_timeout on the worker Lambda: a granule that runs past it is stopped (its process is
killed) and stored as failed with a TIMEOUT error, long before the Lambda's own end; the job's
other granules are delivered and the aggregator reports it like any failed granule."""

from __future__ import annotations

import json
import threading
import time

import pytest

from icesat2sr.formats import wire
from icesat2sr.granules.assets import Asset
from icesat2sr.request.params import Parms
from icesat2sr.science import records
from icesat2sr.service import jobs

from .conftest import RESULTS_BUCKET
from .test_e2e import api_call, assert_same_frame, cli_frame, job_event, submit_and_wait
from .test_faults import G1, G2, PARMS, atl06p_event, merged_frame


@pytest.fixture
def g2_hangs(monkeypatch):
    """Opening G2 waits (a read that never returns), in the worker and in any child it forks."""
    release = threading.Event()
    original = Asset.open

    def open_(self, resource):
        if resource == G2:
            release.wait(120)
        return original(self, resource)

    monkeypatch.setattr(Asset, "open", open_)
    yield
    release.set()


def with_node_timeout(resources: list[str], seconds: float) -> dict:
    event = atl06p_event(resources)
    body = json.loads(event["body"])
    body["parms"]["node_timeout"] = seconds
    event["body"] = json.dumps(body)
    return event


@pytest.mark.parametrize("stack", [{"WorkerTaskTimeoutSeconds": "60", "WorkerMaxRetries": "0"}], indirect=True)
def test_a_granule_past_node_timeout_is_stopped_and_reported(stack, g2_hangs, synth_dir, tmp_path):
    started = time.monotonic()
    job, _ = submit_and_wait(stack, with_node_timeout([G1, G2], 15.0))
    assert time.monotonic() - started < 50   # not the 60 s task timeout, nor the 120 s read
    report = api_call(job_event(job))[1]
    assert report["state"] == "PARTIAL" and report["succeeded"] == 1
    (failure,) = report["failures"]
    assert failure["granule"] == G2 and failure["code"] == wire.TIMEOUT
    assert failure["reason"] == f"{G2}: processing took longer than 15 s (node_timeout) and was stopped " \
                                "(a corrupt granule?)"
    assert stack.attempts("worker", G2) == 1   # a stopped granule is a result, not a retry
    stored = records.unpack(stack.read(f"results/{job}/{G2[:-3]}.msgpack"))
    assert stored.error == (wire.TIMEOUT, failure["reason"]) and stored.rows == 0
    assert_same_frame(merged_frame(stack, job), cli_frame(tmp_path, synth_dir, "atl06", [G1], PARMS))


def test_the_worker_summary_says_timeout(stack, g2_hangs):
    """The worker's own answer (the Map's item output) carries the TIMEOUT error."""
    job, _ = submit_and_wait(stack, with_node_timeout([G1], 2.0))   # a job whose request G2 can reuse
    request = {"bucket": RESULTS_BUCKET, "key": jobs.key(job, "request.json")}
    config = jobs.route_config()
    started = time.monotonic()
    summary = jobs.run_granule(stack.s3, {"job": job, "granule": G2, "request": request}, config,
                               remaining_s=900.0)
    assert time.monotonic() - started < 30
    assert summary["error"] == [wire.TIMEOUT, f"{G2}: processing took longer than 2 s (node_timeout) and was "
                                              "stopped (a corrupt granule?)"]
    assert summary["rows"] == 0


@pytest.mark.parametrize(("node_timeout", "remaining", "limit"), [(30.0, 900.0, 30.0), (None, 900.0, None),
                                                                  (30.0, 35.0, None), (30.0, None, 30.0)])
def test_the_limit_applies_only_before_the_lambdas_end(node_timeout, remaining, limit):
    parms = Parms.from_dict({} if node_timeout is None else {"node_timeout": node_timeout})
    assert jobs.granule_time_limit(parms, remaining) == limit
    assert jobs.granule_time_limit(Parms.from_dict({"timeout": 20}), 900.0) == 20.0   # timeout is its default
