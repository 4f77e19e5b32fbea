"""Artwork crops, logo-safe areas and logo compositing (pure geometry on generated pictures)."""

from __future__ import annotations

import numpy as np
import pytest

from marquee.ops.thumbnails.crops import (
    ASPECTS,
    Box,
    CropPolicy,
    artwork_crop,
    composite_logo,
    detail_map,
    largest_crop,
    logo_safe_area,
)

W, H = 1920, 1080


def test_largest_crop_fills_one_side():
    assert largest_crop(W, H, 16 / 9) == (1920.0, 1080.0)
    assert largest_crop(W, H, 2 / 3) == (720.0, 1080.0)
    assert largest_crop(1000, 2000, 1.0) == (1000.0, 1000.0)


@pytest.mark.parametrize("name", list(ASPECTS))
def test_crops_have_the_shape_and_stay_inside_the_frame(name):
    aspect = ASPECTS[name]
    for faces in ([], [Box(1500, 200, 1700, 450)], [Box(100, 600, 220, 750), Box(900, 300, 1000, 420)]):
        crop = artwork_crop(W, H, faces, aspect)
        assert crop.x1 >= 0 and crop.y1 >= 0 and crop.x2 <= W and crop.y2 <= H
        assert crop.w / crop.h == pytest.approx(aspect, rel=0.01)
        if faces:
            assert crop.contains(faces[0])  # the primary face is always whole


def test_single_face_is_centred_across_with_eyes_high():
    face = Box(800, 400, 1000, 640)  # 240 px high
    crop = artwork_crop(W, H, [face], 2 / 3)
    assert abs(crop.cx - face.cx) <= 1
    assert (face.cy - crop.y1) / crop.h == pytest.approx(CropPolicy().eye_line, abs=0.02)
    assert face.h / crop.h == pytest.approx(CropPolicy().face_share, abs=0.02)  # zoomed to the face


def test_small_face_zoom_is_limited_for_resolution():
    crop = artwork_crop(W, H, [Box(950, 500, 970, 525)], 16 / 9)
    assert crop.h == pytest.approx(CropPolicy().min_zoom * H, abs=1)


def test_faces_that_cannot_fit_keep_the_primary_and_never_halve_another():
    primary, other = Box(200, 300, 400, 550), Box(700, 320, 880, 560)
    crop = artwork_crop(W, H, [primary, other], 2 / 3, CropPolicy(min_zoom=1.0))
    assert crop.contains(primary)
    assert crop.contains(other) or crop.overlap(other) == 0
    both = artwork_crop(W, H, [primary, other], 16 / 9)
    assert both.contains(primary) and both.contains(other)


def test_logo_area_avoids_faces_and_busy_picture():
    rng = np.random.default_rng(0)
    img = np.full((H, W, 3), 40, np.uint8)
    img[H // 2 :] = rng.integers(0, 255, (H - H // 2, W, 3), dtype=np.uint8)  # busy lower half
    face = Box(150, 100, 450, 420)  # top-left
    crop = Box(0, 0, W, H)
    area = logo_safe_area(detail_map(img), crop, [face])
    assert area is not None and area.position in ("top-centre", "top-right")
    assert area.box.overlap(face) == 0 and area.detail < 0.01
    assert logo_safe_area(detail_map(img), crop, [Box(0, 0, W, H)]) is None  # a face everywhere


def test_composite_logo_blends_by_alpha():
    crop = np.zeros((100, 200, 3), np.uint8)
    logo = np.zeros((10, 40, 4), np.uint8)
    logo[..., :3] = 255
    logo[:, :20, 3] = 255  # left half opaque white, right half transparent
    out = composite_logo(crop, logo, Box(20, 20, 100, 40))
    assert out[30, 30].tolist() == [255, 255, 255]
    assert out[30, 95].tolist() == [0, 0, 0]
    assert out[5, 5].tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="RGBA"):
        composite_logo(crop, logo[..., :3], Box(0, 0, 10, 10))
