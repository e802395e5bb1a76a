"""Per-photon selection (SPEC §2, §4.2-4.4, §4.7): confidence, quality, ATL08 class, YAPC score.

Everything works on whole region-trimmed beams at once. The order of the tests matters only for
which photons are *validated*: as in SlideRule's ``subsettingThread``, a photon rejected by an
earlier test is never checked by a later one, so e.g. an out-of-range ``quality_ph`` on a photon
whose confidence is not wanted does not fail the granule.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..request.errors import ResourceError
from ..request.params import Parms

CNF_MIN, CNF_MAX = -2, 4
NUM_PHOTON_QUALITY = 26      # quality_ph 0..25 (release >= 006 values included)
NUM_ATL08_CLASSES = 5        # 0 noise .. 3 top of canopy, 4 unclassified
ATL08_UNCLASSIFIED = 4
NUM_SURFACE_TYPES = 5

_I32_MIN, _I32_MAX = -(2 ** 31), 2 ** 31 - 1


# ---------------------------------------------------------------------- confidence
def photon_confidence(signal_conf_ph: np.ndarray, srt: int, granule: str = "") -> np.ndarray:
    """Signal confidence of every photon for the request's surface type.

    Parameters
    ----------
    signal_conf_ph : ndarray of int8, shape (N,), (N, 1) or (N, 5)
        ``heights/signal_conf_ph``: the ``srt`` column already sliced out, or all five columns
        (required when ``srt == -1``).
    srt : int
        Surface type -1..4; -1 ("dynamic") takes the maximum over the five columns.
    granule : str
        Granule name for error messages.

    Returns
    -------
    ndarray of int8, shape (N,)

    Raises
    ------
    ResourceError
        If a confidence is outside -2..4 (SlideRule: "invalid atl03 signal confidence").
    ValueError
        If the shape does not fit ``srt``.
    """
    conf = np.asarray(signal_conf_ph)
    if not -1 <= srt < NUM_SURFACE_TYPES:
        raise ValueError(f"srt must be in -1..4, got {srt}")
    if conf.ndim == 2 and conf.shape[1] == NUM_SURFACE_TYPES:
        conf = conf.max(axis=1) if srt == -1 else conf[:, srt]
    elif srt == -1:
        raise ValueError(f"srt -1 needs all {NUM_SURFACE_TYPES} signal_conf_ph columns, "
                         f"got shape {conf.shape}")
    elif conf.ndim == 2 and conf.shape[1] == 1:
        conf = conf[:, 0]
    elif conf.ndim != 1:
        raise ValueError(f"signal_conf_ph must be (N,), (N, 1) or (N, 5), got shape {conf.shape}")
    conf = conf.astype(np.int8, copy=False)
    _check_range(conf, CNF_MIN, CNF_MAX, granule, "invalid atl03 signal confidence")
    return conf


# ---------------------------------------------------------------------- ATL08 join
def atl08_classes(segment_id: np.ndarray, segment_ph_cnt: np.ndarray, n_photons: int,
                  ph_segment_id: np.ndarray, classed_pc_indx: np.ndarray,
                  classed_pc_flag: np.ndarray, granule: str = "") -> np.ndarray:
    """ATL08 class of every ATL03 photon: SlideRule's two-pointer merge (SPEC §2), vectorised.

    Every ATL03 photon gets the key (segment id, 1-based index within its segment); an ATL08
    row (``ph_segment_id``, ``classed_pc_indx``) with the same key gives its class, photons
    without one are 4 (unclassified). The result equals SlideRule's ``Atl08Class::classify``
    for any ATL03 segment order and for ATL08 rows sorted by key, including rows for segments
    outside the trimmed range (skipped) and duplicate keys (each ATL03 photon consumes one
    row, the first in file order; a later duplicate can only be consumed by a later ATL03
    photon with the same key, e.g. when a segment id repeats).

    ATL08 rows *not* sorted by key are not expected (ATL08 is written sorted). They are
    stably sorted first, so the join is by key with the first row in file order winning;
    SlideRule's merge would instead silently miss rows that appear after a larger key.

    Parameters
    ----------
    segment_id, segment_ph_cnt : ndarray of int32, shape (M,)
        Region-trimmed ATL03 ``geolocation/segment_id`` and ``segment_ph_cnt``.
    n_photons : int
        Photons in the region-trimmed beam. Photons past ``sum(segment_ph_cnt)`` are 4.
    ph_segment_id, classed_pc_indx : ndarray of int32, shape (K,)
        ATL08 ``signal_photons/ph_segment_id`` and ``classed_pc_indx`` (1-based in segment).
    classed_pc_flag : ndarray of int8, shape (K,)
        ATL08 ``signal_photons/classed_pc_flag``.
    granule : str
        Granule name for error messages.

    Returns
    -------
    ndarray of uint8, shape (n_photons,)

    Raises
    ------
    ResourceError
        If a negative segment count is found, or a flag given to a photon is outside 0..4
        (SlideRule: "invalid atl08 classification"). Flags of unmatched rows are not checked.
    """
    counts = _segment_counts(segment_ph_cnt, granule)
    seg_of_ph = np.repeat(np.asarray(segment_id, dtype=np.int64), counts)[:n_photons]
    n_cov = len(seg_of_ph)
    starts = np.repeat(np.cumsum(counts) - counts, counts)[:n_cov]
    index_in_seg = np.arange(1, n_cov + 1, dtype=np.int64) - starts
    q = _key(seg_of_ph, index_in_seg)

    seg08 = np.asarray(ph_segment_id, dtype=np.int64)
    idx08 = np.asarray(classed_pc_indx, dtype=np.int64)
    flags = np.asarray(classed_pc_flag)
    if not len(seg08) == len(idx08) == len(flags):
        raise ResourceError(granule, "ATL08 signal_photons arrays differ in length")
    key08 = _key(seg08, idx08)
    if np.any(key08[1:] < key08[:-1]):
        order = np.argsort(key08, kind="stable")
        key08, flags = key08[order], flags[order]

    row = _merge_rows(q, key08)
    out = np.full(n_photons, ATL08_UNCLASSIFIED, dtype=np.uint8)
    matched = row >= 0
    assigned = flags[row[matched]]
    _check_range(assigned, 0, NUM_ATL08_CLASSES - 1, granule, "invalid atl08 classification")
    out[:n_cov][matched] = assigned
    return out


def _segment_counts(segment_ph_cnt: np.ndarray, granule: str) -> np.ndarray:
    counts = np.asarray(segment_ph_cnt, dtype=np.int64)
    if np.any(counts < 0):
        raise ResourceError(granule, f"negative segment_ph_cnt {int(counts.min())}")
    return counts


def _key(seg: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Order-preserving int64 key of (segment id, index) pairs of int32 values."""
    for a in (seg, idx):
        if a.size and (a.min() < _I32_MIN or a.max() > _I32_MAX):
            raise ValueError("segment ids and photon indices must fit in int32")
    return (seg << 32) + (idx - _I32_MIN)


