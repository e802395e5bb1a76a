"""h5coro's S3 driver with reads that survive throttling and report what they could not survive.

h5coro 1.0.7's ``S3Driver.read`` gives a ranged GET two attempts and then returns ``None`` for any
error, so a throttled read (HTTP 503 ``SlowDown``) looks exactly like a missing object. At Lambda
fan-out (hundreds of workers reading one bucket) throttling is expected, so
:class:`RetryingS3Driver` retries transient failures itself (full-jitter exponential backoff),
keeps ``None`` for a missing object, learns the object's size from the first answer (so that
:mod:`~icesat2sr.granules.h5read` can refuse reads past its end), raises
:class:`~icesat2sr.request.errors.ResourceError` for a permanent one (access denied), and when a
transient failure outlasts its retries raises :class:`TransientReadError` and counts it
(:func:`transient_failures`). A caller that sees the count grow while it processed a granule knows
the result may be incomplete (h5read turns some read errors into "dataset absent") and retries the
whole granule: the worker Lambda does, through Step Functions' ``Retry``.
"""

from __future__ import annotations

import random
import threading
import time

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from h5coro.s3driver import S3Driver

from ..request.errors import ResourceError

_JITTER = random.Random()   # its own state: a retry in a background thread leaves the caller's random alone

MISSING = frozenset({"NoSuchKey", "NoSuchBucket", "404", "NotFound"})
THROTTLING = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
                        "TooManyRequestsException", "RequestThrottled", "ServiceUnavailable",
                        "InternalError", "RequestTimeout", "RequestTimeTooSkewed"})

_lock = threading.Lock()
_failures = 0


def transient_failures() -> int:
    """How many reads in this process gave up on a transient error (monotonic counter)."""
    return _failures


class TransientReadError(ResourceError):
    """A ranged GET kept failing with throttling, 5xx or connection errors: try again later."""

    def __init__(self, resource: str, message: str):
        super().__init__(resource, message, ResourceError.TIMEOUT)


class RetryingS3Driver(S3Driver):
    """``h5coro.s3driver.S3Driver`` whose reads retry transient errors (see the module docstring).

    Class attributes (tests shorten them): ``attempts`` per read, backoff ``base_s`` doubling up to
    ``max_s`` with full jitter, and the client's socket timeouts ``read_timeout_s`` and
    ``connect_timeout_s``. A request's ``read_timeout`` (seconds) shortens both: a ranged GET that
    stalls longer is abandoned and retried (the wait for a whole dataset is bounded by
    :class:`~icesat2sr.granules.h5read.Granule`).
    """

    attempts = 8
    base_s = 0.1
    max_s = 4.0
    read_timeout_s = 20.0
    connect_timeout_s = 5.0

    def __init__(self, resource, credentials, session=None, max_connections=None, read_timeout: float | None = None):
        super().__init__(resource, credentials, session, max_connections)
        self.size: int | None = None  # the object's size, from the first response's Content-Range
        self.client.close()
        socket_s = self.read_timeout_s if read_timeout is None else min(self.read_timeout_s, read_timeout)
        # one attempt per call: the retry policy is ours (botocore's would sleep up to 20 s itself)
        self.client = self.session.client("s3", config=Config(
            max_pool_connections=self.max_connections, retries={"max_attempts": 1, "mode": "standard"},
            read_timeout=socket_s, connect_timeout=min(self.connect_timeout_s, socket_s), tcp_keepalive=True))

    def read(self, offset: int, size: int) -> bytes | None:
        """Bytes ``[offset, offset + size)`` of the object; None when it does not exist."""
        global _failures
        last: Exception | None = None
        for attempt in range(self.attempts):
            if self._closed:   # the granule was given up (e.g. its read_timeout passed): stop retrying
                raise RuntimeError("S3Driver has been closed and cannot be used.")
            try:
                response = self.client.get_object(Bucket=self.bucket_name, Key=self.key,
                                                  Range=f"bytes={offset}-{offset + size - 1}")
                total = response.get("ContentRange", "").rpartition("/")[2]
                if total.isdigit():
                    self.size = int(total)
                return response["Body"].read()
            except ClientError as exc:
                error = exc.response.get("Error", {})
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if error.get("Code") in MISSING:
                    return None
                if error.get("Code") not in THROTTLING and status < 500 and status != 429:
                    raise ResourceError(self.key.rsplit("/", 1)[-1],
                                        f"cannot read s3://{self.bucket_name}/{self.key}: {error.get('Code')} "
                                        f"({error.get('Message', '')})") from None
                last = exc
            except BotoCoreError as exc:  # timeouts, connection resets, truncated bodies
                last = exc
            if attempt + 1 < self.attempts:
                time.sleep(_JITTER.uniform(0.0, min(self.max_s, self.base_s * 2 ** attempt)))
        with _lock:
            _failures += 1
        raise TransientReadError(self.key.rsplit("/", 1)[-1],
                                 f"s3://{self.bucket_name}/{self.key} unreadable after {self.attempts} "
                                 f"attempts (last: {last})")


__all__ = ["RetryingS3Driver", "TransientReadError", "transient_failures"]
