"""What every renderer draws: a replayed trace as columns, changes, lanes and lock holdings.

The renderers (text, Mermaid, HTML) never look inside a policy's state. They read the labels a
model's ``describe`` gives each state, by this convention (the ``stack`` model follows it; a new
policy that does gets lanes, bars and lock expiry for free, and any other column is still shown):

- ``r<i>``: request ``i``'s lane. The label's first word is its phase (``-`` not arrived,
  ``missed``, ``follow``, ``ready``, ``recheck``, ``rebuild``, ``sleep`` or ``wait``, and the
  endings ``value``, ``fallback``, ``stale``, ``crashed``; other words may surround it); a
  trailing ``*`` marks a single-flight leader.
- ``lock``: ``free``, or ``r<i> (<k> left)``: the owner's token and the key's remaining life in
  ticks (Redis semantics: alive while ``k >= 0``, gone on the tick after ``k`` reaches 0).
- ``cache``: ``empty`` or ``filled``.

The trace's property is evaluated at every state and appears as one more column (``true`` /
``false``: the property's predicate in that state), so a reader sees where it turns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise

from herdproof.models.core import actor_of
from herdproof.properties import Kind, property_named
from herdproof.traces.replay import Replayed

_LANE = re.compile(r"r(\d+)")
_LOCK = re.compile(r"r(\d+) \((\d+) left\)")

#: Phases during which a request is doing something (drawn as bars); the others are states.
ACTIVE_PHASES = ("missed", "follow", "ready", "recheck", "rebuild", "sleep", "wait")
#: Phases a request ends in (drawn as a label where it ended).
END_PHASES = ("value", "fallback", "stale", "crashed")


@dataclass(frozen=True)
class Segment:
    """A maximal run of states ``first..last`` (inclusive) in which a lane keeps one phase."""

    lane: str
    phase: str
    first: int
    last: int
    label: str


@dataclass(frozen=True)
class Holding:
    """One request holding the lock over states ``first..last``.

    ``expires_at`` is the first tick at which the key is gone if nobody releases it (Redis:
    ``SET ... EX ex`` at ``t`` is alive through ``t + ex``); ``ended`` says how the holding
    ended: ``expired`` (a tick removed it), ``released`` (an action deleted it) or ``held``
    (still held when the trace ends).
    """

    owner: str
    first: int
    last: int
    acquired_at: int
    expires_at: int
    ended: str


@dataclass(frozen=True)
class Timeline:
    """A replayed trace, ready to draw.

    ``columns[i]`` are the labels of state ``i`` (state 0 is the start; state ``i`` follows step
    ``i``), including the property column when the trace has a property; ``changes[i]`` maps
    each column that step ``i`` changed to its (before, after) labels (``changes[0]`` is empty).
    """

    replayed: Replayed
    columns: tuple[Mapping[str, str], ...]
    changes: tuple[Mapping[str, tuple[str, str]], ...]
    times: tuple[int, ...]
    actions: tuple[str, ...]
    actors: tuple[str, ...]
    lanes: tuple[str, ...]
    segments: tuple[Segment, ...]
    holdings: tuple[Holding, ...]
    prop: str | None
    verdict_word: str
    violation: int | None

    @property
    def title(self) -> str:
        trace = self.replayed.trace
        params = " ".join(f"{k}={show(v)}" for k, v in trace.params.items())
        title = f"{trace.policy} {params}"
        if trace.property:
            title += f"  property {trace.property}"
        return title

    def phase(self, lane: str, index: int) -> str:
        return phase_of(self.columns[index].get(lane, "-"))


def timeline(replayed: Replayed) -> Timeline:
    """Derive everything the renderers draw from one replay."""
    trace = replayed.trace
    columns = [dict(c) for c in replayed.columns()]
    prop_name, word = None, ""
    if trace.property is not None:
        prop = property_named(trace.property)
        prop_name = prop.name
        word = "witnessed" if prop.kind is Kind.SOMETIMES else "violated"
        for index, state in enumerate(replayed.states):
            value = prop.predicate(replayed.model.observe(state))
            columns[index][prop_name] = "true" if value else "false"
    changes: list[dict[str, tuple[str, str]]] = [{}]
    for before, after in pairwise(columns):
        changes.append({k: (before.get(k, ""), v) for k, v in after.items()
                        if before.get(k) != v})
    lanes = tuple(k for k in columns[0] if _LANE.fullmatch(k))
    actions = tuple(repr(a) for a in trace.actions)
    actors = tuple(_actor_label(a) for a in trace.actions)
    return Timeline(
        replayed=replayed, columns=tuple(columns), changes=tuple(changes),
        times=replayed.times, actions=actions, actors=actors, lanes=lanes,
        segments=tuple(_segments(columns, lanes)),
        holdings=tuple(_holdings(columns, replayed.times, trace.actions)),
        prop=prop_name, verdict_word=word, violation=replayed.violation)


def phase_of(label: str) -> str:
    """A request label's phase: its first known phase word, else its first word.

    >>> phase_of("rebuild 2/3"), phase_of("ready*"), phase_of("W rebuild 0/2 cas 1"), phase_of("")
    ('rebuild', 'ready', 'rebuild', '-')
    """
    words = label.replace("*", " ").split()
    known = next((w for w in words if w in ACTIVE_PHASES or w in END_PHASES), None)
    return known or (words[0] if words else "-")


def lock_owner(label: str) -> tuple[str, int] | None:
    """``r1 (2 left)`` -> ``("r1", 2)``; ``free`` (or anything else) -> ``None``."""
    match = _LOCK.fullmatch(label)
    return (f"r{match.group(1)}", int(match.group(2))) if match else None


def show(value: object) -> str:
    """A parameter value as the CLI writes it (switches as on/off)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _actor_label(action: object) -> str:
    actor = actor_of(action)  # type: ignore[arg-type]
    return f"r{actor[0]}" if len(actor) == 1 and isinstance(actor[0], int) else ""


def _segments(columns: list[dict[str, str]], lanes: tuple[str, ...]) -> list[Segment]:
    found = []
    for lane in lanes:
        start = 0
        for index in range(1, len(columns) + 1):
            here = phase_of(columns[start][lane])
            if index < len(columns) and phase_of(columns[index][lane]) == here:
                continue
            found.append(Segment(lane, here, start, index - 1, columns[start][lane]))
            start = index
    return found


def _holdings(columns: list[dict[str, str]], times: tuple[int, ...],
              actions: tuple[object, ...]) -> list[Holding]:
    if "lock" not in columns[0]:
        return []
    found = []
    current: tuple[str, int, int, int] | None = None  # owner, first, acquired_at, expires_at
    for index, row in enumerate(columns):
        held = lock_owner(row["lock"])
        owner = held[0] if held else None
        if current is not None and owner != current[0]:
            ticked = getattr(actions[index - 1], "advances_time", False)
            found.append(Holding(current[0], current[1], index - 1, current[2], current[3],
                                 "expired" if ticked else "released"))
            current = None
        if held is not None and current is None:
            # `remaining` ticks of life after now: alive through t + remaining, gone one later
            current = (held[0], index, times[index], times[index] + held[1] + 1)
    if current is not None:
        found.append(Holding(current[0], current[1], len(columns) - 1, current[2], current[3],
                             "held"))
    return found
