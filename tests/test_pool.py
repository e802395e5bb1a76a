"""The process pool (icesat2sr.pool): items streamed back as they come, a task that overruns,
dies or raises ends alone, a deadline names what was not done, closing kills the children."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from icesat2sr import pool
from icesat2sr.pool import End, Expired, Item


def count(n: int, pause: float = 0.0):
    for i in range(n):
        time.sleep(pause)
        yield i


def sleep_then(seconds: float, value: int):
    time.sleep(seconds)
    yield value


def die(code: int):
    yield "before"
    os._exit(code)


def fail():
    yield 1
    raise ValueError("bad value")


def pid_then_sleep():
    yield os.getpid()
    time.sleep(3600)


CONTEXTS = ["forkserver", "fork"]   # the CLI's and server's children; the Lambda's (no /dev/shm there)


@pytest.mark.parametrize("method", CONTEXTS)
def test_items_come_in_order_then_each_tasks_end(method):
    events = list(pool.run(count, [("a", (3,)), ("b", (2,)), ("c", (0,))], workers=2,
                           context=multiprocessing.get_context(method)))
    for key, n in (("a", 3), ("b", 2), ("c", 0)):
        mine = [e for e in events if getattr(e, "key", None) == key]
        assert mine == [*(Item(key, i) for i in range(n)), End(key)]


def test_items_are_passed_on_before_the_task_ends():
    started = time.monotonic()
    events = pool.run(count, [("slow", (3, 1.0))])
    first = next(events)
    assert first == Item("slow", 0) and time.monotonic() - started < 2.9   # not after the whole task
    events.close()


def test_an_overrunning_task_is_stopped_and_the_others_go_on():
    started = time.monotonic()
    events = list(pool.run(sleep_then, [("stuck", (3600, 0)), ("quick", (0.1, 7))], workers=1, timeout=1.5))
    assert time.monotonic() - started < 20
    assert End("stuck", "took longer than 1.5 s and was stopped", timed_out=True) in events
    assert [e for e in events if e.key == "quick"] == [Item("quick", 7), End("quick")]


@pytest.mark.parametrize("method", CONTEXTS)
def test_a_dying_or_raising_task_ends_with_an_error(method):
    events = list(pool.run(die, [("dies", (70,))], context=multiprocessing.get_context(method)))
    assert events == [Item("dies", "before"), End("dies", "the worker process died (exit code 70; out of memory?)")]
    events = list(pool.run(fail, [("raises", ())]))
    assert events == [Item("raises", 1), End("raises", "internal error: ValueError('bad value')")]


def test_the_deadline_names_what_was_not_done():
    started = time.monotonic()
    events = list(pool.run(sleep_then, [("a", (0.0, 1)), ("b", (3600, 2)), ("c", (0.0, 3))], workers=1,
                           deadline=2.0, heartbeat_s=0.2))
    assert time.monotonic() - started < 10
    assert events[:2] == [Item("a", 1), End("a")]
    assert events[-1] == Expired(["b", "c"]) and None in events   # heartbeats while waiting for b


def test_closing_the_run_kills_its_children():
    events = pool.run(pid_then_sleep, [("x", ())])
    pid = next(events).value
    events.close()
    with pytest.raises(ProcessLookupError):
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