def _merge_rows(q: np.ndarray, key08: np.ndarray) -> np.ndarray:
    """ATL08 row matched by each ATL03 key in SlideRule's merge, or -1 (``key08`` sorted).

    The merge's pointer before photon i is ``max(pointer after i-1, lower_bound(q_i))`` and a
    photon matches iff that pointer is inside the block of rows equal to ``q_i``. While the
    ATL03 keys increase strictly the pointer is simply ``lower_bound(q_i)``; only after a key
    that does not increase (a segment id that repeats or goes back) can the carried pointer be
    ahead, and that is resolved run by run with binary searches.
    """
    lo = np.searchsorted(key08, q, side="left")
    hi = np.searchsorted(key08, q, side="right")
    row = np.where(lo < hi, lo, -1)
    breaks = np.flatnonzero(q[1:] <= q[:-1]) + 1
    if breaks.size == 0:
        return row
    bounds = np.concatenate(([0], breaks, [len(q)]))
    pointer = 0
    for s, e in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        i = s
        while i < e:
            # photons whose key block ends at or before the pointer cannot match
            j = i + int(np.searchsorted(hi[i:e], pointer, side="right"))
            row[i:j] = -1
            if j >= e:
                break
            if lo[j] >= pointer:  # the pointer caught up: plain merge to the end of the run
                pointer = int(lo[e - 1]) + int(lo[e - 1] < hi[e - 1])
                break
            row[j] = pointer      # a duplicate of q_j is still ahead of the pointer
            pointer += 1
            i = j + 1
    return row


