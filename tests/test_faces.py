"""Characters: detection, tracking, constrained clustering, screen time, graph, end to end.

Most tests build their own data (boxes, vectors, face records); the detector test needs a real photo
and the end-to-end test a short video generated from real photos (``shared/media/faces``): both skip
with a reason when that folder is absent.
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
from marquee.synth.faces import FACE_BOXES, faces_dir

MEDIA = faces_dir()
needs_media = pytest.mark.skipif(
    not (MEDIA / "obama" / "obama.jpg").is_file(),
    reason=f"face photos not found at {MEDIA} (set MARQUEE_SHARED_MEDIA to shared/media)",
)


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


@needs_media
def test_mtcnn_finds_the_face_in_a_real_photo():
    from marquee.ops.faces.detect import make_face_detector

    detector = make_face_detector("mtcnn")
    image = cv2.cvtColor(cv2.imread(str(MEDIA / "obama" / "obama.jpg")), cv2.COLOR_BGR2RGB)
    (dets,) = detector.detect_batch([image])
    main = dets[int(np.argmax(dets.area))]
    truth = np.asarray(FACE_BOXES["obama/obama.jpg"], np.float32)
    assert box_iou(main.boxes, truth[None])[0, 0] > 0.8  # source pixels, though detected at 640 px
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
    if not (MEDIA / "obama" / "obama.jpg").is_file():
        pytest.skip(f"face photos not found at {MEDIA} (set MARQUEE_SHARED_MEDIA to shared/media)")
    from marquee.ops.faces import characters_for_video
    from marquee.synth.faces import make_character_video

    path = tmp_path_factory.mktemp("faces") / "chars.mp4"
    make_character_video(path, seed=1, seconds=10, size=(480, 270), n_main=2, n_background=1)
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
