"""A request program compiled into a quantified encoding: one proof for every fleet size.

The fixed-size Z3 encoding (:mod:`engines.smt`) has one variable per request. Here the number
of requests is not fixed: requests are the elements of an uninterpreted sort ``Req`` and nodes of
a sort ``Node``, with ``node_of : Req -> Node``. Every per-request field of the state (``pc``,
``timer``, ...) is one uninterpreted function from ``Req``, a per-node field one from ``Node``,
and the shared stores (the lock, the cache) stay ordinary terms. A leaf
that holds a request's number (the lock's owner, a node's single-flight leader) holds an element
of ``Req``; ``-1`` ("nobody") is a distinguished element ``nobody`` that is no request. Which
fields are which is read from the policy's own :class:`~models.symmetry.Symmetry` declaration.

Each step of the program becomes "some request ``r`` does this": the step's guard and effect,
the very functions the other engines run, are called with ``r`` a z3 constant of sort ``Req``
on a state whose per-request tuples are :class:`ArrayView` s, so ``s.pc[r]`` applies the function
and ``set_at`` / ``update_where`` (in :mod:`models.ops`) rewrite it. What the layer computes by
looping over every request becomes a quantified statement instead: the clock may tick when no
request holds it (``forall r``), a tick moves every timer at once (a rewrite), and a
count over the requests (``rebuilding``) becomes a :class:`Count`, which compares with a number
by quantifying (``rebuilding <= 1``: no two different requests both rebuild).

A policy's code that cannot be read this way (it names a request by its number, loops over the
requests itself, or computes with the fleet's size) raises :class:`Unsupported` naming the step
and the field, never a traceback.

Examples
--------
>>> program = compile_program("lock-cad", {}, symbolic=("ex", "rebuild"))
>>> [type(a).__name__ for a in program.actions][:4]
['Tick', 'Hit', 'Miss', 'WinLock']
>>> sorted(program.layout.per_request)
['held', 'pc', 'seen', 'timer', 'token']
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import z3

from herdproof.engines import smt
from herdproof.models.candidates import Candidate, each_request, whole
from herdproof.models.core import Action
from herdproof.models.errors import HerdproofError, InvalidParameter
from herdproof.models.observation import Observation
from herdproof.models.ops import Bool, Int, all_of, any_of, ite, maximum, negate
from herdproof.models.params import ParamValue
from herdproof.models.program import ProgramModel, evolve
from herdproof.models.registry import POLICIES, build, resolve
from herdproof.models.symmetry import Symmetry


class Unsupported(HerdproofError):
    """The policy's code cannot be read for every size (the message says which step, which
    field and why)."""


# -- the sorts ------------------------------------------------------------------------------------

class World:
    """The sorts of requests and nodes, ``nobody``, ``node_of``, and fresh names."""

    def __init__(self, with_nodes: bool) -> None:
        self.req = z3.DeclareSort("Req")
        self.nobody = z3.Const("nobody", self.req)
        self.node = z3.DeclareSort("Node") if with_nodes else None
        self.node_of = z3.Function("node_of", self.req, self.node) if self.node is not None \
            else None
        self._names = itertools.count()
        # every fleet has a request (nodes, per_node, requests >= 1); an existential candidate
        # ("some request is rebuilding") relies on it
        someone = self.fresh("someone", self.req)
        self.axioms = (z3.Exists([someone], someone != self.nobody),)

    def fresh(self, prefix: str, sort: Any) -> Any:
        """A constant of ``sort`` with a name used nowhere else (bound variables and the
        request an action picks must never capture one another)."""
        return z3.Const(f"{prefix}!{next(self._names)}", sort)

    def as_request(self, value: Any, what: str = "a request") -> Any:
        """``value`` as a ``Req`` term: a :class:`Who`, a ``Req`` term, or -1 (nobody). A
        request's own number cannot be read for every size, nor another special value."""
        if isinstance(value, Who):
            return value.term
        if z3.is_expr(value) and value.sort() == self.req:
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value == -1:
            return self.nobody  # the models' "nobody" (NOBODY, NO_OWNER, NO_LEADER)
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise Unsupported(f"it uses {value} where {what} is expected: a special value "
                              "other than nobody (-1), which a proof for every size cannot "
                              "tell from nobody")
        if isinstance(value, int) and not isinstance(value, bool):
            raise Unsupported(f"it names request {value} by its number, and a proof for every "
                              "size knows no request by number")
        raise Unsupported(f"it uses {shown(value)} where {what} is expected")

    def requests(self, count: int, prefix: str = "q") -> list[Any]:
        return [self.fresh(prefix, self.req) for _ in range(count)]

    def real(self, *requests: Any) -> Any:
        """The requests are requests (not ``nobody``) and pairwise different."""
        out = [r != self.nobody for r in requests]
        out += [a != b for a, b in itertools.combinations(requests, 2)]
        return z3.And(*out) if out else z3.BoolVal(True)

    def for_all(self, count: int, body: Callable[..., Any]) -> Any:
        """``forall r1 .. r_count`` (different requests): ``body(Who(r1), ..)``."""
        variables = self.requests(count)
        inner = as_bool(body(*(Who(self, v) for v in variables)))
        return z3.ForAll(variables, z3.Implies(self.real(*variables), inner))

    def exists(self, body: Callable[[Any], Any]) -> Any:
        """``exists r`` (a request, not ``nobody``): ``body(Who(r))``."""
        r = self.fresh("q", self.req)
        return z3.Exists([r], z3.And(r != self.nobody, as_bool(body(Who(self, r)))))

    def for_all_nodes(self, body: Callable[[Any], Any]) -> Any:
        if self.node is None:
            raise Unsupported("it quantifies over nodes, and this policy has none")
        n = self.fresh("n", self.node)
        return z3.ForAll([n], as_bool(body(n)))


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def as_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return z3.BoolVal(value)
    if z3.is_expr(value) and z3.is_bool(value):
        return value
    raise Unsupported(f"it gives {shown(value)} where a condition is expected")


