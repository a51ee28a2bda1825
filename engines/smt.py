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
import contextvars
import dataclasses
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import z3

from herdproof.engines.interrupt import sigint_handled_by
from herdproof.engines.result import Result, Verdict
from herdproof.models.core import Action, Invariant, ModelError, TransitionSystem
from herdproof.models.errors import HerdproofError, InvalidParameter, UnknownParameter
from herdproof.models.ops import eq, is_symbolic
from herdproof.models.params import Param, ParamValue, clipped, show_value
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
        from herdproof.models.program import recorded

        fixed = " ".join(f"{k}={show_value(v)}" for k, v in recorded(self.params).items()
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
            raise UnknownParameter(f"{policy} has no parameter `{clipped(pname)}` to make "
                                   f"symbolic; its parameters are: {', '.join(by_name)}")
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
    _check_assumption_text(text)
    refuse = AssumptionError(f"assumption {text!r} is not a linear (in)equality over "
                             "parameters, e.g. \"ex >= rebuild\" or \"2*ex > rebuild + 1\"")
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise refuse from None
    if _depth(tree) > MAX_ASSUMPTION_DEPTH:
        raise AssumptionError(f"assumption {clipped(text)!r} is nested too deeply (more than "
                              f"{MAX_ASSUMPTION_DEPTH} levels of signs, brackets and operators)")
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


# What an assumption may be written with: ASCII names and decimal digits, spaces, + - * and
# comparisons, brackets. Anything else (full-width letters, which Python would fold into ASCII
# names; `1_0`; hex) is refused before parsing, as is a text too long or too deeply nested.
MAX_ASSUMPTION_LENGTH = 200
MAX_ASSUMPTION_DEPTH = 32
_ASSUMPTION_CHARS = re.compile(r"[A-Za-z0-9_ +\-*<>=!()]*", re.ASCII)
_ASSUMPTION_WORD = re.compile(r"[A-Za-z0-9_]+", re.ASCII)
_NAME_OR_NUMBER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]{1,18}", re.ASCII)


def _check_assumption_text(text: str) -> None:
    if len(text) > MAX_ASSUMPTION_LENGTH:
        raise AssumptionError(f"assumption {clipped(text)!r} is too long ({len(text):,} "
                              f"characters; at most {MAX_ASSUMPTION_LENGTH})")
    if not _ASSUMPTION_CHARS.fullmatch(text):
        bad = next(c for c in text if not _ASSUMPTION_CHARS.fullmatch(c))
        raise AssumptionError(f"assumption {text!r} contains {bad!r}: write it with ASCII "
                              "parameter names, digits 0-9, spaces, + - *, comparisons and "
                              "brackets, e.g. \"ex >= rebuild + 1\"")
    for word in _ASSUMPTION_WORD.findall(text):
        if not _NAME_OR_NUMBER.fullmatch(word):
            raise AssumptionError(f"assumption {text!r} contains `{word}`, which is neither a "
                                  "parameter name nor a plain decimal number (digits 0-9, at "
                                  "most 18)")


