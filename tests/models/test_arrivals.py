"""Arrival windows, which the request-program layer gives every policy (models/program.py:
``arrive_from``, ``arrive_before``; :func:`~models.program.with_arrivals`): requests, and
background actors whose step ``arrives``, act at ticks ``arrive_from <= t < arrive_before``
after the expiry; the defaults are today's model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from herdproof.engines import explicit, smt
from herdproof.engines.result import Verdict
from herdproof.models.core import Action, successors
from herdproof.models.errors import InvalidParameter
from herdproof.models.observation import Observation
from herdproof.models.ops import Bool, all_of, negate
from herdproof.models.params import Param
from herdproof.models.policy import PolicySpec
from herdproof.models.program import (
    ARRIVAL_PARAMS,
    ProgramModel,
    RequestAction,
    RequestsState,
    Step,
    evolve,
    with_arrivals,
)
from herdproof.models.registry import POLICIES, build
from tests.engines.toy import HangingModel

POLICY_NAMES = sorted(POLICIES)
WINDOW = {"arrive_from": 1, "arrive_before": 2}


def built(policy: str, params: Mapping[str, int] | None = None) -> Any:
    """The registered model, as the program it is (the layer's attributes are read)."""
    return build(policy, params)


def arrivals(model: Any, states: Any) -> list[tuple[Any, Action]]:
    """Every (state, action) in ``states`` whose action moves its own request off the arrival
    label, by the generic ``enabled``/``apply``."""
    found = []
    for s in states:
        for a, after in successors(model, s):
            r = getattr(a, "r", None)
            if isinstance(r, int) and s.pc[r] == model.ARRIVAL and after.pc[r] != model.ARRIVAL:
                found.append((s, a))
    return found


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_every_policy_has_the_window_and_its_defaults_are_todays_model(policy: str) -> None:
    assert POLICIES[policy].params[-2:] == ARRIVAL_PARAMS
    plain = built(policy)
    zeros = built(policy, {"arrive_from": 0, "arrive_before": 0})
    # nothing recorded (traces of today's runs stay as they were), no clock, nothing confined
    assert not {"arrive_from", "arrive_before"} & set(plain.params)
    assert plain.params == zeros.params and not plain.windowed and not zeros.windowed
    states = explicit.explore(zeros).graph
    assert {s.since for s in states} == {0}
    assert all(plain.arrivals_open(s) for s in states)


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_requests_arrive_only_inside_the_window(policy: str) -> None:
    model = built(policy, WINDOW)
    assert model.windowed and model.params["arrive_before"] == 2
    ex = explicit.explore(model)
    states = list(ex.graph)
    assert ex.complete and {s.since for s in states} == {0, 1, 2}  # saturates at the last edge
    found = arrivals(model, states)
    assert found, f"{policy}: nobody arrives inside the window"
    assert {s.since for s, _ in found} == {1}, [(s.since, a) for s, a in found]
    # the compiled fast path confines arrivals the same way, action for action
    for s in states:
        assert model.successors(s) == successors(model, s)


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_a_window_adds_no_progress_failure(policy: str) -> None:
    """A window only removes runs; the requests it keeps out are owed nothing, so a progress
    property that holds for today's model holds with a window (every policy's observation,
    the layer's or its own, must know who may no longer arrive)."""
    names = ["SERVED", "ANSWERED"]
    plain = explicit.check(built(policy), names)
    windowed = explicit.check(built(policy, {"arrive_before": 1}), names)
    for before, after in zip(plain, windowed, strict=True):
        if before.verdict is Verdict.HOLDS:
            assert after.verdict is Verdict.HOLDS, (policy, after.property, after.trace)


def test_a_request_that_never_arrived_is_owed_nothing() -> None:
    model = built("swr", {"requests": 2, "arrive_before": 1})
    over = [s for s in explicit.explore(model).graph if model.arrivals_over(s)]
    assert any(model.ARRIVAL in s.pc for s in over)
    for s in over:
        arrived = [pc for pc in s.pc if pc != model.ARRIVAL]
        served = [pc for pc in arrived if pc in model.DONE and pc not in model.ERRORS]
        assert model.observe(s).unserved == len(arrived) - len(served)
    # before the window closes a request that may still arrive is owed its answer
    first = model.initial_states()[0]
    assert model.observe(first).unserved == 2


@pytest.mark.parametrize(("params", "message"), [
    ({"arrive_from": 2, "arrive_before": 2},
     "swr with arrive_from=2 and arrive_before=2 lets no request arrive: arrive_before must be "
     "later than arrive_from (or 0 for no end)"),
    ({"arrive_from": 3, "arrive_before": 1},
     "swr with arrive_from=3 and arrive_before=1 lets no request arrive: arrive_before must be "
     "later than arrive_from (or 0 for no end)"),
])
def test_an_empty_window_is_refused(params: dict[str, int], message: str) -> None:
    with pytest.raises(InvalidParameter) as raised:
        build("swr", params)
    assert str(raised.value) == message


def test_a_window_only_where_the_model_is_a_program() -> None:
    spec = with_arrivals(PolicySpec("hanging", "a toy", (Param("requests", int, 2, "requests"),),
                                    lambda params, name: HangingModel(int(params["requests"]))))
    assert spec.params[-2:] == ARRIVAL_PARAMS
    assert isinstance(spec.build({"requests": 2, "arrive_from": 0, "arrive_before": 0},
                                 "hanging"), HangingModel)
    with pytest.raises(InvalidParameter, match="hanging is not written as a request program"):
        spec.build({"requests": 2, "arrive_from": 0, "arrive_before": 1}, "hanging")


# -- a background actor that arrives ---------------------------------------------------------

class Ask(RequestAction):
    """Request r asks and is answered; enabled when r has not arrived."""


class Poke(Action):
    """An outside actor pokes the key, once; enabled when nobody has."""


@dataclass(frozen=True, slots=True)
class PokeConfig:
    requests: int


@dataclass(frozen=True, slots=True)
class PokeState(RequestsState):
    poked: Bool


class PokeModel(ProgramModel[PokeConfig, PokeState]):
    """One step per request, and one background step that is an arrival of its own."""

    STEPS = (Step(Ask, at=0, effect=lambda m, s, r: m.goto(s, r, 1)),)
    BACKGROUND = (Step(Poke, at=(), arrives=True, guard=lambda m, s, _: negate(s.poked),
                       effect=lambda m, s, _: evolve(s, poked=True)),)
    DONE: ClassVar[tuple[int, ...]] = (1,)

    def initial_states(self) -> tuple[PokeState, ...]:
        n = self.requests
        return (PokeState(pc=(0,) * n, timer=(0,) * n, held=(False,) * n, seen=(0,) * n,
                          db=0, starts=0, crashed=0, poked=False),)

    def in_domain(self, s: PokeState) -> Bool:
        return all_of(*(pc >= 0 for pc in s.pc), *(pc <= 1 for pc in s.pc))

    def observe(self, s: PokeState) -> Observation:
        return self.observation(s, s.poked)


def poke_model(window: Mapping[str, int]) -> Any:
    model = PokeModel(PokeConfig(requests=1), {"requests": 1}, "poke")
    model.confine_arrivals(window.get("arrive_from", 0), window.get("arrive_before", 0))
    return model


def test_a_background_step_that_arrives_is_confined_too() -> None:
    def pokes(model: Any) -> set[int]:
        return {s.since for s in explicit.explore(model).graph
                for a, _ in successors(model, s) if isinstance(a, Poke)}

    assert pokes(poke_model({})) == {0}
    assert pokes(poke_model(WINDOW)) == {1}
    confined = poke_model(WINDOW)
    for s in explicit.explore(confined).graph:
        assert confined.successors(s) == successors(confined, s)


# -- the claim it lets us state: inside the stale window, one origin fetch -------------------

def test_inside_the_stale_window_one_origin_fetch_for_every_window() -> None:
    inst = smt.instance("swr", {"requests": 3},
                        symbolic=("stale_while_revalidate", "rebuild", "arrive_before"),
                        assume=("arrive_before >= 1",
                                "arrive_before <= stale_while_revalidate"))
    proof = smt.prove(inst, "REBUILDS<=1", max_seconds=120)
    assert proof.verdict is Verdict.HOLDS and proof.method == "induction"
    assert {"window-clock", "one-refresh"} <= set(proof.invariants)


def test_one_tick_past_the_stale_window_the_herd_is_back() -> None:
    inst = smt.instance("swr", {"requests": 3},
                        symbolic=("stale_while_revalidate", "rebuild", "arrive_before"),
                        assume=("arrive_before >= 1",
                                "arrive_before <= stale_while_revalidate + 1"))
    proof = smt.prove(inst, "REBUILDS<=1", max_seconds=120)
    assert proof.verdict is Verdict.VIOLATED and proof.trace is not None
    chosen = proof.trace.params
    assert int(chosen["arrive_before"]) == int(chosen["stale_while_revalidate"]) + 1