class Who:
    """A request, or nobody, as a ``Req`` term that compares with ``==`` and ``!=`` against
    other requests and against ``-1`` (the models' "nobody")."""

    __slots__ = ("term", "world")

    def __init__(self, world: World, term: Any) -> None:
        self.world = world
        self.term = term

    def __eq__(self, other: object) -> Any:
        return self.term == self.world.as_request(other)

    def __ne__(self, other: object) -> Any:
        return self.term != self.world.as_request(other)

    __hash__ = object.__hash__

    def _order(self, other: object) -> Any:
        raise Unsupported("it compares request numbers by size, which no proof for every size "
                          "can read (requests are only equal or different)")

    __lt__ = __le__ = __gt__ = __ge__ = _order

    def __index__(self) -> int:
        raise Unsupported("it uses a request as a position in a tuple")

    def symbolic_ite(self, condition: Any, then: Any, otherwise: Any) -> Who:
        return Who(self.world, z3.If(condition, self.world.as_request(then),
                                     self.world.as_request(otherwise)))

    def __repr__(self) -> str:
        return f"Who({self.term})"


# -- per-request and per-node values ------------------------------------------------------------

@dataclass(frozen=True)
class Members:
    """The requests of one node (what ``cfg.requests_of(node)`` stands for)."""

    node: Any

    def __iter__(self) -> Iterator[Any]:
        raise Unsupported("it loops over the requests of a node one by one; write the update "
                          "with models.ops.update_where, which updates them all at once")


