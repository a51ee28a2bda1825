"""What the conformance run reports, wherever the tests run (one process or pytest-xdist workers).

- :class:`SkipGuard`: in CI (the ``CI`` environment variable set), a skipped test under
  ``tests/conformance`` fails the session: CI must hold the models against the real servers, not
  silently skip them. The exit status becomes 1 and the summary names the skipped tests.
- :data:`SEQUENCES`: how many command sequences the Hypothesis conformance machines sent to real
  servers, per machine, and the scenarios other conformance tests ran against one (each request
  schedule sent through a real nginx counts under ``nginx proxy cache``). Each xdist worker
  hands its counts to the controller when it finishes (``workeroutput``), and the controller
  prints the total in the terminal summary.

Both are registered by ``tests/conftest.py``, which the controller loads too (this directory's
own conftest is loaded only where tests are collected: in the workers).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

SEQUENCES: Counter[str] = Counter()
CONFORMANCE = Path(__file__).resolve().parent


class SkipGuard:
    """In CI, a skipped test under ``directory`` fails the session (see the module docstring)."""

    def __init__(self, directory: Path, ci: bool) -> None:
        self.directory = directory
        self.ci = ci
        self.skipped: list[str] = []

    def covers(self, report: pytest.TestReport, rootpath: Path) -> bool:
        """The report is a skip (not an expected failure) of a test under ``directory``."""
        if not report.skipped or hasattr(report, "wasxfail"):
            return False
        return (rootpath / report.location[0]).resolve().is_relative_to(self.directory)

    def pytest_configure(self, config: pytest.Config) -> None:
        self.rootpath = config.rootpath

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.covers(report, self.rootpath):
            self.skipped.append(report.nodeid)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.ci and self.skipped and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.ci and self.skipped:
            terminalreporter.write_line(
                f"CI must run the conformance tests, but {len(self.skipped)} were skipped "
                f"(session failed): {', '.join(self.skipped)}", red=True, bold=True)



class SequenceReport:
    """Sums :data:`SEQUENCES` over the xdist workers and prints it in the terminal summary."""

    def __init__(self) -> None:
        self.totals: Counter[str] = Counter()

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: hand the counts to the controller
            workeroutput["conformance_sequences"] = json.dumps(dict(SEQUENCES))

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        counts = getattr(node, "workeroutput", {}).get("conformance_sequences")
        if counts:
            self.totals.update(json.loads(counts))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        totals = self.totals + SEQUENCES
        if totals:
            counts = ", ".join(f"{name}: {n}" for name, n in sorted(totals.items()))
            terminalreporter.write_line(
                f"conformance: {sum(totals.values())} command sequences tried against real "
                f"servers ({counts})")
