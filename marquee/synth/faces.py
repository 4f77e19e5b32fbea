"""Labelled test videos of characters, built from real face photos (``faces/<identity>/``).

Why generated videos: judging the character stage needs exact truth (who is on screen, where, for
how long, with whom), which no real clip here provides at scale. Each video is a sequence of scenes
joined by hard cuts; a scene shows one to three people cut out of real photos (head and shoulders,
feathered) in front of a blurred backdrop from another photo or a studio-like gradient, with a slow
camera pan/zoom and a little sway per person. The same identity appears from different photos where
there are several, and always with a fresh augmentation (mirror, small rotation, scale, exposure,
colour cast, slight blur) so that no two appearances are the same pixels. A few very short cutaways
show "background" people who should not be promoted to characters. Main characters get clearly
different screen times, so prominence order is well defined.

Truth (``<video>.truth.json``): per frame the visible identities with face boxes (the MTCNN-style
box of the source photo carried through every transform), per scene the cast, per identity the
screen time, and co-occurring pairs with frame and scene counts.

    from marquee.synth.faces import make_character_video
    truth = make_character_video("/tmp/chars.mp4", seed=0)

Photos are read from ``media=`` or ``faces_dir()`` (see ``marquee.synth.media``: the full-size shared
originals where present, else the downscaled copies bundled with the package). Face boxes and backdrop
regions are stored in pixels of the originals and scaled to whatever size the photo on disk has, so
both give the same videos up to resampling.

``make_photo_video`` films the photos themselves instead (portraits and photos of several people, each
shot a slow push-in or pull-out, no cut-out), with the same kind of truth: footage that looks like
footage, for the demo title.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from marquee.synth.media import media_dir
from marquee.synth.media import shared_media_dir as shared_media_dir  # re-exported (benchmarks)

#: Face box (x1, y1, x2, y2) of the main face in each photo, in pixels of the ORIGINAL photo (its size
#: is in ``PHOTO_SIZES``): MTCNN's box at full resolution, checked by eye on a contact sheet (the boxes
#: cover forehead to chin). ``face_box`` scales one to a copy of another size (the bundled photos).
FACE_BOXES: dict[str, tuple[int, int, int, int]] = {
    "alex_lacamoire/img1.jpg": (302, 128, 578, 541),
    "alex_lacamoire/img2.png": (182, 117, 324, 307),
    "angelina_jolie/img1.jpg": (585, 247, 1199, 1125),
    "biden/biden.jpg": (427, 167, 714, 560),
    "biden/biden2.jpg": (408, 149, 872, 773),
    "kate_siegel/img1.jpg": (538, 101, 763, 414),
    "kit_harington/john1.jpeg": (689, 79, 804, 230),
    "kit_harington/john2.jpeg": (318, 73, 479, 282),
    "lin_manuel_miranda/img1.png": (256, 119, 535, 497),
    "obama/obama.jpg": (367, 79, 616, 428),
    "obama/obama2.jpg": (190, 213, 472, 639),
    "paul_rudd/img1.jpg": (284, 295, 1309, 1817),
    "rose_leslie/img1.jpg": (626, 66, 872, 385),
    "rose_leslie/img2.jpg": (172, 113, 415, 443),
    "shea_whigham/img1.jpg": (828, 350, 1265, 925),
}

#: (width, height) of each original photo as OpenCV reads it: the frame of reference of ``FACE_BOXES``.
PHOTO_SIZES: dict[str, tuple[int, int]] = {
    "alex_lacamoire/img1.jpg": (874, 1200),
    "alex_lacamoire/img2.png": (424, 394),
    "angelina_jolie/img1.jpg": (1665, 2048),
    "biden/biden.jpg": (970, 2204),
    "biden/biden2.jpg": (1200, 1200),
    "kate_siegel/img1.jpg": (1125, 1612),
    "kit_harington/john1.jpeg": (1200, 599),
    "kit_harington/john2.jpeg": (630, 374),
    "lin_manuel_miranda/img1.png": (704, 612),
    "obama/obama.jpg": (910, 1137),
    "obama/obama2.jpg": (626, 1200),
    "paul_rudd/img1.jpg": (1638, 2048),
    "rose_leslie/img1.jpg": (1280, 799),
    "rose_leslie/img2.jpg": (577, 880),
    "shea_whigham/img1.jpg": (2048, 1991),
}

#: Photos of several people (``scenes/<file>``): (width, height) of the original and each person's face
#: box in its pixels (MTCNN's boxes at full resolution, named by eye). The child at the edge of
#: obama_and_biden.jpg is nobody in ``faces/``: an extra.
GROUP_PHOTOS: dict[str, tuple[tuple[int, int], dict[str, tuple[int, int, int, int]]]] = {
    "kit_with_rose.jpg": (
        (501, 700),
        {"rose_leslie": (80, 111, 156, 210), "kit_harington": (257, 78, 351, 202)},
    ),
    "obama_and_biden.jpg": (
        (2000, 1428),
        {
            "biden": (758, 405, 927, 642),
            "obama": (1145, 365, 1329, 598),
            "unnamed_child": (1630, 1061, 1779, 1232),
        },
    ),
    "two_people.jpg": ((1126, 661), {"obama": (235, 22, 387, 223), "biden": (794, 47, 942, 253)}),
}
#: People in ``GROUP_PHOTOS`` who are not in ``faces/``.
EXTRAS = frozenset({"unnamed_child"})

#: Face-free regions of photos (x1, y1, x2, y2, pixels of the original) used, blurred, as backdrops.
BACKDROPS: list[tuple[str, tuple[int, int, int, int]]] = [
    ("obama/obama.jpg", (0, 0, 330, 600)),
    ("kate_siegel/img1.jpg", (0, 700, 520, 1612)),
    ("shea_whigham/img1.jpg", (0, 0, 760, 1100)),
    ("kit_harington/john1.jpeg", (860, 0, 1200, 599)),
    ("angelina_jolie/img1.jpg", (1250, 0, 1665, 1500)),
    ("paul_rudd/img1.jpg", (0, 0, 200, 1000)),
    ("biden/biden2.jpg", (0, 0, 380, 700)),
    ("rose_leslie/img1.jpg", (0, 0, 560, 799)),
    ("kit_harington/john2.jpeg", (0, 0, 250, 374)),
    ("obama/obama2.jpg", (0, 0, 180, 626)),
]


#: How scenes look, with their probabilities: the hard cases of real footage. ``dim``: low light with
#: sensor noise; ``wide``: small faces (down to 28 px); ``soft``: out of focus; ``sidelight``: one side
#: of every face in shadow. Each also gets the per-appearance augmentation of ``augment``.
STYLES: dict[str, float] = {"normal": 0.4, "dim": 0.2, "wide": 0.15, "soft": 0.1, "sidelight": 0.15}


def faces_dir() -> Path:
    """The face photos: the shared originals where present, else the bundled copies (``media_dir``)."""
    return media_dir("faces")


def photo_path(root: Path, key: str) -> Path | None:
    """The file of photo ``key`` (``identity/file`` as in ``FACE_BOXES``) under ``root``: the original
    name, or the same name with ``.jpg`` (the bundled copies are all JPEG); None when absent."""
    for path in (root / key, (root / key).with_suffix(".jpg")):
        if path.is_file():
            return path
    return None


def _scale_of(
    key: str, size: tuple[int, int], original: tuple[int, int] | None = None
) -> tuple[float, float]:
    """(x, y) scale from the original photo ``key`` (of size ``original``, default ``PHOTO_SIZES[key]``)
    to a copy of ``size`` (w, h); the aspect ratio must match (within rounding), else the file is not a
    copy of that photo."""
    ow, oh = original or PHOTO_SIZES[key]
    sx, sy = size[0] / ow, size[1] / oh
    if abs(sx - sy) > 0.01 * max(sx, sy) + 2.0 / min(ow, oh):
        raise ValueError(f"{key}: a {size[0]}x{size[1]} image is not a copy of the {ow}x{oh} original")
    return sx, sy


def face_box(key: str, size: tuple[int, int]) -> np.ndarray:
    """``FACE_BOXES[key]`` (float x1, y1, x2, y2) in pixels of a copy of the photo of ``size`` (w, h)."""
    sx, sy = _scale_of(key, size)
    return np.asarray(FACE_BOXES[key], np.float64) * np.asarray([sx, sy, sx, sy])


def group_faces(name: str, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """The face boxes of group photo ``name`` (``GROUP_PHOTOS``), person -> (x1, y1, x2, y2) float, in
    pixels of a copy of the photo of ``size`` (w, h)."""
    original, boxes = GROUP_PHOTOS[name]
    sx, sy = _scale_of(name, size, original)
    return {who: np.asarray(b, np.float64) * np.asarray([sx, sy, sx, sy]) for who, b in boxes.items()}


def available_identities(root: Path | None = None) -> dict[str, list[str]]:
    """Identity -> photo keys (``identity/file``) that exist on disk and have a known face box."""
    root = root or faces_dir()
    out: dict[str, list[str]] = defaultdict(list)
    for key in sorted(FACE_BOXES):
        if photo_path(root, key) is not None:
            out[key.split("/")[0]].append(key)
    return dict(out)


@cache
def _photo(path: str, key: str, max_face: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB photo ``key`` read from ``path``, shrunk so its face is at most ``max_face`` px wide, and its
    face box (float)."""
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(path)
    box = face_box(key, (bgr.shape[1], bgr.shape[0]))
    s = min(1.0, max_face / (box[2] - box[0]))
    if s < 1.0:
        bgr = cv2.resize(bgr, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        box = box * s
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), box


