"""A job's ids, S3 layout and settings, and the S3 helpers every step uses."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from ...request.errors import Icesat2srError

API_KINDS = {"atl06p": "atl06", "atl03sp": "atl03s", "atl08p": "atl08", "atl03x": "atl03x"}   # route -> kind
ROUTE_OF = {v: k for k, v in API_KINDS.items()}
PREFIX = "results"
OUTPUTS = "outputs"
OUTPUT_NAMES = ("output.parquet", "output.msgpack")
GRANULE_KEY = re.compile(r"^(ATL03_\d{14}_\d{8}_\d{3}_\d{2})\.msgpack$")
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")              # a Step Functions execution name

# Prices (USD, us-west-2, first tier, as published by AWS in 2025): Lambda per GB-second (arm64)
# and per request; Step Functions Standard per state transition. Estimates, not bills.
LAMBDA_GB_S_ARM = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
SFN_TRANSITION = 0.025 / 1000
TRANSITIONS_PER_GRANULE = 3          # child execution: start, worker task, succeed
TRANSITIONS_PER_JOB = 6              # parent: choice, (plan), map start/end, aggregate, end


class JobError(Icesat2srError):
    """A job cannot be created or found (HTTP 400/404)."""


class TransientGranuleError(Icesat2srError):
    """A granule failed for a reason that may pass (S3 throttling): Step Functions retries it."""


# ---------------------------------------------------------------------- ids and keys
def new_job_id(kind: str) -> str:
    """A job id, usable as a Step Functions execution name (<= 80 characters):
    ``atl06p-20260101T120000-`` and 128 random bits (32 hex digits) from the OS's CSPRNG.

    Holding a job's id is what lets a caller read its status and result URLs, so the id must not
    be guessable: 128 bits (more than a random UUID's 122) make a guess hopeless.
    """
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{ROUTE_OF.get(kind, kind)}-{stamp}-{secrets.token_hex(16)}"


def check_job_id(job: str) -> str:
    """Reject ids that could escape the job's prefix (or be the output files' folder)."""
    if not isinstance(job, str) or not JOB_ID.match(job) or job == OUTPUTS:
        raise JobError(f"invalid job id {job!r}")
    return job


def job_prefix(job: str) -> str:
    """``results/{job}/``: the prefix of every file of a job (the id checked first)."""
    return f"{PREFIX}/{check_job_id(job)}/"


def granule_stem(granule: str) -> str:
    """A granule's name without ``.h5``."""
    return granule[:-3] if granule.endswith(".h5") else granule


def granule_key(job: str, granule: str) -> str:
    """``results/{job}/{granule}.msgpack``."""
    return f"{job_prefix(job)}{granule_stem(granule)}.msgpack"


def failure_key(job: str, granule: str) -> str:
    """``results/{job}/failed/{granule}.json``: the note of a granule that failed."""
    return f"{job_prefix(job)}failed/{granule_stem(granule)}.json"


def key(job: str, name: str) -> str:
    """Key of one of the job's files (``request.json``, ``manifest.json``, ``status.json``, outputs)."""
    return job_prefix(job) + name


# ---------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class Settings:
    """What the functions read from their environment (set by template.yaml)."""

    bucket: str
    state_machine_arn: str | None = None
    orchestrator: str | None = None
    worker_memory_mb: int = 2048
    url_expiry_s: int = 300
    writer_role_arn: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from the Lambda's environment (``RESULTS_BUCKET`` required); :class:`JobError` without it."""
        env = os.environ if env is None else env
        bucket = env.get("RESULTS_BUCKET")
        if not bucket:
            raise JobError("RESULTS_BUCKET is not set")
        return cls(bucket=bucket, state_machine_arn=env.get("STATE_MACHINE_ARN") or None,
                   orchestrator=env.get("ORCHESTRATOR_FUNCTION") or None,
                   worker_memory_mb=int(env.get("WORKER_MEMORY_MB", "2048")),
                   url_expiry_s=int(env.get("RESULT_URL_EXPIRY_S", "300")),
                   writer_role_arn=env.get("JOB_WRITER_ROLE_ARN") or None)


