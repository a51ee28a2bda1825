"""SPIN as a generated backend: Promela from any registered model, compiled and run by SPIN.

There is no hand-written Promela. The model is encoded the way the Z3 engine encodes it
(:mod:`engines.smt`): a symbolic state has one z3 variable per leaf, and the model's own
``enabled`` / ``apply`` / ``observe``, written with :mod:`models.ops`, turn it into one guard
and one next-state term per leaf for every candidate action, with every parameter concrete.
Those terms are simplified by z3 and printed as Promela expressions (:func:`to_promela`: ``&&
|| !``, ``(c -> a : b)``, integer arithmetic and comparisons; anything else is refused with
:class:`~engines.smt.EncodingError`).

The Promela model is one process running one ``do`` loop; each action is one ``d_step {
guard -> assignments }`` option, so the only states SPIN stores are the loop head's, one per
reachable state of the model: SPIN's ``states, stored`` equals the explicit engine's count
(one process rather than one per request: every request's program counter is already a
variable, and the loop head is the only control location, so nothing is stored twice).
Assignments are simultaneous (ordered so that every old value is read before it is
overwritten; a cycle goes through a temporary that is reset, so it never tells states apart).
Leaves that no action changes are constants, not variables; every other integer gets the
narrowest Promela type the model's type invariant (``in_domain``) allows, proved by z3; an
assignment z3 cannot prove stays in that range is checked when it runs.

The properties are checked after every step that changes what they read (the initial states
are checked in Python): the first state breaking an ``ALWAYS`` property, or witnessing a
``SOMETIMES`` one, writes a trail, once per property. SPIN searches breadth-first
(``-DBFS``), so each trail is a shortest one, and the search goes on (``-c0 -e``) until the
state space is exhausted. Every trail is read back (``pan -S -r``: the ``printf`` in each
``d_step`` names its action), made a :class:`~traces.trace.Trace` and replayed through the
Python model before it is reported; a trail that does not replay is an
:class:`~engines.smt.EncodingError`. ``EVENTUALLY`` properties are not encoded (``unknown``:
the explicit engine decides them).

Symmetry (``symmetry=True``) is the policy's own, declared as data
(:class:`~models.symmetry.Symmetry`, the model's ``symmetry()``): the same canonical form is
generated as a C function (``herd_canon``: a compare-exchange sort of the requests within each
group, then of whole groups, renaming the lock owner and the flight leaders) that every
``d_step`` calls after its assignments, so SPIN stores one representative per class: the
explicit engine's ``--symmetry`` count. A trail of representatives is turned back into a run
from the real initial state before it is replayed.

Several cores (``cores`` > 1, ``--spin-cores``): pan's multi-core search (``-DNCORE``) is
depth-first (it refuses ``-DBFS``), so it stores the same states (the same count) but its
trails are not shortest. It is the fast way to establish ``holds``; when it finds a violation,
the property's group is searched again breadth-first on one core, and that shortest trail is
the one reported. pan's parallel breadth-first search (``-DBFS_PAR``) wrote trails that do not
end where the property fails when we tried it, so it is not offered.

Examples
--------
>>> from herdproof.models.registry import build
>>> model = build("lock-cad", {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3})
>>> [(r.verdict.value, r.states, len(r.trace) if r.trace else None)
...  for r in check(model, ["ONE", "NOFOREIGN"])]
[('violated', 58, 7), ('holds', 58, None)]
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import z3

from herdproof.engines.result import Result, Verdict
from herdproof.engines.smt import EncodingError, symbolic_state
from herdproof.models.core import Action, ModelError, TransitionSystem, successors
from herdproof.models.errors import HerdproofError
from herdproof.models.symmetry import Symmetry
from herdproof.properties import Kind, Property, property_named
from herdproof.traces.replay import replay
from herdproof.traces.trace import Trace

ENGINE = "spin"
INSTALL = "apt-get install spin gcc"
MAX_CORES = 64  # pan's -DNCORE: more than any machine this runs on
DEFAULT_MEMORY_MB = 8192  # pan's -DMEMLIM: it stops (unknown) rather than exhaust the machine
MAX_DEPTH = 10_000_000  # pan's -m: breadth-first levels; a model deeper than this is unknown
COMPILE = ("-DBFS", "-DSAFETY", "-DNOFAIR", "-DNOREDUCE")
REPLAY_ENV = "HERDPROOF_SPIN_REPLAY"


class SpinMissing(HerdproofError):
    """``spin`` or ``gcc`` is not installed (or not on ``PATH``)."""


class SymmetryUnsupported(HerdproofError):
    """``--symmetry`` on a model that does not declare its symmetry as data."""


class SpinFailed(HerdproofError):
    """``spin``, ``gcc`` or ``pan`` failed in a way herdproof cannot explain (the message
    quotes its output)."""


def require_tools() -> tuple[str, str]:
    """The paths of ``spin`` and ``gcc``; :class:`SpinMissing` naming the install command if
    either is missing."""
    spin, gcc = shutil.which("spin"), shutil.which("gcc")
    missing = [name for name, path in (("spin", spin), ("gcc", gcc)) if path is None]
    if spin is None or gcc is None:
        raise SpinMissing(f"--engine spin needs {' and '.join(missing)} on PATH: install with "
                          f"`{INSTALL}` (Debian/Ubuntu)")
    return spin, gcc


# -- z3 terms as Promela ---------------------------------------------------------------------

_INFIX = {z3.Z3_OP_LE: "<=", z3.Z3_OP_LT: "<", z3.Z3_OP_GE: ">=", z3.Z3_OP_GT: ">",
          z3.Z3_OP_EQ: "==", z3.Z3_OP_DISTINCT: "!=", z3.Z3_OP_XOR: "!=",
          z3.Z3_OP_SUB: "-"}
_NARY = {z3.Z3_OP_AND: "&&", z3.Z3_OP_OR: "||", z3.Z3_OP_ADD: "+", z3.Z3_OP_MUL: "*"}


def to_promela(term: Any, names: Mapping[str, str]) -> str:
    """A z3 term as a fully parenthesised Promela expression.

    ``names`` maps each z3 variable's name to its Promela variable. Booleans: ``And``, ``Or``,
    ``Not``, ``Implies``, ``Xor``, ``==``/``!=``; integers: numerals, ``+ - *``, unary minus,
    comparisons; ``If`` on either becomes ``(c -> a : b)``. Anything else (division, arrays,
    quantifiers, an unknown variable) raises :class:`~engines.smt.EncodingError`.

    Examples
    --------
    >>> x, y, b = z3.Int("x"), z3.Int("y"), z3.Bool("b")
    >>> to_promela(z3.If(z3.And(b, x >= 2), x - 1, -y), {"x": "x", "y": "y", "b": "b"})
    '((b && (x >= 2)) -> (x - 1) : (-(y)))'
    """
    memo: dict[int, str] = {}

    def show(t: Any) -> str:
        key = t.get_id()
        found = memo.get(key)
        if found is None:
            found = memo[key] = _show(t)
        return found

    def _show(t: Any) -> str:
        kind = t.decl().kind()
        args = t.children()
        if kind == z3.Z3_OP_TRUE:
            return "true"
        if kind == z3.Z3_OP_FALSE:
            return "false"
        if kind == z3.Z3_OP_ANUM:
            value = t.as_long()
            return f"({value})" if value < 0 else str(value)
        if kind == z3.Z3_OP_UNINTERPRETED and not args:
            name = t.decl().name()
            if name not in names:
                raise EncodingError(f"the Promela encoding met the variable `{name}`, which is "
                                    "no leaf of the state")
            return names[name]
        if kind == z3.Z3_OP_NOT:
            return f"!({show(args[0])})"
        if kind == z3.Z3_OP_UMINUS:
            return f"(-({show(args[0])}))"
        if kind == z3.Z3_OP_IMPLIES:
            return f"(!({show(args[0])}) || {show(args[1])})"
        if kind == z3.Z3_OP_ITE:
            return f"({show(args[0])} -> {show(args[1])} : {show(args[2])})"
        if kind in _NARY and args:
            return "(" + f" {_NARY[kind]} ".join(show(a) for a in args) + ")"
        if kind in _INFIX and len(args) == 2:
            return f"({show(args[0])} {_INFIX[kind]} {show(args[1])})"
        raise EncodingError(f"the Promela encoding has no counterpart for the z3 term "
                            f"`{_clip(str(t))}` (operator {t.decl().name()}): write the "
                            "policy with models.ops and integer arithmetic")

    return show(term)


def _clip(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


# -- the encoding ------------------------------------------------------------------------------

# Promela keywords and C keywords (pan.c holds the variables as C struct members).
_RESERVED = frozenset((
    "active", "assert", "atomic", "bit", "bool", "break", "byte", "c_code", "c_decl", "c_expr",
    "c_state", "c_track", "chan", "d_step", "D_proctype", "do", "else", "empty", "enabled",
    "eval", "false", "fi", "for", "full", "get_priority", "goto", "hidden", "if", "in", "init",
    "inline", "int", "len", "local", "ltl", "mtype", "nempty", "never", "nfull", "np_", "od",
    "of", "pc_value", "pid", "printf", "printm", "priority", "proctype", "provided", "run",
    "select", "set_priority", "short", "show", "skip", "timeout", "true", "typedef", "unless",
    "unsigned", "xr", "xs", "auto", "case", "char", "const", "continue", "default", "double",
    "enum", "extern", "float", "long", "register", "return", "signed", "sizeof", "static",
    "struct", "switch", "union", "void", "volatile", "while", "now",
))
# Promela integer types from the narrowest, with their ranges.
_TYPES = (("byte", 0, 255), ("short", -32768, 32767), ("int", -(2 ** 31), 2 ** 31 - 1))
_SIZES = {"bool": 1, "byte": 1, "short": 2, "int": 4}


@dataclass
class Leaf:
    """One integer or boolean of the state: its place (``lock.owner``), z3 variable, Promela
    name and type, and its value if it is a constant (no reachable step changes it)."""

    path: str
    var: Any
    name: str
    boolean: bool
    ptype: str = "int"
    constant: int | None = None


@dataclass
class Step:
    """One action as Promela: the guard, the range checks and the assignments, in order."""

    number: int
    action: Action
    guard: str
    checks: list[str]
    assignments: list[str]
    changed: set[int]
    temporaries: dict[str, int]


@dataclass
class Check:
    """A property as the Promela model checks it: ``fires`` is true in a state that breaks it
    (``ALWAYS``) or witnesses it (``SOMETIMES``); ``reads`` are the leaves it depends on."""

    prop: Property
    fires: str
    reads: set[int]
    never: bool = False  # the condition simplified to false: it cannot fire


@dataclass
class Encoding:
    """A model and properties as one Promela text (:attr:`promela`), with what is needed to
    read its trails back."""

    model: TransitionSystem[Any, Any]
    leaves: list[Leaf]
    steps: list[Step]
    checks: list[Check]
    initial: list[int]  # indices into model.initial_states(), one per distinct start state
    symmetry: Symmetry | None = None
    promela: str = ""
    seconds: float = 0.0

    @property
    def vector_bytes(self) -> int:
        """The bytes of the model's variables in SPIN's state vector (before its own
        bookkeeping and alignment)."""
        return sum(_SIZES[leaf.ptype] for leaf in self.leaves if leaf.constant is None)


def _flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """The leaves of a state (tuples and dataclasses, recursively) with their places."""
    if isinstance(value, tuple):
        for i, v in enumerate(value):
            yield from _flatten(v, f"{path}[{i}]")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _flatten(getattr(value, f.name), f"{path}.{f.name}" if path else f.name)
    else:
        yield path, value


def _term(value: Any) -> Any:
    """A leaf value as a z3 term: terms stay, bools and ints (enums too) become numerals."""
    if z3.is_expr(value):
        return value
    if isinstance(value, bool):
        return z3.BoolVal(value)
    if isinstance(value, int):
        return z3.IntVal(int(value))
    raise EncodingError(f"a state leaf {value!r} is neither an integer nor a boolean")


def _concrete(value: Any) -> int:
    if isinstance(value, bool | int):
        return int(value)
    raise EncodingError(f"an initial state holds {value!r}, not an integer or a boolean")


def _promela_name(path: str, taken: set[str]) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", path.replace("]", "")).strip("_") or "v"
    if name in _RESERVED or not name[0].isalpha() or name.startswith("herd_"):
        name = f"v_{name}"
    base, n = name, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def _reads(term: Any, index: Mapping[str, int]) -> set[int]:
    """The leaves a term reads."""
    found: set[int] = set()
    seen: set[int] = set()
    stack = [term]
    while stack:
        t = stack.pop()
        if t.get_id() in seen:
            continue
        seen.add(t.get_id())
        if z3.is_const(t) and t.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            leaf = index.get(t.decl().name())
            if leaf is not None:
                found.add(leaf)
        stack.extend(t.children())
    return found


def _classes(symmetry: Symmetry, leaves: list[Leaf]) -> list[tuple[list[int], bool]]:
    """The leaves a renaming of requests exchanges with each other (one field of every
    request; one group field of every group), and each leaf holding a request number; with
    whether their values are request numbers."""
    by_path = {leaf.path: i for i, leaf in enumerate(leaves)}

    def at(path: str) -> int:
        if path not in by_path:
            raise EncodingError(f"the symmetry names `{path}`, which is no integer or boolean "
                                "leaf of the state")
        return by_path[path]

    requests = range(symmetry.requests)
    return [*(([at(f"{f}[{r}]") for r in requests], False) for f in symmetry.fields),
            *(([at(f"{g}[{n}]") for n in range(len(symmetry.groups))], True)
              for g in symmetry.group_fields),
            *(([at(p)], True) for p in symmetry.owners)]


def encode(model: TransitionSystem[Any, Any], properties: Sequence[Property],
           symmetry: Symmetry | None = None) -> Encoding:
    """The Promela model of ``model`` checking ``properties`` (``ALWAYS`` and ``SOMETIMES``),
    reduced by ``symmetry`` if given (every state is sorted into its canonical form,
    :meth:`~models.symmetry.Symmetry.canonical`, after every step).

    Raises :class:`~engines.smt.EncodingError` if a guard, effect or property is not expressible
    in Promela.
    """
    started = time.perf_counter()
    initials = model.initial_states()
    template = initials[0]
    symbolic = symbolic_state(template, "")
    taken: set[str] = set()
    leaves = [Leaf(path, var, _promela_name(path, taken), z3.is_bool(var))
              for path, var in _flatten(symbolic)]
    index = {leaf.var.decl().name(): i for i, leaf in enumerate(leaves)}
    canon = symmetry.canonical if symmetry is not None else (lambda state: state)
    starts = [[_concrete(v) for _, v in _flatten(canon(s))] for s in initials]
    if any(len(s) != len(leaves) for s in starts):
        raise EncodingError("the initial states do not all have the same shape")
    classes = _classes(symmetry, leaves) if symmetry is not None else []

    actions = model.candidate_actions()
    guards, effects = [], []
    for action in actions:
        guards.append(_term(model.enabled(symbolic, action)))
        after = [_term(v) for _, v in _flatten(model.apply(symbolic, action))]
        if len(after) != len(leaves):
            raise EncodingError(f"{action!r} changes the shape of the state")
        effects.append({i: t for i, t in enumerate(after) if not t.eq(leaves[i].var)})
    domain = _term(model.in_domain(symbolic))

    # Constants: the greatest set of leaves, equal in every initial state, that no step whose
    # guard can hold (given the constants) moves off its initial value.
    # Under symmetry, leaves a renaming exchanges are constant together or not at all, and a
    # request number is never a constant (renaming changes it).
    constant = {i: starts[0][i] for i in range(len(leaves))
                if all(s[i] == starts[0][i] for s in starts)}
    for members, renamed in classes:
        if any(i not in constant or constant[i] != constant[members[0]]
               or (renamed and constant[i] >= 0) for i in members):
            for i in members:
                constant.pop(i, None)
    while True:
        pairs = [(leaves[i].var, _value(leaves[i], v)) for i, v in constant.items()]
        moved = set()
        for guard, effect in zip(guards, effects, strict=True):
            if z3.is_false(z3.simplify(z3.substitute(guard, *pairs) if pairs else guard)):
                continue
            for i, t in effect.items():
                if i in constant and not _is_value(z3.simplify(
                        z3.substitute(t, *pairs) if pairs else t), constant[i]):
                    moved.add(i)
        for members, _ in classes:
            if moved & set(members):
                moved |= {i for i in members if i in constant}
        if not moved:
            break
        for i in moved:
            del constant[i]
    for i, v in constant.items():
        leaves[i].constant = v
    pairs = [(leaves[i].var, _value(leaves[i], v)) for i, v in constant.items()]

    def fixed(t: Any) -> Any:
        return z3.simplify(z3.substitute(t, *pairs) if pairs else t)

    names = {leaf.var.decl().name(): leaf.name for leaf in leaves}
    solver = z3.SolverFor("QF_LIA")
    solver.add(fixed(domain))
    for leaf in leaves:
        if leaf.constant is None and not leaf.boolean:
            leaf.ptype = _narrowest(solver, leaf.var)
    for members, _ in classes:  # a renaming moves values between them: one type for all
        widest = max((leaves[i].ptype for i in members), key=[t for t, _, _ in _TYPES].index)
        for i in members:
            leaves[i].ptype = widest

    steps = []
    for number, (action, guard, effect) in enumerate(zip(actions, guards, effects,
                                                         strict=True)):
        simple = fixed(guard)
        if z3.is_false(simple):
            continue
        moves = {i: fixed(t) for i, t in effect.items() if leaves[i].constant is None}
        moves = {i: t for i, t in moves.items() if not t.eq(leaves[i].var)}
        steps.append(_step(number, action, simple, moves, leaves, index, names, solver))

    checks = []
    for prop in properties:
        predicate = _term(prop.predicate(model.observe(symbolic)))
        fires = fixed(predicate if prop.kind is Kind.SOMETIMES else z3.Not(predicate))
        checks.append(Check(prop, to_promela(fires, names), _reads(fires, index),
                            never=z3.is_false(fires)))

    distinct: dict[tuple[int, ...], int] = {}
    for i, s in enumerate(starts):
        distinct.setdefault(tuple(s), i)
    encoding = Encoding(model, leaves, steps, checks, list(distinct.values()), symmetry)
    encoding.promela = _write(encoding, starts)
    encoding.seconds = time.perf_counter() - started
    return encoding


def _value(leaf: Leaf, value: int) -> Any:
    return z3.BoolVal(bool(value)) if leaf.boolean else z3.IntVal(value)


def _is_value(term: Any, value: int) -> bool:
    if z3.is_true(term):
        return value == 1
    if z3.is_false(term):
        return value == 0
    return bool(z3.is_int_value(term) and term.as_long() == value)


def _narrowest(solver: Any, var: Any) -> str:
    """The narrowest Promela type the type invariant (asserted in ``solver``) keeps ``var``
    in."""
    for name, low, high in _TYPES[:-1]:
        solver.push()
        solver.add(z3.Or(var < low, var > high))
        outside = solver.check()
        solver.pop()
        if outside == z3.unsat:
            return name
    return "int"


def _step(number: int, action: Action, guard: Any, moves: dict[int, Any], leaves: list[Leaf],
          index: Mapping[str, int], names: dict[str, str], solver: Any) -> Step:
    """One action's ``d_step``: range checks on narrowed variables (unless z3 proves them
    from the type invariant and the guard), then the assignments in an order that reads every
    old value before overwriting it, through temporaries where the reads form a cycle."""
    checks = []
    solver.push()
    solver.add(guard)
    for i, t in moves.items():
        ptype = leaves[i].ptype
        if leaves[i].boolean or ptype == "int":
            continue
        low, high = next((lo, hi) for n, lo, hi in _TYPES if n == ptype)
        solver.push()
        solver.add(z3.Or(t < low, t > high))
        proved = solver.check() == z3.unsat
        solver.pop()
        if not proved:
            shown = to_promela(t, names)
            checks.append(f"({shown} < {low} || {shown} > {high})")
    solver.pop()

    pending = dict(moves)
    reads = {i: _reads(t, index) for i, t in pending.items()}
    assignments: list[str] = []
    temporaries: dict[str, int] = {}
    local = dict(names)
    while pending:
        ready = [i for i in pending if not any(i in reads[j] for j in pending if j != i)]
        if not ready:  # a cycle: keep the old value of one variable in a temporary
            i = next(iter(pending))
            ptype = "bool" if leaves[i].boolean else leaves[i].ptype
            temp = f"herd_{ptype}{sum(1 for t in temporaries if t.startswith(f'herd_{ptype}'))}"
            temporaries[temp] = _SIZES[ptype]
            twin = z3.Bool(temp) if leaves[i].boolean else z3.Int(temp)
            local[temp] = temp
            assignments.append(f"{temp} = {leaves[i].name}")
            for j in pending:
                if j != i and i in reads[j]:
                    pending[j] = z3.substitute(pending[j], (leaves[i].var, twin))
                    reads[j].discard(i)
            ready = [i]
        for i in ready:
            assignments.append(f"{leaves[i].name} = {to_promela(pending.pop(i), local)}")
    assignments += [f"{temp} = {'false' if temp.startswith('herd_bool') else 0}"
                    for temp in temporaries]
    return Step(number, action, to_promela(guard, names), checks, assignments, set(moves),
                temporaries)


def _write(encoding: Encoding, starts: list[list[int]]) -> str:
    """The Promela text."""
    model, leaves = encoding.model, encoding.leaves
    domain_check = len(encoding.checks)
    params = " ".join(f"{k}={v}" for k, v in model.params.items())
    out = [f"/* {model.name} {params}", " * generated by herdproof (engines/spin.py) from the "
           "model's own enabled/apply/observe; do not edit. */", "",
           "c_decl {",
           f"  int herd_fired[{domain_check + 1}];",
           "  int herd_hit;",
           "  int herd_replay = -1;",
           "  /* 1 the first time check k fires (never while a trail is replayed) */",
           "  int herd_fire(int k) {",
           f'    if (herd_replay < 0) herd_replay = getenv("{REPLAY_ENV}") != 0;',
           "    if (herd_replay || herd_fired[k]) return 0;",
           "    herd_fired[k] = 1;",
           "    return 1;",
           "  }",
           "}", ""]
    single = len(encoding.initial) == 1
    for leaf in leaves:
        if leaf.constant is not None:
            continue
        ptype = "bool" if leaf.boolean else leaf.ptype
        value = starts[encoding.initial[0]][leaves.index(leaf)] if single else 0
        shown = ("true" if value else "false") if leaf.boolean else str(value)
        out.append(f"{ptype} {leaf.name} = {shown};  /* {leaf.path} */")
    constants = [f"{leaf.path}={leaf.constant}" for leaf in leaves if leaf.constant is not None]
    if constants:
        out.append(f"/* constant in every reachable state: {', '.join(constants)} */")
    temporaries: dict[str, int] = {}
    for step in encoding.steps:
        temporaries.update(step.temporaries)
    for temp in sorted(temporaries):
        ptype = temp.removeprefix("herd_").rstrip("0123456789")
        out.append(f"{ptype} {temp};  /* a temporary: always reset to 0 */")
    if encoding.symmetry is not None:
        out += ["", *_canonical_c(encoding.symmetry, leaves)]
    out += ["", "active proctype herdproof() {"]
    if not single:
        out.append("  if")
        for n in encoding.initial:
            sets = "; ".join(f"{leaf.name} = {_literal(leaf, starts[n][i])}"
                             for i, leaf in enumerate(leaves) if leaf.constant is None)
            out.append(f'  :: d_step {{ {sets}; printf("I {n}\\n") }}')
        out.append("  fi;")
    out += ["end:", "  do"]
    for step in encoding.steps:
        out.append(f"  :: d_step {{ /* {step.action!r} */")
        out.append(f"       {step.guard} ->")
        for bound in step.checks:
            out.append(f"       if :: {bound} -> {_fire(domain_check)} :: else -> skip fi;")
        for assignment in step.assignments:
            out.append(f"       {assignment};")
        if encoding.symmetry is not None and step.changed:
            out.append("       c_code { herd_canon(); };")
        out.append(f'       printf("A {step.number}\\n");')
        for k, prop in enumerate(encoding.checks):
            if not prop.never and prop.reads & step.changed:
                out.append(f"       if :: {prop.fires} -> {_fire(k)} :: else -> skip fi;")
        out.append("       skip }")
    out += ["  od", "}", ""]
    return "\n".join(out)


def _canonical_c(symmetry: Symmetry, leaves: list[Leaf]) -> list[str]:
    """``herd_canon()``: the state sorted into :meth:`~models.symmetry.Symmetry.canonical`'s
    form, in C (one compare-exchange per adjacent pair, bubble-sort order: requests within
    each group, then whole groups). Leaves that are constants take no part: they are equal
    for every request."""
    by_path = {leaf.path: leaf for leaf in leaves}

    def var(path: str) -> str | None:
        leaf = by_path[path]
        return None if leaf.constant is not None else f"now.{leaf.name}"

    fields = symmetry.fields
    refs = [v for p in symmetry.owners if (v := var(p)) is not None]
    group_refs = {g: [var(f"{g}[{n}]") for n in range(len(symmetry.groups))]
                  for g in symmetry.group_fields}
    refs += [v for vs in group_refs.values() for v in vs if v is not None]

    def key(r: int, group: int) -> list[str]:
        parts = [v for f in fields if (v := var(f"{f}[{r}]")) is not None]
        parts += [f"({v} == {r})" for p in symmetry.owners if (v := var(p)) is not None]
        parts += [f"({vs[group]} == {r})" for vs in group_refs.values()
                  if vs[group] is not None]
        return parts

    def less(pairs: list[tuple[list[str], list[str]]]) -> list[str]:
        lines = []
        for mine, theirs in pairs:
            for a, b in zip(mine, theirs, strict=True):
                lines.append(f"  a = {a}; b = {b}; if (a != b) return a < b;")
        return lines

    def rename(mapping: dict[int, int]) -> list[str]:
        lines = []
        for v in refs:
            chain = " ".join(f"{v} == {old} ? {new} :" for old, new in mapping.items())
            lines.append(f"  {v} = {chain} {v};")
        return lines

    def swap(r: int, q: int) -> list[str]:
        return [f"  t = {a}; {a} = {b}; {b} = t;" for f in fields
                if (a := var(f"{f}[{r}]")) is not None and (b := var(f"{f}[{q}]")) is not None]

    out = ["c_code {", "  /* the canonical form of the state: see models/symmetry.py */"]
    body = []
    for g, members in enumerate(symmetry.groups):
        for i in range(len(members) - 1):
            r, q = members[i], members[i + 1]
            out += [f"  static int herd_less_{q}_{r}(void) {{", "  int a, b;",
                    *less([(key(q, g), key(r, g))]), "  return 0; }",
                    f"  static void herd_swap_{r}_{q}(void) {{", "  int t;", *swap(r, q),
                    *rename({r: q, q: r}), "  }"]
        for p in range(len(members) - 1):
            for i in range(len(members) - 1 - p):
                r, q = members[i], members[i + 1]
                body.append(f"  if (herd_less_{q}_{r}()) herd_swap_{r}_{q}();")
    if symmetry.swap_groups and len(symmetry.groups) > 1:
        groups = symmetry.groups
        for n in range(len(groups) - 1):
            first, second = groups[n], groups[n + 1]
            pairs = [(key(q, n + 1), key(r, n)) for r, q in zip(first, second, strict=True)]
            mapping = {**dict(zip(first, second, strict=True)),
                       **dict(zip(second, first, strict=True))}
            moved = [f"  t = {a}; {a} = {b}; {b} = t;" for vs in group_refs.values()
                     if (a := vs[n]) is not None and (b := vs[n + 1]) is not None]
            out += [f"  static int herd_group_less_{n + 1}_{n}(void) {{", "  int a, b;",
                    *less(pairs), "  return 0; }",
                    f"  static void herd_group_swap_{n}_{n + 1}(void) {{", "  int t;",
                    *(line for r, q in zip(first, second, strict=True) for line in swap(r, q)),
                    *moved, *rename(mapping), "  }"]
        for p in range(len(groups) - 1):
            for n in range(len(groups) - 1 - p):
                body.append(f"  if (herd_group_less_{n + 1}_{n}()) "
                            f"herd_group_swap_{n}_{n + 1}();")
    out += ["  void herd_canon(void) {", *body, "  }", "}"]
    return out


def _literal(leaf: Leaf, value: int) -> str:
    return ("true" if value else "false") if leaf.boolean else str(value)


def _fire(k: int) -> str:
    return (f"c_code {{ herd_hit = herd_fire({k}); }}; "
            "if :: c_expr { herd_hit } -> assert(false) :: else -> skip fi")


# -- running SPIN ------------------------------------------------------------------------------

@dataclass
class Run:
    """What one SPIN search found.

    Attributes
    ----------
    states:
        Reachable states of the model stored (SPIN's ``states, stored``, less the one state
        before the start state is chosen when there are several): the explicit engine's count.
    complete:
        False when the time, memory or depth limit stopped pan (``stop_reason``).
    trails:
        Each trail pan wrote, as (index into ``model.initial_states()``, actions).
    seconds:
        Wall clock of the whole run, encoding and compiling included; ``search_seconds`` is
        pan's own.
    memory_mb:
        pan's ``total actual memory usage``.
    directory:
        Where ``model.pml``, pan and the trails are (``None`` once a temporary one is gone).
    """

    states: int
    transitions: int
    complete: bool
    stop_reason: str
    trails: list[tuple[int, tuple[Action, ...]]]
    seconds: float
    search_seconds: float
    compile_seconds: float
    encode_seconds: float
    memory_mb: float
    vector_bytes: int
    depth: int
    output: str = ""
    directory: Path | None = None
    encoding: Encoding | None = field(default=None, repr=False)
    interrupted: bool = False  # Ctrl-C stopped it


def explore(model: TransitionSystem[Any, Any], properties: Sequence[Property] = (), *,
            symmetry: bool = False, max_seconds: float | None = None,
            deadline: float | None = None, memory_mb: int = DEFAULT_MEMORY_MB,
            optimise: bool = True, keep: Path | None = None, cores: int = 1) -> Run:
    """Encode ``model`` (with ``properties``), compile it with SPIN and search every
    reachable state breadth-first.

    Parameters
    ----------
    symmetry:
        Store one representative per symmetry class: the model's ``symmetry()``
        (:class:`~models.symmetry.Symmetry`) is generated as a sort run after every step.
        Trails are turned back into runs from a real initial state before they are returned.
    max_seconds:
        Stop pan (SIGINT, then SIGKILL) when the encoding, compilation and search together
        take this long: the run is then incomplete, with the states reached.
    deadline:
        A ``time.perf_counter()`` value to stop at instead of ``max_seconds`` from now (one
        limit shared by several searches; ``max_seconds`` still names it in messages).
    memory_mb:
        pan's memory bound (``-DMEMLIM``); reaching it leaves the run incomplete.
    optimise:
        Compile pan with ``-O2`` (a faster search; about 0.5 s more to compile) rather than
        ``-O0``.
    keep:
        A directory to write ``model.pml``, ``pan.c`` and the trails into (and keep); by
        default a temporary one, removed afterwards.
    cores:
        Search depth-first on this many cores (``-DNCORE``): the same states, trails that are
        not shortest.

    Examples
    --------
    >>> from herdproof.models.registry import build
    >>> model = build("stack", {"nodes": 2, "per_node": 2})
    >>> explore(model, optimise=False).states, explore(model, symmetry=True, optimise=False).states
    (3160, 476)
    """
    started = time.perf_counter()
    if deadline is None and max_seconds is not None:
        deadline = started + max_seconds
    limit = f"time limit {max_seconds:g}s" if max_seconds is not None else "time limit"
    spin, gcc = require_tools()
    encoding = encode(model, properties, symmetry_of(model) if symmetry else None)
    search = COMPILE if cores <= 1 else (*(o for o in COMPILE if o != "-DBFS"),
                                         f"-DNCORE={cores}")
    tools = [spin, gcc, "-O2" if optimise else "-O0", *search]
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        return _run(encoding, keep, tools, started, (deadline, limit), memory_mb)
    with tempfile.TemporaryDirectory(prefix="herdproof-spin-") as where:
        run = _run(encoding, Path(where), tools, started, (deadline, limit), memory_mb)
    run.directory = None  # removed with everything in it
    return run


def symmetry_of(model: TransitionSystem[Any, Any]) -> Symmetry:
    """The model's symmetry as data (its ``symmetry()``); :class:`SymmetryUnsupported` if it
    declares none."""
    declared = getattr(model, "symmetry", None)
    found = declared() if callable(declared) else None
    if not isinstance(found, Symmetry):
        raise SymmetryUnsupported(f"{model.name} does not declare its symmetry as data (a "
                                  "symmetry() method returning models.symmetry.Symmetry), so "
                                  "--engine spin cannot reduce by it; drop --symmetry or use "
                                  "--engine explicit")
    return found


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.perf_counter())


def _run(encoding: Encoding, where: Path, tools: list[str], started: float,
         stop: tuple[float | None, str], memory_mb: int) -> Run:
    spin, gcc = tools[0], tools[1:]
    deadline, limit = stop[0], f"{stop[1]} reached"
    for old in where.glob("model.pml*.trail"):  # a kept directory's earlier run
        old.unlink()
    (where / "model.pml").write_text(encoding.promela, encoding="utf-8")
    compiled = time.perf_counter()
    incomplete = Run(0, 0, False, f"{limit} while compiling", [],
                     0.0, 0.0, 0.0, encoding.seconds, 0.0, encoding.vector_bytes, 0,
                     directory=where, encoding=encoding)
    vector = max(1024, 2 * encoding.vector_bytes + 256)
    try:
        _tool([spin, "-a", "model.pml"], where, _left(deadline), "spin -a")
        _tool([*gcc, f"-DMEMLIM={memory_mb}", f"-DVECTORSZ={vector}", "-o", "pan", "pan.c"],
              where, _left(deadline), "gcc")
    except (subprocess.TimeoutExpired, KeyboardInterrupt) as stop:
        incomplete.seconds = time.perf_counter() - started
        if isinstance(stop, KeyboardInterrupt):
            incomplete.stop_reason, incomplete.interrupted = "interrupted while compiling", True
        return incomplete
    compile_seconds = time.perf_counter() - compiled
    output, stopped = _pan(["./pan", "-c0", "-e", "-n", f"-m{MAX_DEPTH}", "-w20"], where,
                           _left(deadline))
    stats = _statistics(output)
    complete, reason = True, ""
    if stopped:
        complete, reason = False, limit if stopped == "time" else "interrupted"
    elif "reached -DMEMLIM bound" in output or "out of memory" in output:
        complete, reason = False, f"memory limit {memory_mb} MB reached"
    elif "max search depth too small" in output:
        complete, reason = False, f"depth limit {MAX_DEPTH} reached"
    elif stats is None:
        raise SpinFailed(f"pan ended without its statistics: {_clip(output, 400)}")
    states, transitions, depth, seconds, memory = stats or (0, 0, 0, 0.0, 0.0)
    if len(encoding.initial) > 1 and states:
        states -= 1  # the state before the start state is chosen
    trails = [_read_trail(encoding, where, n)
              for n in range(1, len(list(where.glob("model.pml*.trail"))) + 1)]
    if encoding.symmetry is not None:
        trails = [_concretise(encoding, *trail) for trail in trails]
    return Run(states, transitions, complete, reason, trails, time.perf_counter() - started,
               seconds, compile_seconds, encoding.seconds, memory, encoding.vector_bytes,
               depth, output, where, encoding, interrupted=stopped == "interrupted")


def _tool(command: list[str], where: Path, timeout: float | None, name: str) -> None:
    done = subprocess.run(command, cwd=where, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if done.returncode != 0:
        raise SpinFailed(f"{name} failed (exit {done.returncode}): "
                         f"{_clip(done.stdout + done.stderr, 600)}")


def _pan(command: list[str], where: Path, timeout: float | None) -> tuple[str, str]:
    """pan's output, and what stopped it early: ``"time"`` (the limit), ``"interrupted"``
    (Ctrl-C) or ``""``. pan is stopped with SIGINT, on which it prints what it reached, and
    killed if it does not exit within 10 seconds."""
    process = subprocess.Popen(command, cwd=where, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        return output, ""
    except subprocess.TimeoutExpired:
        why = "time"
    except KeyboardInterrupt:  # the terminal's SIGINT reached pan too
        why = "interrupted"
    process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output, why


_STORED = re.compile(r"^\s*([0-9.e+]+) states, stored", re.MULTILINE)
_TRANSITIONS = re.compile(r"^\s*([0-9.e+]+) transitions", re.MULTILINE)
_VECTOR = re.compile(r"State-vector (\d+) byte, depth reached (\d+)")
_MEMORY = re.compile(r"^\s*([0-9.]+)\s+total actual memory usage", re.MULTILINE)
_ELAPSED = re.compile(r"pan: elapsed time ([0-9.e+]+) seconds")
_PROGRESS = re.compile(r"Depth=\s*(\d+) States=\s*([0-9.e+]+)")


def _statistics(output: str) -> tuple[int, int, int, float, float] | None:
    stored = _STORED.search(output)
    if stored is None:
        progress = _PROGRESS.findall(output)
        if not progress:
            return None
        depth, states = progress[-1]
        return int(float(states)), 0, int(depth), 0.0, 0.0
    transitions = _TRANSITIONS.search(output)
    vector = _VECTOR.search(output)
    memory = _MEMORY.search(output)
    elapsed = _ELAPSED.search(output)
    return (int(float(stored.group(1))),
            int(float(transitions.group(1))) if transitions else 0,
            int(vector.group(2)) if vector else 0,
            float(elapsed.group(1)) if elapsed else 0.0,
            float(memory.group(1)) if memory else 0.0)


_STEP = re.compile(r"^([AI]) (\d+)$", re.MULTILINE)


def _read_trail(encoding: Encoding, where: Path, n: int) -> tuple[int, tuple[Action, ...]]:
    """Trail ``n`` as (initial state, actions): pan replays it (``-S``: only the ``printf``
    naming each step), with the checks switched off so that it runs to its end."""
    done = subprocess.run(["./pan", "-S", f"-r{n}"], cwd=where, capture_output=True, text=True,
                          check=False, env={**os.environ, REPLAY_ENV: "1"}, timeout=600)
    steps = {step.number: step.action for step in encoding.steps}
    initial, actions = encoding.initial[0], []
    for kind, number in _STEP.findall(done.stdout):
        if kind == "I":
            initial = int(number)
        elif int(number) in steps:
            actions.append(steps[int(number)])
        else:
            raise EncodingError(f"SPIN's trail {n} names step {number}, which the encoding "
                                "does not have")
    return initial, tuple(actions)


def _concretise(encoding: Encoding, initial: int,
                actions: tuple[Action, ...]) -> tuple[int, tuple[Action, ...]]:
    """A trail of representatives (each step taken from the canonical form of the state
    before it) as a run from the real initial state: at every step, the action that leads to
    a state of the same class as SPIN's next one."""
    model, symmetry = encoding.model, encoding.symmetry
    assert symmetry is not None
    state = model.initial_states()[initial]
    shown = symmetry.canonical(state)
    taken = []
    for number, action in enumerate(actions, start=1):
        if model.enabled(shown, action) is not True:
            raise EncodingError(f"step {number} of a SPIN trail, {action!r}, is not enabled in "
                                "the canonical state it was taken from")
        shown = symmetry.canonical(model.apply(shown, action))
        found = next(((a, s) for a, s in successors(model, state)
                      if symmetry.canonical(s) == shown), None)
        if found is None:
            raise EncodingError(f"step {number} of a SPIN trail leads to a state no step of the "
                                "real run reaches (the symmetry does not hold)")
        taken.append(found[0])
        state = found[1]
    return initial, tuple(taken)


