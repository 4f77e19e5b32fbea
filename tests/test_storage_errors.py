"""Read-only, full and forbidden storage: one StorageError sentence naming the URL, and the previous
object intact.

Tests run as root, where ``chmod 0o555`` does not stop a write, and a small full filesystem needs a
mount; so the OS calls the store makes are replaced by ones failing with the errno the kernel gives.
"""

from __future__ import annotations

import errno
import io
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marquee.resources import storage
from marquee.resources.storage import STAGING, ObjectStore, StorageError
from marquee.resources.warehouse import Warehouse

WHY = {
    errno.EROFS: "the storage is read-only (point MARQUEE_STORAGE at a writable folder or bucket)",
    errno.ENOSPC: "no space left on the device holding it (free space or point MARQUEE_STORAGE elsewhere)",
    errno.EACCES: "permission denied (give this user write access there or point MARQUEE_STORAGE elsewhere)",
}
ERRNOS = pytest.mark.parametrize("code", sorted(WHY), ids=[errno.errorcode[c] for c in sorted(WHY)])


def _failing(code: int):
    """A stand-in for an OS call that fails the way the kernel does (``[Errno N] ...: 'path'``)."""

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(args[-1]) if args else None)

    return fail


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    s = ObjectStore(str(tmp_path / "lake"))
    s.write_bytes("media/a.txt", b"good")
    return s


def _intact(store: ObjectStore) -> None:
    assert store.read_bytes("media/a.txt") == b"good"
    assert store.list() == ["media/a.txt"]
    assert not list((Path(store.root) / STAGING).iterdir())  # no staging debris left behind


@ERRNOS
def test_write_bytes_that_cannot_be_moved_into_place(store: ObjectStore, monkeypatch, code: int):
    monkeypatch.setattr(storage.os, "replace", _failing(code))
    with pytest.raises(StorageError) as err:
        store.write_bytes("media/a.txt", b"new")
    assert str(err.value) == f"{store.url('media/a.txt')}: cannot write: {WHY[code]}"
    monkeypatch.undo()
    _intact(store)


@ERRNOS
def test_put_file_that_cannot_be_copied_to_staging(
    store: ObjectStore, tmp_path: Path, monkeypatch, code: int
):
    src = tmp_path / "new.txt"
    src.write_bytes(b"new")
    monkeypatch.setattr(storage.shutil, "copyfile", _failing(code))
    with pytest.raises(StorageError) as err:
        store.put_file(src, "media/a.txt")
    assert str(err.value) == f"{store.url('media/a.txt')}: cannot write: {WHY[code]}"
    monkeypatch.undo()
    _intact(store)


@ERRNOS
def test_put_file_that_cannot_be_moved_into_place(store: ObjectStore, tmp_path: Path, monkeypatch, code: int):
    src = tmp_path / "new.txt"
    src.write_bytes(b"new")
    monkeypatch.setattr(storage.os, "replace", _failing(code))
    with pytest.raises(StorageError) as err:
        store.put_file(src, "media/a.txt")
    assert str(err.value) == f"{store.url('media/a.txt')}: cannot write: {WHY[code]}"
    monkeypatch.undo()
    _intact(store)


def test_an_unreadable_source_file_is_named_as_the_source(store: ObjectStore, tmp_path: Path, monkeypatch):
    src = tmp_path / "new.txt"
    src.write_bytes(b"new")

    def unreadable(source, target):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(source))

    monkeypatch.setattr(storage.shutil, "copyfile", unreadable)
    with pytest.raises(StorageError) as err:
        store.put_file(src, "media/a.txt")
    assert (
        str(err.value) == f"{src}: cannot read it to store as {store.url('media/a.txt')}: permission denied"
    )
    monkeypatch.undo()
    _intact(store)