class ArrayView:
    """A per-request (or per-node) field as one function over the sort, indexed like the
    tuple it replaces. A state's own field is an uninterpreted function (``pc@0 : Req ->
    Int``); a step's effect rewrites it into a term over that function (``set_at`` reads as
    ``lambda q: If(q == r, v, pc@0(q))``), so every query stays in uninterpreted functions and
    linear arithmetic, where z3's quantifier instantiation is at home (arrays are not)."""

    def __init__(self, world: World, read: Callable[[Any], Any], over: str, holds: str) -> None:
        self.world, self.read, self.over, self.holds = world, read, over, holds

    @classmethod
    def function(cls, world: World, name: str, over: str, holds: str) -> ArrayView:
        domain = world.req if over == "request" else world.node
        f = z3.Function(name, domain, world.req if holds == "who" else _sort(holds))
        return cls(world, f, over, holds)

    @classmethod
    def constant(cls, world: World, value: Any, over: str, holds: str) -> ArrayView:
        term = world.as_request(value) if holds == "who" else \
            z3.BoolVal(value) if holds == "bool" else z3.IntVal(value)
        return cls(world, lambda _: term, over, holds)

    def _index(self, index: Any) -> Any:
        if self.over == "request":
            return self.world.as_request(index, "a request index")
        if z3.is_expr(index) and index.sort() == self.world.node:
            return index
        raise Unsupported(f"it indexes a per-node field with {shown(index)}, not a node")

    def _value(self, term: Any) -> Any:
        return Who(self.world, term) if self.holds == "who" else term

    def _store(self, value: Any) -> Any:
        if self.holds == "who":
            return self.world.as_request(value)
        if isinstance(value, Who):
            raise Unsupported("it stores a request where a number is expected")
        if isinstance(value, bool) or self.holds == "bool":
            return as_bool(value)
        return value if z3.is_expr(value) else z3.IntVal(value)

    def term(self, index: Any) -> Any:
        """The raw z3 term at ``index`` (an element of the sort)."""
        return self.read(index)

    def __getitem__(self, index: Any) -> Any:
        return self._value(self.read(self._index(index)))

    def _derived(self, read: Callable[[Any], Any]) -> ArrayView:
        return ArrayView(self.world, read, self.over, self.holds)

    def set_at(self, index: Any, value: Any) -> ArrayView:
        at, new, old = self._index(index), self._store(value), self.read
        return self._derived(lambda q: z3.If(q == at, new, old(q)))

    def update_where(self, indices: Any, condition_of: Callable[[Any], Any],
                     value_of: Callable[[Any], Any], *, by: Any = None) -> ArrayView:
        if not isinstance(indices, Members) or self.over != "request":
            raise Unsupported("it updates a chosen set of positions that is not a node's "
                              "requests")
        if by is not None and not (isinstance(by, ArrayView) and by.over == "request"):
            raise Unsupported(f"it updates where another field says so, but {shown(by)} is "
                              "not a per-request field")
        node_of, old = self.world.node_of, self.read
        assert node_of is not None

        def read(q: Any) -> Any:
            before = old(q)
            decides = self._value(before) if by is None else by._value(by.read(q))
            chosen = z3.And(node_of(q) == indices.node, as_bool(condition_of(decides)))
            return z3.If(chosen, self._store(value_of(self._value(before))), before)

        # a rewrite is evaluated on every read: check it once now, so a failure names the step
        read(z3.Const("probe", self.world.req))
        return self._derived(read)

    def map_values(self, value_of: Callable[[Any], Any]) -> ArrayView:
        """Every request's value replaced by ``value_of`` of it."""
        old = self.read
        return self._derived(lambda q: self._store(value_of(self._value(old(q)))))

    def count_where(self, condition_of: Callable[[Any], Any]) -> Count:
        """How many requests' values satisfy ``condition_of``, as a :class:`Count`."""
        if self.over != "request":
            raise Unsupported("it counts the nodes that satisfy a condition")
        return Count(self.world, lambda r: condition_of(self[r]))

    def any_where(self, condition_of: Callable[[Any], Any]) -> Any:
        """Some request's value satisfies ``condition_of``: ``exists r``."""
        if self.over != "request":
            raise Unsupported("it asks whether some node satisfies a condition")
        return z3.Not(self.world.for_all(1, lambda r: negate(condition_of(self[r]))))

    def mapped(self, fn: Callable[[Any, Any], Any], other: ArrayView) -> ArrayView:
        """The field whose element ``q`` is ``fn(self[q], other[q])`` (a tick's timers)."""
        mine, theirs = self.read, other.read
        return self._derived(lambda q: fn(mine(q), theirs(q)))

    def symbolic_ite(self, condition: Any, then: Any, otherwise: Any) -> ArrayView:
        if not (isinstance(then, ArrayView) and isinstance(otherwise, ArrayView)):
            raise Unsupported("it chooses between a per-request field and a fixed tuple")
        first, second = then.read, otherwise.read
        return self._derived(lambda q: z3.If(condition, first(q), second(q)))

    def __iter__(self) -> Iterator[Any]:
        raise Unsupported(f"it loops over every {self.over} one by one, which has no fixed "
                          "length for every size")

    def __len__(self) -> int:
        raise Unsupported(f"it takes the number of {self.over}s, which is not fixed")

    def __eq__(self, other: object) -> Any:
        raise Unsupported(f"it compares a whole per-{self.over} field at once")

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"ArrayView({self.read})"


