"""Z3: bounded model checking, k-induction, symbolic timing constants and synthesis.

The encoding is derived from the model's own ``enabled`` / ``apply`` / ``in_domain`` /
``observe`` functions (written with :mod:`models.ops`), called on symbolic states: there is no
second copy of any policy. A symbolic state has one z3 variable per integer or boolean leaf,
named after its place and step (``pc[1]@3``). Step ``i`` has one indicator per candidate action;
exactly one is true, and ``took[i][a] -> enabled(s_i, a) and s_{i+1} == apply(s_i, a)``.
``in_domain`` is asserted on every state: z3's integers are unbounded, the model's are not.

Timing constants (parameters marked ``timing``, e.g. ``ex`` and ``rebuild``) can be left
symbolic under linear assumptions, so a proof covers every value at once.

Everything the solver says is checked by the concrete model: a counterexample is decoded into a
:class:`~traces.trace.Trace` with the concrete parameter values the solver chose and replayed
through the registry's model before it is reported; one that does not replay is a bug in the
encoding and raises :class:`EncodingError`.

Examples
--------
>>> inst = instance("lock-cad", {"nodes": 1, "per_node": 2}, symbolic=("ex", "rebuild"),
...                 assume=("ex >= rebuild",))
>>> prove(inst, "ONE").verdict.value
'holds'
>>> bad = instance("lock-cad", {"nodes": 1, "per_node": 2}, symbolic=("ex", "rebuild"),
...                assume=("ex < rebuild",))
>>> found = prove(bad, "ONE")
>>> found.verdict.value, found.trace.params["ex"] < found.trace.params["rebuild"]
('violated', True)
"""

from __future__ import annotations

import ast
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import z3

from herdproof.engines.result import Result, Verdict
from herdproof.models.core import Action, Invariant, ModelError, TransitionSystem
from herdproof.models.errors import HerdproofError, InvalidParameter, UnknownParameter
from herdproof.models.ops import eq, is_symbolic
from herdproof.models.params import ParamValue, show_value
from herdproof.models.registry import POLICIES, resolve
from herdproof.properties import Kind, Property, property_named
from herdproof.traces.replay import replay
from herdproof.traces.trace import Trace

ENGINE = "smt"
DEFAULT_MAX_K = 12
DEFAULT_BMC_DEPTH = 24


class EncodingError(ModelError):
    """The solver produced a run the concrete model does not accept: an encoding bug."""


class AssumptionError(HerdproofError):
    """An assumption that is not a linear (in)equality over the instance's parameters."""


# -- instances ---------------------------------------------------------------------------------

@dataclass
class Instance:
    """A model whose timing constants may be z3 variables, with the assumptions about them.

    Attributes
    ----------
    policy, params:
        The registry name and the resolved parameters (a symbolic one keeps its default here,
        unused; the model sees the z3 variable).
    symbols:
        The symbolic parameters, by name.
    assumptions:
        Constraints on the symbols: the parameters' own ranges and the user's assumptions.
    """

    policy: str
    params: dict[str, ParamValue]
    symbols: dict[str, Any]
    assumptions: list[Any]
    assumption_text: list[str]
    model: TransitionSystem[Any, Any]

    def concrete_params(self, solution: Any) -> dict[str, ParamValue]:
        """The parameters with each symbol replaced by its value in a z3 model."""
        values = dict(self.params)
        for name, symbol in self.symbols.items():
            values[name] = solution.eval(symbol, model_completion=True).as_long()
        return values

    def describe(self) -> str:
        fixed = " ".join(f"{k}={show_value(v)}" for k, v in self.params.items()
                         if k not in self.symbols)
        if not self.symbols:
            return f"{self.policy} {fixed}"
        return (f"{self.policy} {fixed} for all {', '.join(self.symbols)} with "
                f"{' and '.join(self.assumption_text) or 'their ranges'}")


