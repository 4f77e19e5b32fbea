"""Managing title partitions in a Dagster instance (the definition lives with the assets)."""

from __future__ import annotations

from collections.abc import Iterable

from dagster import DagsterInstance

from marquee.assets.partitions import TITLES_PARTITIONS_NAME, titles_partitions
from marquee.ops.titles import validate_title_id

__all__ = ["TITLES_PARTITIONS_NAME", "known_titles", "register_titles", "titles_partitions"]


def register_titles(instance: DagsterInstance, title_ids: Iterable[str]) -> list[str]:
    """Add validated title ids as partitions; returns the ones that were new."""
    ids = [validate_title_id(t) for t in title_ids]
    existing = set(instance.get_dynamic_partitions(TITLES_PARTITIONS_NAME))
    new = [t for t in dict.fromkeys(ids) if t not in existing]
    if new:
        instance.add_dynamic_partitions(TITLES_PARTITIONS_NAME, new)
    return new


def known_titles(instance: DagsterInstance) -> list[str]:
    return sorted(instance.get_dynamic_partitions(TITLES_PARTITIONS_NAME))