@dataclass
class Sprite:
    """A person cut out of a photo: RGB, alpha in [0, 1], face box in sprite pixels."""

    rgb: np.ndarray
    alpha: np.ndarray
    face: np.ndarray


def cut_out(photo: np.ndarray, face: np.ndarray) -> Sprite:
    """Head and shoulders around ``face``: a feathered union of a head ellipse, a neck and a shoulder
    ellipse; the bottom of the sprite fades out where the photo ends, so bodies never end in a line."""
    fw, fh = face[2] - face[0], face[3] - face[1]
    cx = (face[0] + face[2]) / 2
    x1, x2 = cx - 1.45 * fw, cx + 1.45 * fw
    y1, y2 = face[1] - 0.45 * fh, face[3] + 3.0 * fh
    h, w = photo.shape[:2]
    ix1, iy1, ix2, iy2 = int(max(0, x1)), int(max(0, y1)), int(min(w, x2)), int(min(h, y2))
    rgb = np.ascontiguousarray(photo[iy1:iy2, ix1:ix2])
    box = face - np.asarray([ix1, iy1, ix1, iy1], np.float64)
    sh, sw = rgb.shape[:2]
    mask = np.zeros((sh, sw), np.float32)
    fcx, fcy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    head = ((round(fcx), round(fcy - 0.1 * fh)), (round(0.64 * fw), round(0.74 * fh)))
    cv2.ellipse(mask, head[0], head[1], 0, 0, 360, 1.0, -1)
    shoulders = ((round(fcx), round(box[3] + 2.0 * fh)), (round(1.3 * fw), round(1.45 * fh)))
    cv2.ellipse(mask, shoulders[0], shoulders[1], 0, 0, 360, 1.0, -1)
    neck = ((round(fcx - 0.33 * fw), round(fcy)), (round(fcx + 0.33 * fw), round(box[3] + 0.7 * fh)))
    cv2.rectangle(mask, neck[0], neck[1], 1.0, -1)
    k = max(3, int(0.1 * fw) | 1)
    mask = cv2.GaussianBlur(mask, (k, k), 0)
    fade = max(2, int(0.35 * fh))
    rows = np.arange(sh, dtype=np.float32)
    mask *= np.clip((sh - 1 - rows) / fade, 0, 1)[:, None]
    return Sprite(rgb, mask, box)