def instance(name: str, overrides: Mapping[str, object] | None = None, *,
             symbolic: Iterable[str] = (), assume: Iterable[str] = ()) -> Instance:
    """Build the model for ``name`` with the listed timing parameters left symbolic.

    Raises :class:`~models.errors.UnknownParameter` or
    :class:`~models.errors.InvalidParameter` for a parameter that does not exist or cannot be
    symbolic, and :class:`AssumptionError` for an assumption that is not linear.
    """
    policy, params = resolve(name, overrides)
    spec = POLICIES[policy]
    by_name = {p.name: p for p in spec.params}
    symbols: dict[str, Any] = {}
    ranges: list[Any] = []
    for raw in symbolic:
        pname = raw.strip()
        if not pname:
            continue
        if pname not in by_name:
            raise UnknownParameter(f"{policy} has no parameter `{pname}` to make symbolic; its "
                                   f"parameters are: {', '.join(by_name)}")
        spec_param = by_name[pname]
        if not spec_param.timing:
            timing = ", ".join(p.name for p in spec.params if p.timing)
            raise InvalidParameter(f"parameter `{pname}` shapes the model and cannot be symbolic; "
                                   f"timing parameters that can: {timing}")
        if overrides and pname in overrides:
            raise InvalidParameter(f"parameter `{pname}` is both given a value and made symbolic;"
                                   " drop one of them")
        symbols[pname] = z3.Int(pname)
        if spec_param.minimum is not None:
            ranges.append(symbols[pname] >= spec_param.minimum)
    texts = [text.strip() for text in assume if text.strip()]
    parsed = [parse_assumption(text, params, symbols) for text in texts]
    model = spec.build({**params, **symbols}, policy)
    return Instance(policy, params, symbols, ranges + parsed, texts, model)


_COMPARE = {ast.Lt: "__lt__", ast.LtE: "__le__", ast.Gt: "__gt__", ast.GtE: "__ge__",
            ast.Eq: "__eq__", ast.NotEq: "__ne__"}


def parse_assumption(text: str, params: Mapping[str, ParamValue],
                     symbols: Mapping[str, Any]) -> Any:
    """A linear (in)equality such as ``ex >= rebuild + 1`` as a z3 constraint.

    Names are parameters: symbolic ones stand for their variable, the others for their value.
    Chains (``1 <= rebuild <= ex``) are allowed; products need a constant factor.
    """
    refuse = AssumptionError(f"assumption {text!r} is not a linear (in)equality over "
                             "parameters, e.g. \"ex >= rebuild\" or \"2*ex > rebuild + 1\"")
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        raise refuse from None
    if not isinstance(tree, ast.Compare) or not all(type(op) in _COMPARE for op in tree.ops):
        raise refuse

    def term(node: ast.expr) -> Any:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.Name):
            if node.id in symbols:
                return symbols[node.id]
            value = params.get(node.id)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise AssumptionError(f"assumption {text!r} names `{node.id}`, which is not an "
                                  "integer parameter of this policy")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -term(node.operand)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
            left, right = term(node.left), term(node.right)
            return left + right if isinstance(node.op, ast.Add) else left - right
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            left, right = term(node.left), term(node.right)
            if is_symbolic(left) and is_symbolic(right):
                raise refuse
            return left * right
        raise refuse

    sides = [term(tree.left), *(term(c) for c in tree.comparators)]
    parts = [getattr(sides[i], _COMPARE[type(op)])(sides[i + 1]) if is_symbolic(sides[i])
             else _flip(sides[i], op, sides[i + 1])
             for i, op in enumerate(tree.ops)]
    return z3.And(*[_as_bool(p) for p in parts])


def _flip(left: Any, op: ast.cmpop, right: Any) -> Any:
    """``left OP right`` when ``left`` is a plain int (z3 overloads only on its own terms)."""
    swapped = {ast.Lt: "__gt__", ast.LtE: "__ge__", ast.Gt: "__lt__", ast.GtE: "__le__",
               ast.Eq: "__eq__", ast.NotEq: "__ne__"}
    if is_symbolic(right):
        return getattr(right, swapped[type(op)])(left)
    return getattr(left, _COMPARE[type(op)])(right)


# -- symbolic states -----------------------------------------------------------------------------

def symbolic_state(template: Any, tag: str, path: str = "") -> Any:
    """A state shaped like ``template`` with a fresh z3 variable per leaf (``pc[1]@3``)."""
    # A leaf may already be a z3 term: an initial state that holds a symbolic parameter
    # (swr starts with the whole stale_while_revalidate window left).
    if isinstance(template, bool) or (z3.is_expr(template) and z3.is_bool(template)):
        return z3.Bool(f"{path}@{tag}")
    if isinstance(template, int) or (z3.is_expr(template) and z3.is_int(template)):
        return z3.Int(f"{path}@{tag}")
    if isinstance(template, tuple):
        return tuple(symbolic_state(v, tag, f"{path}[{i}]") for i, v in enumerate(template))
    if dataclasses.is_dataclass(template) and not isinstance(template, type):
        return dataclasses.replace(template, **{
            f.name: symbolic_state(getattr(template, f.name), tag,
                                   f"{path}.{f.name}" if path else f.name)
            for f in dataclasses.fields(template)})
    raise TypeError(f"cannot make a symbolic state from {template!r}")


