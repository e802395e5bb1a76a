"""One granule of a job (the worker Lambda)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from .store import JobError, TransientGranuleError, check_job_id, failure_key, get_json, granule_key, put_json

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------- one granule (worker)
_REQUESTS: dict[tuple[str, str], tuple] = {}   # warm-container cache of request.json


def load_request(s3, bucket: str, key_: str, config):
    """``(kind, asset, parms)`` of a job (cached per container)."""
    from ...request.params import Parms

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
        Reads the request, writes the result.
    event : mapping
        ``{"job", "granule", "request": {"bucket", "key"}}`` (the Map's ItemSelector).
    config : icesat2sr.service.routes.Config
        What the deployment serves (limits, assets).
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

    from ...engine import Part
    from ...science.records import GranuleResult, pack

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

    from ... import pool
    from ...batch import failure

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
    from ...engine import iter_granule
    from ...granules.s3driver import transient_failures

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


