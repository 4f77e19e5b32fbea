"""The ``marquee run`` logger: a line a person can read per step on the terminal, everything in a file.

Dagster's console logger prints each event, and a failed step as a ~140-line traceback, before the
one useful sentence. Under ``marquee run`` this logger takes its place: the terminal gets the assets'
own progress messages, one line per finished step and one line per failed step (the step, the
user's file, the reason); the full log, tracebacks included, goes to a file the CLI names. Runs
started from the UI keep Dagster's console logger and the event log.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from dagster import Field, InitLoggerContext, Permissive, colored_console_logger, logger

from marquee.ops.progress import TerminalBar, parse_progress_message

CLI_LOGGER = "marquee_cli"


def failure_reason(step_failure_data: Any) -> str:
    """The sentence a step failed with: a Failure's description, else the error's first line."""
    user = getattr(step_failure_data, "user_failure_data", None)
    if user is not None and user.description:
        return str(user.description).strip()
    err = step_failure_data.error
    while (
        err is not None and err.cause is not None and err.cls_name in ("DagsterExecutionStepExecutionError",)
    ):
        err = err.cause
    if err is None:
        return "unknown error"
    first = (err.message or "").strip().splitlines()
    return first[0] if first else err.cls_name or "unknown error"


class _Console(logging.Handler):
    """Terminal lines: progress bars, the assets' messages, finished steps, failures (with the
    user's file named)."""

    def __init__(self, replacements: dict[str, str]) -> None:
        super().__init__(logging.DEBUG)  # step events come at DEBUG; emit() picks what to show
        self.replacements = replacements
        self.bars: dict[tuple[str, str], TerminalBar] = {}

    def _progress(self, step: str, text: str) -> bool:
        """Draw a ``progress_message`` as a bar (one per step and label); False for other text."""
        parsed = parse_progress_message(text)
        if parsed is None:
            return False
        label, done, total, unit = parsed
        bar = self.bars.get((step, label))
        if bar is None:
            name = step if label == step else f"{step}: {label}"
            bar = self.bars[(step, label)] = TerminalBar(f"  {name}", unit)
        bar(done, total)
        return True

    def _close_bars(self, step: str, failed: bool = False) -> None:
        for key in [k for k in self.bars if k[0] == step]:
            self.bars.pop(key).close(failed)

    def _say(self, text: str) -> None:
        for old, new in self.replacements.items():
            text = text.replace(old, new)
        print(text, file=sys.stderr, flush=True)

    def emit(self, record: logging.LogRecord) -> None:
        meta = record.__dict__.get("dagster_meta") or {}
        event = meta.get("dagster_event")
        step = meta.get("step_key") or ""
        if event is None:
            lines = str(meta.get("orig_message", record.getMessage())).strip().splitlines()
            if record.levelno >= logging.INFO and lines and not self._progress(step, lines[0]):
                self._close_bars(step)  # a bar's line ends before the message is printed
                self._say(f"  {step}: {lines[0]}" if step else f"  {lines[0]}")
            return
        kind = event.event_type_value
        if kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_UP_FOR_RETRY"):
            self._close_bars(step, failed=kind != "STEP_SUCCESS")
        if kind == "STEP_SUCCESS":
            seconds = event.event_specific_data.duration_ms / 1000
            self._say(f"  {step}: done in {seconds:.1f} s")
        elif kind == "STEP_FAILURE":
            self._say(f"  {step}: FAILED: {failure_reason(event.event_specific_data)}")
        elif kind == "STEP_UP_FOR_RETRY":
            data = event.event_specific_data
            cause = data.error.message.strip().splitlines()[0] if data.error and data.error.message else "?"
            self._say(f"  {step}: failed, retrying ({cause})")


class _File(logging.Handler):
    """Every record, with the full error (traceback and causes) of failed steps."""

    def __init__(self, path: str) -> None:
        super().__init__(logging.DEBUG)
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the logger
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.file.write(self.format(record) + "\n")
        event = (record.__dict__.get("dagster_meta") or {}).get("dagster_event")
        if event is not None and event.event_type_value in ("STEP_FAILURE", "STEP_UP_FOR_RETRY"):
            error = getattr(event.event_specific_data, "error", None)
            if error is not None:
                self.file.write(error.to_string() + "\n")
        self.file.flush()


@logger(
    config_schema={
        "log_file": Field(str, description="Where the full log goes."),
        "replace": Field(Permissive(), default_value={}, description="Text to replace in terminal lines."),
    },
    description="Concise terminal lines for `marquee run`, the full log in a file.",
)
def marquee_cli_logger(init_context: InitLoggerContext) -> logging.Logger:
    log = logging.Logger(CLI_LOGGER, level=logging.DEBUG)
    log.addHandler(_Console(dict(init_context.logger_config["replace"])))
    log.addHandler(_File(init_context.logger_config["log_file"]))
    return log


#: Loggers of the code location: Dagster's console logger (the default for UI runs) and ours.
LOGGERS = {"console": colored_console_logger, CLI_LOGGER: marquee_cli_logger}