def _depth(tree: ast.AST) -> int:
    """How deeply ``tree`` nests (counted without recursion, so any depth is safe)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
    return deepest


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


# -- limits ------------------------------------------------------------------------------------

class OutOfTime(Exception):
    """A time limit of :func:`limits` ran out; :func:`prove` and :func:`check` turn it into
    ``unknown`` with what was reached."""


@dataclass
class Limits:
    """The time budget in force (see :func:`limits`) and how far the current proof got."""

    deadline: float | None = None  # a time.perf_counter() value
    query_seconds: float | None = None
    name: str = "time limit"
    reached: str = "setting up"
    ctrl_c: list[bool] = field(default_factory=list)  # Ctrl-C noted, not yet raised


_LIMITS: contextvars.ContextVar[Limits] = contextvars.ContextVar("herdproof_smt_limits")


def _current() -> Limits:
    bound = _LIMITS.get(None)
    if bound is None:
        bound = Limits()
        _LIMITS.set(bound)
    return bound


@contextmanager
def limits(max_seconds: float | None = None,
           query_seconds: float | None = None) -> Iterator[Limits]:
    """Bound every solver query made inside: each gets at most ``query_seconds`` and all of
    them together (with the Python work of building the encoding) ``max_seconds``. Nested
    limits keep the tighter bound. A query or the whole search that runs out raises
    :class:`OutOfTime`, which :func:`prove` and :func:`check` report as ``unknown``.

    Ctrl-C during a query (z3 answers ``unknown``, "interrupted from keyboard") is raised as
    ``KeyboardInterrupt``, as anywhere else."""
    outer = _current()
    now = time.perf_counter()
    deadline, name = outer.deadline, outer.name
    if max_seconds is not None and (deadline is None or now + max_seconds < deadline):
        deadline, name = now + max_seconds, f"time limit {max_seconds:g}s"
    queries = [q for q in (outer.query_seconds, query_seconds) if q is not None]
    token = _LIMITS.set(Limits(deadline, min(queries) if queries else None, name,
                               ctrl_c=outer.ctrl_c))
    try:
        with _ctrl_c_at_safe_points(_LIMITS.get().ctrl_c):
            yield _LIMITS.get()
    finally:
        _LIMITS.reset(token)


@contextmanager
def _ctrl_c_at_safe_points(pending: list[bool]) -> Iterator[None]:
    """Ctrl-C inside is noted and raised as ``KeyboardInterrupt`` at the next :func:`_spend` or
    solver query, never in the middle of building a z3 term (a half-built one complains from
    its ``__del__`` with a traceback on stderr). A second Ctrl-C raises at once. Only where
    Python's own handler is in force, in the main thread (an outer ``limits()`` already
    defers it)."""
    def note(signum: int, frame: Any) -> None:
        if pending:
            raise KeyboardInterrupt
        pending.append(True)

    with sigint_handled_by(note) as installed:
        try:
            yield
        finally:
            if installed and pending:
                pending.clear()
                raise KeyboardInterrupt


def _spend(reached: str) -> None:
    """Note how far the search got, and stop it if its time is up or Ctrl-C was pressed."""
    bound = _current()
    bound.reached = reached
    if bound.ctrl_c:
        bound.ctrl_c.clear()
        raise KeyboardInterrupt
    if bound.deadline is not None and time.perf_counter() > bound.deadline:
        raise OutOfTime(f"{bound.name} reached")


def _check(solver: Any) -> Any:
    """``solver.check()`` within the limits in force."""
    bound = _current()
    timeout = bound.query_seconds
    if bound.deadline is not None:
        left = bound.deadline - time.perf_counter()
        if left <= 0:
            raise OutOfTime(f"{bound.name} reached")
        timeout = left if timeout is None else min(timeout, left)
    if timeout is not None:
        solver.set("timeout", max(1, int(timeout * 1000)))
    answer = solver.check()
    if bound.ctrl_c:
        bound.ctrl_c.clear()
        raise KeyboardInterrupt
    if answer == z3.unknown:
        reason = solver.reason_unknown()
        # z3 takes Ctrl-C itself and answers unknown; with no timeout set, nothing else
        # cancels a query
        if "interrupted" in reason or (timeout is None and "canceled" in reason):
            raise KeyboardInterrupt
        if "timeout" in reason or "canceled" in reason:
            if bound.query_seconds is None or (
                    bound.deadline is not None
                    and time.perf_counter() >= bound.deadline - 0.05):
                raise OutOfTime(f"{bound.name} reached")
            raise OutOfTime(f"solver timeout {bound.query_seconds:g}s reached on one query")
    return answer


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
        implications = []
        for n, (action, flag) in enumerate(zip(self.actions, flags, strict=True)):
            _spend(f"encoding step {i} (action {n + 1} of {len(self.actions)})")
            implications.append(z3.Implies(flag, z3.And(
                _as_bool(self.model.enabled(source, action)),
                _as_bool(eq(target, self.model.apply(source, action))))))
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
    if not prop.monitors(inst.model):
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
        _spend(f"bounded model checking at depth {depth} (none up to depth {depth - 1})"
               if depth else "bounded model checking at depth 0")
        answer = _check(solver)
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
    interrupted: bool = False  # Ctrl-C stopped it (``unknown``, the detail says where)

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
    _spend("Houdini (filtering the candidate invariants)")
    answer = _check(solver)
    solver.pop()
    return bool(answer == z3.unsat)


def prove(inst: Instance, prop: Property | str, *, max_k: int = DEFAULT_MAX_K,
          bmc_depth: int | None = None, max_seconds: float | None = None,
          query_seconds: float | None = None) -> Proof:
    """Prove an ``ALWAYS`` property for every depth (and every value of the symbols).

    1. Houdini: the policy's candidate invariants, and the property itself, are filtered to the
       subset that is inductive. If the property survives, it holds by 1-induction; the
       obligations list "<action> preserves <claim>: ok" for every action and conjunct.
    2. Otherwise bounded model checking looks for a real violation (shortest first).
    3. Otherwise k-induction (k = 2 .. ``max_k``, states pairwise distinct) with the surviving
       invariants; if every k fails the verdict is ``unknown`` and the detail says whether the
       counterexample to induction starts in a reachable state (checked with the explicit
       engine on the concrete instance the solver chose).

    ``max_seconds`` bounds the whole proof and ``query_seconds`` each solver query (see
    :func:`limits`); running out, or Ctrl-C, gives ``unknown`` with the step reached in the
    detail (and ``interrupted`` set for Ctrl-C).
    """
    prop = property_named(prop) if isinstance(prop, str) else prop
    started = time.perf_counter()
    with limits(max_seconds, query_seconds) as bound:
        try:
            return _prove(inst, prop, max_k, bmc_depth, started)
        except (OutOfTime, KeyboardInterrupt) as stop:
            seconds = time.perf_counter() - started
            interrupted = isinstance(stop, KeyboardInterrupt)
            why = "interrupted" if interrupted else str(stop)
            return Proof(Verdict.UNKNOWN, "stopped", None, seconds,
                         detail=f"{why} during {bound.reached} ({seconds:.1f}s)",
                         property=prop.name, instance=inst.describe(),
                         interrupted=interrupted)


def _prove(inst: Instance, prop: Property, max_k: int, bmc_depth: int | None,
           started: float) -> Proof:
    if prop.kind is not Kind.ALWAYS:
        kind = prop.kind.value.upper()
        raise HerdproofError(f"{prop.name} is {'an' if kind[0] in 'AEIOU' else 'a'} {kind} "
                             "property; `prove` proves ALWAYS properties only (use `check "
                             "--engine smt` for the others)")
    inst = monitored(inst, prop)
    if not prop.applies_to(inst.model.observe(inst.model.initial_states()[0])):
        raise HerdproofError(f"property {prop.name} does not apply to this configuration of "
                             f"{inst.policy} ({prop.needs()})")
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
    _spend(f"k-induction at k={k}")
    if _check(solver) != z3.sat:  # unsat: the step is proved (a limit raises OutOfTime)
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
    _spend("classifying the counterexample to induction")
    exploration = explore(prop.prepare(build(inst.policy, params)), max_states=limit,
                          deadline=_current().deadline)
    if exploration.interrupted:
        raise KeyboardInterrupt
    if start in exploration.index:
        return ("the counterexample to induction starts in a reachable state: a violation "
                "deeper than the bound exists")
    if exploration.complete:
        return ("the counterexample to induction starts in an unreachable state: the policy's "
                "invariants need strengthening")
    return ("the counterexample to induction could not be classified within the state or "
            "time limit")


def _check_assumptions(inst: Instance) -> None:
    solver = _solver()
    solver.add(*inst.assumptions)
    _spend("checking the assumptions")
    if _check(solver) == z3.unsat:
        raise AssumptionError("the assumptions contradict each other or the parameters' ranges: "
                              "no value satisfies them all")


# -- checks, as the other engines answer them --------------------------------------------------

def check(inst: Instance, properties: Iterable[str | Property], *, max_k: int = DEFAULT_MAX_K,
          bmc_depth: int | None = None, max_seconds: float | None = None,
          query_seconds: float | None = None) -> list[Result]:
    """Verdicts in the shape every engine returns.

    ``ALWAYS``: :func:`prove` (induction, or a shortest BMC counterexample). ``SOMETIMES``: a
    BMC search for a witness up to ``bmc_depth`` (default ``DEFAULT_BMC_DEPTH``).
    ``EVENTUALLY``: ``unknown`` (progress is not encoded for the solver; the explicit engine
    decides it). ``max_seconds`` bounds the whole call and ``query_seconds`` each solver query
    (:func:`limits`); a property a limit or Ctrl-C left open is ``unknown``, the detail says
    where the search was.
    """
    depth = bmc_depth if bmc_depth is not None else DEFAULT_BMC_DEPTH
    results: list[Result] = []
    with limits(max_seconds, query_seconds) as bound:
        for item in properties:
            prop = property_named(item) if isinstance(item, str) else item
            results.append(_check_one(inst, prop, max_k, depth, bound,
                                      stopped=bool(results) and results[-1].interrupted))
    return results


def _check_one(inst: Instance, prop: Property, max_k: int, depth: int, bound: Limits,
               stopped: bool) -> Result:
    started = time.perf_counter()
    if stopped:  # Ctrl-C: start no further search
        return Result(prop.name, ENGINE, Verdict.UNKNOWN, None, 0.0, None,
                      "not checked: interrupted", interrupted=True)
    if prop.kind is Kind.ALWAYS:
        proof = prove(inst, prop, max_k=max_k, bmc_depth=depth)
        detail = proof.detail or (f"by {proof.method}, k={proof.k}"
                                  if proof.verdict is Verdict.HOLDS else "")
        return Result(prop.name, ENGINE, proof.verdict, None, time.perf_counter() - started,
                      proof.trace, detail, interrupted=proof.interrupted)
    if prop.kind is Kind.SOMETIMES:
        try:
            found = bmc(inst, prop, depth)
        except (OutOfTime, KeyboardInterrupt) as stop:
            seconds = time.perf_counter() - started
            interrupted = isinstance(stop, KeyboardInterrupt)
            why = "interrupted" if interrupted else str(stop)
            return Result(prop.name, ENGINE, Verdict.UNKNOWN, None, seconds, None,
                          f"{why} during {bound.reached} ({seconds:.1f}s)",
                          interrupted=interrupted)
        verdict = Verdict.HOLDS if found.found else Verdict.UNKNOWN
        detail = "" if found.found else f"no witness up to depth {found.depth}"
        return Result(prop.name, ENGINE, verdict, None, time.perf_counter() - started,
                      found.trace, detail)
    return Result(prop.name, ENGINE, Verdict.UNKNOWN, None, 0.0, None,
                  "progress properties are not encoded for the solver; use the explicit "
                  "engine")


# -- synthesis ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    """How synthesis decided one candidate: the proof (or counterexample, or ``unknown``) and
    the candidates ``low`` .. ``high`` that one answer covered."""

    proof: Proof
    low: int
    high: int


@dataclass
class Synthesis:
    """Every candidate value of ``param`` from ``searched[0]`` to ``searched[1]`` (or, with
    ``relative_to``, every offset ``c`` in ``param == relative_to + c``), each decided: proved
    safe, or unsafe with a replayed counterexample, or ``unknown``. Safety need not grow with
    the parameter; nothing here assumes it does.

    Attributes
    ----------
    smallest_safe:
        By value: the smallest value proved safe (``None`` if none was). By relation: the
        smallest offset ``c`` with ``param >= relative_to + c`` proved safe for every value
        (``relation``), which is also the start of the last run of safe offsets.
    safe_from:
        The smallest candidate from which every candidate up to the top of the range is safe;
        ``smallest_safe`` when safety is monotone.
    proof:
        The proof at ``smallest_safe`` (by relation: of the relation).
    counterexample:
        The replayed trace at the candidate just below ``smallest_safe``, if it is unsafe.
    counterexample_above:
        When safety is not monotone: the trace at the first unsafe candidate above a safe one.
    decisions:
        Every candidate's answer; one proof over a range of values is shared by all of them.
    queries:
        The proofs attempted (one proof may cover a whole range of candidates).
    """

    param: str
    smallest_safe: int | None
    proof: Proof | None
    counterexample: Trace | None
    relation: str | None = None
    relative_to: str | None = None
    searched: tuple[int, int] = (0, -1)
    decisions: dict[int, Decision] = field(default_factory=dict)
    counterexample_above: Trace | None = None
    queries: int = 0
    seconds: float = 0.0

    def _having(self, verdict: Verdict) -> list[int]:
        return sorted(v for v, d in self.decisions.items() if d.proof.verdict is verdict)

    @property
    def safe(self) -> list[int]:
        return self._having(Verdict.HOLDS)

    @property
    def unsafe(self) -> list[int]:
        return self._having(Verdict.VIOLATED)

    @property
    def unknown(self) -> list[int]:
        return self._having(Verdict.UNKNOWN)

    @property
    def tried(self) -> list[tuple[int, str]]:
        """``(candidate, verdict)`` for every candidate, in order."""
        return [(v, self.decisions[v].proof.verdict.value) for v in sorted(self.decisions)]

    @property
    def broken(self) -> tuple[int, int] | None:
        """``(safe, unsafe)``: the first unsafe candidate above a safe one, and the largest safe
        candidate below it; ``None`` if safety is monotone on the decided candidates."""
        safe = self.safe
        above = [u for u in self.unsafe if safe and u > safe[0]]
        if not above:
            return None
        return max(s for s in safe if s < above[0]), above[0]

    @property
    def monotone(self) -> bool:
        return self.broken is None

    @property
    def safe_from(self) -> int | None:
        start = None
        for value in range(self.searched[1], self.searched[0] - 1, -1):
            decision = self.decisions.get(value)
            if decision is None or decision.proof.verdict is not Verdict.HOLDS:
                break
            start = value
        return start

    @property
    def settled(self) -> bool:
        """``smallest_safe`` is certain: every candidate below it was shown unsafe (by relation:
        the offset just below it, or it is the lowest searched)."""
        if self.smallest_safe is None:
            return False
        below = range(self.searched[0], self.smallest_safe)
        if self.relation is not None:
            below = below[-1:]
        return all(self.decisions[v].proof.verdict is Verdict.VIOLATED for v in below)

    @property
    def interrupted(self) -> bool:
        return any(d.proof.interrupted for d in self.decisions.values()) or \
            (self.proof is not None and self.proof.interrupted)

    def to_json(self) -> dict[str, Any]:
        from herdproof.traces.jsonio import trace_to_dict

        def trace(found: Trace | None) -> dict[str, Any] | None:
            return trace_to_dict(found) if found is not None else None

        return {"param": self.param, "relative_to": self.relative_to,
                "smallest_safe": self.smallest_safe, "relation": self.relation,
                "safe_from": self.safe_from, "monotone": self.monotone, "settled": self.settled,
                "searched": list(self.searched),
                "safe": [list(s) for s in spans(self.safe)],
                "unsafe": [list(s) for s in spans(self.unsafe)],
                "unknown": [list(s) for s in spans(self.unknown)],
                "proof": self.proof.to_json() if self.proof is not None else None,
                "counterexample": trace(self.counterexample),
                "counterexample_above": trace(self.counterexample_above),
                "tried": [{"value": v, "verdict": d.proof.verdict.value,
                           "method": d.proof.method, "k": d.proof.k,
                           "steps": len(d.proof.trace) if d.proof.trace is not None else None,
                           "covered": [d.low, d.high]}
                          for v, d in sorted(self.decisions.items())],
                "queries": self.queries, "seconds": round(self.seconds, 4)}


def spans(values: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted integers as runs of consecutive ones: ``[1, 2, 4]`` -> ``[(1, 2), (4, 4)]``."""
    runs: list[tuple[int, int]] = []
    for value in sorted(values):
        if runs and runs[-1][1] == value - 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def synthesise(name: str, overrides: Mapping[str, object] | None, param: str,
               prop: str, *, upper: int = 64, max_k: int = DEFAULT_MAX_K) -> Synthesis:
    """Decide ``prop`` at every value of the timing parameter ``param`` from its minimum up to
    ``upper``, and report the smallest safe value, the set of safe values and whether safety
    is monotone there (a lock that expires sooner can be safer: nothing is assumed).

    A range of values is first tried as one proof with ``param`` symbolic; a counterexample
    decides the value it shows and splits the range around it, an ``unknown`` halves it, down
    to single values proved at their concrete value. So a safe tail costs one proof, and every
    value still gets a proof or a replayed counterexample of its own.

    Examples
    --------
    >>> found = synthesise("lock-cad", {"nodes": 1, "per_node": 2, "rebuild": 5}, "ex", "ONE")
    >>> found.smallest_safe, found.counterexample.params["ex"], found.monotone
    (5, 4, True)
    """
    started = time.perf_counter()
    policy, _ = resolve(name, overrides)
    lowest = _searchable(policy, overrides, param, "--param").minimum or 0
    wanted = _always_property(prop)
    if upper < lowest:
        raise InvalidParameter(f"--upper {upper} is below the smallest value of {param} "
                               f"({lowest}): nothing to search")
    result = Synthesis(param, None, None, None, searched=(lowest, upper))

    def decide(low: int, high: int) -> Proof:
        if low == high:
            concrete = instance(name, {**(overrides or {}), param: low})
            return _prove_deeper(concrete, wanted, max_k, default_depth(concrete))
        return _prove_deeper(instance(name, overrides, symbolic=(param,),
                                      assume=(f"{param} >= {low}", f"{param} <= {high}")),
                             wanted, max_k)

    _scan(result, decide, lambda trace: int(trace.params[param]))
    safe = result.safe
    if safe:
        result.smallest_safe = safe[0]
        result.proof = result.decisions[safe[0]].proof
        result.counterexample = _trace_at(result, safe[0] - 1)
    broken = result.broken
    if broken is not None:
        result.counterexample_above = _trace_at(result, broken[1])
    result.seconds = time.perf_counter() - started
    return result