class Count:
    """How many requests satisfy ``condition`` (plus a fixed ``offset``; a sum of such counts,
    ``more``, adds their conditions), compared with a number by quantifying: ``count <= k``
    says no ``k + 1`` different requests all satisfy it; for a sum, no ``n_i`` different
    requests satisfy the ``i``-th condition, for any split ``n_1 + .. + n_m = k + 1`` (a request
    may be counted once in each summand whose condition it satisfies)."""

    def __init__(self, world: World, condition: Callable[[Who], Any], offset: int = 0,
                 more: tuple[Callable[[Who], Any], ...] = (), flags: tuple[Any, ...] = ()
                 ) -> None:
        self.world, self.condition, self.offset, self.more = world, condition, offset, more
        self.flags = flags  # z3 Booleans, each adding 1 when true (``ite(c, 1, 0)``)

    def __add__(self, other: object) -> Count:
        if isinstance(other, int) and not isinstance(other, bool):
            return Count(self.world, self.condition, self.offset + other, self.more,
                         self.flags)
        if isinstance(other, Count):
            return Count(self.world, self.condition, self.offset + other.offset,
                         (*self.more, other.condition, *other.more),
                         (*self.flags, *other.flags))
        flag = _one_if(other)
        if flag is not None:
            return Count(self.world, self.condition, self.offset, self.more,
                         (*self.flags, flag))
        raise Unsupported(f"it adds {shown(other)} to a count over every request; only a "
                          "fixed number, ite(condition, 1, 0) or another count can be added")

    __radd__ = __add__

    def _bound(self, other: object) -> int:
        if isinstance(other, int) and not isinstance(other, bool):
            return other - self.offset
        raise Unsupported(f"it compares a count over every request with {shown(other)}, not "
                          "a fixed number")

    def at_most(self, k: int) -> Any:
        if self.flags:  # one flag at a time: true, it takes one from the bound
            rest = Count(self.world, self.condition, self.offset, self.more, self.flags[1:])
            return z3.If(self.flags[0], rest.at_most(k - 1), rest.at_most(k))
        if k < 0:
            return z3.BoolVal(False)
        if not self.more:
            return self.world.for_all(k + 1, lambda *rs: negate(all_of(
                *(self.condition(r) for r in rs))))
        conditions = (self.condition, *self.more)
        return z3.And(*(self._not_at_least(conditions, split)
                        for split in _splits(k + 1, len(conditions))))

    def _not_at_least(self, conditions: tuple[Callable[[Who], Any], ...],
                      split: tuple[int, ...]) -> Any:
        """Not: for each ``i``, ``split[i]`` different requests satisfy ``conditions[i]``."""
        world = self.world
        groups = [world.requests(n) for n in split]
        every = [r for group in groups for r in group]
        if not every:
            return z3.BoolVal(True)
        real = z3.And(*(world.real(*group) for group in groups))
        body = all_of(*(condition(Who(world, r))
                        for condition, group in zip(conditions, groups, strict=True)
                        for r in group))
        return z3.ForAll(every, z3.Implies(real, negate(body)))

    def __le__(self, other: object) -> Any:
        return self.at_most(self._bound(other))

    def __lt__(self, other: object) -> Any:
        return self.at_most(self._bound(other) - 1)

    def __ge__(self, other: object) -> Any:
        return z3.Not(self.at_most(self._bound(other) - 1))

    def __gt__(self, other: object) -> Any:
        return z3.Not(self.at_most(self._bound(other)))

    def __eq__(self, other: object) -> Any:
        k = self._bound(other)
        return z3.And(self.at_most(k), z3.Not(self.at_most(k - 1)))

    __hash__ = object.__hash__


def _one_if(term: object) -> Any:
    """``c`` if ``term`` is the z3 term ``If(c, 1, 0)``, else ``None``."""
    if not (z3.is_expr(term) and z3.is_app_of(term, z3.Z3_OP_ITE)):
        return None
    condition, then, otherwise = term.children()  # type: ignore[attr-defined]
    if z3.is_int_value(then) and z3.is_int_value(otherwise) and \
            then.as_long() == 1 and otherwise.as_long() == 0:
        return condition
    return None


def _splits(total: int, parts: int) -> Iterator[tuple[int, ...]]:
    """Every way to write ``total`` as ``parts`` numbers >= 0, in order."""
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in _splits(total - first, parts - 1):
            yield (first, *rest)


class AllRequests:
    """What ``cfg.requests`` stands for: ``(value,) * cfg.requests`` is the field holding
    ``value`` for every request; any other use of the number fails."""

    def __init__(self, world: World) -> None:
        self.world = world

    def __rmul__(self, other: object) -> ArrayView:
        if isinstance(other, tuple) and len(other) == 1:
            value = other[0]
            holds = "bool" if isinstance(value, bool) else "int"
            return ArrayView.constant(self.world, value, "request", holds)
        raise Unsupported("it computes with the number of requests, which is not fixed")

    __mul__ = __rmul__

    def _fixed(self, *args: object) -> Any:
        raise Unsupported("it computes with the number of requests, which is not fixed")

    __index__ = __int__ = __add__ = __radd__ = __sub__ = __lt__ = __le__ = __gt__ = __ge__ = \
        _fixed


class Size:
    """A fleet-size parameter (``nodes``, ``per_node``) as every size: any use fails."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _fixed(self, *args: object) -> Any:
        raise Unsupported(f"it computes with the fleet size `{self.name}`, which is not fixed")

    __index__ = __int__ = __add__ = __radd__ = __mul__ = __rmul__ = __sub__ = __rsub__ = \
        __floordiv__ = __rfloordiv__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = \
        _fixed


class FleetConfig:
    """The policy's configuration with the fleet's size left open: its timing constants and
    switches as given, ``requests`` standing for every request, ``node_of`` the function
    ``Req -> Node`` and ``requests_of(node)`` that node's members."""

    def __init__(self, cfg: Any, world: World, sizes: Sequence[str]) -> None:
        self._cfg, self._world, self._sizes = cfg, world, tuple(sizes)

    def __getattr__(self, name: str) -> Any:
        if name in self._sizes:
            return Size(name)
        return getattr(self._cfg, name)

    @property
    def requests(self) -> AllRequests:
        return AllRequests(self._world)

    def node_of(self, r: Any) -> Any:
        if self._world.node_of is None:
            raise Unsupported("it asks for a request's node, and this policy has none")
        return self._world.node_of(self._world.as_request(r))

    def requests_of(self, node: Any) -> Members:
        return Members(node)


