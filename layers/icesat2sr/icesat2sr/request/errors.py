"""Typed errors. Each maps to one user-facing outcome (CLI exit 2, HTTP 400, exceptrec code)."""

from __future__ import annotations


class Icesat2srError(Exception):
    """Base of every error this package raises on purpose."""


class ParameterError(Icesat2srError, ValueError):
    """A request parameter is unknown, of the wrong type or out of range.

    Parameters
    ----------
    key : str
        The offending parameter name (dotted for nested keys, e.g. ``yapc.score``).
    message : str
        What is wrong with it.
    """

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"parameter '{key}': {message}")


class ResourceError(Icesat2srError):
    """A granule cannot be used: bad name, missing, unreadable, truncated or impossible values.

    ``code`` follows SlideRule's exception codes (-3 resource does not exist, -2 timeout: try
    again, -1 error).
    """

    RESOURCE_DOES_NOT_EXIST = -3
    TIMEOUT = -2
    ERROR = -1

    def __init__(self, resource: str, message: str, code: int = ERROR):
        self.resource = resource
        self.code = code
        super().__init__(f"{resource}: {message}")


class ServiceError(Icesat2srError):
    """A remote service (NASA CMR, S3) failed after retries: not the user's input (CLI exit 1, HTTP 502)."""


class DestinationError(Icesat2srError):
    """An output cannot go where it was asked to: an input of the request, an unwritable folder
    (bad input: CLI exit 2, before any work)."""


class WriteError(Icesat2srError):
    """Writing an output failed (disk full, file size limit); nothing was left behind (CLI exit 1)."""
