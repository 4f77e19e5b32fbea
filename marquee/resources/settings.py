"""Where Marquee keeps things, from the environment, with embedded defaults for a laptop.

- ``MARQUEE_HOME``: the folder for embedded defaults (default ``./marquee-home`` in the working
  directory): ``lake/`` (object storage), ``catalog.duckdb`` (DuckDB views), ``dagster/`` (Dagster's
  SQLite instance), ``tmp/`` (scratch space for decodes).
- ``MARQUEE_STORAGE``: object storage root URL overriding ``$MARQUEE_HOME/lake``, e.g.
  ``s3://bucket/prefix``.
- ``MARQUEE_S3_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL``): an S3 API endpoint such as MinIO.
- ``MARQUEE_CATALOG``: the DuckDB catalog file overriding ``$MARQUEE_HOME/catalog.duckdb``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    storage_url: str
    catalog_path: Path
    s3_endpoint_url: str | None

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def scratch_dir(self) -> Path:
        return self.home / "tmp"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("MARQUEE_HOME") or Path.cwd() / "marquee-home").expanduser().resolve()
        storage = env.get("MARQUEE_STORAGE") or str(home / "lake")
        catalog = Path(env.get("MARQUEE_CATALOG") or home / "catalog.duckdb").expanduser().resolve()
        endpoint = env.get("MARQUEE_S3_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL") or None
        return cls(home=home, storage_url=storage, catalog_path=catalog, s3_endpoint_url=endpoint)