class QuantifiedLayer:
    """What the request-program layer computes over every request, stated for every size. A
    policy's model class is combined with this one (it comes first), so the policy's own code
    runs unchanged and only the layer's loops are replaced."""

    world: World

    @property
    def requests(self) -> AllRequests:
        return AllRequests(self.world)

    def urgent_free(self, s: Any) -> Bool:
        """No request holds the clock: ``forall r. not holds_the_clock(s, r)``."""
        model: Any = self
        return all_of(negate(model.background_holds_the_clock(s)), self.world.for_all(
            1, lambda r: negate(model.holds_the_clock(s, r))))

    def tick(self, s: Any) -> Any:
        """Every timer moves by its label at once (one rewrite), pauses end, the
        stores age: the layer's tick, element-wise."""
        model: Any = self
        timers: Mapping[int, Any] = model.TIMERS

        def moved(timer: Any, pc: Any) -> Any:
            out = timer
            for label, kind in timers.items():
                out = ite(pc == label, timer + 1 if kind.up else maximum(timer - 1, 0), out)
            return out

        held = ArrayView.constant(self.world, False, "request", "bool")
        ticked = evolve(s, timer=s.timer.mapped(moved, s.pc), held=held)
        return model.tick_stores(ticked)

    def observation(self, s: Any, filled: Bool, *, cached: Int | None = None,
                    background: Int = 0, foreign: Bool | None = None) -> Observation:
        """The layer's observation with its counts over every request as :class:`Count` s."""
        model: Any = self
        work, done = model.WORK, tuple(model.DONE)
        served = [d for d in done if d not in model.ERRORS]
        from herdproof.models import environment

        return Observation(
            rebuilding=Count(self.world, lambda r: s.pc[r] == work) + background,
            rebuild_starts=s.starts,
            foreign_release=foreign,
            cache_filled=filled,
            unserved=Count(self.world, lambda r: negate(any_of(*(s.pc[r] == d for d in served)))),
            unanswered=Count(self.world, lambda r: negate(any_of(*(s.pc[r] == d for d in done)))),
            waiting=(),
            stale=environment.stale(filled, cached, s.db)
            if model.writers and cached is not None else None,
        )


# -- the layout of a state --------------------------------------------------------------------

@dataclass
class Layout:
    """Which leaves of the policy's state are per request, per node, a request, or plain."""

    per_request: dict[str, str] = field(default_factory=dict)  # field -> "int" | "bool"
    per_node: tuple[str, ...] = ()  # fields holding a request per node
    owners: tuple[str, ...] = ()  # dotted paths of leaves holding a request


def _kind(value: Any) -> str:
    if isinstance(value, bool) or (z3.is_expr(value) and z3.is_bool(value)):
        return "bool"
    return "int"


def _sort(kind: str) -> Any:
    return z3.BoolSort() if kind == "bool" else z3.IntSort()


def _leaf(world: World, kind: str, name: str) -> Any:
    return z3.Const(name, _sort(kind))


# -- the compiled program -----------------------------------------------------------------------

