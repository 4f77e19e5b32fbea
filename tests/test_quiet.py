"""MediaPipe's start-up chatter is filtered from the console; everything else printed meanwhile is kept."""

from __future__ import annotations

import os

import numpy as np

from marquee.ops.quiet import native_stderr_filtered

NOISE = (
    b"AttributeError: 'MessageFactory' object has no attribute 'GetPrototype'\n"
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    b"W0000 00:00:1796156762.368259    6105 inference_feedback_manager.cc:114] Feedback manager requires\n"
)


def test_known_noise_is_dropped_and_other_lines_are_replayed(capfd):
    with native_stderr_filtered():
        os.write(2, NOISE)  # written by "native code", below Python's sys.stderr
        os.write(2, b"E1201 something real went wrong in a calculator\n")
    err = capfd.readouterr().err
    assert err == "E1201 something real went wrong in a calculator\n"


def test_lines_of_a_failing_block_are_kept_and_the_error_propagates(capfd):
    try:
        with native_stderr_filtered():
            os.write(2, b"a native error message\n")
            raise RuntimeError("boom")
    except RuntimeError as exc:
        assert str(exc) == "boom"
    assert capfd.readouterr().err == "a native error message\n"


def test_facemesh_starts_and_infers_without_console_noise(capfd):
    from marquee.ops.expressions.signals import FaceMeshLandmarker

    landmarker = FaceMeshLandmarker()
    landmarker.landmarks(np.zeros((120, 120, 3), np.uint8), np.array([30, 30, 90, 90]))
    landmarker.close()
    assert capfd.readouterr().err == ""
