"""SlideRule's x-series (``atl03x``): a beam's photon DataFrame and its surface-fit stage.

:func:`photon_frame` gives the columns of SlideRule's ``Atl03DataFrame`` for the photons that pass
the request's selection (one row per photon, no extents); :func:`surface_fit` runs the ``fit`` stage
(SlideRule's ``SurfaceFitter``) over such a frame and gives one row per fitted extent. Both return a
dict of numpy columns in SlideRule's names and dtypes, plus the beam's constant columns (``spot``,
``cycle``, ``region``, ``rgt``, ``gt``: SlideRule's frame metadata, which its output files carry as
columns).

SurfaceFitter differs from the p-series ATL06-SR fit (docs/decisions.md, "x-series"):

* extents are laid over the *selected* photons of the frame: the first starts at the first photon's
  ``x_atc`` and each next one ``res`` further (a running float64 sum), skipping empty ones;
* its float64 arithmetic: centre-relative ``x``, the slope and the window are never rounded to
  float32 between passes, ``rms_misfit``/``h_sigma`` are float64 until stored, ``h_mean`` is stored
  as float32;
* the checks before a fit compare the extent's photon count with ``cnt`` and its spread with ``ats``,
  and the background density uses ``len`` (SlideRule's C++ passes those three parameters through
  ``operator bool``, i.e. 1; docs/decisions.md, x-series 5: we do what it intends, as its p-series);
* an extent becomes a row only when its fit raised no flag (any flag with ``pass_invalid``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..granules.ancillary import background_index, requested_fields
from ..granules.beam import Beam
from ..request.params import Parms
from ..request.timeutil import delta_time_to_ns
from .extents import Extents
from .fit import FitSettings, fit_extents
from .records import NUM_PERCENTILES

PHOTON_COLUMNS = {
    "time_ns": "<i8", "latitude": "<f8", "longitude": "<f8", "segment_id": "<i4", "x_atc": "<f8",
    "y_atc": "<f4", "height": "<f4", "solar_elevation": "<f4", "background_rate": "<f4",
    "spacecraft_velocity": "<f4", "atl03_cnf": "i1", "quality_ph": "i1", "ph_index": "<u4",
}
"""Atl03DataFrame's columns (always present), in its order."""
YAPC_COLUMN, ATL08_COLUMN = ("yapc_score", "<u2"), ("atl08_class", "u1")
FIT_COLUMNS = {
    "time_ns": "<i8", "latitude": "<f8", "longitude": "<f8", "segment_id_beg": "<i4", "x_atc": "<f8",
    "y_atc": "<f4", "photon_start": "<u4", "pflags": "<u2", "h_mean": "<f4", "dh_fit_dx": "<f4",
    "w_surface_window_final": "<f4", "n_fit_photons": "<i4", "rms_misfit": "<f4", "h_sigma": "<f4",
}
"""SurfaceFitter's columns, in its order."""
PHOREAL_COLUMNS = {
    "time_ns": "<i8", "latitude": "<f8", "longitude": "<f8", "segment_id_beg": "<i4", "x_atc": "<f8",
    "y_atc": "<f4", "photon_start": "<u4", "photon_count": "<u4", "pflags": "<u2", "ground_photon_count": "<u4",
    "vegetation_photon_count": "<u4", "landcover": "u1", "snowcover": "u1", "solar_elevation": "<f4",
    "h_te_median": "<f4", "h_max_canopy": "<f4", "h_min_canopy": "<f4", "h_mean_canopy": "<f4", "h_canopy": "<f4",
    "canopy_openness": "<f4", "canopy_h_metrics": ("<f4", (NUM_PERCENTILES,)),
}
"""SlideRule's x-series PhoREAL frame's columns, in its order (``canopy_h_metrics``: 20 per row)."""
VEGETATION_NAMES = {"time_ns": "time", "photon_count": "ph_count", "ground_photon_count": "gnd_ph_count",
                    "vegetation_photon_count": "veg_ph_count"}
"""PhoREAL frame columns taken from :data:`icesat2sr.science.records.VEGETATION` fields of another name."""
META_COLUMNS = {"spot": "u1", "cycle": "u1", "region": "u1", "rgt": "<u2", "gt": "u1"}
"""The frame's per-beam metadata, carried as constant columns."""
TIME, X, Y = "time_ns", "longitude", "latitude"