@dataclass
class QuantifiedProgram:
    """A policy's program for every size: the quantified model, its actions (each request
    step once, for a request ``r`` chosen by the solver), its initial states and layout."""

    policy: str
    params: dict[str, ParamValue]
    inst: smt.Instance
    world: World
    model: Any
    layout: Layout
    actions: tuple[Action, ...]
    chosen: Any  # the Req constant the request steps are taken by
    template: Any  # the policy's initial state at the smallest size
    initials: tuple[Any, ...]
    sizes: tuple[str, ...]

    def background(self) -> list[Any]:
        """What every query assumes: the assumptions on the symbols and the world's axioms."""
        return [*self.inst.assumptions, *self.world.axioms]

    def state(self, tag: str) -> Any:
        """A state with a fresh function per per-request field and a fresh term per leaf."""
        return self._fresh(self.template, tag, "")

    def _fresh(self, value: Any, tag: str, path: str) -> Any:
        top = path.split(".")[0] if path else ""
        if path in self.layout.owners:
            return Who(self.world, z3.Const(f"{path}@{tag}", self.world.req))
        if not path.count(".") and top in self.layout.per_request:
            kind = self.layout.per_request[top]
            return ArrayView.function(self.world, f"{path}@{tag}", "request", kind)
        if not path.count(".") and top in self.layout.per_node:
            return ArrayView.function(self.world, f"{path}@{tag}", "node", "who")
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.replace(value, **{
                f.name: self._fresh(getattr(value, f.name), tag,
                                    f"{path}.{f.name}" if path else f.name)
                for f in dataclasses.fields(value)})
        if isinstance(value, tuple):
            return tuple(self._fresh(v, tag, f"{path}[{i}]") for i, v in enumerate(value))
        return _leaf(self.world, _kind(value), f"{path}@{tag}")

    def describe(self) -> str:
        """The policy and the parameters the proof holds fixed."""
        fixed = " ".join(f"{k}={v}" for k, v in _shown_params(self.params).items()
                         if k not in self.inst.symbols and k not in self.sizes)
        return f"{self.policy} {fixed}"

    def scope(self) -> str:
        """What the proof ranges over: ``every nodes, per_node and every ex, rebuild with
        ex >= rebuild``."""
        text = f"every {', '.join(self.sizes)}"
        if self.inst.symbols:
            text += (f" and every {', '.join(self.inst.symbols)} with "
                     f"{' and '.join(self.inst.assumption_text) or 'their ranges'}")
        return text

    def epr(self) -> str:
        """Where the encoding stays in, or leaves, the decidable fragment (EPR)."""
        leaves = []
        if self.layout.per_node and self.world.node_of is not None:
            fields = ", ".join(self.layout.per_node)
            leaves.append(f"{fields} (Node -> Req) composed with node_of (Req -> Node) is a "
                          "function from requests into requests (a node's leader)")
        if leaves:
            return ("outside EPR: " + "; ".join(leaves) + "; z3's model-based quantifier "
                    "instantiation decides these queries in practice, and a query it cannot "
                    "decide is reported unknown")
        return ("EPR over the request sort (no function from requests into requests); "
                "per-request values are integers and booleans compared with constants")

    def action_name(self, a: Action) -> str:
        name = type(a).__name__
        return f"{name}(r)" if hasattr(a, "r") else f"{name}()"


def _shown_params(params: Mapping[str, ParamValue]) -> dict[str, str]:
    from herdproof.models.params import show_value
    from herdproof.models.program import recorded

    return {k: show_value(v) for k, v in recorded(params).items()}


def compile_program(name: str, overrides: Mapping[str, object] | None = None, *,
                    symbolic: Sequence[str] = (), assume: Sequence[str] = ()
                    ) -> QuantifiedProgram:
    """The quantified form of policy (or preset) ``name`` with ``overrides``, its timing
    parameters ``symbolic`` under ``assume``, for every value of its size parameters.

    Raises :class:`~models.errors.InvalidParameter` for a size parameter given a value (the
    proof is for every size), and :class:`Unsupported` for a policy whose program cannot be
    read for every size (the message says which part and why).
    """
    policy, _ = resolve(name, overrides)
    spec = POLICIES[policy]
    sizes = tuple(spec.size)
    fixed = [s for s in sizes if overrides and s in overrides]
    if fixed:
        raise InvalidParameter(f"--all-sizes proves the property for every {', '.join(sizes)}; "
                               f"drop -p {fixed[0]}=...")
    smallest = {**(overrides or {}), **{s: 1 for s in sizes}}
    inst = smt.instance(name, smallest, symbolic=symbolic, assume=assume)
    shape = inst.model
    if not isinstance(shape, ProgramModel):
        raise Unsupported(f"{policy} is not written as a request program (models/program.py), "
                          "which the proof for every size reads")
    larger = build(name, {**(overrides or {}), **{s: 2 for s in sizes}})
    symmetry = _symmetry(policy, shape)
    with_nodes = hasattr(shape.cfg, "node_of")
    if symmetry.group_fields and not with_nodes:
        raise Unsupported(f"{policy} has per-group fields ({', '.join(symmetry.group_fields)}) "
                          "but its configuration has no node_of to say which group a request "
                          "is in")
    world = World(with_nodes)
    template = shape.initial_states()[0]
    layout = _layout(policy, template, larger.initial_states()[0], symmetry)
    qclass = type(f"Quantified{type(shape).__name__}", (QuantifiedLayer, type(shape)), {})
    model: Any = object.__new__(qclass)
    model.__dict__.update(shape.__dict__)
    model.world = world
    model.cfg = FleetConfig(shape.cfg, world, sizes)
    chosen = z3.Const("r", world.req)
    actions = _actions(shape, Who(world, chosen))
    program = QuantifiedProgram(policy, dict(inst.params), inst, world, model, layout, actions,
                                chosen, template, (), sizes)
    program.initials = tuple(_initial(program, s, big) for s, big in zip(
        shape.initial_states(), larger.initial_states(), strict=True))
    return program


