"""The chunks of a granule and their tasks: which photons each chunk reads, how the extent walk
passes from one chunk of a beam to the next, and the thread pool that runs them in order.

A chunk is segments ``[s0, s1)`` of one run of consecutive segment ids of a beam. Its task reads
a window of photons (with look-ahead for the extents that straddle its end and, for YAPC, the
photons around it), walks its extents, hands the walk state to the beam's next chunk, then selects,
assembles and runs the kind's step batch by batch (at most :data:`BATCH_ENTRIES` photon entries).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from ..granules.reader import BeamPlan, GranuleReader, with_photons
from ..request.params import Parms
from ..request.timeutil import delta_time_to_ns
from ..science.extents import WalkState, assemble, segment_runs, walk_window, window_segments
from ..science.records import GranuleResult
from .steps import KIND_STEPS, ChunkData, select

WORKERS = max(1, min(6, os.cpu_count() or 1))
CHUNK_PHOTONS = 400_000      # photons read per chunk of a beam (at most)
BATCH_ENTRIES = 800_000      # photon entries (photons x extents holding them) per fitted batch


# ---------------------------------------------------------------------- parts and chunks
@dataclass
class Part:
    """A partial result of :func:`iter_granule`.

    Attributes
    ----------
    result : GranuleResult
        The tables of one batch of one chunk of one beam (or, last and alone, the granule's error).
    beam : int
        Index of the beam among the granule's processed beams (rows of a granule are ordered by
        beam, then ``seq``).
    seq : int
        Position of the part within its beam.
    horizon_ns : int
        No later part of this beam has a photon earlier than this (ns since the Unix epoch),
        provided photon times never decrease along the beam (they do not in ATL03).
    beams : int
        Beams the granule has in the request's region.
    """

    result: GranuleResult
    beam: int = -1
    seq: int = -1
    horizon_ns: int = 2**63 - 1
    beams: int = 0



def _ordered(tasks: Iterable[Callable[[], list[Part]]], workers: int) -> Iterator[list[Part]]:
    """Run tasks on a thread pool, at most ``2 * workers`` ahead, and yield their results in order.

    A task may wait for a value an earlier task publishes; tasks start in submission order (FIFO),
    so that task is already running.
    """
    tasks = iter(tasks)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="icesat2sr")
    pending: deque[Future] = deque()
    try:
        for task in itertools.islice(tasks, 2 * workers):
            pending.append(pool.submit(task))
        while pending:
            result = pending.popleft().result()
            for task in itertools.islice(tasks, 1):
                pending.append(pool.submit(task))
            yield result
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)


@dataclass
class _Chunk:
    """Segments ``[s0, s1)`` of one run of consecutive segment ids of a beam (indices in the run)."""

    plan: BeamPlan
    beam: int               # index among the granule's beams
    run: tuple[int, int]    # the run's segments in the beam
    run_photons: int        # photon index of the run's first photon in the beam
    s0: int
    s1: int
    final: bool             # the last chunk of the run
    last_of_beam: bool
    order: tuple = ()


@dataclass
class _Job:
    """The chunks of one granule and what they share."""

    reader: GranuleReader
    parms: Parms
    kind: str
    stats: dict
    chunk_photons: int | None = None
    step: str = ""              # the per-kind step (default: the kind's)
    waits: dict = field(default_factory=dict)

    def tasks(self) -> Iterator[Callable[[], list[Part]]]:
        chunks = self._chunks()
        previous: dict[int, Future] = {}
        seq: dict[int, int] = {}
        for chunk in chunks:
            ready: Future = Future()
            before = previous.get(chunk.beam)
            previous[chunk.beam] = ready
            seq[chunk.beam] = seq.get(chunk.beam, -1) + 1
            yield _Task(self, chunk, before, ready, seq[chunk.beam])

    def _chunks(self) -> list[_Chunk]:
        plans = self.reader.beams
        target = self.chunk_photons or _chunk_photons(self.parms)
        bounds = _chunk_bounds(plans, target)
        chunks = []
        for b, plan in enumerate(plans):
            ids = plan.segments.segment_id
            counts = plan.segments.segment_ph_cnt.astype(np.int64)
            first_photon = np.concatenate(([0], np.cumsum(counts)))
            edges = bounds[b]
            for r0, r1 in segment_runs(ids):
                cuts = [r0, *(int(e) for e in edges if r0 < e < r1), r1]
                for s0, s1 in itertools.pairwise(cuts):
                    key = int(np.searchsorted(edges, s0, side="right"))
                    chunks.append(_Chunk(plan, b, (r0, r1), int(first_photon[r0]), s0 - r0, s1 - r0,
                                         final=s1 == r1, last_of_beam=s1 == len(ids), order=(key, b, s0)))
        # x-series frames are written beam after beam: their chunks go in that order
        chunks.sort(key=(lambda c: (c.beam, c.order)) if self.kind == "atl03x" else (lambda c: c.order))
        return chunks

    def add(self, key: str, seconds: float) -> None:
        self.stats[key] = self.stats.get(key, 0.0) + seconds

    def needs_pointer(self, plan: BeamPlan) -> bool:
        """Whether a chunk must wait for the previous one's background pointer (segment times going
        back, never in real granules: SlideRule's pointer into ``bckgrd_atlas`` then matters)."""
        if plan.beam not in self.waits:
            times = plan.segments.segment_delta_time
            self.waits[plan.beam] = bool(np.any(times[1:] < times[:-1]))
        return self.waits[plan.beam]


