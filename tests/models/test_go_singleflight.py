"""models/policies/go_singleflight.py: the claims its expectation rows cannot state alone.

The rows (traces/expectations/go-singleflight.toml) hold the verdicts, shortest lengths and
state counts for every engine. Here: the holding rows are proved from the command line for
*every* fn duration (``rebuild`` symbolic), the unsafe ones refuted with traces that replay and
show the mechanism (the unchecked delete removing the second call's entry, the crash killing
a caller of another call, the DoChan waiter left on its channel), and bad input is one sentence.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from herdproof import cli
from herdproof.engines import explicit
from herdproof.models.registry import build
from herdproof.traces import replay, trace_from_dict

SYMBOLIC = ("--symbolic", "rebuild", "--assume", "rebuild >= 1")


def prove(capsys: pytest.CaptureFixture[str], prop: str,
          *params: str) -> tuple[int, dict[str, Any]]:
    argv = ["prove", "go-singleflight", *(a for p in params for a in ("-p", p)), *SYMBOLIC,
            "--property", prop, "--json"]
    code = cli.main(argv)
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("prop", "params"), [
    ("ONE", ("callers=3", "dochan=1")),
    ("REBUILDS<=1", ("callers=3", "dochan=1")),
    ("REBUILDS<=2", ("callers=3", "dochan=1", "forget=on")),
    ("SHARED", ("callers=3", "dochan=1", "outcome=error")),
    ("SHARED", ("callers=3", "dochan=1", "outcome=panic")),
    ("SHARED", ("callers=3", "dochan=1", "outcome=goexit")),
])
def test_holding_claims_are_proved_for_every_duration(capsys: pytest.CaptureFixture[str],
                                                      prop: str, params: tuple[str, ...]) -> None:
    code, data = prove(capsys, prop, *params)
    assert code == 0 and data["verdict"] == "holds" and data["method"] == "induction"
    assert "Lead(r=0) preserves " + prop + ": ok" in data["obligations"]


def test_forget_buys_one_execution_only_while_completion_checks_the_map(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, data = prove(capsys, "REBUILDS<=2", "callers=3", "dochan=1", "forget=on")
    assert code == 0 and "forgotten-calls" in data["invariants"]
    code, data = prove(capsys, "REBUILDS<=2", "callers=3", "forget=on", "forget_check=off")
    assert code == 1 and data["verdict"] == "violated"
    trace = trace_from_dict(data["trace"])
    assert replay(trace).violation == len(trace)
    names = [type(a).__name__ for a in trace.actions]
    # c1 runs, Forget, c2 starts; c1's return deletes c2's entry, so c3 starts beside c2
    assert names.index("Forget") < names.index("ReturnValue") < len(names) - 1
    assert names[-1] == "Lead" and names.count("Lead") == 3
    replayed = replay(trace)
    model: Any = replayed.model
    before, after = replayed.states[-3], replayed.states[-2]
    said = " ".join(m.text for m in model.narrate(trace.actions[-2], before, after))
    assert "unchecked: removes c2's entry" in said


def test_a_panic_with_a_channel_waiting_kills_a_caller_of_the_other_call() -> None:
    model = build("go-singleflight", {"callers": 2, "dochan": 1, "outcome": "panic",
                                      "forget": True})
    result = explicit.check(model, ["SHARED"])[0]
    assert result.trace is not None
    assert [repr(a) for a in result.trace.actions][-2:] == ["PanicWithWaiters(r=1)",
                                                            "ProcessDies()"]
    final = replay(result.trace).states[-1]
    assert final.crashed == 1 and final.joined == (1, 2) and final.dying == 2


def test_the_dochan_waiter_of_a_goexit_never_receives() -> None:
    model = build("go-singleflight", {"callers": 3, "dochan": 1, "outcome": "goexit"})
    answered = explicit.check(model, ["ANSWERED"])[0]
    assert answered.trace is not None
    assert repr(answered.trace.actions[-1]) == "Goexit(r=2)"
    final = replay(answered.trace).states[-1]
    assert model.describe(final)["r2"] == "DoChan wait c1"
    # with Do callers only, Goexit ends every caller of the call: an answer, if no value
    do_only = build("go-singleflight", {"callers": 3, "outcome": "goexit"})
    assert [r.verdict.value for r in explicit.check(do_only, ["ANSWERED", "SERVED"])] == [
        "holds", "violated"]


def test_more_dochan_callers_than_callers_is_one_sentence(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["check", "go-singleflight", "-p", "callers=2", "-p", "dochan=3"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "can be at most callers=2, not 3" in err and "Traceback" not in err
