"""One granule end to end, and many granules in a local process pool.

``process_granule`` is what every caller runs per granule: the CLI and the local server (in a
process pool), and the worker Lambda. A granule that cannot be used yields a result carrying
``error = (code, message)`` instead of raising, so the others' results are kept.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import numpy as np

from .granules.assets import Asset
from .granules.beam import Beam
from .granules.reader import read_beams
from .request.errors import ResourceError
from .request.params import Parms
from .request.timeutil import delta_time_to_ns
from .science import ancillary, xseries
from .science.extents import make_extents
from .science.fit import FitSettings, fit_extents
from .science.records import (
    COMPACT,
    ELEVATION,
    EXTENT,
    PHOTON,
    VEGETATION,
    WAVEFORM,
    GranuleResult,
    concat_ancillary,
    concat_frames,
    elevation_rows,
    photon_rows,
    stack,
)
from .science.select import photon_confidence, photon_mask

log = logging.getLogger(__name__)
KINDS = ("atl06", "atl03s", "atl08", "atl03x")
BEAM_THREADS = max(1, min(6, os.cpu_count() or 1))


def process_granule(asset: Asset, resource: str, parms: Parms, kind: str = "atl06") -> GranuleResult:
    """Run ATL06-SR (``kind="atl06"``), photon subsetting (``"atl03s"``), PhoREAL (``"atl08"``) or
    SlideRule's x-series photon frame (``"atl03x"``, with its surface fit when the request has
    ``fit``) on one granule.

    Parameters
    ----------
    asset : Asset
        Where the granule lives.
    resource : str
        ATL03 granule name.
    parms : Parms
        Validated request parameters.
    kind : {"atl06", "atl03s", "atl08", "atl03x"}
        ``atl08`` runs PhoREAL with its defaults when ``parms`` has no ``phoreal`` table.

    Returns
    -------
    GranuleResult
        Tables for the granule, or ``error=(code, message)`` if it could not be used.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    parms = parms.for_kind(kind)
    stats: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        beams = read_beams(asset, resource, parms)
    except ResourceError as exc:
        return GranuleResult(resource, kind, error=(exc.code, str(exc)), stats=stats)
    except Exception as exc:  # a bug or an unforeseen file problem: report it, keep the others
        log.exception("unexpected failure reading %s", resource)
        return GranuleResult(resource, kind, error=(ResourceError.ERROR, f"{resource}: {exc!r}"),
                             stats=stats)
    stats["read_s"] = time.perf_counter() - t0
    stats["photons"] = float(sum(len(b.h_ph) for b in beams))
    try:
        parts = _process_beams(beams, parms, kind, stats)
    except ResourceError as exc:
        return GranuleResult(resource, kind, error=(exc.code, str(exc)), stats=stats)
    result = _merge(resource, kind, parts, parms)
    stats["total_s"] = time.perf_counter() - t0
    result.stats = stats
    return result


def _process_beams(beams: list[Beam], parms: Parms, kind: str, stats: dict) -> list[tuple]:
    """Beams in parallel threads: numpy releases the GIL in the sorts, gathers and sums."""
    per_beam = [{} for _ in beams]
    threads = min(len(beams), BEAM_THREADS)
    if threads <= 1:
        parts = [_process_beam(b, parms, kind, st) for b, st in zip(beams, per_beam, strict=True)]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            parts = list(pool.map(lambda b, st: _process_beam(b, parms, kind, st), beams, per_beam))
    for st in per_beam:  # summed CPU-seconds per stage
        for key, value in st.items():
            stats[key] = stats.get(key, 0.0) + value
    return parts


def _timed(stats: dict, key: str, start: float) -> float:
    now = time.perf_counter()
    stats[key] = stats.get(key, 0.0) + now - start
    return now


