"""SlideRule's ``output`` request parameter: a file the server writes and delivers.

``{"path", "format", "open_on_complete", "as_geo", "with_checksum", "with_validation", "fields"}``,
validated into an :class:`Output`. The ``path`` names the file on the *client's* machine (the server
streams the file back and the client writes it there) or an ``s3://bucket/key`` object (written by the
serverless deployment). It is never a path on the server: see docs/parameters.md, "output".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import ParameterError

FORMATS = ("geoparquet", "parquet", "feather", "csv")
"""Formats we write (SlideRule's arrow formats)."""
FORMAT_CODES = {1: "feather", 2: "parquet", 3: "geoparquet", 4: "csv"}
"""SlideRule's ``OutputFields::format_t`` numbers."""
UNSUPPORTED_FORMATS = {5: "h5", 6: "las", 7: "laz"}
MAX_NAME = 127            # SlideRule's arrowrec file name field: 128 bytes with its NUL
MAX_URL = 511             # arrowrec.remote url: 512 bytes with its NUL
MAX_FIELDS = 256
_S3 = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)$")
_PRINTABLE = re.compile(r"^[\x20-\x7e]+$")
# keys SlideRule echoes with empty defaults; anything else in them is a feature we do not offer
_EMPTY_ONLY = {"asset": "a credentialed output asset", "region": "an output region", "endpoint": "an S3 endpoint",
               "credentials": "output credentials", "ancillary": "p-series ancillary column names",
               "with_openapi": "an OpenAPI schema in the file"}


@dataclass(frozen=True)
class Output:
    """A validated ``output`` parameter (SlideRule's ``OutputFields``).

    ``format`` is already normalised as SlideRule does it: ``parquet`` with ``as_geo`` becomes
    ``geoparquet``, and ``geoparquet`` always has ``as_geo``.
    """

    path: str
    format: str = "geoparquet"
    open_on_complete: bool = False
    as_geo: bool = False
    with_checksum: bool = False
    with_validation: bool = False
    fields: tuple[str, ...] | None = None

    @property
    def geo(self) -> bool:
        """Whether the file carries a WKB point geometry (GeoParquet)."""
        return self.format == "geoparquet"

    @property
    def remote(self) -> bool:
        """Whether the path is an ``s3://`` object (written by the serverless deployment)."""
        return self.path.startswith("s3://")

    def s3_location(self) -> tuple[str, str]:
        """``(bucket, key)`` of an ``s3://`` path."""
        m = _S3.match(self.path)
        if m is None:
            raise ValueError(f"{self.path!r} is not an s3:// path")
        return m[1], m[2]


def parse_output(key: str, value: Any) -> Output:
    """Validate an ``output`` object (hostile input: every key and value checked).

    Raises
    ------
    ParameterError
        Naming ``output.<key>``.
    """
    if not isinstance(value, dict):
        raise ParameterError(key, f"expected an object like {{\"path\": \"out.parquet\", \"format\": \"parquet\"}}, "
                                  f"got {type(value).__name__}")
    kw: dict[str, Any] = {}
    for name, v in value.items():
        sub = f"{key}.{name}"
        if name == "path":
            kw[name] = _path(sub, v)
        elif name == "format":
            kw[name] = _format(sub, v)
        elif name in ("open_on_complete", "as_geo", "with_checksum", "with_validation"):
            if not isinstance(v, bool):
                raise ParameterError(sub, f"expected true or false, got {v!r}")
            kw[name] = v
        elif name == "fields":
            kw[name] = _fields(sub, v)
        elif name in _EMPTY_ONLY:
            if v not in (None, "", [], {}, False):
                raise ParameterError(sub, f"{_EMPTY_ONLY[name]} is not supported by icesat2sr")
        else:
            raise ParameterError(sub, "unknown output setting (known: path, format, open_on_complete, as_geo, "
                                      "with_checksum, with_validation, fields)")
    if "path" not in kw:
        raise ParameterError(f"{key}.path", "is required: the file name the client writes, or s3://bucket/key")
    fmt = kw.get("format", "geoparquet")
    as_geo = kw.get("as_geo", False)
    if fmt == "parquet" and as_geo:
        fmt = "geoparquet"
    kw["format"], kw["as_geo"] = fmt, as_geo or fmt == "geoparquet"
    return Output(**kw)


def _path(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ParameterError(key, f"expected a file name or s3://bucket/key, got {value!r}")
    if not _PRINTABLE.match(value):
        raise ParameterError(key, "must be printable ASCII (the clients decode it as ASCII)")
    if value.startswith("file://"):
        raise ParameterError(key, "file:// names a path on the server; icesat2sr streams the file back to the "
                                  "client instead: give the client-side path")
    if value.startswith("s3://"):
        m = _S3.match(value)
        if m is None or len(value) > MAX_URL or ".." in m[2].split("/"):
            raise ParameterError(key, f"{value!r} is not a valid s3://bucket/key (at most {MAX_URL} characters)")
    elif len(value) > MAX_NAME:
        raise ParameterError(key, f"is {len(value)} characters long; SlideRule's record carries at most {MAX_NAME}")
    return value


def _format(key: str, value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if value in FORMAT_CODES:
            return FORMAT_CODES[value]
        value = UNSUPPORTED_FORMATS.get(value, value)
    if isinstance(value, str) and value.lower() in FORMATS:
        return value.lower()
    raise ParameterError(key, f"unsupported format {value!r} (supported: {', '.join(FORMATS)})")


def _fields(key: str, value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, list | tuple) or len(value) > MAX_FIELDS:
        raise ParameterError(key, f"expected a list of at most {MAX_FIELDS} column names, got {value!r}")
    for name in value:
        if not isinstance(name, str) or not _PRINTABLE.match(name) or len(name) > 256:
            raise ParameterError(key, f"column names must be printable strings, got {name!r}")
    return tuple(dict.fromkeys(value)) or None


__all__ = ["FORMATS", "Output", "parse_output"]