def synthesise_relation(name: str, overrides: Mapping[str, object] | None, param: str,
                        relative_to: str, prop: str, *, offsets: range = range(-4, 5),
                        max_k: int = DEFAULT_MAX_K) -> Synthesis:
    """The smallest offset ``c`` such that ``prop`` holds for every value with
    ``param >= relative_to + c`` (both symbolic), reported as a relation such as
    ``ex >= rebuild``.

    Every offset in ``offsets`` is decided on its own first (``param == relative_to + c`` for
    all values of ``relative_to``, ranges of offsets tried as one proof as in
    :func:`synthesise`), so safe offsets below an unsafe one are reported rather than
    assumed away; then the relation from the start of the last run of safe offsets is proved
    for every value, beyond the offsets searched too. The counterexample is the one at the
    offset just below.
    """
    started = time.perf_counter()
    policy, _ = resolve(name, overrides)
    _searchable(policy, overrides, param, "--param")
    if relative_to == param:
        others = ", ".join(p.name for p in POLICIES[policy].params if p.timing and p.name != param)
        raise InvalidParameter(f"--relative-to names `{param}`, the parameter being searched; "
                               f"compare it with another timing parameter: {others}")
    _searchable(policy, overrides, relative_to, "--relative-to")
    wanted = _always_property(prop)
    symbols = (param, relative_to)
    result = Synthesis(param, None, None, None, relative_to=relative_to,
                       searched=(offsets[0], offsets[-1]))

    def decide(low: int, high: int) -> Proof:
        bounds: tuple[str, ...]
        if low == high:
            bounds = (_relation(param, relative_to, low, "=="),)
        else:
            bounds = (_relation(param, relative_to, low, ">="),
                      _relation(param, relative_to, high, "<="))
        return _prove_deeper(instance(name, overrides, symbolic=symbols, assume=bounds), wanted,
                             max_k)

    _scan(result, decide, lambda trace: int(trace.params[param]) - int(trace.params[relative_to]))
    start = result.safe_from
    stopped = any(d.proof.method == "stopped" for d in result.decisions.values())
    if start is not None and not stopped:  # after a limit or Ctrl-C, report what was decided
        relation = _relation(param, relative_to, start)
        result.proof = _prove_deeper(instance(name, overrides, symbolic=symbols,
                                              assume=(relation,)), wanted, max_k)
        result.queries += 1
        if result.proof.verdict is Verdict.HOLDS:
            result.smallest_safe, result.relation = start, relation
            result.counterexample = _trace_at(result, start - 1)
    broken = result.broken
    if broken is not None:
        result.counterexample_above = _trace_at(result, broken[1])
    result.seconds = time.perf_counter() - started
    return result


