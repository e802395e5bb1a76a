"""Orchestrator Lambda: resolves a job's granules, writes its manifest, starts the state machine.

Two callers:

* the API (asynchronous invoke) ``{"action": "start", "job", "kind", "request_key"}`` (the request
  as the API stored it in S3; ``"request"`` inline also works): plan, then start an execution
  named after the job;
* the state machine's ``Plan`` state, for executions started directly (batch):
  ``{"action": "plan", "job": <execution name>, "execution": <execution ARN>, "request": <input>}``
  whose input names the granules (``resources``) or a discovery query (``parms``).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from icesat2sr.service.jobs import client

logger = Logger()
@logger.inject_lambda_context
def handler(event: dict, context) -> dict:
    """Lambda entry point."""
    from icesat2sr.service import jobs

    settings = jobs.Settings.from_env()
    config = jobs.route_config()
    if event.get("action") == "start":
        request = event.get("request")
        if request is None:  # the API stores the request in S3 (async invokes carry <= 256 KB)
            request = jobs.get_json(client("s3"), settings.bucket, event["request_key"])
        return jobs.start(client("s3"), client("stepfunctions"), settings, event["job"], event["kind"],
                          request, config)
    job = event["job"]
    try:
        kind, body = jobs.batch_input(event.get("request") or {})
        return jobs.plan(client("s3"), settings, job, kind, body, config, execution=event.get("execution"))
    except Exception as exc:  # recorded for GET /jobs/{id}, then the execution fails
        jobs.update_status(client("s3"), settings.bucket, job, state="FAILED", error=str(exc))
        raise