def _symmetry(policy: str, model: Any) -> Symmetry:
    declare = getattr(model, "symmetry", None)
    if declare is None:
        raise Unsupported(f"{policy} declares no symmetry(), from which the proof for every "
                          "size learns which fields are per request")
    found: Symmetry = declare()
    return found


def _layout(policy: str, small: Any, large: Any, symmetry: Symmetry) -> Layout:
    """The layout of the policy's state, from its symmetry declaration, checked against the
    state at two sizes: a tuple that grows with the fleet must be declared."""
    layout = Layout(per_node=tuple(symmetry.group_fields), owners=tuple(symmetry.owners))
    for f in dataclasses.fields(small):
        value, bigger = getattr(small, f.name), getattr(large, f.name)
        if f.name in symmetry.fields:
            layout.per_request[f.name] = _kind(value[0])
        elif f.name in symmetry.group_fields:
            continue
        elif isinstance(value, tuple) and len(value) != len(bigger):
            raise Unsupported(f"{policy}'s state field `{f.name}` grows with the fleet, but "
                              "its symmetry() does not declare it per request or per node")
    return layout


def _actions(shape: Any, who: Who) -> tuple[Action, ...]:
    """Each action kind of the configuration once: the environment's as they are, a request's
    step taken by the chosen request ``who``."""
    out: list[Action] = []
    seen: set[type] = set()
    for a in shape.candidate_actions():
        kind = type(a)
        if kind in seen:
            continue
        seen.add(kind)
        out.append(kind(r=who) if hasattr(a, "r") else a)
    return tuple(out)


def _initial(program: QuantifiedProgram, small: Any, large: Any) -> Any:
    """An initial state as a quantified state: every request (and node) starts alike."""
    world, layout = program.world, program.layout

    def convert(value: Any, bigger: Any, path: str) -> Any:
        top = path.split(".")[0]
        if path in layout.owners:
            return Who(world, world.as_request(value, "the initial owner"))
        if "." not in path and top in layout.per_request:
            if any(v is not value and not _same(v, value[0]) for v in bigger):
                raise Unsupported(f"requests start differently in `{path}`, so no single "
                                  "initial state covers every size")
            kind = layout.per_request[top]
            first = value[0]
            return ArrayView.constant(world, first, "request", kind)
        if "." not in path and top in layout.per_node:
            if any(v != value[0] for v in bigger):
                raise Unsupported(f"nodes start differently in `{path}`")
            return ArrayView.constant(world, value[0], "node", "who")
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.replace(value, **{
                f.name: convert(getattr(value, f.name), getattr(bigger, f.name),
                                f"{path}.{f.name}" if path else f.name)
                for f in dataclasses.fields(value)})
        return value

    return convert(small, large, "")


def _same(a: Any, b: Any) -> bool:
    if z3.is_expr(a) or z3.is_expr(b):
        return bool(z3.is_expr(a) and z3.is_expr(b) and a.eq(b))
    return bool(a == b)


# -- the layer's own candidates ----------------------------------------------------------------

def domain_candidates(program: QuantifiedProgram) -> tuple[Candidate, ...]:
    """The layer's part of the type invariant, per request: its label is one the program has,
    its timer is within what its label allows, the version its work read is one the database
    had; and the layer's counters are non-negative. They are candidates like the policy's:
    kept only if inductive."""
    labels = sorted(program_labels(program))
    found = [
        each_request("labels", "every request is at a label of its program",
                     lambda m, s, r: any_of(*(s.pc[r] == label for label in labels))),
        each_request("timers", "every timer is within what its label allows",
                     lambda m, s, r: m.timer_in_domain(s.pc[r], s.timer[r], s.held[r])),
        each_request("versions", "the version a request read is one the database had",
                     lambda m, s, r: all_of(s.seen[r] >= 0, s.seen[r] <= s.db)),
        whole("counters", "the database version, starts and crashes are not negative",
              lambda m, s: all_of(s.db >= 0, s.db <= m.writers, s.starts >= 0,
                                  s.crashed >= 0, s.crashed <= m.crash_bound)),
    ]
    return tuple(found)


def program_labels(program: QuantifiedProgram, states: int = 20_000) -> set[int]:
    """The labels a request of this configuration can be at, as a candidate: where it
    arrives and ends, the labels of the steps this configuration has, and every label a request
    reaches in a small instance (where a step's effect moves it, e.g. a follower). Houdini
    checks the candidate like any other, so a label missed here only drops it."""
    from herdproof.engines import explicit

    model, concrete = program.model, program.inst.model
    cfg = getattr(concrete, "cfg", None)
    labels = {model.ARRIVAL, *model.DONE}
    for step in model.STEPS:
        if step.when is None or step.when(cfg):
            labels.update(step.at if isinstance(step.at, tuple) else (step.at,))
    small = build(program.policy, {**program.params, **{s: 2 for s in program.sizes}})
    reached: list[Any] = explicit.explore(small, max_states=states).order
    for s in reached:
        labels.update(s.pc)
    return labels


