"""Marquee: turn full-length titles into thumbnail candidates and trailer moments.

Layout: ``orchestration`` (Dagster definitions, jobs, sensors, CLI) -> ``assets`` (thin Dagster
assets, one module per stage) -> ``ops`` (framework-free CV/ML) and ``resources`` (storage, warehouse,
models). Dependencies point only that way; ``ops`` never imports Dagster.
"""

__version__ = "0.1.0"

import os as _os

# Torch's OpenMP threads spin while they wait for work. Marquee's steps share the cores with video
# decoder threads, prefetch threads and often other titles' runs, and spinning threads then steal the
# cores the work needs: MobileNetV2 took 210 ms a frame instead of 30 with one other busy process on
# this 2-core machine (26 ms with waiting threads that sleep). Must be set before torch loads OpenMP;
# a user's own setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
