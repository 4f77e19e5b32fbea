"""Human-readable pictures and pages of a title's results: contact sheets, a shot timeline, HTML.

Creative teams judge shot and keyframe quality by eye, so every title gets a report they can open
without SQL: one contact sheet tile per shot (its representative keyframe, labelled with shot id,
time and the transition that begins it) and a timeline of shot lengths coloured by transition kind.
Pages are bounded: a two-hour film with 2,000 shots gets 20 sheets of 100 tiles, not one huge image.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from marquee.ops.cast import split_cast

TRANSITION_COLOURS = {
    "start": (120, 120, 120),
    "cut": (66, 133, 244),
    "dissolve": (244, 160, 0),
    "fade": (219, 68, 55),
}


@dataclass(frozen=True)
class Tile:
    """One tile of a contact sheet: an image loader (called lazily) and a caption."""

    load: Callable[[], Image.Image]
    caption: str
    colour: tuple[int, int, int] = (255, 255, 255)


def data_uri(data: bytes, mime: str) -> str:
    """``data:`` URI of a picture, so the page carries its images and opens anywhere on its own."""
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def contact_sheets(
    tiles: Sequence[Tile], *, per_sheet: int = 100, cols: int = 10, tile_w: int = 192, fmt: str = "PNG"
) -> list[bytes]:
    """Pages (``fmt``: PNG or JPEG) of ``per_sheet`` tiles; one page's images in memory at a time."""
    pages = []
    for start in range(0, len(tiles), per_sheet):
        pages.append(_sheet(tiles[start : start + per_sheet], cols=cols, tile_w=tile_w, fmt=fmt))
    return pages


