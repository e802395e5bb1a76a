"""SlideRule's along-track extents (SPEC §5), vectorised.

SlideRule walks photons one by one with a small state machine. Its decisions reduce to:

* the start distance of extent ``k`` (``start_k``) depends on segment distances only;
* extent ``k`` scans photons from ``first_k`` (the step photon of extent ``k-1``) up to the
  later of the first photon at ``x >= res`` (the next extent's first photon) and the first at
  ``x >= len``; its photons are the scanned ones with ``x < len`` that pass selection.

"First photon at or past a threshold" is a ``searchsorted`` on the running maximum of the
photons' along-track coordinate. Each decision is then re-checked with SlideRule's exact
float expression ``(segment_dist_x[s] - start) + dist_ph_along[p]``; if any check fails
(rounding at a boundary, photons far out of order), the beam is walked again one photon at a
time by :func:`_walk_scalar`, which follows SlideRule's loop literally.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np

from ..granules.beam import Beam
from ..request.params import Parms

SEGMENT_LENGTH = 20.0


@dataclass
class Extents:
    """Emitted extents of one beam, with their photons in CSR layout.

    Photons of extent ``e`` are ``photon[offsets[e]:offsets[e+1]]`` (indices into the beam's
    photon arrays, file order) with centre-relative along-track ``x_rel`` (f4).
    """

    counter: np.ndarray          # u4, extent counter (counts skipped extents too)
    segment: np.ndarray          # i8, index of the extent's first segment in the beam arrays
    segment_id: np.ndarray       # u4, SlideRule's rounded centre segment id
    distance: np.ndarray         # f8, along-track distance of the extent centre (m)
    valid: np.ndarray            # bool, passed cnt/ats
    background_rate: np.ndarray  # f8, photons/s
    velocity: np.ndarray         # f4, spacecraft speed (m/s)
    solar_elevation: np.ndarray  # f4
    offsets: np.ndarray          # i8 (E+1,)
    photon: np.ndarray           # i8 (P,)
    x_rel: np.ndarray            # f4 (P,)
    length: float                # extent length in metres
    walked: int = 0              # extents walked, emitted or not (the next counter value)

    def __len__(self) -> int:
        return len(self.counter)

    @property
    def count(self) -> np.ndarray:
        """Number of selected photons per extent."""
        return np.diff(self.offsets)


@dataclass
class _Walk:
    """Per-extent outcome of the photon walk, for every extent (emitted or not)."""

    start: np.ndarray   # f8 start distance
    first: np.ndarray   # i8 first scanned photon
    last: np.ndarray    # i8 last scanned photon (inclusive)
    stop: np.ndarray    # i8 first photon at or past the extent's end (members before it)
    segment: np.ndarray  # i8 extent segment


def make_extents(beam: Beam, selected: np.ndarray, parms: Parms) -> Extents:
    """Cut a beam's photons into SlideRule extents.

    Parameters
    ----------
    beam : Beam
        Region-trimmed beam arrays.
    selected : ndarray of bool
        Photons passing selection (SPEC §4); rejected photons still advance the walk.
    parms : Parms
        ``len``, ``res``, ``dist_in_seg``, ``pass_invalid``, ``ats``, ``cnt``.

    Returns
    -------
    Extents
        The emitted extents (valid ones, or all when ``pass_invalid``), in walk order.

    Examples
    --------
    >>> ext = make_extents(beam, mask, Parms())          # doctest: +SKIP
    >>> ext.segment_id[:3], ext.count[:3]                 # doctest: +SKIP
    """
    runs = segment_runs(beam.segment_id)
    if len(runs) <= 1:
        return _extents_of_run(beam, selected, parms)
    parts, counter, first_photon = [], 0, 0
    for s0, s1 in runs:
        n_run = int(beam.segment_ph_cnt[s0:s1].sum())
        sub = _sub_beam(beam, s0, s1, first_photon, first_photon + n_run)
        part = _extents_of_run(sub, selected[first_photon:first_photon + n_run], parms)
        part.counter += np.uint32(counter)
        part.segment += s0
        part.photon += first_photon
        parts.append(part)
        counter += part.walked
        first_photon += n_run
    return _concat(parts)


def segment_runs(segment_id: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive segment ids ``[(s0, s1), ...]``.

    A full granule is one run. Subsetted granules can hold several runs far apart along track;
    SlideRule's start-distance correction assumes contiguous segments (it would step through the
    gap and then add it again), so each run is walked on its own, the counter running on.
    """
    breaks = np.flatnonzero(np.diff(segment_id.astype(np.int64)) != 1) + 1
    edges = np.concatenate(([0], breaks, [len(segment_id)]))
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]


