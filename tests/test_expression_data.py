"""The labelled expression crops (``tests/data/expressions``) are well-formed.

Why: the expression signals and the learnable expression model are judged on these crops, so a crop
that is missing, a box outside its crop or a label outside the vocabulary would silently skew every
accuracy figure. The minimum counts are what the real sources gave (see the folder's README.md);
they guard against losing items, not against the scarcity of real blinks.
"""

from __future__ import annotations

import json

import pytest

from marquee.synth.expressions import ATTRIBUTES, FORMAT, class_counts, default_root, load_labelled_crops

#: Minimum items per (attribute, value), real and synthetic together; closed eyes are real only.
MINIMUM = {
    ("eyes", "open"): 75,
    ("eyes", "closed"): 2,
    ("mouth", "open"): 45,
    ("mouth", "closed"): 45,
    ("sharp", "sharp"): 50,
    ("sharp", "blurred"): 35,
}


@pytest.fixture(scope="module")
def crops():
    return load_labelled_crops()


def test_labels_file_is_well_formed():
    doc = json.loads((default_root() / "labels.json").read_text())
    assert doc["format"] == FORMAT
    ids = [it["id"] for it in doc["items"]]
    assert len(ids) == len(set(ids)), "duplicate item ids"
    for it in doc["items"]:
        assert it["how"], it["id"]
        assert (default_root() / it["file"]).is_file(), it["file"]
        assert it["source"].startswith(("clips/", "faces/", "scenes/")), it["source"]
        syn = it.get("synthetic")
        if syn is not None:
            assert syn["of"] in ids and syn["kind"] in ("motion", "defocus"), it["id"]
            assert it["labels"]["sharp"] == "blurred", it["id"]


def test_crops_decode_and_boxes_lie_inside(crops):
    for c in crops:
        h, w = c.image.shape[:2]
        assert c.image.ndim == 3 and c.image.shape[2] == 3 and max(h, w) <= 256, c.id
        x1, y1, x2, y2 = c.box
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, (c.id, c.box, (w, h))
        assert (x2 - x1) * (y2 - y1) >= 0.15 * w * h, f"{c.id}: face box too small for its crop"
        for attr, values in ATTRIBUTES.items():
            assert c.labels[attr] in (*values, None), (c.id, attr, c.labels[attr])


def test_class_counts(crops):
    counts = class_counts(crops)
    lines = [
        f"{attr}={value}: {n['real']} real + {n['synthetic']} synthetic"
        for attr, per in counts.items()
        for value, n in per.items()
    ]
    print("\n".join(lines))
    for (attr, value), minimum in MINIMUM.items():
        n = counts[attr][value]
        assert n["real"] + n["synthetic"] >= minimum, f"{attr}={value}: {n} < {minimum}"
    assert counts["eyes"]["closed"]["synthetic"] == 0, "closed eyes must be real"


def test_folder_stays_small():
    total = sum(p.stat().st_size for p in default_root().rglob("*") if p.is_file())
    assert total < 3_000_000, total
