"""engines/smt.py: BMC agrees with the explicit engine on every row of the expectations table;
the symbolic step relation matches the explicit graph edge for edge; symbolic proofs, synthesis,
and the checks that keep the solver honest."""

from __future__ import annotations

import re
from typing import Any

import pytest
import z3

from herdproof.engines import explicit, smt
from herdproof.engines.result import Verdict
from herdproof.models.errors import HerdproofError, InvalidParameter, UnknownParameter
from herdproof.models.ops import eq
from herdproof.models.registry import build
from herdproof.properties import Kind, property_named
from herdproof.traces import replay
from tests.expectations import Case, case_params

STACK_2X1 = {"nodes": 2, "per_node": 1, "singleflight": False, "lock": True, "release": "cad"}


@pytest.mark.parametrize("case", case_params("smt"))
def test_solver_verdicts_and_shortest_lengths_agree_with_the_table(case: Case) -> None:
    inst = smt.instance(case.preset, case.params)
    names = [n for n, e in case.expect.items() if e.verdict != "n/a"
             and not property_named(n).monitors(inst.model)]
    for result in smt.check(inst, names):
        expected = case.expect[result.property]
        if property_named(result.property).kind is Kind.EVENTUALLY:
            assert result.verdict is Verdict.UNKNOWN  # progress is the explicit engine's job
            continue
        found = (result.verdict.value, len(result.trace) if result.trace else None)
        if not case.required("smt", result.property) and result.verdict is Verdict.UNKNOWN:
            continue  # the row says why the solver is not required to decide it
        assert found == (expected.verdict, expected.length), (case.name, result.property)
        if result.trace is not None:
            assert replay(result.trace).violation == len(result.trace)


def _monitored(case: Case) -> list[str]:
    """The row's properties checked on a monitor's product (SERVED<=B's wait clocks;
    NOLAPSED's lapse flag where the policy does not keep the history itself)."""
    model = build(case.preset, case.params)
    return [name for name in case.expect if property_named(name).monitors(model)]


@pytest.mark.parametrize("case", [c for c in case_params() if _monitored(c.values[0])])
def test_solver_finds_the_bounded_progress_violations_of_the_table(case: Case) -> None:
    """A monitored property runs on its monitor's product: BMC finds each violation at the
    table's length. Proving the holding SERVED<=B bounds needs invariants tying the wait
    clocks to the policies' timers, which the policies do not offer; k-induction does not
    close within its budget (lease-writer: unknown after 71 s), so the explicit engine alone
    decides those rows."""
    inst = smt.instance(case.preset, case.params)
    for name in _monitored(case):
        expected = case.expect[name]
        if expected.verdict != "violated":
            continue
        found = smt.bmc(inst, name, expected.length)  # type: ignore[arg-type]
        assert found.found and found.depth == expected.length, (case.name, name)
        assert found.trace is not None
        assert replay(found.trace).violation == expected.length


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, tuple):
        return [x for v in value for x in _leaves(v)]
    if hasattr(value, "__dataclass_fields__"):
        return [x for name in value.__dataclass_fields__ for x in _leaves(getattr(value, name))]
    return [value]


@pytest.mark.parametrize(("preset", "params"), [
    ("lock-cad", {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3}),
    ("lock-del", {"nodes": 1, "per_node": 2, "ex": 1, "rebuild": 2, "recheck": True}),
    ("singleflight", {"nodes": 2, "per_node": 1, "rebuild": 1}),
    ("stack", {"nodes": 1, "per_node": 2, "ex": 1, "rebuild": 2, "wait": 0}),
])
def test_step_relation_matches_the_explicit_graph(preset: str, params: dict[str, Any]) -> None:
    """Every explicit edge satisfies the symbolic step, and from every reachable state the
    symbolic step reaches no state outside the explicit successors."""
    inst = smt.instance(preset, params)
    exploration = explicit.explore(inst.model)
    unrolling = smt.Unrolling(inst)
    step = unrolling.step(0)
    s0, s1 = unrolling.state(0), unrolling.state(1)
    solver = z3.SolverFor("QF_LIA")
    solver.add(step, unrolling.domain(1))
    for state in exploration.graph:
        successors = list(exploration.graph.successors(state))
        solver.push()
        solver.add(smt._as_bool(eq(s0, state)))
        for nxt in successors:
            solver.push()
            solver.add(smt._as_bool(eq(s1, nxt)))
            assert solver.check() == z3.sat, f"edge {state} -> {nxt} is not a symbolic step"
            solver.pop()
        solver.add(z3.And(*[z3.Not(smt._as_bool(eq(s1, nxt))) for nxt in successors]))
        assert solver.check() == z3.unsat, f"the solver finds a successor of {state} the " \
                                           "explicit engine does not"
        solver.pop()


