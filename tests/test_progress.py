"""Progress bars: stages report (done, total); terminals get a bar redrawn in place, files a line per
quarter; asset log lines in the one message format come back as the same bar under ``marquee run``."""

from __future__ import annotations

import io
import logging

from marquee.ops.progress import (
    TerminalBar,
    TerminalBars,
    parse_progress_message,
    progress_message,
    throttled,
)
from marquee.orchestration.logs import _Console


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_messages_round_trip_and_other_lines_are_not_progress():
    assert parse_progress_message(progress_message("decoding", 120, 5000, "frames")) == (
        "decoding",
        120,
        5000,
        "frames",
    )
    assert parse_progress_message(progress_message("faces", 3, 0, "keyframes")) == (
        "faces",
        3,
        0,
        "keyframes",
    )
    assert parse_progress_message("film: 12 faces in 40 keyframes, 3 tracks (2.0s)") is None
    assert parse_progress_message("waiting for run cli-123: 4/5 done") is None


def test_a_bar_in_a_file_writes_a_line_per_quarter_then_the_total():
    out = io.StringIO()
    bar = TerminalBar("shots", "frames", stream=out)
    for i in range(1, 101):
        bar(i, 100)
    bar.close()
    bar.close()  # once only
    lines = out.getvalue().splitlines()
    assert [line.split("]")[1].split()[0] for line in lines[:-1]] == ["25%", "50%", "75%"]
    assert lines[-1].startswith("shots: 100 frames in ") and lines[-1].endswith(" s")
    assert "\r" not in out.getvalue()


def test_a_bar_on_a_terminal_redraws_one_line_and_ends_it():
    out = Tty()
    bar = TerminalBar("faces", "keyframes", stream=out, fps=1e9)
    for i in range(1, 11):
        bar(i, 10)
    bar.close()
    text = out.getvalue()
    assert text.count("\r") == 11 and text.count("\n") == 1 and text.endswith("\n")
    assert "[########################] 100% 10/10 keyframes" in text
    assert text.rstrip().split("\r")[-1].startswith("faces: 10 keyframes in ")


def test_an_unknown_total_counts_without_a_bar():
    bar = TerminalBar("decoding", "frames", stream=io.StringIO())
    assert bar.line(42, 0) == "decoding 42 frames"


def test_the_rate_is_measured_from_the_first_report(monkeypatch):
    """A bar drawn from log lines may first hear of a stage at frame 500: no absurd rate."""
    import marquee.ops.progress as progress

    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    bar = TerminalBar("decoding", "frames", stream=io.StringIO())
    bar(500, 1000)
    assert "/s" not in bar.line(500, 1000)
    now[0] += 2.0
    bar(600, 1000)
    assert "(50.0/s, 0:08 left)" in bar.line(600, 1000)


def test_throttled_reports_at_most_once_per_interval_and_always_the_last():
    seen: list[tuple[int, int]] = []
    report = throttled(lambda d, t: seen.append((d, t)), every_s=3600)
    for i in range(1, 1001):
        report(i, 1000)
    assert seen == [(1, 1000), (1000, 1000)]


def test_bars_of_stages_follow_each_other():
    out = io.StringIO()
    with TerminalBars(stream=out) as bars:
        first = bars("shots", "frames")
        first(10, 10)
        second = bars("faces", "keyframes")  # closes the first
        second(4, 4)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("shots: 10 frames in ") and lines[-1].startswith("faces: 4 keyframes in ")


def test_a_failed_stage_ends_its_bar_without_a_total_line():
    out = Tty()
    try:
        with TerminalBars(stream=out) as bars:
            bars("shots", "frames")(3, 10)
            raise ValueError("bad file")
    except ValueError:
        pass
    assert out.getvalue().endswith("\n") and " in " not in out.getvalue().splitlines()[-1]
    quiet = io.StringIO()
    try:
        with TerminalBars(stream=quiet) as bars:
            bars("shots", "frames")
            raise ValueError("bad file")
    except ValueError:
        pass
    assert quiet.getvalue() == ""


def _record(step: str, message: str) -> logging.LogRecord:
    record = logging.LogRecord("marquee_cli", logging.INFO, __file__, 1, message, None, None)
    record.__dict__["dagster_meta"] = {"step_key": step, "orig_message": message, "dagster_event": None}
    return record


def test_the_run_console_draws_asset_progress_as_a_bar_and_keeps_other_lines(capsys):
    console = _Console({})
    for done in (1, 50, 100):
        console.emit(_record("faces", progress_message("faces", done, 100, "keyframes")))
    console.emit(_record("faces", progress_message("decoding", 7, 0, "frames")))
    console.emit(_record("faces", "film: 12 faces in 100 keyframes"))  # ends the bars' lines first
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "  faces: film: 12 faces in 100 keyframes"
    assert any(line.startswith("  faces [") and "50%" in line for line in err)  # the quarter line
    assert any(line.startswith("  faces: 100 keyframes in ") for line in err)
    assert any(line.startswith("  faces: decoding: 7 frames in ") for line in err)
    assert not any("1/100" in line for line in err)  # no raw progress lines
