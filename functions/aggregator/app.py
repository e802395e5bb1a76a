"""Aggregator Lambda: merges a job's granule results into GeoParquet + msgpack, final status.

Event: the state machine's state after the Map (``{"job", "kind", "manifest", "request", "map" |
"map_error"}``). Granules without a result are reported as failed with their reason; the others'
rows are kept.
"""

from __future__ import annotations

import time

from aws_lambda_powertools import Logger

from icesat2sr.service.jobs import client

logger = Logger()
@logger.inject_lambda_context
def handler(event: dict, context) -> dict:
    """Lambda entry point."""
    started = time.perf_counter()
    from icesat2sr.service import jobs

    summary = jobs.aggregate(client("s3"), jobs.Settings.from_env(), event,
                             aggregator_s=time.perf_counter() - started)
    logger.info("job merged", extra=summary)
    return summary
