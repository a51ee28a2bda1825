"""The one contract every policy model meets, and the helpers every engine uses on it.

A policy is written once as a pure transition system (Stateright's single ``Model`` trait;
TLA+'s guard-then-update actions). Engines never keep their own copy of a policy's rules:
the explicit search, the Hypothesis state machine and the z3 encoding all call
:meth:`TransitionSystem.enabled` and :meth:`TransitionSystem.apply`.

>>> from herdproof.models.registry import build
>>> model = build("stack", {"nodes": 1, "per_node": 1})
>>> start = model.initial_states()[0]
>>> [repr(a) for a in enabled_actions(model, start)]
['Tick()', 'Miss(r=0)']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from herdproof.models.observation import Observation
from herdproof.models.ops import Bool


@dataclass(frozen=True, slots=True)
class Action:
    """Base of every action: a small frozen record named actor-verb (``WinLock(r=1)``).

    The dataclass ``repr`` is valid Python, so a failing run prints a program that can be
    pasted into a regression test. ``advances_time`` marks the environment's clock tick;
    ``by_environment`` marks the environment's actions (the tick, pauses, crashes, DB writes),
    as opposed to a request's own steps.
    """

    advances_time: ClassVar[bool] = False
    by_environment: ClassVar[bool] = False


S = TypeVar("S")
A = TypeVar("A", bound=Action)


@dataclass(frozen=True)
class Invariant:
    """A named predicate over states, written with :mod:`models.ops`."""

    name: str
    holds: Callable[[Any], Bool]


class TransitionSystem(Protocol[S, A]):
    """A policy model: states, a finite fixed-order action list, guards and effects.

    ``enabled``, ``apply``, ``in_domain`` and ``observe`` are written with
    :mod:`models.ops`, so they accept concrete states (returning Python values) and symbolic
    ones (returning z3 terms).
    """

    name: str

    @property
    def params(self) -> Mapping[str, Any]:
        """The complete parameters the instance was built from (recorded in every trace)."""
        ...

    def initial_states(self) -> tuple[S, ...]:
        """The states a run may start in."""
        ...

    def candidate_actions(self) -> tuple[A, ...]:
        """Every action the parameters allow, simplest first (Hypothesis shrinks that way)."""
        ...

    def enabled(self, s: S, a: A) -> Bool:
        """The guard of ``a`` in ``s``."""
        ...

    def apply(self, s: S, a: A) -> S:
        """The effect of ``a`` on ``s``: a whole new state. Only called when enabled."""
        ...

    def in_domain(self, s: S) -> Bool:
        """The type invariant (TLA+'s ``TypeOK``): every reachable state must satisfy it."""
        ...

    def observe(self, s: S) -> Observation:
        """The facts properties read."""
        ...

    def describe(self, s: S) -> Mapping[str, str]:
        """Short human labels for a state, one per column of a text timeline."""
        ...

    def canonical(self, s: S) -> S:
        """A representative of ``s`` under the model's symmetries (``s`` itself if none)."""
        ...

    def truncated(self, s: S) -> bool:
        """True if a bound of the model (the ``horizon``) cut successors of ``s`` off."""
        ...

    def action_types(self) -> Mapping[str, type[A]]:
        """Action classes by name, for reading actions back from a trace file."""
        ...

    def invariants(self) -> tuple[Invariant, ...]:
        """Candidate strengthening invariants for induction proofs (may be empty).

        They are candidates, not claims: the SMT engine keeps only those it can show to be
        inductive for the instance at hand (Houdini), so a candidate that is false under some
        parameters is simply dropped there.
        """
        ...


class ModelError(AssertionError):
    """A model broke its own contract (a bug in the policy module, not in the input)."""


def enabled_actions(model: TransitionSystem[S, A], s: S) -> tuple[A, ...]:
    """The candidate actions whose guard holds in the concrete state ``s``, in model order."""
    chosen = []
    for a in model.candidate_actions():
        guard = model.enabled(s, a)
        if not isinstance(guard, bool):
            raise ModelError(f"{model.name}: guard of {a!r} returned {guard!r}, not a bool; "
                             "concrete states must give concrete guards")
        if guard:
            chosen.append(a)
    return tuple(chosen)


def successors(model: TransitionSystem[S, A], s: S) -> tuple[tuple[A, S], ...]:
    """Each enabled action of ``s`` with the state it leads to.

    Engines call :func:`check_domain` once on every state they store, not on every edge.
    """
    return tuple((a, model.apply(s, a)) for a in enabled_actions(model, s))


def check_domain(model: TransitionSystem[S, A], s: S, after: Action | None = None) -> None:
    """Raise :class:`ModelError` if ``s`` breaks the model's type invariant."""
    if model.in_domain(s) is not True:
        how = f" after {after!r}" if after is not None else ""
        raise ModelError(f"{model.name}: state{how} is outside the model's domain: {s!r}")


def is_quiescent(model: TransitionSystem[S, A], s: S) -> bool:
    """True if no enabled action changes ``s`` (only the clock may stutter): a run may rest."""
    return all(nxt == s for _, nxt in successors(model, s))


def actor_of(action: Action) -> tuple[Any, ...]:
    """Who takes ``action``: its arguments (``(0,)`` for ``WinLock(r=0)``, ``()`` for ``Tick()``).

    Engines use it to treat one request's steps together (arrival delays, trace shrinking).
    """
    return tuple(getattr(action, f.name) for f in dataclasses.fields(action))


def parse_action(model: TransitionSystem[Any, A], name: str, args: Mapping[str, Any],
                 candidates: Collection[A] | None = None) -> A:
    """Rebuild an action from its name and arguments, rejecting ones the model cannot take.

    ``candidates`` may pass ``set(model.candidate_actions())`` once for many calls (a long
    trace file). Raises :class:`models.errors.InvalidAction` naming the problem.
    """
    from herdproof.models.errors import InvalidAction
    from herdproof.models.params import clipped

    types = model.action_types()
    if name not in types:
        known = ", ".join(sorted(types))
        raise InvalidAction(f"action `{clipped(name)}` does not exist in {model.name}; "
                            f"known: {known}")
    for field in dataclasses.fields(types[name]):
        value = args.get(field.name, 0)
        if field.type in ("int", int) and type(value) is not int:  # not True, not 1.0
            raise InvalidAction(f"action `{name}` argument `{field.name}` must be an integer, "
                                f"not {clipped(repr(value))}")
    try:
        action = types[name](**args)
    except TypeError as exc:
        raise InvalidAction(f"action `{name}` got arguments {clipped(repr(dict(args)))}: "
                            f"{clipped(str(exc), 200)}") from None
    try:
        known_action = action in (candidates if candidates is not None
                                  else model.candidate_actions())
    except TypeError:  # an unhashable argument (a list) is no argument of any action
        known_action = False
    if not known_action:
        raise InvalidAction(f"action `{clipped(repr(action))}` is not one of this instance's "
                            "actions (check the request and node numbers against the parameters)")
    return action
