"""SlideRule's along-track extents (SPEC §5), vectorised and resumable.

SlideRule walks photons one by one with a small state machine. Its decisions reduce to:

* the start distance of extent ``k`` (``start_k``) depends on segment distances only;
* extent ``k`` scans photons from ``first_k`` (the step photon of extent ``k-1``) up to the
  later of the first photon at ``x >= res`` (the next extent's first photon) and the first at
  ``x >= len``; its photons are the scanned ones with ``x < len`` that pass selection.

"First photon at or past a threshold" is a ``searchsorted`` on the running maximum of the
photons' along-track coordinate. Each decision is then re-checked with SlideRule's exact
float expression ``(segment_dist_x[s] - start) + dist_ph_along[p]``; if any check fails
(rounding at a boundary, photons far out of order), the window is walked again one photon at a
time by :func:`_walk_scalar`, which follows SlideRule's loop literally.

The walk is resumable, so a beam can be processed in along-track chunks in bounded memory:
:class:`WalkState` is where the walk stands (the next extent's counter, start distance and first
photon), :func:`walk_window` walks the extents of one chunk over a window of photons that
starts at the state's first photon, and :func:`assemble` turns walked extents into
:class:`Extents`. Chunked and whole-beam walks give the same extents by construction: every
decision only looks forward from an extent's first photon, and a window that does not reach
far enough is reported (``None``) so the caller reads further.
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
    """Emitted extents of one beam (or of one chunk of it), with their photons in CSR layout.

    Photons of extent ``e`` are ``photon[offsets[e]:offsets[e+1]]`` (indices into the photon
    arrays the extents were made from, file order) with centre-relative along-track ``x_rel`` (f4).
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
    walked: int = 0              # extents walked, emitted or not

    def __len__(self) -> int:
        return len(self.counter)

    @property
    def count(self) -> np.ndarray:
        """Number of selected photons per extent."""
        return np.diff(self.offsets)


@dataclass(frozen=True)
class WalkState:
    """Where the walk of one run of segments stands: what the next extent starts from.

    Attributes
    ----------
    counter : int
        The next extent's counter.
    start : float
        Its start distance (m).
    start_segment : int
        The segment where SlideRule's start recurrence stands (metre-based walks).
    first : int
        Its first scanned photon (index in the run's photons).
    segment : int
        Its segment (index in the run's segments).
    done : bool
        The walk has ended: its last extent scanned the run's last photon.
    """

    counter: int
    start: float
    start_segment: int = 0
    first: int = 0
    segment: int = 0
    done: bool = False

    @classmethod
    def initial(cls, segment_dist_x: np.ndarray, counter: int = 0) -> WalkState:
        """The state before a run's first extent (SlideRule starts at segment 0's distance)."""
        return cls(counter, float(segment_dist_x[0]) if len(segment_dist_x) else 0.0)


@dataclass
class Walk:
    """Per-extent outcome of the photon walk, for every walked extent (emitted or not).

    Photon indices are local to the window the walk ran on.
    """

    counter: np.ndarray  # i8 extent counter
    start: np.ndarray    # f8 start distance
    first: np.ndarray    # i8 first scanned photon
    last: np.ndarray     # i8 last scanned photon (inclusive)
    stop: np.ndarray     # i8 first photon at or past the extent's end (members before it)
    segment: np.ndarray  # i8 extent segment

    def __len__(self) -> int:
        return len(self.counter)

    def take(self, a: int, b: int) -> Walk:
        """Extents ``a..b-1``."""
        return Walk(*(getattr(self, f)[a:b] for f in ("counter", "start", "first", "last", "stop", "segment")))

    def batches(self, budget: int) -> list[tuple[int, int]]:
        """Consecutive ranges of extents scanning at most ``budget`` photons each (at least one extent)."""
        scanned = np.cumsum(self.last - self.first + 1)
        bounds, a = [], 0
        while a < len(self):
            base = scanned[a - 1] if a else 0
            b = max(a + 1, int(np.searchsorted(scanned, base + budget, side="right")))
            bounds.append((a, b))
            a = b
        return bounds


def _walk_from(starts: list, firsts: list, lasts: list, stops: list, segments: list, counter: int) -> Walk:
    n = len(starts)
    return Walk(np.arange(counter, counter + n, dtype=np.int64), np.array(starts, dtype=np.float64),
                *(np.array(v, dtype=np.int64) for v in (firsts, lasts, stops, segments)))