# -- checks, as the other engines answer them ------------------------------------------------

def check(model: TransitionSystem[Any, Any], properties: Iterable[str | Property], *,
          max_seconds: float | None = None, symmetry: bool = False,
          memory_mb: int = DEFAULT_MEMORY_MB, optimise: bool = True,
          keep: Path | None = None, cores: int = 1) -> list[Result]:
    """Verdicts for ``properties`` on ``model``, in the shape every engine returns.

    ``ALWAYS`` and ``SOMETIMES`` properties are decided by one SPIN search (one per property
    with a monitor, such as ``SERVED<=B``, on its own product model); each trace is a shortest
    one and has been replayed through the Python model. ``EVENTUALLY`` properties are
    ``unknown`` (use the explicit engine). ``max_seconds`` bounds the whole call; what a limit
    left open is ``unknown``, with the states reached. ``symmetry`` reduces by the model's
    declared symmetry (:func:`symmetry_of`); a property's monitor has none (its product is
    searched whole, as the explicit engine does). ``optimise=False`` compiles faster and
    searches slower (small models). ``keep`` keeps the Promela, pan and its trails there.
    ``cores`` > 1 searches depth-first on that many cores, and a group with a violation again
    breadth-first on one, for the shortest trace.
    """
    if not isinstance(cores, int) or not 1 <= cores <= MAX_CORES:
        raise HerdproofError(f"spin cores must be a whole number from 1 to {MAX_CORES}, "
                             f"got {cores!r}")
    if symmetry:
        symmetry_of(model)  # refuse before any work
    props = [property_named(p) if isinstance(p, str) else p for p in properties]
    deadline = time.perf_counter() + max_seconds if max_seconds is not None else None
    groups: dict[int, list[int]] = {}
    results: dict[int, Result] = {}
    for i, prop in enumerate(props):
        if prop.kind is Kind.EVENTUALLY:
            results[i] = Result(prop.name, ENGINE, Verdict.UNKNOWN, None, 0.0, None,
                                "progress properties are not encoded for SPIN; use the "
                                "explicit engine")
        else:
            groups.setdefault(i if prop.monitors(model) else -1, []).append(i)
    for key, members in groups.items():
        if any(r.interrupted for r in results.values()):  # Ctrl-C: start no further search
            results.update({i: Result(props[i].name, ENGINE, Verdict.UNKNOWN, None, 0.0, None,
                                      "not checked: interrupted", interrupted=True)
                            for i in members})
            continue
        checked = props[key].prepare(model) if key >= 0 else model
        where = keep if keep is None or key < 0 else keep / re.sub(r"\W", "_", props[key].name)
        options = {"symmetry": symmetry and key < 0, "max_seconds": max_seconds,
                   "deadline": deadline,
                   "memory_mb": memory_mb, "optimise": optimise, "keep": where,
                   "cores": cores}
        found = _check_group(model, checked, [props[i] for i in members], options)
        results.update(zip(members, found, strict=True))
    return [results[i] for i in range(len(props))]


