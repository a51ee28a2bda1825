"""Proofs for every fleet size: a quantified inductive invariant, checked by Z3.

``herdproof prove POLICY --all-sizes`` proves an ``ALWAYS`` property for every number of nodes
and requests per node (and every value of the symbolic timing constants under the
assumptions). The encoding (:mod:`engines.quantified`) is compiled from the policy's request
program; this module does the proof:

1. Candidates: the layer's type invariant (labels, timers, versions, counters), the policy's
   quantified candidates (its model's ``quantified_invariants()``, :mod:`models.candidates`),
   and the property itself.
2. Houdini: a candidate that is false in the initial state, or that some action (a tick, a
   write, or "some request r takes step X") can break from a state where all surviving
   candidates hold, is dropped, until none is. Each check is one solver query on the
   quantified state, with the candidates as universally quantified hypotheses.
3. If the property survives, it holds for every size: the survivors are an inductive invariant
   that implies it. Every (action, candidate) pair is an obligation.
4. If not, the counterexample to induction (a state where the survivors and the property hold,
   and an action that breaks the property) is decoded into a concrete instance, and the
   explicit engine says whether that state is reachable at that size; the size search
   (:mod:`engines.cutoff`) then looks for the smallest violating fleet.

Either way the explicit engine is a second line of evidence: a proved property is checked size
by size up to the largest fleet it finishes within the limits (:mod:`engines.cutoff`).

Examples
--------
>>> proof = prove_all_sizes("lock-cad", {}, symbolic=("ex", "rebuild"),
...                         assume=("ex >= rebuild",), prop="ONE", cross_check=0)
>>> proof.verdict.value, "lock-holder" in proof.invariants
('holds', True)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import z3

from herdproof.engines import cutoff, smt
from herdproof.engines.quantified import (
    QuantifiedProgram,
    Unsupported,
    Who,
    as_bool,
    compile_program,
    decode,
    domain_candidates,
    evaluate,
    formula,
)
from herdproof.engines.result import Verdict
from herdproof.models.candidates import Candidate, whole
from herdproof.models.core import Action
from herdproof.models.errors import HerdproofError
from herdproof.models.symmetry import get_path
from herdproof.properties import Kind, Property, property_named
from herdproof.traces.trace import Trace

ENGINE = "allsizes"
#: The explicit engine's share of the time for the size-by-size check, and its largest fleet.
CROSS_CHECK_SECONDS = 20.0
CROSS_CHECK_REQUESTS = 6
CROSS_CHECK_STATES = 400_000
#: Counterexamples to induction tried, looking for one whose state is reachable.
CTI_TRIES = 8


@dataclass
class Induction:
    """The counterexample to induction: a state where the surviving candidates and the
    property hold, and the action that breaks the property, as a concrete instance."""

    action: str
    params: dict[str, Any]
    size: str
    columns: dict[str, str]
    reachable: str  # "reachable", "unreachable", or why it is not known

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "params": self.params, "size": self.size,
                "state": self.columns, "reachable": self.reachable}


@dataclass
class AllSizesProof:
    """The answer of :func:`prove_all_sizes`."""

    verdict: Verdict
    property: str
    instance: str
    seconds: float
    scope: str = ""
    invariants: list[str] = field(default_factory=list)
    summaries: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)  # name -> what broke it
    obligations: list[str] = field(default_factory=list)
    queries: int = 0
    encoding: str = ""
    induction: Induction | None = None
    sizes: cutoff.SizeSearch | None = None
    trace: Trace | None = None
    detail: str = ""
    interrupted: bool = False
    disagree: bool = False  # the explicit engine refutes what the proof claims

    def how(self) -> str:
        """How the verdict was reached."""
        return "quantified induction" if self.verdict is Verdict.HOLDS else \
            "size search" if self.verdict is Verdict.VIOLATED else "stopped"

    def to_json(self) -> dict[str, Any]:
        from herdproof.traces.jsonio import trace_to_dict

        return {"verdict": self.verdict.value, "method": self.how(), "all_sizes": True,
                "property": self.property, "instance": self.instance, "scope": self.scope,
                "seconds": round(self.seconds, 4), "invariants": self.invariants,
                "dropped": self.dropped, "obligations": self.obligations,
                "queries": self.queries, "encoding": self.encoding,
                "induction": self.induction.to_json() if self.induction else None,
                "sizes": self.sizes.to_json() if self.sizes else None,
                "trace": trace_to_dict(self.trace) if self.trace is not None else None,
                "detail": self.detail, "disagree": self.disagree}

    def report(self) -> str:
        """The answer as a person reads it: the verdict, the invariants used (or what broke
        the induction step, as a concrete instance), and the size-by-size evidence with the
        smallest violating fleet's trace, replayed through the model."""
        out = [f"{self.property} {self._headline()}", f"  instance: {self.instance}"]
        if self.verdict is Verdict.HOLDS:
            out.append(f"  by {self.how()} over every request and node ({self.queries} solver "
                       f"queries, {self.seconds:.1f}s); {len(self.obligations)} obligations "
                       "discharged (initial states, and every step taken by any request)")
            out.append("  invariants used (each for every request, pair of requests or node):")
            out += [f"    {name}: {self.summaries.get(name, '')}" for name in self.invariants]
        if self.dropped:
            out.append("  candidates dropped (not inductive here): " + ", ".join(
                f"{name} ({why})" for name, why in self.dropped.items()))
        out.append(f"  encoding: {self.encoding}")
        if self.induction is not None:
            cti = self.induction
            values = " ".join(f"{k}={v}" for k, v in cti.params.items())
            out.append(f"  counterexample to induction: {cti.action} at {values}, from")
            out.append("    " + "  ".join(f"{k}: {v}" for k, v in cti.columns.items()))
            out.append(f"    {cti.reachable} (explicit engine at {cti.size})")
        if self.sizes is not None:
            out += self._sizes()
        if self.detail:
            out.append(f"  {self.detail}")
        return "\n".join(out) + "\n"

    def _headline(self) -> str:
        if self.verdict is Verdict.HOLDS:
            return f"holds for {self.scope}"
        if self.verdict is Verdict.VIOLATED:
            return f"violated: not for {self.scope}"
        return f"unknown for {self.scope}"

    def _sizes(self) -> list[str]:
        from herdproof.traces import render_text, replay

        found = self.sizes
        assert found is not None
        out = []
        tried = found.summary()
        if found.violation is not None:
            v = found.violation
            values = "".join(f", {k}={x}" if i == 0 else f" {k}={x}"
                             for i, (k, x) in enumerate(v.values.items()))
            out.append(f"  smallest violating fleet: {v.requests} "
                       f"request{'s' if v.requests > 1 else ''} ({v.size}{values}), by the "
                       f"explicit engine in order of total requests: {tried}")
            if v.trace is not None:
                out.append(f"  trace ({len(v.trace)} steps, replayable: {v.trace.program()}):\n")
                out.append(render_text(replay(v.trace)).rstrip("\n"))
        else:
            out.append(f"  explicit engine, size by size: agrees at every size up to "
                       f"{found.largest or 0} requests: {tried}"
                       + (f"; stopped at {found.stopped}" if found.stopped else ""))
        return out