def _chunk_photons(parms: Parms) -> int:
    """Photons per chunk: at most CHUNK_PHOTONS, and about BATCH_ENTRIES photon entries."""
    overlap = parms.len / parms.res if parms.dist_in_seg else parms.extent_length_m / parms.res
    return int(max(1000, min(CHUNK_PHOTONS, BATCH_ENTRIES / max(1.0, overlap))))


def _chunk_bounds(plans: list[BeamPlan], target: int) -> dict[int, np.ndarray]:
    """Chunk edges (segment indices) per beam, cut at the same segment ids on every beam.

    The edges follow the densest beam, so no chunk of any beam holds much more than ``target``
    photons; a beam whose segment ids do not increase is cut by its own photon counts.
    """
    ids = [p.segments.segment_id.astype(np.int64) for p in plans]
    counts = [p.segments.segment_ph_cnt.astype(np.int64) for p in plans]
    out: dict[int, np.ndarray] = {}
    shared = [b for b in range(len(plans)) if np.all(np.diff(ids[b]) > 0)]
    if shared:
        grid, where = np.unique(np.concatenate([ids[b] for b in shared]), return_inverse=True)
        dense = np.zeros(len(grid), dtype=np.int64)
        np.maximum.at(dense, where, np.concatenate([counts[b] for b in shared]))
        cuts = grid[_cut_points(dense, target)]
        for b in shared:
            out[b] = np.searchsorted(ids[b], cuts)
    for b in range(len(plans)):
        if b not in out:
            out[b] = _cut_points(counts[b], target)
    return out


def _cut_points(counts: np.ndarray, target: int) -> np.ndarray:
    """Indices where the running photon count passes each multiple of ``target``."""
    total = int(counts.sum())
    if total <= target:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    marks = np.arange(target, total, target)
    return np.unique(np.searchsorted(ends, marks, side="right") + 1).clip(1, len(counts) - 1)


