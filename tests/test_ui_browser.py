"""The Dagster UI of the real deployment (``marquee cluster``), in a real browser: Debian's Chromium,
headless, driven by Playwright (the system browser; Playwright downloads none).

One test, as a user goes: close the first-run community pop-up, open the global asset graph (every
asset of the definitions is on it), launch a backfill of two fresh titles for every per-title asset by
clicking through the title job's launch dialog, wait for its runs, then open a title's partition page
and find the materialisation. The asset graph, once materialised, is saved as ``docs/asset_graph.png``
(the README's screenshot). On failure, a screenshot of the page is left in the test's tmp_path.

Slow: two real per-title runs on the Celery workers (a minute or two each on two cores).
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from pathlib import Path

import pytest
from deployment import (
    ASSETS,
    FINISHED,
    backfill_status,
    gql,
    ingest_tiny_titles,
    title_assets,
    wait_for,
)

from marquee.orchestration import cluster as cl

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "docs" / "asset_graph.png"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1600, "height": 1000}
TITLES = ["ui-one", "ui-two"]  # two partitions: the dialog launches a single run (no backfill) for one
TITLE_JOB = "marquee_title_job"
BACKFILLS = """{ partitionBackfillsOrError(limit: 20) { __typename ... on PartitionBackfills {
  results { id status partitionNames assetSelection { path } } } } }"""
BACKFILL_RUNS = """query($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) { __typename
  ... on Runs { results { runId status jobName tags { key value } } } } }"""
# The graph's asset nodes (its group boxes are foreignObjects of class "group"): label -> status colour.
NODES = """(svg) => Object.fromEntries([...svg.querySelectorAll('foreignObject:not(.group)')]
  .filter((f) => f.firstElementChild && f.firstElementChild.innerText.trim())
  .map((f) => { const box = f.querySelector('[style*="--minimal-bg"]');
                return [f.firstElementChild.innerText.trim(),
                        box ? box.style.getPropertyValue('--minimal-bg') : ''] }))"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (scripts/system-packages.sh)"),
]


def _label(name: str, labels) -> str | None:
    """The node label that shows ``name``: whole, or middle-truncated ("thumbn…_candidates")."""
    for label in labels:
        head, cut, tail = label.partition("…")
        if label == name or (
            cut and len(label) < len(name) and name.startswith(head) and name.endswith(tail)
        ):
            return label
    return None


def _loading(names: list[str], nodes: dict[str, str]) -> list[str]:
    """Those of ``names`` whose node is missing or has no status colour yet (its live data loading)."""
    return [n for n in names if nodes.get(_label(n, nodes) or "", "-light)").endswith("-light)")]


def _whole_graph(page, url: str, ready) -> dict[str, str]:
    """Open the asset graph at ``url`` with the browser window as tall as the graph needs at the UI's
    fit-to-width zoom (nodes out of view are not rendered at all); its asset nodes (label -> status
    colour) once ``ready(nodes)``, or after a minute."""
    svg = page.locator("svg").filter(has=page.locator("foreignObject")).first
    page.set_viewport_size(VIEWPORT)
    page.goto(url)
    svg.wait_for()
    size = None
    while size != (size := (svg.get_attribute("width"), svg.get_attribute("height"))):
        page.wait_for_timeout(1000)  # the layout has settled
    width, height = float(size[0]), float(size[1])
    top, view_w = svg.evaluate(
        "(s) => { const r = s.parentElement.parentElement.getBoundingClientRect(); return [r.top, r.width]; }"
    )
    tall = int(top + view_w * height / width + 130)  # the graph's toolbar covers the top of its view
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], min(tall, 2400))})
    page.reload()  # the UI fits the graph to the view's width when it lays it out
    svg.wait_for()
    deadline = time.monotonic() + 60
    while not ready(nodes := svg.evaluate(NODES)) and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    return nodes


