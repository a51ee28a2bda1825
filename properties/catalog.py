"""The named, kinded properties and the quantities every engine checks.

Kinds follow Stateright's ``always`` / ``sometimes`` / ``eventually``:

- ``ALWAYS``: the predicate holds in every reachable state; a violation has a finite trace.
- ``SOMETIMES``: some reachable state satisfies it; the witness shows the model is not vacuous
  (every policy must reach a refilled cache, so an ``ALWAYS`` verdict means something).
- ``EVENTUALLY``: every fair run comes to rest in states that satisfy it. Runs are fair when
  an action that stays possible is eventually taken (strong fairness over the finite graph), so
  fair runs end in the graph's bottom strongly connected components; a violation is a trace to
  such a component where the predicate fails, after which the run can only stutter.

>>> property_named("REBUILDS<=2").kind.name, property_named("ONE").summary[:20]
('ALWAYS', 'at most one request ')
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from herdproof.models.core import TransitionSystem
from herdproof.models.errors import UnknownProperty
from herdproof.models.observation import Observation
from herdproof.models.ops import Bool, Int, negate
from herdproof.models.params import clipped
from herdproof.properties.lapse import lapse_monitor
from herdproof.properties.progress import prompt


class Kind(Enum):
    """How a property's predicate is quantified over runs."""

    ALWAYS = "always"
    SOMETIMES = "sometimes"
    EVENTUALLY = "eventually"


# What a property's missing observation field means for the user, and the fix.
_NEEDS = {"foreign_release": "it needs a lock: turn lock=on",
          "stale": "it needs DB writers: set writers=1 or more",
          "waited": "the policy does not report which requests are waiting "
                    "(Observation.waiting)",
          "unanswered": "the policy does not tell errors from service (Observation.unanswered)",
          "acting_holders": "it needs a lock whose holders act on a protected resource",
          "lapsed_write": "it needs a lock guarding writes to a storage",
          "split_outcome": "it needs callers that join a shared call (single-flight)",
          "placeholder_served": "it needs a cache that stores placeholders (stubs, leases)",
          "rate_exceeded": "it needs leases granted per lease window"}


@dataclass(frozen=True)
class Property:
    """A named claim: a predicate over observations and how it is quantified."""

    name: str
    kind: Kind
    summary: str
    predicate: Callable[[Observation], Bool]
    requires: tuple[str, ...] = ()
    monitor: Callable[[TransitionSystem[Any, Any]], TransitionSystem[Any, Any]] | None = None

    def applies_to(self, observation: Observation) -> bool:
        """False if the policy leaves a field this property needs as ``None``."""
        return all(getattr(observation, f) is not None for f in self.requires)

    def needs(self) -> str:
        """What a configuration must have for this property to apply, and the fix, for the
        message that says it does not apply (``it needs a lock: turn lock=on``)."""
        return "; ".join(_NEEDS.get(f, f"it needs {f}") for f in self.requires)

    def prepare(self, model: TransitionSystem[Any, Any]) -> TransitionSystem[Any, Any]:
        """The transition system an engine checks this property on: ``model`` itself, or
        ``model`` wrapped in the property's monitor (``SERVED<=B``'s wait clocks)."""
        return self.monitor(model) if self.monitor is not None else model

    def monitors(self, model: TransitionSystem[Any, Any]) -> bool:
        """True if this property is checked on a product of ``model`` and its monitor (its
        own exploration), not on ``model``'s own graph with the other properties."""
        return self.monitor is not None and self.prepare(model) is not model

    def applies_to_model(self, model: TransitionSystem[Any, Any]) -> bool:
        """True if the property can be checked on ``model`` (inside its monitor, if any)."""
        checked = self.prepare(model)
        return self.applies_to(checked.observe(checked.initial_states()[0]))


@dataclass(frozen=True)
class Quantity:
    """A number to maximise over reachable states, reported with a witness trace."""

    name: str
    summary: str
    measure: Callable[[Observation], Int]
    monitor: Callable[[TransitionSystem[Any, Any]], TransitionSystem[Any, Any]] | None = None
    cap: int | None = None  # a monitored quantity saturates here: "at least cap"

    def prepare(self, model: TransitionSystem[Any, Any]) -> TransitionSystem[Any, Any]:
        """The transition system the quantity is measured on (see :meth:`Property.prepare`)."""
        return self.monitor(model) if self.monitor is not None else model


def _served_within(bound: int) -> Property:
    return Property(
        f"SERVED<={bound}", Kind.ALWAYS,
        f"every request is served within {bound} tick(s) of arriving (prompt scheduling)",
        lambda o: o.waited is not None and o.waited <= bound, requires=("waited",),
        monitor=lambda model: prompt(model, bound))


def _rebuilds_at_most(k: int) -> Property:
    return Property(
        f"REBUILDS<={k}", Kind.ALWAYS,
        f"at most {k} rebuild start(s) (database queries) in the whole run",
        lambda o: o.rebuild_starts <= k)