def _process_beam(beam: Beam, parms: Parms, kind: str, stats: dict) -> tuple:
    t = time.perf_counter()
    conf = photon_confidence(beam.signal_conf_ph, parms.srt, beam.granule)
    if parms.phoreal is not None and parms.phoreal.above_classifier and beam.atl08_class is not None:
        from .science.phoreal import above_classifier
        beam.atl08_class = above_classifier(beam.atl08_class, beam.relief, conf,
                                            beam.solar_elevation[beam.photon_segment()], beam.spot)
    yapc = None
    if parms.yapc is not None:
        from .science.yapc import yapc_scores
        yapc = yapc_scores(beam, parms.yapc, min_photons=parms.cnt)
    anc = beam.extra.get("ancillary")  # requested ancillary fields, per photon of the beam
    podppd = None if beam.podppd_flag is None else beam.podppd_flag[beam.photon_segment()]
    mask = photon_mask(conf, beam.quality_ph, parms, beam.atl08_class, yapc, beam.granule, podppd_ph=podppd)
    if kind == "atl03x":
        return (_xseries_beam(beam, parms, conf, mask, yapc, anc, stats, t),)
    extents = make_extents(beam, mask, parms)
    t = _timed(stats, "select_extents_s", t)
    if kind == "atl03s":
        rows = photon_rows(beam, extents, conf, yapc)
        return (*rows, ancillary.photon_columns(anc, extents.photon) if anc else None)
    if kind == "atl08":
        from .science.phoreal import vegetation_rows
        parts = vegetation_rows(beam, extents, beam.atl08_class, parms.phoreal)
        _timed(stats, "phoreal_s", t)
        return parts
    p = extents.photon
    settings = FitSettings(maxi=parms.maxi, H_min_win=parms.H_min_win, sigma_r_max=parms.sigma_r_max,
                           cnt=parms.cnt, ats=parms.ats)
    fit = fit_extents(extents.offsets, extents.x_rel, beam.h_ph[p], extents.length, extents.velocity,
                      extents.background_rate, settings, latitude=beam.lat_ph[p], longitude=beam.lon_ph[p],
                      time_ns=delta_time_to_ns(beam.delta_time[p]), y_atc=beam.dist_ph_across[p],
                      delta_time=beam.delta_time[p], extras=ancillary.fit_inputs(anc, p) if anc else None)
    rows = elevation_rows(beam, extents, fit, parms.compact)
    columns = ancillary.extent_columns(anc, p, extents.offsets, extents.x_rel, fit,
                                       np.flatnonzero(fit["fitted"])) if anc else None
    _timed(stats, "fit_s", t)
    return (rows, columns)


def _xseries_beam(beam: Beam, parms: Parms, conf: np.ndarray, keep: np.ndarray, yapc: np.ndarray | None,
                  anc: dict | None, stats: dict, t: float) -> dict[str, np.ndarray]:
    """The atl03x frame of one beam: its selected photons, or their surface fit (``fit``)."""
    frame = xseries.photon_frame(beam, parms, conf, keep, yapc, anc)
    t = _timed(stats, "select_extents_s", t)
    if parms.fit:
        frame = xseries.surface_fit(frame, parms)
        _timed(stats, "fit_s", t)
    return frame


def _merge(resource: str, kind: str, parts: list[tuple], parms: Parms) -> GranuleResult:
    if kind == "atl03x":
        return GranuleResult(resource, kind, frame=concat_frames([p[0] for p in parts]) if parts
                             else xseries.empty_frame(parms))
    if kind == "atl06":
        dtype = COMPACT if parms.compact else ELEVATION
        rows = stack([p[0] for p in parts], dtype)
        return GranuleResult(resource, kind, elevations=rows, ancillary=_merged_ancillary(parts, 1, parms))
    if kind == "atl08":
        return _merge_vegetation(resource, parts)
    heads = stack([p[0] for p in parts], EXTENT)
    photons = stack([p[1] for p in parts], PHOTON)
    offsets = np.concatenate(([0], np.cumsum(heads["count"].astype(np.int64))))
    return GranuleResult(resource, kind, extents=heads, photons=photons, offsets=offsets,
                         ancillary=_merged_ancillary(parts, 3, parms))


def _merged_ancillary(parts: list[tuple], at: int, parms: Parms) -> dict | None:
    """The beams' ancillary columns stacked; empty columns when the request has fields but no beam."""
    merged = concat_ancillary([p[at] for p in parts])
    if merged is None and parms.ancillary:
        return ancillary.empty_columns(parms)
    return merged