def augment(sprite: Sprite, rng: np.random.Generator, strength: float = 1.0) -> Sprite:
    """Mirror, rotate a few degrees about the face, change exposure and colour cast, maybe soften."""
    rgb, alpha, face = sprite.rgb, sprite.alpha, sprite.face.copy()
    h, w = rgb.shape[:2]
    if rng.random() < 0.5:
        rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
        face = np.asarray([w - face[2], face[1], w - face[0], face[3]])
    angle = float(rng.uniform(-9, 9) * strength)
    fcx, fcy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
    m = cv2.getRotationMatrix2D((fcx, fcy), angle, 1.0)
    squeeze = 1.0 - float(rng.uniform(0, 0.18) * strength)  # a crude turn of the head
    m[0] = m[0] * squeeze + np.asarray([0, 0, fcx * (1 - squeeze)])
    half = (face[2] - face[0]) / 2 * squeeze
    face = np.asarray([fcx - half, face[1], fcx + half, face[3]])
    rgb = cv2.warpAffine(
        np.ascontiguousarray(rgb), m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    alpha = cv2.warpAffine(np.ascontiguousarray(alpha), m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    x = rgb.astype(np.float32) / 255
    gain = float(rng.uniform(0.7, 1.15))
    gamma = float(rng.uniform(0.85, 1.25))
    cast = rng.uniform(0.92, 1.08, size=3).astype(np.float32)
    x = np.clip((x**gamma) * gain * cast, 0, 1)
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), float(rng.uniform(0.6, 1.2)) * max(1.0, w / 300))
    return Sprite((x * 255).astype(np.uint8), alpha, face)


def backdrop(rng: np.random.Generator, size: tuple[int, int], root: Path) -> np.ndarray:
    """A blurred face-free photo region or a stage-like gradient, ``size`` (w, h), RGB uint8."""
    w, h = size
    usable = [(k, r) for k, r in BACKDROPS if photo_path(root, k) is not None]
    if usable and rng.random() < 0.65:
        key, box = usable[int(rng.integers(len(usable)))]
        bgr = cv2.imread(str(photo_path(root, key)), cv2.IMREAD_COLOR)
        sx, sy = _scale_of(key, (bgr.shape[1], bgr.shape[0]))
        x1, y1, x2, y2 = (round(v * s) for v, s in zip(box, (sx, sy, sx, sy), strict=True))
        region = bgr[y1:y2, x1:x2]
        s = max(w / region.shape[1], h / region.shape[0])
        region = cv2.resize(region, (math.ceil(region.shape[1] * s), math.ceil(region.shape[0] * s)))
        oy = int(rng.integers(0, region.shape[0] - h + 1))
        ox = int(rng.integers(0, region.shape[1] - w + 1))
        region = cv2.cvtColor(region[oy : oy + h, ox : ox + w], cv2.COLOR_BGR2RGB).astype(np.float32)
        region = cv2.GaussianBlur(region, (0, 0), 0.012 * w + 4)
        region *= float(rng.uniform(0.45, 0.9))
        return np.clip(region, 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c1 = rng.uniform(10, 70, size=3).astype(np.float32)
    c2 = rng.uniform(60, 170, size=3).astype(np.float32)
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.0, 0.5) * h
    r = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / (0.9 * max(w, h))
    t = np.clip(r, 0, 1)[..., None]
    img = c2 * (1 - t) + c1 * t
    img += rng.normal(0, 2.0, size=img.shape).astype(np.float32)
    return np.clip(cv2.GaussianBlur(img, (0, 0), 3), 0, 255).astype(np.uint8)


@dataclass
class Placement:
    """One person in a scene: which photo, where their face centre sits (canvas px), face width."""

    identity: str
    photo: str
    cx: float
    cy: float
    face_w: float
    sway: tuple[float, float, float]  # amplitude px, period s, phase
    sprite: Sprite | None = None


@dataclass
class Scene:
    scene_id: int
    start_frame: int
    end_frame: int  # inclusive
    kind: str  # "scene" | "cutaway"
    people: list[str]
    style: str = "normal"  # see STYLES


