"""Fold every asset's upstream code versions into its own, so a model update reaches all it feeds.

Dagster marks an asset stale when *its* code version changes, and its children only once it has been
re-materialised with new data. A shot-detector update should instead show, right away, that shots
*and everything built on them* (keyframes, faces, reports, ...) are out of date for every title, so
that a user sees the whole blast radius before launching a backfill. Here each asset's code version
becomes ``own|up:<hash of all upstream code versions>``; changing any one model changes the code
version of every asset downstream of it, and nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from dagster import AssetKey, AssetsDefinition

#: Separates an asset's own code version from the hash of its ancestors' (``own|up:<hash>``).
UPSTREAM = "|up:"


def own_code_version(code_version: str | None) -> str:
    """An asset's own code version, without the upstream hash folded in here."""
    return (code_version or "").partition(UPSTREAM)[0]


def folds_upstream(code_version: str | None) -> bool:
    """Whether a code version has its ancestors' folded in (so it changes when any of theirs does)."""
    return UPSTREAM in (code_version or "")


def with_upstream_code_versions(assets: Sequence[AssetsDefinition]) -> list[AssetsDefinition]:
    own: dict[AssetKey, str] = {}
    parents: dict[AssetKey, set[AssetKey]] = {}
    for a in assets:
        for spec in a.specs:
            own[spec.key] = spec.code_version or ""
            parents[spec.key] = {d.asset_key for d in spec.deps}
    memo: dict[AssetKey, frozenset[AssetKey]] = {}

    def ancestors(key: AssetKey, path: frozenset[AssetKey] = frozenset()) -> frozenset[AssetKey]:
        if key not in memo:
            found: set[AssetKey] = set()
            for p in parents.get(key, ()):
                if p in own and p not in path:
                    found |= {p} | ancestors(p, path | {key})
            memo[key] = frozenset(found)
        return memo[key]

    def lineage(key: AssetKey) -> str | None:
        ups = sorted(ancestors(key), key=lambda k: k.to_user_string())
        if not ups:
            return own[key] or None
        blob = "\n".join(f"{k.to_user_string()}={own[k]}" for k in ups).encode()
        return f"{own[key]}{UPSTREAM}{hashlib.sha256(blob).hexdigest()[:10]}"

    return [a.map_asset_specs(lambda s: s.replace_attributes(code_version=lineage(s.key))) for a in assets]
