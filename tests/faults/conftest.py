"""The fault-injection suite's shared table: each case records what survived and what was lost.

A test calls ``fault_table.record(fault, survived, lost)`` once its assertions have passed;
the rows are printed as one table at the end of the pytest run (``-ra`` output included),
so CI's log shows the suite's verdict per fault, not only pass/fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest


@dataclass
class FaultTable:
    """Rows of (fault, what survived, what was lost), in the order the tests ran."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def record(self, fault: str, survived: str, lost: str) -> None:
        self.rows.append((fault, survived, lost))

    def render(self) -> str:
        header = ("fault", "what survived", "what was lost")
        widths = [max(len(r[i]) for r in [header, *self.rows]) for i in range(3)]
        lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
        lines.append("-+-".join("-" * w for w in widths))
        lines += [
            " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in self.rows
        ]
        return "\n".join(lines)


_TABLE = FaultTable()


@pytest.fixture
def fault_table() -> FaultTable:
    """The session-wide table (a fixture so tests declare that they report into it)."""
    return _TABLE


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _TABLE.rows:
        terminalreporter.write_sep("=", "fault-injection table")
        terminalreporter.write_line(_TABLE.render())
