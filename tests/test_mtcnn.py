"""Our MTCNN cascade (``marquee.ops.faces.mtcnn``) against facenet-pytorch's ``detect_face``.

Same nets and weights, run both ways on the bundled photos (``marquee/synth/bundled``, through
``bundled_media_dir()``) and a face crop of ``tests/data``: the faces must be the same (IoU >= 0.7,
landmarks within a pixel; in fact they agree to float rounding, since the area resampling reproduces
facenet-pytorch's ``adaptive_avg_pool2d`` exactly). Also: empty batches and frames without faces,
a batch with different numbers of faces per image, and faces whose boxes leave the image.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from marquee.ops.faces import mtcnn
from marquee.ops.faces.detect import MTCNNDetector, resize_long_side
from marquee.ops.faces.types import box_iou
from marquee.synth.media import bundled_media_dir

MEDIA = bundled_media_dir()
CROP = "tests/data/expressions/crops/photo_obama_obama_0.jpg"  # 256x256, the face fills it
H, W = 480, 640  # the batch's canvas


def _rgb(path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _on_canvas(image: np.ndarray, fill: int = 0, bottom_right: bool = False) -> np.ndarray:
    """``image`` shrunk to fit the canvas, pasted at its top-left (or bottom-right) corner."""
    scale = min(1.0, H / image.shape[0], W / image.shape[1])
    if scale < 1:
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    canvas = np.full((H, W, 3), fill, np.uint8)
    if bottom_right:
        canvas[H - image.shape[0] :, W - image.shape[1] :] = image
    else:
        canvas[: image.shape[0], : image.shape[1]] = image
    return canvas


@pytest.fixture(scope="module")
def detector() -> MTCNNDetector:
    return MTCNNDetector(device="cpu")


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    """Two faces, two faces, none, one face cut by the left and top edges, one cut by the right
    and bottom edges: equal-size images, as the detector batches them."""
    john = _rgb(MEDIA / "faces" / "kit_harington" / "john2.jpg")  # 630x374, face near 318..480, 75..282
    return np.stack(
        [
            _on_canvas(_rgb(MEDIA / "scenes" / "two_people.jpg")),
            _on_canvas(_rgb(MEDIA / "scenes" / "kit_with_rose.jpg"), fill=90),
            np.full((H, W, 3), 128, np.uint8),
            _on_canvas(john[100:350, 350:]),  # the face starts left of and above the image
            _on_canvas(john[0:250, 40:440], bottom_right=True),  # ... here ends right of and below it
        ]
    )


@pytest.fixture(scope="module")
def reference(batch, detector):
    return _reference(batch, detector)


def _reference(images: np.ndarray, det: MTCNNDetector, min_face_size: int = 20):
    from facenet_pytorch.models.utils.detect_face import detect_face

    with torch.inference_mode():
        boxes, points = detect_face(
            images, min_face_size, det._pnet, det._rnet, det._onet, list(det.thresholds), det.factor, "cpu"
        )
    out = []
    for b, p in zip(boxes, points, strict=True):
        b = np.asarray(b, np.float32).reshape(-1, 5)
        out.append((b[:, :4], b[:, 4], np.asarray(p, np.float32).reshape(-1, 5, 2)))
    return out


def _ours(images: np.ndarray, det: MTCNNDetector, min_face_size: int = 20, **options):
    found = mtcnn.detect_mtcnn(
        images,
        det._pnet,
        det._rnet,
        det._onet,
        min_face_size=min_face_size,
        thresholds=det.thresholds,
        factor=det.factor,
        device="cpu",
        **options,
    )
    return [(d.boxes, d.scores, d.landmarks) for d in found]


def _assert_same_faces(ref, ours, *, landmark_px: float, min_score: float = 0.9) -> list[float]:
    """Every face of either side scoring >= min_score has one on the other side in the same image with
    IoU >= 0.7 (and landmarks within ``landmark_px`` on average); the landmark distances."""
    dists = []
    for i, ((rb, rs, rp), (ob, os_, op)) in enumerate(zip(ref, ours, strict=True)):
        for (ab, as_, ap), (bb, bp), which in (
            ((rb, rs, rp), (ob, op), "ours"),
            ((ob, os_, op), (rb, rp), "ref"),
        ):
            for k in np.flatnonzero(as_ >= min_score):
                iou = box_iou(ab[k : k + 1], bb)[0] if len(bb) else np.zeros(1)
                j = int(np.argmax(iou))
                assert iou[j] >= 0.7, f"image {i}: face {ab[k]} has no match in {which}"
                dists.append(float(np.linalg.norm(ap[k] - bp[j], axis=1).mean()))
                assert dists[-1] <= landmark_px, f"image {i}: landmarks {dists[-1]:.2f} px apart"
    return dists


def test_finds_the_faces_facenet_pytorch_finds(detector, batch, reference):
    ref, ours = reference, _ours(batch, detector)
    assert [int((s >= 0.9).sum()) for _, s, _ in ref] == [2, 2, 0, 1, 1]
    assert [int((s >= 0.9).sum()) for _, s, _ in ours] == [2, 2, 0, 1, 1]
    dists = _assert_same_faces(ref, ours, landmark_px=1.0)
    assert np.mean(dists) < 0.1  # the same inputs to the nets: the same faces, to float rounding
    for (rb, rs, _), (ob, os_, _) in zip(ref, ours, strict=True):
        assert len(rb) == len(ob) and np.allclose(np.sort(rs), np.sort(os_), atol=1e-4)


def test_faces_leaving_the_image(detector, batch):
    """The cut faces keep boxes reaching past the border (as facenet-pytorch's do); the detector
    clips them to the image."""
    ours = _ours(batch, detector)
    (x1, y1, _, _), (_, _, x2, y2) = ours[3][0][0], ours[4][0][0]
    assert x1 < 0 and y1 < 0 and x2 > W and y2 > H
    found = detector.detect_batch(list(batch))
    for dets in found[3:]:
        assert len(dets) == 1
        b = dets.boxes[0]
        assert b.min() >= 0 and b[2] <= W and b[3] <= H


def test_single_images_of_any_size_and_a_face_filling_the_frame(detector):
    """Images alone (batches of one) at their own sizes, among them a 256x256 crop the face fills."""
    paths = [MEDIA / "scenes" / "obama_and_biden.jpg", MEDIA / "faces" / "obama" / "obama.jpg", CROP]
    for path in paths:
        image = resize_long_side(_rgb(path), 640)[0][None]
        _assert_same_faces(_reference(image, detector), _ours(image, detector), landmark_px=1.0)


@pytest.mark.parametrize(
    "options",
    [
        {"pyramid": "cv2", "crops": "cv2"},
        {"crops": "roi_align"},
        {"edge": "pad"},
        {"crops": "cv2", "edge": "pad"},
    ],
)
def test_other_resampling_finds_the_same_faces(detector, batch, reference, options):
    """cv2 / roi_align resampling and zero-padded crops resample differently (no longer exact) but
    find the same faces where they are inside the image."""
    ours = _ours(batch[:3], detector, **options)
    _assert_same_faces(reference[:3], ours, landmark_px=4.0)


def test_zero_padding_puts_faces_cut_by_the_border_where_they_are(detector, batch, reference):
    """facenet-pytorch (our default, for the same results) stretches the part of a box inside the
    image over the whole crop, which inflates the box of a face cut by the border; zero padding (the
    original MTCNN, ``edge="pad"``) keeps its proportions and finds the face where it is."""
    (x1, y1, x2, y2) = (318, 75, 480, 282)  # the face in the uncut photo (where MTCNN finds it)
    truth = np.asarray([[x1 - 350, y1 - 100, x2 - 350, y2 - 100], [x1 + 200, y1 + 230, x2 + 200, y2 + 230]])
    padded = _ours(batch[3:], detector, edge="pad")
    for k, i in enumerate((3, 4)):
        default_iou = box_iou(reference[i][0][:1], truth[k : k + 1])[0, 0]
        padded_iou = box_iou(padded[k][0][:1], truth[k : k + 1])[0, 0]
        assert padded_iou > 0.8 and padded_iou > default_iou + 0.05


def test_empty_batches_and_frames_without_faces(detector):
    assert _ours(np.zeros((0, H, W, 3), np.uint8), detector) == []
    assert mtcnn.detect_mtcnn([], detector._pnet, detector._rnet, detector._onet) == []
    assert detector.detect_batch([]) == []
    noise = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    blank = np.zeros((H, W, 3), np.uint8)
    for boxes, scores, marks in _ours(np.stack([blank, noise]), detector):
        assert boxes.shape == (0, 4) and scores.shape == (0,) and marks.shape == (0, 5, 2)
    # smaller than P-net's window at the first scale: no pyramid level at all
    assert [len(b) for b, _, _ in _ours(np.zeros((2, 10, 10, 3), np.uint8), detector)] == [0, 0]
    with pytest.raises(ValueError, match="uint8"):
        _ours(np.zeros((1, 20, 20, 3), np.float32), detector)


def _normalised(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - 127.5) * 0.0078125


def test_area_resampling_is_adaptive_average_pooling(monkeypatch):
    """Pyramid levels and crops (inside the image, or padded with black outside it) equal torch's
    ``adaptive_avg_pool2d``, which facenet-pytorch resamples with (normalised as the nets take
    them); the integral image made on a GPU is cv2's."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (2, 37, 53, 3), dtype=np.uint8)
    src = mtcnn._Source(images, torch.device("cpu"), torch.float32)
    assert torch.equal(mtcnn.integral_images(torch.from_numpy(images)), src.integral)
    nchw = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    for size in [(54, 38), (31, 22), (12, 12), (5, 3)]:  # (w, h): one pixel larger, smaller, tiny
        want = F.adaptive_avg_pool2d(nchw, size[::-1]).permute(0, 2, 3, 1)
        assert torch.allclose(mtcnn._area_level(src, size), _normalised(want), atol=1e-6)
    win = torch.tensor([[3, 4, 40, 30], [0, 0, 53, 37], [10, 2, 19, 9], [-5, -7, 20, 12], [40, 30, 60, 45]])
    inds = torch.tensor([0, 1, 1, 0, 1])
    padded = np.zeros((2, 37 + 16, 53 + 16, 3), np.float32)
    padded[:, 8:-8, 8:-8] = images
    for n in (24, 48):
        got = mtcnn._area_crops(src, win, inds, n)
        for k, ((x0, y0, x1, y1), i) in enumerate(zip(win.tolist(), inds.tolist(), strict=True)):
            part = torch.from_numpy(padded[i, y0 + 8 : y1 + 8, x0 + 8 : x1 + 8]).permute(2, 0, 1)
            want = F.adaptive_avg_pool2d(part[None], (n, n))[0].permute(1, 2, 0)
            assert torch.allclose(got[k], _normalised(want), atol=1e-6)
        monkeypatch.setattr(mtcnn, "_GATHER_CHUNK", 2 * (2 * n) ** 2)  # two boxes per gather
        assert torch.equal(mtcnn._area_crops(src, win, inds, n), got)
        monkeypatch.undo()


def test_crop_windows_and_boxes_outside_the_image(detector):
    """Windows follow facenet-pytorch's ``pad`` (truncate, one-based -> zero-based, clip); a box with
    no pixel in the image is dropped rather than cropped."""
    boxes = torch.tensor([[10.7, 5.2, 30.9, 25.4], [-8.0, -3.5, 12.0, 16.5], [50.0, 60.0, 90.0, 95.0]])
    win = mtcnn._windows(boxes, 64, 80, "clip")
    assert win.tolist() == [[9, 4, 30, 25], [0, 0, 12, 16], [49, 59, 64, 80]]
    assert mtcnn._windows(boxes, 64, 80, "pad").tolist()[1:] == [[-9, -4, 12, 16], [49, 59, 90, 95]]
    src = mtcnn._Source(np.zeros((1, 80, 64, 3), np.uint8), torch.device("cpu"), torch.float32)
    boxes = torch.cat([boxes, torch.tensor([[70.0, 10.0, 90.0, 30.0], [5.0, -40.0, 25.0, -20.0]])])
    for method in ("area", "cv2", "roi_align"):
        x, kept, inds = mtcnn._crops(src, boxes, torch.zeros(5, dtype=torch.long), 24, method, "clip")
        assert x.shape == (3, 3, 24, 24) and torch.equal(kept, boxes[:3]) and inds.tolist() == [0, 0, 0]


def test_nms_min_drops_a_small_box_inside_a_big_one():
    boxes = torch.tensor([[10.0, 10.0, 39.0, 39.0], [0.0, 0.0, 99.0, 99.0], [200.0, 0.0, 239.0, 39.0]])
    scores = torch.tensor([0.9, 0.95, 0.8])
    # IoU of the small and the big box is 0.09, but the small one lies inside: "Min" drops it
    assert mtcnn._nms_min(boxes, scores, torch.zeros(3, dtype=torch.long), 0.7).tolist() == [1, 2]
    # boxes of different images never suppress each other; image by image, strongest first
    assert mtcnn._nms_min(boxes, scores, torch.tensor([1, 0, 1]), 0.7).tolist() == [1, 0, 2]
    assert len(mtcnn._nms_min(boxes[:0], scores[:0], torch.zeros(0, dtype=torch.long), 0.7)) == 0


def test_pyramid_scales_follow_min_face_size_and_factor():
    scales = mtcnn.pyramid_scales(360, 640, 20, 0.709)
    assert scales[0] == pytest.approx(0.6) and len(scales) == 9
    assert all(b / a == pytest.approx(0.709) for a, b in itertools.pairwise(scales))
    assert 360 * scales[-1] >= 12 > 360 * scales[-1] * 0.709
    assert mtcnn.pyramid_scales(10, 10, 20, 0.709) == []