def decode_state(template: Any, symbolic: Any, solution: Any) -> Any:
    """The concrete state a z3 model assigns to a symbolic one."""
    if isinstance(template, tuple):
        return tuple(decode_state(t, s, solution) for t, s in zip(template, symbolic, strict=True))
    if dataclasses.is_dataclass(template) and not isinstance(template, type):
        return dataclasses.replace(template, **{
            f.name: decode_state(getattr(template, f.name), getattr(symbolic, f.name), solution)
            for f in dataclasses.fields(template)})
    if not z3.is_expr(symbolic):
        return symbolic  # a leaf that is concrete in every state
    value = solution.eval(symbolic, model_completion=True)
    if isinstance(template, bool) or (z3.is_expr(template) and z3.is_bool(template)):
        return z3.is_true(value)
    return value.as_long()


def _solver() -> Any:
    """A solver for the encoding's logic: linear integer arithmetic, no quantifiers."""
    return z3.SolverFor("QF_LIA")


def _as_bool(value: Any) -> Any:
    return value if z3.is_expr(value) else z3.BoolVal(bool(value))


class Unrolling:
    """States ``s_0 .. s_k`` and the step relation between them, built lazily."""

    def __init__(self, inst: Instance, prefix: str = "") -> None:
        self.inst = inst
        self.model = inst.model
        self.template = self.model.initial_states()[0]
        self.actions: tuple[Action, ...] = self.model.candidate_actions()
        self.prefix = prefix
        self.states: list[Any] = []
        self.took: list[list[Any]] = []

    def state(self, i: int) -> Any:
        while len(self.states) <= i:
            self.states.append(symbolic_state(self.template, f"{self.prefix}{len(self.states)}"))
        return self.states[i]

    def initial(self) -> Any:
        s0 = self.state(0)
        return z3.Or(*[_as_bool(eq(s0, init)) for init in self.model.initial_states()])

    def domain(self, i: int) -> Any:
        return _as_bool(self.model.in_domain(self.state(i)))

    def step(self, i: int) -> Any:
        """``s_i -> s_{i+1}`` by exactly one enabled action."""
        source, target = self.state(i), self.state(i + 1)
        flags = [z3.Bool(f"took[{a!r}]@{self.prefix}{i}") for a in self.actions]
        while len(self.took) <= i:
            self.took.append([])
        self.took[i] = flags
        implications = [
            z3.Implies(flag, z3.And(_as_bool(self.model.enabled(source, action)),
                                    _as_bool(eq(target, self.model.apply(source, action)))))
            for action, flag in zip(self.actions, flags, strict=True)]
        return z3.And(z3.Or(*flags), z3.AtMost(*flags, 1), *implications)

    def holds(self, prop: Property, i: int) -> Any:
        return _as_bool(prop.predicate(self.model.observe(self.state(i))))

    def decode_actions(self, solution: Any, steps: int) -> tuple[Action, ...]:
        taken = []
        for i in range(steps):
            chosen = [a for a, flag in zip(self.actions, self.took[i], strict=True)
                      if z3.is_true(solution.eval(flag, model_completion=True))]
            taken.append(chosen[0])
        return tuple(taken)

    def decode_initial(self, solution: Any) -> int:
        start = decode_state(self.template, self.state(0), solution)
        # initial states may hold symbolic parameters: compare them as the solver chose them
        initials = [decode_state(self.template, s, solution) for s in self.model.initial_states()]
        return initials.index(start)


# -- bounded model checking ---------------------------------------------------------------------

@dataclass
class Bmc:
    """The outcome of a bounded search: a trace at the shortest depth, or none up to ``depth``."""

    found: bool
    depth: int
    trace: Trace | None
    seconds: float
    undecided: bool = False