def _searchable(policy: str, overrides: Mapping[str, object] | None, name: str,
                option: str) -> Param:
    """The parameter ``name`` if synthesis can search it: a timing parameter of ``policy`` that
    ``overrides`` does not fix. ``option`` says where it was named, for the message."""
    params = POLICIES[policy].params
    timing = ", ".join(p.name for p in params if p.timing)
    found = next((p for p in params if p.name == name), None)
    if found is None:
        raise UnknownParameter(f"{policy} has no parameter `{clipped(name)}` ({option}); "
                               f"synth searches its timing parameters: {timing}")
    if not found.timing:
        raise InvalidParameter(f"{option} {name}: synth searches timing parameters only "
                               f"({timing}); `{name}` shapes the model, set it with -p")
    if overrides and name in overrides:
        raise InvalidParameter(f"`{name}` is searched by synth ({option} {name}), so it cannot "
                               f"also be fixed with -p {name}=...; drop one of them")
    return found


def _always_property(name: str) -> Property:
    prop = property_named(name)
    if prop.kind is not Kind.ALWAYS:
        kind = prop.kind.value.upper()
        raise HerdproofError(f"{prop.name} is {'an' if kind[0] in 'AEIOU' else 'a'} {kind} "
                             "property; synth looks for the values at which an ALWAYS property "
                             "(e.g. ONE, NOFOREIGN) is proved")
    return prop