def _extents_of_run(beam: Beam, selected: np.ndarray, parms: Parms) -> Extents:
    length = parms.extent_length_m
    n = len(beam.h_ph)
    if n == 0 or len(beam.segment_dist_x) == 0:
        return _empty(length)
    seg_of = beam.photon_segment()
    walk = _walk_in_segments(beam, seg_of, parms) if parms.dist_in_seg else None
    if walk is None:
        walk = _walk_vectorised(beam, seg_of, parms.res, length) or _walk_scalar(beam, seg_of, parms)
    return _assemble(beam, seg_of, selected, walk, parms, length)


_SEGMENT_FIELDS = ("segment_id", "segment_dist_x", "segment_ph_cnt", "segment_delta_time", "velocity_sc",
                   "solar_elevation")
_PHOTON_FIELDS = ("delta_time", "lat_ph", "lon_ph", "h_ph", "dist_ph_along", "dist_ph_across",
                  "signal_conf_ph", "quality_ph", "weight_ph", "atl08_class", "relief", "landcover", "snowcover")


def _sub_beam(beam: Beam, s0: int, s1: int, p0: int, p1: int) -> Beam:
    changes = {f: getattr(beam, f)[s0:s1] for f in _SEGMENT_FIELDS}
    changes.update({f: getattr(beam, f)[p0:p1] for f in _PHOTON_FIELDS if getattr(beam, f) is not None})
    return replace(beam, **changes)


def _concat(parts: list[Extents]) -> Extents:
    counts = np.concatenate([p.count for p in parts])
    merged = {f: np.concatenate([getattr(p, f) for p in parts])
              for f in ("counter", "segment", "segment_id", "distance", "valid", "background_rate", "velocity",
                        "solar_elevation", "photon", "x_rel")}
    return Extents(offsets=np.concatenate(([0], np.cumsum(counts))).astype(np.int64), length=parts[0].length,
                   walked=sum(p.walked for p in parts), **merged)


# ---------------------------------------------------------------------- walks
def _walk_vectorised(beam: Beam, seg_of: np.ndarray, res: float, length: float) -> _Walk | None:
    """The metre-based walk by thresholds on the running maximum; None if a check fails."""
    sdx, dpa = beam.segment_dist_x, beam.dist_ph_along
    n = len(dpa)
    along = sdx[seg_of] + dpa
    running_max = np.maximum.accumulate(along)
    estimate = int((running_max[-1] - sdx[0]) / res) + 3
    while True:
        start = start_distances(sdx, res, estimate)
        step = _first_at_or_past(sdx, dpa, seg_of, running_max, start, res)
        stop = _first_at_or_past(sdx, dpa, seg_of, running_max, start, length)
        if step is None or stop is None:
            return None
        ends = np.maximum(step, stop)
        final = np.flatnonzero(ends >= n - 1)
        if final.size:
            break
        estimate *= 2
    k_final = int(final[0])
    first = np.concatenate(([0], step[:k_final])).astype(np.int64)
    # the walk never goes back: each extent's thresholds must lie at or after its first photon
    if np.any(step[: k_final + 1] < first) or np.any(stop[: k_final + 1] < first):
        return None
    last = np.minimum(ends[: k_final + 1], n - 1)
    segment = np.concatenate(([0], seg_of[first[1:]])).astype(np.int64)
    return _Walk(start[: k_final + 1], first, last, stop[: k_final + 1], segment)


def start_distances(sdx: np.ndarray, res: float, count: int) -> np.ndarray:
    """Start distance of the first ``count`` extents (SlideRule's float64 recurrence).

    After each extent the start moves by ``res``; every segment boundary it passes adds the
    segment's length minus 20 m, so starts follow the segments' real lengths.
    """
    out = np.empty(count, dtype=np.float64)
    m = len(sdx)
    start = float(sdx[0])
    seg = 0
    sdx_list = sdx.tolist()
    for k in range(count):
        out[k] = start
        start += res
        while seg + 1 < m and start >= sdx_list[seg + 1]:
            start += sdx_list[seg + 1] - sdx_list[seg]
            start -= SEGMENT_LENGTH
            seg += 1
    return out


def _first_at_or_past(sdx, dpa, seg_of, running_max, start, threshold) -> np.ndarray | None:
    """For each start: first photon with exact ``x >= threshold`` (``len(dpa)`` when none)."""
    n = len(dpa)
    guess = np.searchsorted(running_max, start + threshold, side="left").astype(np.int64)

    def exact(p, k):
        return (sdx[seg_of[p]] - start[k]) + dpa[p].astype(np.float64) >= threshold

    ks = np.arange(len(start))
    # the photon found must qualify exactly, and the one before it must not
    inside = guess < n
    ok = np.ones(len(start), dtype=bool)
    ok[inside] = exact(guess[inside], ks[inside])
    before = guess > 0
    ok[before] &= ~exact(guess[before] - 1, ks[before])
    return guess if ok.all() else None