@dataclass
class CharacterTruth:
    """Exact truth of a generated video (see the module notes)."""

    path: str
    seed: int
    size: tuple[int, int]
    fps: float
    frame_count: int
    identities: dict[str, dict[str, Any]]  # name -> role, photos, screen_time_s, n_scenes, first_s
    characters: list[str]  # main identities by decreasing screen time
    background: list[str]
    scenes: list[Scene]
    frames: list[list[dict[str, Any]]]  # per frame: [{"identity", "box"}]
    cooccurrence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps

    def shot_of_frame(self) -> np.ndarray:
        out = np.zeros(self.frame_count, np.int64)
        for s in self.scenes:
            out[s.start_frame : s.end_frame + 1] = s.scene_id
        return out

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["duration_s"] = round(self.duration_s, 6)
        d["format"] = "marquee-character-truth/1"
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CharacterTruth:
        return cls(
            path=d["path"],
            seed=d["seed"],
            size=tuple(d["size"]),
            fps=d["fps"],
            frame_count=d["frame_count"],
            identities=d["identities"],
            characters=d["characters"],
            background=d["background"],
            scenes=[Scene(**s) for s in d["scenes"]],
            frames=d["frames"],
            cooccurrence=d["cooccurrence"],
        )


def load_truth(video: str | Path) -> CharacterTruth:
    """The truth written next to ``video``."""
    return CharacterTruth.from_json(json.loads(Path(str(video) + ".truth.json").read_text()))


def _plan(
    rng: np.random.Generator, ids: dict[str, list[str]], n_main: int, n_background: int, seconds: float
) -> tuple[list[str], list[str], list[tuple[str, float, list[str]]]]:
    """Cast and scene list ``(kind, duration_s, people)`` with a clear prominence order.

    Main characters are drawn with decreasing weights; plans are redrawn until every main character
    is in at least two scenes and true screen times differ by at least 12% between ranks.
    """
    names = sorted(ids)
    if len(names) < n_main + n_background:
        raise ValueError(f"need {n_main + n_background} identities with photos, found {len(names)}")
    multi = [n for n in names if len(ids[n]) > 1]
    single = [n for n in names if len(ids[n]) == 1]
    rng.shuffle(multi)
    rng.shuffle(single)
    pool = multi + single  # identities with several photos first: more varied appearances
    main = pool[:n_main]
    rng.shuffle(main)
    background = pool[n_main : n_main + n_background]
    weights = np.asarray([1.0 / (1 + 0.9 * i) ** 1.6 for i in range(n_main)])
    for _ in range(500):
        scenes: list[tuple[str, float, list[str]]] = []
        total = 0.0
        cutaway_at = sorted(rng.choice(np.arange(2, 9), size=n_background, replace=False).tolist())
        bi = 0
        while total < seconds - 0.5:
            if bi < len(background) and len(scenes) == cutaway_at[bi]:
                d = float(rng.uniform(0.6, 1.1))
                scenes.append(("cutaway", d, [background[bi]]))
                bi += 1
                total += d
                continue
            k = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
            k = min(k, n_main)
            p = weights / weights.sum()
            people = [str(x) for x in rng.choice(main, size=k, replace=False, p=p)]
            d = float(min(rng.uniform(2.5, 5.0), max(1.5, seconds - total)))
            scenes.append(("scene", d, people))
            total += d
        while bi < len(background):
            scenes.insert(min(len(scenes), 1 + 2 * bi), ("cutaway", 0.8, [background[bi]]))
            bi += 1
        screen = {n: sum(d for kind, d, ps in scenes if n in ps) for n in main}
        count = {n: sum(n in ps for _, _, ps in scenes) for n in main}
        order = sorted(main, key=lambda n: -screen[n])
        gaps_ok = all(screen[a] >= 1.12 * screen[b] for a, b in pairwise(order))
        if all(c >= 2 for c in count.values()) and gaps_ok and screen[order[-1]] >= 3.0:
            return main, background, scenes
    raise RuntimeError("could not plan a video with a clear prominence order; use more seconds")


def _layout(
    rng: np.random.Generator, people: list[str], canvas: tuple[int, int], frame_h: int, kind: str
) -> list[tuple[float, float, float]]:
    """Face centre (x, y) and face width (canvas px) per person: close-ups for one, medium shots
    for two or three, never overlapping faces."""
    cw, ch = canvas
    n = len(people)

    def low_enough(y: float, fw: float) -> float:
        return max(y, ch - 2.9 * 1.35 * fw)  # shoulders reach past the bottom of the canvas

    if n == 1:
        fw = float(rng.uniform(0.2, 0.3) if kind == "scene" else rng.uniform(0.14, 0.2)) * frame_h
        y = low_enough(ch * rng.uniform(0.36, 0.46), fw)
        return [(float(cw * rng.uniform(0.38, 0.62)), float(y), fw)]
    fw = float(rng.uniform(0.14, 0.2) if n == 2 else rng.uniform(0.12, 0.16)) * frame_h
    xs = np.linspace(0.3, 0.7, n) if n == 2 else np.linspace(0.24, 0.76, n)
    out = []
    for i in range(n):
        w_i = float(fw * rng.uniform(0.9, 1.1))
        x = cw * (xs[i] + rng.uniform(-0.03, 0.03))
        y = low_enough(ch * (0.42 + rng.uniform(-0.06, 0.06)), w_i)
        out.append((float(x), float(y), w_i))
    return out