@ERRNOS
def test_a_staging_folder_that_cannot_be_made(tmp_path: Path, monkeypatch, code: int):
    store = ObjectStore(str(tmp_path / "lake"))
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args, **kwargs):
        if self.name == STAGING:
            raise OSError(code, os.strerror(code), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(StorageError) as err:
        store.write_bytes("media/b.txt", b"new")
    assert str(err.value) == f"{store.url('media/b.txt')}: cannot write: {WHY[code]}"  # the key, not .staging
    monkeypatch.undo()
    assert store.list() == []


class _FullDisk(io.RawIOBase):
    """A file on a device with no space left: every write fails with ENOSPC, as the kernel's does."""

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("size", [10, 1 << 20], ids=["fails-on-close", "fails-on-write"])
def test_a_full_disk_while_writing(store: ObjectStore, monkeypatch, size: int):
    """A small write fills Python's buffer and only fails when it is flushed at close; a big one fails
    in ``write`` itself, inside the caller's block."""
    real_open = open

    def open_full(path, mode="r", *args, **kwargs):
        if STAGING in str(path) and "w" in mode:
            real_open(path, mode).close()  # the staging file exists, as it would on a full disk
            return io.BufferedWriter(_FullDisk())
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(storage, "open", open_full, raising=False)
    with pytest.raises(StorageError) as err:
        store.write_bytes("media/a.txt", b"x" * size)
    assert str(err.value) == f"{store.url('media/a.txt')}: cannot write: {WHY[errno.ENOSPC]}"
    monkeypatch.undo()
    _intact(store)


def test_other_errors_in_a_writer_block_pass_through(store: ObjectStore):
    """Only a full disk is blamed on the store; the block's own errors are its own."""
    with pytest.raises(FileNotFoundError), store.writer("media/a.txt") as f:
        f.write(b"half")
        Path("/nonexistent/input").read_bytes()
    _intact(store)


@ERRNOS
def test_delete_on_storage_that_cannot_change(store: ObjectStore, monkeypatch, code: int):
    monkeypatch.setattr(os, "remove", _failing(code))
    monkeypatch.setattr(os, "unlink", _failing(code))
    with pytest.raises(StorageError) as err:
        store.delete("media/a.txt")
    assert str(err.value) == f"{store.url('media/a.txt')}: cannot delete: {WHY[code]}"
    with pytest.raises(StorageError) as err:
        store.delete_prefix("media")
    assert str(err.value) == f"{store.url('media')}: cannot delete: {WHY[code]}"
    monkeypatch.undo()
    _intact(store)
    store.delete("media/missing.txt")  # what is not there is still not an error
    store.delete_prefix("missing")


def _shots(n: int) -> pa.Table:
    return pa.table({"shot_id": pa.array(range(n), pa.int32())})


@ERRNOS
def test_a_table_that_cannot_be_replaced(tmp_path: Path, monkeypatch, code: int):
    wh = Warehouse(ObjectStore(str(tmp_path / "lake")))
    wh.write_tables("alpha", {"shots": _shots(3), "keyframes": _shots(2)})
    monkeypatch.setattr(storage.os, "replace", _failing(code))
    with pytest.raises(StorageError) as err:
        wh.write_tables("alpha", {"shots": _shots(5), "keyframes": _shots(4)})
    url = wh.store.url(wh.partition_key("shots", "alpha"))
    assert str(err.value) == f"{url}: cannot write: {WHY[code]}"
    monkeypatch.undo()
    assert wh.read_table("shots", "alpha").num_rows == 3 and wh.read_table("keyframes", "alpha").num_rows == 2


def test_a_full_temporary_folder_while_staging_a_table(tmp_path: Path, monkeypatch):
    """The Parquet file is written to the local temporary folder first: the message says so, and
    names TMPDIR rather than MARQUEE_STORAGE."""
    wh = Warehouse(ObjectStore(str(tmp_path / "lake")))
    wh.write_table("shots", "alpha", _shots(3))
    staged_in = []

    def full(table, where, **kwargs):  # what pyarrow raises on a full disk (errno set, no file name)
        staged_in.append(Path(where).parent)
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    with pytest.raises(StorageError) as err:
        wh.write_table("shots", "alpha", _shots(5))
    url = wh.store.url(wh.partition_key("shots", "alpha"))
    assert str(err.value) == (
        f"{url}: cannot stage the new partition in {staged_in[0]}: no space left on the device "
        "(free space there or set TMPDIR to a folder with room)"
    )
    assert not staged_in[0].exists()  # the temporary folder is removed all the same
    monkeypatch.undo()
    assert wh.read_table("shots", "alpha").num_rows == 3


def test_a_read_only_temporary_folder(tmp_path: Path, monkeypatch):
    wh = Warehouse(ObjectStore(str(tmp_path / "lake")))
    wh.write_table("shots", "alpha", _shots(3))
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: _failing(errno.EROFS)("/tmp/marquee-table-x"))
    with pytest.raises(StorageError) as err:
        wh.write_table("shots", "alpha", _shots(5))
    url = wh.store.url(wh.partition_key("shots", "alpha"))
    assert str(err.value) == (
        f"{url}: cannot stage the new partition in /tmp: the folder is read-only "
        "(set TMPDIR to a writable folder)"
    )
    monkeypatch.undo()
    assert wh.read_table("shots", "alpha").num_rows == 3


def test_a_real_write_still_replaces_atomically(store: ObjectStore, tmp_path: Path):
    """The error handling changed nothing on the good path: staging, then one move."""
    src = tmp_path / "new.txt"
    src.write_bytes(b"new")
    store.put_file(src, "media/a.txt")
    store.write_bytes("media/c.txt", b"c")
    assert store.read_bytes("media/a.txt") == b"new" and store.list() == ["media/a.txt", "media/c.txt"]
    assert not list((Path(store.root) / STAGING).iterdir())


def test_an_unreachable_s3_store_is_one_sentence(monkeypatch):
    """A refused connection (nothing listens on the port) is a StorageError naming the endpoint and
    the settings to check, for reads and listings alike, not a botocore traceback."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "marquee")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "marquee")
    store = ObjectStore(
        "s3://bucket/lake",
        s3_endpoint_url="http://127.0.0.1:9",
        storage_options={"config_kwargs": {"retries": {"max_attempts": 1}}},
    )
    for call in (lambda: store.exists("titles/x/manifest.json"), lambda: store.list("titles")):
        with pytest.raises(
            StorageError,
            match=r"cannot reach the object storage at http://127.0.0.1:9 .*"
            r"check MARQUEE_STORAGE, MARQUEE_S3_ENDPOINT_URL",
        ):
            call()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc, where no folder can be made")
def test_a_store_whose_folder_cannot_be_made_says_so():
    """A real unwritable place, no mocks: /proc takes no new folders, whoever asks (root included)."""
    store = ObjectStore("/proc/marquee-lake")
    with pytest.raises(
        StorageError, match=r"^/proc/marquee-lake/a\.txt: cannot write: its folder does not exist"
    ):
        store.write_bytes("a.txt", b"x")
