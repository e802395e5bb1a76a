"""Request parameters: the seed's names, defaults and value forms (SPEC §4), validated once.

One immutable :class:`Parms` object is shared by the CLI, the Python API, the local server and
the Lambdas. ``Parms.from_dict(p.to_dict()) == p`` for every valid ``p`` (JSON round trip).
Unknown keys, wrong types and out-of-range values raise :class:`ParameterError` naming the key.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .errors import ParameterError
from .names import BEAMS
from .output import Output, parse_output
from .polygon import MAX_POLY_POINTS, validate_polygon
from .timeutil import format_utc, parse_utc

X_PODPPD = 0x01   # SlideRule's atl03x default podppd mask: nominal segments only
MIN_STEP_M = 0.1  # a finer step would only multiply identical extents (and memory)

CNF_NAMES = {"tep": -2, "not_considered": -1, "background": 0, "within_10m": 1,
             "low": 2, "medium": 3, "high": 4}
QUALITY_NAMES = {"nominal": 0, "afterpulse": 1, "impulse_response": 2, "tep": 3}
ATL08_NAMES = {"noise": 0, "ground": 1, "canopy": 2, "top_of_canopy": 3, "unclassified": 4}
SRT_NAMES = {"dynamic": -1, "land": 0, "ocean": 1, "sea_ice": 2, "land_ice": 3, "inland_water": 4}
PROJECTIONS = ("auto", "plate_carree", "north_polar", "south_polar")
ASSETS = ("atlas-local", "atlas-s3", "nsidc-s3", "icesat2")

# SlideRule keys we know but do not implement: refused with a clear message, never ignored.
_UNSUPPORTED = {
    "atl09_fields", "samples", "raster", "region_mask", "als", "atl24",
}
# Accepted for compatibility and ignored (request plumbing, not science).
_IGNORED = {"rqst-timeout", "node-timeout", "read-timeout", "cluster", "resources"}

# ---- SlideRule's wider vocabulary (issue 12; docs/parameters.md) ----------------------------------
# Keys SlideRule accepts that cannot mean anything here: accepted, no effect. The cluster keys
# partition work between SlideRule's nodes; the others are outputs that SlideRule fills in itself.
_NO_EFFECT = {"cluster_size_hint", "key_space", "ignore_poly_for_cmr", "points_in_polygon", "granule",
              "sliderule_version", "build_information", "environment_version", "resource"}
# Keys that configure a keyword of their own here: checked, then merged (see _merge_aliases).
_FIT_KEYS = ("maxi", "H_min_win", "sigma_r_max")
SPOTS = (1, 2, 3, 4, 5, 6)
# ---- end of the wider vocabulary -------------------------------------------------------------------


@dataclass(frozen=True)
class Yapc:
    """YAPC settings (SPEC §4.4). ``knn`` and ``min_ph`` only matter to versions 1 and 2."""

    score: int = 0
    knn: int = 0
    min_knn: int = 5
    win_h: float = 6.0
    win_x: float = 15.0
    version: int = 3
    min_ph: int = 4


# ---------------------------------------------------------------------- PhoREAL (issue 14)
PHOREAL_GEOLOC = ("mean", "median", "center")   # SlideRule's enum order: 0 mean, 1 median, 2 center
PHOREAL_ATL08_CLASS = (1, 2, 3)                 # ground, canopy, top of canopy: SlideRule's default with phoreal


@dataclass(frozen=True)
class Phoreal:
    """PhoREAL settings (SlideRule's ``phoreal`` table); giving the table turns the stage on.

    ``binsize`` is the relief bin (m) of the percentiles and the waveform, ``geoloc`` how an
    extent is geolocated, ``use_abs_h`` takes ATL03 ``h_ph`` instead of ATL08 ``ph_h`` as the
    canopy height, ``send_waveform`` adds each extent's binned canopy waveform, and
    ``above_classifier`` runs the ABoVE top-of-canopy reclassification.
    """

    binsize: float = 1.0
    geoloc: str = "median"
    use_abs_h: bool = False
    send_waveform: bool = False
    above_classifier: bool = False


def _parse_geoloc(key: str, value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(PHOREAL_GEOLOC):
        value = PHOREAL_GEOLOC[value]
    if value not in PHOREAL_GEOLOC:
        raise ParameterError(key, f"unknown value {value!r} (allowed: {', '.join(PHOREAL_GEOLOC)} or 0..2)")
    return value


_PHOREAL_PARSERS = {
    "binsize": lambda k, v: _number(k, v, 0.0, 1000.0, lo_open=True),
    "geoloc": _parse_geoloc,
    "use_abs_h": lambda k, v: _boolean(k, v),
    "send_waveform": lambda k, v: _boolean(k, v),
    "above_classifier": lambda k, v: _boolean(k, v),
}


def _parse_phoreal(key: str, value: Any) -> Phoreal:
    return Phoreal(**_settings(key, value, _PHOREAL_PARSERS))


@dataclass(frozen=True)
class Parms:
    """Validated request parameters (seed §2). Build with :meth:`from_dict`.

    Attribute names are the seed's keys, so ``parms.len`` is the extent length in metres
    (or ATL03 segments when ``dist_in_seg``).
    """

    asset: str = "atlas-local"
    # granule selection
    poly: tuple[tuple[float, float], ...] | None = None  # (lon, lat) vertices, closed
    proj: str = "auto"
    track: int = 0
    beams: tuple[str, ...] = BEAMS
    rgt: int | None = None
    cycle: int | None = None
    region: int | None = None
    version: int | None = None
    t0: str | None = None
    t1: str | None = None
    # photon selection
    srt: int = 3
    cnf: tuple[int, ...] = (0, 1, 2, 3, 4)
    quality_ph: tuple[int, ...] = (0,)
    atl08_class: tuple[int, ...] | None = None
    yapc: Yapc | None = None
    # extents
    len: float = 40.0
    res: float = 20.0
    dist_in_seg: bool = False
    pass_invalid: bool = False
    ats: float = 20.0
    cnt: int = 10
    # ATL06-SR fit
    maxi: int = 5
    H_min_win: float = 3.0
    sigma_r_max: float = 5.0
    compact: bool = False
    fit: bool = False               # a `fit` object was given: atl03x's surface fit (settings above)
    output: Output | None = None    # a server-written file (request/output.py)
    timeout: float | None = None
    # request bounds and deadlines (SlideRule's RequestParameters; docs/parameters.md)
    max_resources: int | None = None
    rqst_timeout: float | None = None
    node_timeout: float | None = None
    read_timeout: float | None = None
    # ancillary fields (docs/parameters.md "Ancillary fields"): dataset names per family
    atl03_geo_fields: tuple[str, ...] | None = None
    atl03_corr_fields: tuple[str, ...] | None = None
    atl03_ph_fields: tuple[str, ...] | None = None
    atl03_bckgrd_fields: tuple[str, ...] | None = None
    atl08_fields: tuple[str, ...] | None = None
    # SlideRule's wider vocabulary (issue 12)
    spots: tuple[int, ...] = SPOTS
    podppd: int | None = None
    name_filter: str | None = None
    # PhoREAL vegetation metrics (atl08 / atl08p)
    phoreal: Phoreal | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Parms:
        """Validate a parameter dictionary (seed form) into a :class:`Parms`.

        Parameters
        ----------
        data : dict or None
            Keys and values as in the seed, e.g. ``{"cnf": "atl03_high", "len": 40.0}``.
            ``None`` gives the defaults.

        Raises
        ------
        ParameterError
            Naming the first offending key.
        """
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ParameterError("parms", f"expected a JSON object, got {_kind(data)}")
        kw: dict[str, Any] = {}
        aliases: dict[str, Any] = {}
        for key, value in data.items():
            if not isinstance(key, str):
                raise ParameterError(str(key), "parameter names must be strings")
            if key in _IGNORED or key in _NO_EFFECT:
                continue
            if key == "atl06_fields":
                raise ParameterError(key, ATL06_FIELDS_MESSAGE)
            if key in _UNSUPPORTED:
                raise ParameterError(key, "is a SlideRule option that icesat2sr does not support")
            if key in _ALIASES:
                if value is not None:
                    aliases[key] = _ALIASES[key](key, value)
                    if key == "fit":   # also asks atl03x for its surface fit
                        kw["fit"] = True
                continue
            parse = _PARSERS.get(key)
            if parse is None:
                raise ParameterError(key, _unknown(key, [*_PARSERS, *_ALIASES, *_NO_EFFECT]))
            if value is None and key in _NULLABLE:
                continue
            kw[key] = parse(key, value)
        _merge_aliases(kw, aliases)
        if kw.get("poly") is not None:
            kw["poly"] = validate_polygon("poly", kw["poly"], kw.get("proj", "auto"))
        if kw.get("phoreal") is not None and kw.get("atl08_class") is None:
            kw["atl08_class"] = PHOREAL_ATL08_CLASS
        parms = cls(**kw)
        parms._check_consistency()
        return parms

    @classmethod
    def from_json(cls, text: str) -> Parms:
        """Parse JSON text, then :meth:`from_dict`. Unparsable JSON raises ParameterError."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ParameterError("parms", f"not valid JSON ({exc})") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> Parms:
        """A copy with some fields validated and changed (keys as in the seed)."""
        merged = self.to_dict()
        merged.update(changes)
        return Parms.from_dict(merged)

    def _check_consistency(self) -> None:
        if self.dist_in_seg and int(self.res) < 1:
            raise ParameterError("res", "with dist_in_seg, res counts whole segments and must be >= 1, "
                                        f"got {self.res:g}")
        if not self.dist_in_seg and self.res < MIN_STEP_M:
            raise ParameterError("res", f"must be >= {MIN_STEP_M:g} m, got {self.res:g}")
        if self.t0 and self.t1 and parse_utc(self.t0) > parse_utc(self.t1):
            raise ParameterError("t0", f"start time {self.t0} is after t1 {self.t1}")
        if self.track and not any(int(b[2]) == self.track for b in self.beams):
            raise ParameterError("track", f"track {self.track} selects none of beams {list(self.beams)}")

    # ------------------------------------------------------------------ views
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary in the seed's forms; ``from_dict`` of it gives back ``self``."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name.startswith("_"):
                continue
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "poly":
                value = [{"lon": lon, "lat": lat} for lon, lat in value]
            elif f.name in ("yapc", "phoreal"):
                value = asdict(value)
            elif f.name == "output":
                value = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(value).items()
                         if v is not None}
            elif f.name == "fit":
                if not value:
                    continue
                value = {k: getattr(self, k) for k in _FIT_KEYS}
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @property
    def ancillary(self) -> bool:
        """Whether any ancillary field is requested."""
        return any(getattr(self, key) for key in ANCILLARY_KEYS)

    @property
    def selected_beams(self) -> tuple[str, ...]:
        """Beams to process: ``beams`` restricted to ``track`` (0 = all tracks)."""
        return tuple(b for b in self.beams if self.track == 0 or int(b[2]) == self.track)

    def for_kind(self, kind: str) -> Parms:
        """These parameters as a processing kind uses them (its defaults filled in).

        ``atl08`` (SlideRule's PhoREAL endpoints) runs PhoREAL with its defaults when the request
        has no ``phoreal`` table: SlideRule then leaves the metrics uninitialised (docs/decisions.md,
        PhoREAL).
        ``atl03x`` (SlideRule's x-series) filters on ``podppd`` 1 (nominal segments only) unless the
        request says otherwise, as SlideRule's atl03x; with ``phoreal`` (and no ``fit``, which comes
        first, as in SlideRule) it gives PhoREAL's frame.
        """
        if kind == "atl03x":
            return self if self.podppd is not None else replace(self, podppd=X_PODPPD)
        if kind != "atl08":
            return self
        return self if self.phoreal is not None else self.replace(phoreal={})

    @property
    def deadlines(self) -> tuple[float | None, float | None, float | None]:
        """``(rqst, node, read)`` timeouts in seconds; each defaults to ``timeout`` (None: none)."""
        return (_first(self.rqst_timeout, self.timeout), _first(self.node_timeout, self.timeout),
                _first(self.read_timeout, self.timeout))

    @property
    def extent_length_m(self) -> float:
        """Extent length in metres (``len`` segments x 20 m when ``dist_in_seg``)."""
        return self.len * 20.0 if self.dist_in_seg else self.len