@pytest.mark.timeout(1200)
def test_dagster_ui_in_a_browser(cluster: cl.ClusterState, tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    state = cluster
    url = state.webserver_url
    t0 = time.monotonic()
    ingest_tiny_titles(state, tmp_path, TITLES, seed=20)
    names = sorted(n["assetKey"]["path"][-1] for n in gql(state, ASSETS)["assetNodes"])
    per_title = sorted(a["path"][-1] for a in title_assets(state))
    assert "shots" in per_title and len(names) > len(per_title), (names, per_title)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(60_000)
        closed_nux: list[bool] = []

        def close_nux() -> None:
            page.get_by_role("button", name="Skip").click()
            closed_nux.append(True)

        # The first-run pop-up ("Join the Dagster community") may come up in front of anything.
        page.add_locator_handler(page.get_by_text("Join the Dagster community"), close_nux)
        steps: list[tuple[str, float]] = []

        def begin(step: str) -> None:
            steps.append((step, time.monotonic()))

        begin("open the UI")
        try:
            page.goto(url + "/")
            lineage = page.locator('a[href="/asset-groups"]').filter(has_text="Lineage")  # in the nav
            lineage.wait_for()
            page.wait_for_timeout(2000)  # the pop-up shows a second after the page
            expect(page.get_by_text("Join the Dagster community")).to_be_hidden()

            begin("the asset graph shows every asset")
            lineage.click()
            expect(page.get_by_text("Global asset lineage")).to_be_visible()
            page.locator("svg foreignObject").first.wait_for()  # the graph is laid out
            settings = page.get_by_role("button").filter(
                has=page.get_by_role("img", name="settings", exact=True)
            )
            for item in ("Expand all groups", "Change graph to vertical orientation"):
                settings.last.click()
                page.get_by_role("menuitem", name=item).click()
                page.keyboard.press("Escape")
                expect(page.get_by_role("menuitem")).to_have_count(0)
            graph_url = page.url  # ?expanded=<every group>
            assert "expanded=" in graph_url, graph_url
            nodes = _whole_graph(page, graph_url, lambda ns: all(_label(n, ns) for n in names))
            missing = [n for n in names if not _label(n, nodes)]
            assert not missing, f"not on the asset graph: {missing} (nodes: {sorted(nodes)})"
            assert len(nodes) == len(names), (sorted(nodes), names)

            begin("launch a backfill from the title job's launch dialog")
            page.set_viewport_size(VIEWPORT)
            page.goto(url + "/jobs")
            page.get_by_role("link", name=TITLE_JOB).first.click()
            page.get_by_role("button", name="Materialize all").click()
            dialog = page.get_by_role("dialog")
            # "Are you sure?" comes first while the models upstream were never materialised.
            confirm = page.get_by_role("button", name="Confirm")
            launch_dialog = page.get_by_text(f"Launch runs to materialize {len(per_title)} assets")
            confirm.or_(launch_dialog).first.wait_for()
            if confirm.is_visible():
                confirm.click()
            expect(launch_dialog).to_be_visible()
            dialog.get_by_text("Select a partition or create one").click()
            for tid in TITLES:
                page.get_by_placeholder("Filter partitions").fill(tid)
                option = page.locator("label").filter(has=page.get_by_text(tid, exact=True))
                option.click()
                expect(option.locator("input")).to_be_checked()
            page.keyboard.press("Escape")
            expect(dialog.get_by_text(f"{len(TITLES)} partitions")).to_be_visible()
            dialog.get_by_role("button", name="Launch backfill", exact=True).click()
            expect(page.get_by_text("Created backfill")).to_be_visible()

            begin("the backfill's runs")
            backfills = gql(state, BACKFILLS)["partitionBackfillsOrError"]["results"]
            ours = [b for b in backfills if sorted(b["partitionNames"] or []) == sorted(TITLES)]
            assert len(ours) == 1, backfills
            backfill = ours[0]
            assert sorted(a["path"][-1] for a in backfill["assetSelection"]) == per_title, backfill
            status = wait_for(
                lambda: (s := backfill_status(state, backfill["id"])) in FINISHED and s,
                420,
                f"backfill {backfill['id']} of {TITLES}",
                poll=5,
            )
            runs = gql(state, BACKFILL_RUNS, {"id": backfill["id"]})["runsOrError"]["results"]
            by_title = {{t["key"]: t["value"] for t in r["tags"]}.get("dagster/partition"): r for r in runs}
            assert status == "COMPLETED_SUCCESS", (status, runs)
            assert sorted(by_title) == sorted(TITLES), runs
            assert all(r["status"] == "SUCCESS" for r in runs), runs

            begin("a title's partition page shows its materialisation")
            run_id = by_title[TITLES[0]]["runId"]
            page.goto(f"{url}/assets/shots?view=partitions&partition={TITLES[0]}")
            expect(page.get_by_text("Latest materialization")).to_be_visible()
            expect(page.get_by_text("Materialized", exact=True)).to_be_visible()
            expect(page.get_by_role("link", name=run_id[:8])).to_be_visible()
            expect(page.get_by_role("cell", name="n_shots", exact=True)).to_be_visible()

            begin("screenshot of the materialised asset graph")
            nodes = _whole_graph(page, graph_url, lambda ns: not _loading(names, ns))
            assert not _loading(names, nodes), f"no status on the graph for {_loading(names, nodes)}"
            page.wait_for_timeout(500)
            # The README's picture is refreshed only on request; a plain run leaves the tree clean.
            update = os.environ.get("MARQUEE_UPDATE_SCREENSHOTS")
            target = SCREENSHOT if update else tmp_path / SCREENSHOT.name
            target.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(target))
            assert target.stat().st_size > 20_000, "the asset graph screenshot is (nearly) empty"
        except Exception as exc:
            shot = tmp_path / "failure.png"
            try:
                page.screenshot(path=str(shot), full_page=True)
            except Exception as shot_exc:  # the browser itself is gone
                shot = f"(none: {shot_exc})"
            raise AssertionError(f"{steps[-1][0]}: {exc}\nscreenshot: {shot}\npage: {page.url}") from exc
        finally:
            browser.close()
    steps.append(("end", time.monotonic()))
    took = ", ".join(f"{a}: {t1 - t:.0f}s" for (a, t), (_, t1) in itertools.pairwise(steps))
    total = time.monotonic() - t0
    print(f"UI test {total:.0f}s (ingest {steps[0][1] - t0:.0f}s, {took}); pop-up closed: {bool(closed_nux)}")
