"""Per-title leases in object storage: one run of a title at a time, on one machine or across many.

Two runs of the same title would otherwise interleave their writes (one run's media deleted under
the other's tables). The lease lives where the title's data lives, in object storage, so runs on
different machines see it too; a plain file lock would only guard one host.

How it is kept without a server:

- The lease is a small JSON *register* whose successive states are objects
  ``locks/titles/<id>/<generation>.json``; the highest generation is the current state.
- Every change (take, join, renew, release) reads generation ``n`` and creates ``n + 1`` with a
  create-if-absent write (``ObjectStore.create_exclusive``: a hard link on a local folder, a
  conditional ``If-None-Match: *`` PUT on S3). Of two writers racing from the same state exactly one
  wins; the other re-reads and tries again. That is compare-and-swap on any store that can create
  an object only when it is absent.
- A state lists *holders* (``run owner``, host, pid, step, expiry). A run's steps share one owner
  (the run's ``marquee/lease_owner`` tag, else its run id), so the steps of one run join the lease
  while another run's steps wait. Each holder renews its expiry from a background thread; a holder
  that dies (``kill -9``) simply stops renewing and the lease is free ``ttl`` seconds later.
- A holder that finds itself gone from the register (it stalled past its expiry and another run
  took the title) has *lost* the lease: ``check()`` raises before it writes anything more.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from marquee.ops.errors import MarqueeError
from marquee.ops.titles import validate_title_id
from marquee.resources.storage import ObjectStore, StorageError

LEASES = "locks/titles"
#: Seconds a holder's claim lasts without renewal; renewals happen every third of it.
DEFAULT_TTL_S = 90.0
#: Seconds a step or ``marquee run`` waits for another run of the same title before giving up.
DEFAULT_WAIT_S = float(os.environ.get("MARQUEE_LOCK_WAIT_S", "3600"))
#: Generations kept behind the current one (older states are deleted as new ones are written).
_KEEP_GENERATIONS = 3


class TitleBusyError(MarqueeError):
    """Another run holds the title's lease and did not let go within the wait."""


class LeaseLostError(MarqueeError):
    """This run's claim on a title expired and another run took the title."""


@dataclass(frozen=True)
class Holder:
    """One claim on a title: a step (or a whole ``marquee run``) of one run owner."""

    holder_id: str
    owner: str
    host: str
    pid: int
    step: str
    expires_at: float  # seconds since the epoch

    def alive(self, now: float) -> bool:
        """Unexpired, and, when it was taken on this host, its process still exists (a ``kill -9``-ed
        run on this machine frees the title at once instead of after its expiry)."""
        if self.expires_at <= now:
            return False
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # someone else's process: it exists
            return True
        return True

    def describe(self) -> str:
        when = datetime.fromtimestamp(self.expires_at, UTC).strftime("%H:%M:%S UTC")
        return f"run {self.owner} ({self.step}, pid {self.pid} on {self.host}; claim expires {when})"


@dataclass
class LeaseState:
    generation: int
    holders: list[Holder] = field(default_factory=list)

    def live(self, now: float) -> list[Holder]:
        return [h for h in self.holders if h.alive(now)]

    def to_json(self) -> bytes:
        return json.dumps({"holders": [asdict(h) for h in self.holders]}, sort_keys=True).encode()


class LeaseRegister:
    """The generation-numbered JSON register behind a title's lease (see the module docstring)."""

    def __init__(self, store: ObjectStore, title_id: str) -> None:
        self.store = store
        self.title_id = validate_title_id(title_id)
        self.prefix = f"{LEASES}/{self.title_id}"

    def _key(self, generation: int) -> str:
        return f"{self.prefix}/{generation:012d}.json"

    def read(self) -> LeaseState:
        """The current state (generation 0 with no holders when the title was never leased)."""
        for _ in range(5):
            generations = sorted(
                int(k.rsplit("/", 1)[-1].removesuffix(".json"))
                for k in self.store.list(self.prefix)
                if k.endswith(".json") and k.rsplit("/", 1)[-1].removesuffix(".json").isdigit()
            )
            if not generations:
                return LeaseState(0)
            try:
                doc = json.loads(self.store.read_bytes(self._key(generations[-1])))
            except StorageError:  # deleted by a writer's clean-up between listing and reading
                continue
            return LeaseState(generations[-1], [Holder(**h) for h in doc.get("holders", [])])
        raise StorageError(f"{self.store.url(self.prefix)}: the lease register keeps changing under us")

    def swap(self, seen: LeaseState, holders: list[Holder]) -> bool:
        """Write the state after ``seen``; False when another writer got there first."""
        new = LeaseState(seen.generation + 1, holders)
        if not self.store.create_exclusive(self._key(new.generation), new.to_json()):
            return False
        for old in range(max(0, new.generation - 10), new.generation - _KEEP_GENERATIONS):
            self.store.delete(self._key(old))
        return True

    def update(self, change: Callable[[LeaseState], list[Holder] | None]) -> LeaseState | None:
        """Apply ``change`` (state -> new holders, or None for "not now") until a swap wins."""
        while True:
            state = self.read()
            holders = change(state)
            if holders is None:
                return None
            if self.swap(state, holders):
                return LeaseState(state.generation + 1, holders)