def prove_all_sizes(name: str, overrides: Mapping[str, object] | None, *,
                    symbolic: Sequence[str] = (), assume: Sequence[str] = (), prop: str,
                    max_seconds: float | None = None, query_seconds: float | None = None,
                    cross_check: int = CROSS_CHECK_REQUESTS) -> AllSizesProof:
    """Prove ``prop`` for every fleet size (see the module docstring).

    ``max_seconds`` bounds the whole call and ``query_seconds`` each solver query; running
    out gives ``unknown`` with what was reached. ``cross_check`` is the largest fleet (in
    requests) the explicit engine checks size by size (0: none).
    """
    started = time.perf_counter()
    wanted = property_named(prop)
    if wanted.kind is not Kind.ALWAYS:
        raise HerdproofError(f"{wanted.name} is not an ALWAYS property; --all-sizes proves "
                             "ALWAYS properties (e.g. ONE, NOFOREIGN, REBUILDS<=1)")
    program = compile_program(name, overrides, symbolic=symbolic, assume=assume)
    concrete = program.inst.model
    if wanted.monitors(concrete):
        what = "of every request's wait" if "waited" in wanted.requires else \
            f"that keeps {program.policy}'s lapsed writes"
        raise Unsupported(f"{wanted.name} is checked with a monitor {what}, which the proof "
                          "for every size does not encode; check it size by size with "
                          "`herdproof check`")
    if not wanted.applies_to(concrete.observe(concrete.initial_states()[0])):
        raise HerdproofError(f"property {wanted.name} does not apply to this configuration "
                             f"of {program.policy} ({wanted.needs()})")
    proof = AllSizesProof(Verdict.UNKNOWN, wanted.name, program.describe(), 0.0,
                          scope=program.scope(), encoding=program.epr())
    with smt.limits(max_seconds, query_seconds) as bound:
        try:
            _run(program, wanted, proof, cross_check)
        except (smt.OutOfTime, KeyboardInterrupt) as stop:
            proof.interrupted = isinstance(stop, KeyboardInterrupt)
            why = "interrupted" if proof.interrupted else str(stop)
            seconds = time.perf_counter() - started
            proof.detail = f"{why} during {bound.reached} ({seconds:.1f}s)"
            if proof.verdict is Verdict.HOLDS and not proof.interrupted:
                proof.detail = f"the size-by-size check stopped: {proof.detail}"
            elif proof.verdict is not Verdict.VIOLATED:
                proof.verdict = Verdict.UNKNOWN
    proof.seconds = time.perf_counter() - started
    return proof


