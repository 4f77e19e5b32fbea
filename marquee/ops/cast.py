"""Who is a lead and who is a minor character: one rule for the character graph picture and the report.

A feature film has a few leads, some supporting roles and a long tail of minor characters. Forty faces
on one picture are unreadable, and the tail says little one by one, so both the graph picture
(``marquee.ops.faces.graph``) and the report (``marquee.ops.report``) show the leads individually and
group the rest, and they must agree on who is who.
"""

from __future__ import annotations

from collections.abc import Sequence

#: At most this many leads are drawn as faces (and listed first in the report): forty faces on a 960 px
#: picture are unreadable, and a film's long tail of minor characters says little one by one.
MAX_LEADS = 12
#: In a cast bigger than ``MAX_LEADS``, a character with less than this share of screen time is minor
#: even when it ranks among the first ``MAX_LEADS``.
MIN_LEAD_SHARE = 0.01
#: This many of the most prominent characters are leads however small their share.
MIN_LEADS = 3


def split_cast(
    ranked: Sequence[tuple[int, float]],
    *,
    max_leads: int = MAX_LEADS,
    min_share: float = MIN_LEAD_SHARE,
) -> tuple[list[int], list[int]]:
    """Leads and minor characters from ``(character_id, screen_time_share)`` in prominence order.

    A cast of up to ``max_leads + 1`` is all leads (grouping a single character saves nothing). A
    bigger one keeps at most ``max_leads`` leads and stops earlier at the first character under
    ``min_share`` of screen time (keeping at least ``MIN_LEADS``). The picture and the report both
    split with this, so they agree on who is a lead.
    """
    ids = [int(c) for c, _ in ranked]
    if len(ids) <= max_leads + 1:
        return ids, []
    n = 0
    for _, share in ranked[:max_leads]:
        if n >= MIN_LEADS and share < min_share:
            break
        n += 1
    return ids[:n], ids[n:]