def test_one_is_proved_for_every_expiry_at_least_the_rebuild() -> None:
    inst = smt.instance("stack", STACK_2X1, symbolic=("ex", "rebuild"),
                        assume=("ex >= rebuild", "rebuild >= 1"))
    proof = smt.prove(inst, "ONE")
    assert proof.verdict is Verdict.HOLDS and proof.method == "induction" and proof.k == 1
    assert {"lock-holder", "lock-life"} <= set(proof.invariants)
    assert "WinLock(r=0) preserves ONE: ok" in proof.obligations
    assert "initial states satisfy ONE: ok" in proof.obligations
    assert "for all ex, rebuild with ex >= rebuild and rebuild >= 1" in proof.instance


def test_one_is_refuted_for_expiries_below_the_rebuild() -> None:
    inst = smt.instance("stack", STACK_2X1, symbolic=("ex", "rebuild"), assume=("ex < rebuild",))
    proof = smt.prove(inst, "ONE")
    assert proof.verdict is Verdict.VIOLATED and proof.trace is not None
    chosen = proof.trace.params
    assert chosen["ex"] < chosen["rebuild"]
    assert proof.trace.extra["chosen"] == {"ex": chosen["ex"], "rebuild": chosen["rebuild"]}
    assert replay(proof.trace).violation == len(proof.trace)


def test_release_by_delete_is_proved_safe_only_with_a_long_expiry() -> None:
    params = {**STACK_2X1, "release": "del"}
    safe = smt.prove(smt.instance("stack", params, symbolic=("ex", "rebuild"),
                                  assume=("ex >= rebuild",)), "NOFOREIGN")
    assert safe.verdict is Verdict.HOLDS
    unsafe = smt.prove(smt.instance("stack", params, symbolic=("ex", "rebuild"),
                                    assume=("ex < rebuild",)), "NOFOREIGN")
    assert unsafe.verdict is Verdict.VIOLATED


def test_recheck_makes_one_query_provable_for_all_timings() -> None:
    inst = smt.instance("stack-recheck", {"nodes": 2, "per_node": 1},
                        symbolic=("ex", "rebuild", "wait"), assume=("ex >= rebuild",))
    assert smt.prove(inst, "REBUILDS<=1").verdict is Verdict.HOLDS


def test_smallest_safe_expiry_is_the_rebuild_time() -> None:
    params = {"nodes": 1, "per_node": 2, "singleflight": False, "lock": True, "release": "cad",
              "rebuild": 5}
    found = smt.synthesise("stack", params, "ex", "ONE")
    assert found.smallest_safe == 5 and found.safe_from == 5 and found.settled
    assert found.monotone and found.broken is None and found.counterexample_above is None
    assert found.proof is not None and found.proof.verdict is Verdict.HOLDS
    assert found.counterexample is not None and found.counterexample.params["ex"] == 4
    assert replay(found.counterexample).violation == len(found.counterexample)
    assert [v for v, verdict in found.tried if verdict == "violated"] == [1, 2, 3, 4]
    assert found.safe == list(range(5, 65))  # every value up to --upper is decided ...
    assert found.queries == 5  # ... the safe ones 5..64 by one proof with ex symbolic
    assert {(d.low, d.high) for v, d in found.decisions.items() if v >= 5} == {(5, 64)}


def test_synthesis_does_not_assume_safety_grows_with_the_parameter() -> None:
    """get-del releases with GET, then DEL: with ex=2 the lock can expire in the gap between
    them and be won by another request, whose lock the DEL then deletes; with ex=1 it has
    always expired before the GET, and from ex=3 on it outlives the gap (issue 13). Synthesis
    must decide every value, as the explicit engine does."""
    params = {"nodes": 1, "per_node": 2, "singleflight": False, "lock": True,
              "release": "get-del", "rebuild": 2, "gap": 1}
    expected = {ex: explicit.check(build("stack", {**params, "ex": ex}), ["NOFOREIGN"])[0]
                .verdict for ex in range(1, 7)}
    assert [ex for ex, v in expected.items() if v is Verdict.VIOLATED] == [2]  # not monotone
    found = smt.synthesise("stack", params, "ex", "NOFOREIGN", upper=6)
    assert {v: d.proof.verdict for v, d in found.decisions.items()} == expected
    assert found.smallest_safe == 1 and found.safe == [1, 3, 4, 5, 6] and found.unsafe == [2]
    assert not found.monotone and found.broken == (1, 2) and found.safe_from == 3
    assert found.settled and found.counterexample is None  # 1 is the least value
    above = found.counterexample_above
    assert above is not None and above.params["ex"] == 2
    assert replay(above).violation == len(above)
    data = found.to_json()
    assert {"param", "smallest_safe", "proof", "counterexample", "safe", "monotone"} <= set(data)
    assert data["safe"] == [[1, 1], [3, 6]] and data["unsafe"] == [[2, 2]]
    assert data["monotone"] is False and data["smallest_safe"] == 1


