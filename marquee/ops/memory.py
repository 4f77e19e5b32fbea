"""Give a long-lived worker's freed memory back to the operating system between steps.

Runs execute their steps in one process (``MARQUEE_EXECUTOR=in_process``), and one process may run
many titles. Each step builds and drops big temporaries (decoded pictures, Arrow tables turned into
Python rows, model activations). CPython frees them, but glibc's allocator keeps the freed pages of
its heaps and arenas mapped for reuse, so the resident size only ratchets up from step to step and
from title to title, and a later step's peak stands on the earlier steps' high-water marks.
``release_memory`` collects cyclic garbage and asks glibc to return free pages (``malloc_trim``);
elsewhere (macOS, musl) only the collection runs.

Within a step the same ratchet shows on a long title: glibc raises its mmap threshold each time a big
block is freed (up to 32 MB), after which the model activations of every batch (MTCNN's pyramid,
MobileNetV2's feature maps: a few MB each, in ever-changing sizes) are carved out of the heap, which
fragments and never shrinks. MTCNN alone over the 466 keyframes of a 10-minute film grew from 0.86 to
1.32 GB. ``tune_allocator`` fixes the threshold at 1 MB, so blocks that big are always their own
mappings and go back to the OS when freed: the same loop then stays at 0.83 GB throughout.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from functools import cache

#: glibc's ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Blocks at least this big are mapped on their own and unmapped when freed (see the module docstring).
MMAP_THRESHOLD = 1 << 20


@cache
def _libc():  # -> ctypes.CDLL | None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


@cache
def tune_allocator() -> bool:
    """Fix glibc's mmap threshold (``MMAP_THRESHOLD``) for this process, so memory freed by a step's big
    temporaries is returned instead of fragmenting the heap; True where that took (glibc). Idempotent;
    a user's own ``MALLOC_MMAP_THRESHOLD_`` wins."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    return ok and libc.mallopt(_M_TRIM_THRESHOLD, 4 * MMAP_THRESHOLD) == 1


@cache
def _malloc_trim():  # -> Callable[[int], int] | None
    return getattr(_libc(), "malloc_trim", None)


def release_memory() -> bool:
    """Collect garbage and return the allocator's free pages to the OS; True when pages were trimmed
    (glibc only)."""
    gc.collect()
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