def _merge_vegetation(resource: str, parts: list[tuple]) -> GranuleResult:
    result = GranuleResult(resource, "atl08", vegetation=stack([p[0] for p in parts], VEGETATION))
    if parts and parts[0][1] is not None:
        result.waveforms = stack([p[1] for p in parts], WAVEFORM)
        result.waveform = np.concatenate([p[2] for p in parts]).astype(np.float32, copy=False)
    return result


# ---------------------------------------------------------------------- many granules
def run_many(asset: Asset, resources: Iterable[str], parms: Parms, kind: str = "atl06", *,
             workers: int | None = None, progress: bool | Callable = False,
             timeout: float | None = None) -> Iterator[GranuleResult]:
    """Process granules in a local process pool; yield results as they complete.

    Parameters
    ----------
    asset, parms, kind
        As for :func:`process_granule`.
    resources : iterable of str
        Granule names.
    workers : int, optional
        Processes (default, or 0: CPU count, at most the number of granules). ``1`` without a
        ``timeout`` runs in-process.
    progress : bool or callable
        ``True`` shows a tqdm progress bar on stderr; a callable gets ``(done, total)``.
    timeout : float, optional
        Seconds one granule may run (from its start in a worker). A granule that takes longer
        has its worker killed and yields an error result saying so; so does a granule whose
        worker dies. With a timeout every granule runs in a worker process, even with
        ``workers=1``: a granule that makes the HDF5 reader spin cannot be stopped otherwise.

    Raises
    ------
    ValueError
        ``workers`` negative, or ``timeout`` not a positive finite number.
    """
    if workers is not None and workers < 0:
        raise ValueError(f"workers must be positive, got {workers}")
    if timeout is not None and not (isinstance(timeout, int | float) and 0 < timeout < math.inf):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    names = list(dict.fromkeys(resources))
    workers = max(1, min(workers or os.cpu_count() or 1, len(names) or 1))
    bar = _progress_bar(len(names)) if progress is True else None
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if bar is not None:
            bar.update(1)
        elif callable(progress):
            progress(done, len(names))

    try:
        if timeout is None and (workers == 1 or len(names) <= 1):
            for name in names:
                result = process_granule(asset, name, parms, kind)
                tick()
                yield result
            return
        for result in _pooled(asset, names, parms, kind, workers, timeout):
            tick()
            yield result
    finally:
        if bar is not None:
            bar.close()


def _pooled(asset: Asset, names: list[str], parms: Parms, kind: str, workers: int,
            timeout: float | None) -> Iterator[GranuleResult]:
    """Granules in worker processes (pebble's pool: it kills a worker whose task overruns)."""
    from pebble import ProcessPool

    pool = ProcessPool(max_workers=workers, context=pool_context())
    pending: dict[Future, str] = {}
    try:
        pending = {pool.schedule(process_granule, args=(asset, n, parms, kind), timeout=timeout): n for n in names}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield _outcome(future, pending.pop(future), kind, timeout)
    finally:
        if pending:   # the caller stopped early: kill the running workers
            pool.stop()
        else:
            pool.close()
        pool.join()


def pool_context() -> multiprocessing.context.BaseContext:
    """Worker processes fork from a clean, single-threaded forkserver with the science preloaded
    (h5coro uses threads: never fork a process that ran it), or are spawned where there is none."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["icesat2sr.engine"])
    return context


def _outcome(future: Future, name: str, kind: str, timeout: float | None) -> GranuleResult:
    from pebble import ProcessExpired

    try:
        return future.result()
    except TimeoutError:
        reason = f"processing took longer than {timeout:g} s and was stopped (a corrupt granule?)"
    except ProcessExpired as exc:
        reason = f"the worker process died (exit code {exc.exitcode}; out of memory?)"
    except Exception as exc:  # a bug, or a result that could not be sent back
        log.error("processing %s failed: %r", name, exc)
        reason = f"internal error: {exc!r}"
    return GranuleResult(name, kind, error=(ResourceError.ERROR, f"{name}: {reason}"))


def _progress_bar(total: int):
    try:
        from tqdm import tqdm
    except ImportError:  # the Lambda layer has no tqdm; progress there is reported by the job
        return None
    return tqdm(total=total, unit="granule", desc="granules", leave=False)