def _prove_deeper(inst: Instance, prop: Property, max_k: int,
                  deeper: int | None = None) -> Proof:
    """:func:`prove` with bounded model checking to ``max_k`` (cheap, and deep enough for
    k-induction up to ``max_k``); if that leaves the answer ``unknown``, again with BMC to
    ``deeper`` if given (for a concrete value, :func:`default_depth`: long enough for its
    timers to run out, so a deeper counterexample is found)."""
    proof = prove(inst, prop, max_k=max_k, bmc_depth=max_k)
    if deeper is None or deeper <= max_k or proof.verdict is not Verdict.UNKNOWN or \
            proof.method == "stopped":
        return proof
    return prove(inst, prop, max_k=max_k, bmc_depth=deeper)


def _scan(result: Synthesis, decide: Callable[[int, int], Proof],
          value_of: Callable[[Trace], int]) -> None:
    """Decide every candidate in ``result.searched`` into ``result.decisions``.

    ``decide(low, high)`` proves the property for all candidates ``low`` .. ``high`` at once. A
    proof decides them all; a counterexample decides the candidate it shows (``value_of``,
    for which it is also a shortest one) and the rest of the range is split around it; an
    ``unknown`` range is halved until single candidates remain. A limit or Ctrl-C (a proof
    ``stopped``) leaves the candidates not yet decided ``unknown`` and ends the scan.
    """
    pending = [result.searched]
    while pending:
        low, high = pending.pop()
        proof = decide(low, high)
        result.queries += 1
        if proof.method == "stopped":
            for first, last in [(low, high), *pending]:
                result.decisions.update({v: Decision(proof, first, last)
                                         for v in range(first, last + 1)})
            return
        if proof.verdict is Verdict.HOLDS or low == high:
            result.decisions.update({v: Decision(proof, low, high) for v in range(low, high + 1)})
            continue
        if proof.verdict is Verdict.VIOLATED and proof.trace is not None:
            shown = value_of(proof.trace)
            if not low <= shown <= high:
                raise EncodingError(f"a counterexample for {result.param} in {low}..{high} "
                                    f"was found at {shown}")
            result.decisions[shown] = Decision(proof, shown, shown)
            parts = [(low, shown - 1), (shown + 1, high)]
        else:
            middle = (low + high) // 2
            parts = [(low, middle), (middle + 1, high)]
        pending.extend(part for part in reversed(parts) if part[0] <= part[1])


def _trace_at(result: Synthesis, value: int) -> Trace | None:
    decision = result.decisions.get(value)
    return decision.proof.trace if decision is not None else None


def _relation(param: str, other: str, offset: int, op: str = ">=") -> str:
    if offset == 0:
        return f"{param} {op} {other}"
    return f"{param} {op} {other} {'+' if offset > 0 else '-'} {abs(offset)}"