def output_prefix(env: Mapping[str, str] | None = None) -> str | None:
    """``s3://`` prefix requests may name as their ``output.path`` (default: the results bucket's
    ``results/outputs/``, inside the functions' write scope and never a job's folder)."""
    env = os.environ if env is None else env
    bucket = env.get("RESULTS_BUCKET")
    return env.get("OUTPUT_S3_PREFIX") or (f"s3://{bucket}/{PREFIX}/{OUTPUTS}/" if bucket else None)


def route_config(env: Mapping[str, str] | None = None):
    """The :class:`icesat2sr.service.routes.Config` of a Lambda deployment: one granule at a time in the
    request's own process (the sync route kills it at its deadline; the worker applies ``node_timeout``
    itself, :func:`run_granule`)."""
    from ..protocol import Config

    env = os.environ if env is None else env
    from ..limits import DEFAULT_MAX_RESOURCES

    return Config(asset=env.get("ICESAT2SR_DEFAULT_ASSET", "atlas-s3"), path=env.get("ICESAT2SR_ATLAS_S3") or None,
                  workers=1, granule_timeout=None, inline=True,
                  max_resources=int(env.get("MAX_RESOURCES", DEFAULT_MAX_RESOURCES)),
                  environment="icesat2sr-lambda", remote_output=output_prefix(env))


# ---------------------------------------------------------------------- S3 helpers
_clients: dict = {}


def client(name: str):
    """A boto3 client, created once per Lambda container (handlers share this cache)."""
    if name not in _clients:
        import boto3
        _clients[name] = boto3.client(name)
    return _clients[name]


def job_policy(bucket: str, job: str, partition: str = "aws") -> dict:
    """The session policy of a worker's writes: its own job's prefix, nothing else."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "ThisJobOnly", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                                         "s3:AbortMultipartUpload"],
        "Resource": f"arn:{partition}:s3:::{bucket}/{job_prefix(job)}*"}]}


def job_client(sts, settings: Settings, job: str):
    """An S3 client that can read and write ``results/{job}/`` only.

    It holds credentials of ``settings.writer_role_arn`` (JobWriterRole) for a session whose
    policy is :func:`job_policy`: IAM intersects the two, so whatever key this process computes,
    nothing outside the job's prefix can be written. Without a writer role (local runs, tests
    without IAM) it is the default client.
    """
    if not settings.writer_role_arn:
        return client("s3")
    import boto3

    partition = settings.writer_role_arn.split(":")[1]
    creds = sts.assume_role(RoleArn=settings.writer_role_arn, RoleSessionName=f"job-{check_job_id(job)[-48:]}",
                            Policy=json.dumps(job_policy(settings.bucket, job, partition)),
                            DurationSeconds=900)["Credentials"]
    return boto3.client("s3", aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


def put_json(s3, bucket: str, key_: str, data: object) -> None:
    """Write ``data`` as a JSON object at ``key_``."""
    s3.put_object(Bucket=bucket, Key=key_, Body=json.dumps(data).encode(), ContentType="application/json")


def get_json(s3, bucket: str, key_: str) -> object | None:
    """Parsed JSON object, or None when the key does not exist."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key_)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(body)


def list_keys(s3, bucket: str, prefix: str) -> list[str]:
    """Every key under ``prefix`` (all pages)."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [obj["Key"] for obj in page.get("Contents", [])]
    return keys


def now_utc() -> str:
    """The current UTC time as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def update_status(s3, bucket: str, job: str, **fields) -> dict:
    """Merge ``fields`` into ``status.json`` (read-modify-write; one writer at a time by design)."""
    status = get_json(s3, bucket, key(job, "status.json")) or {"job": job, "created": now_utc()}
    status.update(fields, updated=now_utc())
    put_json(s3, bucket, key(job, "status.json"), status)
    return status