def bmc(inst: Instance, prop: Property | str, max_depth: int = DEFAULT_BMC_DEPTH) -> Bmc:
    """Look for a violation (``ALWAYS``) or witness (``SOMETIMES``) of ``prop`` at depths
    0, 1, ..., ``max_depth``; the first depth found is the shortest one.

    The trace is replayed through the concrete model (with the parameter values the solver
    chose) before it is returned.
    """
    prop = property_named(prop) if isinstance(prop, str) else prop
    if prop.kind is Kind.EVENTUALLY:
        raise HerdproofError(f"{prop.name} is a progress property; the SMT engine checks "
                             "ALWAYS and SOMETIMES properties only")
    return _bmc(monitored(inst, prop), prop, max_depth)


def monitored(inst: Instance, prop: Property) -> Instance:
    """``inst`` with its model inside ``prop``'s monitor, if the property has one."""
    if prop.monitor is None:
        return inst
    return dataclasses.replace(inst, model=prop.prepare(inst.model))


def _bmc(inst: Instance, prop: Property, max_depth: int) -> Bmc:
    started = time.perf_counter()
    unrolling = Unrolling(inst)
    solver = _solver()
    solver.add(*inst.assumptions, unrolling.initial(), unrolling.domain(0))
    for depth in range(max_depth + 1):
        goal = unrolling.holds(prop, depth)
        solver.push()
        solver.add(goal if prop.kind is Kind.SOMETIMES else z3.Not(goal))
        answer = solver.check()
        if answer == z3.sat:
            trace = _trace(inst, unrolling, solver.model(), depth, prop)
            return Bmc(True, depth, trace, time.perf_counter() - started)
        solver.pop()
        if answer == z3.unknown:
            return Bmc(False, depth, None, time.perf_counter() - started, undecided=True)
        if depth < max_depth:
            solver.add(unrolling.step(depth), unrolling.domain(depth + 1))
    return Bmc(False, max_depth, None, time.perf_counter() - started)


def _trace(inst: Instance, unrolling: Unrolling, solution: Any, depth: int,
           prop: Property) -> Trace:
    chosen = {name: solution.eval(sym, model_completion=True).as_long()
              for name, sym in inst.symbols.items()}
    trace = Trace(inst.policy, inst.concrete_params(solution),
                  unrolling.decode_actions(solution, depth), property=prop.name, engine=ENGINE,
                  initial=unrolling.decode_initial(solution),
                  note=("solver chose " + ", ".join(f"{k}={v}" for k, v in chosen.items()))
                  if chosen else "",
                  extra={"chosen": chosen} if chosen else {})
    try:
        replayed = replay(trace)
    except HerdproofError as exc:
        raise EncodingError(f"the solver's trace does not replay: {exc}") from exc
    if replayed.violation != len(trace):
        raise EncodingError(f"the solver's trace replays but does not show {prop.name} at its "
                            f"last step: {trace.program()}")
    return trace


# -- induction ------------------------------------------------------------------------------------

@dataclass
class Proof:
    """The answer of :func:`prove`: ``holds`` by induction, ``violated`` with a replayed trace,
    or ``unknown`` with the reason (the counterexample to induction, classified)."""

    verdict: Verdict
    method: str
    k: int | None
    seconds: float
    obligations: list[str] = field(default_factory=list)
    invariants: list[str] = field(default_factory=list)
    trace: Trace | None = None
    detail: str = ""
    property: str = ""
    instance: str = ""

    def to_json(self) -> dict[str, Any]:
        from herdproof.traces.jsonio import trace_to_dict

        return {"verdict": self.verdict.value, "method": self.method, "k": self.k,
                "seconds": round(self.seconds, 4), "obligations": self.obligations,
                "invariants": self.invariants,
                "trace": trace_to_dict(self.trace) if self.trace is not None else None,
                "detail": self.detail, "property": self.property, "instance": self.instance}


def houdini(inst: Instance, candidates: Sequence[Invariant]) -> list[Invariant]:
    """The largest subset of ``candidates`` that holds initially and is inductive.

    Candidates false in an initial state, or not preserved by some step from states where all
    surviving candidates hold, are dropped until none is (Houdini). The survivors are proved
    invariants of the instance, for every value of its symbols under its assumptions.
    """
    unrolling = Unrolling(inst, prefix="h")
    base = _solver()
    base.add(*inst.assumptions, unrolling.initial(), unrolling.domain(0))
    alive = [c for c in candidates if _valid(base, z3.Not(_as_bool(c.holds(unrolling.state(0)))))]
    step = _solver()
    step.add(*inst.assumptions, unrolling.domain(0), unrolling.domain(1), unrolling.step(0))
    changed = True
    while changed:
        changed = False
        step.push()
        step.add(*[_as_bool(c.holds(unrolling.state(0))) for c in alive])
        for candidate in list(alive):
            if not _valid(step, z3.Not(_as_bool(candidate.holds(unrolling.state(1))))):
                alive.remove(candidate)
                changed = True
        step.pop()
    return alive