def formula(program: QuantifiedProgram, candidate: Candidate, s: Any) -> Any:
    """The candidate stated on state ``s``, its variables quantified (universally, or for
    :func:`~models.candidates.some_request` existentially)."""
    world, model = program.world, program.model
    if candidate.over == "request":
        return world.for_all(1, lambda r: candidate.holds(model, s, r))
    if candidate.over == "pair":
        return world.for_all(2, lambda r, q: candidate.holds(model, s, r, q))
    if candidate.over == "node":
        return world.for_all_nodes(lambda n: candidate.holds(model, s, n))
    if candidate.over == "some request":
        return world.exists(lambda r: candidate.holds(model, s, r))
    return as_bool(candidate.holds(model, s))


def evaluate(what: str, fn: Callable[[], Any]) -> Any:
    """Run a piece of the policy's code on a quantified state; a failure becomes one sentence
    naming ``what`` (the step and whether its guard or effect) and why."""
    try:
        return fn()
    except Unsupported as exc:
        raise Unsupported(f"{what} cannot be read for every size: {exc}") from None
    except (TypeError, AttributeError, IndexError, z3.Z3Exception) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise Unsupported(f"{what} cannot be read for every size: it fails on a quantified "
                          f"state ({reason})") from None


# -- from a solver's model back to a concrete instance --------------------------------------------

@dataclass
class Concrete:
    """A state the solver found, as a state of the concrete model at a size."""

    params: dict[str, ParamValue]
    state: Any
    request: int | None  # the request the action was taken by, if any
    numbers: dict[str, int]  # solver element (as text) -> request number


def decode(program: QuantifiedProgram, s: Any, solution: Any) -> Concrete:
    """The concrete instance (size, timing values) and state that ``solution`` gives ``s``.

    The solver's requests are numbered node by node; a node with fewer requests than the
    largest one gets idle requests (as they start) so every node has ``per_node``."""
    world, layout = program.world, program.layout
    nobody = solution.eval(world.nobody, model_completion=True)
    universe = solution.get_universe(world.req) or []
    chosen = solution.eval(program.chosen, model_completion=True)
    elements = [e for e in universe if not e.eq(nobody)]
    if not any(e.eq(chosen) for e in elements) and not chosen.eq(nobody):
        elements.append(chosen)
    groups: list[tuple[Any, list[Any]]] = []
    for e in elements:
        node = solution.eval(world.node_of(e), model_completion=True) \
            if world.node_of is not None else None
        for key, members in groups:
            if node is None or key.eq(node):
                members.append(e)
                break
        else:
            groups.append((node, [e]))
    if not groups:
        groups = [(None, [])]
    per_group = max(1, max(len(m) for _, m in groups))
    if world.node_of is not None:
        size = {program.sizes[0]: len(groups), program.sizes[1]: per_group}
    else:
        size = {program.sizes[0]: per_group}
    numbers: dict[str, int] = {}
    slots: list[Any] = []
    for _, members in groups:
        for k in range(per_group):
            element = members[k] if k < len(members) else None
            if element is not None:
                numbers[str(element)] = len(slots)
            slots.append(element)
    params = dict(program.params)
    params.update(size)
    params.update(program.inst.concrete_params(solution))
    for name in program.sizes:
        params[name] = size[name]
    concrete = build(program.policy, params)
    start = concrete.initial_states()[0]
    node_terms = [node for node, _ in groups]

    def number(term: Any) -> int:
        value = solution.eval(term, model_completion=True)
        return numbers.get(str(value), -1)

    def plain(term: Any) -> Any:
        value = solution.eval(term, model_completion=True)
        return z3.is_true(value) if z3.is_bool(value) else value.as_long()

    def convert(value: Any, initial: Any, path: str) -> Any:
        top = path.split(".")[0]
        if path in layout.owners:
            return number(value.term)
        if "." not in path and top in layout.per_request:
            return tuple(plain(value.term(e)) if e is not None else initial[i]
                         for i, e in enumerate(slots))
        if "." not in path and top in layout.per_node:
            return tuple(number(value.term(n)) for n in node_terms)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.replace(initial, **{
                f.name: convert(getattr(value, f.name), getattr(initial, f.name),
                                f"{path}.{f.name}" if path else f.name)
                for f in dataclasses.fields(value)})
        if isinstance(value, tuple):
            return tuple(convert(v, i, f"{path}[{k}]")
                         for k, (v, i) in enumerate(zip(value, initial, strict=True)))
        if z3.is_expr(value):
            return plain(value)
        return value

    state = convert(s, start, "")
    request = numbers.get(str(chosen))
    return Concrete(params, state, request, numbers)