_FIXED: dict[str, Property] = {p.name: p for p in (
    Property("ONE", Kind.ALWAYS,
             "at most one request is rebuilding at any moment, fleet-wide",
             lambda o: o.rebuilding <= 1),
    Property("NOFOREIGN", Kind.ALWAYS,
             "a lock is released only by the request that owns it",
             lambda o: negate(o.foreign_release), requires=("foreign_release",)),
    Property("FRESH", Kind.ALWAYS,
             "no stale set: once a writer invalidated version v, the cache never holds an "
             "older one",
             lambda o: negate(o.stale), requires=("stale",)),
    Property("SERVED", Kind.EVENTUALLY,
             "every request ends with the value or an explicit fallback (an error is not "
             "service)",
             lambda o: o.unserved == 0),
    Property("ANSWERED", Kind.EVENTUALLY,
             "every request ends with an answer: the value, a fallback, or an error",
             lambda o: o.unanswered == 0, requires=("unanswered",)),
    Property("MUTEX", Kind.ALWAYS,
             "at most one request that holds the lock acts on the protected resource at a time",
             lambda o: (o.acting_holders if o.acting_holders is not None else 0) <= 1,
             requires=("acting_holders",)),
    Property("NOLAPSED", Kind.ALWAYS,
             "no write is accepted from a request that no longer holds the lock",
             lambda o: negate(o.lapsed_write), requires=("lapsed_write",),
             monitor=lapse_monitor),
    Property("SHARED", Kind.ALWAYS,
             "every caller that joined a shared call gets that call's outcome",
             lambda o: negate(o.split_outcome), requires=("split_outcome",)),
    Property("NOPLACEHOLDER", Kind.ALWAYS,
             "no client serves a placeholder (an empty stub, a lease marker) as the value",
             lambda o: negate(o.placeholder_served), requires=("placeholder_served",)),
    Property("RATE", Kind.ALWAYS,
             "at most one lease token is granted per lease window",
             lambda o: negate(o.rate_exceeded), requires=("rate_exceeded",)),
    Property("REFILL", Kind.SOMETIMES,
             "some run refills the cache (the model is not vacuous)",
             lambda o: o.cache_filled),
)}

# Waits are counted up to here by ``longest_wait``: reaching it means "this long or unbounded".
WAIT_CAP = 64

_REBUILDS = re.compile(r"REBUILDS<=(.*)", re.DOTALL)
_SERVED_WITHIN = re.compile(r"SERVED<=(.*)", re.DOTALL)
# The bound of REBUILDS<=k and SERVED<=B: ASCII digits (no `٣`), at most this large.
_BOUND = re.compile(r"[0-9]{1,9}", re.ASCII)
MAX_BOUND = 1_000_000

DEFAULT_PROPERTIES: tuple[str, ...] = ("ONE", "REBUILDS<=1", "NOFOREIGN", "FRESH", "SERVED",
                                        "ANSWERED", "MUTEX", "NOLAPSED", "SHARED",
                                        "NOPLACEHOLDER", "RATE", "REFILL")

QUANTITIES: dict[str, Quantity] = {q.name: q for q in (
    Quantity("concurrent_rebuilds", "requests rebuilding at the same moment",
             lambda o: o.rebuilding),
    Quantity("rebuild_starts", "rebuilds started in one run (database queries)",
             lambda o: o.rebuild_starts),
    Quantity("longest_wait", f"ticks a request waits from arrival to service (prompt "
             f"scheduling; the tight bound B of SERVED<=B; counted up to {WAIT_CAP})",
             lambda o: o.waited if o.waited is not None else 0,
             monitor=lambda model: prompt(model, WAIT_CAP - 1), cap=WAIT_CAP),
)}


def property_named(name: str) -> Property:
    """The property called ``name`` (``ONE``, ``REBUILDS<=k``, ``NOFOREIGN``, ...)."""
    key = name.strip().upper()
    if key in _FIXED:
        return _FIXED[key]
    for pattern, make, letter, what in ((_REBUILDS, _rebuilds_at_most, "k", "rebuild starts"),
                                        (_SERVED_WITHIN, _served_within, "B", "ticks")):
        match = pattern.fullmatch(key)
        if match:
            bound = match.group(1).strip()
            if not _BOUND.fullmatch(bound) or int(bound) > MAX_BOUND:
                family = key.partition("<=")[0]
                raise UnknownProperty(
                    f"property `{clipped(name)}`: in {family}<={letter}, {letter} must be a "
                    f"whole number of {what} from 0 to {MAX_BOUND:,} (digits 0-9), e.g. "
                    f"{family}<=2")
            return make(int(bound))
    known = ", ".join([*_FIXED, "REBUILDS<=k", "SERVED<=B"])
    raise UnknownProperty(f"unknown property `{clipped(name)}`; choose one of: {known}")


def quantity_named(name: str) -> Quantity:
    """The quantity called ``name``."""
    if name not in QUANTITIES:
        known = ", ".join(QUANTITIES)
        raise UnknownProperty(f"unknown quantity `{name}`; choose one of: {known}")
    return QUANTITIES[name]


def applicable_properties(observation: Observation,
                          names: Iterable[str] = DEFAULT_PROPERTIES) -> tuple[Property, ...]:
    """The named properties that apply to a policy, judged by one of its observations
    (``SERVED<=B``, whose monitor keeps the waits, applies when the policy reports who is
    waiting; NOLAPSED only where the policy keeps the lapses itself: through its monitor it
    is checked when named, never by default)."""
    return tuple(p for p in map(property_named, names) if p.applies_to(observation)
                 or ("waited" in p.requires and bool(observation.waiting)))
