"""The Dagster resource that hands assets their object storage, DuckDB warehouse and title registry.

A thin configurable wrapper: the framework-free classes (``ObjectStore``, ``Warehouse``,
``TitleRegistry``) do the work, so they are testable without Dagster and usable from the CLI.
"""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from marquee.resources.models import ModelStore
from marquee.resources.settings import Settings
from marquee.resources.storage import ObjectStore
from marquee.resources.titles import TitleRegistry
from marquee.resources.warehouse import Warehouse


class LakeResource(ConfigurableResource):
    """Object storage root, DuckDB catalog and a local scratch folder for decodes."""

    storage_url: str
    catalog_path: str
    scratch_dir: str
    s3_endpoint_url: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> LakeResource:
        s = settings or Settings.from_env()
        return cls(
            storage_url=s.storage_url,
            catalog_path=str(s.catalog_path),
            scratch_dir=str(s.scratch_dir),
            s3_endpoint_url=s.s3_endpoint_url,
        )

    def store(self) -> ObjectStore:
        return ObjectStore(self.storage_url, s3_endpoint_url=self.s3_endpoint_url)

    def warehouse(self) -> Warehouse:
        return Warehouse(self.store(), Path(self.catalog_path))

    def titles(self) -> TitleRegistry:
        return TitleRegistry(self.store())

    def models(self) -> ModelStore:
        """Model checkpoints placed under ``models/`` in object storage, as local files."""
        return ModelStore(self.store(), self.scratch() / "model-cache")

    def scratch(self) -> Path:
        p = Path(self.scratch_dir)
        p.mkdir(parents=True, exist_ok=True)
        return p