_BLOCK = 1 << 20          # extent start distances generated per step of the running sum


def photon_frame(beam: Beam, parms: Parms, conf: np.ndarray, keep: np.ndarray,
                 yapc_score: np.ndarray | None = None,
                 ancillary: Mapping | None = None, *, segment: np.ndarray | None = None,
                 first: int = 0) -> dict[str, np.ndarray]:
    """The atl03x photon columns of one region-trimmed beam, or of a window of its photons.

    Parameters
    ----------
    beam : Beam
        A region-trimmed beam (or a window of its photons: ``first``).
    parms : Parms
        The request (``yapc`` adds ``yapc_score``; an ATL08 join adds ``atl08_class``).
    conf : ndarray of int8, shape (N,)
        Signal confidence of every photon (:func:`icesat2sr.science.select.photon_confidence`).
    keep : ndarray of bool, shape (N,)
        Photons passing the selection (:func:`icesat2sr.science.select.photon_mask`).
    yapc_score : ndarray, shape (N,), optional
        YAPC scores, when the request has ``yapc``.
    ancillary : mapping of AncField to ndarray, optional
        Per-photon ancillary values of the beam; columns named after the requested fields.
    segment : ndarray of int64, shape (N,), optional
        Segment index of each photon (default: the beam's photons from its first segment on).
    first : int
        Index in the beam of the first photon given (a window of the beam's photons).

    Returns
    -------
    dict of str to ndarray
        :data:`PHOTON_COLUMNS`, the optional ones, the ancillary ones, then :data:`META_COLUMNS`.
    """
    sel = np.flatnonzero(keep)
    seg = (beam.photon_segment() if segment is None else segment)[sel]
    v = beam.velocity_sc.astype(np.float64)
    speed = np.sqrt((v[:, 0] * v[:, 0] + v[:, 1] * v[:, 1]) + v[:, 2] * v[:, 2]).astype(np.float32)
    bg = beam.bckgrd_rate[background_index(beam.bckgrd_delta_time, beam.segment_delta_time)]
    out = {
        "time_ns": delta_time_to_ns(beam.delta_time[sel]),
        "latitude": beam.lat_ph[sel], "longitude": beam.lon_ph[sel],
        "segment_id": beam.segment_id[seg],
        "x_atc": beam.dist_ph_along[sel].astype(np.float64) + beam.segment_dist_x[seg],
        "y_atc": beam.dist_ph_across[sel], "height": beam.h_ph[sel],
        "solar_elevation": beam.solar_elevation[seg], "background_rate": bg[seg],
        "spacecraft_velocity": speed[seg], "atl03_cnf": conf[sel], "quality_ph": beam.quality_ph[sel],
        "ph_index": sel + (beam.first_photon + first),
    }
    out = {name: np.ascontiguousarray(out[name], dtype=dtype) for name, dtype in PHOTON_COLUMNS.items()}
    if parms.yapc is not None:
        out[YAPC_COLUMN[0]] = np.asarray(yapc_score)[sel].astype(YAPC_COLUMN[1])
    if beam.atl08_class is not None:
        out[ATL08_COLUMN[0]] = beam.atl08_class[sel].astype(ATL08_COLUMN[1])
    for field, values in (ancillary or {}).items():
        out.setdefault(column_name(field.name), np.ascontiguousarray(values[sel]))
    out.update(meta_columns(beam, len(sel)))
    return out