def _run(program: QuantifiedProgram, wanted: Property, proof: AllSizesProof,
         cross_check: int) -> None:
    model = program.model
    smt._spend("checking the assumptions")
    check = z3.Solver()
    check.add(*program.background())
    if smt._check(check) == z3.unsat:
        raise smt.AssumptionError("the assumptions contradict each other or the parameters' "
                                  "ranges: no value satisfies them all")
    goal = whole(wanted.name, wanted.summary,
                 lambda m, s: wanted.predicate(m.observe(s)))  # read through observe()
    declared = getattr(model, "quantified_invariants", None)
    policy_candidates: tuple[Candidate, ...] = evaluate(
        f"{program.policy}'s quantified_invariants()", declared) if declared else ()
    candidates = [goal, *domain_candidates(program), *policy_candidates]
    proof.summaries = {c.name: f"(for some request) {c.summary}" if c.over == "some request"
                       else c.summary for c in candidates}
    houdini = Houdini(program, candidates)
    survivors = houdini.run(proof)
    proof.queries = houdini.queries
    used = [c.name for c in survivors if c is not goal]
    proof.invariants = used
    if goal in survivors:
        proof.verdict = Verdict.HOLDS
        proof.obligations = [f"initial states satisfy {c.name}: ok" for c in survivors] + [
            f"{program.action_name(a)} preserves {c.name}: ok"
            for a in program.actions for c in survivors]
        if cross_check:
            _cross_check(program, wanted, proof, cross_check)
        return
    valuations: list[dict[str, Any]] = []
    explored: dict[str, Any] = {}
    for found in houdini.counterexamples(goal, survivors):
        induction = _classify(program, *found, explored)
        if proof.induction is None or induction.reachable == "reachable":
            proof.induction = induction
            valuations.insert(0, {k: found[0].params[k] for k in program.inst.symbols})
        if induction.reachable == "reachable":
            break
    smt._spend("searching sizes for the smallest violating fleet")
    search = cutoff.search(program.policy, program.params, program.sizes,
                           cutoff.valuations(program.inst, valuations), wanted,
                           up_to=max(cross_check, CROSS_CHECK_REQUESTS),
                           budget=_budget(CROSS_CHECK_SECONDS * 2))
    proof.sizes = search
    if search.violation is not None:
        proof.verdict = Verdict.VIOLATED
        proof.trace = search.violation.trace
    else:
        proof.detail = ("the induction step fails and no size up to "
                        f"{search.largest or 0} requests violates the property; "
                        "the counterexample to induction needs a stronger invariant")


def _budget(seconds: float) -> float:
    """``seconds``, or what is left of the time limit in force if that is less."""
    bound = smt._current()
    if bound.deadline is None:
        return seconds
    return max(0.0, min(seconds, bound.deadline - time.perf_counter()))


