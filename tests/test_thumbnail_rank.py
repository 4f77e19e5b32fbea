"""Ranking and diversity of thumbnail candidates (pure functions on small tables)."""

from __future__ import annotations

import itertools

from marquee.ops.thumbnails.rank import RankPolicy, frame_candidates, select_diverse


def face(fid, frame, shot, char, expr=0.9, eyes=0.95, h=80.0):
    return {
        "face_id": fid,
        "frame": frame,
        "time_s": frame / 25,
        "shot_id": shot,
        "character_id": char,
        "y1": 100.0,
        "y2": 100.0 + h,
        "expression": expr,
        "eyes_open": eyes,
    }


def keyframe(frame, sharp=1.0, bright=0.45):
    return {"frame": frame, "sharpness": sharp, "brightness": bright, "height": 360}


def test_score_is_prominence_times_expression_times_quality():
    faces = [face(0, 10, 0, 0), face(1, 60, 1, 1)]
    cands = frame_candidates(faces, [keyframe(10), keyframe(60)], {0: 0.6, 1: 0.3})
    assert [c.primary_character for c in cands] == [0, 1]
    lead, second = cands
    assert second.prominence == lead.prominence / 2
    assert lead.score == round(lead.prominence * lead.expression * lead.quality, 6)


def test_background_and_tiny_faces_never_lead():
    faces = [face(0, 10, 0, 5), face(1, 10, 0, 0, h=10)]  # character 5 is background; tiny lead
    assert frame_candidates(faces, [keyframe(10)], {0: 1.0}) == []


def test_blinking_lead_lets_the_second_character_lead_the_frame():
    faces = [face(0, 10, 0, 0, expr=0.02, eyes=0.05), face(1, 10, 0, 1, expr=0.9)]
    best = frame_candidates(faces, [keyframe(10)], {0: 0.6, 1: 0.4})[0]
    assert best.primary_character == 1 and best.character_ids == [0, 1]


def test_selection_is_diverse_by_shot_character_and_time():
    faces = []
    for shot in range(10):
        for k in range(3):  # three frames per shot, lead and second together
            frame = shot * 100 + k * 10
            faces += [
                face(len(faces), frame, shot, 0, expr=0.95),
                face(len(faces) + 1, frame, shot, 1, expr=0.9),
            ]
    kfs = [keyframe(f["frame"]) for f in faces[::2]]
    policy = RankPolicy(top_k=8, per_character_share=0.5)
    chosen = select_diverse(frame_candidates(faces, kfs, {0: 0.6, 1: 0.4}, policy), 40.0, policy)
    assert len(chosen) == 8
    assert len({c.shot_id for c in chosen}) >= 4  # at most two per shot
    assert sum(c.primary_character == 0 for c in chosen) == 4  # the lead's share is capped
    assert len({c.frame for c in chosen}) == 8


def test_a_two_shot_gives_one_candidate_per_time_gap_whichever_face_leads():
    """Two characters in one shot, frames a second apart: near-duplicates, however the lead is chosen."""
    faces = []
    for k, lead in enumerate([0, 1, 0, 1]):  # frames 0, 25, 50, 75 of one shot, the lead alternating
        faces += [
            face(len(faces), k * 25, 0, lead, expr=0.95),
            face(len(faces) + 1, k * 25, 0, 1 - lead, expr=0.5),
        ]
    kfs = [keyframe(f["frame"]) for f in faces[::2]]
    policy = RankPolicy(top_k=8, per_character_share=1.0)
    chosen = select_diverse(frame_candidates(faces, kfs, {0: 0.5, 1: 0.5}, policy), 40.0, policy)
    times = sorted(c.time_s for c in chosen)
    assert len(chosen) >= 1 and all(b - a >= policy.min_gap_s for a, b in itertools.pairwise(times))
