"""Fixtures for the browser tests: a throwaway ``dagster dev`` and a headless Chromium page.

The server's output goes to ``dagster_dev.log`` in the artifacts folder; when a test
fails, the log's tail is printed, and the page's last state is saved as ``failure.png``.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.dagster_dev_server import LOG_TAIL_LINES, DagsterDevServer

CHROMIUM = Path(os.environ.get("RECFLOW_CHROMIUM", "/usr/bin/chromium"))

# Flags for Debian's chromium in a sandbox-less container with no internet: without the
# background-networking ones it keeps dialing Google services and logs refused connections.
# Playwright adds --headless and --user-data-dir itself.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_phase_reports = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[Any]:
    """Remember each phase's report so fixtures can tell whether the test failed."""
    report = yield
    item.stash.setdefault(_phase_reports, {})[report.when] = report
    return report


def _test_failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_phase_reports, {})
    return any(r.failed for r in reports.values())


@pytest.fixture
def ui_artifacts(tmp_path: Path) -> Path:
    """Where screenshots and logs go: ``$RECFLOW_UI_ARTIFACTS`` or the test's tmp_path."""
    folder = Path(os.environ.get("RECFLOW_UI_ARTIFACTS", tmp_path / "ui-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def dagster_dev(
    request: pytest.FixtureRequest, tmp_path: Path, ui_artifacts: Path
) -> Iterator[DagsterDevServer]:
    """A running ``dagster dev`` with the code location loaded and the welcome modal dismissed."""
    server = DagsterDevServer(
        dagster_home=tmp_path / "dagster_home",
        recflow_home=tmp_path / "recflow_home",
        log_path=ui_artifacts / "dagster_dev.log",
    )
    try:
        server.start()
        server.wait_until_serving()
        server.wait_for_code_location()
        # The first visit of a fresh instance opens a welcome modal over the page.
        server.graphql("mutation { setNuxSeen }")
    except BaseException:  # pytest.fail raises a BaseException
        server.stop()
        _print_server_log(server)
        raise
    try:
        yield server
    finally:
        server.stop()
        if _test_failed(request):
            _print_server_log(server)


def _print_server_log(server: DagsterDevServer) -> None:
    print(f"\n--- dagster dev log (last {LOG_TAIL_LINES} lines of {server.log_path}) ---")
    print(server.log_tail())


@pytest.fixture
def browser_page(request: pytest.FixtureRequest, tmp_path: Path, ui_artifacts: Path) -> Iterator:
    """A Playwright page in Debian's headless chromium with a fresh profile."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: run scripts/install_browser.sh (installs Debian's chromium), "
            "or point RECFLOW_CHROMIUM at a Chromium binary"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[dev]'")

    console_log = ui_artifacts / "browser_console.log"
    with sync_playwright() as pw, open(console_log, "w") as console:
        context = pw.chromium.launch_persistent_context(
            user_data_dir=tmp_path / "chromium-profile",
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1600, "height": 900},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.on("console", lambda m: console.write(f"{m.type}: {m.text}\n"))
            page.on("pageerror", lambda e: console.write(f"pageerror: {e}\n"))
            yield page
            if _test_failed(request):
                failure = ui_artifacts / "failure.png"
                page.screenshot(path=failure)
                print(f"\nscreenshot at failure: {failure}\nbrowser console: {console_log}")
        finally:
            context.close()