def scaled(sprite: Sprite, scale: float) -> Sprite:
    """The sprite resized by ``scale`` (done once per scene; pasting is then a plain blend)."""
    w = max(1, round(sprite.rgb.shape[1] * scale))
    h = max(1, round(sprite.rgb.shape[0] * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    rgb = cv2.resize(sprite.rgb, (w, h), interpolation=interp)
    alpha = cv2.resize(sprite.alpha, (w, h), interpolation=cv2.INTER_LINEAR)
    return Sprite(
        rgb, alpha, sprite.face * np.asarray([w / sprite.rgb.shape[1], h / sprite.rgb.shape[0]] * 2)
    )


def _paste(frame: np.ndarray, sprite: Sprite, cx: float, cy: float) -> np.ndarray | None:
    """Alpha-blend ``sprite`` with its face centre at (cx, cy); returns the face box in frame pixels."""
    h, w = sprite.rgb.shape[:2]
    face = sprite.face
    ox = round(cx - (face[0] + face[2]) / 2)
    oy = round(cy - (face[1] + face[3]) / 2)
    fh, fw = frame.shape[:2]
    xa, ya, xb, yb = max(0, ox), max(0, oy), min(fw, ox + w), min(fh, oy + h)
    if xb <= xa or yb <= ya:
        return None
    a = sprite.alpha[ya - oy : yb - oy, xa - ox : xb - ox, None]
    region = frame[ya:yb, xa:xb].astype(np.float32)
    src = sprite.rgb[ya - oy : yb - oy, xa - ox : xb - ox].astype(np.float32)
    frame[ya:yb, xa:xb] = (src * a + region * (1 - a)).astype(np.uint8)
    return face + np.asarray([ox, oy, ox, oy], np.float64)


def styled(sprite: Sprite, style: str, rng: np.random.Generator) -> Sprite:
    """Per-scene look applied to a person: defocus for ``soft``, a shadowed side for ``sidelight``."""
    fw = float(sprite.face[2] - sprite.face[0])
    if style == "soft":
        sigma = fw * float(rng.uniform(0.025, 0.045))
        return Sprite(cv2.GaussianBlur(sprite.rgb, (0, 0), sigma), sprite.alpha, sprite.face)
    if style == "sidelight":
        w = sprite.rgb.shape[1]
        ramp = np.linspace(float(rng.uniform(0.2, 0.4)), float(rng.uniform(1.0, 1.15)), w, dtype=np.float32)
        if rng.random() < 0.5:
            ramp = ramp[::-1]
        rgb = np.clip(sprite.rgb.astype(np.float32) * ramp[None, :, None], 0, 255).astype(np.uint8)
        return Sprite(rgb, sprite.alpha, sprite.face)
    return sprite


class _Darkener:
    """Low light for one scene: a gain/gamma lookup table and a small bank of sensor-noise frames
    (fresh noise every frame would cost more than the rest of the rendering)."""

    def __init__(
        self, gain: float, gamma: float, noise: float, shape: tuple[int, ...], rng: np.random.Generator
    ):
        x = np.arange(256, dtype=np.float32) / 255
        self.lut = np.clip(x**gamma * gain * 255, 0, 255).astype(np.uint8)
        self.bank = [rng.normal(0, noise, size=shape).astype(np.int16) for _ in range(6)]
        self.rng = rng

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        noise = self.bank[int(self.rng.integers(len(self.bank)))]
        return np.clip(cv2.LUT(frame, self.lut).astype(np.int16) + noise, 0, 255).astype(np.uint8)


def max_face_for(height: int) -> int:
    """The widest face (px) a photo is kept at for a video ``height`` px tall: a close-up, zoomed in."""
    return max(64, int(0.45 * height * 1.6))


#: Loads the photo of one appearance: (identity, photo key) -> (RGB photo, face box in its pixels).
PhotoLoader = Callable[[str, str], tuple[np.ndarray, np.ndarray]]


@dataclass
class SceneShot:
    """One continuous shot of a scene, drawn up front (``setup_scene``) and rendered frame by frame.

    Why a separate object: ``make_character_video`` writes one shot per scene, while longer generators
    (``marquee.synth.film``) cut a scene into several shots around one backdrop and interleave them with
    other footage; both render the same way, from the same draws.
    """

    size: tuple[int, int]
    canvas: tuple[int, int]
    style: str
    background: np.ndarray
    places: list[Placement]
    zoom: tuple[float, float]
    pan: np.ndarray
    dim: _Darkener | None = None

    def frame(self, i: int, nf: int, fps: float) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Frame ``i`` of ``nf`` (RGB uint8 of ``size``) and the faces on it, ``[{"identity", "box"}]``:
        each person whose face box lies at least 70% inside the frame."""
        w, h = self.size
        canvas = self.canvas
        z0, z1 = self.zoom
        pan = self.pan
        t = i / max(1, nf - 1)
        frame = self.background.copy()
        boxes = []
        for p in self.places:
            amp, period, phase = p.sway
            dx = amp * math.sin(2 * math.pi * (i / fps) / period + phase)
            box = _paste(frame, p.sprite, p.cx + dx, p.cy + 0.3 * dx)
            boxes.append((p.identity, box))
        zoom = z0 + (z1 - z0) * t
        ww, wh = w / zoom, h / zoom
        slack_x, slack_y = canvas[0] - ww, canvas[1] - wh
        x0 = slack_x / 2 + pan[0] * (t - 0.5) * slack_x * 0.9
        y0 = slack_y / 2 + pan[1] * (t - 0.5) * slack_y * 0.9
        m = np.asarray([[w / ww, 0, -x0 * w / ww], [0, h / wh, -y0 * h / wh]], np.float64)
        out = cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if self.dim is not None:
            out = self.dim(out)
        visible = []
        for name, box in boxes:
            if box is None:
                continue
            b = np.asarray(
                [
                    box[0] * m[0, 0] + m[0, 2],
                    box[1] * m[1, 1] + m[1, 2],
                    box[2] * m[0, 0] + m[0, 2],
                    box[3] * m[1, 1] + m[1, 2],
                ]
            )
            inside = max(0.0, min(b[2], w) - max(b[0], 0)) * max(0.0, min(b[3], h) - max(b[1], 0))
            if inside >= 0.7 * (b[2] - b[0]) * (b[3] - b[1]):
                visible.append({"identity": name, "box": [round(float(v), 1) for v in b]})
        return out, visible


def setup_scene(
    rng: np.random.Generator,
    people: list[str],
    kind: str,
    *,
    ids: dict[str, list[str]],
    root: Path,
    size: tuple[int, int],
    max_face: int,
    background: np.ndarray | None = None,
    style: str | None = None,
    load: PhotoLoader | None = None,
) -> SceneShot:
    """Draw one shot of ``people`` (``kind`` "scene" or "cutaway"): backdrop, style (``STYLES``), a photo
    of each person from ``ids`` with a fresh augmentation, the layout (``_layout``) and the camera move.

    ``background`` (a canvas of 1.2 x ``size``) and ``style`` are drawn when not given, so several shots
    of one scene can share them. ``load`` reads a photo (default: ``ids``' keys under ``root``, as in
    ``FACE_BOXES``), for people whose photos are elsewhere (the extras of group photos).
    """
    w, h = size
    canvas = (round(w * 1.2), round(h * 1.2))
    bg = backdrop(rng, canvas, root) if background is None else background
    if style is None:
        names, probs = list(STYLES), np.asarray(list(STYLES.values()))
        style = str(rng.choice(names, p=probs / probs.sum())) if kind == "scene" else "normal"
    dim = None
    if style == "dim":
        dim = _Darkener(
            float(rng.uniform(0.3, 0.5)),
            float(rng.uniform(1.2, 1.5)),
            float(rng.uniform(2, 5)),
            (h, w, 3),
            rng,
        )
    places = []
    for person, (cx, cy, fw) in zip(people, _layout(rng, people, canvas, h, kind), strict=True):
        if style == "wide":
            fw = max(28.0 * 1.1, fw * 0.6)
        photo = ids[person][int(rng.integers(len(ids[person])))]
        if load is None:
            rgb, face = _photo(str(photo_path(root, photo)), photo, max_face)
        else:
            rgb, face = load(person, photo)
        sprite = augment(cut_out(rgb, face), rng)
        sprite = styled(scaled(sprite, fw / (sprite.face[2] - sprite.face[0])), style, rng)
        # Lower a person whose photo ends near the chin, so the cut reaches the frame bottom
        # (within reason: the face stays in the upper two thirds).
        below = sprite.rgb.shape[0] - (sprite.face[1] + sprite.face[3]) / 2
        cy = float(min(max(cy, canvas[1] * 0.92 - below), canvas[1] * 0.62))
        amp = float(rng.uniform(0, 0.06) * fw)
        places.append(
            Placement(
                person,
                photo,
                cx,
                cy,
                fw,
                (amp, float(rng.uniform(2, 5)), float(rng.uniform(0, 6.3))),
                sprite,
            )
        )
    # Camera: a window of the canvas that pans and zooms linearly over the scene.
    z0, z1 = float(rng.uniform(1.0, 1.12)), float(rng.uniform(1.0, 1.12))
    pan = rng.uniform(-1, 1, size=2)
    return SceneShot(size, canvas, style, bg, places, (z0, z1), pan, dim)


def _h264_writer(path: str | Path, size: tuple[int, int], fps: float, crf: int) -> tuple[Any, Any]:
    """An open MP4 container and its H.264 stream (yuv420p, fast preset) for generated footage."""
    container = av.open(str(path), mode="w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
    stream.options = {"crf": str(crf), "preset": "veryfast"}
    return container, stream


def make_character_video(
    path: str | Path,
    *,
    seed: int = 0,
    size: tuple[int, int] = (640, 360),
    fps: int = 25,
    seconds: float = 40.0,
    n_main: int = 5,
    n_background: int = 3,
    media: Path | None = None,
    crf: int = 20,
) -> CharacterTruth:
    """Write an H.264 mp4 of scenes with real faces at ``path`` and its truth at ``path.truth.json``."""
    root = Path(media) if media is not None else faces_dir()
    ids = available_identities(root)
    if not ids:
        raise FileNotFoundError(f"no face photos under {root}")
    rng = np.random.default_rng(seed)
    main, background, plan = _plan(rng, ids, n_main, n_background, seconds)
    w, h = size
    max_face = max_face_for(h)
    frames_truth: list[list[dict[str, Any]]] = []
    scenes: list[Scene] = []
    photos_used: dict[str, set[str]] = defaultdict(set)
    container, stream = _h264_writer(path, (w, h), fps, crf)
    n = 0
    try:
        for sid, (kind, dur, people) in enumerate(plan):
            nf = max(1, round(dur * fps))
            shot = setup_scene(rng, people, kind, ids=ids, root=root, size=size, max_face=max_face)
            for p in shot.places:
                photos_used[p.identity].add(p.photo)
            scenes.append(Scene(sid, n, n + nf - 1, kind, list(people), shot.style))
            for i in range(nf):
                out, visible = shot.frame(i, nf, fps)
                frames_truth.append(visible)
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(out), format="rgb24")
                for packet in stream.encode(vf):
                    container.mux(packet)
                n += 1
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    truth = _summarise(str(path), seed, size, float(fps), main, background, scenes, frames_truth, photos_used)
    Path(str(path) + ".truth.json").write_text(json.dumps(truth.to_json()))
    return truth


def _summarise(
    path: str,
    seed: int,
    size: tuple[int, int],
    fps: float,
    main: list[str],
    background: list[str],
    scenes: list[Scene],
    frames: list[list[dict[str, Any]]],
    photos: dict[str, set[str]],
) -> CharacterTruth:
    seen: dict[str, int] = defaultdict(int)
    first: dict[str, int] = {}
    pair_frames: dict[tuple[str, str], int] = defaultdict(int)
    for i, faces in enumerate(frames):
        names = sorted({f["identity"] for f in faces})
        for nm in names:
            seen[nm] += 1
            first.setdefault(nm, i)
        for a, b in combinations(names, 2):
            pair_frames[(a, b)] += 1
    pair_scenes: dict[tuple[str, str], int] = defaultdict(int)
    for s in scenes:
        for a, b in combinations(sorted(set(s.people)), 2):
            pair_scenes[(a, b)] += 1
    identities = {
        nm: {
            "role": "main" if nm in main else "background",
            "photos": sorted(photos.get(nm, ())),
            "screen_time_s": round(seen[nm] / fps, 4),
            "n_frames": seen[nm],
            "n_scenes": sum(nm in s.people for s in scenes),
            "first_appearance_s": round(first.get(nm, -1) / fps, 4),
        }
        for nm in main + background
    }
    characters = sorted(main, key=lambda nm: -seen[nm])
    co = [
        {"a": a, "b": b, "frames": pair_frames.get((a, b), 0), "scenes": pair_scenes.get((a, b), 0)}
        for a, b in sorted(set(pair_frames) | set(pair_scenes))
    ]
    return CharacterTruth(
        path, seed, size, fps, len(frames), identities, characters, background, scenes, frames, co
    )


# --------------------------------------------------------------------------------------------------------
# Photo footage: the photos themselves, filmed like a documentary


@dataclass(frozen=True)
class _Still:
    """One photo to film: its file, and each person's face box in its pixels (identity -> box)."""

    key: str  # "faces/<identity>/<file>" or "scenes/<file>"
    path: Path
    faces: dict[str, np.ndarray]


def _stills(root: Path) -> tuple[list[_Still], list[_Still]]:
    """The portraits (one known face) and group photos (several) found under ``root`` (a media folder
    with ``faces/`` and ``scenes/``), with their face boxes scaled to the files on disk."""

    def size_of(path: Path) -> tuple[int, int]:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(path)
        return bgr.shape[1], bgr.shape[0]

    portraits = []
    for key in sorted(FACE_BOXES):
        path = photo_path(root / "faces", key)
        if path is not None:
            box = face_box(key, size_of(path))
            portraits.append(_Still(f"faces/{key}", path, {key.split("/")[0]: box}))
    groups = []
    for name in sorted(GROUP_PHOTOS):
        path = photo_path(root / "scenes", name)
        if path is not None:
            groups.append(_Still(f"scenes/{name}", path, group_faces(name, size_of(path))))
    return portraits, groups


def _still_plan(
    rng: np.random.Generator, portraits: list[_Still], groups: list[_Still], n: int
) -> list[_Still]:
    """``n`` shots: about a third group photos, a portrait of each person they show (so that everyone
    in a group photo is seen at least twice), then other portraits, people seen before first; every
    photo once before any is shown again; shuffled."""
    pool_groups = [groups[int(i)] for i in rng.permutation(len(groups))]
    shots = pool_groups[: min(len(pool_groups), max(1 if groups else 0, round(n / 3)))]
    cast = [who for g in shots for who in g.faces if who not in EXTRAS]
    unused = [portraits[int(i)] for i in rng.permutation(len(portraits))]
    for who in dict.fromkeys(cast):
        pick = next((p for p in unused if who in p.faces), None)
        if pick is not None and len(shots) < n:
            shots.append(pick)
            unused.remove(pick)
    unused.sort(key=lambda p: not any(who in cast for who in p.faces))  # stable: seen people first
    while len(shots) < n:
        if not unused:
            unused = portraits + groups
        shots.append(unused.pop(0))
    return [shots[int(i)] for i in rng.permutation(len(shots))]


def _window(
    rng: np.random.Generator, still: _Still, photo_size: tuple[int, int], aspect: float, share: float
) -> np.ndarray:
    """A (x0, y0, width) window of ``aspect`` on the photo, framing its people: their faces' union is
    ``share`` of the window's width, their centre a little above the window's middle, within the photo."""
    boxes = np.stack([b for who, b in still.faces.items() if who not in EXTRAS])
    ux1, uy1 = boxes[:, 0].min(), boxes[:, 1].min()
    ux2, uy2 = boxes[:, 2].max(), boxes[:, 3].max()
    pw, ph = photo_size
    w = min((ux2 - ux1) / share, pw, ph * aspect)
    h = w / aspect
    x0 = (ux1 + ux2) / 2 - w / 2 + float(rng.uniform(-0.06, 0.06)) * w
    y0 = (uy1 + uy2) / 2 - float(rng.uniform(0.36, 0.46)) * h
    return np.asarray([min(max(x0, 0.0), pw - w), min(max(y0, 0.0), ph - h), w])


#: Who counts as a character in photo footage: anyone of ``faces/`` on screen this long (the character
#: stage's default rule, ``marquee.ops.faces.cluster.BackgroundRule``); the rest is background.
PHOTO_CHARACTER_MIN_S = 2.0


def make_photo_video(
    path: str | Path,
    *,
    seed: int = 0,
    size: tuple[int, int] = (640, 360),
    fps: int = 25,
    seconds: float = 16.0,
    media: Path | None = None,
    shot_seconds: tuple[float, float] = (2.4, 3.6),
    crf: int = 20,
) -> CharacterTruth:
    """Film the photos themselves, as a documentary does: one shot per photo, joined by hard cuts, each a
    slow push-in or pull-out (and a little pan) on its people, with exact truth at ``path.truth.json``.

    ``media`` is a folder with ``faces/`` (portraits, ``FACE_BOXES``) and ``scenes/`` (group photos,
    ``GROUP_PHOTOS``); default the bundled media. Group photos make people appear together; a portrait of
    each of them makes them recur. Unlike ``make_character_video`` nothing is cut out or restyled, so
    frames look like footage of real photos (the demo title uses this); people of ``faces/`` on screen
    for ``PHOTO_CHARACTER_MIN_S`` or more are the ``characters``, the rest ``background``.
    """
    from marquee.synth.media import bundled_media_dir

    root = Path(media) if media is not None else bundled_media_dir()
    portraits, groups = _stills(root)
    if not portraits:
        raise FileNotFoundError(f"no face photos under {root / 'faces'}")
    rng = np.random.default_rng(seed)
    w, h = size
    lengths: list[int] = []
    total = max(1, round(seconds * fps))
    while sum(lengths) < total:
        n = round(float(rng.uniform(*shot_seconds)) * fps)
        rest = total - sum(lengths)
        lengths.append(rest if rest < n + round(shot_seconds[0] * fps / 2) else n)
    plan = _still_plan(rng, portraits, groups, len(lengths))
    frames_truth: list[list[dict[str, Any]]] = []
    scenes: list[Scene] = []
    photos_used: dict[str, set[str]] = defaultdict(set)
    container, stream = _h264_writer(path, (w, h), fps, crf)
    start = 0
    try:
        for sid, (still, nf) in enumerate(zip(plan, lengths, strict=True)):
            bgr = cv2.imread(str(still.path), cv2.IMREAD_COLOR)
            group = len(still.faces) > 1
            share = float(rng.uniform(0.45, 0.65) if group else rng.uniform(0.17, 0.28))
            zoom = float(rng.uniform(1.1, 1.3))
            shares = (share, share * zoom) if rng.random() < 0.5 else (share * zoom, share)
            wins = [_window(rng, still, (bgr.shape[1], bgr.shape[0]), w / h, s) for s in shares]
            # shrink the photo first so that no window is wider than the output (warpAffine would alias)
            s = min(1.0, w / min(win[2] for win in wins))
            if s < 1.0:
                bgr = cv2.resize(bgr, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
                wins = [win * s for win in wins]
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            faces = {who: b * s for who, b in still.faces.items()}
            people = sorted(faces)
            for who in people:
                photos_used[who].add(still.key)
            scenes.append(Scene(sid, start, start + nf - 1, "scene", people, "photo"))
            for i in range(nf):
                t = i / max(1, nf - 1)
                t = t * t * (3 - 2 * t)  # ease in and out
                x0, y0, ww = wins[0] + (wins[1] - wins[0]) * t
                k = w / ww
                m = np.asarray([[k, 0, -x0 * k], [0, k, -y0 * k]], np.float64)
                out = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
                visible = []
                for who in people:
                    b = (faces[who] - np.asarray([x0, y0, x0, y0])) * k
                    inside = max(0.0, min(b[2], w) - max(b[0], 0)) * max(0.0, min(b[3], h) - max(b[1], 0))
                    if inside >= 0.7 * (b[2] - b[0]) * (b[3] - b[1]):
                        visible.append({"identity": who, "box": [round(float(v), 1) for v in b]})
                frames_truth.append(visible)
                for packet in stream.encode(
                    av.VideoFrame.from_ndarray(np.ascontiguousarray(out), format="rgb24")
                ):
                    container.mux(packet)
            start += nf
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    seen = {who: sum(any(p["identity"] == who for p in f) for f in frames_truth) / fps for who in photos_used}
    main = sorted(who for who, s in seen.items() if s >= PHOTO_CHARACTER_MIN_S and who not in EXTRAS)
    background = sorted(who for who in seen if who not in main)
    truth = _summarise(str(path), seed, size, float(fps), main, background, scenes, frames_truth, photos_used)
    Path(str(path) + ".truth.json").write_text(json.dumps(truth.to_json()))
    return truth
