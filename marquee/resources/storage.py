"""Object storage behind one fsspec root URL: a local folder by default, S3 (or MinIO) through s3fs.

Everything Marquee keeps outside the DuckDB catalog lives here under stable keys (``titles/...``,
``tables/...``, ``media/...``, ``models/...``), so moving from a laptop to a bucket is a change of URL.

Writes are atomic: a reader (or a crashed run) sees either the previous object or the new one, never
a half-written file. On a local folder the bytes go to a staging file on the same filesystem and are
``os.replace``-d into place; on S3 a PUT (single or multipart) only becomes visible when complete.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import IO, Any

import fsspec

from marquee.ops.errors import MarqueeError

#: Staging area for atomic local writes; never listed, never a key.
STAGING = ".staging"


class StorageError(MarqueeError):
    """An object storage operation failed; the message names the URL."""


#: Why a write or delete failed, and what to do about it, for the OS errors a user can act on.
_WHY = {
    errno.EROFS: "the storage is read-only (point MARQUEE_STORAGE at a writable folder or bucket)",
    errno.ENOSPC: "no space left on the device holding it (free space or point MARQUEE_STORAGE elsewhere)",
    errno.EDQUOT: "the disk quota is used up (free space or point MARQUEE_STORAGE elsewhere)",
    errno.EACCES: "permission denied (give this user write access there or point MARQUEE_STORAGE elsewhere)",
    errno.EPERM: "permission denied (give this user write access there or point MARQUEE_STORAGE elsewhere)",
    # os.makedirs under a path that cannot hold folders (/proc, a file, a vanished mount):
    errno.ENOENT: "its folder does not exist and cannot be created (point MARQUEE_STORAGE elsewhere)",
}


def _cannot(url: str, action: str, exc: OSError) -> StorageError:
    """One sentence for an OS error met while changing ``url``: what failed, why, what to do.

    A raw ``OSError`` (``[Errno 30] Read-only file system: '/lake/.staging'``) names a staging file
    the user never asked about and says nothing of the setting that chose the folder.
    """
    why = _WHY.get(exc.errno) if exc.errno is not None else None
    if why is None:
        why = exc.strerror or str(exc) or type(exc).__name__
        if exc.filename and str(exc.filename) not in why:
            why = f"{why} ({exc.filename})"
    return StorageError(f"{url}: cannot {action}: {why}")


@contextmanager
def _changing(url: str, action: str = "write") -> Iterator[None]:
    """Raise any ``OSError`` of the block as a ``StorageError`` about ``url`` (see ``_cannot``)."""
    try:
        yield
    except OSError as exc:
        raise _cannot(url, action, exc) from exc


class ObjectStore:
    """Keys (``a/b/c.ext``, always ``/``-separated, relative to the root) on one fsspec filesystem."""

    def __init__(
        self,
        root_url: str,
        *,
        s3_endpoint_url: str | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        protocol, _, rest = root_url.partition("://")
        if not rest:  # a plain path
            protocol, rest = "file", root_url
        self.protocol = "s3" if protocol in ("s3", "s3a") else protocol
        options = dict(storage_options or {})
        if self.protocol == "file":
            self.root = str(Path(rest).expanduser().resolve())
            self.fs = fsspec.filesystem("file")
        elif self.protocol == "s3":
            if s3_endpoint_url:
                options.setdefault("endpoint_url", s3_endpoint_url)
            # Other processes write the same bucket: never answer from a stale listing.
            options.setdefault("use_listings_cache", False)
            options.setdefault("skip_instance_cache", True)
            self.root = rest.strip("/")
            self.fs = fsspec.filesystem("s3", **options)
        else:
            self.root = rest.rstrip("/")
            self.fs = fsspec.filesystem(self.protocol, **options)
        self.root_url = root_url
        self.s3_endpoint_url = s3_endpoint_url

    def __repr__(self) -> str:
        return f"ObjectStore({self.url('')!r})"

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    # -- naming -----------------------------------------------------------------------------------

    def path(self, key: str) -> str:
        """The filesystem path of ``key`` (no protocol), as fsspec methods take it."""
        key = _clean_key(key)
        return f"{self.root}/{key}" if key else self.root

    def url(self, key: str) -> str:
        """A full URL for messages and metadata: a local path, or ``s3://bucket/prefix/key``."""
        p = self.path(key)
        return p if self.is_local else f"{self.protocol}://{p}"

    def local_path_or_none(self, key: str) -> Path | None:
        """The local file of ``key`` when the store is a local folder and the key exists."""
        if not self.is_local:
            return None
        p = Path(self.path(key))
        return p if p.is_file() else None

    # -- reading ----------------------------------------------------------------------------------

    @contextmanager
    def _reading(self, key: str) -> Iterator[None]:
        """Raise a failed read of ``key`` as one StorageError sentence: a missing object, or a store
        that cannot be reached or read (a refused connection, bad credentials), never a raw
        botocore/aiohttp traceback."""
        try:
            yield
        except FileNotFoundError as exc:
            raise StorageError(f"{self.url(key)}: no such object") from exc
        except StorageError:
            raise
        except Exception as exc:
            raise _unreadable(self, key, exc) from exc

    def exists(self, key: str) -> bool:
        with self._reading(key):
            return bool(self.fs.exists(self.path(key)))

    def size(self, key: str) -> int:
        with self._reading(key):
            return int(self.fs.size(self.path(key)))

    def read_bytes(self, key: str) -> bytes:
        with self._reading(key):
            return self.fs.cat_file(self.path(key))

    def open(self, key: str, mode: str = "rb") -> IO[bytes]:
        """Open for reading (writes go through ``write_bytes``/``put_file``, which are atomic)."""
        if "r" not in mode:
            raise ValueError("ObjectStore.open is read-only; use write_bytes/put_file/writer")
        with self._reading(key):
            return self.fs.open(self.path(key), mode)

    def get_file(self, key: str, local: str | Path) -> Path:
        """Copy an object to a local file (streamed), returning its path."""
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        with self._reading(key):
            self.fs.get_file(self.path(key), str(local))
        return local

    def list(self, prefix: str = "") -> list[str]:
        """Every object key under ``prefix`` (recursive), sorted; staging files are never listed."""
        prefix = _clean_key(prefix)
        base = self.path(prefix)
        if self.is_local:
            keys = []
            if os.path.isfile(base):
                return [prefix]
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = [d for d in dirnames if d != STAGING]
                rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
                for f in filenames:
                    keys.append(f if rel == "." else f"{rel}/{f}")
            return sorted(keys)
        try:
            with self._reading(prefix):
                found = self.fs.find(base)
        except StorageError as exc:
            if isinstance(exc.__cause__, FileNotFoundError):
                return []
            raise
        n = len(self.root) + 1
        return sorted(p[n:] for p in found if f"/{STAGING}/" not in p)

    # -- writing ----------------------------------------------------------------------------------

    def write_bytes(self, key: str, data: bytes) -> None:
        """Atomically create or replace ``key`` with ``data``."""
        with self.writer(key) as f:
            f.write(data)

    def put_file(self, local: str | Path, key: str) -> None:
        """Atomically upload a local file to ``key`` (streamed, never read whole into memory)."""
        local = Path(local)
        if not local.is_file():
            raise StorageError(f"{local}: no such file to store as {self.url(key)}")
        if self.is_local:
            dst = Path(self.path(key))
            tmp = self._staging_path(key)
            try:
                try:
                    shutil.copyfile(local, tmp)
                except OSError as exc:
                    if exc.errno in (errno.EACCES, errno.EPERM) and exc.filename == str(local):
                        raise StorageError(
                            f"{local}: cannot read it to store as {self.url(key)}: permission denied"
                        ) from exc
                    raise _cannot(self.url(key), "write", exc) from exc
                with _changing(self.url(key)):
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, dst)
            finally:
                with suppress(OSError):  # never hide the real error; staging files are never listed
                    tmp.unlink(missing_ok=True)
            return
        try:
            self.fs.put_file(str(local), self.path(key))
        except OSError as exc:
            if exc.errno in _WHY:
                raise _cannot(self.url(key), "write", exc) from exc
            raise StorageError(f"{self.url(key)}: upload of {local} failed: {exc}") from exc
        except Exception as exc:
            raise StorageError(f"{self.url(key)}: upload of {local} failed: {exc}") from exc

    @contextmanager
    def writer(self, key: str) -> Iterator[IO[bytes]]:
        """A binary file to write ``key`` through; it appears only if the block exits cleanly."""
        if self.is_local:
            url, dst = self.url(key), Path(self.path(key))
            tmp = self._staging_path(key)
            try:
                with ExitStack() as opened:
                    with _changing(url):  # its own errors, told apart from the block's below
                        f = opened.enter_context(open(tmp, "wb"))
                    try:
                        yield f
                    except BaseException as exc:
                        with suppress(OSError):  # flushing the rest would only fail again
                            f.close()
                        # The block's own errors pass through, except a full disk: that is this file.
                        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                            raise _cannot(url, "write", exc) from exc
                        raise
                    with _changing(url):
                        f.close()  # flushes the buffer: a full disk may only show here
                with _changing(url):
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, dst)
            finally:
                with suppress(OSError):  # never hide the real error; staging files are never listed
                    tmp.unlink(missing_ok=True)
            return
        f = self.fs.open(self.path(key), "wb", autocommit=False)
        try:
            yield f
        except BaseException:
            f.discard()
            f.closed = True  # discarded: nothing may be flushed when the object is collected
            raise
        try:
            f.close()
            f.commit()
        except Exception as exc:
            if isinstance(exc, OSError) and exc.errno in _WHY:
                raise _cannot(self.url(key), "write", exc) from exc
            raise StorageError(f"{self.url(key)}: write failed: {exc}") from exc

    def delete(self, key: str) -> None:
        """Delete one object; deleting a missing key is not an error."""
        with _changing(self.url(key), "delete"), suppress(FileNotFoundError):
            self.fs.rm_file(self.path(key))

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under ``prefix`` (a "folder")."""
        prefix = _clean_key(prefix)
        if not prefix:
            raise ValueError("refusing to delete the whole store")
        if self.is_local:
            # What is already gone is fine (another process may be deleting too); anything else, a
            # read-only folder say, must not pass silently as if the objects were deleted.
            with _changing(self.url(prefix), "delete"):
                _rmtree_existing(self.path(prefix))
            return
        keys = [self.path(k) for k in self.list(prefix)]
        if keys:
            with _changing(self.url(prefix), "delete"):
                self.fs.rm(keys)

    def children(self, prefix: str) -> list[str]:
        """Names directly under ``prefix`` (objects and "folders"), sorted; one listing call, not a
        recursive walk, so it stays cheap beside a folder of many thousands of files."""
        base = self.path(prefix)
        if self.is_local:
            try:
                return sorted(n for n in os.listdir(base) if n != STAGING)
            except (FileNotFoundError, NotADirectoryError):
                return []
        try:
            with self._reading(prefix):
                found = self.fs.ls(base, detail=False)
        except StorageError as exc:
            if isinstance(exc.__cause__, FileNotFoundError):
                return []
            raise
        return sorted({p.rstrip("/").rsplit("/", 1)[-1] for p in found} - {STAGING})

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Create ``key`` with ``data`` only if it does not exist; True if this call created it.

        Of any number of concurrent callers exactly one gets True, and the object is complete when
        it appears: on a local folder the bytes are staged and hard-linked into place (``link``
        fails when the name exists); on S3 it is a PUT with ``If-None-Match: *`` (conditional writes:
        AWS S3 since 2024, and moto, which the tests use; a server that ignores the header makes this
        a plain PUT, so check yours). Leases (``marquee.resources.leases``) are built on it.
        """
        if self.is_local:
            dst = Path(self.path(key))
            tmp = self._staging_path(key)
            try:
                with _changing(self.url(key)):
                    tmp.write_bytes(data)
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    os.link(tmp, dst)
                return True
            except StorageError as exc:
                if isinstance(exc.__cause__, FileExistsError):
                    return False
                raise
            finally:
                tmp.unlink(missing_ok=True)
        try:
            self.fs.pipe_file(self.path(key), data, mode="create")
        except FileExistsError:
            return False
        except Exception as exc:
            if _precondition_failed(exc):
                return False
            raise StorageError(f"{self.url(key)}: conditional create failed: {exc}") from exc
        return True

    def _staging_path(self, key: str = STAGING) -> Path:
        """A fresh staging file name; errors creating the staging folder name ``key``'s URL."""
        staging = Path(self.root) / STAGING
        with _changing(self.url(key)):
            staging.mkdir(parents=True, exist_ok=True)
        return staging / f"{uuid.uuid4().hex}.part"


