"""Keep native libraries' start-up chatter off the user's console, without losing anything else.

MediaPipe prints, from C++ and at the file-descriptor level (so Python's ``sys.stderr`` and
``logging`` cannot filter it), lines a user can do nothing about: protobuf's ``'MessageFactory'
object has no attribute 'GetPrototype'`` at import, TensorFlow Lite's XNNPACK notice, and absl's
``W0000 ...`` warnings as its graph starts. ``native_stderr_filtered`` sends file descriptor 2 (and
Python's ``sys.stderr``) to a temporary file for a short block and then writes back every line that
is not one of those known lines, so a real error printed in the block still reaches the console
(after the block, not lost).
"""

from __future__ import annotations

import io
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Lines known to be noise: printed by MediaPipe/TFLite/absl on every start, never actionable.
NOISE = re.compile(
    r"^(AttributeError: 'MessageFactory' object has no attribute 'GetPrototype'"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]0000 00:00:\d+\.\d+ +\d+ (inference_feedback_manager|landmark_projection_calculator|gl_context)"
    r"[^\]]*\].*)$"
)
_LOCK = threading.RLock()


@contextmanager
def native_stderr_filtered() -> Iterator[None]:
    """Run the block with fd 2 captured; replay what it printed, minus the known noise lines."""
    with _LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no usable fd 2 (an embedded interpreter): nothing to filter
            yield
            return
        python_err, sys.stderr = sys.stderr, io.StringIO()  # Python-level prints (PyErr_Print) too
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            try:
                yield
            finally:
                printed, sys.stderr = sys.stderr.getvalue(), python_err
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                printed += capture.read().decode(errors="replace")
                kept = [line for line in printed.splitlines(True) if not NOISE.match(line.rstrip("\n"))]
                if kept:
                    sys.stderr.write("".join(kept))
                    sys.stderr.flush()
