"""Preview clips: exactly the asked span, with sound when the source has it, clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from videos import write_video

from marquee.ops.clips import ClipSpan, clip_frame_count, write_clip
from marquee.ops.errors import VideoError


def test_a_clip_holds_the_frames_of_its_span_and_the_sound(tmp_path: Path):
    src = tmp_path / "film.mp4"
    write_video(src, [40, 40], fps=25, audio=True)
    out = write_clip(src, ClipSpan(1.2, 2.4), tmp_path / "clip.mp4", max_width=128)
    assert clip_frame_count(out) == 30  # frames 30..59 at 25 fps
    with av.open(str(out)) as c:
        kinds = {s.type for s in c.streams}
        assert kinds == {"video", "audio"}
        assert c.streams.video[0].codec_context.width == 128


def test_a_span_past_the_end_is_cut_short_and_an_empty_one_names_the_file(tmp_path: Path):
    src = tmp_path / "film.mp4"
    write_video(src, [25], fps=25)
    out = write_clip(src, ClipSpan(0.6, 5.0), tmp_path / "tail.mp4")
    assert clip_frame_count(out) == 10
    with pytest.raises(VideoError, match=r"film\.mp4.*no frame between"):
        write_clip(src, ClipSpan(3.0, 4.0), tmp_path / "none.mp4")
    assert not (tmp_path / "none.mp4").exists()
    with pytest.raises(VideoError, match=r"missing\.mp4"):
        write_clip(tmp_path / "missing.mp4", ClipSpan(0, 1), tmp_path / "x.mp4")
