"""The pytest plugin: ``pytest --herdproof-traces DIR`` (runs pytest in subprocesses)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from herdproof.pytest_plugin import EXPORTER

ROOT = Path(__file__).resolve().parents[2]
REINSTALL = "the entry point is missing: reinstall with pip install -e '.[dev]'"


def pytest_run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0",
                           *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          check=False)


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_the_plugin_is_registered_by_entry_point(pytestconfig: pytest.Config) -> None:
    points = {e.name: e.value for e in metadata.entry_points(group="pytest11")}
    assert points.get("herdproof") == "herdproof.pytest_plugin", REINSTALL
    plugin = pytestconfig.pluginmanager.get_plugin("herdproof")
    assert plugin is not None, REINSTALL
    if pytestconfig.getoption("herdproof_traces") is None:
        # without the option: no exporter, and the plugin module implements only the two
        # set-up hooks, so nothing of it runs during the tests
        assert pytestconfig.pluginmanager.get_plugin(EXPORTER) is None
        hooks = {caller.name for caller in pytestconfig.pluginmanager.get_hookcallers(plugin)
                 or []}
        assert hooks == {"pytest_addoption", "pytest_configure"}


def test_one_trace_per_violated_expectation(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = pytest_run("-q", "--herdproof-traces", str(out), "tests/traces/test_regression.py",
                     "-k", "engine_finds_now and lock-del-ex-below- and not 3req")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    stems = ["lock-del-ex-below-NOFOREIGN", "lock-del-ex-below-ONE",
             "lock-del-ex-below-REBUILDS-le-1"]
    assert names(out) == sorted(f"{s}{x}" for s in stems for x in (".html", ".itf.json", ".json"))
    assert f"wrote 3 traces (JSON + ITF + HTML) into {out}" in run.stdout


USER_TEST = """
import herdproof

RACE = {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3}


def test_lock_is_safe():
    herdproof.assert_holds("lock-cad", RACE, "ONE")


def test_longer_lock_is_safe():
    herdproof.assert_holds("lock-cad", {**RACE, "ex": 3}, "ONE")


def test_unrelated_failure():
    assert 1 + 1 == 3
"""


def test_failures_carry_their_trace_and_the_replay_command(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TEST))
    out = tmp_path / "out"
    run = pytest_run("--herdproof-traces", str(out), "test_user.py", cwd=tmp_path)
    assert run.returncode == 1, run.stdout[-3000:]
    assert "2 failed, 1 passed" in run.stdout
    stem = "failed-test_user.py-test_lock_is_safe"
    assert names(out) == [f"{stem}.html", f"{stem}.itf.json", f"{stem}.json"]
    assert "herdproof trace" in run.stdout
    assert f"replay: herdproof replay {out / stem}.json" in run.stdout
    assert "<- ONE violated" in run.stdout  # the timeline is in the assertion message itself
    replay = subprocess.run([sys.executable, "-m", "herdproof", "replay", f"{out / stem}.json"],
                            capture_output=True, text=True, check=False)
    assert (replay.returncode, replay.stdout) == (0, "reproduced: ONE violated at step 7\n")

    shutil.rmtree(out)
    plain = pytest_run("test_user.py", cwd=tmp_path)  # without the option: nothing written
    assert "2 failed, 1 passed" in plain.stdout
    assert "herdproof trace" not in plain.stdout and "<- ONE violated" in plain.stdout
    assert not out.exists() and not list(tmp_path.rglob("*.itf.json"))


def test_a_directory_that_cannot_be_written_is_a_usage_error_at_start_up(
        tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TEST))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for directory in ("/proc/x", str(blocker / "out")):
        run = pytest_run("--herdproof-traces", directory, "test_user.py", cwd=tmp_path)
        assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout[-3000:]
        assert "INTERNALERROR" not in run.stdout + run.stderr
        assert f"--herdproof-traces {directory}: cannot write traces there" in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1  # one sentence, no traceback
        assert "passed" not in run.stdout  # no test ran


SABOTAGED_TEST = """
import shutil
import sys
from pathlib import Path

import herdproof

RACE = {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3}


def test_trace_directory_vanishes_then_the_test_fails():
    out = Path(sys.argv[sys.argv.index("--herdproof-traces") + 1])
    shutil.rmtree(out)
    out.write_text("now a file: no trace can be written under it")
    herdproof.assert_holds("lock-cad", RACE, "ONE")


def test_fine():
    pass
"""


def test_a_trace_that_cannot_be_written_is_a_warning_and_the_failure_still_counts(
        tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(SABOTAGED_TEST))
    out = tmp_path / "out"
    run = pytest_run("--herdproof-traces", str(out), "test_user.py", cwd=tmp_path)
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout[-3000:]
    assert "INTERNALERROR" not in run.stdout + run.stderr
    assert "1 failed, 1 passed" in run.stdout
    assert "TraceExportWarning" in run.stdout and "could not write the trace" in run.stdout
    assert "1 traces could not be written" in run.stdout