def test_smallest_safe_expiry_as_a_relation() -> None:
    params = {"nodes": 1, "per_node": 2, "singleflight": False, "lock": True, "release": "cad"}
    found = smt.synthesise_relation("stack", params, "ex", "rebuild", "ONE")
    assert found.relation == "ex >= rebuild" and found.smallest_safe == 0 and found.settled
    assert found.proof is not None and found.proof.verdict is Verdict.HOLDS
    assert found.safe == [0, 1, 2, 3, 4] and found.unsafe == [-4, -3, -2, -1] and found.monotone
    assert found.counterexample is not None
    chosen = found.counterexample.params
    assert chosen["ex"] == chosen["rebuild"] - 1
    assert replay(found.counterexample).violation == len(found.counterexample)


def _answer(verdict: Verdict, method: str = "induction", ex: int | None = None) -> smt.Proof:
    from herdproof.traces.trace import Trace

    trace = Trace("stack", {"ex": ex}, ()) if ex is not None else None
    return smt.Proof(verdict, method, 1, 0.0, trace=trace)


def test_a_scan_decides_each_value_around_counterexamples_and_unknowns() -> None:
    """Ranges are tried as one proof; a counterexample splits the range around the value it
    shows, an unknown halves it, down to single values."""
    truth = {1: "u", 2: "v", 3: "h", 4: "v", 5: "h", 6: "h", 7: "h", 8: "h"}
    asked = []

    def decide(low: int, high: int) -> smt.Proof:
        asked.append((low, high))
        span = [truth[v] for v in range(low, high + 1)]
        if "v" in span:
            return _answer(Verdict.VIOLATED, "bmc", low + span.index("v"))
        return _answer(Verdict.UNKNOWN if "u" in span else Verdict.HOLDS)

    found = smt.Synthesis("ex", None, None, None, searched=(1, 8))
    smt._scan(found, decide, lambda trace: int(trace.params["ex"]))
    assert found.tried == [(1, "unknown"), (2, "violated"), (3, "holds"), (4, "violated"),
                           (5, "holds"), (6, "holds"), (7, "holds"), (8, "holds")]
    assert asked == [(1, 8), (1, 1), (3, 8), (3, 3), (5, 8)]
    assert found.broken == (3, 4) and found.safe_from == 5 and not found.settled


def test_a_limit_leaves_the_values_not_reached_unknown_and_ends_the_scan() -> None:
    calls = []

    def decide(low: int, high: int) -> smt.Proof:
        calls.append((low, high))
        if len(calls) == 1:
            return _answer(Verdict.VIOLATED, "bmc", 1)
        return _answer(Verdict.UNKNOWN, "stopped")

    found = smt.Synthesis("ex", None, None, None, searched=(1, 64))
    smt._scan(found, decide, lambda trace: int(trace.params["ex"]))
    assert calls == [(1, 64), (2, 64)]
    assert found.unsafe == [1] and found.unknown == list(range(2, 65))


@pytest.mark.parametrize(("param", "overrides", "kwargs", "error", "message"), [
    ("nodes", {}, {}, InvalidParameter, "synth searches timing parameters only"),
    ("release", {}, {}, InvalidParameter, "synth searches timing parameters only"),
    ("colour", {}, {}, UnknownParameter, "no parameter `colour`"),
    ("ex", {"ex": 3}, {}, InvalidParameter, "cannot also be fixed with -p ex="),
    ("ex", {}, {"upper": 0}, InvalidParameter, "--upper 0 is below the smallest value of ex"),
    ("ex", {}, {"prop": "REFILL"}, HerdproofError, "REFILL is a SOMETIMES property; synth"),
    ("ex", {}, {"relative_to": "ex"}, InvalidParameter, "--relative-to names `ex`, the "
     "parameter being searched"),
    ("ex", {}, {"relative_to": "nodes"}, InvalidParameter, "--relative-to nodes: synth "
     "searches timing parameters only"),
    ("ex", {}, {"relative_to": "colour"}, UnknownParameter, "no parameter `colour`"),
    ("ex", {"rebuild": 2}, {"relative_to": "rebuild"}, InvalidParameter,
     "cannot also be fixed with -p rebuild="),
])
def test_bad_synthesis_questions_are_refused(param: str, overrides: dict[str, Any],
                                             kwargs: dict[str, Any], error: type[Exception],
                                             message: str) -> None:
    prop = kwargs.pop("prop", "ONE")
    with pytest.raises(error, match=re.escape(message)):
        if "relative_to" in kwargs:
            smt.synthesise_relation("lock-cad", overrides, param, kwargs["relative_to"], prop)
        else:
            smt.synthesise("lock-cad", overrides, param, prop, **kwargs)


