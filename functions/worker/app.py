"""Worker Lambda: one granule of a job (a Distributed Map child).

Event ``{"job", "granule", "request": {"bucket", "key"}}``; writes
``results/{job}/{granule}.msgpack`` and returns a small summary (the Map's output stays far below
Step Functions' 256 KiB). A granule that cannot be used is a result with an error, not a failure;
S3 throttling that outlasts the reader's retries raises ``TransientGranuleError`` so the state
machine's ``Retry`` runs the granule again.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger

from icesat2sr.service.jobs import client

logger = Logger()
def credentials(asset: str) -> dict | None:
    """Earthdata's temporary S3 keys for ``nsidc-s3`` (secret ``EARTHDATA_SECRET_ARN``)."""
    secret = os.environ.get("EARTHDATA_SECRET_ARN")
    if asset != "nsidc-s3" or not secret:
        return None
    from icesat2sr.granules.earthdata import credentials_from_secret
    return credentials_from_secret(client("secretsmanager"), secret)


@logger.inject_lambda_context
def handler(event: dict, context) -> dict:
    """Lambda entry point."""
    from icesat2sr.service import jobs

    config = jobs.route_config()
    ref = event["request"]
    # every read and write of the job's files goes through credentials limited to its prefix
    s3 = jobs.job_client(client("sts"), jobs.Settings.from_env(), jobs.check_job_id(event["job"]))
    _, asset, _ = jobs.load_request(s3, ref["bucket"], ref["key"], config)
    memory = int(getattr(context, "memory_limit_in_mb", 0) or os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0))
    remaining = context.get_remaining_time_in_millis() / 1000
    summary = jobs.run_granule(s3, event, config, memory_mb=memory, credentials=credentials(asset.name),
                               remaining_s=remaining)
    logger.info("granule done", extra=summary)
    return summary