# ---------------------------------------------------------------------- whole beams
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
    parts, counter, first_photon = [], 0, 0
    for s0, s1 in segment_runs(beam.segment_id):
        n_run = int(beam.segment_ph_cnt[s0:s1].sum())
        sub = run_beam(beam, s0, s1, first_photon, first_photon + n_run)
        walk, state = walk_window(sub, 0, WalkState.initial(sub.segment_dist_x, counter), parms, final=True)
        part, _ = assemble(sub, 0, selected[first_photon:first_photon + n_run], walk, parms)
        part.segment += s0
        part.photon += first_photon
        parts.append(part)
        counter = state.counter
        first_photon += n_run
    return concat_extents(parts, parms.extent_length_m)


def segment_runs(segment_id: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive segment ids ``[(s0, s1), ...]``.

    A full granule is one run. Subsetted granules can hold several runs far apart along track;
    SlideRule's start-distance correction assumes contiguous segments (it would step through the
    gap and then add it again), so each run is walked on its own, the counter running on.
    """
    breaks = np.flatnonzero(np.diff(segment_id.astype(np.int64)) != 1) + 1
    edges = np.concatenate(([0], breaks, [len(segment_id)]))
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]


SEGMENT_FIELDS = ("segment_id", "segment_dist_x", "segment_ph_cnt", "segment_delta_time", "velocity_sc",
                  "solar_elevation", "podppd_flag")
PHOTON_FIELDS = ("delta_time", "lat_ph", "lon_ph", "h_ph", "dist_ph_along", "dist_ph_across",
                 "signal_conf_ph", "quality_ph", "weight_ph", "atl08_class", "relief", "landcover", "snowcover")


def run_beam(beam: Beam, s0: int, s1: int, p0: int, p1: int) -> Beam:
    """The beam restricted to segments ``s0..s1-1`` and photons ``p0..p1-1`` (views, no copies)."""
    changes = {f: getattr(beam, f)[s0:s1] for f in SEGMENT_FIELDS if getattr(beam, f) is not None}
    changes.update({f: getattr(beam, f)[p0:p1] for f in PHOTON_FIELDS if getattr(beam, f) is not None})
    return replace(beam, **changes)


def concat_extents(parts: list[Extents], length: float) -> Extents:
    """Extents of consecutive parts as one (photon indices must already refer to the same arrays)."""
    if not parts:
        return _empty(length)
    if len(parts) == 1:
        return parts[0]
    counts = np.concatenate([p.count for p in parts])
    merged = {f: np.concatenate([getattr(p, f) for p in parts])
              for f in ("counter", "segment", "segment_id", "distance", "valid", "background_rate", "velocity",
                        "solar_elevation", "photon", "x_rel")}
    return Extents(offsets=np.concatenate(([0], np.cumsum(counts))).astype(np.int64), length=length,
                   walked=sum(p.walked for p in parts), **merged)


# ---------------------------------------------------------------------- walks
def window_segments(counts: np.ndarray, p0: int, n: int) -> np.ndarray:
    """Segment index of photons ``p0..p0+n-1`` of a run (``counts``: photons per segment).

    Photons past the run's last get ``len(counts)``.
    """
    ends = np.cumsum(counts, dtype=np.int64)
    if n <= 0 or len(counts) == 0 or np.any(counts < 0):
        return np.searchsorted(ends, np.arange(p0, p0 + n, dtype=np.int64), side="right")
    # the segments holding the window, each repeated by its count (linear, not a search per photon)
    s0, s1 = np.searchsorted(ends, [p0, p0 + n - 1], side="right")
    s1 = min(int(s1), len(counts) - 1)
    inside = np.repeat(np.arange(s0, s1 + 1, dtype=np.int64), counts[s0:s1 + 1])
    skip = p0 - (int(ends[s0 - 1]) if s0 > 0 else 0)
    out = np.full(n, len(counts), dtype=np.int64)
    take = inside[skip:skip + n]
    out[:len(take)] = take
    return out


def walk_window(beam: Beam, p0: int, state: WalkState, parms: Parms, *, final: bool,
                boundary: int | None = None) -> tuple[Walk, WalkState] | None:
    """Walk the extents of one run from ``state`` over a window of its photons.

    Parameters
    ----------
    beam : Beam
        One run of consecutive segments (all its segment arrays); photon arrays hold the window,
        the run's photons ``p0 .. p0 + n - 1``. ``state.first`` must equal ``p0``.
    p0 : int
        Index in the run of the window's first photon.
    state : WalkState
        Where the walk stands.
    parms : Parms
        The request (``len``, ``res``, ``dist_in_seg``, ``pass_invalid``, ...).
    final : bool
        The window reaches the run's last photon (the walk may end in it).
    boundary : int, optional
        Walk only the extents whose start segment is below this run segment index (a chunk);
        None walks to the end of the run (``final`` must then be True).

    Returns
    -------
    (Walk, WalkState) or None
        The walked extents (window-local photon indices) and the state after them; None when an
        extent of the chunk needs photons beyond the window (read more and call again).
    """
    if state.done:
        return _walk_from([], [], [], [], [], state.counter), state
    if state.first != p0:
        raise ValueError(f"the window must start at the state's first photon ({state.first}), got {p0}")
    if not final and boundary is None:
        raise ValueError("a window that does not reach the end of the run needs a boundary")
    n = len(beam.dist_ph_along)
    if n == 0 or len(beam.segment_dist_x) == 0:
        if not final:
            return None
        return _walk_from([], [], [], [], [], state.counter), replace(state, done=True)
    seg_of = window_segments(beam.segment_ph_cnt, p0, n)
    if parms.dist_in_seg:
        return _walk_in_segments(beam, seg_of, p0, state, parms, final, boundary)
    result = _walk_vectorised(beam, seg_of, state, parms.res, parms.extent_length_m, final, boundary)
    if result is False:
        return None
    if result is None:
        result = _walk_scalar(beam, seg_of, state, parms, final, boundary)
    return result


def _walk_vectorised(beam: Beam, seg_of: np.ndarray, state: WalkState, res: float, length: float,
                     final: bool, boundary: int | None):
    """The metre-based walk by thresholds on the running maximum.

    Returns (Walk, WalkState); None if a check fails (use the scalar walk); False if the window
    is too short.
    """
    sdx, dpa = beam.segment_dist_x, beam.dist_ph_along
    n = len(dpa)
    along = sdx[seg_of] + dpa
    running_max = np.maximum.accumulate(along)
    if boundary is not None:
        start, after = start_distances(sdx, res, state.start, state.start_segment, boundary=boundary)
    else:
        estimate = max(int((running_max[-1] - state.start) / res), 0) + 3
    while True:
        if boundary is None:
            start, after = start_distances(sdx, res, state.start, state.start_segment, count=estimate)
        if len(start) == 0:
            return _walk_from([], [], [], [], [], state.counter), state
        step = _first_at_or_past(sdx, dpa, seg_of, running_max, start, res)
        stop = _first_at_or_past(sdx, dpa, seg_of, running_max, start, length)
        if step is None or stop is None:
            return None
        ends = np.maximum(step, stop)
        final_at = np.flatnonzero(ends >= n - 1) if final else np.zeros(0, dtype=np.int64)
        if final_at.size or boundary is not None:
            break
        estimate *= 2
    count = int(final_at[0]) + 1 if final_at.size else len(start)
    if not final and np.any(ends[:count] >= n):
        return False  # an extent of the chunk scans past the window ("not found" is always exact)
    first = np.concatenate(([0], step[: count - 1])).astype(np.int64)
    # the walk never goes back: each extent's thresholds must lie at or after its first photon
    if np.any(step[:count] < first) or np.any(stop[:count] < first):
        return None
    segment = np.concatenate(([state.segment], seg_of[first[1:]])).astype(np.int64)
    walk = Walk(np.arange(state.counter, state.counter + count, dtype=np.int64), start[:count], first,
                np.minimum(ends[:count], n - 1), stop[:count], segment)
    if final_at.size:
        return walk, replace(state, counter=state.counter + count, done=True)
    nxt = int(step[count - 1])
    p0 = state.first
    return walk, WalkState(state.counter + count, after[0], after[1], p0 + nxt, int(seg_of[nxt]))


def start_distances(sdx: np.ndarray, res: float, start: float, seg: int, *, count: int | None = None,
                    boundary: int | None = None) -> tuple[np.ndarray, tuple[float, int]]:
    """Start distances of the next extents (SlideRule's float64 recurrence).

    After each extent the start moves by ``res``; every segment boundary it passes adds the
    segment's length minus 20 m, so starts follow the segments' real lengths. Produces ``count``
    starts, or those whose start segment is below ``boundary``.

    Returns
    -------
    starts : ndarray of float64
    after : (float, int)
        Start distance and start segment of the extent after the last one returned.
    """
    m = len(sdx)
    sdx_list = sdx.tolist()
    starts = []
    limit = count if count is not None else math.inf
    stop_seg = boundary if boundary is not None else math.inf
    while len(starts) < limit and seg < stop_seg:
        starts.append(start)
        start += res
        while seg + 1 < m and start >= sdx_list[seg + 1]:
            start += sdx_list[seg + 1] - sdx_list[seg]
            start -= SEGMENT_LENGTH
            seg += 1
    return np.array(starts, dtype=np.float64), (start, seg)


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


def _walk_in_segments(beam: Beam, seg_of: np.ndarray, p0: int, state: WalkState, parms: Parms, final: bool,
                      boundary: int | None) -> tuple[Walk, WalkState] | None:
    """``dist_in_seg``: extents of ``len`` whole segments, stepping ``int(res)`` segments."""
    sdx = beam.segment_dist_x
    m, n = len(sdx), len(seg_of)
    n_run = int(np.sum(beam.segment_ph_cnt, dtype=np.int64))
    step_segs = int(parms.res)
    stop_segs = math.ceil(parms.len)  # along-track segment difference d >= len <=> d >= ceil(len)
    first_photon = np.concatenate(([0], np.cumsum(beam.segment_ph_cnt, dtype=np.int64)))
    starts, firsts, lasts, stops, segments = [], [], [], [], []
    start, first, segment = state.start, state.first, state.segment
    done = False
    while boundary is None or segment < boundary:
        nxt = segment + step_segs
        step = int(first_photon[nxt]) if nxt < m else n_run
        stop = int(first_photon[segment + stop_segs]) if segment + stop_segs < m else n_run
        step, stop = max(step, first), max(stop, first)
        end = max(step, stop)
        if not final and end >= p0 + n:
            return None
        starts.append(start)
        firsts.append(first - p0)
        lasts.append(min(end, n_run - 1) - p0)
        stops.append(stop - p0)
        segments.append(segment)
        if end >= n_run - 1:
            done = True
            break
        if nxt < m:
            start = float(sdx[nxt])
        first, segment = step, int(seg_of[step - p0])
    walk = _walk_from(starts, firsts, lasts, stops, segments, state.counter)
    return walk, WalkState(state.counter + len(walk), start, 0, first, segment, done)


def _walk_scalar(beam: Beam, seg_of: np.ndarray, state: WalkState, parms: Parms, final: bool,
                 boundary: int | None) -> tuple[Walk, WalkState] | None:
    """SlideRule's metre-based photon loop, literally (exact fallback; slow)."""
    sdx = beam.segment_dist_x.tolist()
    dpa = beam.dist_ph_along.astype(np.float64).tolist()
    seg = seg_of.tolist()
    n, m = len(dpa), len(sdx)
    length, res = parms.extent_length_m, parms.res
    starts, firsts, lasts, stops, segments = [], [], [], [], []
    start, start_segment, first, segment = state.start, state.start_segment, 0, state.segment
    done = False
    while boundary is None or start_segment < boundary:
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
        if not final and p >= n:
            return None
        starts.append(start)
        firsts.append(first)
        lasts.append(min(p, n - 1))
        stops.append(n if stop_at is None else stop_at)
        segments.append(segment)
        if final and p >= n - 1:
            done = True
            break
        start += res
        while start_segment + 1 < m and start >= sdx[start_segment + 1]:
            start += sdx[start_segment + 1] - sdx[start_segment]
            start -= SEGMENT_LENGTH
            start_segment += 1
        first, segment = step_at, seg[step_at]
    walk = _walk_from(starts, firsts, lasts, stops, segments, state.counter)
    return walk, WalkState(state.counter + len(walk), start, start_segment, state.first + first, segment, done)


# ---------------------------------------------------------------------- extents from a walk
def assemble(beam: Beam, p0: int, selected: np.ndarray, walk: Walk | None, parms: Parms,
             bg_pointer: int = 0) -> tuple[Extents, int]:
    """Members, validity and attributes of walked extents; keep the emitted ones.

    Parameters
    ----------
    beam : Beam
        As for :func:`walk_window` (the run's segments, the window's photons).
    p0 : int
        Index in the run of the window's first photon.
    selected : ndarray of bool
        Selection of the window's photons.
    walk : Walk
        Extents walked on this window (or None: no extents).
    parms : Parms
        The request (``len``, ``res``, ``dist_in_seg``, ``pass_invalid``, ...).
    bg_pointer : int
        SlideRule's background-rate pointer before these extents (it never goes back).

    Returns
    -------
    (Extents, int)
        Emitted extents (photon indices local to the window) and the background pointer after them.
    """
    length = parms.extent_length_m
    if walk is None or len(walk) == 0:
        return _empty(length), bg_pointer
    seg_of = window_segments(beam.segment_ph_cnt, p0, len(beam.dist_ph_along))
    base = beam.segment_dist_x[seg_of]
    dpa = beam.dist_ph_along.astype(np.float64)
    sel = np.flatnonzero(selected)
    k_count = len(walk)
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
    rates, bg_pointer = background_rates(beam, seg_idx, bg_pointer)
    extents = Extents(
        counter=walk.counter[kept].astype(np.uint32),
        segment=seg_idx,
        segment_id=_segment_ids(beam, walk, kept, parms),
        distance=walk.start[kept] + length / 2.0,
        valid=valid[kept],
        background_rate=rates,
        velocity=np.sqrt(np.sum(beam.velocity_sc[seg_idx].astype(np.float64) ** 2, axis=1)).astype(np.float32),
        solar_elevation=beam.solar_elevation[seg_idx],
        offsets=np.concatenate(([0], np.cumsum(counts[kept]))).astype(np.int64),
        photon=members,
        x_rel=_x_rel(base, dpa, walk.start, members, member_owner, length),
        length=length,
        walked=k_count,
    )
    return extents, bg_pointer


def _x_rel(base, dpa, start, photon, owner, length) -> np.ndarray:
    """SlideRule's photon x: ``float32(((segment_dist_x - start) + dist_ph_along) - len/2)``."""
    return (((base[photon] - start[owner]) + dpa[photon]) - length / 2.0).astype(np.float32)


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(lo[i], hi[i])`` for all i."""
    size = hi - lo
    total = int(size.sum())
    return np.arange(total, dtype=np.int64) + np.repeat(lo - (np.cumsum(size) - size), size)


def _extra_members(base, dpa, sel, walk: Walk, length: float, dist_in_seg: bool):
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


def _segment_ids(beam: Beam, walk: Walk, kept: np.ndarray, parms: Parms) -> np.ndarray:
    base = beam.segment_id[walk.segment[kept]].astype(np.float64)
    if parms.dist_in_seg:
        centre = base + int(parms.len / 2.0)
    else:
        portion = beam.dist_ph_along[walk.first[kept]].astype(np.float64) / SEGMENT_LENGTH
        centre = base + portion + int((parms.len / SEGMENT_LENGTH) / 2.0)
    return (centre + 0.5).astype(np.uint32)


def background_rates(beam: Beam, segment: np.ndarray, pointer: int = 0) -> tuple[np.ndarray, int]:
    """Background rate at each extent's first segment time (SlideRule's monotone interpolation).

    Returns the rates and SlideRule's pointer into ``bckgrd_atlas`` after them (it never goes
    back, so it carries from one chunk of a run to the next).
    """
    bt = beam.bckgrd_delta_time
    br = beam.bckgrd_rate.astype(np.float64)
    t = beam.segment_delta_time[segment]
    if len(t) == 0:
        return np.zeros(0), pointer
    index = np.maximum(np.maximum.accumulate(np.searchsorted(bt, t, side="left")), pointer)
    rate = np.full(len(t), br[-1])
    mid = (index > 0) & (index < len(bt))
    i = index[mid]
    run, rise = bt[i] - bt[i - 1], br[i] - br[i - 1]
    rate[mid] = ((rise / run) * (t[mid] - bt[i - 1])) + br[i - 1]
    rate[index == 0] = br[0]
    return rate, int(index[-1])


def _empty(length: float) -> Extents:
    z = np.zeros(0)
    return Extents(z.astype(np.uint32), z.astype(np.int64), z.astype(np.uint32), z, z.astype(bool), z,
                   z.astype(np.float32), z.astype(np.float32), np.zeros(1, dtype=np.int64),
                   z.astype(np.int64), z.astype(np.float32), length)
