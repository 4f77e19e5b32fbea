"""Titles in object storage: the drop zone ``incoming/`` and the canonical ``titles/<id>/`` folders.

Layout (keys relative to the storage root):

- ``incoming/<name>.<ext>``: a video dropped by a user or another system (``marquee ingest`` puts
  files here), optionally ``incoming/<name>.trailer.<ext>`` and a sidecar ``incoming/<name>.json``
  (``{"title_id": ..., "metadata": {...}}``). A sidecar marks the group complete; a group without one
  is adopted once its sizes are unchanged between two looks (so a half-copied file is never taken).
- ``titles/<id>/source.<ext>``, ``titles/<id>/trailer.<ext>`` and ``titles/<id>/manifest.json``,
  written last, so a manifest always points at complete files.

Nothing replaces a title's good source unchecked: a new file is probed (it must be a readable video)
and hashed *before* anything in ``titles/<id>/`` is touched, identical bytes change nothing
("unchanged"), and different bytes under an existing id are refused unless the caller says
``replace`` (``marquee run|ingest --replace``, or ``"replace": true`` in an incoming sidecar).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from dataclasses import replace as replace_fields
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from marquee.ops.errors import MarqueeError, VideoError
from marquee.ops.titles import title_id_from_filename, validate_title_id
from marquee.ops.video import file_sha256, probe_video
from marquee.resources.storage import ObjectStore, StorageError

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".mov", ".mkv", ".m4v", ".avi", ".webm", ".mxf", ".ts", ".mts", ".mpg", ".mpeg", ".wmv", ".flv"}
)
INCOMING = "incoming"
TITLES = "titles"


class TitleNotFoundError(MarqueeError, KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class TitleConflictError(MarqueeError):
    """Different bytes for a title that already exists, without an explicit ``replace``."""


#: What an ingest did: a new title, nothing (same bytes), or a replaced source or trailer.
IngestStatus = Literal["new", "unchanged", "replaced", "trailer-added"]


@dataclass(frozen=True)
class TitleManifest:
    """What was ingested for a title; ``version`` changes whenever the source or trailer changes."""

    title_id: str
    source_key: str
    source_name: str
    source_size: int
    trailer_key: str | None = None
    trailer_name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    ingested_at: str = ""
    version: str = ""
    content_sha256: str = ""  # of the source; empty in manifests written before it was recorded
    trailer_sha256: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TitleManifest:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Ingested:
    """The manifest after an ingest, what the ingest did, and what it made stale (for people)."""

    manifest: TitleManifest
    status: IngestStatus
    stale: str = ""


@dataclass(frozen=True)
class IncomingTitle:
    """A group of files in ``incoming/`` that make one title."""

    title_id: str
    video_key: str
    trailer_key: str | None
    sidecar_key: str | None
    signature: str  # changes when any member changes
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.sidecar_key is not None

    @property
    def replace(self) -> bool:
        """The sidecar asks to replace an existing title's files (``marquee ingest --replace``)."""
        return bool(self.metadata.get("replace"))


def _ext(name: str) -> str:
    return PurePosixPath(name).suffix.lower()


