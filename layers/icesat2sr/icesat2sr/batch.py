"""Many granules, each in a child process of its own (:func:`icesat2sr.pool.run`).

:func:`run_many` is the embedded API's and the CLI's way to process a list of granules: results as
they complete, at most ``workers`` processes at a time, a per-granule time limit (a granule that
overruns or whose process dies becomes a failed result; the others go on). :func:`pooled` is the
same for callers that also take each granule's parts as they are computed (the CLI's files, the
local server). What a child runs is :func:`granule_results` over :mod:`icesat2sr.engine`.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator

from . import pool
from .engine import Part, iter_granule, process_granule
from .granules.assets import Asset
from .request.errors import ResourceError
from .request.params import Parms
from .science.records import GranuleResult

log = logging.getLogger(__name__)


def run_many(asset: Asset, resources: Iterable[str], parms: Parms, kind: str = "atl06", *,
             workers: int | None = None, progress: bool | Callable = False,
             timeout: float | None = None) -> Iterator[GranuleResult]:
    """Process granules in child processes; yield results as they complete.

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
        Seconds one granule may run (from the start of its process). A granule that takes longer
        has its process killed and yields an error result saying so; so does a granule whose
        process dies. With a timeout every granule runs in a process of its own, even with
        ``workers=1``: a granule that makes the HDF5 reader spin cannot be stopped otherwise.

    Raises
    ------
    ValueError
        ``workers`` negative, or ``timeout`` not a positive finite number.
    """
    if workers is not None and workers < 0:
        raise ValueError(f"workers must be positive, got {workers}")
    check_time_limit(timeout)
    names = list(dict.fromkeys(resources))
    workers = worker_count(workers, len(names))
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
        for result in pooled(asset, names, parms, kind, workers=workers, timeout=timeout):
            tick()
            yield result
    finally:
        if bar is not None:
            bar.close()


def worker_count(workers: int | None, granules: int) -> int:
    """Processes to run ``granules`` granules on: ``workers`` (None or 0: the CPU count), at most one
    per granule, at least one."""
    return max(1, min(workers or os.cpu_count() or 1, granules))


def check_time_limit(seconds: float | None, name: str = "timeout") -> None:
    """A per-granule time limit is None or a positive finite number of seconds.

    Raises
    ------
    ValueError
    """
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)
                                or not 0 < seconds < math.inf):
        raise ValueError(f"{name} must be a positive number of seconds, got {seconds!r}")


def pooled(asset: Asset, names: Iterable[str], parms: Parms, kind: str, *, workers: int,
           timeout: float | None = None, deadline: float | None = None, heartbeat_s: float | None = None,
           parts: bool = False, limit_name: str | None = None,
           context: multiprocessing.context.BaseContext | None = None,
           ) -> Iterator[GranuleResult | Part | pool.Expired | None]:
    """Granules in child processes of :func:`icesat2sr.pool.run` (one process per granule).

    Parameters
    ----------
    asset, names, parms, kind
        As for :func:`run_many`.
    workers : int
        Processes at a time.
    timeout : float, optional
        Seconds one granule may run; then its process is killed and it fails with
        ``ResourceError.TIMEOUT`` (``limit_name``, e.g. ``"node_timeout"``, names the limit).
    deadline, heartbeat_s
        As for :func:`icesat2sr.pool.run`.
    parts : bool
        Pass on each granule's non-empty parts as they are computed (:func:`granule_results`).
    limit_name : str, optional
        The limit ``timeout`` enforces, named in the TIMEOUT error.
    context : multiprocessing context, optional
        Default: :func:`pool_context`.

    Yields
    ------
    GranuleResult, Part, pool.Expired or None
        Each granule's result as it completes (a failed one when its process died or overran),
        its parts before it with ``parts``; ``Expired`` (last) when the deadline passed; ``None``
        every ``heartbeat_s`` while nothing comes.
    """
    tasks = ((name, (asset, name, parms, kind, parts)) for name in names)
    events = pool.run(granule_results, tasks, workers=workers, timeout=timeout, deadline=deadline,
                      heartbeat_s=heartbeat_s, context=context or pool_context())
    delivered: set[str] = set()
    try:
        for event in events:
            if isinstance(event, pool.Item):
                if isinstance(event.value, GranuleResult):
                    delivered.add(event.key)
                yield event.value
            elif isinstance(event, pool.End):
                if event.error is None:
                    continue
                if event.key in delivered:   # its result came before its process failed
                    log.warning("%s: %s after its result", event.key, event.error)
                    continue
                yield failure(event, kind, timeout, limit_name)
            else:
                yield event
    finally:
        events.close()


def granule_results(asset: Asset, name: str, parms: Parms, kind: str, parts: bool = False,
                    ) -> Iterator[GranuleResult | Part]:
    """One granule's work in a pool's child: its result; with ``parts``, its non-empty parts as they
    are computed, then a closing result without rows (its error if it failed). A bug becomes the
    granule's error."""
    try:
        if not parts:
            yield process_granule(asset, name, parms, kind)
            return
        for part in iter_granule(asset, name, parms, kind):
            if part.result.error is not None:
                yield part.result
                return
            if part.result.rows:
                yield part
    except Exception as exc:
        log.exception("processing %s failed", name)
        yield GranuleResult(name, kind, error=(ResourceError.ERROR, f"{name}: internal error: {exc!r}"))
        return
    yield GranuleResult(name, kind)


def failure(end: pool.End, kind: str, timeout: float | None, limit_name: str | None = None) -> GranuleResult:
    """The failed result of a granule whose process ended badly (:class:`icesat2sr.pool.End`): it
    died, or it ran past ``timeout`` (a TIMEOUT error; ``limit_name`` names the limit)."""
    if not end.timed_out:
        return GranuleResult(end.key, kind, error=(ResourceError.ERROR, f"{end.key}: {end.error}"))
    named = f" ({limit_name})" if limit_name else ""
    return GranuleResult(end.key, kind, error=(ResourceError.TIMEOUT, (
        f"{end.key}: processing took longer than {timeout:g} s{named} and was stopped (a corrupt granule?)")))


def pool_context() -> multiprocessing.context.BaseContext:
    """Granule processes fork from a clean, single-threaded forkserver with the science preloaded
    (h5coro uses threads: never fork a process that ran it), or are spawned where there is none."""
    return pool.process_context([__name__])


def _progress_bar(total: int):
    try:
        from tqdm import tqdm
    except ImportError:  # the Lambda layer has no tqdm; progress there is reported by the job
        return None
    return tqdm(total=total, unit="granule", desc="granules", leave=False)
