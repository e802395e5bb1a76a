"""What every command shares: formats, exit codes, request options and their parsing."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..request.errors import Icesat2srError, ParameterError
from ..request.output import FORMATS as _OUTPUT_FORMATS

FORMATS = (*_OUTPUT_FORMATS, "h5")

EXIT_BAD_INPUT = 2
GRANULE_TIMEOUT_S = 1800.0   # per granule; a full ATL03 granule takes well under a minute per core


class UsageError(Icesat2srError):
    """Bad command-line input (exit 2)."""



def add_request_options(p: argparse.ArgumentParser) -> None:
    """Add the options every processing command takes (data, parameters, region, output) to ``p``."""
    p.add_argument("--path", help="data folder (asset atlas-local) or bucket/prefix (atlas-s3)")
    p.add_argument("--asset", default="atlas-local", help="atlas-local (default), atlas-s3 or nsidc-s3")
    p.add_argument("--parms", default=None, metavar="JSON|@FILE", help="request parameters")
    p.add_argument("--poly", default=None, metavar="GEOJSON", help="region: a GeoJSON file")
    p.add_argument("-o", "--output", required=True, type=Path,
                   help="output file: .parquet (GeoParquet), .feather, .csv or .h5")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="file format instead of the extension's (e.g. parquet: no geometry column)")
    p.add_argument("--workers", type=positive(int, "processes"), default=None,
                   help="processes (default: all cores)")
    p.add_argument("--granule-timeout", type=positive(float, "seconds"), default=GRANULE_TIMEOUT_S,
                   metavar="SECONDS", help=f"stop a granule that takes longer (default {GRANULE_TIMEOUT_S:g})")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")


def positive(kind: type, unit: str):
    """argparse type: a positive finite number (``--workers 0`` is an error, not "the default")."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of {unit}, got {text!r}") from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive number of {unit}, got {text}")
        return value
    return parse


def request_parms(text: str | None, poly_file: str | None, asset: str):
    """Build :class:`Parms` from ``--parms`` (JSON text or ``@file``) and ``--poly``."""
    from ..request.params import Parms
    from ..request.polygon import region_from_geojson

    data: dict = {}
    if text:
        if text.startswith("@"):
            try:
                text = Path(text[1:]).read_text()
            except OSError as exc:
                raise ParameterError("parms", f"cannot read {text[1:]}: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ParameterError("parms", f"not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ParameterError("parms", "must be a JSON object")
    if poly_file:
        try:
            geojson = json.loads(Path(poly_file).read_text())
        except OSError as exc:
            raise ParameterError("poly", f"cannot read {poly_file}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ParameterError("poly", f"{poly_file} is not valid GeoJSON ({exc})") from None
        data["poly"] = region_from_geojson(geojson)
    data.setdefault("asset", asset)
    return Parms.from_dict(data)