def _cross_check(program: QuantifiedProgram, wanted: Property, proof: AllSizesProof,
                 up_to: int) -> None:
    smt._spend("checking sizes one by one with the explicit engine")
    search = cutoff.search(program.policy, program.params, program.sizes,
                           cutoff.valuations(program.inst, []), wanted, up_to=up_to,
                           budget=_budget(CROSS_CHECK_SECONDS))
    proof.sizes = search
    if search.violation is not None:  # a bug in the encoding: say so, keep the trace
        proof.verdict, proof.disagree = Verdict.UNKNOWN, True
        proof.trace = search.violation.trace
        proof.detail = (f"the proof for every size says {wanted.name} holds, but the explicit "
                        f"engine violates it at {search.violation.size}: the quantified "
                        "encoding disagrees with the model")


def _requests_only(program: QuantifiedProgram, state: Any, what: str) -> None:
    """Refuse a step that stores a special value other than nobody (nginx's ``BACKGROUND``)
    where a request belongs: the state before a step holds a request or nobody there, so the
    states after such a step would never be stepped from, and a proof would miss them."""
    for path in program.layout.owners:
        value = get_path(state, path)
        if isinstance(value, int) and not isinstance(value, bool) and value != -1:
            raise Unsupported(f"{what} cannot be read for every size: it sets {path} to "
                              f"{value}, a special value other than nobody (-1), which a "
                              "proof for every size cannot tell from nobody")


class Houdini:
    """The largest inductive subset of a list of quantified candidates."""

    def __init__(self, program: QuantifiedProgram, candidates: Sequence[Candidate]) -> None:
        self.program = program
        self.candidates = list(candidates)
        self.pre = program.state("0")
        self.queries = 0
        model = program.model
        self.steps: list[tuple[Action, Any, Any]] = []
        for a in program.actions:
            what = f"step {program.action_name(a)}"
            guard = as_bool(evaluate(f"{what} (its guard)", partial(model.enabled, self.pre, a)))
            post = evaluate(f"{what} (its effect)", partial(model.apply, self.pre, a))
            _requests_only(program, post, f"{what} (its effect)")
            self.steps.append((a, guard, post))
        self._formulas: dict[tuple[str, int], Any] = {}

    def formula(self, c: Candidate, state: Any, key: int) -> Any:
        """Candidate ``c`` on a state (``key`` names it: -1 the pre-state, -2 - i the i-th
        initial state, i the post-state of action i); built once."""
        cached = self._formulas.get((c.name, key))
        if cached is None:
            cached = evaluate(f"candidate {c.name}", lambda: formula(self.program, c, state))
            self._formulas[(c.name, key)] = cached
        return cached

    def _valid(self, solver: Any, claim: Any, where: str) -> bool:
        solver.push()
        solver.add(z3.Not(claim))
        smt._spend(where)
        self.queries += 1
        try:
            answer = smt._check(solver)
        finally:
            solver.pop()
        if answer == z3.unknown:
            return False
        return bool(answer == z3.unsat)

    def run(self, proof: AllSizesProof) -> list[Candidate]:
        program = self.program
        alive = list(self.candidates)
        initial = z3.Solver()
        initial.add(*program.background())
        for c in list(alive):
            for i, start in enumerate(program.initials):
                if not self._valid(initial, self.formula(c, start, -2 - i),
                                   f"Houdini: does {c.name} hold initially?"):
                    alive.remove(c)
                    proof.dropped[c.name] = "false in the initial state"
                    break
        changed = True
        rounds = 0
        while changed:
            changed = False
            rounds += 1
            solver = z3.Solver()
            solver.add(*program.background())
            solver.add(*(self.formula(c, self.pre, -1) for c in alive))
            for n, (a, guard, post) in enumerate(self.steps):
                solver.push()
                solver.add(guard)
                if hasattr(a, "r"):
                    solver.add(self.program.chosen != self.program.world.nobody)
                for c in list(alive):
                    if not self._valid(solver, self.formula(c, post, n),
                                       f"Houdini round {rounds}: does "
                                       f"{program.action_name(a)} preserve {c.name}?"):
                        alive.remove(c)
                        proof.dropped[c.name] = f"{program.action_name(a)} can break it"
                        changed = True
                solver.pop()
                if changed:
                    break  # restart the round with the smaller set of hypotheses
        return alive

    def counterexamples(self, goal: Candidate, survivors: Sequence[Candidate],
                        limit: int = CTI_TRIES) -> Iterator[tuple[Any, str]]:
        """States where the survivors and ``goal`` hold and an action that breaks ``goal``
        (decoded), or the initial state if ``goal`` is false there. Up to ``limit`` of them,
        each with different values in the shared stores from the ones before."""
        program = self.program
        for i, start in enumerate(program.initials):
            solver = z3.Solver()
            solver.add(*program.background(),
                       z3.Not(self.formula(goal, start, -2 - i)))
            smt._spend("finding where the property fails")
            if smt._check(solver) == z3.sat:
                yield decode(program, start, solver.model()), "the initial state"
                return
        stores = _store_leaves(self.pre)
        for n, (a, guard, post) in enumerate(self.steps):
            solver = z3.Solver()
            solver.add(*program.background(), guard,
                       *(self.formula(c, self.pre, -1) for c in survivors),
                       self.formula(goal, self.pre, -1), z3.Not(self.formula(goal, post, n)))
            if hasattr(a, "r"):
                solver.add(program.chosen != program.world.nobody)
            for _ in range(limit):
                smt._spend("finding the counterexample to induction "
                           f"({program.action_name(a)})")
                if smt._check(solver) != z3.sat:
                    break
                solution = solver.model()
                yield decode(program, self.pre, solution), program.action_name(a)
                limit -= 1
                solver.add(z3.Or(*(leaf != solution.eval(leaf, model_completion=True)
                                   for leaf in stores)) if stores else z3.BoolVal(False))
            if limit <= 0:
                return