class _Task:
    """One chunk of one beam: read, select, walk (then let the next chunk start), emit.

    What a chunk hands to the next one of its beam (through ``ready``): the walk state, SlideRule's
    background pointer and the horizon of its last part.
    """

    def __init__(self, job: _Job, chunk: _Chunk, before: Future | None, ready: Future, seq: int):
        self.job, self.chunk, self.before, self.ready, self.seq = job, chunk, before, ready, seq

    def __call__(self) -> list[Part]:
        c = self.chunk
        try:
            state, pointer, horizon = self.before.result() if self.before is not None else (None, 0, _NEVER)
            if state is None or c.s0 == 0:   # a run's first chunk: a fresh walk, the counter runs on
                run_sdx = c.plan.segments.segment_dist_x[c.run[0]:c.run[1]]
                state, pointer = WalkState.initial(run_sdx, 0 if state is None else state.counter), 0
            if state.done or not c.plan.segments.segment_ph_cnt[c.run[0]:c.run[1]].any():
                horizon = _NEVER if c.last_of_beam else horizon
                self.ready.set_result((replace(state, done=True), pointer, horizon))
                return [self._part(None, horizon)]
            window = self._walk(state)
        except BaseException as exc:
            self.ready.set_exception(exc)
            raise
        return self._emit(window, pointer)

    # -------------------------------------------------------------- the walk
    def _walk(self, state: WalkState) -> _Window:
        c, job = self.chunk, self.job
        parms = job.parms
        ends = np.cumsum(c.plan.segments.segment_ph_cnt[c.run[0]:c.run[1]], dtype=np.int64)
        m = len(ends)
        look = (math.ceil(parms.len) + int(parms.res) if parms.dist_in_seg
                else math.ceil((parms.extent_length_m + parms.res) / 20.0)) + 2
        while True:
            end_segment = m if c.final else min(m, c.s1 + look)
            pb = max(int(ends[end_segment - 1]), min(state.first + 1, int(ends[-1])))
            final = pb >= int(ends[-1])     # the window holds the run's last photon
            window = _Window.read(self, state.first, pb)
            t = time.perf_counter()
            walked = walk_window(window.run_beam, state.first, state, parms, final=final,
                                 boundary=None if c.final else c.s1)
            job.add("extents_s", time.perf_counter() - t)
            if walked is not None:
                window.walk, window.after = walked
                return window
            look *= 2

    # -------------------------------------------------------------- emission
    def _emit(self, window: _Window, pointer: int) -> list[Part]:
        job, c = self.job, self.chunk
        parms, walk = job.parms, window.walk
        last = self._horizon(window, None)
        wait = job.needs_pointer(c.plan)
        if not wait:
            self.ready.set_result((window.after, 0, last))
        try:
            t = time.perf_counter()
            conf, selected, yapc = window.select()
            job.add("select_s", time.perf_counter() - t)
            parts = []
            for a, b in walk.batches(BATCH_ENTRIES):
                t = time.perf_counter()
                extents, pointer = assemble(window.run_beam, window.a, selected, walk.take(a, b), parms, pointer)
                extents.segment += c.run[0]
                job.add("extents_s", time.perf_counter() - t)
                t = time.perf_counter()
                data = ChunkData(window.beam, extents, conf, yapc, parms, job.kind, first=c.run_photons + window.a)
                result = KIND_STEPS[job.step or job.kind](data)
                job.add("step_s", time.perf_counter() - t)
                parts.append(self._part(result, self._horizon(window, int(walk.first[b]) if b < len(walk) else None)))
            if not parts:
                parts.append(self._part(None, last))
        except BaseException as exc:
            if wait:
                self.ready.set_exception(exc)
            raise
        if wait:
            self.ready.set_result((window.after, pointer, last))
        return parts

    def _part(self, result: GranuleResult | None, horizon: int) -> Part:
        job = self.job
        result = result if result is not None else GranuleResult(job.reader.resource, job.kind)
        return Part(result, self.chunk.beam, self.seq, horizon, len(job.reader.beams))

    def _horizon(self, window: _Window, first: int | None) -> int:
        """Earliest photon time (ns) a later part of this beam can hold: that of the photons from the
        next extent's first on, assuming (as ATL03 is written) that photon times never decrease."""
        after = window.after
        if first is None:
            if after.done and self.chunk.last_of_beam:
                return _NEVER
            first = after.first - window.a if not after.done else len(window.beam.delta_time) - 1
        rest = window.beam.delta_time[first:]
        return int(delta_time_to_ns(rest.min())) if rest.size else _NEVER


_NEVER = 2**63 - 1


