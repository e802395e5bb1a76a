"""Asynchronous jobs of the serverless deployment: ids, S3 layout, manifests, work, status, cost.

The Lambda handlers in ``functions/`` are thin shells around these functions; every AWS client is
passed in, so the same code runs against AWS, against moto in the tests, and by hand.

A job is one ``atl06p`` / ``atl03sp`` / ``atl08p`` request. Everything it writes lives under one prefix of the
results bucket (the only place the functions may write):

| key | written by | content |
|---|---|---|
| ``results/{job}/submitted.json`` | api | the request as sent (the orchestrator reads it) |
| ``results/{job}/request.json`` | orchestrator | kind, asset, validated parameters |
| ``results/{job}/manifest.json`` | orchestrator | ``[{"granule": name}, ...]``: the Distributed Map's items |
| ``results/{job}/status.json`` | api, orchestrator, aggregator | state, counts, failures, cost, outputs |
| ``results/{job}/{granule}.msgpack`` | worker | that granule's :func:`icesat2sr.science.records.pack` (or its error) |
| ``results/{job}/failed/{granule}.json`` | worker | why a granule failed (read for progress) |
| ``results/{job}/output.parquet``, ``output.msgpack`` | aggregator | the merged result (msgpack: atl06p/atl03sp) |
| ``results/{job}/output.<format>`` | aggregator | the request's ``output`` file, unless it names ``s3://`` |
| ``results/{job}/output.records`` | aggregator | the records SlideRule would stream at the end (``arrowrec.remote``) |
| ``results/outputs/...`` | aggregator | ``s3://`` files requests name (the output prefix; no job is ``outputs``) |

``{granule}`` is the granule name without ``.h5``. The aggregator never trusts the Map state's
output (moto, and AWS past its failure tolerance, do not report every child): it compares the
manifest with the objects under the prefix, so a granule without a result is reported as failed,
with the reason the worker or Step Functions gave when there is one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from ..request.errors import Icesat2srError, ParameterError, ResourceError

log = logging.getLogger(__name__)

API_KINDS = {"atl06p": "atl06", "atl03sp": "atl03s", "atl08p": "atl08", "atl03x": "atl03x"}   # route -> kind
ROUTE_OF = {v: k for k, v in API_KINDS.items()}
PREFIX = "results"
OUTPUTS = "outputs"
OUTPUT_NAMES = ("output.parquet", "output.msgpack")
_GRANULE_KEY = re.compile(r"^(ATL03_\d{14}_\d{8}_\d{3}_\d{2})\.msgpack$")
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
    return f"{PREFIX}/{check_job_id(job)}/"


def granule_stem(granule: str) -> str:
    return granule[:-3] if granule.endswith(".h5") else granule


def granule_key(job: str, granule: str) -> str:
    """``results/{job}/{granule}.msgpack``."""
    return f"{job_prefix(job)}{granule_stem(granule)}.msgpack"


def failure_key(job: str, granule: str) -> str:
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
    from .routes import Config

    env = os.environ if env is None else env
    from .limits import DEFAULT_MAX_RESOURCES

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
    s3.put_object(Bucket=bucket, Key=key_, Body=json.dumps(data).encode(), ContentType="application/json")


def get_json(s3, bucket: str, key_: str) -> object | None:
    """Parsed JSON object, or None when the key does not exist."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key_)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(body)


