"""Ancillary values in the result tables: per photon (atl03s) and per extent (ATL06-SR).

Columns are keyed ``"<anc_type>:<field_index>:<name>"`` (:func:`column_key`) so two families may
ask for the same dataset name; :func:`parse_key` gives the parts back.

Per extent (docs/decisions.md, "Ancillary fields"):

* a floating-point field, and any ``name%`` ATL08 field, is the least-squares line through the
  values of the extent's final photon set, with the final fit's weights, read at the extent centre
  (what SlideRule intends for latitude, longitude, time and its ancillary fields; DOUBLE). Photons
  without a value (a fill value: non-finite, or the type's maximum as ICESat-2 products write it; an
  ATL08 field of a photon without a land segment) are left out: the line is then fitted through
  the final photons that have one (NaN when none does; their mean when they share one x);
* an integer field (flags, classes, counts) is the most frequent value among the final photons that
  have one (ties: the smallest), as SlideRule's atl08 "nearest neighbour" estimate (INT64); with
  none, the all-0xFF marker of the dataset's type.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..granules.ancillary import AncField, invalid_value, requested_fields
from ..request.params import Parms


def column_key(f: AncField) -> str:
    """Result-table key of a field: ``"anc_type:field_index:name"``."""
    return f"{f.anc_type}:{f.index}:{f.name}"


def empty_columns(parms: Parms) -> dict[str, np.ndarray]:
    """Zero-length columns of every requested field (a granule without data)."""
    return {column_key(f): np.zeros(0) for f in requested_fields(parms)}


def parse_key(key: str) -> tuple[int, int, str]:
    """``(anc_type, field_index, name)`` of a :func:`column_key`."""
    anc_type, index, name = key.split(":", 2)
    return int(anc_type), int(index), name


def fitted(f: AncField, values: np.ndarray) -> bool:
    """Whether the field is fitted (float or ``%``) rather than reduced to its most frequent value."""
    return values.dtype.kind == "f" or f.interpolate


def as_float(values: np.ndarray) -> np.ndarray:
    """float64 copy with fill values (non-finite, or the type's maximum magnitude) as NaN."""
    out = values.astype(np.float64)
    if values.dtype.kind == "f":
        out[~np.isfinite(out) | (np.abs(out) >= float(np.finfo(values.dtype).max))] = np.nan
    return out


def fit_inputs(values: Mapping[AncField, np.ndarray], photon: np.ndarray) -> dict[str, np.ndarray]:
    """Per-photon float64 inputs of the fitted fields, for the fit's ``extras`` (keys: column keys)."""
    return {column_key(f): as_float(v[photon]) for f, v in values.items() if fitted(f, v)}


def photon_columns(values: Mapping[AncField, np.ndarray], photon: np.ndarray) -> dict[str, np.ndarray]:
    """Per-photon columns (dataset dtype) for the photons ``photon`` of a beam (atl03s)."""
    return {column_key(f): np.ascontiguousarray(v[photon]) for f, v in values.items()}


def extent_columns(values: Mapping[AncField, np.ndarray], photon: np.ndarray, offsets: np.ndarray,
                   x: np.ndarray, fit: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Per-extent columns of the elevation rows ``rows`` (indices of fitted extents).

    Parameters
    ----------
    values : mapping of AncField to ndarray
        Per-photon values of the beam (:func:`icesat2sr.granules.ancillary.photon_values`).
    photon : ndarray of int64
        The extents' photons (CSR by ``offsets``), indices into ``values``.
    offsets : ndarray of int64, shape (E+1,)
    x : ndarray of float32, shape (N,)
        Along-track distance of the photons from their extent centre (the fit's ``x``).
    fit : mapping
        Output of :func:`icesat2sr.science.fit.fit_extents` given :func:`fit_inputs` as extras.
    rows : ndarray of int64
        Extents that became elevation rows.
    """
    out = {}
    for f, v in values.items():
        key = column_key(f)
        if fitted(f, v):
            column = np.asarray(fit[key], dtype=np.float64)[rows]
            gaps = np.flatnonzero(np.isnan(column))   # some final photon had no value: fit those that do
            if gaps.size:
                column[gaps] = _partial_line(as_float(v[photon]), x, offsets, fit["in_fit"], rows[gaps])
            out[key] = column
        else:
            valid = v != invalid_value(v.dtype) if f.key == "atl08_fields" else None
            out[key] = most_frequent(v[photon], offsets, fit["in_fit"], valid[photon] if valid is not None else None,
                                     invalid_value(v.dtype))[rows]
    return out


def most_frequent(values: np.ndarray, offsets: np.ndarray, member: np.ndarray, valid: np.ndarray | None,
                  missing) -> np.ndarray:
    """Per extent: the most frequent of its member values (ties: the smallest), int64.

    Parameters
    ----------
    values : ndarray of int, shape (N,)
        Values of the extents' photons, CSR by ``offsets``.
    offsets : ndarray of int64, shape (E+1,)
    member : ndarray of bool, shape (N,)
        Photons taking part (the final fit set).
    valid : ndarray of bool, shape (N,), optional
        Photons that have a value at all.
    missing : int
        Result for an extent with no member having a value.
    """
    n_ext = len(offsets) - 1
    out = np.full(n_ext, int(missing), dtype=np.int64)
    ext = np.repeat(np.arange(n_ext), np.diff(offsets))
    keep = member if valid is None else member & valid
    e, v = ext[keep], values[keep].astype(np.int64)
    if e.size == 0:
        return out
    order = np.lexsort((v, e))
    e, v = e[order], v[order]
    start = np.flatnonzero(np.r_[True, (e[1:] != e[:-1]) | (v[1:] != v[:-1])])
    count = np.diff(np.r_[start, e.size])
    re, rv = e[start], v[start]
    best = np.lexsort((rv, -count, re))           # per extent: highest count, then smallest value
    first = best[np.r_[True, re[best][1:] != re[best][:-1]]]
    out[re[first]] = rv[first]
    return out


def _partial_line(values: np.ndarray, x: np.ndarray, offsets: np.ndarray, member: np.ndarray,
                  extents: np.ndarray) -> np.ndarray:
    """Centre value of the least-squares line through each extent's members that have a value."""
    n_ext = len(offsets) - 1
    ext = np.repeat(np.arange(n_ext), np.diff(offsets))
    keep = member & ~np.isnan(values) & np.isin(ext, extents)
    e, v, xs = ext[keep], values[keep], x[keep].astype(np.float64)
    n = np.bincount(e, minlength=n_ext).astype(np.float64)
    sx, sxx = np.bincount(e, xs, n_ext), np.bincount(e, xs * xs, n_ext)
    sv, sxv = np.bincount(e, v, n_ext), np.bincount(e, xs * v, n_ext)
    det = n * sxx - sx * sx
    with np.errstate(all="ignore"):
        line = (sxx * sv - sx * sxv) / det
        mean = sv / n
    out = np.where(det > 0, line, mean)
    return out[extents]
