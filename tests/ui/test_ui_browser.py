"""Materialize from the UI: a real browser clicks through ``dagster dev`` (issue 6).

The test opens the global asset graph, filters it to a fast documented subset (the
bundled MovieLens sample: ``ml_small/dataset`` and ``ml_small/cooc_matrix`` with its
checks, a few seconds of work), clicks "Materialize all", follows the toast to the run
page and waits for the run to succeed, then checks that the matrix histogram shows in
place on the asset's page. A second test opens one dataset's chain (``ml_small``) at
1600×1000 and checks that every group box, which names the dataset, is on screen.
Screenshots land in ``$RECFLOW_UI_ARTIFACTS`` (default: the test's tmp_path);
``scripts/screenshot_ui.sh`` copies the last one to ``docs/asset_graph.png`` and the
chain to ``docs/graph_ml_small.png``.
"""

import re
import time
from pathlib import Path
from typing import Any

import pytest

from assets.groups import group_name
from tests.ui.dagster_dev_server import DagsterDevServer

pytestmark = pytest.mark.ui

FAST_SUBSET = (("ml_small", "dataset"), ("ml_small", "cooc_matrix"))
RUN_TIMEOUT_S = 120.0
TERMINAL_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
STATUS_TIMEOUT_MS = 60_000
MAX_WINDOW_HEIGHT = 3000
GRAPH_SVG = "svg[class*=svgContainer]"
LOADING = re.compile(r"^Loading(…|\.\.\.)$")
# The UI tags every run it launches with this (ui-core's UI_EXECUTION_TAGS).
FROM_UI_TAG = ("dagster/from_ui", "true")
# The last screenshot; scripts/screenshot_ui.sh copies it to docs/asset_graph.png.
GRAPH_AFTER_PNG = "05_graph_after.png"
# One dataset's chain at the size a person reads it; scripts/screenshot_ui.sh copies it to
# docs/graph_ml_small.png.
CHAIN_PNG = "06_ml_small_chain.png"
CHAIN_VIEWPORT = {"width": 1600, "height": 1000}
CHAIN_DATASET = "ml_small"
CHAIN_STAGES = ("raw", "canonical", "cooc", "zsl", "sequences", "peterrec", "report")
CHAIN_NODES = ("dataset", "cooc_matrix", "zsl_te_model", "nextitnet_pretrain", "report")
INLINE_CHART = "img[src^='data:image/svg+xml']"

ASSET_NODES_QUERY = """query AssetNodes($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) { assetKey { path } isMaterializable }
}"""
RUN_QUERY = """query Run($runId: ID!) {
  runOrError(runId: $runId) { __typename
    ... on Run {
      status tags { key value } stepStats { stepKey status }
      assetMaterializations { assetKey { path } }
    }
    ... on PythonError { message }
  }
}"""
RUN_ERRORS_QUERY = """query RunErrors($runId: ID!) {
  logsForRun(runId: $runId, limit: 1000) { __typename
    ... on EventConnection { events { __typename
      ... on MessageEvent { message level stepKey }
      ... on ExecutionStepFailureEvent { error { message } }
      ... on RunFailureEvent { pipelineFailureError: error { message } }
    } }
  }
}"""


def _selection_query(keys: tuple[tuple[str, ...], ...]) -> str:
    """The asset selection syntax the graph's filter box takes."""
    return " or ".join(f'key:"{"/".join(k)}"' for k in keys)


def _asset_nodes(server: DagsterDevServer, keys: tuple[tuple[str, ...], ...]) -> dict:
    variables = {"keys": [{"path": list(k)} for k in keys]}
    nodes = server.graphql(ASSET_NODES_QUERY, variables)["assetNodes"]
    return {tuple(n["assetKey"]["path"]): n for n in nodes}


def _wait_for_run(server: DagsterDevServer, run_id: str, timeout_s: float) -> dict[str, Any]:
    """Poll the run until it ends; fail with its error events if it does not succeed."""
    deadline = time.monotonic() + timeout_s
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = server.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", f"run {run_id} not found: {run}"
        if run["status"] in TERMINAL_RUN_STATUSES:
            break
        time.sleep(1.0)
    else:
        pytest.fail(f"run {run_id} still {run.get('status')} after {timeout_s:.0f} s")
    if run["status"] != "SUCCESS":
        pytest.fail(f"run {run_id} ended {run['status']}:\n{_run_errors(server, run_id)}")
    return run