def _version(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


class TitleRegistry:
    """Reads and writes titles in an ObjectStore (framework-free; used by the CLI, sensor and assets)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    # ---- canonical titles -------------------------------------------------------------------
    def manifest_key(self, title_id: str) -> str:
        return f"{TITLES}/{validate_title_id(title_id)}/manifest.json"

    def manifest(self, title_id: str) -> TitleManifest:
        key = self.manifest_key(title_id)
        try:  # one request, not an existence check and a read: `marquee titles` reads thousands
            data = self.store.read_bytes(key)
        except StorageError as exc:
            if not isinstance(exc.__cause__, FileNotFoundError):
                raise
            raise TitleNotFoundError(
                f"title {title_id!r} has not been ingested (no {self.store.url(key)}); "
                f"run `marquee ingest VIDEO --title {title_id}` or drop the video into {INCOMING}/"
            ) from None
        return TitleManifest.from_json(data.decode())

    def exists(self, title_id: str) -> bool:
        return self.store.exists(self.manifest_key(title_id))

    def titles(self) -> list[str]:
        ids = {k.split("/")[1] for k in self.store.list(TITLES) if k.endswith("/manifest.json")}
        return sorted(ids)

    def ingest_file(
        self,
        video: str | Path,
        *,
        title_id: str | None = None,
        trailer: str | Path | None = None,
        metadata: dict[str, Any] | None = None,
        replace: bool = False,
    ) -> TitleManifest:
        """Copy a local video (and trailer) into ``titles/<id>/``; see ``ingest``."""
        return self.ingest(
            video, title_id=title_id, trailer=trailer, metadata=metadata, replace=replace
        ).manifest

    def ingest(
        self,
        video: str | Path,
        *,
        title_id: str | None = None,
        trailer: str | Path | None = None,
        metadata: dict[str, Any] | None = None,
        replace: bool = False,
    ) -> Ingested:
        """Check, then copy a local video (and trailer) into ``titles/<id>/``, manifest last.

        Both files are probed and hashed where they are, before anything stored is touched, so a
        bad file (not a video, truncated, no video stream) fails naming the user's file and leaves
        an existing title exactly as it was. Identical bytes change nothing.
        """
        video = Path(video)
        tid = validate_title_id(title_id) if title_id is not None else title_id_from_filename(video.name)
        source_sha = _checked_sha(video)
        trailer = Path(trailer) if trailer is not None else None
        trailer_sha = _checked_sha(trailer) if trailer is not None else None
        previous = self._existing(tid)
        status, stale = _compare(tid, previous, source_sha, trailer_sha, replace, video.name)
        if status == "unchanged":
            assert previous is not None
            return Ingested(previous, status)
        source_key = f"{TITLES}/{tid}/source{_ext(video.name)}"
        if previous is None or previous.content_sha256 != source_sha or previous.source_key != source_key:
            self.store.put_file(video, source_key)
        trailer_key = None
        if trailer is not None:
            trailer_key = f"{TITLES}/{tid}/trailer{_ext(trailer.name)}"
            self.store.put_file(trailer, trailer_key)
        manifest = self._install(
            previous,
            TitleManifest(
                title_id=tid,
                source_key=source_key,
                source_name=video.name,
                source_size=video.stat().st_size,
                trailer_key=trailer_key,
                trailer_name=trailer.name if trailer is not None else None,
                metadata=dict(metadata or {}),
                content_sha256=source_sha,
                trailer_sha256=trailer_sha,
            ),
        )
        return Ingested(manifest, status, stale)

    def _install(self, previous: TitleManifest | None, new: TitleManifest) -> TitleManifest:
        """Write the manifest for files already in place (a title keeps its trailer when none came)."""
        if new.trailer_key is None and previous is not None and previous.trailer_key is not None:
            new = replace_fields(
                new,
                trailer_key=previous.trailer_key,
                trailer_name=previous.trailer_name,
                trailer_sha256=previous.trailer_sha256,
            )
        version = _version(new.content_sha256, new.trailer_sha256)
        return self._write_manifest(replace_fields(new, ingested_at=_now(), version=version))

    def _existing(self, title_id: str) -> TitleManifest | None:
        """The stored manifest, with the hashes filled in for manifests written before they were kept."""
        if not self.exists(title_id):
            return None
        m = self.manifest(title_id)
        if m.content_sha256 and (m.trailer_key is None or m.trailer_sha256):
            return m
        fill: dict[str, Any] = {}
        if not m.content_sha256 and self.store.exists(m.source_key):
            fill["content_sha256"] = self._stored_sha(m.source_key)
        if m.trailer_key and not m.trailer_sha256 and self.store.exists(m.trailer_key):
            fill["trailer_sha256"] = self._stored_sha(m.trailer_key)
        return TitleManifest(**(asdict(m) | fill))

    def _stored_sha(self, key: str) -> str:
        with self.store.open(key) as f:
            h = hashlib.sha256()
            while block := f.read(8 << 20):
                h.update(block)
        return h.hexdigest()

    def _write_manifest(self, manifest: TitleManifest) -> TitleManifest:
        for key in self.store.list(f"{TITLES}/{manifest.title_id}"):
            name = key.rsplit("/", 1)[-1]
            stale_source = name.startswith("source.") and key != manifest.source_key
            stale_trailer = name.startswith("trailer.") and key != manifest.trailer_key
            if stale_source or stale_trailer:
                self.store.delete(key)
        self.store.write_bytes(self.manifest_key(manifest.title_id), manifest.to_json().encode())
        return manifest

    @contextlib.contextmanager
    def local_file(self, key: str, scratch_dir: Path) -> Iterator[Path]:
        """A local path for a stored file: the file itself on local storage, else a scratch copy."""
        local = self.store.local_path_or_none(key)
        if local is not None:
            yield Path(local)
            return
        scratch_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(scratch_dir) / f"{_version(key, _now())}{_ext(key)}"
        try:
            self.store.get_file(key, tmp)
            yield tmp
        finally:
            tmp.unlink(missing_ok=True)

    # ---- the drop zone ----------------------------------------------------------------------
    def stage_incoming(
        self,
        video: str | Path,
        *,
        title_id: str | None = None,
        trailer: str | Path | None = None,
        metadata: dict[str, Any] | None = None,
        replace: bool = False,
    ) -> IncomingTitle | None:
        """Upload a video (and trailer) into ``incoming/`` for the sensor; the sidecar goes last.

        Checked as ``ingest`` checks, before anything is uploaded: a file that is not a readable
        video is refused naming it, different bytes for an existing title need ``replace``, and
        bytes the title already holds are not staged at all (None).
        """
        video = Path(video)
        tid = validate_title_id(title_id) if title_id is not None else title_id_from_filename(video.name)
        source_sha = _checked_sha(video)
        trailer = Path(trailer) if trailer is not None else None
        trailer_sha = _checked_sha(trailer) if trailer is not None else None
        status, _ = _compare(tid, self._existing(tid), source_sha, trailer_sha, replace, video.name)
        if status == "unchanged":
            return None
        video_key = f"{INCOMING}/{tid}{_ext(video.name)}"
        self.store.put_file(video, video_key)
        trailer_key = None
        if trailer is not None:
            trailer_key = f"{INCOMING}/{tid}.trailer{_ext(trailer.name)}"
            self.store.put_file(trailer, trailer_key)
        sidecar = {
            "title_id": tid,
            "source_name": video.name,
            "trailer_name": trailer.name if trailer is not None else None,
            "metadata": metadata or {},
            "replace": replace,
        }
        sidecar_key = f"{INCOMING}/{tid}.json"
        self.store.write_bytes(sidecar_key, json.dumps(sidecar, indent=2).encode())
        return next(t for t in self.scan_incoming() if t.video_key == video_key)

    def scan_incoming(self) -> list[IncomingTitle]:
        """Group the files in ``incoming/`` into titles. Files that are not videos, trailers or
        sidecars are ignored; a sidecar with a bad title id is reported by raising for that group
        only (the caller skips it and logs the error)."""
        keys = [k for k in self.store.list(INCOMING) if "/" not in k[len(INCOMING) + 1 :]]
        by_name = {k[len(INCOMING) + 1 :]: k for k in keys}
        found: list[IncomingTitle] = []
        for name, key in sorted(by_name.items()):
            ext = _ext(name)
            if ext not in VIDEO_EXTENSIONS or name[: -len(ext)].endswith(".trailer"):
                continue
            stem = name[: -len(ext)]
            trailer = next(
                (
                    by_name[n]
                    for n in by_name
                    if _ext(n) in VIDEO_EXTENSIONS and n[: -len(_ext(n))] == f"{stem}.trailer"
                ),
                None,
            )
            sidecar = by_name.get(f"{stem}.json")
            meta: dict[str, Any] = {}
            tid_raw: str | None = None
            if sidecar is not None:
                try:
                    doc = json.loads(self.store.read_bytes(sidecar))
                except (ValueError, UnicodeDecodeError):
                    doc = {}
                tid_raw = doc.get("title_id")
                meta = {k: v for k, v in doc.items() if k != "title_id"}
            try:
                tid = validate_title_id(tid_raw) if tid_raw else title_id_from_filename(name)
            except MarqueeError:
                continue  # the sensor reports unusable names via invalid_incoming()
            members = [k for k in (key, trailer, sidecar) if k is not None]
            sig = _version(*[(k, self.store.size(k)) for k in members])
            found.append(IncomingTitle(tid, key, trailer, sidecar, sig, meta))
        return found

    def invalid_incoming(self) -> list[tuple[str, str]]:
        """(key, reason) for videos in ``incoming/`` that cannot become a title."""
        bad: list[tuple[str, str]] = []
        good = {t.video_key for t in self.scan_incoming()}
        for key in self.store.list(INCOMING):
            name = key[len(INCOMING) + 1 :]
            ext = _ext(name)
            if ext in VIDEO_EXTENSIONS and not name[: -len(ext)].endswith(".trailer") and key not in good:
                bad.append((key, "cannot derive a valid title id from the file name or its sidecar"))
        return bad

    def pending(self, title_id: str) -> IncomingTitle | None:
        """The group waiting in ``incoming/`` for this title, if there is one."""
        return next((inc for inc in self.scan_incoming() if inc.title_id == title_id), None)

    def adopt(self, incoming: IncomingTitle, scratch_dir: Path) -> Ingested:
        """Check an incoming group, then move it into ``titles/<id>/`` (a rename locally, a server-side
        copy on S3). A bad file fails naming it and stays in ``incoming/``; the title is untouched."""
        tid = incoming.title_id
        source_sha = self._checked_stored_sha(incoming.video_key, scratch_dir)
        trailer_sha = (
            self._checked_stored_sha(incoming.trailer_key, scratch_dir) if incoming.trailer_key else None
        )
        previous = self._existing(tid)
        name = str(incoming.metadata.get("source_name") or incoming.video_key.rsplit("/", 1)[-1])
        status, stale = _compare(tid, previous, source_sha, trailer_sha, incoming.replace, name)
        members = [k for k in (incoming.video_key, incoming.trailer_key, incoming.sidecar_key) if k]
        if status == "unchanged":
            assert previous is not None
            for key in members:  # copies of what the title already holds
                self.store.delete(key)
            return Ingested(previous, status)
        source_key = f"{TITLES}/{tid}/source{_ext(incoming.video_key)}"
        size = self.store.size(incoming.video_key)
        _move(self.store, incoming.video_key, source_key)
        trailer_key = None
        if incoming.trailer_key is not None:
            trailer_key = f"{TITLES}/{tid}/trailer{_ext(incoming.trailer_key)}"
            _move(self.store, incoming.trailer_key, trailer_key)
        manifest = self._install(
            previous,
            TitleManifest(
                title_id=tid,
                source_key=source_key,
                source_name=name,
                source_size=size,
                trailer_key=trailer_key,
                trailer_name=incoming.metadata.get("trailer_name") if trailer_key else None,
                metadata=dict(incoming.metadata.get("metadata") or {}),
                content_sha256=source_sha,
                trailer_sha256=trailer_sha,
            ),
        )
        if incoming.sidecar_key is not None:
            self.store.delete(incoming.sidecar_key)
        return Ingested(manifest, status, stale)

    def _checked_stored_sha(self, key: str, scratch_dir: Path) -> str:
        with self.local_file(key, scratch_dir) as path:
            try:
                probe_video(path)
            except VideoError as exc:  # name the object, not a scratch copy
                raise VideoError(self.store.url(key), exc.reason) from exc
            return file_sha256(path)


def _checked_sha(path: Path) -> str:
    """The content hash of a local video, after checking that it is one (errors name ``path``)."""
    _check_local_video(path)
    probe_video(path)
    return file_sha256(path)


def _compare(
    tid: str,
    previous: TitleManifest | None,
    source_sha: str,
    trailer_sha: str | None,
    replace: bool,
    new_name: str,
) -> tuple[IngestStatus, str]:
    """What ingesting these bytes would do to the stored title; refuses a silent replacement."""
    if previous is None:
        return "new", ""
    how = 'pass --replace (or "replace": true in an incoming sidecar) to replace it'
    if previous.content_sha256 != source_sha:
        if not replace:
            raise TitleConflictError(
                f"title {tid!r} already holds a different video ({previous.source_name}, ingested "
                f"{previous.ingested_at}); {how} with {new_name}, or choose another --title"
            )
        return "replaced", "the source changed: every asset of the title is stale until re-materialised"
    if trailer_sha is None or trailer_sha == previous.trailer_sha256:
        return "unchanged", ""
    if previous.trailer_key is None:
        return "trailer-added", "trailer, trailer_matches and everything after them are stale"
    if not replace:
        raise TitleConflictError(
            f"title {tid!r} already has a different trailer ({previous.trailer_name}); {how}"
        )
    return "replaced", "the trailer changed: trailer, trailer_matches and everything after them are stale"


def _check_local_video(path: Path) -> None:
    if not path.exists():
        raise VideoError(str(path), "file not found")
    if not path.is_file():
        raise VideoError(str(path), "not a regular file")
    if path.stat().st_size == 0:
        raise VideoError(str(path), "file is empty (0 bytes)")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _move(store: ObjectStore, src: str, dst: str) -> None:
    """Rename within the store: atomic on a local filesystem, copy-then-delete on S3."""
    if store.is_local:  # a local rename needs the destination folder; object stores have none
        Path(store.path(dst)).parent.mkdir(parents=True, exist_ok=True)
    store.fs.mv(store.path(src), store.path(dst))
