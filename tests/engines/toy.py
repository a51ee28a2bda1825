"""A tiny model for engine tests where a request can hang forever (SERVED is violated)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from herdproof.models.clock import Tick
from herdproof.models.core import Action, Invariant
from herdproof.models.observation import Observation
from herdproof.models.ops import Bool, all_of, count, ite


@dataclass(frozen=True, slots=True)
class Serve(Action):
    """Request r ends with the value; enabled while r is waiting."""

    r: int


@dataclass(frozen=True, slots=True)
class Hang(Action):
    """Request r loses its wake-up forever; enabled while r is waiting."""

    r: int


@dataclass(frozen=True, slots=True)
class ToyState:
    pc: tuple[int, ...]  # 0 waiting, 1 served, 2 hung


class HangingModel:
    name = "hanging"

    def __init__(self, requests: int = 2) -> None:
        self.requests = requests

    @property
    def params(self) -> Mapping[str, Any]:
        return {"requests": self.requests}

    def initial_states(self) -> tuple[ToyState, ...]:
        return (ToyState((0,) * self.requests),)

    def candidate_actions(self) -> tuple[Action, ...]:
        return (Tick(), *(k(r=r) for r in range(self.requests) for k in (Serve, Hang)))

    def enabled(self, s: ToyState, a: Action) -> Bool:
        if isinstance(a, Tick):
            return True
        return s.pc[a.r] == 0  # type: ignore[attr-defined]

    def apply(self, s: ToyState, a: Action) -> ToyState:
        if isinstance(a, Tick):
            return s
        new = 1 if isinstance(a, Serve) else 2
        return ToyState(tuple(ite(i == a.r, new, pc) for i, pc in enumerate(s.pc)))  # type: ignore[attr-defined]

    def in_domain(self, s: ToyState) -> Bool:
        return all_of(*(pc >= 0 for pc in s.pc), *(pc <= 2 for pc in s.pc))

    def observe(self, s: ToyState) -> Observation:
        return Observation(rebuilding=0, rebuild_starts=0, foreign_release=None,
                           cache_filled=count(pc == 1 for pc in s.pc) > 0,
                           unserved=count(pc != 1 for pc in s.pc))

    def describe(self, s: ToyState) -> dict[str, str]:
        return {f"r{i}": ("waiting", "served", "hung")[pc] for i, pc in enumerate(s.pc)}

    def canonical(self, s: ToyState) -> ToyState:
        return ToyState(tuple(sorted(s.pc)))

    def truncated(self, s: ToyState) -> bool:
        return False

    def invariants(self) -> tuple[Invariant, ...]:
        return ()

    def action_types(self) -> Mapping[str, type[Action]]:
        return {"Tick": Tick, "Serve": Serve, "Hang": Hang}
