"""``swr``: stale-while-revalidate with one background refresh per key (RFC 5861).

The response header ``Cache-Control: max-age=M, stale-while-revalidate=S`` lets a cache serve
the value for ``S`` more seconds after it went stale, "while it attempts to revalidate it in
the background". The model starts at the moment the value went stale (age == M):

- a request inside the window whose key has no refresh running is served the stale value and
  starts the key's one background refresh (``ServeStaleAndRefresh``);
- a request inside the window while the refresh runs is served the stale value
  (``ServeStale``);
- the refresh takes ``rebuild`` ticks and then stores a fresh value (``RefreshDone``);
- once the window has closed (``stale_while_revalidate`` ticks after the value went stale) a
  request that finds no fresh value must go to the origin synchronously and waits for it
  (``Miss``, then ``Finish``): RFC 5861 dedupes nothing outside the window;
- a request that finds the fresh value is served it (``Hit``).

What is abstracted away, and why that is safe: one key; the refreshed value stays fresh for the
rest of the run (its ``max-age`` is longer than the race); the background refresh belongs to the
cache, not to the request that triggered it (the request is answered at once), so it is a
separate timer; faults and writers are not modelled (this policy is the tutorial's,
``docs/adding-a-policy.md``).

Meant to fail: ONE and REBUILDS<=1. The single background refresh bounds the origin load only
inside the window: a request arriving after the window closes, while the refresh still runs,
queries the origin beside it. SERVED holds: nobody waits inside the window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import IntEnum

from models.clock import Tick
from models.core import Action, Invariant
from models.observation import Observation
from models.ops import Bool, Int, all_of, any_of, count, ite, maximum, negate, set_at
from models.params import Param, ParamValue

PARAMS: tuple[Param, ...] = (
    Param("requests", int, 2, "concurrent requests for the key", minimum=1),
    Param("stale_while_revalidate", int, 2, "ticks the stale value may still be served",
          minimum=0, timing=True),
    Param("rebuild", int, 2, "refresh (origin fetch) duration in ticks", minimum=1, timing=True),
)

NO_REFRESH = -1  # ``refresh`` when no background refresh runs


class PC(IntEnum):
    """Where a request is in its program."""

    IDLE = 0        # not arrived yet
    REBUILDING = 1  # window closed: fetching from the origin itself
    GOT_VALUE = 2   # ended with the fresh value
    GOT_STALE = 3   # ended with the stale value, inside the window


IDLE, REBUILDING, GOT_VALUE, GOT_STALE = tuple(PC)
DONE = (GOT_VALUE, GOT_STALE)


@dataclass(frozen=True, slots=True)
class SwrConfig:
    """The parameters of one instance; timing constants may be z3 terms in symbolic runs."""

    requests: int
    stale_while_revalidate: Int
    rebuild: Int


@dataclass(frozen=True, slots=True)
class SwrState:
    """``window``: ticks left in which the stale value may be served (0: closed).
    ``refresh``: elapsed ticks of the background refresh, ``NO_REFRESH`` if none runs.
    ``timer[r]``: elapsed ticks of r's synchronous fetch."""

    pc: tuple[Int, ...]
    timer: tuple[Int, ...]
    fresh: Bool
    window: Int
    refresh: Int
    starts: Int


@dataclass(frozen=True, slots=True)
class Hit(Action):
    """Request r finds the fresh value; enabled when r has not arrived and the value is fresh."""

    r: int


@dataclass(frozen=True, slots=True)
class ServeStaleAndRefresh(Action):
    """Request r is served the stale value and starts the key's background refresh; enabled
    inside the window when no refresh runs."""

    r: int


@dataclass(frozen=True, slots=True)
class ServeStale(Action):
    """Request r is served the stale value; enabled inside the window while the refresh runs."""

    r: int


@dataclass(frozen=True, slots=True)
class Miss(Action):
    """Request r finds neither a fresh value nor an open window and fetches from the origin."""

    r: int


@dataclass(frozen=True, slots=True)
class Finish(Action):
    """Request r's origin fetch completes: it stores the value and is served; enabled when due."""

    r: int


@dataclass(frozen=True, slots=True)
class RefreshDone(Action):
    """The background refresh stores the fresh value; enabled when it is due."""


ACTION_TYPES: tuple[type[Action], ...] = (
    Tick, RefreshDone, Hit, ServeStaleAndRefresh, ServeStale, Miss, Finish)


