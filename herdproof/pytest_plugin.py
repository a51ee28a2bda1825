"""The herdproof pytest plugin (registered through the ``pytest11`` entry point ``herdproof``).

``pytest --herdproof-traces DIR`` writes traces as JSON, ITF and HTML into ``DIR``:

- of every unexpected failure whose exception carries a herdproof trace (a failed
  :func:`herdproof.assert_holds`, a property violation found by a Hypothesis state machine built
  with :func:`engines.stateful.machine_for`, any exception with a ``trace`` attribute holding a
  :class:`~traces.trace.Trace`, or one in its cause chain), as ``failed-<test id>.*``; the
  failure report then gets a "herdproof trace" section with the ``herdproof replay`` command;
- of whatever a test hands to the ``herdproof_traces`` fixture: herdproof's own suite records the
  counterexample of every violated expectation of ``traces/expectations/*.toml`` this way
  (``tests/traces/test_regression.py``), as ``<case>-<property>.*``.

A summary at the end of the run says how many traces were written and how to replay one.

The plugin never changes a test's outcome: a ``DIR`` that cannot be created or written is a
usage error at start-up (before any test runs), and a trace that cannot be written during the
run is a warning (and a line in the failure report), never an internal error.

Without the option the plugin only adds the option and the (inert) fixture: no hook runs during
the test run and nothing is imported beyond pytest.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Generator

    from herdproof.export import Exported
    from herdproof.traces.trace import Trace

EXPORTER = "herdproof-trace-exporter"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("herdproof")
    group.addoption("--herdproof-traces", metavar="DIR", default=None,
                    help="write herdproof traces (JSON + ITF + HTML) of violated expectations "
                         "and of failures that carry one into DIR")


def pytest_configure(config: pytest.Config) -> None:
    directory = config.getoption("herdproof_traces", default=None)
    if directory:
        writable(Path(directory))
        config.pluginmanager.register(TraceExporter(Path(directory)), EXPORTER)


def writable(directory: Path) -> None:
    """Create ``directory`` if needed and make sure a file can be written into it; otherwise
    raise :class:`pytest.UsageError` in one sentence."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".herdproof-probe-", dir=directory)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise pytest.UsageError(
            f"--herdproof-traces {directory}: cannot write traces there "
            f"({exc.strerror or exc}); name a directory that can be created and written"
        ) from None


class TraceExportWarning(pytest.PytestWarning):
    """A trace could not be written during the run; the test's own outcome stands."""


class TraceExporter:
    """Registered only under ``--herdproof-traces``: writes traces and reports them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.written: list[Exported] = []
        self.failed: list[str] = []

    def export(self, trace: Trace, stem: str) -> Exported:
        from herdproof.export import export_trace

        exported = export_trace(trace, self.directory, _slug(stem))
        self.written.append(exported)
        return exported

    def try_export(self, trace: Trace, stem: str) -> Exported | str:
        """:meth:`export`, or, if writing fails for any reason, a warning and the reason."""
        try:
            return self.export(trace, stem)
        except Exception as exc:  # whatever breaks, the test's outcome stands
            reason = f"could not write the trace {_slug(stem)} into {self.directory}: " \
                     f"{type(exc).__name__}: {exc}"
            self.failed.append(reason)
            warnings.warn(TraceExportWarning(reason), stacklevel=2)
            return reason

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item,
                                  call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if not report.failed or call.excinfo is None:
            return
        trace = trace_in(call.excinfo.value)
        if trace is None:
            return
        exported = self.try_export(trace, f"failed-{item.nodeid}")
        if isinstance(exported, str):
            report.sections.append(("herdproof trace", exported))
            return
        lines = [f"replay: {exported.replay_command}"]
        if exported.html is not None:
            lines.append(f"look:   open {exported.html}")
            lines.append(f"ITF:    {exported.itf}")
        if exported.skipped:
            lines.append(exported.skipped)
        report.sections.append(("herdproof trace", "\n".join(lines)))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_sep("-", "herdproof traces")
        if self.failed:
            terminalreporter.write_line(f"{len(self.failed)} traces could not be written: "
                                        f"{self.failed[0]}")
        if not self.written:
            terminalreporter.write_line(f"no traces to write into {self.directory}")
            return
        terminalreporter.write_line(
            f"wrote {len(self.written)} traces (JSON + ITF + HTML) into {self.directory}; "
            f"replay one with: {self.written[0].replay_command}")


class TraceRecorder:
    """What the ``herdproof_traces`` fixture gives a test: ``record(trace, name)`` writes the
    trace under ``--herdproof-traces`` and does nothing otherwise."""

    def __init__(self, exporter: TraceExporter | None) -> None:
        self.exporter = exporter

    @property
    def enabled(self) -> bool:
        return self.exporter is not None

    def record(self, trace: Trace, name: str) -> Exported | None:
        """Write ``trace``; ``None`` without the option, or (with a warning) if it cannot be
        written: recording never fails the test."""
        if self.exporter is None:
            return None
        exported = self.exporter.try_export(trace, name)
        return None if isinstance(exported, str) else exported


@pytest.fixture
def herdproof_traces(request: pytest.FixtureRequest) -> TraceRecorder:
    """Record traces into the ``--herdproof-traces`` directory (a no-op without the option)."""
    exporter = request.config.pluginmanager.get_plugin(EXPORTER)
    return TraceRecorder(exporter if isinstance(exporter, TraceExporter) else None)


def trace_in(error: BaseException | None) -> Trace | None:
    """The first herdproof trace carried by ``error`` or its causes (``.trace``)."""
    from herdproof.traces.trace import Trace

    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        trace = getattr(error, "trace", None)
        if isinstance(trace, Trace):
            return trace
        error = error.__cause__ or error.__context__
    return None


def _slug(name: str) -> str:
    """A file-name stem from a test id: ``t/x.py::test_a[p-1]`` -> ``t-x.py-test_a-p-1``."""
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "-", name).strip("-")[:150]