# ---------------------------------------------------------------------- the mask
def photon_mask(conf: np.ndarray, quality_ph: np.ndarray, parms: Parms,
                atl08_class: np.ndarray | None = None, yapc_score: np.ndarray | None = None,
                granule: str = "") -> np.ndarray:
    """Photons passing every per-photon test of SPEC §4.7, in SlideRule's order.

    cnf membership -> quality_ph membership -> ATL08 class membership (when
    ``parms.atl08_class`` is set) -> ``yapc_score >= parms.yapc.score`` (when ``parms.yapc``
    is set). Each value is validated only on photons that passed the earlier tests.

    Parameters
    ----------
    conf : ndarray of int8, shape (N,)
        Output of :func:`photon_confidence`.
    quality_ph : ndarray of int8, shape (N,)
        ``heights/quality_ph``.
    parms : Parms
        Uses ``cnf``, ``quality_ph``, ``atl08_class`` and ``yapc``.
    atl08_class : ndarray of uint8, shape (N,), optional
        Output of :func:`atl08_classes`; required when ``parms.atl08_class`` is set.
    yapc_score : ndarray of uint8 or uint16, shape (N,), optional
        YAPC scores (:func:`icesat2sr.science.yapc.yapc_scores`); required when ``parms.yapc`` is set.
    granule : str
        Granule name for error messages.

    Returns
    -------
    ndarray of bool, shape (N,)

    Raises
    ------
    ResourceError
        For a confidence outside -2..4, a quality outside 0..25 or a class outside 0..4.
    ValueError
        If a stage is on but its array is missing, or the arrays differ in length.
    """
    conf = np.asarray(conf)
    n = len(conf)
    _check_range(conf, CNF_MIN, CNF_MAX, granule, "invalid atl03 signal confidence")
    keep = _member(conf, parms.cnf, CNF_MIN, CNF_MAX)

    quality = _stage_array(quality_ph, n, "quality_ph")
    _check_range(quality[keep], 0, NUM_PHOTON_QUALITY - 1, granule, "invalid atl03 photon quality")
    keep &= _member(quality, parms.quality_ph, 0, NUM_PHOTON_QUALITY - 1)

    if parms.atl08_class is not None:
        classes = _stage_array(atl08_class, n, "atl08_class")
        _check_range(classes[keep], 0, NUM_ATL08_CLASSES - 1, granule, "invalid atl08 classification")
        keep &= _member(classes, parms.atl08_class, 0, NUM_ATL08_CLASSES - 1)

    if parms.yapc is not None:
        scores = _stage_array(yapc_score, n, "yapc_score")
        keep &= scores >= parms.yapc.score
    return keep


def _stage_array(values: np.ndarray | None, n: int, name: str) -> np.ndarray:
    if values is None:
        raise ValueError(f"{name} is required by the request's parameters")
    values = np.asarray(values)
    if values.shape != (n,):
        raise ValueError(f"{name} has shape {values.shape}, expected ({n},)")
    return values


def _member(values: np.ndarray, allowed: Sequence[int], lo: int, hi: int) -> np.ndarray:
    """``values in allowed`` (all within lo..hi) through a lookup table."""
    table = np.zeros(hi - lo + 1, dtype=bool)
    table[np.asarray(allowed, dtype=np.int64) - lo] = True
    # Out-of-range values belong to photons already rejected (never validated): clip them.
    return table[np.clip(values.astype(np.int64) - lo, 0, hi - lo)]


def _check_range(values: np.ndarray, lo: int, hi: int, granule: str, message: str) -> None:
    if values.size == 0:
        return
    bad = (values < lo) | (values > hi)
    if np.any(bad):
        raise ResourceError(granule, f"{message}: {int(values[np.argmax(bad)])}")


__all__ = ["atl08_classes", "photon_confidence", "photon_mask"]
