"""A job's submission (api), planning (orchestrator) and status (api)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from ...request.errors import Icesat2srError, ParameterError, ResourceError
from .store import (
    API_KINDS,
    GRANULE_KEY,
    ROUTE_OF,
    JobError,
    Settings,
    check_job_id,
    get_json,
    job_prefix,
    key,
    list_keys,
    new_job_id,
    put_json,
    update_status,
)


# ---------------------------------------------------------------------- submission (api)
def validate(kind: str, body: Mapping, config):
    """Check a request as :func:`icesat2sr.service.routes.parse_job` does, without granule discovery.

    Returns the parsed job (its ``resources`` empty when discovery is left to the orchestrator).
    """
    from ..processing import parse_job, require_query

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
    from ..processing import parse_job

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
    done = sum(1 for k in keys if GRANULE_KEY.match(k[len(prefix):]))
    notes = [k for k in keys if k.startswith(prefix + "failed/")]
    failures = []
    for k in notes[:100]:  # enough to show; the final status lists them all
        note = get_json(s3, bucket, k)
        if isinstance(note, dict):
            failures.append(note)
    status.update(done=done, failures=failures)