def phoreal_frame(beam: Beam, extents: Extents, parms: Parms, first: int = 0) -> dict[str, np.ndarray]:
    """The x-series PhoREAL frame of a batch of extents: our PhoREAL (``atl08``) records in
    SlideRule's x-series PhoREAL columns.

    Parameters
    ----------
    beam : Beam
        The beam's segments and a window of its photons (with the ATL08 join PhoREAL needs).
    extents : Extents
        Emitted extents over the window's photons.
    parms : Parms
        With ``phoreal``.
    first : int
        Index in the beam of the window's first photon.

    Returns
    -------
    dict of str to ndarray
        :data:`PHOREAL_COLUMNS`, the requested ancillary columns (per extent, the mean of its
        photons' values, as the fit's), then :data:`META_COLUMNS`: one row per extent with photons.
    """
    from .phoreal import across_track, vegetation_rows

    rows, _, _ = vegetation_rows(beam, extents, beam.atl08_class, parms.phoreal)
    keep = np.flatnonzero(extents.count > 0)
    head = extents.photon[np.concatenate(([0], np.cumsum(extents.count[keep])))[:-1]]
    out = {name: rows[VEGETATION_NAMES.get(name, name)] for name in PHOREAL_COLUMNS
           if VEGETATION_NAMES.get(name, name) in rows.dtype.names}
    out["x_atc"] = rows["x_atc"]
    out["y_atc"] = across_track(beam, extents, parms.phoreal)
    ends = np.cumsum(beam.segment_ph_cnt, dtype=np.int64)
    out["segment_id_beg"] = beam.segment_id[np.searchsorted(ends, head + first, side="right")]   # its first photon's
    out["photon_start"] = head + (beam.first_photon + first)
    out = {name: np.ascontiguousarray(out[name], dtype=np.dtype(dtype)) if name != "canopy_h_metrics"
           else np.ascontiguousarray(out[name], dtype=np.float32) for name, dtype in PHOREAL_COLUMNS.items()}
    anc = beam.extra.get("ancillary") or {}
    for field, values in anc.items():
        out.setdefault(column_name(field.name), _extent_mean(values[extents.photon], extents.count[keep]))
    out.update(meta_columns(beam, len(keep)))
    return out


def column_name(field: str) -> str:
    """A requested ancillary field's column: the dataset name without ATL08's ``%``."""
    return field.rstrip("%")


def meta_columns(beam: Beam, n: int) -> dict[str, np.ndarray]:
    """The beam's constant columns for ``n`` rows."""
    values = {"spot": beam.spot, "cycle": beam.cycle, "region": beam.region, "rgt": beam.rgt, "gt": beam.gt}
    return {name: np.full(n, values[name], dtype=dtype) for name, dtype in META_COLUMNS.items()}


def ancillary_names(frame: Mapping[str, np.ndarray]) -> list[str]:
    """The ancillary columns of a photon frame (those that are not SlideRule's own)."""
    own = {*PHOTON_COLUMNS, *META_COLUMNS, YAPC_COLUMN[0], ATL08_COLUMN[0]}
    return [name for name in frame if name not in own]


def empty_frame(parms: Parms) -> dict[str, np.ndarray]:
    """The zero-row frame of a request (a granule without data): its columns and dtypes.

    Ancillary columns, whose dataset type is not known without data, are float64.
    """
    photons = not parms.fit and parms.phoreal is None
    columns = dict(FIT_COLUMNS if parms.fit else PHOTON_COLUMNS if photons else PHOREAL_COLUMNS)
    if photons and parms.yapc is not None:
        columns[YAPC_COLUMN[0]] = YAPC_COLUMN[1]
    if photons and (parms.atl08_class is not None or parms.atl08_fields):
        columns[ATL08_COLUMN[0]] = ATL08_COLUMN[1]
    for field in requested_fields(parms):
        columns.setdefault(column_name(field.name), "<f8")
    columns.update(META_COLUMNS)
    return {name: np.zeros(0, dtype=dtype) for name, dtype in columns.items()}


def _extent_mean(values: np.ndarray, count: np.ndarray) -> np.ndarray:
    """SlideRule's ancillary value of an extent: the sum of its photons' values below FLT_MAX
    (fills and NaN count as 0), in order, over the number of photons."""
    v = values.astype(np.float64)
    v = np.where(v < float(np.finfo(np.float32).max), v, 0.0)
    extent = np.repeat(np.arange(len(count)), count)
    with np.errstate(all="ignore"):
        return np.bincount(extent, weights=v, minlength=len(count)) / count


# ---------------------------------------------------------------------- fit
@dataclass
class Bounds:
    """SurfaceFitter's extents over a run of photons (see :func:`extent_bounds`).

    Attributes
    ----------
    start, i0, i1 : ndarray of float64, int64, int64
        Start distance, first and last photon (inclusive) of every decided non-empty extent.
    resume : float
        The start distance the walk goes on from (the first undecided extent's).
    keep : int
        The first photon a later extent can hold (photons before it are done with).
    """

    start: np.ndarray
    i0: np.ndarray
    i1: np.ndarray
    resume: float
    keep: int


