"""IdleTimeCalls: model calls in a pass's idle time, finished (and never stalled) by the caller."""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

from marquee.ops.background import IdleTimeCalls, _Call, lower_priority

NAME = "test-idle"


class Gate:
    """A predict function whose background-thread calls can be held, as a starved thread would be."""

    def __init__(self, hold: bool) -> None:
        self.hold = hold
        self.entered = threading.Event()
        self.release = threading.Event()
        self.threads: list[str] = []

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.threads.append(threading.current_thread().name)
        if threading.current_thread().name == NAME:
            self.entered.set()
            if self.hold:
                self.release.wait(10)
        return x.reshape(len(x), -1).sum(1), x[:, 0].copy()


def _inputs(k: int, n: int = 2, shape: tuple[int, ...] = (3, 4)) -> np.ndarray:
    return np.arange(n * int(np.prod(shape)), dtype=np.int64).reshape(n, *shape) + 1000 * k


def _check(answers: list, calls: list[tuple[str, np.ndarray]]) -> None:
    assert [tag for tag, _ in answers] == [tag for tag, _ in calls]  # submission order
    for (_, (sums, firsts)), (_, x) in zip(answers, calls, strict=True):
        np.testing.assert_array_equal(sums, x.reshape(len(x), -1).sum(1))
        np.testing.assert_array_equal(firsts, x[:, 0])


def _submit_three(idle: IdleTimeCalls[str]) -> list[tuple[str, np.ndarray]]:
    """Two calls of one shape and one of another, submitted in order."""
    calls = [("a", _inputs(0)), ("b", _inputs(1)), ("c", _inputs(2, shape=(5,)))]
    for tag, x in calls:
        idle.submit(x, tag)
    return calls


def test_a_starved_background_thread_never_holds_up_finish() -> None:
    gate = Gate(hold=True)
    idle: IdleTimeCalls[str] = IdleTimeCalls(gate, name=NAME, background=True)
    calls = _submit_three(idle)
    assert gate.entered.wait(5)  # the thread has taken "a" and is stuck in it
    started = time.perf_counter()
    answers = idle.finish()
    assert time.perf_counter() - started < 5  # not waiting for the 10-s hold
    _check(answers, calls)
    assert idle.ran_at_finish == 3 and idle.ran_in_background == 0
    gate.release.set()
    idle._thread.join(5)  # type: ignore[union-attr]
    assert not idle._thread.is_alive()  # type: ignore[union-attr]
    assert idle.ran_in_background == 0  # its late answer did not replace the one given


def test_calls_the_background_thread_finished_are_not_run_again() -> None:
    gate = Gate(hold=False)
    idle: IdleTimeCalls[str] = IdleTimeCalls(gate, name=NAME, background=True)
    calls = [("a", _inputs(0)), ("b", _inputs(1))]
    for tag, x in calls:
        idle.submit(x, tag)
    deadline = time.perf_counter() + 10
    while idle.ran_in_background < 2 and time.perf_counter() < deadline:
        time.sleep(0.01)
    answers = idle.finish()
    _check(answers, calls)
    assert idle.ran_in_background == 2 and idle.ran_at_finish == 0
    assert gate.threads == [NAME, NAME]


def test_finish_waits_only_for_a_call_more_than_half_done() -> None:
    idle: IdleTimeCalls[str] = IdleTimeCalls(Gate(hold=False), name=NAME, background=True)
    call = _Call(_inputs(0, n=4), "a")
    assert not idle._half_done(call)  # pace unknown: compute it at finish
    idle._seconds_per_input = 0.5  # the thread needs 2 s for 4 inputs
    call.started = time.perf_counter() - 0.5
    assert not idle._half_done(call)
    call.started = time.perf_counter() - 1.5
    assert idle._half_done(call)
    assert 0.9 < idle._patience(call) <= 1.0  # twice the 0.5 s left


def test_submit_after_finish_is_refused() -> None:
    idle: IdleTimeCalls[str] = IdleTimeCalls(Gate(hold=False), name=NAME, background=True)
    assert idle.finish() == []
    with pytest.raises(RuntimeError, match="after finish"):
        idle.submit(_inputs(0), "late")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority is Linux-only")
def test_lower_priority_changes_only_the_calling_thread() -> None:
    seen: dict[str, int] = {}

    def worker() -> None:
        lower_priority()
        tid = threading.get_native_id()
        seen["policy"] = os.sched_getscheduler(tid)
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, tid)

    before = os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    t = threading.Thread(target=worker)
    t.start()
    t.join(5)
    assert seen["policy"] == os.SCHED_IDLE or seen["nice"] == 19
    assert (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())) == before


def test_without_background_every_call_waits_for_finish() -> None:
    gate = Gate(hold=False)
    idle: IdleTimeCalls[str] = IdleTimeCalls(gate, name=NAME, background=False)
    calls = _submit_three(idle)
    time.sleep(0.05)
    assert gate.threads == [] and idle._thread is None  # nothing ran before finish
    _check(idle.finish(), calls)
    assert idle.ran_at_finish == 3 and gate.threads == ["MainThread", "MainThread"]  # one call per shape
