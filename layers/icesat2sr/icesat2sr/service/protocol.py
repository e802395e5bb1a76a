"""What the endpoints are made of: a deployment's :class:`Config`, a :class:`Response`, the request
errors, and messages that are safe to send (:func:`public_message`)."""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..granules.assets import Asset, resolve_asset
from ..request.errors import Icesat2srError
from .limits import DEFAULT_GRANULE_TIMEOUT_S, DEFAULT_MAX_RESOURCES

log = logging.getLogger(__name__)

JSON = "application/json"
OCTET = "application/octet-stream"
CHUNK_BYTES = 1 << 20           # coalesce records into writes of about this size
# endpoints that read granules (the others answer from memory)
PROCESSING = frozenset({"/source/atl06", "/source/atl03s", "/source/atl08", "/source/atl06p", "/source/atl03sp",
                        "/source/atl08p", "/source/atl03x", "/source/indexer"})




@dataclass
class Response:
    """An HTTP answer: ``body`` is bytes, or an iterator of byte chunks for a stream.

    An empty chunk in a stream is a heartbeat (nothing to send yet): a server may use it to
    check that the client is still there.
    """

    status: int
    content_type: str
    body: bytes | Iterator[bytes]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def streaming(self) -> bool:
        """Whether the body is an iterator of chunks (sent as they come) rather than bytes."""
        return not isinstance(self.body, bytes | bytearray)


@dataclass
class Config:
    """What a deployment serves.

    Parameters
    ----------
    asset : str
        The asset behind the clients' ``icesat2`` (and the seed's default ``atlas-local``).
    path : str, optional
        Its data folder (``atlas-local``) or ``bucket/prefix`` (``atlas-s3``).
    workers : int, optional
        Processes per request (default: CPU count). ``1`` without a granule time limit processes
        granules in the calling thread.
    granule_timeout : float, optional
        Seconds one granule may run before its process is killed and it fails with a TIMEOUT
        error; a request's ``node_timeout`` may shorten it, never lengthen it. None: no limit
        unless the request sets one.
    inline : bool
        Granules run one at a time in the calling thread and no per-granule limit applies (the
        API Lambda's sync route: its whole request runs in a process killed at its deadline).
    heartbeat_s : float
        How often a stream yields an empty chunk while it waits for results.
    max_resources : int
        Largest number of granules one request may name or discover (SlideRule's
        ``max_resources``); a request may ask for fewer, never more.
    environment : str
        Reported by ``/source/version``.
    scratch : str, optional
        Folder for output files being written (default: a private folder made on first use
        under the system's temporary folder).
    remote_output : str, optional
        ``s3://bucket/prefix/`` under which requests may have their ``output`` written (uploaded,
        then announced by an ``arrowrec.remote`` record); None: no ``s3://`` output.
    output_files : bool
        Whether the streaming endpoints write ``output`` files (the API Lambda, without pyarrow,
        leaves them to its jobs).
    """

    asset: str = "atlas-local"
    path: str | None = None
    workers: int | None = None
    granule_timeout: float | None = DEFAULT_GRANULE_TIMEOUT_S
    inline: bool = False
    heartbeat_s: float = 0.5
    max_resources: int = DEFAULT_MAX_RESOURCES
    environment: str = "icesat2sr-local"
    scratch: str | None = None
    remote_output: str | None = None
    output_files: bool = True
    started: float = field(default_factory=time.time)

    def __post_init__(self):
        if self.granule_timeout is not None:
            from ..batch import check_time_limit

            check_time_limit(self.granule_timeout, "granule_timeout")

    def scratch_file(self, fmt: str) -> str:
        """A fresh file name in the scratch folder (created private, 0700, on first use)."""
        if self.scratch is None:
            self.scratch = tempfile.mkdtemp(prefix="icesat2sr-output-")
        os.makedirs(self.scratch, mode=0o700, exist_ok=True)
        return os.path.join(self.scratch, f"{uuid.uuid4().hex}.{fmt}")

    def resolve(self, name: str | None) -> Asset:
        """The :class:`Asset` for a requested asset name (``icesat2`` = this deployment's)."""
        if name in (None, "icesat2", self.asset):
            return resolve_asset(self.asset, self.path)
        return resolve_asset(name, None)


class BadRequest(Icesat2srError):
    """The request cannot be served as sent (HTTP 400)."""


class NotFound(Icesat2srError):
    """No such endpoint or record type (HTTP 404)."""



def shorten(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters (``...`` marks a cut)."""
    return text if len(text) <= limit else text[:limit] + "..."


# an absolute path's folders, e.g. "/srv/data/" in "/srv/data/ATL03_...h5" (not URLs: "https://host/x")
_FOLDERS = re.compile(r"(?<![\w.:/~-])/(?:[^\s/'\"():,;]+/)+")


def public_message(text: str, config: Config | None = None) -> str:
    """``text`` without this machine's folders: a client learns which granule or key failed,
    not where the server keeps its data."""
    if config is not None and config.path and config.asset == "atlas-local":
        for root in {config.path.rstrip("/"), os.path.realpath(config.path)}:
            if root and root != "/":
                text = text.replace(root, f"<{config.asset}>")
    return shorten(_FOLDERS.sub("", text), 1000)


