"""The CI guard of conftest.py: a skipped conformance test fails the session when ``CI`` is set.

Each case runs pytest in a subprocess on a throwaway directory whose conftest registers the
same :class:`~tests.conformance.report.SkipGuard` for that directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = """
import os
from pathlib import Path

from tests.conformance.report import SkipGuard


def pytest_configure(config):
    config.pluginmanager.register(SkipGuard(Path(__file__).resolve().parent,
                                            bool(os.environ.get("CI"))), "guard")
"""

TESTS = """
import pytest


def test_runs():
    assert True


@pytest.mark.xfail(reason="an expected failure is not a skip")
def test_expected_failure():
    assert False
"""

SKIPPING = """

def test_needs_a_server():
    pytest.skip("no server")
"""


def run(directory: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(ROOT)
    if ci:
        env["CI"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           str(directory)], cwd=directory, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    (tmp_path / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (tmp_path / "test_suite.py").write_text(TESTS)
    return tmp_path


@pytest.mark.parametrize(("ci", "skip", "code"), [
    (True, True, 1), (False, True, 0), (True, False, 0)])
def test_a_skip_fails_the_session_only_in_ci(suite: Path, ci: bool, skip: bool,
                                             code: int) -> None:
    if skip:
        (suite / "test_suite.py").write_text(TESTS + SKIPPING)
    result = run(suite, ci)
    assert result.returncode == code, result.stdout + result.stderr
    named = "were skipped (session failed): test_suite.py::test_needs_a_server"
    assert (named in result.stdout) == (code == 1), result.stdout
