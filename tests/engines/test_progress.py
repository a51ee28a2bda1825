"""SERVED (an EVENTUALLY property) on a model where a request can hang forever."""

from __future__ import annotations

from herdproof.engines import explicit, stateful
from herdproof.engines.result import Verdict
from herdproof.traces import Trace, replay
from tests.engines.toy import Hang, HangingModel, Serve


def test_explicit_engine_finds_the_run_that_rests_unserved() -> None:
    result = explicit.check(HangingModel(), ["SERVED"])[0]
    assert result.verdict is Verdict.VIOLATED and result.trace is not None
    assert result.trace.actions == (Hang(r=0),)
    assert "every fair run ends with the property false" in result.trace.note
    assert replay(result.trace, HangingModel()).violation == 1


def test_explicit_engine_with_symmetry_agrees() -> None:
    result = explicit.check(HangingModel(3), ["SERVED"], symmetry=True)[0]
    assert result.verdict is Verdict.VIOLATED and result.trace is not None
    assert len(result.trace) == 1


def test_stateful_engine_finds_it_when_the_run_comes_to_rest() -> None:
    result = stateful.check(HangingModel(), ["SERVED"], max_examples=100, max_steps=10)[0]
    assert result.verdict is Verdict.VIOLATED and result.trace is not None
    assert replay(result.trace, HangingModel()).violation == len(result.trace)
    assert Hang(r=0) in result.trace.actions or Hang(r=1) in result.trace.actions


def test_a_run_that_can_still_progress_is_not_a_violation() -> None:
    model = HangingModel()
    waiting = Trace("hanging", model.params, (Serve(r=0),), property="SERVED")
    assert replay(waiting, model).violation is None  # r1 can still be served
    served = Trace("hanging", model.params, (Serve(r=0), Serve(r=1)), property="SERVED")
    assert replay(served, model).violation is None