def _valid(solver: Any, negation: Any) -> bool:
    """True if ``negation`` is unsatisfiable together with what ``solver`` already holds."""
    solver.push()
    solver.add(negation)
    answer = solver.check()
    solver.pop()
    return bool(answer == z3.unsat)


def prove(inst: Instance, prop: Property | str, *, max_k: int = DEFAULT_MAX_K,
          bmc_depth: int | None = None) -> Proof:
    """Prove an ``ALWAYS`` property for every depth (and every value of the symbols).

    1. Houdini: the policy's candidate invariants, and the property itself, are filtered to the
       subset that is inductive. If the property survives, it holds by 1-induction; the
       obligations list "<action> preserves <claim>: ok" for every action and conjunct.
    2. Otherwise bounded model checking looks for a real violation (shortest first).
    3. Otherwise k-induction (k = 2 .. ``max_k``, states pairwise distinct) with the surviving
       invariants; if every k fails the verdict is ``unknown`` and the detail says whether the
       counterexample to induction starts in a reachable state (checked with the explicit
       engine on the concrete instance the solver chose).
    """
    prop = property_named(prop) if isinstance(prop, str) else prop
    started = time.perf_counter()
    if prop.kind is not Kind.ALWAYS:
        raise HerdproofError(f"{prop.name} is a {prop.kind.value} property; `prove` proves "
                             "ALWAYS properties (use `check --engine smt` for the others)")
    inst = monitored(inst, prop)
    if not prop.applies_to(inst.model.observe(inst.model.initial_states()[0])):
        raise HerdproofError(f"property {prop.name} does not apply to this configuration of "
                             f"{inst.policy} (it needs {', '.join(prop.requires)})")
    _check_assumptions(inst)
    goal = Invariant(prop.name, lambda s: prop.predicate(inst.model.observe(s)))
    survivors = houdini(inst, [goal, *inst.model.invariants()])
    names = [c.name for c in survivors if c is not goal]
    done = {"property": prop.name, "instance": inst.describe(), "invariants": names}
    if goal in survivors:
        claims = [prop.name, *names]
        obligations = [f"{a!r} preserves {c}: ok" for a in inst.model.candidate_actions()
                       for c in claims]
        obligations += [f"initial states satisfy {c}: ok" for c in claims]
        return Proof(Verdict.HOLDS, "induction", 1, time.perf_counter() - started, obligations,
                     trace=None, **done)  # type: ignore[arg-type]
    found = _bmc(inst, prop, bmc_depth if bmc_depth is not None else max_k)
    if found.found:
        return Proof(Verdict.VIOLATED, "bmc", found.depth, time.perf_counter() - started,
                     trace=found.trace, **done)  # type: ignore[arg-type]
    for k in range(2, min(max_k, found.depth + 1) + 1):
        outcome = _k_step(inst, goal, survivors, k)
        if outcome is None:
            claims = [prop.name, *names]
            obligations = [f"{a!r} preserves {c} after {k - 1} steps where it held: ok"
                           for a in inst.model.candidate_actions() for c in claims]
            return Proof(Verdict.HOLDS, "k-induction", k, time.perf_counter() - started,
                         obligations, **done)  # type: ignore[arg-type]
    cti = _k_step(inst, goal, survivors, max(2, min(max_k, found.depth + 1)))
    detail = (f"no violation up to depth {found.depth}, and induction up to k={max_k} did not "
              f"close; {_classify(inst, prop, cti)}")
    return Proof(Verdict.UNKNOWN, "k-induction", max_k, time.perf_counter() - started,
                 detail=detail, **done)  # type: ignore[arg-type]


def default_depth(inst: Instance) -> int:
    """A BMC bound long enough for the instance's timers to run out: the default plus the
    concrete timing constants (a race after a lock of ``ex`` ticks needs ``ex`` ticks)."""
    timing = [p.name for p in POLICIES[inst.policy].params if p.timing]
    return DEFAULT_BMC_DEPTH + sum(int(inst.params[name]) for name in timing
                                   if name not in inst.symbols)


