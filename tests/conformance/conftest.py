"""Real servers for the conformance tests: ``redis-server`` and ``memcached`` on loopback ports.

Each server is started once per test session on a free ``127.0.0.1`` port, in a temporary
directory, without persistence (Redis: ``--save "" --appendonly no``), and stopped afterwards;
nothing relies on a server left running. A missing binary skips the tests that need it with one
line naming the Debian package, except in CI (the ``CI`` environment variable set), where it is
a failure: CI must hold the models against the real servers, not silently skip them. As a
second line of defence, :class:`SkipGuard` fails the whole session in CI if any test in this
directory was skipped for whatever reason (a missing module, a skip added later): the exit
status becomes 1 and the summary names the skipped tests.

The number of command sequences tried by the Hypothesis conformance machines is counted in
``SEQUENCES`` and reported in the terminal summary.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.ticked_memcached import MetaClient

SEQUENCES: Counter[str] = Counter()
CONFORMANCE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _require(binary: str, package: str) -> str:
    found = shutil.which(binary)
    if found is None:
        message = (f"{binary} not found: install the Debian package `{package}` "
                   f"(apt-get install -y {package}) to run the conformance tests")
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the conformance tests, but {message}", pytrace=False)
        pytest.skip(message)
    return found


def _wait_for_port(port: int, process: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode} on start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within 10 s")


def _serve(command: list[str], port: int, name: str, cwd: Path) -> Iterator[None]:
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, process, name)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://127.0.0.1:<port>/0`` of a fresh ``redis-server`` for this session."""
    binary = _require("redis-server", "redis-server")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no",
               "--protected-mode", "yes", "--logfile", ""]
    yield from _serve_url(command, port, "redis-server", workdir, f"redis://127.0.0.1:{port}/0")


@pytest.fixture(scope="session")
def memcached_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """``(host, port)`` of a fresh ``memcached`` for this session (for the memcached model)."""
    binary = _require("memcached", "memcached")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("memcached")
    command = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "16"]
    if os.geteuid() == 0:
        command += ["-u", "root"]  # memcached refuses to run as root without naming the user
    for _ in _serve(command, port, "memcached", workdir):
        yield ("127.0.0.1", port)


def _serve_url(command: list[str], port: int, name: str, cwd: Path,
               url: str) -> Iterator[str]:
    for _ in _serve(command, port, name, cwd):
        yield url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[object]:
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def meta_client(memcached_address: tuple[str, int]) -> Iterator[MetaClient]:
    """A text/meta-protocol connection to this session's memcached."""
    client = MetaClient(memcached_address)
    yield client
    client.close()


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


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SkipGuard(CONFORMANCE, bool(os.environ.get("CI"))),
                                  "conformance-skip-guard")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SEQUENCES:
        counts = ", ".join(f"{name}: {n}" for name, n in sorted(SEQUENCES.items()))
        terminalreporter.write_line(
            f"conformance: {sum(SEQUENCES.values())} command sequences tried against real "
            f"servers ({counts})")
