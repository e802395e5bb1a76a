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

Modules: :mod:`.store` (ids, S3 layout, settings, S3 helpers), :mod:`.submit` (submission, planning,
status), :mod:`.worker` (one granule), :mod:`.aggregate` (merge, cost).
"""

from .aggregate import aggregate, estimate_cost
from .store import (
    API_KINDS,
    OUTPUT_NAMES,
    OUTPUTS,
    PREFIX,
    ROUTE_OF,
    JobError,
    Settings,
    TransientGranuleError,
    check_job_id,
    client,
    failure_key,
    get_json,
    granule_key,
    granule_stem,
    job_client,
    job_policy,
    job_prefix,
    key,
    list_keys,
    new_job_id,
    output_prefix,
    put_json,
    route_config,
    update_status,
)
from .submit import batch_input, job_status, plan, start, submit, validate
from .worker import (
    granule_items,
    granule_parts,
    granule_time_limit,
    load_request,
    run_granule,
    upload_stream,
)

__all__ = [
    "API_KINDS", "OUTPUTS", "OUTPUT_NAMES", "PREFIX", "ROUTE_OF", "JobError", "Settings", "TransientGranuleError",
    "aggregate", "batch_input", "check_job_id", "client", "estimate_cost", "failure_key", "get_json",
    "granule_items", "granule_key", "granule_parts", "granule_stem", "granule_time_limit", "job_client",
    "job_policy", "job_prefix", "job_status", "key", "list_keys", "load_request", "new_job_id", "output_prefix",
    "plan", "put_json", "route_config", "run_granule", "start", "submit", "update_status", "upload_stream",
    "validate",
]