def _sheet(tiles: Sequence[Tile], *, cols: int, tile_w: int, fmt: str = "PNG") -> bytes:
    tile_h = tile_w * 9 // 16
    cap_h = 16
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * tile_w, rows * (tile_h + cap_h)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, tile in enumerate(tiles):
        x, y = (i % cols) * tile_w, (i // cols) * (tile_h + cap_h)
        img = tile.load().convert("RGB")
        img.thumbnail((tile_w - 4, tile_h - 4))
        sheet.paste(img, (x + (tile_w - img.width) // 2, y + (tile_h - img.height) // 2))
        draw.rectangle([x, y + tile_h, x + tile_w - 1, y + tile_h + cap_h - 1], fill=(40, 40, 40))
        draw.rectangle([x, y + tile_h, x + 5, y + tile_h + cap_h - 1], fill=tile.colour)
        draw.text((x + 9, y + tile_h + 2), tile.caption, fill=(235, 235, 235), font=font)
    buf = io.BytesIO()
    if fmt == "JPEG":
        sheet.save(buf, format="JPEG", quality=85)
    else:
        sheet.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def shot_timeline(shots: Sequence[dict], duration_s: float, *, width: int = 1600, height: int = 60) -> bytes:
    """A strip, one bar per shot, width proportional to its length, colour by its transition."""
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    scale = width / max(duration_s, 1e-6)
    for i, s in enumerate(shots):
        x0, x1 = s["start_s"] * scale, max(s["end_s"] * scale, s["start_s"] * scale + 1)
        colour = TRANSITION_COLOURS.get(s["transition"], (0, 0, 0))
        shade = 0.75 if i % 2 else 1.0  # alternate shade so neighbouring shots stay distinguishable
        draw.rectangle([x0, 8, x1, height - 9], fill=tuple(int(c * shade) for c in colour))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def title_report_html(
    title_id: str,
    info: dict,
    shots: Sequence[dict],
    n_keyframes: int,
    sheet_images: Sequence[str],
    timeline_image: str,
    characters_html: str = "",
    candidates_html: str = "",
    moments_html: str = "",
) -> str:
    """The page; images are ``src`` values (data URIs make it self-contained). The characters,
    candidates and trailer-moments sections (``characters_section``, ``candidates_section``,
    ``moments_section``) are added when given."""
    kinds: dict[str, int] = {}
    for s in shots:
        kinds[s["transition"]] = kinds.get(s["transition"], 0) + 1
    lengths = sorted(s["duration_s"] for s in shots) or [0.0]
    median = lengths[len(lengths) // 2]
    legend = " ".join(
        f'<span style="background:rgb{c};color:white;padding:1px 6px">{k}</span>'
        for k, c in TRANSITION_COLOURS.items()
    )
    e = html.escape
    rows = "\n".join(
        f"<tr><td>{s['shot_id']}</td><td>{s['start_frame']}</td><td>{s['end_frame']}</td>"
        f"<td>{s['start_s']:.2f}</td><td>{s['end_s']:.2f}</td><td>{e(s['transition'])}</td>"
        f"<td>{s['confidence']:.2f}</td></tr>"
        for s in shots
    )
    sheets = "\n".join(f'<p><img src="{n}" style="max-width:100%"></p>' for n in sheet_images)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Marquee: {e(title_id)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}</style></head><body>
<h1>{e(title_id)}</h1>
<p>{info.get("duration_s", 0):.1f} s, {info.get("frame_count")} frames at {info.get("fps", 0):.3f} fps,
{info.get("width")}x{info.get("height")}; source <code>{e(str(info.get("source_name", "")))}</code></p>
<h2>Shots</h2>
<p>{len(shots)} shots ({", ".join(f"{k}: {v}" for k, v in sorted(kinds.items()))});
median length {median:.2f} s;
{n_keyframes} keyframes stored. Timeline (bar width = shot length): {legend}</p>
<p><img src="{timeline_image}" style="max-width:100%"></p>
{candidates_html}
{moments_html}
{characters_html}
<h2>Representative keyframe per shot</h2>
{sheets}
<h2>Shot table</h2>
<table><tr><th>shot</th><th>start frame</th><th>end frame</th><th>start s</th><th>end s</th>
<th>transition</th><th>confidence</th></tr>
{rows}
</table></body></html>
"""


#: A co-occurrence table longer than this shows its strongest pairs and folds the rest away.
PAIRS_SHOWN = 12

_CHARACTER_STYLE = (
    "<style>.chr-share{display:inline-block;height:9px;background:#4a7ebb;vertical-align:middle;"
    "margin-right:6px}.chr-sharecell{white-space:nowrap}"
    ".chr-fold summary{cursor:pointer;margin:10px 0;font-weight:bold}"
    ".chr-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:6px;"
    "margin:6px 0 12px}.chr-card{display:flex;gap:6px;align-items:center;font-size:12px;"
    "border:1px solid #ddd;border-radius:4px;padding:3px}.chr-face{object-fit:cover}"
    ".chr-card img,.chr-card .chr-noface{width:40px;"
    "height:40px;border-radius:50%;object-fit:cover;flex:none}.chr-noface{background:#ccc}</style>"
)


def characters_section(
    characters: Sequence[dict],
    nodes: Sequence[dict],
    edges: Sequence[dict],
    face_images: dict[int, str],
    graph_image: str | None,
) -> str:
    """HTML for the characters: the graph picture, a row per lead (face, screen time and a share bar,
    faces, tracks, first appearance, centrality), the minor characters as a collapsed grid of small
    cards, and the co-occurrence pairs strongest first. ``face_images`` and ``graph_image`` are ``src``
    values (data URIs).

    Leads and minor characters are split as the graph picture splits them (``split_cast``), so a
    feature film's forty characters show their dozen leads up front and the rest one click away,
    instead of forty 80 px rows pushing every later section down. A small cast is one table, as before.
    """
    node = {n["character_id"]: n for n in nodes}
    main = [c for c in characters if not c["background"]]
    background = len(characters) - len(main)
    if not main:
        return f"<h2>Characters</h2><p>No characters found ({background} background clusters).</p>"

    def share(c: dict) -> float:  # the graph's share (of the characters' time) when there is a graph
        return float(node.get(c["character_id"], c).get("screen_time_share", c["screen_time_share"]))

    ranked = sorted(
        main,
        key=lambda c: (
            node.get(c["character_id"], {}).get("prominence_rank", 1 << 30),
            -c["screen_time_s"],
            c["character_id"],
        ),
    )
    by_id = {c["character_id"]: c for c in ranked}
    lead_ids, minor_ids = split_cast([(c["character_id"], share(c)) for c in ranked])
    top = max((share(c) for c in ranked), default=0.0) or 1.0
    rows = []
    for cid in lead_ids:
        c, n = by_id[cid], node.get(cid, {})
        face = face_images.get(cid)
        img = f'<img class="chr-face" src="{face}" width="80" height="80" alt="#{cid}">' if face else ""
        bar = f'<span class="chr-share" style="width:{round(60 * share(c) / top)}px"></span>'
        pct = f'<td class="chr-sharecell">{bar}{100 * c["screen_time_share"]:.1f}%</td>'
        rows.append(
            f"<tr><td>{img}</td><td>#{cid}</td><td>{n.get('prominence_rank', '')}</td>"
            f"<td>{c['screen_time_s']:.1f}</td>{pct}"
            f"<td>{c['n_faces']}</td><td>{c['n_tracks']}</td><td>{c['first_appearance_s']:.1f}</td>"
            f"<td>{n.get('degree', 0):.2f}</td><td>{n.get('eigenvector', 0):.2f}</td></tr>"
        )
    graph = f'<p><img src="{graph_image}" style="max-width:100%"></p>' if graph_image else ""
    if minor_ids:
        minor_time = sum(by_id[i]["screen_time_s"] for i in minor_ids)
        minor_share = sum(by_id[i]["screen_time_share"] for i in minor_ids)
        summary = (
            f"{len(main)} characters: {len(lead_ids)} leads, then {len(minor_ids)} minor characters "
            f"({minor_time:.1f} s, {100 * minor_share:.1f}% of screen time together)"
        )
        leads_heading = "<h3>Leads</h3>"
        cards = "".join(_minor_card(by_id[i], node.get(i, {}), face_images.get(i)) for i in minor_ids)
        minor = (
            f'<details class="chr-fold chr-minor"><summary>{len(minor_ids)} minor characters, '
            f"{minor_time:.1f} s together, most screen time first</summary>"
            f'<div class="chr-grid">{cards}</div></details>'
        )
    else:
        summary, leads_heading, minor = f"{len(main)} characters", "", ""
    return f"""{_CHARACTER_STYLE}<h2>Characters</h2>
<p>{summary}; {background} background clusters (seen too briefly to count).
Screen time is the time a character's face is on screen, measured on keyframes.</p>
{graph}
{leads_heading}
<table><tr><th>face</th><th>character</th><th>prominence</th><th>screen time s</th><th>share</th>
<th>faces</th><th>tracks</th><th>first seen s</th><th>degree</th><th>eigenvector</th></tr>
{"".join(rows)}
</table>
{minor}
<h3>Who appears with whom</h3>
{_pairs(edges)}"""


def _minor_card(c: dict, n: dict, face: str | None) -> str:
    """A minor character as a small card: face, id, prominence rank, screen time and share."""
    cid = c["character_id"]
    img = f'<img src="{face}" alt="#{cid}">' if face else '<span class="chr-noface"></span>'
    rank = f" · rank {n['prominence_rank']}" if "prominence_rank" in n else ""
    return (
        f'<div class="chr-card">{img}<div><b>#{cid}</b>{rank}<br>'
        f"{c['screen_time_s']:.1f} s · {100 * c['screen_time_share']:.1f}%</div></div>"
    )


def _pairs(edges: Sequence[dict]) -> str:
    """Co-occurrence pairs, most shared shots first; past ``PAIRS_SHOWN`` the strongest are shown
    and the full list is folded into a ``<details>``."""
    if not edges:
        return "<p>No two characters share a shot.</p>"
    ranked = sorted(edges, key=lambda x: (-x["shots"], -x["frames"], x["a"], x["b"]))

    def table(rows: Sequence[dict]) -> str:
        body = "".join(
            f"<tr><td>#{x['a']} – #{x['b']}</td><td>{x['shots']}</td><td>{x['frames']}</td></tr>"
            for x in rows
        )
        return f"<table><tr><th>pair</th><th>shared shots</th><th>shared keyframes</th></tr>{body}</table>"

    if len(ranked) <= PAIRS_SHOWN + 3:  # folding away two or three rows saves nothing
        return table(ranked)
    return (
        f"<p>The {PAIRS_SHOWN} strongest of {len(ranked)} pairs, by shared shots.</p>"
        f"{table(ranked[:PAIRS_SHOWN])}"
        f'<details class="chr-fold"><summary>All {len(ranked)} pairs</summary>{table(ranked)}</details>'
    )


def candidates_section(candidates: Sequence[dict], images: dict[str, str], aspects: Sequence[str]) -> str:
    """HTML for ranked thumbnail candidates: per candidate its scores and a crop per artwork shape
    with the logo-safe area outlined. ``images`` maps object keys to ``src`` values."""
    e = html.escape
    if not candidates:
        return "<h2>Thumbnail candidates</h2><p>No frame shows an identified character.</p>"
    blocks = []
    for c in candidates:
        crops = []
        for a in aspects:
            key = c.get(f"logo_{a}_key") or c[f"crop_{a}_key"]
            box, logo = c[f"crop_{a}_box"], c[f"logo_{a}_box"]
            outline = ""
            if logo and box:
                w, h = box[2] - box[0], box[3] - box[1]
                left, top = 100 * (logo[0] - box[0]) / w, 100 * (logo[1] - box[1]) / h
                width, height = 100 * (logo[2] - logo[0]) / w, 100 * (logo[3] - logo[1]) / h
                outline = (
                    f'<div class="logo" style="left:{left:.1f}%;top:{top:.1f}%;width:{width:.1f}%;'
                    f'height:{height:.1f}%"></div>'
                )
            crops.append(
                f'<figure><div class="crop"><img src="{images.get(key, "")}" alt="{e(a)}">{outline}</div>'
                f"<figcaption>{e(a.replace('x', ':'))}</figcaption></figure>"
            )
        chars = ", ".join(f"#{i}" for i in c["character_ids"])
        blocks.append(
            f'<div class="cand"><h3>#{c["rank"]} · {c["time_s"]:.1f} s · shot {c["shot_id"]} · '
            f"{e(chars)}</h3><p>score {c['score']:.3f} = prominence {c['prominence']:.2f} × "
            f"expression {c['expression']:.2f} × quality {c['quality']:.2f}; "
            f"eyes open {c['eyes_open']:.2f}</p>"
            f'<div class="crops">{"".join(crops)}</div></div>'
        )
    style = (
        "<style>.crops{display:flex;gap:12px;align-items:flex-end;flex-wrap:wrap}"
        ".crop{position:relative;display:inline-block}.crop img{height:170px;display:block}"
        ".logo{position:absolute;border:2px dashed #ffeb3b;box-sizing:border-box}"
        "figure{margin:0}figcaption{font-size:12px;color:#555}.cand{margin-bottom:18px}</style>"
    )
    return (
        f"{style}<h2>Thumbnail candidates</h2><p>{len(candidates)} candidates, best first; dashed: the "
        f"logo-safe area of each crop (no faces, least detail).</p>{''.join(blocks)}"
    )


def moments_timeline_svg(
    duration_s: float, shots: Sequence[dict], moments: Sequence[dict], *, width: int = 1000, height: int = 120
) -> str:
    """An inline SVG: per shot a bar as wide as the shot and as tall as its trailerness score
    (``shots``: ``start_s``, ``end_s``, ``score``, optional ``used`` = the trailer used it), the ranked
    moments as numbered bands over them, and a minute scale."""
    duration_s = max(duration_s, 1e-6)
    plot = height - 22

    def x(t: float) -> float:
        return round(width * t / duration_s, 2)

    parts = [f'<rect x="0" y="0" width="{width}" height="{plot}" fill="#f4f4f4"/>']
    for m in moments:
        x0, x1 = x(m["start_s"]), x(m["end_s"])
        parts.append(
            f'<rect x="{x0}" y="0" width="{max(x1 - x0, 2)}" height="{plot}" fill="#ffe08a" opacity="0.8">'
            f"<title>moment #{m['rank']}: {m['start_s']:.1f}-{m['end_s']:.1f} s</title></rect>"
        )
    for sh in shots:
        score = float(sh.get("score") or 0.0)
        x0, x1 = x(sh["start_s"]), x(sh["end_s"])
        h = round(max(score, 0.0) * (plot - 14), 2)
        colour = "#d9534f" if sh.get("used") else "#4a7ebb"
        parts.append(
            f'<rect x="{x0}" y="{plot - h}" width="{max(x1 - x0 - 0.5, 0.5)}" height="{h}" fill="{colour}">'
            f"<title>shot {sh.get('shot_id', '')}: {score:.2f}</title></rect>"
        )
    for m in moments:
        parts.append(
            f'<text x="{x((m["start_s"] + m["end_s"]) / 2)}" y="11" font-size="11" text-anchor="middle" '
            f'font-family="sans-serif">{m["rank"]}</text>'
        )
    step = 60.0 if duration_s > 240 else 10.0
    t = 0.0
    while t <= duration_s:
        label = f"{int(t // 60)}:{int(t % 60):02d}"
        parts.append(f'<line x1="{x(t)}" y1="{plot}" x2="{x(t)}" y2="{plot + 4}" stroke="#555"/>')
        parts.append(
            f'<text x="{x(t)}" y="{height - 4}" font-size="10" font-family="sans-serif">{label}</text>'
        )
        t += step
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'style="width:100%;max-width:{width}px">{"".join(parts)}</svg>'
    )


def moments_section(
    duration_s: float,
    shots: Sequence[dict],
    moments: Sequence[dict],
    posters: dict[int, str],
    clip_links: dict[int, str],
    *,
    model: str = "",
    has_trailer: bool = False,
) -> str:
    """HTML for ranked trailer moments: the timeline (``moments_timeline_svg``), then per moment
    its poster frame, times, score, shots and a link to its preview clip. ``posters`` and
    ``clip_links`` map a moment's rank to an ``src``/``href``."""
    e = html.escape
    if not moments:
        return "<h2>Trailer moments</h2><p>No moments (the title has no shots to score).</p>"
    cards = []
    for m in moments:
        poster = posters.get(m["rank"], "")
        img = f'<img src="{poster}" alt="moment {m["rank"]}">' if poster else ""
        link = clip_links.get(m["rank"])
        clip = f' · <a href="{e(link)}">preview clip</a>' if link else ""
        used = ""
        if m.get("used_in_trailer") is not None:
            used = " · in the trailer" if m["used_in_trailer"] else " · not in the trailer"
        shots_txt = ", ".join(str(i) for i in m["shot_ids"])
        cards.append(
            f'<div class="moment">{img}<p><b>#{m["rank"]}</b> {m["start_s"]:.1f}-{m["end_s"]:.1f} s · '
            f"score {m['score']:.3f} · shots {e(shots_txt)}{used}{clip}</p></div>"
        )
    legend = "red bars: shots the title's trailer used; " if has_trailer else ""
    style = (
        "<style>.moments{display:flex;flex-wrap:wrap;gap:12px}.moment{width:240px}"
        ".moment img{width:240px;display:block}.moment p{font-size:13px;margin:4px 0}</style>"
    )
    return (
        f"{style}<h2>Trailer moments</h2><p>{len(moments)} moments, best first, scored by "
        f"<code>{e(model)}</code>. Timeline: bar height = a shot's trailerness; {legend}"
        f"yellow bands: the moments.</p>{moments_timeline_svg(duration_s, shots, moments)}"
        f'<div class="moments">{"".join(cards)}</div>'
    )
