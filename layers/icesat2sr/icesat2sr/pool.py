"""Child processes that stream their results back, each within a time limit: the one process pool
of the CLI, the local server and the Lambdas.

:func:`run` calls ``target(*args)`` for each task in a child process of its own (at most
``workers`` at a time) and passes on every item the target yields as it comes, through a pipe per
child: a child whose reader is slow waits (memory stays bounded), and pipes need no ``/dev/shm``
(AWS Lambda has none, so queues, locks and pools built on them, such as pebble's, do not run
there). A task that runs longer than ``timeout`` has its process killed; one whose process dies
(killed for lack of memory, a crash) or raises ends with an error; the others go on. A
``deadline`` for all tasks ends the run, naming the tasks not done. Closing the generator kills
the running children at once. A fresh process per task also hands each task's memory back when
it ends.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import connection
from typing import Any

log = logging.getLogger(__name__)
EXIT_GRACE_S = 2.0   # a child that has sent its end gets this long to exit before it is killed


@dataclass
class Item:
    """A value a task's target yielded."""

    key: str
    value: Any


@dataclass
class End:
    """A task is over: ``error`` says why it failed (None: it finished); ``timed_out`` when it
    ran past the time limit and was stopped."""

    key: str
    error: str | None = None
    timed_out: bool = False


@dataclass
class Expired:
    """The run's deadline passed: ``keys`` were not done (the running ones were killed)."""

    keys: list[str]


@dataclass
class _Child:
    key: str
    process: Any
    started: float


def run(target: Callable[..., Iterable], tasks: Iterable[tuple[str, tuple]], *, workers: int = 1,
        timeout: float | None = None, deadline: float | None = None, heartbeat_s: float | None = None,
        context: multiprocessing.context.BaseContext | None = None) -> Iterator[Item | End | Expired | None]:
    """Run ``target(*args)`` for every ``(key, args)`` task in child processes.

    Parameters
    ----------
    target : callable
        A module-level function (children may be started by a fork server) returning an iterable;
        its items are pickled back.
    tasks : iterable of (str, tuple)
        Task keys (unique) and arguments, started in this order.
    workers : int
        Children at a time.
    timeout : float, optional
        Seconds one task may run; then its child is killed and it ends with ``timed_out``.
    deadline : float, optional
        Seconds all tasks may take; then the running children are killed, :class:`Expired` names
        what was not done and the run ends.
    heartbeat_s : float, optional
        Yield ``None`` this often while nothing else comes (a server checks its client then).
    context : multiprocessing context, optional
        How children start (default: the platform's).

    Yields
    ------
    Item, End, Expired or None
        Every task's items, then its :class:`End`, in the order they happen.

    Raises
    ------
    ValueError
        ``workers`` below 1.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    ctx = context or multiprocessing.get_context()
    todo = deque(tasks)
    running: dict[connection.Connection, _Child] = {}
    start = time.monotonic()
    end_of_run = math.inf if deadline is None else start + deadline
    try:
        while todo or running:
            while todo and len(running) < workers:
                key, args = todo.popleft()
                reader, writer = ctx.Pipe(duplex=False)
                process = ctx.Process(target=_child, args=(target, args, writer), daemon=True,
                                      name=f"icesat2sr {key}"[:64])
                process.start()
                writer.close()
                running[reader] = _Child(key, process, time.monotonic())
            now = time.monotonic()
            limits = [end_of_run - now, heartbeat_s if heartbeat_s is not None else math.inf]
            if timeout is not None:
                limits += [c.started + timeout - now for c in running.values()]
            wait_s = max(0.0, min(limits))
            ready = connection.wait(list(running), timeout=None if wait_s == math.inf else wait_s)
            for reader in ready:
                child = running[reader]
                try:
                    tag, value = reader.recv()
                except (EOFError, OSError):   # no end was sent: the process died
                    child.process.join(EXIT_GRACE_S)
                    _stop(running.pop(reader), reader)
                    yield End(child.key, f"the worker process died (exit code {child.process.exitcode}; "
                                         "out of memory?)")
                    continue
                if tag == "item":
                    yield Item(child.key, value)
                    continue
                child.process.join(EXIT_GRACE_S)
                _stop(running.pop(reader), reader)
                yield End(child.key, None if tag == "end" else f"internal error: {value}")
            now = time.monotonic()
            if timeout is not None:
                for reader, child in list(running.items()):
                    if now - child.started > timeout:
                        _stop(running.pop(reader), reader)
                        yield End(child.key, f"took longer than {timeout:g} s and was stopped", timed_out=True)
            if now >= end_of_run and (running or todo):
                keys = [c.key for c in running.values()] + [key for key, _ in todo]
                for reader in list(running):
                    _stop(running.pop(reader), reader)
                yield Expired(keys)
                return
            if not ready and heartbeat_s is not None:
                yield None
    finally:
        for reader in list(running):
            _stop(running.pop(reader), reader)


def process_context(preload: Sequence[str] = ()) -> multiprocessing.context.BaseContext:
    """Children forked from a clean, single-threaded fork server that imported ``preload`` first, or
    spawned where there is no fork server."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    return context


def start_early(context: multiprocessing.context.BaseContext) -> None:
    """Start the fork server of ``context`` now: it imports its preload while the caller goes on,
    instead of while the first child waits for it."""
    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def _stop(child: _Child, reader: connection.Connection) -> None:
    if child.process.is_alive():
        child.process.kill()
    child.process.join(5)
    reader.close()


def _child(target: Callable[..., Iterable], args: tuple, writer: connection.Connection) -> None:
    try:
        for value in target(*args):
            writer.send(("item", value))
        writer.send(("end", None))
    except BaseException as exc:   # reported as the task's error; the parent goes on
        log.exception("a child task failed")
        try:
            writer.send(("error", repr(exc)))
        except Exception:   # e.g. the reader is gone: nothing to tell
            pass
    finally:
        writer.close()


__all__ = ["End", "Expired", "Item", "run"]
