"""Marquee: turn full-length titles into thumbnail candidates and trailer moments.

Layout: ``orchestration`` (Dagster definitions, jobs, sensors, CLI) -> ``assets`` (thin Dagster
assets, one module per stage) -> ``ops`` (framework-free CV/ML) and ``resources`` (storage, warehouse,
models). Dependencies point only that way; ``ops`` never imports Dagster.
"""

__version__ = "0.1.0"