class _Window:
    """Photons ``a .. b-1`` of a run (what a chunk's extents need), read with selection context."""

    def __init__(self, task: _Task, a: int, b: int, context: tuple[int, int], photons: dict[str, np.ndarray]):
        c = task.chunk
        self.task, self.a, self.b = task, a, b
        self.context = context          # photons read before a and after b
        lo, hi = context[0], context[0] + (b - a)
        inner = {k: v[lo:hi] for k, v in photons.items() if k != "extra"}
        if "extra" in photons:
            inner["extra"] = {"ancillary": {f: v[lo:hi] for f, v in photons["extra"]["ancillary"].items()}}
        self.photons = photons
        self.beam = with_photons(c.plan.segments, inner)
        r0, r1 = c.run
        self.run_beam = replace(self.beam, **{f: getattr(c.plan.segments, f)[r0:r1] for f in _SEGMENT_FIELDS})
        self.walk = None
        self.after: WalkState | None = None

    @classmethod
    def read(cls, task: _Task, a: int, b: int) -> _Window:
        c, job = task.chunk, task.job
        t = time.perf_counter()
        lo, hi = _selection_context(job.parms, c.plan, c.run_photons + a, c.run_photons + b)
        photons = job.reader.photons(c.plan, lo, hi)
        job.add("read_s", time.perf_counter() - t)
        return cls(task, a, b, (c.run_photons + a - lo, hi - (c.run_photons + b)), photons)

    def select(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Confidence, selection mask and YAPC scores of photons a..b-1."""
        parms, beam, c = self.task.job.parms, self.beam, self.task.chunk
        yapc = None
        if parms.yapc is not None:
            yapc = _yapc_window(self) if parms.yapc.version in (1, 2, 3) else beam.weight_ph
        seg = c.run[0] + window_segments(self.run_beam.segment_ph_cnt, self.a, self.b - self.a)
        conf, mask = select(beam, parms, yapc, seg)
        return conf, mask, yapc


_SEGMENT_FIELDS = ("segment_id", "segment_dist_x", "segment_ph_cnt", "segment_delta_time", "velocity_sc",
                   "solar_elevation")


def _selection_context(parms: Parms, plan: BeamPlan, a: int, b: int, widen: int = 1) -> tuple[int, int]:
    """The photons to read around photons a..b-1 of a beam so that their YAPC scores are exact."""
    if parms.yapc is None or parms.yapc.version == 0:
        return a, b
    from ..science.yapc import context_segments

    ends = np.cumsum(plan.segments.segment_ph_cnt, dtype=np.int64)
    s0 = int(np.searchsorted(ends, a, side="right"))
    s1 = int(np.searchsorted(ends, b - 1, side="right")) + 1
    lo, hi = context_segments(parms.yapc, plan.segments.segment_dist_x, s0, s1, widen)
    return (int(ends[lo - 1]) if lo else 0), int(ends[hi - 1])


def _yapc_window(window: _Window) -> np.ndarray:
    """YAPC scores of the window's photons a..b-1, from the photons read around them."""
    from ..science.yapc import yapc_window

    task = window.task
    plan, parms, reader = task.chunk.plan, task.job.parms, task.job.reader
    a = task.chunk.run_photons + window.a
    b = a + (window.b - window.a)
    lo, photons = a - window.context[0], window.photons

    def head(n: int) -> tuple[np.ndarray, np.ndarray]:
        first = reader.photons(plan, 0, n) if n else {"dist_ph_along": np.zeros(0), "h_ph": np.zeros(0)}
        return first["dist_ph_along"], first["h_ph"]

    widen = 1
    while True:
        scores = yapc_window(parms.yapc, plan.segments.segment_dist_x, plan.segments.segment_ph_cnt, lo,
                             photons["dist_ph_along"], photons["h_ph"], a, b, min_photons=parms.cnt, head=head)
        if scores is not None:
            return scores
        widen *= 2
        lo, hi = _selection_context(parms, plan, a, b, widen)
        photons = reader.photons(plan, lo, hi)
