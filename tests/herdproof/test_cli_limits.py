"""Limits and Ctrl-C on every engine: ``unknown`` with how far it got and exit 3 at a limit,
the partial counts and exit 130 on Ctrl-C, never a traceback (issue 12).

The limit tests run in-process; the Ctrl-C tests run the CLI in a subprocess and send it
SIGINT once it is well inside a search that would go on for far longer.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from herdproof import cli
from herdproof.cli import main

LOCK = ["lock-cad", "-p", "nodes=1", "-p", "per_node=2"]
HUGE = ["stack", "-p", "nodes=100"]  # one step of its encoding, or BFS level, takes seconds


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code, out, _ = run(capsys, *argv, "--json")
    return code, json.loads(out)


# -- limits ------------------------------------------------------------------------------------

def test_explicit_time_limit_on_a_huge_instance(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "check", *HUGE, "--max-seconds", "1")
    assert code == 3
    for result in data["results"]:
        assert result["verdict"] == "unknown", result
        assert result["detail"].startswith("time limit 1s reached after "), result
        assert f"after {result['states']} states (" in result["detail"]


def test_the_default_limits_are_named_when_hit(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "DEFAULT_MAX_STATES", 10)
    code, out, err = run(capsys, "check", "stack", "--property", "ONE")
    assert code == 3 and "state limit 10 reached after" in out
    assert err.startswith("herdproof: stopped at the default limit (--max-states 10, "
                          "--max-seconds 600); raise --max-states to search further")
    code, out, err = run(capsys, "check", "stack", "--property", "ONE", "--max-states", "10")
    assert code == 3 and err == ""  # a limit the user set needs no note


def test_max_stops_at_the_time_limit_with_a_lower_bound(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "max", *HUGE, "--quantity", "rebuild_starts",
                          "--max-seconds", "0.5")
    assert code == 3 and data["complete"] is False
    assert data["detail"].startswith("a lower bound: time limit 0.5s reached after ")


def test_stateful_time_limit_stops_a_huge_number_of_examples(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "check", *LOCK, "--property", "NOFOREIGN", "--engine",
                          "stateful", "--examples", "100000000", "--max-seconds", "1")
    assert code == 3
    [result] = data["results"]
    assert result["verdict"] == "unknown"
    assert result["detail"].startswith("time limit 1s reached after ")
    assert result["detail"].endswith("no violation found (seed 0)")


def test_stateful_step_limit(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "check", *LOCK, "--property", "NOFOREIGN", "--engine",
                          "stateful", "--max-states", "50")
    assert code == 3
    assert data["results"][0]["detail"].startswith("step limit 50 reached after ")


def test_seed_is_named_and_reproduces(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["check", "lock-del", "-p", "nodes=1", "-p", "per_node=3", "-p", "ex=2",
            "-p", "rebuild=3", "--property", "NOFOREIGN", "--engine", "stateful",
            "--examples", "100"]
    first = run_json(capsys, *argv, "--seed", "11")
    second = run_json(capsys, *argv, "--seed", "11")
    assert first[0] == second[0] == 1
    a, b = first[1]["results"][0], second[1]["results"][0]
    assert "(seed 11)" in a["detail"] and a["detail"] == b["detail"]
    assert a["trace"]["actions"] == b["trace"]["actions"]
    _, out, _ = run(capsys, *argv)
    assert "(seed 0)" in out  # the default seed, named too


@pytest.mark.parametrize("seed", ["-1", "x", "4294967296"])
def test_a_bad_seed_is_bad_input(capsys: pytest.CaptureFixture[str], seed: str) -> None:
    code, out, err = run(capsys, "check", *LOCK, "--engine", "stateful", "--seed", seed)
    assert (code, out) == (2, "") and err.startswith("herdproof: error: --seed ")


def test_smt_time_limit_on_a_huge_instance(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "check", *HUGE, "--engine", "smt", "--property", "ONE",
                          "--property", "REFILL", "--max-seconds", "1")
    assert code == 3
    for result in data["results"]:
        assert result["verdict"] == "unknown"
        assert result["detail"].startswith("time limit 1s reached during "), result


def test_prove_time_limit(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "prove", *HUGE, "--property", "ONE", "--max-seconds", "1")
    assert code == 3 and data["verdict"] == "unknown"
    # where the second ran out depends on the machine: an early encoding step, or Houdini
    assert re.match(r"time limit 1s reached during (encoding step 0 \(action \d+ of \d+\)|"
                    r"Houdini \(filtering the candidate invariants\))", data["detail"]), \
        data["detail"]


def test_synth_time_limit(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "synth", *HUGE, "--param", "ex", "--property", "ONE",
                       "--max-seconds", "1")
    assert code == 3 and "time limit 1s reached during " in out


def test_a_solver_query_over_its_timeout_is_out_of_time() -> None:
    import z3

    from herdproof.engines import smt

    # a non-linear puzzle z3 cannot settle in a fraction of a second
    solver = z3.SolverFor("QF_NIA")
    xs = [z3.Int(f"x{i}") for i in range(12)]
    solver.add(*[x > 1 for x in xs], z3.Sum([x * x * x for x in xs]) == 1234567891,
               xs[0] * xs[1] * xs[2] - xs[3] * xs[4] * xs[5] == 7777777)
    with smt.limits(query_seconds=0.2), \
            pytest.raises(smt.OutOfTime, match=r"solver timeout 0\.2s reached on one query"):
        smt._check(solver)


def test_fleet_time_limit_shows_the_simulations_finished(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "fleet", "--policy", "lock", "--sweep-ex", "auto",
                       "--max-seconds", "1")
    assert code == 3
    last = out.splitlines()[-1]
    assert last.startswith("fleet: time limit 1s reached after ")
    assert " of 13 simulations finished (shown)" in last
    code, data = run_json(capsys, "fleet", "--policy", "lock", "--sweep-ex", "auto",
                          "--max-seconds", "1")
    assert code == 3 and data["stopped"].startswith("time limit 1s reached")
    assert data["interrupted"] is False
    assert len(data["ex_risk"]["rows"]) < 13


# -- Ctrl-C ------------------------------------------------------------------------------------

def interrupt(*argv: str, after: float = 3.0) -> tuple[int, str, str]:
    """Run the CLI, send SIGINT once it has run for ``after`` seconds of CPU time (start-up
    takes half a second; a wall-clock wait would fall inside it on a loaded machine), and
    return (exit code, stdout, stderr)."""
    child = subprocess.Popen([sys.executable, "-m", "herdproof", *argv],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    give_up = time.monotonic() + 60
    while cpu_seconds(child.pid) < after and child.poll() is None and \
            time.monotonic() < give_up:
        time.sleep(0.05)
    if child.poll() is not None:
        raise AssertionError(f"finished before it could be interrupted: {child.communicate()}")
    child.send_signal(signal.SIGINT)
    try:
        out, err = child.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        raise AssertionError(f"still running 60 s after Ctrl-C:\n{out}\n{err}") from None
    assert "Traceback" not in err, err
    return child.returncode, out, err


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a running process (Linux ``/proc``); elsewhere, the wall
    time since the first call for it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        started = _FIRST_SEEN.setdefault(pid, time.monotonic())
        return time.monotonic() - started
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_FIRST_SEEN: dict[int, float] = {}


def test_ctrl_c_during_explicit_check() -> None:
    code, out, _ = interrupt("check", "stack", "-p", "nodes=3", "-p", "per_node=3")
    assert code == 130
    assert "interrupted after " in out and " states (" in out, out


def test_ctrl_c_during_stateful_check() -> None:
    code, out, _ = interrupt("check", *LOCK, "--property", "NOFOREIGN", "--property", "ONE",
                             "--engine", "stateful", "--examples", "100000000")
    assert code == 130
    lines = out.splitlines()
    assert "interrupted after " in lines[1] and " runs (" in lines[1], out
    assert lines[1].endswith("no violation found (seed 0)")
    assert "not checked: interrupted" in lines[2]


def test_ctrl_c_during_prove() -> None:
    code, out, _ = interrupt("prove", *HUGE, "--property", "ONE")
    assert code == 130
    assert out.startswith("ONE unknown for stack")
    assert "interrupted during " in out, out


def test_ctrl_c_during_fleet() -> None:
    code, out, _ = interrupt("fleet", "--policy", "lock", "--sweep-ex", "auto",
                             "--boundaries", "50000")
    assert code == 130
    assert out.splitlines()[-1].startswith("fleet: interrupted after "), out
    assert " of 13 simulations finished (shown)" in out


def test_ctrl_c_during_synth() -> None:
    code, out, _ = interrupt("synth", *HUGE, "--param", "ex", "--property", "ONE")
    assert code == 130
    assert out.startswith("no safe value of ex") and "interrupted during " in out, out


def test_progress_reports_on_stderr_and_leaves_stdout_alone(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from herdproof.engines import explicit

    monkeypatch.setattr(explicit, "PROGRESS_EVERY", 0.0)  # report at every expansion
    race = ["check", "lock-cad", "-p", "nodes=1", "-p", "per_node=2", "-p", "ex=2", "-p",
            "rebuild=3", "--property", "ONE"]
    code = main([*race, "--progress"])
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 1 and "ONE          violated" in out and "herdproof:" not in out
    assert lines and all(re.fullmatch(r"herdproof: [\d,]+ states \([\d,]+/s\), frontier "
                                      r"[\d,]+, \d+\.\ds", line) for line in lines)
    assert main(race) == 1
    assert capsys.readouterr().err == ""  # silent unless asked