# ---------------------------------------------------------------------- value parsers
def _kind(value: Any) -> str:
    return type(value).__name__ if value is not None else "null"


def _number(key: str, value: Any, lo: float | None = None, hi: float | None = None,
            lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(key, f"expected a number, got {_kind(value)} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ParameterError(key, f"expected a finite number, got {value}")
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise ParameterError(key, f"must be {'>' if lo_open else '>='} {lo:g}, got {value:g}")
    if hi is not None and value > hi:
        raise ParameterError(key, f"must be <= {hi:g}, got {value:g}")
    return value


def _integer(key: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(key, f"expected an integer, got {_kind(value)} {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ParameterError(key, f"must be in [{lo}, {hi}], got {value}")
    return value


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ParameterError(key, f"expected true or false, got {_kind(value)} {value!r}")
    return value


def _enum_value(key: str, value: Any, names: dict[str, int], prefix: str, lo: int, hi: int) -> int:
    if isinstance(value, str):
        name = value.lower()
        if name.startswith(prefix):
            name = name[len(prefix):]
        if name not in names:
            allowed = ", ".join(prefix + n for n in names)
            raise ParameterError(key, f"unknown value '{value}' (allowed: {allowed} or {lo}..{hi})")
        return names[name]
    return _integer(key, value, lo, hi)


def _enum_list(key: str, value: Any, names: dict[str, int], prefix: str, lo: int, hi: int,
               single_means_at_least: bool) -> tuple[int, ...]:
    if isinstance(value, list | tuple):
        if not value:
            raise ParameterError(key, "the list is empty")
        return tuple(sorted({_enum_value(key, v, names, prefix, lo, hi) for v in value}))
    v = _enum_value(key, value, names, prefix, lo, hi)
    return tuple(range(v, hi + 1)) if single_means_at_least else (v,)


def _parse_cnf(key: str, value: Any) -> tuple[int, ...]:
    return _enum_list(key, value, CNF_NAMES, "atl03_", -2, 4, single_means_at_least=True)


def _parse_quality(key: str, value: Any) -> tuple[int, ...]:
    # SPEC §11.1: a single value means exactly that value (seed, SlideRule HEAD).
    return _enum_list(key, value, QUALITY_NAMES, "atl03_quality_", 0, 25, single_means_at_least=False)


def _parse_atl08(key: str, value: Any) -> tuple[int, ...]:
    return _enum_list(key, value, ATL08_NAMES, "atl08_", 0, 4, single_means_at_least=False)


def _parse_srt(key: str, value: Any) -> int:
    return _enum_value(key, value, SRT_NAMES, "surface_type_", -1, 4)


_YAPC_PARSERS = {
    "score": lambda k, v: _integer(k, v, 0, 255),
    "knn": lambda k, v: _integer(k, v, 0, 10000),
    "min_ph": lambda k, v: _integer(k, v, 0, 10000),
    "min_knn": lambda k, v: _integer(k, v, 1, 10000),
    "win_h": lambda k, v: _number(k, v, 0.0, 10000.0, lo_open=True),
    "win_x": lambda k, v: _number(k, v, 0.0, 10000.0, lo_open=True),
    "version": lambda k, v: _integer(k, v, 0, 3),
}


def _parse_yapc(key: str, value: Any) -> Yapc:
    return Yapc(**_settings(key, value, _YAPC_PARSERS))


def _parse_poly(key: str, value: Any) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list | tuple):
        raise ParameterError(key, f"expected a list of {{\"lon\", \"lat\"}} points, got {_kind(value)}")
    if len(value) > MAX_POLY_POINTS:
        raise ParameterError(key, f"has {len(value)} points; at most {MAX_POLY_POINTS} are supported "
                                  "(simplify it, e.g. toregion(..., tolerance=...))")
    points = []
    for i, p in enumerate(value):
        if not isinstance(p, dict) or "lon" not in p or "lat" not in p:
            raise ParameterError(key, f"point {i} must be an object with 'lon' and 'lat', got {p!r}")
        lon = _number(f"{key}[{i}].lon", p["lon"], -180.0, 180.0)
        lat = _number(f"{key}[{i}].lat", p["lat"], -90.0, 90.0)
        points.append((lon, lat))
    return tuple(points)   # checked in its projection once "proj" is known (from_dict)


def _parse_beams(key: str, value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    out = set()
    for v in items:
        if isinstance(v, str) and v.lower() in BEAMS:
            out.add(v.lower())
        elif not isinstance(v, bool) and isinstance(v, int) and v in (10, 20, 30, 40, 50, 60):
            out.add(BEAMS[v // 10 - 1])
        else:
            raise ParameterError(key, f"unknown beam {v!r} (allowed: {', '.join(BEAMS)} or 10..60)")
    if not out:
        raise ParameterError(key, "the list is empty")
    return tuple(b for b in BEAMS if b in out)


def _parse_time(key: str, value: Any) -> str:
    """Any time form SlideRule's server parses (``timeutil.parse_utc``), kept as ``...Z`` UTC text."""
    if not isinstance(value, str):
        raise ParameterError(key, f"expected a time like 2018-10-13T00:00:00Z, got {_kind(value)}")
    try:
        return format_utc(parse_utc(value))
    except ValueError as exc:
        raise ParameterError(key, f"'{value}' is not a time ({exc})") from None


def _parse_asset(key: str, value: Any) -> str:
    if value not in ASSETS:
        raise ParameterError(key, f"unknown asset {value!r} (known: {', '.join(ASSETS)})")
    return value


def _parse_version(key: str, value: Any) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return _integer(key, value, 1, 999)


def _choice(choices: tuple[str, ...]):
    def parse(key: str, value: Any) -> str:
        if value not in choices:
            raise ParameterError(key, f"unknown value {value!r} (allowed: {', '.join(choices)})")
        return value
    return parse


# ---------------------------------------------------------------------- ancillary fields
ANCILLARY_KEYS = ("atl03_ph_fields", "atl03_geo_fields", "atl08_fields", "atl03_corr_fields", "atl03_bckgrd_fields")
"""Ancillary field families, in SlideRule's ``anc_type`` order (0 ph, 1 geo, 2 atl08), then ours (4 corr, 5 bckgrd)."""
MAX_ANCILLARY_FIELDS = 64
ATL06_FIELDS_MESSAGE = ("selects ATL06 standard-product fields (land_ice_segments), which only SlideRule's "
                        "atl06s/atl06x subsetters of ATL06 granules return; icesat2sr computes ATL06-SR from ATL03: "
                        "request ATL03 fields with atl03_geo_fields, atl03_corr_fields, atl03_ph_fields or "
                        "atl03_bckgrd_fields, or ATL08 fields with atl08_fields")
_FIELD_NAME = re.compile(r"^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*$")


def _parse_fields(key: str, value: Any) -> tuple[str, ...] | None:
    """A list of dataset names below the family's group (``canopy/h_canopy``; ``name%`` for atl08)."""
    if not isinstance(value, list | tuple):
        raise ParameterError(key, f"expected a list of dataset names, got {_kind(value)} {value!r}")
    if len(value) > MAX_ANCILLARY_FIELDS:
        raise ParameterError(key, f"has {len(value)} fields; at most {MAX_ANCILLARY_FIELDS} are supported")
    out: list[str] = []
    for name in value:
        if not isinstance(name, str):
            raise ParameterError(key, f"field names must be strings, got {_kind(name)} {name!r}")
        bare = name[:-1] if key == "atl08_fields" and name.endswith("%") else name
        if not _FIELD_NAME.match(bare):
            suffix = " (a trailing % is allowed)" if key == "atl08_fields" else ""
            raise ParameterError(key, f"'{name}' is not a dataset name like 'solar_elevation' or "
                                      f"'canopy/h_canopy'{suffix}")
        if name in out:
            raise ParameterError(key, f"'{name}' is listed twice")
        out.append(name)
    return tuple(out) or None


_PARSERS = {
    "asset": _parse_asset,
    "poly": _parse_poly,
    "proj": _choice(PROJECTIONS),
    "track": lambda k, v: _integer(k, v, 0, 3),
    "beams": _parse_beams,
    "rgt": lambda k, v: _integer(k, v, 1, 1387),
    "cycle": lambda k, v: _integer(k, v, 1, 99),
    "region": lambda k, v: _integer(k, v, 1, 14),
    "version": _parse_version,
    "t0": _parse_time,
    "t1": _parse_time,
    "srt": _parse_srt,
    "cnf": _parse_cnf,
    "quality_ph": _parse_quality,
    "atl08_class": _parse_atl08,
    "yapc": _parse_yapc,
    "output": parse_output,
    "len": lambda k, v: _number(k, v, 0.0, 100000.0, lo_open=True),
    "res": lambda k, v: _number(k, v, 0.0, 100000.0, lo_open=True),
    "dist_in_seg": _boolean,
    "pass_invalid": _boolean,
    "ats": lambda k, v: _number(k, v, 0.0, 100000.0),
    "cnt": lambda k, v: _integer(k, v, 0, 10_000_000),
    "maxi": lambda k, v: _integer(k, v, 1, 1000),
    "H_min_win": lambda k, v: _number(k, v, 0.0, 10000.0),
    "sigma_r_max": lambda k, v: _number(k, v, 0.0, 10000.0, lo_open=True),
    "compact": _boolean,
    "podppd": lambda k, v: _integer(k, v, 0, 255),
    "timeout": lambda k, v: _number(k, v, 0.0, 86400.0, lo_open=True),
    **dict.fromkeys(ANCILLARY_KEYS, _parse_fields),
    "phoreal": _parse_phoreal,
}
_NULLABLE = {"poly", "rgt", "cycle", "region", "version", "t0", "t1", "atl08_class", "yapc", "output",
             "timeout", *ANCILLARY_KEYS, "phoreal"}

# ---- request bounds and deadlines (SlideRule's RequestParameters keys)
MAX_TIMEOUT_S = 86400.0
_PARSERS.update({
    "max_resources": lambda k, v: _integer(k, v, 1, 1_000_000),
    "rqst_timeout": lambda k, v: _number(k, v, 0.0, MAX_TIMEOUT_S, lo_open=True),
    "node_timeout": lambda k, v: _number(k, v, 0.0, MAX_TIMEOUT_S, lo_open=True),
    "read_timeout": lambda k, v: _number(k, v, 0.0, MAX_TIMEOUT_S, lo_open=True),
})
_NULLABLE |= {"max_resources", "rqst_timeout", "node_timeout", "read_timeout"}


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


# ---------------------------------------------------------------------- SlideRule's wider vocabulary
def _unknown(key: str, known: list[str]) -> str:
    """'unknown parameter; did you mean ...?' with the closest known names."""
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(key.lower(), [k.lower() for k in known], n=1, cutoff=0.6)
        close = [k for k in known if k.lower() in close]
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
        " (docs/parameters.md lists every accepted key)"
    return f"unknown parameter{hint}"


def _parse_spots(key: str, value: Any) -> tuple[int, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise ParameterError(key, "the list is empty")
    return tuple(sorted({_integer(key, v, 1, 6) for v in items}))


def _parse_name_filter(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value or value != value.strip() or len(value) > 256:
        raise ParameterError(key, f"expected a granule name pattern with * and ? (e.g. 'ATL03_2019*'), got {value!r}")
    return value


def _settings(key: str, value: Any, parsers: dict) -> dict[str, Any]:
    """A settings object (``yapc``, ``phoreal``, ``fit``, ``cmr``): each member checked by its parser,
    errors naming ``key.member``; a member given as null keeps its default."""
    if not isinstance(value, dict):
        raise ParameterError(key, f"expected an object like {{{', '.join(repr(k) for k in parsers)}: ...}}, "
                                  f"got {_kind(value)}")
    out = {}
    for sub, v in value.items():
        if sub not in parsers:
            raise ParameterError(f"{key}.{sub}", _unknown(str(sub), list(parsers)))
        if v is not None:
            out[sub] = parsers[sub](f"{key}.{sub}", v)
    return out


def _parse_fit(key: str, value: Any) -> dict[str, Any]:
    """SlideRule's ``fit`` object: the ATL06-SR settings, the same as the top-level keys."""
    return _settings(key, value, {k: _PARSERS[k] for k in _FIT_KEYS})


def _parse_cmr(key: str, value: Any) -> dict[str, Any]:
    """SlideRule's ``cmr`` object: ``version``, the release discovery searches (as ``version``)."""
    return _settings(key, value, {"version": _parse_version})


def _merge_aliases(kw: dict[str, Any], aliases: dict[str, dict[str, Any]]) -> None:
    """``fit.*`` and ``cmr.version`` mean the top-level keys; both given and different is an error."""
    for alias, values in aliases.items():
        for sub, value in values.items():
            top = "version" if alias == "cmr" else sub
            if top in kw and kw[top] != value:
                raise ParameterError(f"{alias}.{sub}", f"is {value!r} but '{top}' is {kw[top]!r}; give one of them")
            kw[top] = value


_ALIASES = {"fit": _parse_fit, "cmr": _parse_cmr}
_PARSERS.update({
    "spots": _parse_spots,
    "podppd": lambda k, v: _integer(k, v, 0, 255),
    "name_filter": _parse_name_filter,
})
_NULLABLE |= {"podppd", "name_filter"}
_NOT_SUPPORTED_DATUM = ("heights are in the granule's own frame (ITRF2014 for releases up to 006, ITRF2020 for "
                        "007); icesat2sr does no datum conversion")


def _parse_datum(key: str, value: Any) -> None:
    raise ParameterError(key, f"is not supported: {_NOT_SUPPORTED_DATUM}")


_ALIASES["datum"] = _parse_datum


def defaults() -> dict[str, Any]:
    """The default parameters as a seed-form dictionary."""
    return Parms().to_dict()


__all__ = ["ParameterError", "Parms", "Phoreal", "Yapc", "defaults"]