def _run_errors(server: DagsterDevServer, run_id: str) -> str:
    logs = server.graphql(RUN_ERRORS_QUERY, {"runId": run_id})["logsForRun"]
    lines = []
    for event in logs.get("events", []):
        error = event.get("error") or event.get("pipelineFailureError")
        if event.get("level") == "ERROR" or error:
            lines.append(f"[{event.get('stepKey')}] {event.get('message')}")
            if error:
                lines.append(error["message"])
    return "\n".join(lines) or "(no error events)"


def _wait_for_graph(page: Any, node_label: str | None) -> None:
    """The graph has rendered once a node with this label is visible (``None``: once the
    graph's <svg> is; the UI draws only the nodes inside the pane, so in a large graph a
    given node may not exist yet), and it is up to date once no node still says
    "Loading…" (statuses arrive after the layout)."""
    from playwright.sync_api import expect  # here, so a missing playwright fails one test

    if node_label is None:
        page.locator(GRAPH_SVG).first.wait_for(state="visible")
    else:
        page.get_by_text(node_label, exact=True).first.wait_for(state="visible")
    expect(page.get_by_text(LOADING)).to_have_count(0, timeout=STATUS_TIMEOUT_MS)


def _fit_graph_height(page: Any, node_label: str | None) -> None:
    """Grow the window until the whole graph fits: the UI fits the graph to the pane's width
    only, so a tall graph is cut off at the top and bottom of a landscape window."""
    for _ in range(3):  # the width can change the fitted scale, so measure again
        box = page.locator(GRAPH_SVG).first.bounding_box()
        assert box is not None, "asset graph <svg> not rendered"
        viewport = page.viewport_size
        # 52 px of page header above the graph pane, ~60 px of toolbar over its top edge.
        needed = min(int(52 + box["height"] + 2 * 60), MAX_WINDOW_HEIGHT)
        if needed <= viewport["height"]:
            return
        page.set_viewport_size({"width": viewport["width"], "height": needed})
        page.reload()
        _wait_for_graph(page, node_label)


def _screenshot(page: Any, path: Path) -> None:
    page.screenshot(path=path)
    print(f"screenshot: {path}")


def _open_expanded_graph(page: Any, base_url: str) -> str:
    """Open the global asset graph and expand every group (the ⌥E shortcut); return its URL."""
    page.goto(f"{base_url}/asset-groups")
    page.locator(GRAPH_SVG).first.wait_for(state="visible")
    page.keyboard.press("Alt+e")
    page.wait_for_url(re.compile(r"[?&]expanded="))
    # Reload so the layout is fitted to the expanded graph rather than the collapsed one.
    page.reload()
    _wait_for_graph(page, None)
    return page.url


