"""The worker writes only under its own job's prefix (JobWriterRole + a per-job session policy).

moto executes the AssumeRole call and records its session policy, but does not enforce session
policies on later requests; the policy itself is evaluated here with moto's own IAM policy
evaluator. What moto cannot check (AWS's intersection of role and session policy, the trust
policy, the absence of ListBucket) is asserted on the rendered template in test_template.py.
"""

from __future__ import annotations

import datetime
import json

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.sts.models import sts_backends

from icesat2sr.service import jobs

from .conftest import JOB_WRITER_ROLE, RESULTS_BUCKET, Context, load_event, load_function

JOB = "atl06p-20260101T000000-00000000"


def test_the_session_policy_allows_this_job_only():
    policy = IAMPolicy(json.dumps(jobs.job_policy(RESULTS_BUCKET, JOB)))
    mine = f"arn:aws:s3:::{RESULTS_BUCKET}/results/{JOB}/ATL03_x.msgpack"
    assert policy.is_action_permitted("s3:PutObject", mine) == PermissionResult.PERMITTED
    assert policy.is_action_permitted("s3:DeleteObject", mine) == PermissionResult.PERMITTED
    for other in (f"results/{JOB}x/a", "results/atl06p-20260101T000000-11111111/output.parquet",
                  f"results/{JOB}", "other/x"):
        assert policy.is_action_permitted("s3:PutObject", f"arn:aws:s3:::{RESULTS_BUCKET}/{other}") \
            != PermissionResult.PERMITTED, other
    assert policy.is_action_permitted("s3:ListBucket", f"arn:aws:s3:::{RESULTS_BUCKET}") != PermissionResult.PERMITTED


def test_the_worker_writes_with_job_scoped_credentials(stack):
    out = load_function("orchestrator").handler(load_event("orchestrator-start.json"), Context())
    stack.wait(out["execution"])   # its workers also wrote with job-scoped sessions
    assumed = sts_backends[DEFAULT_ACCOUNT_ID]["aws"].assumed_roles
    before = len(assumed)
    summary = load_function("worker").handler(load_event("worker.json"), Context())
    assert summary["rows"] > 100
    sessions = assumed[before:]
    assert len(sessions) == 1 and sessions[0].role_arn == JOB_WRITER_ROLE
    assert json.loads(sessions[0].policy) == jobs.job_policy(RESULTS_BUCKET, JOB)
    assert (sessions[0].expiration - datetime.datetime.now(datetime.UTC).replace(tzinfo=None)).total_seconds() <= 900
