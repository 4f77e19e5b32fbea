"""Synthetic test material made from real footage, with exact ground truth.

``marquee.synth.edits`` cuts pieces of real clips (or procedural footage when none is installed) and
joins them with known hard cuts, dissolves and fades, so benchmarks and tests get videos whose every
shot boundary is known to the frame; ``marquee demo`` gets one made only of the media bundled with the
package (``marquee.synth.media``). Framework-free: numpy, PyAV and OpenCV only.
"""

from marquee.synth.edits import (
    EditSpec,
    Segment,
    Truth,
    available_sources,
    load_truth,
    make_demo_title,
    random_edit,
    random_edit_for_duration,
    render,
)

__all__ = [
    "EditSpec",
    "Segment",
    "Truth",
    "available_sources",
    "load_truth",
    "make_demo_title",
    "random_edit",
    "random_edit_for_duration",
    "render",
]
