"""One setting, ``MARQUEE_DEVICE``, puts every model on a device (the GPU path of issue 17), tested here
on whatever this machine has: the CPU path runs, and asking for CUDA where there is none fails at
once, naming the setting, in every model and in the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from videos import write_video

from marquee.ops.devices import batch_size_for, resolve_device
from marquee.ops.errors import ModelUnavailableError, UnknownChoiceError

HAS_CUDA = torch.cuda.is_available()


def test_auto_is_the_gpu_when_there_is_one_and_cpu_is_always_cpu(monkeypatch):
    monkeypatch.delenv("MARQUEE_DEVICE", raising=False)
    assert resolve_device() == ("cuda" if HAS_CUDA else "cpu")
    assert resolve_device("cpu") == "cpu"
    monkeypatch.setenv("MARQUEE_DEVICE", "CPU")
    assert resolve_device() == "cpu"
    assert resolve_device("auto") == ("cuda" if HAS_CUDA else "cpu")  # an explicit choice wins
    with pytest.raises(UnknownChoiceError, match="MARQUEE_DEVICE='tpu': choose auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")
    assert batch_size_for("cpu", cpu=8, gpu=64) == 8 and batch_size_for("cuda:1", cpu=8, gpu=64) == 64


def test_cuda_where_torch_sees_none_fails_naming_the_setting():
    if HAS_CUDA:
        assert resolve_device("cuda") == "cuda"
        with pytest.raises(ModelUnavailableError, match="CUDA GPU"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(ModelUnavailableError, match="MARQUEE_DEVICE='cuda' but torch sees no CUDA GPU"):
            resolve_device("cuda")


def _on(module: torch.nn.Module) -> set[str]:
    return {p.device.type for p in module.parameters()}


def test_every_model_is_built_on_the_device_the_setting_names(monkeypatch):
    from marquee.ops.faces.detect import MTCNNDetector
    from marquee.ops.faces.embed import DlibEmbedder
    from marquee.ops.shots.transnet import TransNetV2Model
    from marquee.ops.trailers.visual import FrameEncoder

    monkeypatch.setenv("MARQUEE_DEVICE", "cpu")
    mtcnn = MTCNNDetector()
    assert mtcnn.device == "cpu" and mtcnn.batch_size == 8 and _on(mtcnn._pnet) == {"cpu"}
    faces = DlibEmbedder()
    assert faces.device == "cpu" and faces.batch_size == 32 and _on(faces._net._net) == {"cpu"}
    assert faces.describe([np.zeros((150, 150, 3), np.uint8)]).shape == (1, 128)
    frames = FrameEncoder()
    assert frames.device == "cpu" and frames.batch_size == 8 and _on(frames._features) == {"cpu"}
    assert TransNetV2Model.shared().device == "cpu"
    image = np.zeros((120, 160, 3), np.uint8)
    assert len(mtcnn.detect(image).boxes) == 0 and frames.encode([image]).shape == (1, 1280)
    if not HAS_CUDA:  # the same constructors take the GPU path: here it must say there is none
        monkeypatch.setenv("MARQUEE_DEVICE", "cuda")
        for build in (MTCNNDetector, DlibEmbedder, FrameEncoder, TransNetV2Model):
            with pytest.raises(ModelUnavailableError, match="MARQUEE_DEVICE"):
                build()


def test_the_cli_says_in_one_line_when_the_device_is_not_there(tmp_path: Path):
    video = tmp_path / "clip.mp4"
    write_video(video, [20, 20], seed=3)
    env = {"PATH": "/usr/bin:/bin", "MARQUEE_HOME": str(tmp_path / "home")}
    cmd = [sys.executable, "-m", "marquee.orchestration.cli", "shots", str(video), "--detector", "transnetv2"]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env | {"MARQUEE_DEVICE": "cpu"})
    assert ok.returncode == 0, ok.stderr
    if not HAS_CUDA:
        bad = subprocess.run(
            cmd, capture_output=True, text=True, timeout=300, env=env | {"MARQUEE_DEVICE": "cuda"}
        )
        lines = [x for x in bad.stderr.splitlines() if x.strip()]
        assert bad.returncode != 0 and "Traceback" not in bad.stderr, bad.stderr
        assert "MARQUEE_DEVICE='cuda' but torch sees no CUDA GPU" in lines[-1]