def extent_bounds(x: np.ndarray, length: float, step: float, start: float | None = None,
                  final: bool = True) -> Bounds:
    """SurfaceFitter's extents over photons at along-track positions ``x`` (frame order).

    Start distances are ``start`` (default ``x[0]``), then ``res`` further each time, summed one step
    at a time (as SlideRule does); an extent's first photon is the first at or past its start
    (SlideRule's forward-only scan finds the same one), its last the one before the first photon at
    least ``length`` past the start; extents whose first photon is not within ``length`` of the
    start are skipped.

    The walk is resumable: without ``final`` more photons may follow ``x``, so only the extents
    they cannot change are decided (those with a photon at least ``length`` past their start);
    the walk goes on from ``Bounds.resume`` over the photons from ``Bounds.keep`` on, followed by
    the next ones, and gives the same extents as one walk over all photons.
    """
    n = len(x)
    none = np.zeros(0, np.int64)
    if n == 0:
        return Bounds(np.zeros(0), none, none, np.nan if start is None else start, 0)
    x = np.asarray(x, dtype=np.float64)
    reach = np.maximum.accumulate(x)   # first j with x[j] >= s == first j with reach[j] >= s
    current = float(x[0]) if start is None or np.isnan(start) else float(start)
    starts = []
    while current <= reach[-1]:
        block = np.full(_BLOCK, float(step))
        block[0] = current
        s = np.cumsum(block)          # sequential: the same roundings as SlideRule's +=
        starts.append(s[s <= reach[-1]])
        current = float(s[-1] + step) if s[-1] <= reach[-1] else float(s[np.argmax(s > reach[-1])])
    s = np.concatenate(starts) if starts else np.zeros(0)
    resume = current
    if not final:   # an extent without a photon ``length`` past its start may gain photons
        open_ = np.flatnonzero(reach[-1] - s < length)
        if open_.size:
            resume, s = float(s[open_[0]]), s[:open_[0]]
    i0 = np.searchsorted(reach, s, side="left")
    used = (x[i0] - s) < length
    s, i0 = s[used], i0[used]
    keep = int(np.searchsorted(reach, resume, side="left"))
    return Bounds(s, i0, _extent_ends(reach, s, i0, length), resume, keep)


def _extent_ends(reach: np.ndarray, start: np.ndarray, i0: np.ndarray, length: float) -> np.ndarray:
    """Last photon of each extent: before the first ``j > i0`` with ``x[j] - start >= length``.

    The test is monotone in x, so bisection over the running maximum finds that ``j``.
    """
    n = len(reach)
    lo, hi = i0.copy(), np.full(len(i0), n, dtype=np.int64)
    while True:
        open_ = hi - lo > 1
        if not open_.any():
            return hi - 1
        mid = (lo + hi) // 2
        past = (reach[np.minimum(mid, n - 1)] - start) >= length
        hi = np.where(open_ & past, mid, hi)
        lo = np.where(open_ & ~past, mid, lo)