class SwrModel:
    """The ``swr`` transition system for one configuration."""

    def __init__(self, config: SwrConfig, params: Mapping[str, ParamValue],
                 name: str = "swr") -> None:
        self.cfg = config
        self.params = dict(params)
        self.name = name
        per_request = [kind(r=r) for r in range(config.requests)
                       for kind in (Hit, ServeStaleAndRefresh, ServeStale, Miss, Finish)]
        self._actions: tuple[Action, ...] = (Tick(), RefreshDone(), *per_request)

    def initial_states(self) -> tuple[SwrState, ...]:
        n = self.cfg.requests
        return (SwrState(pc=(IDLE,) * n, timer=(0,) * n, fresh=False,
                         window=self.cfg.stale_while_revalidate, refresh=NO_REFRESH, starts=0),)

    def candidate_actions(self) -> tuple[Action, ...]:
        return self._actions

    def action_types(self) -> Mapping[str, type[Action]]:
        return {t.__name__: t for t in ACTION_TYPES}

    def enabled(self, s: SwrState, a: Action) -> Bool:
        cfg = self.cfg
        if isinstance(a, Tick):
            return negate(self._due_work(s))
        if isinstance(a, RefreshDone):
            return s.refresh == cfg.rebuild
        r: int = a.r  # type: ignore[attr-defined]
        arriving = s.pc[r] == IDLE
        stale_ok = all_of(negate(s.fresh), s.window > 0)
        match a:
            case Hit():
                return all_of(arriving, s.fresh)
            case ServeStaleAndRefresh():
                return all_of(arriving, stale_ok, s.refresh == NO_REFRESH)
            case ServeStale():
                return all_of(arriving, stale_ok, s.refresh != NO_REFRESH)
            case Miss():
                return all_of(arriving, negate(s.fresh), s.window == 0)
            case Finish():
                return all_of(s.pc[r] == REBUILDING, s.timer[r] == cfg.rebuild)
        raise TypeError(f"swr has no action {a!r}")

    def apply(self, s: SwrState, a: Action) -> SwrState:
        if isinstance(a, Tick):
            timers = tuple(ite(pc == REBUILDING, timer + 1, timer)
                           for pc, timer in zip(s.pc, s.timer, strict=True))
            return replace(s, timer=timers, window=maximum(s.window - 1, 0),
                           refresh=ite(s.refresh == NO_REFRESH, s.refresh, s.refresh + 1))
        if isinstance(a, RefreshDone):
            return replace(s, fresh=True, refresh=NO_REFRESH)
        r: int = a.r  # type: ignore[attr-defined]
        match a:
            case Hit():
                return self._goto(s, r, GOT_VALUE)
            case ServeStaleAndRefresh():
                return replace(self._goto(s, r, GOT_STALE), refresh=0, starts=s.starts + 1)
            case ServeStale():
                return self._goto(s, r, GOT_STALE)
            case Miss():
                return replace(self._goto(s, r, REBUILDING), starts=s.starts + 1)
            case Finish():
                return replace(self._goto(s, r, GOT_VALUE), fresh=True)
        raise TypeError(f"swr has no action {a!r}")

    def in_domain(self, s: SwrState) -> Bool:
        cfg = self.cfg
        return all_of(
            *(all_of(pc >= IDLE, pc <= GOT_STALE, timer >= 0,
                     ite(pc == REBUILDING, timer <= cfg.rebuild, timer == 0))
              for pc, timer in zip(s.pc, s.timer, strict=True)),
            s.window >= 0, s.window <= cfg.stale_while_revalidate,
            s.refresh >= NO_REFRESH, s.refresh <= cfg.rebuild,
            s.starts >= 0, s.starts <= cfg.requests,
        )

    def observe(self, s: SwrState) -> Observation:
        return Observation(
            rebuilding=count(pc == REBUILDING for pc in s.pc) + ite(s.refresh != NO_REFRESH,
                                                                    1, 0),
            rebuild_starts=s.starts,
            foreign_release=None,
            cache_filled=s.fresh,
            unserved=count(negate(any_of(*(pc == d for d in DONE))) for pc in s.pc),
        )

    def truncated(self, s: SwrState) -> bool:
        return False

    def describe(self, s: SwrState) -> dict[str, str]:
        columns = {f"r{r}": self._describe_request(s, r) for r in range(self.cfg.requests)}
        columns["value"] = "fresh" if s.fresh else (f"stale ({s.window} left)" if s.window
                                                     else "expired")
        columns["refresh"] = "-" if s.refresh == NO_REFRESH else f"{s.refresh}/{self.cfg.rebuild}"
        columns["starts"] = str(s.starts)
        return columns

    def invariants(self) -> tuple[Invariant, ...]:
        """No candidates: swr's holding claims (SERVED) are progress, not induction, claims."""
        return ()

    def canonical(self, s: SwrState) -> SwrState:
        """Requests are interchangeable: sort them by program counter and timer."""
        order = sorted(range(self.cfg.requests), key=lambda r: (s.pc[r], s.timer[r]))
        return replace(s, pc=tuple(s.pc[r] for r in order),
                       timer=tuple(s.timer[r] for r in order))

    def _goto(self, s: SwrState, r: int, pc: PC) -> SwrState:
        return replace(s, pc=set_at(s.pc, r, pc), timer=set_at(s.timer, r, 0))

    def _due_work(self, s: SwrState) -> Bool:
        """A fetch or the refresh is due: no tick passes until it completes."""
        return any_of(s.refresh == self.cfg.rebuild, *(
            all_of(pc == REBUILDING, timer == self.cfg.rebuild)
            for pc, timer in zip(s.pc, s.timer, strict=True)))

    def _describe_request(self, s: SwrState, r: int) -> str:
        pc = PC(s.pc[r])
        if pc == REBUILDING:
            return f"fetch {s.timer[r]}/{self.cfg.rebuild}"
        return {IDLE: "-", GOT_VALUE: "value", GOT_STALE: "stale"}[pc]


def build(params: Mapping[str, ParamValue], name: str = "swr") -> SwrModel:
    """The ``swr`` model for complete, validated parameters."""
    return SwrModel(SwrConfig(**dict(params)), params, name=name)  # type: ignore[arg-type]