def list_keys(s3, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [obj["Key"] for obj in page.get("Contents", [])]
    return keys


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def update_status(s3, bucket: str, job: str, **fields) -> dict:
    """Merge ``fields`` into ``status.json`` (read-modify-write; one writer at a time by design)."""
    status = get_json(s3, bucket, key(job, "status.json")) or {"job": job, "created": _now()}
    status.update(fields, updated=_now())
    put_json(s3, bucket, key(job, "status.json"), status)
    return status


# ---------------------------------------------------------------------- submission (api)
def validate(kind: str, body: Mapping, config):
    """Check a request as :func:`icesat2sr.service.routes.parse_job` does, without granule discovery.

    Returns the parsed job (its ``resources`` empty when discovery is left to the orchestrator).
    """
    from .routes import parse_job, require_query

    request = dict(body)
    discovered = _named_resources(request) is None
    if discovered:
        request["resources"] = []
    job = parse_job(kind, request, config)
    if discovered:
        require_query(job.parms)
    return job


def _named_resources(request: Mapping) -> list | None:
    """The granules a request names (None = discover them), as routes.parse_job reads them."""
    if "resource" in request:
        return [request["resource"]]
    parms = request.get("parms")
    return request.get("resources", parms.get("resources") if isinstance(parms, dict) else None)


def submit(lambda_client, s3, settings: Settings, kind: str, body: Mapping, config) -> dict:
    """Validate a request, record the job, and hand it to the orchestrator (asynchronously).

    Returns
    -------
    dict
        ``{"job", "status", "status_url"}`` for the 202 answer.
    """
    validate(kind, body, config)
    job = new_job_id(kind)
    # the request goes through S3: an asynchronous invoke carries at most 256 KB (a 16384-point
    # polygon does not fit)
    put_json(s3, settings.bucket, key(job, "submitted.json"), dict(body))
    update_status(s3, settings.bucket, job, state="SUBMITTED", kind=kind)
    lambda_client.invoke(FunctionName=settings.orchestrator, InvocationType="Event",
                         Payload=json.dumps({"action": "start", "job": job, "kind": kind,
                                             "request_key": key(job, "submitted.json")}))
    return {"job": job, "status": "SUBMITTED", "status_url": f"/jobs/{job}"}


# ---------------------------------------------------------------------- planning (orchestrator)
def plan(s3, settings: Settings, job: str, kind: str, body: Mapping, config, execution: str | None = None) -> dict:
    """Resolve the granules (discovery when none are named) and write request and manifest.

    Returns
    -------
    dict
        The state machine's input: ``{"job", "kind", "count", "request": {"bucket", "key"},
        "manifest": {"bucket", "key"}}`` (small, whatever the number of granules).
    """
    from .routes import parse_job

    check_job_id(job)
    parsed = parse_job(kind, dict(body), config)
    bucket = settings.bucket
    put_json(s3, bucket, key(job, "request.json"),
             {"job": job, "kind": kind, "asset": parsed.asset.name, "parms": parsed.parms.to_dict(),
              "granules": len(parsed.resources)})
    put_json(s3, bucket, key(job, "manifest.json"), [{"granule": g} for g in parsed.resources])
    update_status(s3, bucket, job, state="RUNNING", kind=kind, total=len(parsed.resources),
                  **({"execution": execution} if execution else {}))
    return {"job": job, "kind": kind, "count": len(parsed.resources),
            "request": {"bucket": bucket, "key": key(job, "request.json")},
            "manifest": {"bucket": bucket, "key": key(job, "manifest.json")}}


def start(s3, sfn, settings: Settings, job: str, kind: str, body: Mapping, config) -> dict:
    """Plan a job and start its execution (named after the job). A bad request fails the job."""
    try:
        state = plan(s3, settings, job, kind, body, config)
    except (ParameterError, ResourceError, Icesat2srError, ValueError) as exc:
        update_status(s3, settings.bucket, job, state="FAILED", error=str(exc))
        return {"job": job, "state": "FAILED", "error": str(exc)}
    response = sfn.start_execution(stateMachineArn=settings.state_machine_arn, name=job, input=json.dumps(state))
    update_status(s3, settings.bucket, job, execution=response["executionArn"])
    return {**state, "execution": response["executionArn"]}


def batch_input(event: Mapping) -> tuple[str, dict]:
    """Kind and request of a state machine started directly: ``{"kind": "atl06p", "resources"|query...}``."""
    kind = event.get("kind", "atl06")
    kind = API_KINDS.get(kind, kind)
    if kind not in ROUTE_OF:
        raise ParameterError("kind", f"must be one of {', '.join(API_KINDS)}, got {event.get('kind')!r}")
    body = {k: v for k, v in event.items() if k not in ("kind", "job")}
    return kind, body


# ---------------------------------------------------------------------- one granule (worker)
_REQUESTS: dict[tuple[str, str], tuple] = {}   # warm-container cache of request.json


def load_request(s3, bucket: str, key_: str, config):
    """``(kind, asset, parms)`` of a job (cached per container)."""
    from ..request.params import Parms

    cached = _REQUESTS.get((bucket, key_))
    if cached is None:
        data = get_json(s3, bucket, key_)
        if data is None:
            raise JobError(f"no request at s3://{bucket}/{key_}")
        cached = (data["kind"], config.resolve(data["asset"]), Parms.from_dict(data["parms"]))
        _REQUESTS.clear()
        _REQUESTS[(bucket, key_)] = cached
    return cached


def run_granule(s3, event: Mapping, config, *, memory_mb: int = 2048, credentials: dict | None = None,
                remaining_s: float | None = None) -> dict:
    """Process one granule of a job and store its result; return a small summary.

    With a ``node_timeout`` (or ``timeout``) that ends before the Lambda does, the granule runs in
    a child process that is killed when the limit passes; the granule is then stored as failed
    with a TIMEOUT error (its rows so far are dropped), like any other failed granule.

    Parameters
    ----------
    s3 : boto3 S3 client
    event : mapping
        ``{"job", "granule", "request": {"bucket", "key"}}`` (the Map's ItemSelector).
    config : icesat2sr.service.routes.Config
    memory_mb : int
        The function's memory, recorded for the cost estimate.
    credentials : dict, optional
        S3 credentials for the asset (``nsidc-s3``: Earthdata's temporary keys).
    remaining_s : float, optional
        Seconds the Lambda has left (its context's remaining time).

    Raises
    ------
    TransientGranuleError
        S3 reads failed for a transient reason (throttling): the state machine retries.
    """
    from dataclasses import replace

    from ..engine import Part
    from ..science.records import GranuleResult, pack

    started = time.perf_counter()
    job, granule = check_job_id(event["job"]), event["granule"]
    ref = event["request"]
    kind, asset, parms = load_request(s3, ref["bucket"], ref["key"], config)
    if credentials:
        asset = replace(asset, credentials=credentials)
    limit = granule_time_limit(parms, remaining_s)
    stats: dict = {}
    final = GranuleResult(granule, kind, stats=stats)
    outcome = {"transient": 0, "process_failed": False}

    def packed() -> Iterator[bytes]:
        """The granule's parts as they are computed, then its (table-less) result: never held whole."""
        rows = 0
        for item in granule_items(asset, granule, parms, kind, limit):
            if isinstance(item, Part) and item.result.error is not None:
                final.error = item.result.error
            elif isinstance(item, Part) and item.result.rows:
                rows += item.result.rows
                yield pack(item.result, (item.beam, item.seq))
            elif isinstance(item, GranuleResult):   # its process died or ran past the limit
                final.error, outcome["process_failed"] = item.error, True
            elif isinstance(item, dict):
                stats.update(item["stats"])
                outcome["transient"] = item["transient"]
        stats["rows"] = float(rows)
        stats["lambda_s"] = time.perf_counter() - started
        stats["memory_mb"] = float(memory_mb)
        yield pack(final)

    bucket = ref["bucket"]
    stored = upload_stream(s3, bucket, granule_key(job, granule), packed(),
                           keep=lambda: not outcome["transient"] and not outcome["process_failed"])
    if not stored and outcome["process_failed"]:   # what it computed before it was stopped is dropped
        stats["rows"] = 0.0
        s3.put_object(Bucket=bucket, Key=granule_key(job, granule), Body=pack(final))
    elif not stored:
        reason = final.error[1] if final.error else "S3 reads failed transiently"
        put_json(s3, bucket, failure_key(job, granule), {"granule": granule, "code": -2, "reason": reason,
                                                          "transient": True})
        raise TransientGranuleError(f"{granule}: {reason}")
    if final.error:
        put_json(s3, bucket, failure_key(job, granule),
                 {"granule": granule, "code": final.error[0], "reason": final.error[1]})
    else:
        _delete_quietly(s3, bucket, failure_key(job, granule))  # a retry that succeeded
    return {"granule": granule, "rows": 0 if final.error else int(stats["rows"]),
            "error": list(final.error) if final.error else None, "seconds": round(stats["lambda_s"], 3)}


STOP_MARGIN_S = 10.0   # a granule stopped at its limit is stored at least this long before the Lambda ends


def granule_time_limit(parms, remaining_s: float | None) -> float | None:
    """The worker's limit for one granule: the request's ``node_timeout`` (else ``timeout``), when
    it ends at least :data:`STOP_MARGIN_S` before the Lambda does (None: no limit of its own; the
    Lambda's timeout and the state machine's retries apply)."""
    node = parms.deadlines[1]
    if node is None or (remaining_s is not None and node > remaining_s - STOP_MARGIN_S):
        return None
    return node


def granule_items(asset, granule: str, parms, kind: str, limit: float | None) -> Iterator:
    """:func:`granule_parts`, in this process (no ``limit``) or in a forked child killed after
    ``limit`` seconds; a child that dies or overruns ends with its failed ``GranuleResult``."""
    if limit is None:
        yield from granule_parts(asset, granule, parms, kind)
        return
    import multiprocessing

    from .. import pool
    from ..batch import failure

    # forked: a Lambda has no /dev/shm and no fork server (pool.run needs neither)
    events = pool.run(granule_parts, [(granule, (asset, granule, parms, kind))], timeout=limit,
                      context=multiprocessing.get_context("fork"))
    try:
        for event in events:
            if isinstance(event, pool.Item):
                yield event.value
            elif isinstance(event, pool.End) and event.error is not None:
                yield failure(event, kind, limit, "node_timeout")
    finally:
        events.close()


def granule_parts(asset, granule: str, parms, kind: str) -> Iterator:
    """One granule's parts (:func:`icesat2sr.engine.iter_granule`), then ``{"stats", "transient"}``:
    its timings and the S3 reads that failed transiently (counted where the reads ran)."""
    from ..engine import iter_granule
    from ..granules.s3driver import transient_failures

    before = transient_failures()
    stats: dict = {}
    yield from iter_granule(asset, granule, parms, kind, stats=stats)
    yield {"stats": stats, "transient": transient_failures() - before}


UPLOAD_PART = 8 << 20      # bytes per multipart upload part (S3's minimum is 5 MiB)


def upload_stream(s3, bucket: str, key_: str, chunks: Iterable[bytes], keep: Callable[[], bool] = lambda: True,
                  part_size: int = UPLOAD_PART) -> bool:
    """Store a stream of bytes as one S3 object, holding at most about ``part_size`` at a time.

    Small objects are one ``put_object``; larger ones a multipart upload. After the last chunk,
    ``keep()`` decides: False drops the object (the upload is aborted) and returns False.
    """
    buffer, upload, parts = bytearray(), None, []
    try:
        for chunk in chunks:
            buffer += chunk
            if len(buffer) >= part_size:
                if upload is None:
                    upload = s3.create_multipart_upload(Bucket=bucket, Key=key_)["UploadId"]
                etag = s3.upload_part(Bucket=bucket, Key=key_, UploadId=upload, PartNumber=len(parts) + 1,
                                      Body=bytes(buffer))["ETag"]
                parts.append({"ETag": etag, "PartNumber": len(parts) + 1})
                buffer = bytearray()
        if not keep():
            raise _Dropped
        if upload is None:
            s3.put_object(Bucket=bucket, Key=key_, Body=bytes(buffer))
            return True
        if buffer:
            etag = s3.upload_part(Bucket=bucket, Key=key_, UploadId=upload, PartNumber=len(parts) + 1,
                                  Body=bytes(buffer))["ETag"]
            parts.append({"ETag": etag, "PartNumber": len(parts) + 1})
        s3.complete_multipart_upload(Bucket=bucket, Key=key_, UploadId=upload, MultipartUpload={"Parts": parts})
        return True
    except BaseException as exc:
        if upload is not None:
            try:
                s3.abort_multipart_upload(Bucket=bucket, Key=key_, UploadId=upload)
            except Exception as abort_exc:  # the bucket's lifecycle rule cleans up what remains
                log.warning("could not abort the upload of %s: %s", key_, abort_exc)
        if isinstance(exc, _Dropped):
            return False
        raise


class _Dropped(Exception):
    """The stream was complete but is not to be kept."""


def _delete_quietly(s3, bucket: str, key_: str) -> None:
    try:
        s3.delete_object(Bucket=bucket, Key=key_)
    except Exception as exc:  # not worth failing a granule for
        log.warning("could not delete %s: %s", key_, exc)


# ---------------------------------------------------------------------- merge (aggregator)
def aggregate(s3, settings: Settings, event: Mapping, *, aggregator_s: float = 0.0) -> dict:
    """Write a job's granule results into its files, one granule at a time; write the final status.

    Every job gets ``output.parquet`` (GeoParquet); atl06p/atl03sp also ``output.msgpack`` (the
    merged tables); a request with ``output`` also gets that file in its format, at its ``s3://``
    path or as ``output.<format>``, plus ``output.records`` (an ``arrowrec.remote`` record for an
    ``s3://`` path). The x-series keeps no granule in memory after writing it.

    Parameters
    ----------
    event : mapping
        The state: ``{"job", "kind", "manifest": {...}, "request": {...}, "map": ..., "map_error": ...}``.
    aggregator_s : float
        Seconds already spent by this invocation (added to the cost estimate).

    Returns
    -------
    dict
        A short summary (state, counts, output keys): the execution's output.
    """
    import shutil
    import tempfile

    from ..request.params import Parms

    started = time.perf_counter()
    job = check_job_id(event["job"])
    bucket = settings.bucket
    manifest = get_json(s3, bucket, key(job, "manifest.json")) or []
    request = get_json(s3, bucket, key(job, "request.json")) or {}
    kind = request.get("kind", event.get("kind", "atl06"))
    names = [item["granule"] for item in manifest]
    parms = Parms.from_dict(request.get("parms") or {})
    work = tempfile.mkdtemp(prefix="icesat2sr-aggregate-")
    try:
        files = _job_files(work, kind, parms, names)
        failures, seconds, rows, merged = _write_granules(s3, bucket, job, kind, names, event, files, parms.compact)
        outputs, delivered = _upload_files(s3, bucket, job, parms, files, merged)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ok = len(names) - len(failures)
    state = "SUCCEEDED" if not failures else ("PARTIAL" if ok else "FAILED")
    cost = estimate_cost(seconds, settings.worker_memory_mb,
                         other_s=aggregator_s + time.perf_counter() - started, granules=len(names))
    status = update_status(s3, bucket, job, state=state, kind=kind, total=len(names), done=len(names),
                           succeeded=ok, failed=len(failures), failures=failures, rows=rows,
                           outputs=outputs, cost=cost, finished=_now(), **delivered,
                           **({"map_error": _short_error(event["map_error"])} if event.get("map_error") else {}))
    return {"job": job, "state": status["state"], "rows": rows, "succeeded": ok, "failed": len(failures),
            "outputs": status["outputs"]}


def _job_files(work: str, kind: str, parms, names: list[str]) -> dict:
    """The writers of a job's files (``parquet``, and ``output`` when the request asks for one)."""
    from ..formats.output import OutputWriter

    files = {"parquet": OutputWriter(os.path.join(work, "output.parquet"), "geoparquet", kind=kind,
                                     parms=parms.to_dict(), granules=names)}
    out = parms.output
    if out is not None:
        files["output"] = OutputWriter(os.path.join(work, f"output.{out.format}"), out.format, kind=kind,
                                       parms=parms.to_dict(), granules=names, fields=out.fields,
                                       validate=out.with_validation)
    return files


def _write_granules(s3, bucket: str, job: str, kind: str, names: list[str], event: Mapping, files: dict,
                    compact: bool):
    """Add every granule's result to the files; ``(failures, worker seconds, rows, merged)``.

    ``merged`` (for ``output.msgpack``) is None for the x-series, whose granules are dropped once written.
    """
    from ..science.records import concat, iter_unpack, unpack

    present = {m[1] for k in list_keys(s3, bucket, job_prefix(job))
               if (m := _GRANULE_KEY.match(k[len(job_prefix(job)):]))}
    reasons = _map_failures(s3, event)
    kept, failures, seconds = [], [], []
    for name in names:
        if granule_stem(name) not in present:
            reason = reasons.get(name) or _failure_note(s3, bucket, job, name) or (
                "no result: the worker failed or timed out after its retries")
            failures.append({"granule": name, "code": -1, "reason": reason})
            continue
        body = s3.get_object(Bucket=bucket, Key=granule_key(job, name))["Body"]
        if kind == "atl03x":   # its parts go to the files one at a time (a failed granule has none)
            note = _failure_note(s3, bucket, job, name)
            result = _add_parts(iter_unpack(body), files, skip=note is not None)
        else:
            result = unpack(body.read())
        seconds.append(result.stats.get("lambda_s", 0.0))
        if result.error:
            failures.append({"granule": name, "code": result.error[0], "reason": result.error[1]})
        if kind != "atl03x":
            for writer in files.values():
                writer.add(result)
            kept.append(result)
    merged = None if kind == "atl03x" else concat(kept, kind, compact=compact)
    return failures, seconds, files["parquet"].rows, merged


def _add_parts(results: Iterator, files: dict, skip: bool):
    """Add a granule's streamed parts to the files (none when ``skip``); returns its closing result."""
    previous = None
    for result in results:
        if previous is not None and not skip:
            for writer in files.values():
                writer.add(previous)
        previous = result
    if previous is None:
        raise ValueError("not an icesat2sr result")
    return previous


def _upload_files(s3, bucket: str, job: str, parms, files: dict, merged) -> tuple[dict, dict]:
    """Upload the finished files; ``(outputs by name -> results-bucket key, status extras)``."""
    from ..formats import wire
    from ..science.records import pack
    from .routes import upload_output

    outputs = {"parquet": key(job, "output.parquet")}
    s3.upload_file(str(files["parquet"].finish()), bucket, outputs["parquet"])
    if merged is not None:
        outputs["msgpack"] = key(job, "output.msgpack")
        s3.put_object(Bucket=bucket, Key=outputs["msgpack"], Body=pack(merged))
    out = parms.output
    if out is None:
        return outputs, {}
    path = files["output"].finish()
    size = os.path.getsize(path)
    if out.remote:
        records = b"".join(upload_output(path, out, s3))
        outputs["output"] = out.s3_location()[1]   # in the results bucket: the output prefix is there
        url = out.path
    else:
        outputs["output"] = key(job, f"output.{out.format}")
        s3.upload_file(str(path), bucket, outputs["output"])
        records, url = b"", f"s3://{bucket}/{outputs['output']}"
    note = wire.event_record(wire.INFO_LEVEL, f"output: {files['output'].rows} rows, {size} bytes of {out.format}")
    outputs["records"] = key(job, "output.records")
    s3.put_object(Bucket=bucket, Key=outputs["records"], Body=note + records)
    return outputs, {"output": {"url": url, "size": size, "format": out.format, "rows": files["output"].rows}}


def _failure_note(s3, bucket: str, job: str, granule: str) -> str | None:
    note = get_json(s3, bucket, failure_key(job, granule))
    return note.get("reason") if isinstance(note, dict) else None


def _short_error(error: object) -> object:
    if isinstance(error, dict):
        return {"Error": error.get("Error"), "Cause": str(error.get("Cause", ""))[:1000]}
    return str(error)[:1000]


def _map_failures(s3, event: Mapping) -> dict[str, str]:
    """Reasons of failed children from the Map's ResultWriter files (AWS writes FAILED_*.json)."""
    details = (event.get("map") or {}).get("ResultWriterDetails") if isinstance(event.get("map"), dict) else None
    if not details:
        return {}
    reasons: dict[str, str] = {}
    try:
        manifest = json.loads(s3.get_object(Bucket=details["Bucket"], Key=details["Key"])["Body"].read())
        for entry in manifest.get("ResultFiles", {}).get("FAILED", []):
            for child in json.loads(s3.get_object(Bucket=details["Bucket"], Key=entry["Key"])["Body"].read()):
                granule = json.loads(child.get("Input") or "{}").get("granule")
                if granule:
                    reasons[granule] = f"{child.get('Error') or 'failed'}: {_cause(child.get('Cause'))}"
    except Exception as exc:  # best effort: the listing still finds the missing granules
        log.warning("could not read the map run's result files: %s", exc)
    return reasons


def _cause(cause: object) -> str:
    try:
        return json.loads(cause).get("errorMessage", str(cause))[:500]
    except (TypeError, ValueError, AttributeError):
        return str(cause)[:500]


def estimate_cost(worker_seconds: list[float], memory_mb: int, *, other_s: float = 0.0, other_mb: int = 1024,
                  granules: int | None = None) -> dict:
    """Lambda and Step Functions cost of a job, from measured worker durations (USD, estimate).

    Parameters
    ----------
    worker_seconds : list of float
        Duration of each worker invocation that produced a result.
    memory_mb : int
        Worker memory.
    other_s, other_mb : float, int
        Time and memory of the orchestrator/aggregator invocations.
    granules : int, optional
        Granules in the manifest (state transitions), default ``len(worker_seconds)``.

    Examples
    --------
    >>> round(estimate_cost([10.0] * 66, 2048)["lambda_usd"], 4)
    0.0176
    """
    n = len(worker_seconds) if granules is None else granules
    billed = [math.ceil(s * 1000) / 1000 for s in worker_seconds]
    gb_s = sum(billed) * memory_mb / 1024 + other_s * other_mb / 1024
    requests = len(worker_seconds) + 3
    transitions = n * TRANSITIONS_PER_GRANULE + TRANSITIONS_PER_JOB
    lambda_usd = gb_s * LAMBDA_GB_S_ARM + requests * LAMBDA_REQUEST
    sfn_usd = transitions * SFN_TRANSITION
    return {"lambda_gb_s": round(gb_s, 3), "lambda_requests": requests, "lambda_usd": round(lambda_usd, 6),
            "state_transitions": transitions, "stepfunctions_usd": round(sfn_usd, 6),
            "total_usd": round(lambda_usd + sfn_usd, 6), "worker_memory_mb": memory_mb,
            "note": "estimate from measured durations and us-west-2 list prices (arm64); excludes S3 and API Gateway"}


# ---------------------------------------------------------------------- status (api)
def job_status(s3, settings: Settings, job: str, sfn=None) -> dict:
    """Status of a job for ``GET /jobs/{id}``: state, per-granule progress, failures, cost, URLs.

    Raises
    ------
    JobError
        Unknown job.
    """
    bucket = settings.bucket
    status = get_json(s3, bucket, key(job, "status.json"))
    if status is None:
        raise JobError(f"no job {job}")
    if status.get("state") == "RUNNING":
        _progress(s3, bucket, job, status)
        if sfn is not None and status.get("execution"):
            execution = sfn.describe_execution(executionArn=status["execution"])
            if execution["status"] in ("FAILED", "TIMED_OUT", "ABORTED"):
                status["state"] = "FAILED"
                status["error"] = f"execution {execution['status'].lower()}: {execution.get('error', '')} " \
                                  f"{execution.get('cause', '')}".strip()
    outputs = status.get("outputs")
    if outputs and status.get("state") in ("SUCCEEDED", "PARTIAL"):
        status["urls"] = {fmt: s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": k},
                                                         ExpiresIn=settings.url_expiry_s)
                          for fmt, k in outputs.items()}
    return status


def _progress(s3, bucket: str, job: str, status: dict) -> None:
    prefix = job_prefix(job)
    keys = list_keys(s3, bucket, prefix)
    done = sum(1 for k in keys if _GRANULE_KEY.match(k[len(prefix):]))
    notes = [k for k in keys if k.startswith(prefix + "failed/")]
    failures = []
    for k in notes[:100]:  # enough to show; the final status lists them all
        note = get_json(s3, bucket, k)
        if isinstance(note, dict):
            failures.append(note)
    status.update(done=done, failures=failures)