def _walk_in_segments(beam: Beam, seg_of: np.ndarray, parms: Parms) -> _Walk:
    """``dist_in_seg``: extents of ``len`` whole segments, stepping ``int(res)`` segments."""
    sdx = beam.segment_dist_x
    m, n = len(sdx), len(seg_of)
    step_segs = int(parms.res)
    stop_segs = math.ceil(parms.len)  # along-track segment difference d >= len <=> d >= ceil(len)
    first_photon = np.concatenate(([0], np.cumsum(beam.segment_ph_cnt, dtype=np.int64)))
    starts, firsts, lasts, stops, segments = [], [], [], [], []
    start, first, segment = float(sdx[0]), 0, 0
    while True:
        nxt = segment + step_segs
        step = int(first_photon[nxt]) if nxt < m else n
        stop = int(first_photon[segment + stop_segs]) if segment + stop_segs < m else n
        step, stop = max(step, first), max(stop, first)
        end = max(step, stop)
        starts.append(start)
        firsts.append(first)
        lasts.append(min(end, n - 1))
        stops.append(stop)
        segments.append(segment)
        if end >= n - 1:
            break
        if nxt < m:
            start = float(sdx[nxt])
        first, segment = step, int(seg_of[step])
    return _Walk(np.array(starts), *(np.array(v, dtype=np.int64) for v in (firsts, lasts, stops, segments)))


def _walk_scalar(beam: Beam, seg_of: np.ndarray, parms: Parms) -> _Walk:
    """SlideRule's metre-based photon loop, literally (exact fallback; slow)."""
    sdx = beam.segment_dist_x.tolist()
    dpa = beam.dist_ph_along.astype(np.float64).tolist()
    seg = seg_of.tolist()
    n, m = len(dpa), len(sdx)
    length, res = parms.extent_length_m, parms.res
    starts, firsts, lasts, stops, segments = [], [], [], [], []
    start, start_segment, first, segment = sdx[0], 0, 0, 0
    while True:
        p, step_at, stop_at = first, None, None
        while True:
            x = (sdx[seg[p]] - start) + dpa[p]
            if step_at is None and x >= res:
                step_at = p
            if stop_at is None and x >= length:
                stop_at = p
            if stop_at is not None and step_at is not None:
                break
            p += 1
            if p >= n:
                break
        starts.append(start)
        firsts.append(first)
        lasts.append(min(p, n - 1))
        stops.append(n if stop_at is None else stop_at)
        segments.append(segment)
        if p >= n - 1:
            break
        start += res
        while start_segment + 1 < m and start >= sdx[start_segment + 1]:
            start += sdx[start_segment + 1] - sdx[start_segment]
            start -= SEGMENT_LENGTH
            start_segment += 1
        first, segment = step_at, seg[step_at]
    return _Walk(np.array(starts), *(np.array(v, dtype=np.int64) for v in (firsts, lasts, stops, segments)))