class TitleLease:
    """A claim on one title for one run owner, renewed in the background while held.

    Use as a context manager (``with TitleLease(store, "film", owner=run_id, step="faces"):``).
    Claims of the same owner coexist (the steps of one run); another owner waits up to ``wait_s``
    seconds, then gets a TitleBusyError naming who holds the title.
    """

    def __init__(
        self,
        store: ObjectStore,
        title_id: str,
        *,
        owner: str,
        step: str,
        ttl_s: float = DEFAULT_TTL_S,
        wait_s: float = DEFAULT_WAIT_S,
        poll_s: float = 1.0,
        on_wait: Callable[[Holder], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.register = LeaseRegister(store, title_id)
        self.title_id = self.register.title_id
        self.owner = owner
        self.step = step
        self.ttl_s = ttl_s
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.on_wait = on_wait
        self.clock = clock
        self.holder_id = uuid.uuid4().hex
        self._where = (store.root_url, self.title_id)
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _me(self) -> Holder:
        return Holder(
            self.holder_id,
            self.owner,
            socket.gethostname(),
            os.getpid(),
            self.step,
            self.clock() + self.ttl_s,
        )

    def _take(self, state: LeaseState) -> list[Holder] | None:
        live = state.live(self.clock())
        if any(h.owner != self.owner for h in live):
            return None
        return [h for h in live if h.holder_id != self.holder_id] + [self._me()]

    def acquire(self) -> None:
        deadline = self.clock() + self.wait_s
        told: str | None = None
        while self.register.update(self._take) is None:
            blocker = next(
                (h for h in self.register.read().live(self.clock()) if h.owner != self.owner), None
            )
            if blocker is None:  # let go between our two looks
                continue
            if self.clock() >= deadline:
                raise TitleBusyError(
                    f"title {self.title_id!r} is being processed by {blocker.describe()}; gave up "
                    f"after waiting {self.wait_s:.0f} s (set MARQUEE_LOCK_WAIT_S to wait longer)"
                )
            if self.on_wait is not None and blocker.owner != told:
                told = blocker.owner
                self.on_wait(blocker)
            time.sleep(self.poll_s)
        self._stop.clear()
        self._thread = threading.Thread(target=self._heartbeat, name=f"lease-{self.title_id}", daemon=True)
        self._thread.start()
        with _HELD_LOCK:
            _HELD.setdefault(self._where, set()).add(self)

    def renew(self) -> bool:
        """Push this claim's expiry forward; False (and ``lost``) when the claim is gone."""

        def extend(state: LeaseState) -> list[Holder] | None:
            mine = [h for h in state.holders if h.holder_id == self.holder_id]
            if not mine or mine[0].expires_at <= self.clock():
                self.lost = True
                return None
            live = state.live(self.clock())
            return [h for h in live if h.holder_id != self.holder_id] + [self._me()]

        self.register.update(extend)
        return not self.lost

    def check(self) -> None:
        """Raise LeaseLostError when another run took the title from under this claim."""
        if self.lost:
            raise LeaseLostError(
                f"title {self.title_id!r}: this run ({self.owner}, {self.step}) stalled past its claim and "
                "another run took the title; nothing more is written by this step"
            )

    def release(self) -> None:
        with _HELD_LOCK:
            _HELD.get(self._where, set()).discard(self)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

        def drop(state: LeaseState) -> list[Holder] | None:
            if all(h.holder_id != self.holder_id for h in state.holders):
                return None
            return [h for h in state.live(self.clock()) if h.holder_id != self.holder_id]

        self.register.update(drop)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                if not self.renew():
                    return
            except Exception:  # a storage hiccup: try again at the next beat, the claim lasts ttl
                continue

    def __enter__(self) -> TitleLease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


#: Leases this process holds, by (storage root, title): writes of a title's tables consult them.
_HELD: dict[tuple[str, str], set[TitleLease]] = {}
_HELD_LOCK = threading.Lock()


def check_not_lost(store: ObjectStore, title_id: str) -> None:
    """Raise LeaseLostError if this process holds a claim on the title that another run took over.

    The warehouse calls it before it replaces a title's tables, so a run that stalled past its claim
    (a paused VM, a stopped process) cannot point a table at media the new holder already collected.
    """
    with _HELD_LOCK:
        held = list(_HELD.get((store.root_url, title_id), ()))
    for lease in held:
        lease.check()


def live_owners(store: ObjectStore, title_id: str, clock: Callable[[], float] = time.time) -> set[str]:
    """Run owners holding a live claim on the title (their unfinished media must not be collected)."""
    return {h.owner for h in LeaseRegister(store, title_id).read().live(clock())}
