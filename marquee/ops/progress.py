"""Progress of long steps (decoding a film, detecting faces on thousands of keyframes), for people.

Stages report through a plain callback, ``progress(done, total)`` (``ProgressFn``; ``total`` 0 when
unknown), so they stay free of any console or framework. Who called them decides where it goes:

- the plain-file commands draw a ``TerminalBar`` on stderr (redrawn in place on a terminal, a line
  per quarter when stderr is a file or a pipe), so JSON on stdout stays clean;
- the Dagster assets log a ``progress_message`` now and then, which the ``marquee run`` console turns
  back into the same bar (``parse_progress_message``) and the UI shows as a log line.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

ProgressFn = Callable[[int, int], None]

_MESSAGE = re.compile(r"^progress: (?P<label>.+?) (?P<done>\d+)/(?P<total>\d+|\?) (?P<unit>[a-z]+)$")


def progress_message(label: str, done: int, total: int, unit: str) -> str:
    """``"progress: <label> <done>/<total> <unit>"``: the log line format ``parse_progress_message`` reads."""
    return f"progress: {label} {done}/{total or '?'} {unit}"


def parse_progress_message(text: str) -> tuple[str, int, int, str] | None:
    """``(label, done, total, unit)`` of a ``progress_message`` line, else None."""
    m = _MESSAGE.match(text.strip())
    if m is None:
        return None
    total = 0 if m["total"] == "?" else int(m["total"])
    return m["label"], int(m["done"]), total, m["unit"]


def throttled(report: ProgressFn, every_s: float) -> ProgressFn:
    """``report`` at most once per ``every_s`` seconds, and always for the last item."""
    last = [float("-inf")]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= every_s or (total and done >= total):
            last[0] = now
            report(done, total)

    return progress


def _clock(seconds: float) -> str:
    h, rest = divmod(max(0, round(seconds)), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


@dataclass
class TerminalBar:
    """A progress bar for one stage on ``stream`` (stderr by default); call it as a ``ProgressFn``.

    On a terminal it redraws one line in place (at most ``fps`` times a second) with the rate and the
    time left; elsewhere it writes a plain line at each quarter, so logs stay short. ``close`` ends
    the line once, with the total time.
    """

    label: str
    unit: str = "frames"
    stream: TextIO | None = None
    width: int = 24
    fps: float = 8.0
    _started: float = field(default_factory=time.monotonic, init=False)
    _drawn: float = field(default=float("-inf"), init=False)
    _quarter: int = field(default=0, init=False)
    _last: tuple[int, int] = field(default=(0, 0), init=False)
    #: (time, done) of the first report: the rate is measured from it (a bar drawn from log lines
    #: may first hear of a stage part-way through)
    _first: tuple[float, int] | None = field(default=None, init=False)
    _open: bool = field(default=False, init=False)
    _closed: bool = field(default=False, init=False)

    @property
    def out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stderr

    @property
    def interactive(self) -> bool:
        isatty = getattr(self.out, "isatty", None)
        return bool(isatty and isatty())

    def __call__(self, done: int, total: int) -> None:
        self._last = (done, total)
        if self._first is None:
            self._first = (time.monotonic(), done)
        if self.interactive:
            now = time.monotonic()
            if now - self._drawn >= 1.0 / self.fps or (total and done >= total):
                self._drawn = now
                self.out.write("\r" + self.line(done, total) + "\x1b[K")
                self.out.flush()
                self._open = True
        elif total:
            quarter = min(4, 4 * done // total)
            if self._quarter < quarter < 4:
                self._quarter = quarter
                print(self.line(done, total), file=self.out, flush=True)

    def line(self, done: int, total: int) -> str:
        t0, d0 = self._first or (self._started, 0)
        elapsed = time.monotonic() - t0
        rate = (done - d0) / elapsed if elapsed > 0.05 and done > d0 else 0.0
        if total:
            share = min(1.0, done / total)
            filled = int(share * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            left = (total - done) / rate if rate > 0 else 0.0
            eta = f", {_clock(left)} left" if done < total and rate > 0 else ""
            speed = f" ({rate:.1f}/s{eta})" if rate > 0 else ""
            return f"{self.label} [{bar}] {share:4.0%} {done}/{total} {self.unit}{speed}"
        return f"{self.label} {done} {self.unit}" + (f" ({rate:.1f}/s)" if rate > 0 else "")

    def close(self, failed: bool = False) -> None:
        """End the bar: one final line with the count and the time taken; when the stage ``failed``,
        only end the line drawn so far (the error says the rest)."""
        if self._closed:
            return
        self._closed = True
        if failed:
            if self._open:
                self.out.write("\n")
                self.out.flush()
            return
        done, total = self._last
        elapsed = time.monotonic() - self._started
        count = f"{done}/{total}" if total and total != done else f"{done}"
        text = f"{self.label}: {count} {self.unit} in {elapsed:.1f} s"
        if self._open:
            self.out.write("\r" + text + "\x1b[K\n")
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def __enter__(self) -> TerminalBar:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(failed=exc_type is not None)


#: Makes the progress callback of one stage from its label and unit (``"faces", "keyframes"``).
ProgressFactory = Callable[[str, str], ProgressFn]


def no_progress(label: str, unit: str) -> ProgressFn:
    """A ``ProgressFactory`` that reports nothing."""
    return lambda done, total: None


class TerminalBars:
    """A ``ProgressFactory`` drawing one ``TerminalBar`` per stage, one after the other: a new stage
    closes the previous stage's bar; ``close`` (or leaving the ``with`` block) closes the last."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.current: TerminalBar | None = None

    def __call__(self, label: str, unit: str) -> ProgressFn:
        self.close()
        self.current = TerminalBar(label, unit, stream=self.stream)
        return self.current

    def close(self, failed: bool = False) -> None:
        if self.current is not None:
            self.current.close(failed)
            self.current = None

    def __enter__(self) -> TerminalBars:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(failed=exc_type is not None)