def _store_leaves(s: Any) -> list[Any]:
    """The shared stores' integer and boolean leaves of a quantified state, and whether each
    request-valued leaf is nobody (what a counterexample to induction varies next)."""
    out: list[Any] = []
    if isinstance(s, Who):
        out.append(s.term == s.world.nobody)
    elif dataclasses.is_dataclass(s) and not isinstance(s, type):
        for f in dataclasses.fields(s):
            out += _store_leaves(getattr(s, f.name))
    elif isinstance(s, tuple):
        for v in s:
            out += _store_leaves(v)
    elif z3.is_expr(s) and (z3.is_int(s) or z3.is_bool(s)) and z3.is_const(s):
        out.append(s)
    return out


def _classify(program: QuantifiedProgram, found: Any, action: str,
              explored: dict[str, Any]) -> Induction:
    """The counterexample to induction as a concrete instance, and whether the explicit engine
    reaches its state at that size (each instance explored once, in ``explored``)."""
    from herdproof.engines import explicit
    from herdproof.models.registry import build

    model = build(program.policy, found.params)
    size = " ".join(f"{k}={found.params[k]}" for k in program.sizes)
    if found.request is not None:
        action = action.replace("(r)", f"(r={found.request})")
    try:
        columns = dict(model.describe(found.state))
    except (ValueError, KeyError, IndexError) as exc:
        columns = {"state": f"{found.state!r} ({exc})"}
    key = repr(sorted(found.params.items()))
    exploration = explored.get(key)
    if exploration is None:
        smt._spend(f"exploring {size} to see if the counterexample to induction is reachable")
        exploration = explored[key] = explicit.explore(
            model, max_states=CROSS_CHECK_STATES,
            deadline=time.perf_counter() + _budget(CROSS_CHECK_SECONDS / 2))
    if exploration.interrupted:
        raise KeyboardInterrupt
    if found.state in exploration.index:
        reachable = "reachable"
    elif exploration.complete:
        reachable = "unreachable (the candidates need strengthening)"
    else:
        reachable = f"not known ({exploration.stop_reason} at {exploration.states} states)"
    values = {k: found.params[k] for k in program.inst.symbols}
    return Induction(action, {**{k: found.params[k] for k in program.sizes}, **values},
                     size, columns, reachable)
