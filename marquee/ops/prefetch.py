"""Load the next few items on worker threads while the caller works on the current one.

Reading a keyframe from object storage and decoding its JPEG release the GIL, so a couple of threads
hide that latency behind the face detector; ``depth`` bounds how many pictures wait in memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

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
