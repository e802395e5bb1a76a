"""Merging a job's granules into its outputs (the aggregator Lambda), and its cost."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping

from .store import (
    GRANULE_KEY,
    LAMBDA_GB_S_ARM,
    LAMBDA_REQUEST,
    SFN_TRANSITION,
    TRANSITIONS_PER_GRANULE,
    TRANSITIONS_PER_JOB,
    Settings,
    check_job_id,
    failure_key,
    get_json,
    granule_key,
    granule_stem,
    job_prefix,
    key,
    list_keys,
    now_utc,
    update_status,
)

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------- merge (aggregator)
def aggregate(s3, settings: Settings, event: Mapping, *, aggregator_s: float = 0.0) -> dict:
    """Write a job's granule results into its files, one granule at a time; write the final status.

    Every job gets ``output.parquet`` (GeoParquet); atl06p/atl03sp also ``output.msgpack`` (the
    merged tables); a request with ``output`` also gets that file in its format, at its ``s3://``
    path or as ``output.<format>``, plus ``output.records`` (an ``arrowrec.remote`` record for an
    ``s3://`` path). The x-series keeps no granule in memory after writing it.

    Parameters
    ----------
    s3 : boto3 S3 client
        Reads the granule results, writes the job's files.
    settings : Settings
        The deployment (results bucket, expiry of the result URLs).
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

    from ...request.params import Parms

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
                           outputs=outputs, cost=cost, finished=now_utc(), **delivered,
                           **({"map_error": _short_error(event["map_error"])} if event.get("map_error") else {}))
    return {"job": job, "state": status["state"], "rows": rows, "succeeded": ok, "failed": len(failures),
            "outputs": status["outputs"]}


def _job_files(work: str, kind: str, parms, names: list[str]) -> dict:
    """The writers of a job's files (``parquet``, and ``output`` when the request asks for one)."""
    from ...formats.output import OutputWriter

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
    from ...science.records import concat, iter_unpack, unpack

    present = {m[1] for k in list_keys(s3, bucket, job_prefix(job))
               if (m := GRANULE_KEY.match(k[len(job_prefix(job)):]))}
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
    from ...formats import wire
    from ...science.records import pack
    from ..processing import upload_output

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