def _k_step(inst: Instance, goal: Invariant, invariants: Sequence[Invariant],
            k: int) -> tuple[Any, dict[str, ParamValue]] | None:
    """The k-induction step: ``k`` distinct states satisfying the goal and the invariants,
    then one step to a state breaking the goal. ``None`` if impossible (the step is proved);
    else the first state of such a path, decoded, with the parameter values."""
    unrolling = Unrolling(inst, prefix="k")
    solver = _solver()
    solver.add(*inst.assumptions)
    for i in range(k + 1):
        solver.add(unrolling.domain(i))
        solver.add(*[_as_bool(c.holds(unrolling.state(i))) for c in invariants if c is not goal])
        if i < k:
            solver.add(_as_bool(goal.holds(unrolling.state(i))), unrolling.step(i))
    for i in range(k + 1):
        for j in range(i + 1, k + 1):
            solver.add(z3.Not(_as_bool(eq(unrolling.state(i), unrolling.state(j)))))
    solver.add(z3.Not(_as_bool(goal.holds(unrolling.state(k)))))
    if solver.check() != z3.sat:
        return None
    solution = solver.model()
    start = decode_state(unrolling.template, unrolling.state(0), solution)
    return start, inst.concrete_params(solution)


def _classify(inst: Instance, prop: Property, cti: tuple[Any, dict[str, ParamValue]] | None,
              limit: int = 200_000) -> str:
    if cti is None:
        return "the counterexample to induction vanished"
    from herdproof.engines.explicit import explore
    from herdproof.models.registry import build

    start, params = cti
    exploration = explore(prop.prepare(build(inst.policy, params)), max_states=limit)
    if start in exploration.graph:
        return ("the counterexample to induction starts in a reachable state: a violation "
                "deeper than the bound exists")
    if exploration.complete:
        return ("the counterexample to induction starts in an unreachable state: the policy's "
                "invariants need strengthening")
    return "the counterexample to induction could not be classified within the state limit"


def _check_assumptions(inst: Instance) -> None:
    solver = _solver()
    solver.add(*inst.assumptions)
    if solver.check() == z3.unsat:
        raise AssumptionError("the assumptions contradict each other or the parameters' ranges: "
                              "no value satisfies them all")


# -- checks, as the other engines answer them --------------------------------------------------

def check(inst: Instance, properties: Iterable[str | Property], *, max_k: int = DEFAULT_MAX_K,
          bmc_depth: int | None = None) -> list[Result]:
    """Verdicts in the shape every engine returns.

    ``ALWAYS``: :func:`prove` (induction, or a shortest BMC counterexample). ``SOMETIMES``: a
    BMC search for a witness up to ``bmc_depth`` (default ``DEFAULT_BMC_DEPTH``).
    ``EVENTUALLY``: ``unknown`` (progress is not encoded for the solver; the explicit engine
    decides it).
    """
    depth = bmc_depth if bmc_depth is not None else DEFAULT_BMC_DEPTH
    results = []
    for item in properties:
        prop = property_named(item) if isinstance(item, str) else item
        started = time.perf_counter()
        if prop.kind is Kind.ALWAYS:
            proof = prove(inst, prop, max_k=max_k, bmc_depth=depth)
            detail = proof.detail or (f"by {proof.method}, k={proof.k}"
                                      if proof.verdict is Verdict.HOLDS else "")
            results.append(Result(prop.name, ENGINE, proof.verdict, None,
                                  time.perf_counter() - started, proof.trace, detail))
        elif prop.kind is Kind.SOMETIMES:
            found = bmc(inst, prop, depth)
            verdict = Verdict.HOLDS if found.found else Verdict.UNKNOWN
            detail = "" if found.found else f"no witness up to depth {found.depth}"
            results.append(Result(prop.name, ENGINE, verdict, None,
                                  time.perf_counter() - started, found.trace, detail))
        else:
            results.append(Result(prop.name, ENGINE, Verdict.UNKNOWN, None, 0.0, None,
                                  "progress properties are not encoded for the solver; "
                                  "use the explicit engine"))
    return results


# -- synthesis ---------------------------------------------------------------------------------

