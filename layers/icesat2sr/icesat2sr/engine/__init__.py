"""One granule end to end, in along-track chunks (many granules: :mod:`icesat2sr.batch`).

A granule is processed in chunks of each beam (:func:`iter_granule`): read a window of photons
-> select -> walk the extents -> a per-kind step (the ATL06-SR fit, the atl03s photon rows, ...)
-> emit a partial result. Memory follows the chunk, not the granule: a chunk holds a bounded
number of photons and its extents are fitted in batches of a bounded number of photon entries.
Chunks are cut at the same segment ids on every beam, so they follow one another in time, and
run on a thread pool (numpy releases the GIL) in a fixed order: chunk ``k+1`` of a beam starts as
soon as chunk ``k`` has walked its extents, while chunk ``k`` fits them.

A new kind plugs in with one function registered by :func:`kind_step`: it gets a
:class:`ChunkData` (one batch of extents and the photons they index) and returns the tables of
that batch as a partial :class:`GranuleResult`.

SlideRule's x-series (``atl03x``) goes chunk by chunk too: each chunk's photon frame is made on
the thread pool and each beam's surface fit (``xseries.SurfaceFitter``, a resumable walk over the
beam's selected photons) is fed its chunks in order.

``process_granule`` (the whole granule at once) is what callers that return every row whole run
(the Python API, the x-series); the CLI's files, the local server and the worker Lambda take the
parts as they come (``batch.pooled(..., parts=True)``, ``iter_granule``). A granule that cannot be used
yields a result carrying ``error = (code, message)`` instead of raising, so the others' results are
kept.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator

import numpy as np

from ..granules.assets import Asset
from ..granules.reader import GranuleReader
from ..request.errors import ResourceError
from ..request.params import Parms
from ..science import ancillary, xseries
from ..science.extents import window_segments
from ..science.records import GranuleResult, concat
from .chunks import _NEVER, BATCH_ENTRIES, CHUNK_PHOTONS, WORKERS, Part, _Chunk, _chunk_bounds, _Job, _ordered, _Window
from .steps import KIND_STEPS, KINDS, XPHOREAL, ChunkData, kind_step, select

log = logging.getLogger(__name__)
__all__ = ["BATCH_ENTRIES", "CHUNK_PHOTONS", "KINDS", "KIND_STEPS", "WORKERS", "XPHOREAL", "ChunkData", "Part",
           "empty_result", "iter_granule", "kind_step", "process_granule", "select"]


def process_granule(asset: Asset, resource: str, parms: Parms, kind: str = "atl06", *,
                    workers: int | None = None, chunk_photons: int | None = None) -> GranuleResult:
    """Run ATL06-SR (``kind="atl06"``) or photon subsetting (``"atl03s"``) on one granule.

    Parameters
    ----------
    asset : Asset
        Where the granule lives.
    resource : str
        ATL03 granule name.
    parms : Parms
        Validated request parameters.
    kind : {"atl06", "atl03s"}
        What to make of it: a kind registered in :data:`icesat2sr.engine.steps.KIND_STEPS`.
    workers, chunk_photons
        As for :func:`iter_granule`.

    Returns
    -------
    GranuleResult
        Tables for the granule, or ``error=(code, message)`` if it could not be used.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    parms = parms.for_kind(kind)
    stats: dict[str, float] = {}
    parts = list(iter_granule(asset, resource, parms, kind, stats=stats, workers=workers,
                              chunk_photons=chunk_photons))
    if parts and parts[-1].result.error is not None:
        failed = parts[-1].result
        failed.stats = stats
        return failed
    parts.sort(key=lambda part: (part.beam, part.seq))
    result = _with_columns(concat([p.result for p in parts], kind, compact=parms.compact, consume=True), parms, kind)
    result.granule = resource
    result.stats = stats
    return result


def empty_result(resource: str, parms: Parms, kind: str = "atl06") -> GranuleResult:
    """The result of a granule that gave no row: its tables empty, with every column a result of
    the request has (what a results file holds when no granule gives a row)."""
    parms = parms.for_kind(kind)
    result = _with_columns(concat([], kind, compact=parms.compact), parms, kind)
    result.granule = resource
    return result


def _with_columns(result: GranuleResult, parms: Parms, kind: str) -> GranuleResult:
    """Empty tables where no part gave any (the x-series frame, the requested ancillary fields)."""
    if kind == "atl03x" and not result.frame:
        result.frame = xseries.empty_frame(parms)
    if kind != "atl03x" and result.ancillary is None and parms.ancillary:
        result.ancillary = ancillary.empty_columns(parms)
    return result


