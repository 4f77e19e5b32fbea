"""The MTCNN cascade (Zhang et al. 2016), batched, for facenet-pytorch's P-, R- and O-nets.

Why our own runner: facenet-pytorch's ``detect_face`` resamples with torch ``adaptive_avg_pool2d``
on float tensors, once per pyramid level and once per candidate box for the R- and O-net inputs.
Those thousands of tiny torch calls per batch are a large part of its time on a CPU (most of it when
other work competes for the cores, as each is a multi-threaded op). Here every resampled
pixel is an area average read from one integral image (summed-area table) per batch: a pyramid
level is two gathers along rows and columns, and all R-/O-net crops of a batch are one gather, with
no torch call per box. The bins are those of ``adaptive_avg_pool2d`` (``floor(i*L/n)`` to
``ceil((i+1)*L/n)``) and the sums are exact integers, so the nets see the inputs facenet-pytorch
gives them (to float rounding) and the detections are the same, on a CPU and on a GPU alike (the
same tensor code runs on either; only the integral image is made by ``cv2.integral`` on a CPU).
The nets run on channels-last tensors, which makes their convolutions and pooling two to three
times faster on a CPU than the NCHW layout.

``cv2.resize(INTER_AREA)`` (a per-image pyramid and a per-box crop on uint8) and
``torchvision.ops.roi_align`` crops are kept as options (``pyramid``, ``crops``) for comparison:
they are no faster on a CPU (cv2's pyramid and roi_align are slower) and, resampling differently,
move about 2% of the faces by a few pixels.

The cascade, as facenet-pytorch runs it (boxes keep MTCNN's one-based pixel convention):

1. image pyramid: scales ``12 / min_face_size * factor**k`` while the shorter side stays >= 12 px,
   level size ``int(side * scale + 1)``;
2. P-net on each level; every score-map cell at or over ``thresholds[0]`` is a 12x12 window (stride
   2) mapped back by the scale; NMS 0.5 per image and level, then NMS 0.7 per image across levels;
   box regression (offsets times the box size, without the +1), then made square (``_square``);
3. R-net on 24x24 crops (boxes clipped to the image, as facenet-pytorch's ``pad`` does; or
   zero-padded where they leave it, as the original MTCNN's ``pad`` does: ``edge``), score over
   ``thresholds[1]``, NMS 0.7 per image, regression (``+1`` size convention), square;
4. O-net on 48x48 crops: score over ``thresholds[2]``, five landmarks relative to the box,
   regression, then NMS 0.7 per image by intersection over the *smaller* box ("Min").

Framework-free: ``marquee.ops.faces.detect.MTCNNDetector`` wraps this.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np
import torch
from torchvision.ops import batched_nms, roi_align

from marquee.ops.faces.types import FaceDetections

#: How pyramid levels are made: ``area`` (exact area averages from the integral image, the default)
#: or ``cv2`` (``cv2.resize`` INTER_AREA per image on uint8, then uploaded).
PyramidMethod = Literal["area", "cv2"]

#: How R-/O-net crops are made: ``area`` (exact area averages from the integral image, one gather
#: for all boxes, the default), ``cv2`` (``cv2.resize`` INTER_AREA per box on uint8 views) or
#: ``roi_align`` (one torchvision call over the float batch: bilinear samples, not area averages).
CropMethod = Literal["area", "cv2", "roi_align"]

#: What a crop holds where its box leaves the image: ``clip`` stretches the part inside the image
#: over the whole crop (facenet-pytorch, the default), ``pad`` fills the outside with black
#: (the original MTCNN).
EdgeMode = Literal["clip", "pad"]

_CELL = 12  # P-net's receptive field: one score-map cell is a 12x12 window ...
_STRIDE = 2  # ... and neighbouring cells are 2 pixels apart
_NET_CHUNK = 2048  # R-/O-net boxes per forward pass: bounds activation memory on a GPU
_GATHER_CHUNK = 1 << 22  # integral-image corners per crop gather (about 80 MB with the indices)
_NORM = 0.0078125  # the nets take (pixel - 127.5) / 128


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float) -> list[float]:
    """The image scales P-net runs at: the first maps a ``min_face_size`` face onto P-net's 12 px
    window, each next one is ``factor`` smaller, down to a shorter side of 12 px."""
    scale = _CELL / float(min_face_size)
    side = min(height, width) * scale
    scales = []
    while side >= _CELL:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def detect_mtcnn(
    images: np.ndarray | Sequence[np.ndarray],
    pnet: torch.nn.Module,
    rnet: torch.nn.Module,
    onet: torch.nn.Module,
    *,
    min_face_size: float = 20,
    thresholds: Sequence[float] = (0.6, 0.7, 0.7),
    factor: float = 0.709,
    device: str | torch.device = "cpu",
    pyramid: PyramidMethod = "area",
    crops: CropMethod = "area",
    edge: EdgeMode = "clip",
) -> list[FaceDetections]:
    """Faces per image of a batch of equal-size RGB uint8 images (B, H, W, 3), in their pixels.

    Every face the cascade keeps is returned (no score floor beyond ``thresholds[2]``), strongest
    first. ``pnet``, ``rnet`` and ``onet`` must already be on ``device``, in eval mode.
    """
    if not isinstance(images, np.ndarray):
        if len(images) == 0:
            return []
        images = np.stack(images)
    batch = np.ascontiguousarray(images)
    if batch.ndim == 3:
        batch = batch[None]
    if batch.ndim != 4 or batch.shape[3] != 3 or batch.dtype != np.uint8:
        raise ValueError(f"MTCNN takes RGB uint8 images (B, H, W, 3); got {batch.shape} {batch.dtype}")
    n_images = len(batch)
    if n_images == 0:
        return []
    src = _Source(batch, torch.device(device), next(pnet.parameters()).dtype)
    thr = [float(t) for t in thresholds]
    empty = [FaceDetections.empty() for _ in range(n_images)]
    with torch.inference_mode():
        boxes, inds = _propose(src, pnet, min_face_size, factor, thr[0], pyramid)

        # R-net: re-score and refine the proposals.
        x, boxes, inds = _crops(src, boxes, inds, 24, crops, edge)
        if len(boxes) == 0:
            return empty
        reg, prob = _forward(rnet, x)
        score = prob[:, 1]
        keep = score > thr[1]
        boxes, inds, reg, score = boxes[keep], inds[keep], reg[keep], score[keep]
        keep = batched_nms(boxes, score, inds, 0.7)
        boxes = _square(_regress(boxes[keep], reg[keep]))
        inds = inds[keep]

        # O-net: final score, box and landmarks.
        x, boxes, inds = _crops(src, boxes, inds, 48, crops, edge)
        if len(boxes) == 0:
            return empty
        reg, marks, prob = _forward(onet, x)
        score = prob[:, 1]
        keep = score > thr[2]
        boxes, inds, reg, marks, score = boxes[keep], inds[keep], reg[keep], marks[keep], score[keep]
        # O-net gives the five x then the five y as fractions of the box (one-based, +1 sizes)
        size = (boxes[:, 2:] - boxes[:, :2] + 1).unsqueeze(1)
        points = torch.stack((marks[:, :5], marks[:, 5:]), dim=2) * size + boxes[:, None, :2] - 1
        boxes = _regress(boxes, reg)
        keep = _nms_min(boxes, score, inds, 0.7)
        boxes, inds, points, score = boxes[keep], inds[keep], points[keep], score[keep]

    boxes_np, points_np = boxes.float().cpu().numpy(), points.float().cpu().numpy()
    score_np, inds_np = score.float().cpu().numpy(), inds.cpu().numpy()
    return [
        FaceDetections(boxes_np[inds_np == i], score_np[inds_np == i], points_np[inds_np == i])
        for i in range(n_images)
    ]


class _Source:
    """The batch as uint8 numpy (for ``cv2``), and, made on first use, its integral image and a float
    NCHW copy (for ``roi_align``) on the device."""

    def __init__(self, batch: np.ndarray, device: torch.device, dtype: torch.dtype) -> None:
        self.batch = batch
        self.device = device
        self.dtype = dtype
        self.height, self.width = batch.shape[1:3]
        self._integral: torch.Tensor | None = None
        self._float: torch.Tensor | None = None

    @property
    def integral(self) -> torch.Tensor:
        """(B, H + 1, W + 1, 3) int32: ``[b, y, x]`` is the sum of the pixels above and left of
        (y, x); exact (255 * H * W stays far below 2**31 at any frame size we detect on)."""
        if self._integral is None:
            if self.device.type == "cpu":  # cv2's is several times faster than two torch cumsums
                self._integral = torch.from_numpy(np.stack([cv2.integral(im) for im in self.batch]))
            else:
                self._integral = integral_images(torch.from_numpy(self.batch).to(self.device))
        return self._integral

    @property
    def float_nchw(self) -> torch.Tensor:
        if self._float is None:
            self._float = torch.from_numpy(self.batch).to(self.device).permute(0, 3, 1, 2).to(self.dtype)
        return self._float

    def to_net(self, pixels: torch.Tensor | np.ndarray, normalised: bool = False) -> torch.Tensor:
        """(N, h, w, 3) pixel values (uint8 or float; or already ``normalised``) -> the nets' (N, 3,
        h, w) input, (pixel - 127.5) / 128, kept channels-last in memory (much faster on a CPU)."""
        x = torch.from_numpy(pixels) if isinstance(pixels, np.ndarray) else pixels
        x = x.to(self.device).permute(0, 3, 1, 2)
        return x if normalised else x.to(self.dtype).sub(127.5).mul_(_NORM)


def integral_images(pixels: torch.Tensor) -> torch.Tensor:
    """Summed-area tables (B, H + 1, W + 1, C) int32 of uint8 images (B, H, W, C), on their device:
    ``[b, y, x]`` is the sum of the pixels above and left of (y, x), as ``cv2.integral`` gives."""
    b, h, w, c = pixels.shape
    table = torch.zeros((b, h + 1, w + 1, c), dtype=torch.int32, device=pixels.device)
    table[:, 1:, 1:] = pixels.cumsum(1, dtype=torch.int32).cumsum(2)
    return table


def _bins(length: torch.Tensor | int, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """First and past-the-end source index of each of ``n`` output pixels over ``length`` source
    pixels (``length`` a scalar or a (N,) tensor; then (N, n)): the bins of ``adaptive_avg_pool2d``."""
    i = torch.arange(n, device=device)
    if isinstance(length, torch.Tensor):
        length, i = length[:, None], i[None, :]
    start = torch.div(i * length, n, rounding_mode="floor")
    stop = -torch.div(-(i + 1) * length, n, rounding_mode="floor")
    return start, stop


def _area_level(src: _Source, size: tuple[int, int]) -> torch.Tensor:
    """The batch resized to ``size`` (width, height) by area averaging, normalised for the nets,
    (B, h, w, 3) float: row bins of the integral image give each output row's running sums along x,
    column bins of those give the bin sums."""
    table = src.integral
    w, h = size
    r0, r1 = _bins(src.height, h, table.device)
    c0, c1 = _bins(src.width, w, table.device)
    rows = table.index_select(1, torch.cat([r1, r0]))
    run = rows[:, :h] - rows[:, h:]  # (B, h, W + 1, 3): running sums along x over each row bin
    flat = run.reshape(-1, 3)  # gather whole (3-channel) entries: much faster than along dim 2
    base = torch.arange(run.shape[0] * h, device=table.device)[:, None] * run.shape[2]
    cols = flat.index_select(0, (base + torch.cat([c1, c0])[None, :]).reshape(-1))
    cols = cols.view(run.shape[0], h, 2 * w, 3)
    area = (r1 - r0)[:, None] * (c1 - c0)[None, :]
    return _normalised_means(cols[:, :, :w] - cols[:, :, w:], area[None, :, :, None], src.dtype)


def _area_crops(src: _Source, win: torch.Tensor, inds: torch.Tensor, n: int) -> torch.Tensor:
    """Each window (x0, y0, x1, y1, zero-based, end exclusive) of image ``inds`` resized to n x n by
    area averaging, normalised for the nets, (N, n, n, 3) float: the four integral-image corners of
    every bin, gathered for all boxes at once (in chunks of about 4M corners, to bound memory).
    Parts of a window outside the image count as black (its bins keep their full area)."""
    chunk = max(1, _GATHER_CHUNK // (2 * n) ** 2)
    if len(win) > chunk:
        parts = [
            _area_crops(src, win[i : i + chunk], inds[i : i + chunk], n) for i in range(0, len(win), chunk)
        ]
        return torch.cat(parts)
    table = src.integral
    h1, w1 = table.shape[1:3]
    r0, r1 = _bins(win[:, 3] - win[:, 1], n, table.device)
    c0, c1 = _bins(win[:, 2] - win[:, 0], n, table.device)
    rows = (torch.cat([r1, r0], 1) + win[:, 1:2]).clamp_(0, h1 - 1) + (inds * h1)[:, None]  # (N, 2n)
    cols = (torch.cat([c1, c0], 1) + win[:, 0:1]).clamp_(0, w1 - 1)  # (N, 2n)
    where = rows[:, :, None] * w1 + cols[:, None, :]  # (N, 2n, 2n) flat positions
    q = table.reshape(-1, 3).index_select(0, where.reshape(-1)).view(*where.shape, 3)
    sums = q[:, :n, :n] - q[:, n:, :n] - q[:, :n, n:] + q[:, n:, n:]
    area = (r1 - r0)[:, :, None] * (c1 - c0)[:, None, :]
    return _normalised_means(sums, area[..., None], src.dtype)


def _normalised_means(sums: torch.Tensor, area: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Bin sums over bin areas, as the nets take them ((mean - 127.5) / 128), in float32 (sums
    overflow float16), then in the nets' dtype."""
    scale = area.to(torch.float32).reciprocal_().mul_(_NORM)
    return sums.to(torch.float32).mul_(scale).sub_(127.5 * _NORM).to(dtype)


