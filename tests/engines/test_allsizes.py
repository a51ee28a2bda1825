"""Proofs for every fleet size (engines/allsizes.py, engines/quantified.py, engines/cutoff.py).

The quantified encoding is held to the concrete model on reachable states (every step's guard
and effect agree), proofs and refutations are checked against the explicit engine size by size,
and the CLI's `prove --all-sizes` shows what issue 17 asks for.
"""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Any

import pytest
import z3

from herdproof.cli import main
from herdproof.engines import explicit
from herdproof.engines.allsizes import prove_all_sizes
from herdproof.engines.cutoff import sizes
from herdproof.engines.quantified import ArrayView, Unsupported, Who, World, compile_program
from herdproof.engines.result import Verdict
from herdproof.models.core import successors
from herdproof.models.registry import build
from herdproof.traces import replay

SEED_CLAIM = ["prove", "stack", "--all-sizes", "--symbolic", "ex,rebuild", "--assume",
              "ex >= rebuild", "--assume", "rebuild >= 1", "--property", "ONE"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- the encoding agrees with the model ----------------------------------------------------

def _interpret(program: Any, state: Any, solver: Any) -> list[Any]:
    """Assert that the quantified pre-state of ``program`` is the concrete ``state``: one
    element per request (and node), and nothing else in the sorts."""
    world = program.world
    pre = program.state("0")
    requests = len(state.pc)
    elements = [z3.Const(f"e{i}", world.req) for i in range(requests)]
    solver.add(z3.Distinct(world.nobody, *elements))
    x = z3.Const("x", world.req)
    solver.add(z3.ForAll([x], z3.Or(x == world.nobody, *(x == e for e in elements))))
    nodes: list[Any] = []
    if world.node is not None:
        groups = len(state.flights)
        nodes = [z3.Const(f"n{i}", world.node) for i in range(groups)]
        solver.add(z3.Distinct(*nodes))
        y = z3.Const("y", world.node)
        solver.add(z3.ForAll([y], z3.Or(*(y == n for n in nodes))))
        per_node = requests // groups
        solver.add(*(world.node_of(e) == nodes[i // per_node] for i, e in enumerate(elements)))

    def who(value: int) -> Any:
        return world.nobody if value < 0 else elements[value]

    def tie(quantified: Any, concrete: Any, path: str) -> None:
        if isinstance(quantified, Who):
            solver.add(quantified.term == who(concrete))
        elif isinstance(quantified, ArrayView):
            keys = elements if quantified.over == "request" else nodes
            for k, value in zip(keys, concrete, strict=True):
                solver.add(quantified.term(k) == (who(value) if quantified.holds == "who"
                                                   else value))
        elif dataclasses.is_dataclass(quantified):
            for f in dataclasses.fields(quantified):
                tie(getattr(quantified, f.name), getattr(concrete, f.name), f.name)
        elif isinstance(quantified, tuple):
            for q, c in zip(quantified, concrete, strict=True):
                tie(q, c, path)
        elif z3.is_expr(quantified):
            solver.add(quantified == concrete)
    tie(pre, state, "")
    return [pre, elements, nodes, who]


def _agrees(solver: Any, claim: Any) -> bool:
    solver.push()
    solver.add(z3.Not(claim))
    answer = solver.check()
    solver.pop()
    return bool(answer == z3.unsat)


@pytest.mark.parametrize(("name", "params"), [
    ("stack", {"nodes": 2, "per_node": 2, "ex": 1, "rebuild": 2, "recheck": True}),
    ("lock-del", {"nodes": 1, "per_node": 2, "ex": 1, "rebuild": 1, "pause": 1}),
    ("lease", {"requests": 2, "lease_window": 2, "rebuild": 1}),
    ("stack", {"nodes": 2, "per_node": 2, "ex": 2, "rebuild": 2, "crash": True}),
])
def test_every_step_agrees_with_the_model_on_reachable_states(name: str, params: dict[str, Any]
                                                               ) -> None:
    sized = {k: v for k, v in params.items() if k not in ("nodes", "per_node", "requests")}
    program = compile_program(name, sized)
    concrete = build(name, params)
    reached = explicit.explore(concrete, max_states=400).order
    states = reached[::max(1, len(reached) // 12)]
    assert len(states) >= 10
    for state in states:
        solver = z3.Solver()
        pre, elements, nodes, who = _interpret(program, state, solver)
        expected = {repr(a): after for a, after in successors(concrete, state)}
        for action in program.actions:
            requests = range(len(elements)) if hasattr(action, "r") else [None]
            for i in requests:
                solver.push()
                if i is not None:
                    solver.add(program.chosen == elements[i])
                    named = type(action)(r=i)  # type: ignore[call-arg]
                else:
                    named = action
                guard = program.model.enabled(pre, action)
                enabled = repr(named) in expected
                assert _agrees(solver, guard if enabled else z3.Not(guard)), (state, named)
                if enabled:
                    after = program.model.apply(pre, action)
                    _compare(after, expected[repr(named)], (elements, nodes), who, solver,
                             named)
                solver.pop()


def _compare(after: Any, wanted: Any, sorts: tuple[list[Any], list[Any]], who: Any,
             solver: Any, action: Any) -> None:
    if isinstance(after, Who):
        assert _agrees(solver, after.term == who(wanted)), (action, after, wanted)
    elif isinstance(after, ArrayView):
        keys = sorts[0] if after.over == "request" else sorts[1]
        for k, value in zip(keys, wanted, strict=True):
            target = who(value) if after.holds == "who" else value
            assert _agrees(solver, after.term(k) == target), (action, value)
    elif dataclasses.is_dataclass(after):
        for f in dataclasses.fields(after):
            _compare(getattr(after, f.name), getattr(wanted, f.name), sorts, who, solver,
                     action)
    elif z3.is_expr(after):
        assert _agrees(solver, after == wanted), (action, after, wanted)
    else:
        assert after == wanted, (action, after, wanted)


# -- the seed's claim and its refutations -----------------------------------------------------

def test_the_seed_claim_holds_for_every_fleet_size(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    code, out, _ = run(capsys, *SEED_CLAIM)
    assert time.perf_counter() - started < 60
    assert code == 0, out
    assert out.startswith("ONE holds for every nodes, per_node and every ex, rebuild with "
                          "ex >= rebuild and rebuild >= 1")
    assert "    lock-holder: a request re-checking or rebuilding holds the lock" in out
    assert "    lock-life:" in out
    assert "explicit engine, size by size: agrees at every size up to" in out


def test_ex_below_rebuild_is_refuted_by_the_smallest_fleet(capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    argv = [a if a != "ex >= rebuild" else "ex < rebuild" for a in SEED_CLAIM]
    code, out, _ = run(capsys, *argv)
    assert code == 1, out
    assert out.startswith("ONE violated")
    assert "smallest violating fleet: 2 requests (nodes=2 per_node=1, ex=1 rebuild=2)" in out
    assert "1x1 1x2 hold, 2x1 violated (nodes x per_node)" in out
    assert "<- ONE violated" in out
    # the counterexample to induction is the solver's choice (which request, how large a
    # fleet: it differed between machines); what is fixed is that it is a second WinLock and
    # that the explicit engine reaches it at the size the solver chose
    found = re.search(r"counterexample to induction: WinLock\(r=\d+\) at (nodes=\d+ "
                      r"per_node=\d+)", out)
    assert found is not None, out
    assert f"    reachable (explicit engine at {found.group(1)})" in out


def test_the_violation_trace_replays() -> None:
    proof = prove_all_sizes("stack", {}, symbolic=("ex", "rebuild"), assume=("ex < rebuild",),
                            prop="ONE", cross_check=0)
    assert proof.verdict is Verdict.VIOLATED and proof.trace is not None
    replayed = replay(proof.trace)
    assert replayed.violation == len(proof.trace)
    assert (proof.trace.params["nodes"], proof.trace.params["per_node"]) == (2, 1)


@pytest.mark.parametrize(("name", "smallest"), [
    # without single-flight two requests of one process race for the lock
    ("lock-del", "nodes=1 per_node=2"),
    # with it they share one flight: the race needs two processes
    ("stack", "nodes=2 per_node=1"),
])
def test_a_pause_with_unconditional_del_releases_a_foreign_lock(name: str, smallest: str) -> None:
    proof = prove_all_sizes(name, {"release": "del", "pause": 1}, symbolic=("ex", "rebuild"),
                            assume=("ex >= rebuild",), prop="NOFOREIGN", cross_check=0)
    assert proof.verdict is Verdict.VIOLATED
    assert proof.sizes is not None and proof.sizes.violation is not None
    assert proof.sizes.violation.size == smallest and proof.sizes.violation.requests == 2
    assert proof.trace is not None and replay(proof.trace).violation == len(proof.trace)
    assert "Pause(r=0)" in proof.trace.program()


def test_noforeign_cli_names_the_smallest_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "prove", "lock-del", "-p", "pause=1", "--all-sizes",
                       "--symbolic", "ex,rebuild", "--assume", "ex >= rebuild",
                       "--property", "NOFOREIGN")
    assert code == 1
    assert "smallest violating fleet: 2 requests (nodes=1 per_node=2, ex=1 rebuild=1)" in out
    assert "<- NOFOREIGN violated" in out


def test_the_db_query_bound_needs_the_recheck() -> None:
    kept = prove_all_sizes("stack-recheck", {}, symbolic=("ex", "rebuild"),
                           assume=("ex >= rebuild",), prop="REBUILDS<=1", cross_check=3)
    assert kept.verdict is Verdict.HOLDS
    assert {"lock-holder", "rebuild-owner", "no-early-rebuild"} <= set(kept.invariants)
    assert kept.sizes is not None and (kept.sizes.largest or 0) >= 3
    lost = prove_all_sizes("stack", {}, symbolic=("ex", "rebuild"), assume=("ex >= rebuild",),
                           prop="REBUILDS<=1", cross_check=0)
    assert lost.verdict is Verdict.VIOLATED
    assert lost.sizes is not None and lost.sizes.violation is not None
    assert lost.sizes.violation.size == "nodes=1 per_node=2"


@pytest.mark.parametrize(("params", "symbolic", "assume", "prop", "verdict", "smallest"), [
    ({}, (), (), "MUTEX", Verdict.HOLDS, None),
    ({}, (), (), "NOLAPSED", Verdict.HOLDS, None),
    ({"crash": True}, (), (), "MUTEX", Verdict.HOLDS, None),
    ({"watchdog": False}, ("work", "lease"), ("work <= lease",), "MUTEX", Verdict.HOLDS, None),
    ({"watchdog": False}, (), (), "MUTEX", Verdict.VIOLATED, "requests=2"),  # work 4 > lease 3
    ({"partition_at": 1}, (), (), "MUTEX", Verdict.VIOLATED, "requests=2"),
])
def test_the_watchdog_for_every_number_of_requests(
        params: dict[str, Any], symbolic: tuple[str, ...], assume: tuple[str, ...], prop: str,
        verdict: Verdict, smallest: str | None) -> None:
    # its counts over the requests (hung holders, acting holders) are ops.count_where, the
    # hung ones added to the rebuilding count (a sum of two counts)
    proof = prove_all_sizes("watchdog", params, symbolic=symbolic, assume=assume, prop=prop,
                            cross_check=3)
    assert proof.verdict is verdict, proof.report()
    if verdict is Verdict.HOLDS:
        assert {"holder-owns", "one-holder"} & set(proof.invariants) or \
            "lease-covers" in proof.invariants
        assert proof.sizes is not None and proof.sizes.violation is None
    else:
        assert proof.sizes is not None and proof.sizes.violation is not None
        assert proof.sizes.violation.size == smallest
        assert proof.trace is not None and replay(proof.trace).violation == len(proof.trace)


@pytest.mark.parametrize(("k", "both"), [(0, False), (1, False), (1, True), (2, True)])
def test_a_sum_of_counts_compares_like_the_sum(k: int, both: bool) -> None:
    # count(a) + count(b) <= k over a world of three requests, against plain arithmetic: a
    # request satisfying both conditions is counted twice
    from herdproof.engines.quantified import Count

    world = World(with_nodes=False)
    req = [z3.Const(f"e{i}", world.req) for i in range(3)]
    solver = z3.Solver()
    solver.add(z3.Distinct(world.nobody, *req))
    x = z3.Const("x", world.req)
    solver.add(z3.ForAll([x], z3.Or(x == world.nobody, *(x == e for e in req))))
    a = z3.Function("a", world.req, z3.BoolSort())
    b = z3.Function("b", world.req, z3.BoolSort())
    a_holds, b_holds = [True, False, False], [both, True, False]
    for e, va, vb in zip(req, a_holds, b_holds, strict=True):
        solver.add(a(e) == va, b(e) == vb)
    total = sum(a_holds) + sum(b_holds)
    summed = Count(world, lambda r: a(r.term)) + Count(world, lambda r: b(r.term))
    solver.add(z3.Not(summed <= k) if total <= k else (summed <= k))
    assert solver.check() == z3.unsat


@pytest.mark.parametrize(("params", "assume", "verdict", "smallest"), [
    ({}, ("lock_timeout > fetch", "lock_age > fetch"), Verdict.HOLDS, None),
    ({}, ("lock_timeout > fetch", "lock_age >= fetch"), Verdict.VIOLATED, "requests=2"),
    ({}, ("lock_timeout <= fetch",), Verdict.VIOLATED, "requests=2"),
    ({"start": "stale", "use_stale_updating": True}, (), Verdict.HOLDS, None),
])
def test_nginx_cache_lock_keeps_one_origin_fetch_for_every_number_of_clients(
        params: dict[str, Any], assume: tuple[str, ...], verdict: Verdict,
        smallest: str | None) -> None:
    symbolic = ("fetch", "lock_timeout", "lock_age") if assume else ()
    proof = prove_all_sizes("nginx", params, symbolic=symbolic, assume=assume, prop="ONE",
                            cross_check=3)
    assert proof.verdict is verdict, proof.report()
    if verdict is Verdict.HOLDS:
        assert {"one-fetcher", "lock-has-fetcher"} <= set(proof.invariants)
    else:
        assert proof.sizes is not None and proof.sizes.violation is not None
        assert proof.sizes.violation.size == smallest
        assert proof.trace is not None and replay(proof.trace).violation == len(proof.trace)


@pytest.mark.parametrize(("params", "symbolic", "prop", "verdict", "smallest"), [
    ({}, (), "ONE", Verdict.HOLDS, None),
    ({}, (), "REBUILDS<=1", Verdict.HOLDS, None),
    ({"start": "stale"}, ("grace", "fetch"), "ONE", Verdict.HOLDS, None),
    ({"cacheable": False, "hfp": "off"}, (), "ONE", Verdict.HOLDS, None),  # serialised
    ({"cacheable": False, "hfp": "miss"}, (), "ONE", Verdict.VIOLATED, "requests=3"),
])
def test_varnish_coalescing_for_every_number_of_clients(
        params: dict[str, Any], symbolic: tuple[str, ...], prop: str, verdict: Verdict,
        smallest: str | None) -> None:
    proof = prove_all_sizes("varnish", params, symbolic=symbolic, prop=prop, cross_check=3)
    assert proof.verdict is verdict, proof.report()
    if verdict is Verdict.HOLDS:
        assert "one-fetcher" in proof.invariants
    else:
        assert proof.sizes is not None and proof.sizes.violation is not None
        assert proof.sizes.violation.size == smallest
        assert proof.trace is not None and replay(proof.trace).violation == len(proof.trace)


def test_a_count_plus_a_background_flag_reads_for_every_size() -> None:
    # swr's observation adds its refresher (ite(refresh >= 0, 1, 0)) to the rebuild count
    proof = prove_all_sizes("swr", {}, prop="ONE", cross_check=0)
    assert proof.verdict is Verdict.VIOLATED
    assert proof.sizes is not None and proof.sizes.violation is not None
    assert proof.sizes.violation.size == "requests=2"


def test_a_crash_kills_the_process_for_every_size_too() -> None:
    # the crash's effect (every live request of the process dies) is one update over the
    # node's requests, so crash=on proves and refutes like the rest
    kept = prove_all_sizes("stack", {"crash": True}, symbolic=("ex", "rebuild"),
                           assume=("ex >= rebuild",), prop="ONE", cross_check=3)
    assert kept.verdict is Verdict.HOLDS, kept.report()
    lost = prove_all_sizes("stack-recheck", {"crash": True}, symbolic=("ex", "rebuild"),
                           assume=("ex >= rebuild",), prop="REBUILDS<=1", cross_check=0)
    assert lost.verdict is Verdict.VIOLATED  # the crashed rebuild was a query too
    assert lost.sizes is not None and lost.sizes.violation is not None
    assert lost.sizes.violation.size == "nodes=1 per_node=2"
    assert lost.trace is not None and replay(lost.trace).violation == len(lost.trace)
    assert "Crash(r=0)" in lost.trace.program()


@pytest.mark.parametrize(("name", "window"), [("lease", "lease_window"),
                                              ("memcached-meta", "stub_ttl")])
def test_the_db_query_bound_of_leases_and_stubs_needs_some_request_at_work(
        name: str, window: str) -> None:
    # While a rebuild has started and nothing is stored yet, *some* request holds the token
    # (or the stub's win) and is rebuilding: an existential candidate, without which the
    # induction step fails at an unreachable state.
    kept = prove_all_sizes(name, {"writers": 0}, symbolic=(window, "rebuild"),
                           assume=(f"{window} > rebuild",), prop="REBUILDS<=1", cross_check=3)
    assert kept.verdict is Verdict.HOLDS, kept.report()
    assert "rebuild-in-flight" in kept.invariants
    assert kept.sizes is not None and (kept.sizes.largest or 0) >= 3
    assert "    rebuild-in-flight: (for some request) once a rebuild started" in kept.report()
    lost = prove_all_sizes(name, {"writers": 0}, symbolic=(window, "rebuild"),
                           assume=(f"{window} <= rebuild",), prop="REBUILDS<=1", cross_check=0)
    assert lost.verdict is Verdict.VIOLATED
    assert lost.sizes is not None and lost.sizes.violation is not None
    assert lost.sizes.violation.size == "requests=2"
    assert lost.trace is not None and replay(lost.trace).violation == len(lost.trace) == 3


def test_an_existential_candidate_needs_a_request_to_exist() -> None:
    # every fleet has a request; without that axiom "some request ..." fails in the initial
    # state of an empty world
    world = World(with_nodes=False)
    solver = z3.Solver()
    solver.add(*world.axioms, z3.Not(world.exists(lambda r: True)))
    assert solver.check() == z3.unsat


@pytest.mark.parametrize(("name", "params", "symbolic", "assume", "prop", "verdict"), [
    ("lease", {}, (), (), "FRESH", Verdict.HOLDS),
    ("lease", {"leases": False}, (), (), "FRESH", Verdict.VIOLATED),
    ("lease", {"writers": 0}, ("lease_window", "rebuild"), ("lease_window > rebuild",), "ONE",
     Verdict.HOLDS),
    ("lease", {"writers": 0}, ("lease_window", "rebuild"), ("lease_window >= rebuild",), "ONE",
     Verdict.VIOLATED),
    ("memcached-meta", {}, (), (), "FRESH", Verdict.HOLDS),
    ("memcached-meta", {"cas": False}, (), (), "FRESH", Verdict.VIOLATED),
    ("memcached-meta", {"writers": 0}, ("stub_ttl", "rebuild"), ("stub_ttl > rebuild",), "ONE",
     Verdict.HOLDS),
    ("stack", {"fencing": True, "writers": 1}, (), (), "FRESH", Verdict.HOLDS),
    ("stack", {"writers": 1}, (), (), "FRESH", Verdict.VIOLATED),
    # asynchronous replication: the acknowledged SET NX is lost in a failover (3 steps)
    ("failover", {}, (), (), "MUTEX", Verdict.VIOLATED),
])
def test_lease_meta_and_fencing(name: str, params: dict[str, Any], symbolic: tuple[str, ...],
                                assume: tuple[str, ...], prop: str, verdict: Verdict) -> None:
    proof = prove_all_sizes(name, params, symbolic=symbolic, assume=assume, prop=prop,
                            cross_check=2)
    assert proof.verdict is verdict, proof.report()
    if verdict is Verdict.VIOLATED:
        assert proof.trace is not None and replay(proof.trace).violation == len(proof.trace)
    else:
        assert proof.sizes is not None and proof.sizes.violation is None


# -- what cannot be read for every size, and the limits ------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["go-singleflight", "--property", "ONE"],
     "step Lead(r) (its guard) cannot be read for every size: it loops over every request "
     "one by one"),
    (["stack", "-p", "nodes=2", "--property", "ONE"],
     "--all-sizes proves the property for every nodes, per_node; drop -p nodes=..."),
    (["stack", "--property", "SERVED"], "SERVED is not an ALWAYS property"),
    (["stack", "--property", "SERVED<=3"], "monitor of every request's wait"),
    (["redlock", "--property", "MUTEX"], "cannot be read for every size"),
    (["nginx", "-p", "start=stale", "-p", "use_stale_updating=on", "-p",
      "background_update=on", "--property", "ONE"],
     "it sets owner to -2, a special value other than nobody (-1)"),
])
def test_what_cannot_be_proved_for_every_size_is_one_sentence(
        capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run(capsys, "prove", *argv, "--all-sizes")
    assert code == 2 and out == ""
    assert err.startswith("herdproof: error: ") and message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_a_request_named_by_number_is_refused() -> None:
    program = compile_program("stack", {})
    with pytest.raises(Unsupported, match="names request 0 by its number"):
        program.state("0").pc[0]


def test_the_time_limit_gives_unknown_with_what_was_reached(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *SEED_CLAIM, "--max-seconds", "0.001")
    assert code == 3
    assert out.startswith("ONE unknown")
    assert "time limit 0.001s reached during" in out


def test_json_has_the_invariants_and_the_size_search(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    import json

    code, out, _ = run(capsys, *SEED_CLAIM, "--json")
    data = json.loads(out)
    assert code == 0 and data["verdict"] == "holds" and data["all_sizes"] is True
    assert "lock-holder" in data["invariants"]
    assert data["sizes"]["smallest_violating"] is None and data["sizes"]["agrees_up_to"] >= 4


def test_sizes_come_in_order_of_total_requests() -> None:
    assert [s for _, s in sizes(("nodes", "per_node"), 4)] == [
        {"nodes": 1, "per_node": 1}, {"nodes": 1, "per_node": 2}, {"nodes": 2, "per_node": 1},
        {"nodes": 1, "per_node": 3}, {"nodes": 3, "per_node": 1}, {"nodes": 1, "per_node": 4},
        {"nodes": 2, "per_node": 2}, {"nodes": 4, "per_node": 1}]
    assert [s for _, s in sizes(("requests",), 3)] == [{"requests": n} for n in (1, 2, 3)]
