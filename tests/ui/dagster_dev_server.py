"""``dagster dev`` as a test fixture: start on a free port, wait until it serves, stop it.

The server runs in its own session, hence its own process group (webserver, daemon, code
server and run workers are all its descendants), so ``stop`` ends all of them by group id
rather than by name. It may ignore one SIGTERM while shutting down; SIGKILL follows.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# A busy machine loads the code location slowly: RECFLOW_UI_START_TIMEOUT_S stretches both.
SERVER_START_TIMEOUT_S = float(os.environ.get("RECFLOW_UI_START_TIMEOUT_S", "90"))
LOCATION_LOAD_TIMEOUT_S = float(os.environ.get("RECFLOW_UI_START_TIMEOUT_S", "60"))
SERVER_STOP_TIMEOUT_S = 20.0
LOG_TAIL_LINES = 120


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DagsterDevServer:
    """``dagster dev`` on 127.0.0.1 with its own DAGSTER_HOME and RECFLOW_HOME."""

    def __init__(
        self,
        dagster_home: Path,
        recflow_home: Path,
        log_path: Path,
        location_args: list[str] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        """``location_args`` replace ``-w workspace.yaml`` (e.g. ``["-m", "some.module"]``);
        ``extra_env`` is added to the server's environment."""
        self.location_args = location_args or ["-w", "workspace.yaml"]
        self.extra_env = extra_env or {}
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dagster_home = dagster_home
        self.recflow_home = recflow_home
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Launch the server in a new session (its own process group)."""
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        self.recflow_home.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / "dagster.yaml", self.dagster_home / "dagster.yaml")
        env = {
            **os.environ,
            "DAGSTER_HOME": str(self.dagster_home),
            "RECFLOW_HOME": str(self.recflow_home),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        dagster = Path(sys.executable).parent / "dagster"
        cmd = [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(self.port)]
        cmd += self.location_args
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                cmd,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _check_alive(self, waiting_for: str) -> None:
        assert self._proc is not None, "server not started"
        code = self._proc.poll()
        if code is not None:
            pytest.fail(f"dagster dev exited with code {code} while waiting for {waiting_for}")

    def wait_until_serving(self, timeout_s: float = SERVER_START_TIMEOUT_S) -> None:
        """Poll ``/server_info`` until the webserver answers."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive("the webserver")
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=5) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        pytest.fail(f"dagster dev did not answer {self.url}/server_info within {timeout_s:.0f} s")

    def wait_for_code_location(self, timeout_s: float = LOCATION_LOAD_TIMEOUT_S) -> None:
        """Poll the workspace until every code location is loaded; fail on a load error."""
        query = """{ workspaceOrError { __typename
            ... on Workspace { locationEntries { name loadStatus
                locationOrLoadError { __typename
                    ... on PythonError { message causes { message } } } } }
            ... on PythonError { message } } }"""
        deadline = time.monotonic() + timeout_s
        entries: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            self._check_alive("the code location")
            workspace = self.graphql(query)["workspaceOrError"]
            entries = workspace.get("locationEntries") or []
            for entry in entries:
                loaded = entry["locationOrLoadError"] or {}
                if loaded.get("__typename") == "PythonError":
                    messages = [loaded["message"], *(c["message"] for c in loaded["causes"])]
                    pytest.fail(
                        f"code location {entry['name']} failed to load:\n" + "\n".join(messages)
                    )
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                return
            time.sleep(0.5)
        pytest.fail(f"code locations not loaded within {timeout_s:.0f} s: {entries}")

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a query to the server's GraphQL endpoint; fail the test on GraphQL errors."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            payload = json.load(resp)
        if payload.get("errors"):
            pytest.fail(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def stop(self) -> None:
        """SIGTERM the whole process group; SIGKILL whatever is still alive after a while."""
        if self._proc is None:
            return
        pgid = self._proc.pid  # leader of its own session, so its pid is the group id
        for sig, grace_s in ((signal.SIGTERM, SERVER_STOP_TIMEOUT_S), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            if self._wait_group_gone(pgid, grace_s):
                break
        self._proc = None

    def _wait_group_gone(self, pgid: int, timeout_s: float) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._proc.poll()  # reap the leader so it does not linger as a zombie
            if not _live_group_members(pgid):
                return True
            time.sleep(0.2)
        return False

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if not self.log_path.exists():
            return "(no server log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def _live_group_members(pgid: int) -> list[int]:
    """Pids in process group ``pgid`` that are not zombies (orphans may wait to be reaped)."""
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members