def test_unprovable_claim_is_unknown_with_a_classified_counterexample_to_induction() -> None:
    inst = smt.instance("singleflight", {"nodes": 2, "per_node": 2, "recheck": True})
    proof = smt.prove(inst, "REBUILDS<=2", max_k=3)
    assert proof.verdict is Verdict.UNKNOWN
    assert "starts in an unreachable state: the policy's invariants need strengthening" \
        in proof.detail
    assert explicit.check(build("singleflight", {"nodes": 2, "per_node": 2, "recheck": True}),
                          ["REBUILDS<=2"])[0].verdict is Verdict.HOLDS


def test_a_trace_that_does_not_replay_is_an_encoding_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        from herdproof.traces import ReplayError

        raise ReplayError("replay failed at step 1", step=1, state=None)

    monkeypatch.setattr(smt, "replay", refuse)
    with pytest.raises(smt.EncodingError, match="does not replay"):
        smt.bmc(smt.instance("none", {"nodes": 1, "per_node": 2}), "ONE")


@pytest.mark.parametrize(("symbolic", "assume", "error", "message"), [
    (("ex",), ("ex * ex > 1",), smt.AssumptionError, "not a linear"),
    (("ex", "rebuild"), ("ex * rebuild > 1",), smt.AssumptionError, "not a linear"),
    (("ex",), ("ex >",), smt.AssumptionError, "not a linear"),
    (("ex",), ("ex",), smt.AssumptionError, "not a linear"),
    (("ex",), ("ex > colour",), smt.AssumptionError, "names `colour`"),
    (("ex",), ("ex > release",), smt.AssumptionError, "names `release`"),
    (("nodes",), (), InvalidParameter, "shapes the model and cannot be symbolic"),
    (("speed",), (), UnknownParameter, "no parameter `speed`"),
])
def test_bad_symbolic_questions_are_refused(symbolic: tuple[str, ...], assume: tuple[str, ...],
                                            error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        smt.instance("lock-cad", {}, symbolic=symbolic, assume=assume)


def test_contradictory_assumptions_are_refused() -> None:
    inst = smt.instance("lock-cad", {}, symbolic=("ex",), assume=("ex < 1",))
    with pytest.raises(smt.AssumptionError, match="contradict"):
        smt.prove(inst, "ONE")


def test_assumptions_mix_constants_and_concrete_parameters() -> None:
    inst = smt.instance("lock-cad", {"rebuild": 3}, symbolic=("ex",),
                        assume=("2 * ex >= rebuild + 3", "10 > ex"))
    solver = z3.Solver()
    solver.add(*inst.assumptions)
    solver.add(inst.symbols["ex"] == 2)
    assert solver.check() == z3.unsat
    solver = z3.Solver()
    solver.add(*inst.assumptions, inst.symbols["ex"] == 3)
    assert solver.check() == z3.sat


def test_value_and_symbol_for_the_same_parameter_is_refused() -> None:
    with pytest.raises(InvalidParameter, match="both given a value and made symbolic"):
        smt.instance("lock-cad", {"ex": 3}, symbolic=("ex",))


def test_an_initial_state_may_hold_a_symbolic_parameter() -> None:
    """swr starts with the whole window left, so its initial state holds the z3 variable."""
    inst = smt.instance("swr", {"requests": 2}, symbolic=("stale_while_revalidate",))
    proof = smt.prove(inst, "ONE")
    assert proof.verdict is Verdict.VIOLATED and proof.trace is not None
    assert proof.trace.params["stale_while_revalidate"] == 0  # shortest: no window at all
    assert replay(proof.trace).violation == len(proof.trace) == 2
    single = smt.instance("swr", {"requests": 1},
                          symbolic=("stale_while_revalidate", "rebuild"))
    assert smt.prove(single, "ONE").verdict is Verdict.HOLDS


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in case_params()
                                  if "longest_wait" in c.values[0].max])
def test_solver_finds_the_tight_wait_bound_of_every_row(case: Case) -> None:
    """The explicit engine's longest wait L is tight for Z3 too: BMC refutes SERVED<=L-1 at
    the length of the explicit witness (minutes per row with crashes: the slow tier)."""
    longest = explicit.maximise(build(case.preset, case.params), "longest_wait")
    assert longest.value == case.max["longest_wait"]
    found = smt.bmc(smt.instance(case.preset, case.params), f"SERVED<={longest.value - 1}",
                    len(longest.trace))
    assert found.found and found.depth == len(longest.trace)