def _check_group(base: TransitionSystem[Any, Any], model: TransitionSystem[Any, Any],
                 props: list[Property], options: dict[str, Any]) -> list[Result]:
    started = time.perf_counter()
    first = model.observe(model.initial_states()[0])
    for prop in props:
        if not prop.applies_to(first):
            raise HerdproofError(f"property {prop.name} does not apply to this configuration "
                                 f"of {base.name} ({prop.needs()})")
    traces: dict[int, Trace] = {}
    for k, prop in enumerate(props):  # a start state that already decides a property
        for n, state in enumerate(model.initial_states()):
            if bool(prop.predicate(model.observe(state))) == (prop.kind is Kind.SOMETIMES):
                traces[k] = _trace(base, prop, n, ())
                break
    if options.get("cores", 1) > 1:
        try:
            run = explore(model, props, **options)
            again = bool(run.trails)  # depth-first trails: not the shortest
        except (SpinFailed, EncodingError):
            again = True  # pan's cores stop at the first violation, without statistics
        if again:
            run = explore(model, props, **{**options, "cores": 1})
    else:
        run = explore(model, props, **options)
    for initial, actions in run.trails:
        placed = _place(base, model, props, initial, actions, traces)
        if not placed:
            raise EncodingError(f"a SPIN trail ({len(actions)} steps) is not where any "
                                "property it checks first fails: "
                                f"{_clip(repr(list(actions)), 300)}")
    seconds = time.perf_counter() - started
    horizon = int(base.params.get("horizon", 0) or 0)
    reached = f"{run.stop_reason} after {run.states:,} states ({run.seconds:.1f}s)"
    results = []
    for k, prop in enumerate(props):
        want = prop.kind is Kind.SOMETIMES
        trace = traces.get(k)
        if trace is not None:
            verdict = Verdict.HOLDS if want else Verdict.VIOLATED
            detail = ""
        elif not run.complete:
            verdict, detail = Verdict.UNKNOWN, reached + ", before the search finished"
        elif want and horizon:
            verdict, detail = Verdict.UNKNOWN, (f"no witness within the bound: runs are cut at "
                                                f"horizon={horizon} ticks")
        elif want:
            verdict, detail = Verdict.VIOLATED, "no reachable state satisfies it"
        else:
            verdict = Verdict.HOLDS
            detail = (f"runs are cut at horizon={horizon} ticks; a larger horizon could change "
                      "the answer") if horizon else ""
        results.append(Result(prop.name, ENGINE, verdict, run.states, seconds, trace, detail,
                              interrupted=run.interrupted))
    return results


def _trace(base: TransitionSystem[Any, Any], prop: Property, initial: int,
           actions: tuple[Action, ...]) -> Trace:
    return Trace(base.name, dict(base.params), actions, property=prop.name, engine=ENGINE,
                 initial=initial, note="witness" if prop.kind is Kind.SOMETIMES else "")


def _place(base: TransitionSystem[Any, Any], model: TransitionSystem[Any, Any],
           props: list[Property], initial: int, actions: tuple[Action, ...],
           traces: dict[int, Trace]) -> bool:
    """Give a trail to every property it is a first violation (or witness) of, checked by
    replaying it through the Python model (several properties can first fail at the same
    step, each with its own trail); False if it is one of none."""
    placed = False
    for k, prop in enumerate(props):
        trace = _trace(base, prop, initial, actions)
        try:
            replayed = replay(trace, model)
        except ModelError:
            raise
        except HerdproofError as exc:
            raise EncodingError(f"a SPIN trail does not replay: {exc}") from exc
        if replayed.violation == len(actions):
            placed = True
            if k not in traces or len(traces[k]) > len(actions):
                traces[k] = trace
    return placed