def _rmtree_existing(path: str) -> None:
    """``shutil.rmtree`` that ignores files and folders already gone and raises every other error."""

    def on_error(exc: BaseException) -> None:
        if not isinstance(exc, FileNotFoundError):
            raise exc

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=lambda _func, _path, exc: on_error(exc))
    else:
        shutil.rmtree(path, onerror=lambda _func, _path, info: on_error(info[1]))


def _clean_key(key: str) -> str:
    key = key.strip("/")
    if any(part in ("..", ".") for part in key.split("/")) or "\\" in key:
        raise ValueError(f"unsafe object key {key!r}")
    return key


def _unreadable(store: ObjectStore, key: str, exc: BaseException) -> StorageError:
    """One sentence for a read that failed for another reason than a missing object."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, OSError) and exc.errno in _WHY:
        return StorageError(f"{store.url(key)}: cannot read: {_WHY[exc.errno].split(' (')[0]}")
    where = f" at {store.s3_endpoint_url}" if store.s3_endpoint_url else ""
    hint = (
        "check MARQUEE_STORAGE, MARQUEE_S3_ENDPOINT_URL and the AWS_* credentials"
        if not store.is_local
        else "check MARQUEE_STORAGE"
    )
    return StorageError(f"{store.url(key)}: cannot reach the object storage{where} ({first}); {hint}")


def _precondition_failed(exc: BaseException) -> bool:
    """An S3 error saying a conditional write lost (412 PreconditionFailed, or 409 on a racing PUT).

    The whole cause chain is read: s3fs turns SeaweedFS's and MinIO's ``PreconditionFailed`` into a
    bare ``OSError(EINVAL, message)`` whose botocore ``ClientError`` is only its ``__cause__``.
    """
    seen: BaseException | None = exc
    while seen is not None:
        code = getattr(seen, "response", {}).get("Error", {}).get("Code", "")
        text = f"{type(seen).__name__} {code} {seen}"
        if any(s in text for s in ("PreconditionFailed", "412", "ConditionalRequestConflict")):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