def iter_granule(asset: Asset, resource: str, parms: Parms, kind: str = "atl06", *, stats: dict | None = None,
                 workers: int | None = None, chunk_photons: int | None = None) -> Iterator[Part]:
    """Process one granule in along-track chunks, yielding partial results as they are ready.

    Parameters
    ----------
    asset, resource, parms, kind
        As for :func:`process_granule`; ``kind`` is any registered kind (:data:`KIND_STEPS`).
    stats : dict, optional
        Filled with seconds per stage (summed over threads) and counts.
    workers : int, optional
        Threads (default :data:`WORKERS`).
    chunk_photons : int, optional
        Photons per chunk of a beam (default: :data:`CHUNK_PHOTONS`, less when extents overlap
        much, so that a chunk holds about :data:`BATCH_ENTRIES` photon entries).

    Yields
    ------
    Part
        Partial results in a fixed order (chunk by chunk, beams in turn); sorting them by
        ``(beam, seq)`` gives the whole granule's row order. A granule that cannot be used ends
        with one part whose result carries ``error = (code, message)``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    parms = parms.for_kind(kind)
    stats = {} if stats is None else stats
    t0 = time.perf_counter()
    try:
        with GranuleReader(asset, resource, parms) as reader:
            stats["open_s"] = time.perf_counter() - t0
            stats["photons"] = float(sum(p.n_photons for p in reader.beams))
            if kind == "atl03x" and (parms.fit or parms.phoreal is None):
                yield from _xseries_parts(reader, parms, stats, workers or WORKERS, chunk_photons)
                return
            job = _Job(reader, parms, kind, stats, chunk_photons, step=XPHOREAL if kind == "atl03x" else kind)
            for parts in _ordered(job.tasks(), workers or WORKERS):
                yield from parts
    except ResourceError as exc:
        yield Part(GranuleResult(resource, kind, error=(exc.code, str(exc))))
    except Exception as exc:  # a bug or an unforeseen file problem: report it, keep the other granules
        log.exception("unexpected failure processing %s", resource)
        yield Part(GranuleResult(resource, kind, error=(ResourceError.ERROR, f"{resource}: {exc!r}")))
    finally:
        stats["total_s"] = time.perf_counter() - t0


def _xseries_parts(reader: GranuleReader, parms: Parms, stats: dict, workers: int,
                   chunk_photons: int | None) -> Iterator[Part]:
    """atl03x in chunks: each chunk's photon frame is made on the thread pool (read, select,
    frame), each beam's surface fit is fed its chunks in order here; parts come beam by beam."""
    job = _Job(reader, parms, "atl03x", stats, chunk_photons)
    fitters: dict[int, xseries.SurfaceFitter] = {}
    seq = itertools.count()
    for chunk, frame in _ordered((_FrameTask(job, c) for c in _xseries_chunks(job)), workers):
        if parms.fit:
            t = time.perf_counter()
            fitter = fitters.setdefault(chunk.beam, xseries.SurfaceFitter(parms, BATCH_ENTRIES))
            if frame is None and chunk.last_of_beam and fitter.rest is not None:
                frame = {k: v[:0] for k, v in fitter.rest.items()}
            frame = fitter.feed(frame, final=chunk.last_of_beam) if frame is not None else None
            job.add("step_s", time.perf_counter() - t)
        if frame is not None and len(frame["x_atc"]):
            yield Part(GranuleResult(reader.resource, "atl03x", frame=frame), chunk.beam, next(seq), _NEVER,
                       len(reader.beams))


def _xseries_chunks(job: _Job) -> Iterator[_Chunk]:
    """Chunks of each beam's photons (a beam as one run: the x-series frame spans gaps), beam by beam."""
    parms = job.parms
    overlap = parms.len / parms.res if parms.fit else 1.0
    target = job.chunk_photons or int(max(1000, min(CHUNK_PHOTONS, BATCH_ENTRIES / max(1.0, overlap))))
    bounds = _chunk_bounds(job.reader.beams, target)
    for b, plan in enumerate(job.reader.beams):
        m = len(plan.segments.segment_id)
        cuts = [0, *(int(e) for e in bounds[b] if 0 < e < m), m]
        for s0, s1 in itertools.pairwise(cuts):
            yield _Chunk(plan, b, (0, m), 0, s0, s1, final=s1 == m, last_of_beam=s1 == m)


class _FrameTask:
    """The x-series photon frame of one chunk (``None`` when the chunk has no photons)."""

    def __init__(self, job: _Job, chunk: _Chunk):
        self.job, self.chunk = job, chunk

    def __call__(self) -> tuple[_Chunk, dict[str, np.ndarray] | None]:
        c, parms = self.chunk, self.job.parms
        counts = c.plan.segments.segment_ph_cnt
        ends = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
        a, b = int(ends[c.s0]), int(ends[c.s1])
        if a == b:
            return c, None
        window = _Window.read(self, a, b)
        t = time.perf_counter()
        conf, mask, yapc = window.select()
        frame = xseries.photon_frame(window.beam, parms, conf, mask, yapc, window.beam.extra.get("ancillary"),
                                     segment=window_segments(counts, a, b - a), first=a)
        self.job.add("select_s", time.perf_counter() - t)
        return c, frame