class SurfaceFitter:
    """SlideRule's ``fit`` stage over one beam's photon frame, fed a chunk of the frame at a time.

    Parameters
    ----------
    parms : Parms
        ``len``, ``res``, ``cnt``, ``ats``, ``pass_invalid``, ``maxi``, ``H_min_win``, ``sigma_r_max``
        (``fit.*`` and the top-level keys are the same settings).
    batch_entries : int
        Photon entries (photons x extents holding them) fitted at once (at least one extent).

    Notes
    -----
    It holds the frame rows from the first undecided extent's first photon on: a chunk and at most
    one extent's photons. Fed the chunks of a frame in order (the last with ``final``), it gives
    the rows of :func:`surface_fit` over the whole frame, in order.
    """

    def __init__(self, parms: Parms, batch_entries: int = 800_000):
        self.parms, self.batch_entries = parms, batch_entries
        self.start: float | None = None
        self.rest: dict[str, np.ndarray] | None = None

    def feed(self, frame: Mapping[str, np.ndarray], final: bool = False) -> dict[str, np.ndarray]:
        """The rows of the extents the photons so far decide (:data:`FIT_COLUMNS`, the frame's
        ancillary columns as extent means, :data:`META_COLUMNS`)."""
        rows = frame if self.rest is None else {k: np.concatenate((self.rest[k], frame[k])) for k in frame}
        bounds = extent_bounds(rows["x_atc"], float(self.parms.len), float(self.parms.res), self.start, final)
        count = bounds.i1 - bounds.i0 + 1
        batch = np.cumsum(count, dtype=np.int64) // self.batch_entries
        cuts = [0, *(np.flatnonzero(np.diff(batch)) + 1).tolist(), len(count)]
        parts = [_fit_extents(rows, bounds.start[a:b], bounds.i0[a:b], bounds.i1[a:b], self.parms)
                 for a, b in itertools.pairwise(cuts)]
        self.start = bounds.resume
        self.rest = {k: v[bounds.keep:] for k, v in rows.items()}
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def surface_fit(frame: Mapping[str, np.ndarray], parms: Parms) -> dict[str, np.ndarray]:
    """SlideRule's ``fit`` stage over one beam's whole photon frame.

    Parameters
    ----------
    frame : mapping of str to ndarray
        :func:`photon_frame` of one beam (its rows in frame order).
    parms : Parms
        As for :class:`SurfaceFitter`.

    Returns
    -------
    dict of str to ndarray
        :data:`FIT_COLUMNS`, the frame's ancillary columns (per extent: the mean of its photons'
        values, float64, as SlideRule's default reduction), then :data:`META_COLUMNS`, one row per
        reported extent.
    """
    return SurfaceFitter(parms).feed(frame, final=True)


def _fit_extents(frame: Mapping[str, np.ndarray], start: np.ndarray, i0: np.ndarray, i1: np.ndarray,
                 parms: Parms) -> dict[str, np.ndarray]:
    """The rows of the given extents of a frame (see :func:`surface_fit`)."""
    x = frame["x_atc"]
    length = float(parms.len)
    count = i1 - i0 + 1
    early = np.where(count < parms.cnt, 2, 0) | np.where(x[i1] - x[i0] < float(parms.ats), 1, 0)
    todo = (early == 0) | parms.pass_invalid
    start, i0, count, early = start[todo], i0[todo], count[todo], early[todo].astype(np.uint16)
    offsets = np.concatenate(([0], np.cumsum(count)))
    photon = np.repeat(i0 - offsets[:-1], count) + np.arange(offsets[-1])
    centre = start + length / 2.0
    settings = FitSettings(maxi=parms.maxi, H_min_win=parms.H_min_win, sigma_r_max=parms.sigma_r_max,
                           cnt=parms.cnt, ats=parms.ats)
    result = fit_extents(offsets, x[photon] - np.repeat(centre, count), frame["height"][photon],
                         length, frame["spacecraft_velocity"][i0],
                         frame["background_rate"][i0].astype(np.float64), settings,
                         latitude=frame["latitude"][photon], longitude=frame["longitude"][photon],
                         time_ns=frame["time_ns"][photon], y_atc=frame["y_atc"][photon], double=True)
    rows = np.flatnonzero(result["fitted"] & ((result["pflags"] == 0) | parms.pass_invalid))
    out = {
        "time_ns": result["time_ns"][rows], "latitude": result["latitude"][rows],
        "longitude": result["longitude"][rows], "segment_id_beg": frame["segment_id"][i0[rows]],
        "x_atc": centre[rows], "y_atc": result["y_atc"][rows], "photon_start": frame["ph_index"][i0[rows]],
        "pflags": result["pflags"][rows] | early[rows], "h_mean": result["h_mean"][rows],
        "dh_fit_dx": result["dh_fit_dx"][rows], "w_surface_window_final": result["w_surface_window_final"][rows],
        "n_fit_photons": result["n_fit_photons"][rows], "rms_misfit": result["rms_misfit"][rows],
        "h_sigma": result["h_sigma"][rows],
    }
    out = {name: np.ascontiguousarray(out[name], dtype=dtype) for name, dtype in FIT_COLUMNS.items()}
    for name in ancillary_names(frame):
        out[name] = _extent_mean(frame[name][photon], count)[rows]
    for name, dtype in META_COLUMNS.items():
        out[name] = np.full(len(rows), frame[name][0] if len(frame[name]) else 0, dtype=dtype)
    return out
