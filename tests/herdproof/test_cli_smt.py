"""The Z3-backed commands: prove, synth, check --engine smt and --engine all."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from herdproof import cli
from herdproof.engines.result import Result, Verdict
from herdproof.traces import replay, trace_from_dict

STACK_2X1 = ["-p", "nodes=2", "-p", "per_node=1", "-p", "singleflight=off", "-p", "lock=on",
             "-p", "release=cad"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_prove_holds_by_induction(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "prove", "stack", *STACK_2X1, "--symbolic", "ex,rebuild",
                       "--assume", "ex >= rebuild", "--assume", "rebuild >= 1",
                       "--property", "ONE", "--json")
    data = json.loads(out)
    assert code == 0
    assert {"verdict", "method", "k", "seconds", "obligations", "trace"} <= set(data)
    assert data["verdict"] == "holds" and data["method"] == "induction" and data["k"] == 1
    assert "WinLock(r=1) preserves ONE: ok" in data["obligations"]
    assert data["trace"] is None


def test_prove_refutes_with_a_replayable_trace(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "prove", "stack", *STACK_2X1, "--symbolic", "ex,rebuild",
                       "--assume", "ex < rebuild", "--property", "ONE", "--json")
    data = json.loads(out)
    assert code == 1 and data["verdict"] == "violated"
    trace = trace_from_dict(data["trace"])
    assert trace.params["ex"] < trace.params["rebuild"]
    assert replay(trace).violation == len(trace)


def test_prove_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "prove", "lock-cad", "-p", "nodes=1", "--symbolic", "ex,rebuild",
                       "--assume", "ex >= rebuild", "--property", "NOFOREIGN")
    assert code == 0
    assert out.startswith("NOFOREIGN holds for stack nodes=1")
    assert "for all ex, rebuild with ex >= rebuild" in out and "obligations discharged" in out


def test_synth_smallest_safe_expiry(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "synth", "stack", "-p", "nodes=1", "-p", "per_node=2",
                       "-p", "singleflight=off", "-p", "lock=on", "-p", "release=cad",
                       "-p", "rebuild=5", "--param", "ex", "--property", "ONE", "--json")
    data = json.loads(out)
    assert code == 0
    assert {"param", "smallest_safe", "proof", "counterexample", "safe", "monotone"} <= set(data)
    assert data["param"] == "ex" and data["smallest_safe"] == 5
    assert data["safe"] == [[5, 64]] and data["unsafe"] == [[1, 4]] and data["monotone"] is True
    assert data["proof"]["verdict"] == "holds"
    below = trace_from_dict(data["counterexample"])
    assert below.params["ex"] == 4 and replay(below).violation == len(below)


def test_synth_relation(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "synth", "lock-cad", "-p", "nodes=1", "--param", "ex",
                       "--relative-to", "rebuild", "--property", "ONE")
    assert code == 0
    assert out.startswith("smallest safe: ex >= rebuild (proved by induction")
    assert "checked every offset c in ex = rebuild + c from -4 to 4: safe 0..4; unsafe -4..-1 " \
           "(monotone)" in out
    assert "counterexample just below it (ex = rebuild - 1)" in out


def test_synth_says_when_safety_is_not_monotone(capsys: pytest.CaptureFixture[str]) -> None:
    # GET then DEL: ex=2 lets the lock expire in the gap between them (issue 13)
    code, out, _ = run(capsys, "synth", "stack", "-p", "nodes=1", "-p", "per_node=2",
                       "-p", "singleflight=off", "-p", "release=get-del", "-p", "rebuild=2",
                       "-p", "gap=1", "--param", "ex", "--property", "NOFOREIGN", "--upper", "6")
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == "smallest safe ex = 1 (proved by k-induction)"
    assert lines[1] == "not monotone: ex=2 is unsafe although 1 is safe; every ex from 3 to 6 " \
                       "is safe"
    assert lines[2] == "checked every ex from 1 to 6: safe 1, 3-6; unsafe 2"
    assert "  violated at 2: counterexample of 9 steps, replayed" in lines
    assert "counterexample at ex=2, above the safe ex=1:" in lines
    # the DEL that removes another request's lock (which request: the solver's choice)
    assert re.search(r"DelLock\(r=\d\)", out) and "NOFOREIGN violated" in out


def test_synth_with_an_unknown_value_below_is_not_settled(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from herdproof.engines import smt

    def answer(verdict: Verdict, low: int, high: int, detail: str = "") -> smt.Decision:
        return smt.Decision(smt.Proof(verdict, "induction", 1, 0.0, detail=detail), low, high)

    safe = answer(Verdict.HOLDS, 3, 4)  # one proof for ex in 3..4
    found = smt.Synthesis("ex", 3, safe.proof, None, searched=(1, 4), decisions={
        1: answer(Verdict.UNKNOWN, 1, 1, "induction did not close"),
        2: answer(Verdict.UNKNOWN, 2, 2, "induction did not close"), 3: safe, 4: safe})
    monkeypatch.setattr(smt, "synthesise", lambda *args, **kwargs: found)
    code, out, _ = run(capsys, "synth", "lock-cad", "--param", "ex", "--property", "ONE")
    assert code == 3
    assert out.splitlines() == [
        "smallest safe ex = 3 (proved by induction), but 1-2 below it: unknown",
        "checked every ex from 1 to 4: safe 3-4; unsafe none; unknown 1-2",
        "  unknown at 1-2: induction did not close",
        "  holds at 3-4: one proof by induction (k=1) for all 2 at once"]


@pytest.mark.parametrize(("argv", "message"), [
    (["prove", "lock-cad", "--symbolic", "nodes", "--property", "ONE"], "cannot be symbolic"),
    (["prove", "lock-cad", "--symbolic", "ex", "--assume", "ex*ex > 2", "--property", "ONE"],
     "not a linear (in)equality"),
    (["prove", "lock-cad", "--symbolic", "ex", "--assume", "ex < 0", "--property", "ONE"],
     "contradict"),
    (["prove", "lock-cad", "--property", "SERVED"], "proves ALWAYS properties"),
    (["prove", "none", "--property", "NOFOREIGN"], "does not apply"),
    (["synth", "lock-cad", "--param", "release", "--property", "ONE"],
     "synth searches timing parameters only (ex, rebuild, wait"),
    (["synth", "lock-cad", "--param", "nodes", "--property", "ONE"],
     "`nodes` shapes the model"),
    (["synth", "lock-cad", "--param", "speed", "--property", "ONE"],
     "no parameter `speed` (--param)"),
    (["synth", "lock-cad", "--param", "ex", "-p", "ex=3", "--property", "ONE"],
     "cannot also be fixed with -p ex="),
    (["synth", "lock-cad", "--param", "ex", "--property", "ONE", "--upper", "0"],
     "--upper 0 is below the smallest value of ex (1)"),
    (["synth", "lock-cad", "--param", "ex", "--property", "ONE", "--upper", "-5"],
     "--upper must be at least 0"),
    (["synth", "lock-cad", "--param", "ex", "--property", "ONE", "--upper", "5000"],
     "--upper must be at most 1,000"),
    (["synth", "lock-cad", "--param", "ex", "--property", "REFILL"],
     "REFILL is a SOMETIMES property; synth looks for the values at which an ALWAYS"),
    (["synth", "lock-cad", "--param", "ex", "--relative-to", "ex", "--property", "ONE"],
     "--relative-to names `ex`, the parameter being searched"),
    (["synth", "lock-cad", "--param", "ex", "--relative-to", "nodes", "--property", "ONE"],
     "--relative-to nodes: synth searches timing parameters only"),
    (["synth", "lock-cad", "--param", "ex", "--relative-to", "speed", "--property", "ONE"],
     "no parameter `speed` (--relative-to)"),
    (["synth", "lock-cad", "--param", "ex", "--relative-to", "rebuild", "-p", "rebuild=2",
      "--property", "ONE"], "cannot also be fixed with -p rebuild="),
    (["synth", "lock-cad", "--param", "ex", "--relative-to", "rebuild", "--upper", "8",
      "--property", "ONE"], "with --relative-to it tries the offsets -4 to 4"),
    (["synth", "lock-cad", "--param", "ex", "--symbolic", "ex", "--property", "ONE"],
     "drop --symbolic and --assume"),
    (["synth", "lock-cad", "--param", "ex", "--relative-to", "rebuild", "--assume",
      "rebuild > 2", "--property", "ONE"], "drop --symbolic and --assume"),
    (["synth", "lock-cad", "--param", "ex", "--depth", "5", "--property", "ONE"],
     "drop --depth"),
    (["check", "lock-cad", "--engine", "smt", "--max-k", "0"], "--max-k must be at least 1"),
])
def test_bad_solver_questions_are_one_line_and_exit_two(capsys: pytest.CaptureFixture[str],
                                                        argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("herdproof: error: ") and message in err
    assert "Traceback" not in err


def test_check_with_the_smt_engine(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "lock-del", "-p", "nodes=1", "-p", "per_node=3",
                       "-p", "ex=2", "-p", "rebuild=3", "--engine", "smt", "--property",
                       "NOFOREIGN", "--property", "SERVED", "--json")
    results = {r["property"]: r for r in json.loads(out)["results"]}
    assert code == 1
    assert results["NOFOREIGN"]["verdict"] == "violated" and results["NOFOREIGN"]["engine"] == "smt"
    assert len(results["NOFOREIGN"]["trace"]["actions"]) == 8
    assert results["SERVED"]["verdict"] == "unknown"


def test_all_engines_agree_on_the_race(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", "lock-cad", "-p", "nodes=1", "-p", "per_node=2",
                         "-p", "ex=2", "-p", "rebuild=3", "--engine", "all", "--property", "ONE",
                         "--property", "NOFOREIGN", "--examples", "100", "--json")
    results = json.loads(out)["results"]
    assert code == 1 and "DISAGREE" not in err
    one = {r["engine"]: r for r in results if r["property"] == "ONE"}
    assert set(one) == {"explicit", "stateful", "smt"}
    assert {r["verdict"] for r in one.values()} == {"violated"}
    foreign = {r["engine"]: r["verdict"] for r in results if r["property"] == "NOFOREIGN"}
    assert foreign == {"explicit": "holds", "stateful": "unknown", "smt": "holds"}


def test_a_disagreement_is_loud(capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    real = cli._run_engine

    def lying(engine: str, *args: Any) -> list[Result]:
        results = real(engine, *args)
        if engine != "smt":
            return results
        return [Result(r.property, "smt", Verdict.HOLDS, None, 0.0) for r in results]

    monkeypatch.setattr(cli, "_run_engine", lying)
    code, _, err = run(capsys, "check", "lock-cad", "-p", "nodes=1", "-p", "ex=2", "-p",
                       "rebuild=3", "--engine", "all", "--property", "ONE", "--examples", "50")
    assert code == 4
    assert "ENGINES DISAGREE: ONE: explicit says violated, stateful says violated, smt says " \
           "holds" in err


def test_disagreement_on_shortest_length_is_loud_too() -> None:
    from herdproof.models.clock import Tick
    from herdproof.traces import Trace

    short = Trace("stack", {}, ())
    long = Trace("stack", {}, (Tick(), Tick()))
    results = [Result("ONE", "explicit", Verdict.VIOLATED, 1, 0.0, short),
               Result("ONE", "smt", Verdict.VIOLATED, None, 0.0, long)]
    assert cli.disagreements(results) == [
        "ONE: shortest traces differ (explicit 0 steps, smt 2 steps)"]
