"""A server's limits and defaults, apart from the server so that the CLI's parser can show them
without importing uvicorn and the routes."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_RESOURCES = 300     # SlideRule's default max_resources (SystemConfig requestMaxResources)
DEFAULT_GRANULE_TIMEOUT_S = 1800.0   # per granule; a full ATL03 granule takes well under a minute per core


@dataclass(frozen=True)
class Limits:
    """What one server accepts (the ``icesat2sr serve`` options of the same names).

    Parameters
    ----------
    max_processing : int
        Processing requests (``atl06``, ``atl06p``, ``atl03s``, ``atl03sp``, ``atl08``, ``atl08p``,
        ``indexer``) served at once; each runs up to ``Config.workers`` processes. Beyond it: 503 with ``Retry-After``.
    max_connections : int
        Open connections; beyond it a request is answered 503.
    max_body : int
        Largest request body in bytes (413 beyond; a 16384-point polygon is under 1 MB).
    header_timeout_s : float
        Time a client has to send a whole request head once it started one (or once connected).
    body_timeout_s : float
        Time a client has to send a whole request body.
    send_timeout_s : float
        Time a client may take to accept one chunk of a stream before it is dropped.
    keepalive_s : float
        Idle time an open connection is kept between requests.
    backlog : int
        Listen backlog (connections the kernel queues before they are accepted).
    shutdown_s : float
        On SIGTERM, time open requests get to finish before they are cancelled.
    retry_after_s : int
        ``Retry-After`` of a 503.
    """

    max_processing: int = 4
    max_connections: int = 256
    max_body: int = 16 << 20
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    send_timeout_s: float = 60.0
    keepalive_s: float = 5.0
    backlog: int = 1024
    shutdown_s: float = 5.0
    retry_after_s: int = 5

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not 0 < value < 1e9:   # NaN and infinity included
                raise ValueError(f"{name} must be a positive number below 1e9, got {value}")
