"""Nothing lost, nothing silent: re-ingest, same-title runs, media lifetime, and what a failed run says."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance
from runs import run_title
from test_cli import MARQUEE, _env, marquee
from videos import write_audio_only, write_video

from marquee.assets.title import INCOMING_SIGNATURE_TAG
from marquee.ops.errors import VideoError
from marquee.orchestration.definitions import build_definitions
from marquee.resources.lake import LakeResource
from marquee.resources.leases import TitleLease, live_owners
from marquee.resources.media import dangling_keys, start_media_version
from marquee.resources.settings import Settings
from marquee.resources.titles import TitleConflictError


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path / "home"))
    for var in ("MARQUEE_STORAGE", "MARQUEE_SHOT_DETECTOR", "MARQUEE_FACE_DETECTOR", "MARQUEE_FACE_EMBEDDER"):
        monkeypatch.delenv(var, raising=False)
    settings = Settings.from_env()
    return settings, LakeResource.from_settings(settings), DagsterInstance.ephemeral()


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("films")
    out = {}
    for name, lengths, seed in [("a", [30, 40, 35], 21), ("b", [45, 30], 22), ("c", [25, 30], 23)]:
        out[name] = d / f"{name}.mp4"
        write_video(out[name], lengths, seed=seed)
    return out


def _snapshot(lake: LakeResource, *prefixes: str) -> dict[str, bytes]:
    store = lake.store()
    return {k: store.read_bytes(k) for p in prefixes for k in store.list(p)}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


BAD = {
    "text": lambda p, films: p.write_text("this is not a video\n" * 50),
    "truncated": lambda p, films: p.write_bytes(films["b"].read_bytes()[: films["b"].stat().st_size // 2]),
    "jpeg-renamed": lambda p, films: p.write_bytes(
        __import__("cv2").imencode(".jpg", __import__("numpy").zeros((64, 64, 3), "uint8"))[1].tobytes()
    ),
    "audio-only": lambda p, films: write_audio_only(p),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_bad_reingest_leaves_the_good_title_as_it_was(env, films, tmp_path, kind):
    settings, lake, instance = env
    registry = lake.titles()
    registry.ingest_file(films["a"], title_id="film")
    assert run_title(build_definitions(settings), instance, "film", [AssetKey("title")]).success
    before = _snapshot(lake, "titles", "tables")

    bad = tmp_path / ("bad.m4a" if kind == "audio-only" else "bad.mp4")
    BAD[kind](bad, films)
    with pytest.raises(VideoError) as err:
        registry.ingest_file(bad, title_id="film", replace=True)
    assert str(bad) in str(err.value)
    with pytest.raises(VideoError):
        registry.stage_incoming(bad, title_id="film")
    assert _snapshot(lake, "titles", "tables") == before
    assert lake.store().list("incoming") == []


def test_same_bytes_are_unchanged_and_different_bytes_need_replace(env, films, tmp_path):
    _, lake, _ = env
    registry = lake.titles()
    first = registry.ingest(films["a"], title_id="film")
    assert first.status == "new"
    again = registry.ingest(films["a"], title_id="film")
    assert again.status == "unchanged" and again.manifest == first.manifest
    with pytest.raises(TitleConflictError, match=r"already holds a different video \(a\.mp4.*--replace"):
        registry.ingest(films["b"], title_id="film")
    with pytest.raises(TitleConflictError, match="--replace"):  # staging for the sensor checks the same
        registry.stage_incoming(films["b"], title_id="film")
    assert registry.stage_incoming(films["a"], title_id="film") is None  # same bytes: nothing to stage
    assert lake.store().list("incoming") == []
    assert registry.manifest("film") == first.manifest
    assert lake.store().read_bytes(first.manifest.source_key) == films["a"].read_bytes()

    added = registry.ingest(films["a"], title_id="film", trailer=films["c"])
    assert added.status == "trailer-added" and "trailer_matches" in added.stale
    with pytest.raises(TitleConflictError, match="different trailer"):
        registry.ingest(films["a"], title_id="film", trailer=films["b"])
    kept = registry.ingest(films["a"], title_id="film")  # no --trailer: the title keeps its trailer
    assert kept.status == "unchanged" and kept.manifest.trailer_sha256 == _sha(films["c"])

    replaced = registry.ingest(films["b"], title_id="film", replace=True)
    assert replaced.status == "replaced" and "every asset" in replaced.stale
    assert lake.store().read_bytes(replaced.manifest.source_key) == films["b"].read_bytes()
    assert replaced.manifest.content_sha256 == _sha(films["b"])
    assert replaced.manifest.trailer_key == first.manifest.source_key.replace("source", "trailer")


def test_a_bad_file_dropped_into_incoming_fails_naming_it_and_keeps_the_title(env, films):
    settings, lake, instance = env
    store, registry = lake.store(), lake.titles()
    registry.ingest_file(films["a"], title_id="film")
    defs = build_definitions(settings)
    assert run_title(defs, instance, "film", [AssetKey("title")]).success
    before = _snapshot(lake, "titles", "tables")
    store.write_bytes("incoming/film.mp4", b"not a video at all" * 100)  # another system's upload
    store.write_bytes("incoming/film.json", b'{"title_id": "film", "replace": true}')
    waiting = registry.pending("film")
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        partition_key="film",
        instance=instance,
        asset_selection=[AssetKey("title")],
        tags={INCOMING_SIGNATURE_TAG: waiting.signature},
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert (
        "incoming/film.mp4: not a readable media file"
        in failure.step_failure_data.user_failure_data.description
    )
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
    assert _snapshot(lake, "titles", "tables") == before
    assert store.exists("incoming/film.mp4")


def test_run_b_processes_b_while_a_waits_in_incoming(env, films, monkeypatch, tmp_path, capsys):
    from marquee.orchestration.cli import main

    _, lake, _ = env
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    lake.titles().stage_incoming(films["a"], title_id="x")
    assert main(["run", str(films["b"]), "--title", "x"]) == 0
    out = capsys.readouterr().out
    assert f"ingested {films['b']}" in out and "incoming/x.mp4 waits in incoming/" in out
    row = lake.warehouse().read_table("titles", "x").to_pylist()[0]
    assert row["content_sha256"] == _sha(films["b"]) and row["source_name"] == "b.mp4"
    assert lake.store().exists("incoming/x.mp4")  # left for the sensor's own run
    assert dangling_keys(lake.warehouse(), "x") == []


def test_a_second_run_of_a_title_waits_for_the_step_in_progress(env, films):
    """Force the interleaving that corrupted titles: run B's faces step starts while run A is
    mid-step with fresh crops and no table yet. B must wait; afterwards every key resolves."""
    settings, lake, instance = env
    store, wh = lake.store(), lake.warehouse()
    lake.titles().ingest_file(films["a"], title_id="film")
    defs = build_definitions(settings)
    assert run_title(defs, instance, "film").success

    run_a = TitleLease(store, "film", owner="run-a", step="faces", poll_s=0.05)
    run_a.acquire()
    crops = start_media_version(store, "faces", "film", "run-a")
    store.write_bytes(crops.key("0000000.jpg"), b"crop")
    results = []
    run_b = threading.Thread(target=lambda: results.append(run_title(defs, instance, "film", ["faces"])))
    run_b.start()
    time.sleep(3)
    assert run_b.is_alive() and store.exists(crops.key("0000000.jpg"))
    faces = wh.read_table("faces", "film")
    wh.write_table("faces", "film", faces)  # run A's table (its crops are the same rows here)
    crops.settle()
    run_a.release()
    run_b.join(120)
    assert results and results[0].success
    assert dangling_keys(wh, "film") == []
    assert not store.exists(crops.prefix + "/0000000.jpg")  # nothing points at A's crops any more
    assert live_owners(store, "film") == set()


KILL_IN_TRAILER_MOMENTS = """
import os, signal, sys
import marquee.assets.trailerness as moments
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
moments.write_clip = die
from marquee.orchestration.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_concurrent_runs_of_one_title_and_a_kill_9_leave_every_key_resolvable(films, tmp_path):
    home = tmp_path / "home"
    env = _env(home)
    first = subprocess.Popen(
        [*MARQUEE, "run", str(films["a"]), "--title", "film"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    store = LakeResource.from_settings(Settings.from_env({"MARQUEE_HOME": str(home)})).store()
    deadline = time.time() + 120
    while not live_owners(store, "film") and time.time() < deadline and first.poll() is None:
        time.sleep(0.2)
    second = subprocess.Popen(
        [*MARQUEE, "run", str(films["a"]), "--title", "film"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    outs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert first.returncode == 0, outs[0]
    assert second.returncode == 0, outs[1]
    assert "title film: waiting for run cli-" in outs[1]
    assert "unchanged" in outs[1]
    doctor = marquee("doctor", "--format", "json", home=home)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr

    killed = subprocess.run(
        [sys.executable, "-c", KILL_IN_TRAILER_MOMENTS, "run", str(films["a"]), "--title", "film"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -9, killed.stdout + killed.stderr
    doctor = marquee("doctor", "film", home=home)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert " 0 " in doctor.stdout.splitlines()[2]  # no dangling key
    # the killed run's claim does not hold the title: the next run goes ahead at once
    again = marquee("run", str(films["a"]), "--title", "film", home=home, timeout=600)
    assert again.returncode == 0 and "waiting" not in again.stdout + again.stderr


def test_a_failed_step_is_one_line_naming_the_step_and_the_reason(films, tmp_path):
    home = tmp_path / "home"
    env = _env(home) | {"MARQUEE_FACE_EMBEDDER": "facenet"}  # weights that are not in the model store
    proc = subprocess.run(
        [*MARQUEE, "run", str(films["c"]), "--title", "film"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1
    err = proc.stderr
    assert "Traceback" not in err and "Telemetry" not in err + proc.stdout
    line = next(x for x in err.splitlines() if x.startswith("marquee run: face_embeddings failed:"))
    assert "models/facenet" in line
    log = next(x for x in err.splitlines() if "full log:" in x).split("full log: ")[1].split(" (run")[0]
    assert "raise ModelUnavailableError" in Path(log).read_text()  # the full stack is in the file
    assert not any("retrying" in x for x in err.splitlines())
    assert os.path.getsize(log) > 1000


def test_the_project_instance_never_runs_one_title_twice_at_once(tmp_path, monkeypatch):
    """Backfills and sensor runs queue; the queue lets one run per partition (title) through."""
    from dagster import DagsterInstance

    from marquee.orchestration.cli import _settings

    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    _settings()
    instance = DagsterInstance.from_config(str(tmp_path / "home" / "dagster"))
    try:
        # What the queue daemon applies (dagster.yaml's `concurrency.runs`, merged over the coordinator's).
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
        assert not instance.telemetry_enabled
    finally:
        instance.dispose()


def test_title_ids_from_file_names_keep_accented_letters():
    from marquee.ops.titles import title_id_from_filename

    assert title_id_from_filename("Mon film été (2019) – 🎬 final.mp4") == "mon-film-ete-2019-final"
    assert title_id_from_filename("My Film (2019).MP4") == "my-film-2019"


def test_doctor_names_an_unknown_title(tmp_path, monkeypatch, capsys):
    from marquee.orchestration.cli import main

    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    assert main(["doctor", "nope"]) == 2
    assert "marquee doctor: error: no such title: nope (ingested: none)" in capsys.readouterr().err
