"""Load the next few items on worker threads while the caller works on the current one.

Reading a keyframe from object storage and decoding its JPEG release the GIL, so a couple of threads
hide that latency behind the face detector; ``depth`` bounds how many pictures wait in memory.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def prefetched(
    items: Iterable[T], load: Callable[[T], R], *, depth: int = 8, threads: int = 2
) -> Iterator[R]:
    """``load(item)`` for each item, in order, with up to ``depth`` loads running ahead."""
    pending: deque[Future[R]] = deque()
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="prefetch") as pool:
        try:
            for item in items:
                pending.append(pool.submit(load, item))
                if len(pending) >= depth:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def read_ahead(items: Iterator[T], *, depth: int = 8) -> Iterator[T]:
    """Iterate ``items`` on a worker thread, up to ``depth`` items ahead of the caller.

    For a decoder: FFmpeg decodes (without the GIL) while the caller analyses the previous frames,
    instead of the two taking turns. An exception in ``items`` is raised in the caller at the point it
    happened; when the caller stops early, the worker stops at its next item and ``items`` is closed.
    """
    done = object()
    slots: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
            else:
                slots.put((done, None))
        except BaseException as exc:  # handed to the caller, raised there
            slots.put((done, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = slots.get()
            if item is done:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a worker waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)
