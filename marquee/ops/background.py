"""Model calls that run in the idle time of a decode pass, and are finished by the caller at its end.

A streaming pass knows early which windows a model must score but needs the answers only at the end.
Running those calls on a normal thread beside the pass makes the two fight over the cores (on a
2-core machine the pass slowed by a third and each call by as much). Here the calls run on one
background thread at idle scheduling priority (Linux ``SCHED_IDLE``, else ``nice 19``; elsewhere a
plain thread): it only gets a core when the pass's own threads leave one idle, which they do while
waiting on frame-threaded decoding, and the pass keeps its speed. Even on 2 cores that beat leaving
every call to the end (``bench/shots.py`` files, model warm, medians of 3 interleaved runs: 14.8 s
against 15.6 s pooled), and a plain worker thread (the music video: 2.4-2.9 s against 3.0-3.2 s).

At ``finish`` the caller runs, batched and with all of torch's threads, every call the background
thread has not started, and also those it is less than half way through at its pace so far (any, when
it has finished none yet): on a busy machine an idle-priority thread can be starved indefinitely, and
one batched call on every core beats waiting for it. Only a call that is more than half done is
awaited, for twice what is left of it, and computed here after all if that runs out. The first
answer for a call wins; a duplicate still running in the background is simply let finish.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

Result = TypeVar("Result")
#: predict(batch of inputs stacked on axis 0) -> a tuple of arrays, each with the batch on axis 0.
Predict = Callable[[np.ndarray], tuple[np.ndarray, ...]]


@dataclass(eq=False)  # calls are compared by identity
class _Call(Generic[Result]):
    inputs: np.ndarray
    tag: Result
    result: tuple[np.ndarray, ...] | None = None
    started: float | None = None  # when the background thread took it (perf_counter)
    done: threading.Event = field(default_factory=threading.Event)


class IdleTimeCalls(Generic[Result]):
    """Queue model calls (``submit``) to run in idle CPU time; ``finish`` returns every answer.

    ``setup`` runs once on the background thread before any call (e.g. one torch thread for it).
    Answers come back in submission order as ``(tag, outputs)``.
    """

    def __init__(
        self,
        predict: Predict,
        setup: Callable[[], None] | None = None,
        name: str = "idle-calls",
        background: bool = True,
    ):
        self._predict = predict
        self.background = background  # False: every call waits for ``finish``
        self._setup = setup
        self._name = name
        self._calls: list[_Call[Result]] = []
        self._queue: deque[_Call[Result]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._seconds_per_input: float | None = None  # the background thread's pace, once known
        self.ran_in_background = 0
        self.ran_at_finish = 0

    def submit(self, inputs: np.ndarray, tag: Result) -> None:
        call = _Call(inputs, tag)
        with self._cond:
            if self._closed:
                raise RuntimeError("IdleTimeCalls: submit after finish")
            self._calls.append(call)
            self._queue.append(call)
            self._cond.notify()
        if self._thread is None and self.background:
            # Not a daemon: a call still running when the interpreter exits (one ``finish`` computed
            # again itself) is let finish, not torn down inside torch.
            self._thread = threading.Thread(target=self._work, name=self._name, daemon=False)
            self._thread.start()

    def finish(self) -> list[tuple[Result, tuple[np.ndarray, ...]]]:
        with self._cond:
            self._closed = True
            left = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        # Calls the background thread has not started, and those it started but is less than half
        # way through (at its pace so far, or any when it has finished none), run here: batched, on
        # every core, which beats waiting for one starved thread.
        busy = [c for c in self._calls if not c.done.is_set() and c not in left]
        here = left + [c for c in busy if not self._half_done(c)]
        shapes: dict[tuple[int, ...], list[_Call[Result]]] = {}
        for c in here:
            shapes.setdefault(c.inputs.shape[1:], []).append(c)
        for same in shapes.values():
            outputs = self._predict(np.concatenate([c.inputs for c in same]))
            at = 0
            for c in same:
                k = len(c.inputs)
                self._settle(c, tuple(o[at : at + k] for o in outputs), background=False)
                at += k
        for c in self._calls:
            if not c.done.wait(self._patience(c)):
                self._settle(c, self._predict(c.inputs), background=False)  # starved after all
        answers = [(c.tag, c.result) for c in self._calls]
        self._calls = []
        return answers  # type: ignore[return-value]

    def _settle(self, call: _Call[Result], result: tuple[np.ndarray, ...], *, background: bool) -> None:
        """The first answer for a call wins (a call may be computed twice when the thread is slow)."""
        with self._cond:
            if call.result is None:
                call.result = result
                if background:
                    self.ran_in_background += 1
                else:
                    self.ran_at_finish += 1
        call.done.set()

    def _expected(self, call: _Call[Result]) -> tuple[float, float] | None:
        """(seconds the background thread has spent on the call, seconds it needs in all), when known."""
        if self._seconds_per_input is None or call.started is None:
            return None
        return time.perf_counter() - call.started, self._seconds_per_input * len(call.inputs)

    def _half_done(self, call: _Call[Result]) -> bool:
        known = self._expected(call)
        return known is not None and known[0] >= 0.5 * known[1]

    def _patience(self, call: _Call[Result]) -> float:
        """How long to wait for a call in progress: twice what is left of it at the background
        thread's pace so far (a short while when that is not known)."""
        known = self._expected(call)
        return 0.05 if known is None else max(0.05, 2.0 * (known[1] - known[0]))

    def _work(self) -> None:
        lower_priority()
        if self._setup is not None:
            self._setup()
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                call = self._queue.popleft()
                call.started = time.perf_counter()
            result = self._predict(call.inputs)
            took = time.perf_counter() - call.started
            with self._cond:
                self._seconds_per_input = took / max(1, len(call.inputs))
            self._settle(call, result, background=True)


def lower_priority() -> None:
    """Give the calling thread idle scheduling priority, where the OS allows it per thread (Linux)."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere setpriority would lower the whole process
    tid = threading.get_native_id()
    try:
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, tid, 19)