@dataclass
class Synthesis:
    """The smallest safe value of a parameter (or offset of a relation), with its proof and a
    counterexample at the value just below."""

    param: str
    smallest_safe: int | None
    proof: Proof | None
    counterexample: Trace | None
    relation: str | None = None
    tried: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        from herdproof.traces.jsonio import trace_to_dict

        return {"param": self.param, "smallest_safe": self.smallest_safe,
                "relation": self.relation,
                "proof": self.proof.to_json() if self.proof is not None else None,
                "counterexample": trace_to_dict(self.counterexample)
                if self.counterexample is not None else None,
                "tried": [{"value": v, "verdict": verdict} for v, verdict in self.tried],
                "seconds": round(self.seconds, 4)}


def synthesise(name: str, overrides: Mapping[str, object] | None, param: str,
               prop: str, *, upper: int = 64, max_k: int = DEFAULT_MAX_K) -> Synthesis:
    """The smallest value of ``param`` (from its minimum up to ``upper``) for which ``prop``
    is proved, scanning upwards; the counterexample is the replayed trace at the value below.

    Examples
    --------
    >>> found = synthesise("lock-cad", {"nodes": 1, "per_node": 2, "rebuild": 5}, "ex", "ONE")
    >>> found.smallest_safe, found.counterexample.params["ex"]
    (5, 4)
    """
    started = time.perf_counter()
    policy, _ = resolve(name, overrides)
    spec = {p.name: p for p in POLICIES[policy].params}
    if param not in spec or spec[param].kind is not int:
        raise InvalidParameter(f"`{param}` is not an integer parameter of {policy}")
    lowest = spec[param].minimum or 0
    result = Synthesis(param, None, None, None)

    def at(value: int) -> Proof:
        candidate = instance(name, {**(overrides or {}), param: value})
        return prove(candidate, prop, max_k=max_k, bmc_depth=default_depth(candidate))

    safe, previous = _first_safe(range(lowest, upper + 1), at, result)
    if safe is not None:
        result.smallest_safe, result.counterexample = safe, previous
    result.seconds = time.perf_counter() - started
    return result


def synthesise_relation(name: str, overrides: Mapping[str, object] | None, param: str,
                        relative_to: str, prop: str, *, offsets: range = range(-4, 5),
                        max_k: int = DEFAULT_MAX_K) -> Synthesis:
    """The smallest offset ``c`` such that ``prop`` holds for every value with
    ``param >= relative_to + c`` (both symbolic), proved by induction, with a counterexample
    at ``param == relative_to + c - 1``; reported as a relation such as ``ex >= rebuild``.
    """
    started = time.perf_counter()
    symbols = (param, relative_to)
    result = Synthesis(param, None, None, None)

    def at(offset: int) -> Proof:
        bound = _relation(param, relative_to, offset)
        return prove(instance(name, overrides, symbolic=symbols, assume=(bound,)), prop,
                     max_k=max_k)

    safe, previous = _first_safe(offsets, at, result)
    if safe is not None:
        below = instance(name, overrides, symbolic=symbols,
                         assume=(_relation(param, relative_to, safe - 1, "=="),))
        found = bmc(below, prop, DEFAULT_BMC_DEPTH)
        result.smallest_safe, result.relation = safe, _relation(param, relative_to, safe)
        result.counterexample = found.trace if found.found else previous
    result.seconds = time.perf_counter() - started
    return result


def _first_safe(candidates: Iterable[int], prove_at: Callable[[int], Proof],
                result: Synthesis) -> tuple[int | None, Trace | None]:
    """Prove each candidate in order, recording every verdict in ``result.tried``, and stop at
    the first proof that is not a violation (kept in ``result.proof``). Returns the candidate
    that holds (``None`` if none did, or the solver could not decide) and the counterexample
    of the candidate just before it."""
    previous: Trace | None = None
    for value in candidates:
        proof = prove_at(value)
        result.tried.append((value, proof.verdict.value))
        if proof.verdict is not Verdict.VIOLATED:
            result.proof = proof
            return (value if proof.verdict is Verdict.HOLDS else None), previous
        previous = proof.trace
    return None, previous


def _relation(param: str, other: str, offset: int, op: str = ">=") -> str:
    if offset == 0:
        return f"{param} {op} {other}"
    return f"{param} {op} {other} {'+' if offset > 0 else '-'} {abs(offset)}"


