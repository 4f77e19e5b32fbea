"""Per-title leases in object storage and media kept by reference (no Dagster needed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from marquee.resources.leases import (
    LeaseLostError,
    LeaseRegister,
    TitleBusyError,
    TitleLease,
    check_not_lost,
    live_owners,
)
from marquee.resources.media import collect_garbage, dangling_keys, start_media_version
from marquee.resources.storage import ObjectStore
from marquee.resources.warehouse import Warehouse


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(str(tmp_path / "lake"))


def test_create_exclusive_has_exactly_one_winner(store):
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def race(i: int) -> None:
        barrier.wait()
        wins.append(store.create_exclusive("locks/x/000000000001.json", f"{i}".encode()))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]
    assert store.read_bytes("locks/x/000000000001.json").decode().isdigit()
    assert store.list("locks") == ["locks/x/000000000001.json"]  # nothing staged is left behind


def test_second_owner_waits_until_the_first_lets_go(store):
    first = TitleLease(store, "film", owner="run-a", step="faces", poll_s=0.05)
    first.acquire()
    waited: list[str] = []
    second = TitleLease(
        store, "film", owner="run-b", step="faces", poll_s=0.05, on_wait=lambda h: waited.append(h.owner)
    )
    got = threading.Event()
    t = threading.Thread(target=lambda: (second.acquire(), got.set()))
    t.start()
    time.sleep(0.5)
    assert not got.is_set() and waited == ["run-a"]
    assert live_owners(store, "film") == {"run-a"}
    first.release()
    assert got.wait(5)
    t.join()
    assert live_owners(store, "film") == {"run-b"}
    second.release()
    assert live_owners(store, "film") == set()


def test_steps_of_one_run_share_the_title(store):
    with (
        TitleLease(store, "film", owner="run-a", step="faces", wait_s=0),
        TitleLease(store, "film", owner="run-a", step="trailer", wait_s=0),
    ):
        assert [h.step for h in LeaseRegister(store, "film").read().live(time.time())] == ["faces", "trailer"]
        with pytest.raises(TitleBusyError, match=r"run run-a \((faces|trailer), pid"):
            TitleLease(store, "film", owner="run-b", step="faces", wait_s=0.2, poll_s=0.05).acquire()


def test_a_stalled_claim_expires_and_its_holder_learns_it_lost(store):
    clock = [1000.0]
    stalled = TitleLease(store, "film", owner="run-a", step="faces", ttl_s=10, clock=lambda: clock[0])
    stalled.acquire()
    stalled._stop.set()  # no heartbeat: the holder is paused
    clock[0] += 11
    taker = TitleLease(store, "film", owner="run-b", step="faces", wait_s=0, clock=lambda: clock[0])
    taker.acquire()
    assert not stalled.renew()
    with pytest.raises(LeaseLostError, match="another run took the title"):
        stalled.check()
    with pytest.raises(LeaseLostError):
        check_not_lost(store, "film")
    with pytest.raises(LeaseLostError):  # the warehouse asks before it replaces a table of the title
        Warehouse(store).write_table("shots", "film", pa.table({"shot_id": [0]}))
    assert not Warehouse(store).has_table("shots", "film")
    stalled.release()
    taker.release()
    check_not_lost(store, "film")


def test_a_killed_holder_on_this_host_frees_the_title_at_once(store, tmp_path):
    code = (
        "import sys, time\n"
        "from marquee.resources.storage import ObjectStore\n"
        "from marquee.resources.leases import TitleLease\n"
        f"TitleLease(ObjectStore({str(tmp_path / 'lake')!r}), 'film', owner='doomed', step='x').acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert live_owners(store, "film") == {"doomed"}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        with TitleLease(store, "film", owner="next", step="x", wait_s=2, poll_s=0.05):
            assert live_owners(store, "film") == {"next"}
    finally:
        proc.kill()


def test_the_register_keeps_only_recent_generations(store):
    for i in range(20):
        with TitleLease(store, "film", owner=f"run-{i}", step="x"):
            pass
    names = store.children("locks/titles/film")
    assert len(names) <= 4 and names[-1] == f"{LeaseRegister(store, 'film').read().generation:012d}.json"


# ---- media kept by reference -------------------------------------------------------------------------


def _table(keys: list[str | None]) -> pa.Table:
    return pa.table({"frame": list(range(len(keys))), "image_key": pa.array(keys, pa.string())})


def test_garbage_collection_keeps_what_tables_point_at_and_what_live_runs_write(store, tmp_path):
    wh = Warehouse(store)
    old = start_media_version(store, "keyframes", "film", "run-a")
    store.write_bytes(old.key("1.jpg"), b"old")
    old.settle()
    new = start_media_version(store, "keyframes", "film", "run-a")
    store.write_bytes(new.key("1.jpg"), b"new")
    new.settle()
    orphan = start_media_version(store, "keyframes", "film", "run-a")
    store.write_bytes(orphan.key("1.jpg"), b"orphan")
    orphan.settle()
    in_flight = start_media_version(store, "faces", "film", "run-b")  # another step, still writing
    crashed = start_media_version(store, "faces", "film", "run-dead")  # a run that died mid-step
    wh.write_table("keyframes", "film", _table([new.key("1.jpg"), None]))
    wh.write_table("trailer_moments", "film", pa.table({"poster_key": [old.key("1.jpg")]}))

    deleted = collect_garbage(wh, "film", live_owners={"run-b"})

    assert sorted(deleted) == sorted([orphan.prefix, crashed.prefix])
    assert store.exists(old.key("1.jpg")) and store.exists(new.key("1.jpg"))
    assert store.exists(in_flight.key("_pending.json"))
    assert dangling_keys(wh, "film") == []
    store.delete(old.key("1.jpg"))
    assert dangling_keys(wh, "film") == [f"trailer_moments.poster_key = {old.key('1.jpg')}"]


def test_a_referenced_version_left_pending_by_a_crash_loses_its_marker(store):
    wh = Warehouse(store)
    mv = start_media_version(store, "faces", "film", "run-dead")  # table written, then kill -9
    store.write_bytes(mv.key("1.jpg"), b"x")
    wh.write_table("faces", "film", pa.table({"crop_key": [mv.key("1.jpg")]}))
    assert collect_garbage(wh, "film", live_owners=set()) == []
    assert store.list(mv.prefix) == [mv.key("1.jpg")]