# ---------------------------------------------------------------------- extents from a walk
def _assemble(beam: Beam, seg_of: np.ndarray, selected: np.ndarray, walk: _Walk, parms: Parms,
              length: float) -> Extents:
    """Members, validity and attributes of every extent; keep the emitted ones."""
    base = beam.segment_dist_x[seg_of]
    dpa = beam.dist_ph_along.astype(np.float64)
    sel = np.flatnonzero(selected)
    k_count = len(walk.first)
    # photons in [first, stop) are members by construction: ranges of the selected photons
    end = np.minimum(walk.stop, walk.last + 1)
    lo, hi = np.searchsorted(sel, walk.first), np.searchsorted(sel, end)
    owner, photon = _extra_members(base, dpa, sel, walk, length, parms.dist_in_seg)
    if owner.size == 0:
        counts = hi - lo
        head = sel[np.minimum(lo, max(len(sel) - 1, 0))] if len(sel) else lo
        tail = sel[np.maximum(hi - 1, 0)] if len(sel) else lo
    else:  # rare: photons past `stop` that still belong (len < res or photons out of order)
        main_owner = np.repeat(np.arange(k_count), hi - lo)
        main_photon = sel[_ranges(lo, hi)]
        order = np.lexsort((np.concatenate((main_photon, photon)), np.concatenate((main_owner, owner))))
        owner = np.concatenate((main_owner, owner))[order]
        photon = np.concatenate((main_photon, photon))[order]
        counts = np.bincount(owner, minlength=k_count)
        offsets = np.concatenate(([0], np.cumsum(counts)))
        head = photon[np.minimum(offsets[:-1], len(photon) - 1)]
        tail = photon[np.maximum(offsets[1:] - 1, 0)]
    k = np.arange(k_count)
    spread = _x_rel(base, dpa, walk.start, tail, k, length) - _x_rel(base, dpa, walk.start, head, k, length)
    valid = (counts >= parms.cnt) & ((counts <= 1) | (spread >= parms.ats))
    kept = np.flatnonzero(valid | parms.pass_invalid)
    if owner.size == 0:
        idx = _ranges(lo[kept], hi[kept])
        members, member_owner = sel[idx], np.repeat(kept, (hi - lo)[kept])
    else:
        emitted = np.isin(owner, kept)
        members, member_owner = photon[emitted], owner[emitted]
    seg_idx = walk.segment[kept]
    return Extents(
        counter=kept.astype(np.uint32),
        segment=seg_idx,
        segment_id=_segment_ids(beam, walk, kept, parms),
        distance=walk.start[kept] + length / 2.0,
        valid=valid[kept],
        background_rate=background_rates(beam, seg_idx),
        velocity=np.sqrt(np.sum(beam.velocity_sc[seg_idx].astype(np.float64) ** 2, axis=1)).astype(np.float32),
        solar_elevation=beam.solar_elevation[seg_idx],
        offsets=np.concatenate(([0], np.cumsum(counts[kept]))).astype(np.int64),
        photon=members,
        x_rel=_x_rel(base, dpa, walk.start, members, member_owner, length),
        length=length,
        walked=k_count,
    )


def _x_rel(base, dpa, start, photon, owner, length) -> np.ndarray:
    """SlideRule's photon x: ``float32(((segment_dist_x - start) + dist_ph_along) - len/2)``."""
    return (((base[photon] - start[owner]) + dpa[photon]) - length / 2.0).astype(np.float32)


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(lo[i], hi[i])`` for all i."""
    size = hi - lo
    total = int(size.sum())
    return np.arange(total, dtype=np.int64) + np.repeat(lo - (np.cumsum(size) - size), size)


def _extra_members(base, dpa, sel, walk: _Walk, length: float, dist_in_seg: bool):
    """Selected photons scanned after `stop` whose x is still inside the extent (usually none)."""
    late = np.flatnonzero(walk.stop < walk.last)
    if dist_in_seg or late.size == 0:  # segments only grow along the photons: nothing comes back
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    lo = np.searchsorted(sel, walk.stop[late] + 1)
    hi = np.searchsorted(sel, walk.last[late] + 1)
    photon = sel[_ranges(lo, hi)]
    owner = np.repeat(late, hi - lo)
    inside = (base[photon] - walk.start[owner]) + dpa[photon] < length
    return owner[inside], photon[inside]


def _segment_ids(beam: Beam, walk: _Walk, kept: np.ndarray, parms: Parms) -> np.ndarray:
    base = beam.segment_id[walk.segment[kept]].astype(np.float64)
    if parms.dist_in_seg:
        centre = base + int(parms.len / 2.0)
    else:
        portion = beam.dist_ph_along[walk.first[kept]].astype(np.float64) / SEGMENT_LENGTH
        centre = base + portion + int((parms.len / SEGMENT_LENGTH) / 2.0)
    return (centre + 0.5).astype(np.uint32)


def background_rates(beam: Beam, segment: np.ndarray) -> np.ndarray:
    """Background rate at each extent's first segment time (SlideRule's monotone interpolation)."""
    bt = beam.bckgrd_delta_time
    br = beam.bckgrd_rate.astype(np.float64)
    t = beam.segment_delta_time[segment]
    if len(t) == 0:
        return np.zeros(0)
    index = np.maximum.accumulate(np.searchsorted(bt, t, side="left"))  # the pointer never goes back
    rate = np.full(len(t), br[-1])
    mid = (index > 0) & (index < len(bt))
    i = index[mid]
    run, rise = bt[i] - bt[i - 1], br[i] - br[i - 1]
    rate[mid] = ((rise / run) * (t[mid] - bt[i - 1])) + br[i - 1]
    rate[index == 0] = br[0]
    return rate


def _empty(length: float) -> Extents:
    z = np.zeros(0)
    return Extents(z.astype(np.uint32), z.astype(np.int64), z.astype(np.uint32), z, z.astype(bool), z,
                   z.astype(np.float32), z.astype(np.float32), np.zeros(1, dtype=np.int64),
                   z.astype(np.int64), z.astype(np.float32), length)