def test_materialize_fast_subset_by_clicking(
    browser_page: Any, dagster_dev: DagsterDevServer, ui_artifacts: Path
) -> None:
    """Filter the graph to the fast subset, click "Materialize all", see the run succeed."""
    page = browser_page
    nodes = _asset_nodes(dagster_dev, FAST_SUBSET)
    missing = [k for k in FAST_SUBSET if k not in nodes or not nodes[k]["isMaterializable"]]
    assert not missing, f"the fast subset is not in the Definitions: {missing}"

    # 1. The whole graph, every group expanded, before anything ran.
    expanded_graph_url = _open_expanded_graph(page, dagster_dev.url)
    page.get_by_role("button", name="Hide navigation").click()
    _fit_graph_height(page, None)
    _screenshot(page, ui_artifacts / "01_graph_before.png")

    # 2. Type the subset into the graph's filter box (a CodeMirror editor) and submit.
    page.locator(".CodeMirror").first.click()
    page.keyboard.type(_selection_query(FAST_SUBSET))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/asset-groups~"))
    selection_url = page.url
    for _, name in FAST_SUBSET:
        _wait_for_graph(page, name)
    assert page.get_by_text("raw_files", exact=True).count() == 0, (
        "the filtered graph still shows raw_files: the selection did not apply"
    )
    _screenshot(page, ui_artifacts / "02_selection_before.png")

    # 3. Click "Materialize all" (all = the filtered assets) and follow the toast.
    page.locator("button", has_text=re.compile(r"^Materialize all( \(\d+\))?$")).click()
    view = page.get_by_role("link", name="View", exact=True)
    view.wait_for(state="visible")
    href = view.get_attribute("href") or ""
    match = re.fullmatch(r"/runs/([0-9a-f-]{36})", href)
    assert match, f"the launch toast links to {href!r}, not to a run"
    run_id = match.group(1)
    view.click()
    page.wait_for_url(re.compile(rf"/runs/{run_id}"))

    run = _wait_for_run(dagster_dev, run_id, RUN_TIMEOUT_S)
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags.get(FROM_UI_TAG[0]) == FROM_UI_TAG[1], f"run not launched by the UI: {tags}"
    failed_steps = [s["stepKey"] for s in run["stepStats"] if s["status"] != "SUCCESS"]
    assert not failed_steps, f"steps did not succeed: {failed_steps}"
    # Exactly the filtered assets, nothing else (automation may run others, in other runs).
    materialized_keys = sorted(tuple(m["assetKey"]["path"]) for m in run["assetMaterializations"])
    assert materialized_keys == sorted(FAST_SUBSET), (
        f"run {run_id} materialized {materialized_keys}, expected {sorted(FAST_SUBSET)}"
    )

    # 4. The run page shows the success (the UI polls; give it time to catch up).
    page.get_by_text("Success", exact=True).first.wait_for(state="visible", timeout=60_000)
    _screenshot(page, ui_artifacts / "03_run_page.png")

    # 5. The filtered graph now reads "Materialized" on both nodes.
    from playwright.sync_api import expect

    page.goto(selection_url)
    materialized = page.get_by_text("Materialized", exact=True)
    expect(materialized).to_have_count(len(FAST_SUBSET), timeout=STATUS_TIMEOUT_MS)
    _screenshot(page, ui_artifacts / "04_selection_after.png")

    # 6. The matrix histogram shows in place on the asset's page (no "[Show Markdown]").
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(f"{dagster_dev.url}/assets/ml_small/cooc_matrix?view=events")
    chart = page.locator(INLINE_CHART).first
    # The events list opens on the newest event, which can be a downstream step's
    # observation of the matrix (no chart): select the events in turn until the
    # materialization's metadata, with its chart, is shown.
    stamps = page.get_by_text(re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{1,2}:\d{2} [AP]M$"))
    stamps.first.wait_for(state="visible", timeout=STATUS_TIMEOUT_MS)
    for i in range(stamps.count()):
        if chart.is_visible():
            break
        stamps.nth(i).click()
        try:
            chart.wait_for(state="visible", timeout=5_000)
        except PlaywrightTimeout:
            continue
    chart.wait_for(state="visible", timeout=STATUS_TIMEOUT_MS)
    box = chart.bounding_box()
    assert box is not None and box["width"] >= 200, f"the inline chart is not drawn: {box}"
    _screenshot(page, ui_artifacts / "05a_matrix_metadata.png")

    # 7. The whole graph after the run (the README picture; a large graph is drawn with
    # compact nodes, where green means materialized).
    page.goto(expanded_graph_url)
    _wait_for_graph(page, None)
    _fit_graph_height(page, None)
    page.wait_for_load_state("networkidle")
    _screenshot(page, ui_artifacts / GRAPH_AFTER_PNG)


def _arrange_chain(page: Any) -> None:
    """Lay the graph out top to bottom (the UI's own direction setting, kept in local
    storage): a chain's stages become rows and its fans spread across the wide window,
    which the UI fits the graph to."""
    page.evaluate("() => localStorage.setItem('asset-graph-direction', '\"vertical\"')")
    page.reload()
    _wait_for_graph(page, "cooc_matrix")
    page.wait_for_load_state("networkidle")


def test_one_datasets_chain_fits_a_readable_screenshot(
    browser_page: Any, dagster_dev: DagsterDevServer, ui_artifacts: Path
) -> None:
    """ml_small's chain, groups expanded, at 1600×1000: every group box (which carries the
    dataset's name) and the key nodes are inside the window, and no other dataset shows."""
    from playwright.sync_api import expect

    page = browser_page
    page.set_viewport_size(CHAIN_VIEWPORT)
    page.goto(f"{dagster_dev.url}/asset-groups")
    page.locator(GRAPH_SVG).first.wait_for(state="visible")
    page.get_by_role("button", name="Hide navigation").click()
    page.locator(".CodeMirror").first.click()
    page.keyboard.type(f'key:"{CHAIN_DATASET}/*"')
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/asset-groups~"))
    _wait_for_graph(page, None)
    page.keyboard.press("Alt+e")  # expand every group
    page.wait_for_url(re.compile(r"[?&]expanded="))
    _arrange_chain(page)
    _screenshot(page, ui_artifacts / CHAIN_PNG)

    graph = page.locator(GRAPH_SVG).first
    window = page.viewport_size
    for label in [group_name(CHAIN_DATASET, s) for s in CHAIN_STAGES] + list(CHAIN_NODES):
        node = graph.get_by_text(label, exact=True).first
        expect(node).to_be_visible()
        box = node.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= window["width"]
        assert box["y"] >= 0 and box["y"] + box["height"] <= window["height"], (
            f"{label} lies outside the {window['width']}×{window['height']} window: {box}"
        )
    assert graph.get_by_text(re.compile(r"^synthetic_")).count() == 0