def _cv2_level(batch: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The batch (B, H, W, 3) resized to ``size`` (width, height) with INTER_AREA, uint8."""
    return np.stack([cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in batch])


def _propose(
    src: _Source,
    pnet: torch.nn.Module,
    min_face_size: float,
    factor: float,
    threshold: float,
    pyramid: PyramidMethod,
) -> tuple[torch.Tensor, torch.Tensor]:
    """P-net over the pyramid: candidate boxes (N, 4), regressed and squared, and their image index.

    Level sizes are facenet-pytorch's (``int(side * scale + 1)``), and windows are mapped back by
    ``scale`` (not by the level's exact size ratio), as MTCNN does."""
    height, width = src.height, src.width
    found: list[torch.Tensor] = []
    found_inds: list[torch.Tensor] = []
    for scale in pyramid_scales(height, width, min_face_size, factor):
        size = (int(width * scale + 1), int(height * scale + 1))
        if pyramid == "area":
            x = src.to_net(_area_level(src, size), normalised=True)
        else:
            x = src.to_net(_cv2_level(src.batch, size))
        reg, prob = pnet(x)
        face = prob[:, 1]
        hit = face >= threshold  # (B, h, w)
        where = hit.nonzero()  # (N, 3): image, row, column
        if len(where) == 0:
            continue
        cells = where[:, [2, 1]].to(reg.dtype)  # x, y of the cell
        start = torch.floor((_STRIDE * cells + 1) / scale)
        stop = torch.floor((_STRIDE * cells + _CELL) / scale)
        offsets = reg.permute(0, 2, 3, 1)[hit]  # (N, 4), in the order of ``where``
        cand = torch.cat([start, stop, face[hit][:, None], offsets], dim=1)
        keep = batched_nms(cand[:, :4], cand[:, 4], where[:, 0], 0.5)  # NMS per image on this level
        found.append(cand[keep])
        found_inds.append(where[:, 0][keep])
    if not found:
        empty = torch.zeros((0, 4), dtype=src.dtype, device=src.device)
        return empty, torch.zeros((0,), dtype=torch.long, device=src.device)
    cand = torch.cat(found)
    inds = torch.cat(found_inds)
    keep = batched_nms(cand[:, :4], cand[:, 4], inds, 0.7)  # NMS per image across levels
    cand, inds = cand[keep], inds[keep]
    size = (cand[:, 2:4] - cand[:, 0:2]).repeat(1, 2)  # w, h, w, h: P-net's regression has no +1
    return _square(cand[:, :4] + cand[:, 5:9] * size), inds


def _regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Boxes moved by R-/O-net's offsets, fractions of the box size (one-based: width + 1)."""
    size = (boxes[:, 2:4] - boxes[:, 0:2] + 1).repeat(1, 2)
    return boxes + reg * size


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Each box grown to a square about its centre, side the longer of width and height: the next
    net's input is square, so the crop keeps the face's proportions."""
    wh = boxes[:, 2:4] - boxes[:, 0:2]
    side = wh.max(dim=1, keepdim=True).values
    start = boxes[:, 0:2] + (wh - side) * 0.5
    return torch.cat([start, start + side], dim=1)


def _windows(boxes: torch.Tensor, width: int, height: int, edge: EdgeMode) -> torch.Tensor:
    """Integer pixel windows (N, 4) x0, y0, x1, y1 (zero-based, end exclusive) of one-based boxes:
    coordinates truncated (the one-based last pixel is the zero-based end), then clipped to the
    image for ``clip`` (facenet-pytorch's ``pad``)."""
    win = boxes.trunc().to(torch.int64)
    win[:, 0:2] -= 1
    if edge == "clip":
        win[:, 0:2].clamp_(min=0)
        win[:, 2].clamp_(max=width)
        win[:, 3].clamp_(max=height)
    return win


def _crops(
    src: _Source,
    boxes: torch.Tensor,
    inds: torch.Tensor,
    size: int,
    method: CropMethod,
    edge: EdgeMode,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every box cut out of its image and resized to ``size`` x ``size``, as normalised net input
    (N, 3, size, size), with the boxes and image indices kept: boxes with no pixel inside the image
    are dropped (facenet-pytorch would misalign its crops with its boxes there)."""
    width, height = src.width, src.height
    win = _windows(boxes, width, height, edge)
    inside = (win[:, 2] > win[:, 0].clamp(min=0)) & (win[:, 3] > win[:, 1].clamp(min=0))
    inside &= (win[:, 0] < width) & (win[:, 1] < height)
    if not bool(inside.all()):
        boxes, inds, win = boxes[inside], inds[inside], win[inside]
    if len(boxes) == 0:
        empty = torch.zeros((0, 3, size, size), dtype=src.dtype, device=src.device)
        return empty, boxes, inds
    if method == "area":
        return src.to_net(_area_crops(src, win, inds, size), normalised=True), boxes, inds
    pixels: torch.Tensor | np.ndarray
    if method == "cv2":
        pixels = _cv2_crops(src.batch, win.cpu().numpy(), inds.cpu().numpy(), size)
    else:
        rois = torch.cat([inds[:, None], win], dim=1).to(src.dtype)
        # aligned=True: pixel i covers [i, i + 1), so the window's edges are the box's; adaptive
        # sampling (-1): ceil(side / size) samples per bin and axis, every source pixel is read
        nchw = roi_align(src.float_nchw, rois, (size, size), 1.0, -1, aligned=True)
        pixels = nchw.permute(0, 2, 3, 1)
    return src.to_net(pixels), boxes, inds


def _cv2_crops(batch: np.ndarray, win: np.ndarray, inds: np.ndarray, size: int) -> np.ndarray:
    """``cv2.resize`` (INTER_AREA) of each window on the uint8 images into one (N, size, size, 3)
    array: a C call per box on a numpy view, no torch dispatch. Windows reaching past the image are
    zero-filled there (only ``edge='pad'`` makes such windows)."""
    height, width = batch.shape[1:3]
    out = np.empty((len(win), size, size, 3), np.uint8)
    for k, (i, (x0, y0, x1, y1)) in enumerate(zip(inds.tolist(), win.tolist(), strict=True)):
        if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
            part = batch[i, y0:y1, x0:x1]
        else:
            part = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
            cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
            part[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = batch[i, cy0:cy1, cx0:cx1]
        cv2.resize(part, (size, size), dst=out[k], interpolation=cv2.INTER_AREA)
    return out


def _forward(net: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``net(x)`` in chunks (bounded activation memory on a GPU), outputs concatenated."""
    if len(x) <= _NET_CHUNK:
        return tuple(net(x))
    parts = [net(x[i : i + _NET_CHUNK]) for i in range(0, len(x), _NET_CHUNK)]
    return tuple(torch.cat(p) for p in zip(*parts, strict=True))


def _nms_min(boxes: torch.Tensor, scores: torch.Tensor, inds: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy NMS per image where overlap is the intersection over the *smaller* box (MTCNN's "Min":
    it also drops a small box inside a bigger one, which IoU would keep), with one-based (+1) sizes
    as in MTCNN. Indices of the kept boxes, image by image, strongest first. Few boxes reach this
    stage: a loop.

    O-net's scores saturate (many exactly equal float32 values just under 1.0), so the tie-break
    decides which of two overlapping boxes stays: the order is numpy's default ``argsort`` of the
    float32 scores, read from the end, as facenet-pytorch's NMS does, so that we keep the same box."""
    if len(boxes) == 0:
        return torch.zeros((0,), dtype=torch.long, device=boxes.device)
    order = np.argsort(scores.float().cpu().numpy())[::-1]
    all_boxes = boxes.double().cpu().numpy()
    image = inds.cpu().numpy()[order]
    kept: list[int] = []
    for i in np.unique(image):
        mine = order[image == i]  # this image's boxes, strongest first
        b = all_boxes[mine]
        area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
        lo = np.maximum(b[:, None, :2], b[None, :, :2])
        hi = np.minimum(b[:, None, 2:], b[None, :, 2:])
        inter = np.prod(np.clip(hi - lo + 1, 0, None), axis=2)
        clash = inter / np.minimum(area[:, None], area[None, :]) > threshold
        dropped = np.zeros(len(b), bool)
        for k in range(len(b)):
            if not dropped[k]:
                kept.append(int(mine[k]))
                dropped |= clash[k]
    return torch.as_tensor(kept, dtype=torch.long, device=boxes.device)
