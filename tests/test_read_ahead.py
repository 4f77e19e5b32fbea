"""``read_ahead``: a decoder on its own thread, its errors and early stops seen by the caller."""

import threading
import time

import pytest

from marquee.ops.prefetch import read_ahead
from marquee.ops.video import VideoError, decode_frames
from marquee.synth.media import bundled_media_dir

CLIP = bundled_media_dir() / "clips" / "big_buck_bunny_excerpt.mp4"


def test_frames_arrive_in_order_and_all_of_them():
    plain = [(f.index, f.time_s) for f in decode_frames(CLIP)]
    ahead = [(f.index, f.time_s) for f in read_ahead(decode_frames(CLIP), depth=3)]
    assert ahead == plain and len(plain) > 100


def test_the_producer_runs_on_another_thread_and_stays_bounded():
    produced: list[int] = []
    threads: set[str] = set()

    def items():
        for i in range(50):
            threads.add(threading.current_thread().name)
            produced.append(i)
            yield i

    it = read_ahead(items(), depth=4)
    assert next(it) == 0
    time.sleep(0.2)
    assert len(produced) <= 1 + 4 + 1  # the one taken, a full queue, one waiting to be put
    assert threads == {"read-ahead"}
    assert list(it) == list(range(1, 50))


def test_an_error_in_the_producer_is_raised_in_the_caller_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise VideoError("film.mp4", "decode failed at frame 2")

    got = []
    with pytest.raises(VideoError, match=r"film\.mp4"):
        for x in read_ahead(items(), depth=8):
            got.append(x)
    assert got == [1, 2]


def test_stopping_early_stops_the_producer_and_closes_its_generator():
    closed = threading.Event()

    def items():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    it = read_ahead(items(), depth=2)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()
    assert closed.wait(2.0)
    assert not any(t.name == "read-ahead" and t.is_alive() for t in threading.enumerate())
