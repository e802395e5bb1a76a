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

Per PhoREAL extent (:func:`vegetation_columns`), SlideRule's ``Atl08Dispatch`` rules over all the
extent's photons: the most frequent value (ties: the smallest), or with ``name%`` the mean; float
values at or above float32's maximum (fills) and NaN do not count (none left: 0.0); integer values
all count, their mean truncated as C's integer division.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..granules.ancillary import AncField, invalid_value, requested_fields
from ..request.params import Parms
from .fit import slot_sums

_FLT_MAX = float(np.finfo(np.float32).max)


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
        CSR boundaries of the extents in ``photon``.
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


def vegetation_columns(values: Mapping[AncField, np.ndarray], photon: np.ndarray,
                       offsets: np.ndarray) -> dict[str, np.ndarray]:
    """Per-extent columns of PhoREAL rows, as SlideRule's ``Atl08Dispatch`` estimates them.

    Parameters
    ----------
    values : mapping of AncField to ndarray
        Per-photon values of the beam (:func:`icesat2sr.granules.ancillary.photon_values`).
    photon : ndarray of int64
        The photons of the extents (CSR by ``offsets``), indices into ``values``.
    offsets : ndarray of int64, shape (E+1,)
        CSR boundaries of the extents in ``photon``.

    Returns
    -------
    dict of str to ndarray
        One column per field (keys: :func:`column_key`): float64 for float datasets, int64 for
        integer ones. ``name%`` (ATL08 fields) is the mean, any other the most frequent value.
    """
    out = {}
    everyone = np.ones(len(photon), dtype=bool)
    for f, v in values.items():
        x = v[photon]
        if x.dtype.kind == "f":
            x = x.astype(np.float64)
            counted = x < _FLT_MAX                     # NaN and fill values do not count
            out[column_key(f)] = _mean(x, offsets, counted) if f.interpolate else \
                most_frequent(x, offsets, counted, None, 0.0)
        else:
            out[column_key(f)] = _integer_mean(x, offsets) if f.interpolate else \
                most_frequent(x, offsets, everyone, None, 0)
    return out


def _mean(values: np.ndarray, offsets: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """Per extent: the mean of its counted values, added one after the other (0.0 when none)."""
    ext = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))[counted]
    n = np.bincount(ext, minlength=len(offsets) - 1)
    total = sequential_sums(values[counted], np.concatenate(([0], np.cumsum(n))).astype(np.int64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), 0.0)


def _integer_mean(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per extent: the int64 sum of its values divided by their count, truncated toward zero (C)."""
    running = np.concatenate(([0], np.cumsum(values, dtype=np.int64)))
    total, n = running[offsets[1:]] - running[offsets[:-1]], np.maximum(np.diff(offsets), 1)
    return np.where(total >= 0, total // n, -(-total // n))


def sequential_sums(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per CSR segment, its float64 values added one after the other from 0.0, as a C loop adds them
    (numpy's own sums are pairwise): segments of similar length side by side, slot after slot."""
    counts = np.diff(offsets)
    out = np.zeros(len(counts))
    order = np.argsort(counts, kind="stable")
    octave = np.floor(np.log2(np.maximum(counts[order], 1))).astype(np.int64)
    for group in np.split(order, np.flatnonzero(np.diff(octave)) + 1):
        width = int(counts[group].max(initial=0))
        if width == 0:
            continue
        slot = np.arange(width)[:, None]
        inside = slot < counts[group][None, :]
        at = np.where(inside, offsets[group][None, :] + slot, 0)
        with np.errstate(over="ignore", invalid="ignore"):    # inf and NaN, as a C loop gives them
            out[group] = slot_sums(np.where(inside, values[at], 0.0))
    return out


def most_frequent(values: np.ndarray, offsets: np.ndarray, member: np.ndarray, valid: np.ndarray | None,
                  missing) -> np.ndarray:
    """Per extent: the most frequent of its member values (ties: the smallest), int64 (float64 for
    float values; -0.0 and 0.0 count as one value, the first one met).

    Parameters
    ----------
    values : ndarray of int, shape (N,)
        Values of the extents' photons, CSR by ``offsets``.
    offsets : ndarray of int64, shape (E+1,)
        CSR boundaries of the extents in ``values``.
    member : ndarray of bool, shape (N,)
        Photons taking part (the final fit set).
    valid : ndarray of bool, shape (N,), optional
        Photons that have a value at all.
    missing : int or float
        Result for an extent with no member having a value.
    """
    n_ext = len(offsets) - 1
    dtype = np.float64 if values.dtype.kind == "f" else np.int64
    out = np.full(n_ext, missing, dtype=dtype)
    ext = np.repeat(np.arange(n_ext), np.diff(offsets))
    keep = member if valid is None else member & valid
    e, v = ext[keep], values[keep].astype(dtype)
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
