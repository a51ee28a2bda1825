"""``lease``: Facebook's memcache leases (Nishtala et al., "Scaling Memcache at Facebook",
NSDI 2013, section 3.2.1), against stale sets and thundering herds.

The protocol, as the paper gives it:

- A ``get`` that misses returns a *lease*: a 64-bit token bound to the key. The client queries
  the database and ``set``s the value with the token; memcached accepts the set only if the
  token is still valid.
- A ``delete`` (the look-aside write path: commit to the database, then delete the key)
  invalidates the outstanding token, so a filler that read the old version before the delete
  has its set rejected: no stale set.
- Thundering herds: memcached hands out a token for a key at most once every
  ``lease_window`` ticks (10 seconds at Facebook). A miss inside the window gets a "wait and
  retry" answer; the client sleeps ``wait`` ticks and ``get``s again, normally finding the
  value the token holder set.
- ``stale_values``: a deleted value moves to a recently-deleted area for a short time; a miss
  that gets no token may be answered with that value, marked stale, instead of waiting.

With ``leases=off`` the policy is the plain look-aside cache: every miss queries the database and
every set succeeds (the stale-set baseline).

What the paper leaves open, made a parameter:

- ``delete_clears_window``: whether a delete restarts the rate limit, so the next miss gets a
  new token at once (on), or the window keeps running and misses wait it out (off).
- ``new_token_voids_old``: whether issuing a token (after the window ran out) invalidates the
  one still outstanding (on: memcached keeps one token per key), or both remain valid (off).

What is abstracted away, and why that is safe:

- One key; the token is modelled as "request r holds a valid token" rather than a 64-bit
  number: all the protocol does with the number is compare it for equality with the one the
  server last issued, which a per-request validity flag decides the same way.
- A miss that wins a token starts the database query in the same step; the query's version is
  read then. A delay in between is a pause before the write, which ``pause`` models.
- The recently-deleted value lives until the key is filled again: the paper gives no flush
  time, and a longer life only adds stale answers, which is what the variant offers.
- The set's value does not expire again within a run (as in ``stack``).

Meant to fail: FRESH with ``leases=off`` (a slow filler sets the version it read before the
writer's delete); ONE when the token holder takes longer than ``lease_window`` (a second token
is issued once the window runs out: still at most one token per window), and ONE after a
delete (the delete voids the token, and the next miss rightly queries the database again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import IntEnum

from herdproof.models import environment
from herdproof.models.clock import Tick
from herdproof.models.core import Action, Invariant
from herdproof.models.environment import Crash, Pause, Write
from herdproof.models.observation import Observation, waiting
from herdproof.models.ops import (
    Bool,
    Int,
    all_of,
    any_of,
    count,
    implies,
    is_symbolic,
    ite,
    maximum,
    negate,
    set_at,
)
from herdproof.models.params import Param, ParamValue
from herdproof.models.policy import PolicyModel

PARAMS: tuple[Param, ...] = (
    Param("requests", int, 2, "concurrent requests for the key", minimum=1),
    Param("leases", bool, True, "memcache leases (off: the plain look-aside cache)"),
    Param("lease_window", int, 3, "ticks after a token is issued during which no other is",
          minimum=1, timing=True),
    Param("rebuild", int, 2, "rebuild duration in ticks", minimum=1, timing=True),
    Param("wait", int, 1, "ticks a request told to wait sleeps before it GETs again",
          minimum=0, timing=True),
    Param("stale_values", bool, False, "a miss without a token gets the recently deleted value"),
    Param("delete_clears_window", bool, True, "a delete lets the next miss get a token at once"),
    Param("new_token_voids_old", bool, True, "issuing a token invalidates the outstanding one"),
    environment.PAUSE,
    environment.CRASH,
    environment.CRASHES,
    replace(environment.WRITERS, default=1),
)


class PC(IntEnum):
    """Where a request is in its program."""

    IDLE = 0        # not arrived yet
    REBUILDING = 1  # holds a token (or, without leases, just missed): querying the database
    SLEEPING = 2    # told to wait: sleeping, then GETs again
    GOT_VALUE = 3   # ended with the value
    GOT_STALE = 4   # ended with the recently deleted value, marked stale
    CRASHED = 5     # its process died


IDLE, REBUILDING, SLEEPING, GOT_VALUE, GOT_STALE, CRASHED = tuple(PC)
DONE = (GOT_VALUE, GOT_STALE, CRASHED)
SHORT = {IDLE: "-", REBUILDING: "rebuild", SLEEPING: "wait", GOT_VALUE: "value",
         GOT_STALE: "stale", CRASHED: "crashed"}


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    """The parameters of one instance; timing constants may be z3 terms in symbolic runs."""

    requests: int
    leases: bool
    lease_window: Int
    rebuild: Int
    wait: Int
    stale_values: bool
    delete_clears_window: bool
    new_token_voids_old: bool
    pause: Int
    crash: bool
    crashes: int
    writers: int

    @classmethod
    def from_params(cls, params: Mapping[str, ParamValue]) -> LeaseConfig:
        return cls(**dict(params))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class LeaseState:
    """One moment of the race.

    ``timer[r]``: elapsed rebuild ticks while REBUILDING, remaining sleep while SLEEPING, else 0.
    ``valid[r]``: memcached still accepts r's token. ``window``: ticks until memcached issues
    another token (0: the next miss gets one). ``deleted``: a recently deleted value is kept for
    stale answers. ``db``/``cached``/``seen``: versions (see :mod:`models.environment`).
    """

    pc: tuple[Int, ...]
    timer: tuple[Int, ...]
    held: tuple[Bool, ...]
    seen: tuple[Int, ...]
    valid: tuple[Bool, ...]
    filled: Bool
    cached: Int
    window: Int
    deleted: Bool
    db: Int
    starts: Int
    crashed: Int


@dataclass(frozen=True, slots=True)
class Hit(Action):
    """Request r GETs and hits; enabled when r is about to GET and the key holds a value."""

    r: int


@dataclass(frozen=True, slots=True)
class Miss(Action):
    """Request r GETs, misses and queries the database (no leases); enabled on a miss."""

    r: int


@dataclass(frozen=True, slots=True)
class WinLease(Action):
    """Request r misses and is issued a token, then queries the database; enabled on a miss
    when no token was issued in the last ``lease_window`` ticks."""

    r: int


@dataclass(frozen=True, slots=True)
class ToldToWait(Action):
    """Request r misses inside the window and is told to wait and retry; enabled on such a miss
    with no stale value to offer."""

    r: int


@dataclass(frozen=True, slots=True)
class GetStale(Action):
    """Request r misses inside the window and is served the recently deleted value, marked
    stale; enabled on such a miss with ``stale_values`` and a deleted value kept."""

    r: int


@dataclass(frozen=True, slots=True)
class Fill(Action):
    """Request r sets the value with its token and memcached accepts it; enabled when r's
    rebuild is due and its token is valid (always, without leases)."""

    r: int


@dataclass(frozen=True, slots=True)
class FillRejected(Action):
    """Request r's set carries a token memcached no longer accepts (a delete or a newer token
    voided it); r serves the value it read. Enabled when due with an invalid token."""

    r: int


ACTION_TYPES: tuple[type[Action], ...] = (
    Tick, Write, Hit, Miss, WinLease, ToldToWait, GetStale, Fill, FillRejected, Pause, Crash)


class LeaseModel(PolicyModel[LeaseConfig]):
    """The ``lease`` transition system for one configuration."""

    ACTION_TYPES = ACTION_TYPES

    # -- the contract ------------------------------------------------------------------

    def initial_states(self) -> tuple[LeaseState, ...]:
        n = self.cfg.requests
        return (LeaseState(pc=(IDLE,) * n, timer=(0,) * n, held=(False,) * n, seen=(0,) * n,
                           valid=(False,) * n, filled=False, cached=0, window=0,
                           deleted=False, db=0, starts=0, crashed=0),)

    def enabled(self, s: LeaseState, a: Action) -> Bool:
        cfg = self.cfg
        if isinstance(a, Tick):
            return self._urgent_free(s)
        if isinstance(a, Write):
            return environment.may_write(s.db, cfg.writers)
        r: int = a.r  # type: ignore[attr-defined]
        pc = s.pc[r]
        match a:
            case Hit():
                return all_of(self._about_to_get(s, r), s.filled)
            case Miss():
                return all_of(self._about_to_get(s, r), negate(s.filled))
            case WinLease():
                return all_of(self._about_to_get(s, r), negate(s.filled), s.window == 0)
            case ToldToWait():
                return all_of(self._about_to_get(s, r), negate(s.filled), s.window > 0,
                              negate(self._stale_on_offer(s)))
            case GetStale():
                return all_of(self._about_to_get(s, r), negate(s.filled), s.window > 0,
                              self._stale_on_offer(s))
            case Fill():
                return all_of(pc == REBUILDING, self._completes(s, r), self._accepts(s, r))
            case FillRejected():
                return all_of(pc == REBUILDING, self._completes(s, r),
                              negate(self._accepts(s, r)))
            case Pause():
                return all_of(pc == REBUILDING, environment.may_pause(
                    s.timer[r], cfg.rebuild, cfg.pause, s.held[r]))
            case Crash():
                return all_of(pc == REBUILDING,
                              environment.may_crash(
                                  s.crashed, environment.crash_bound(cfg.crash, cfg.crashes)))
        raise TypeError(f"lease has no action {a!r}")

    def apply(self, s: LeaseState, a: Action) -> LeaseState:
        cfg = self.cfg
        if isinstance(a, Tick):
            return self._tick(s)
        if isinstance(a, Write):
            return self._write(s)
        r: int = a.r  # type: ignore[attr-defined]
        match a:
            case Hit():
                return self._end(s, r, GOT_VALUE)
            case Miss():
                return self._start_rebuild(s, r)
            case WinLease():
                others = ite(cfg.new_token_voids_old, (False,) * cfg.requests, s.valid)
                leased = replace(s, valid=set_at(others, r, True), window=cfg.lease_window)
                return self._start_rebuild(leased, r)
            case ToldToWait():
                return self._goto(s, r, SLEEPING, timer=cfg.wait)
            case GetStale():
                return self._end(s, r, GOT_STALE)
            case Fill():
                filled = replace(s, filled=True, cached=s.seen[r], deleted=False)
                return self._end(filled, r, GOT_VALUE)
            case FillRejected():
                return self._end(s, r, GOT_VALUE)
            case Pause():
                return replace(s, held=set_at(s.held, r, True))
            case Crash():
                # the token stays outstanding: memcached cannot know its holder died
                crashed = replace(s, crashed=s.crashed + 1)
                return replace(self._goto(crashed, r, CRASHED), held=set_at(s.held, r, False))
        raise TypeError(f"lease has no action {a!r}")

    def in_domain(self, s: LeaseState) -> Bool:
        cfg = self.cfg
        per_request = [
            all_of(
                pc >= IDLE, pc <= CRASHED,
                ite(pc == REBUILDING,
                    environment.elapsed_in_domain(timer, cfg.rebuild, cfg.pause, held),
                    all_of(negate(held), ite(pc == SLEEPING,
                                             all_of(timer >= 0, timer <= cfg.wait),
                                             timer == 0))),
                seen >= 0, seen <= s.db,
                implies(valid, all_of(cfg.leases, any_of(pc == REBUILDING, pc == CRASHED))),
            )
            for pc, timer, held, seen, valid in zip(s.pc, s.timer, s.held, s.seen, s.valid,
                                                    strict=True)
        ]
        return all_of(
            *per_request,
            s.window >= 0, s.window <= ite(cfg.leases, cfg.lease_window, 0),
            implies(s.deleted, all_of(cfg.stale_values, negate(s.filled))),
            s.db >= 0, s.db <= cfg.writers, s.cached >= 0, s.cached <= s.db,
            s.starts >= 0, s.starts <= cfg.requests,
            s.crashed >= 0, s.crashed <= environment.crash_bound(cfg.crash, cfg.crashes),
        )

    def observe(self, s: LeaseState) -> Observation:
        return Observation(
            rebuilding=count(pc == REBUILDING for pc in s.pc),
            rebuild_starts=s.starts,
            foreign_release=None,
            cache_filled=s.filled,
            unserved=count(negate(any_of(*(pc == d for d in DONE))) for pc in s.pc),
            waiting=waiting(s.pc, IDLE, DONE),
            stale=environment.stale(s.filled, s.cached, s.db) if self.cfg.writers else None,
        )

    def describe(self, s: LeaseState) -> dict[str, str]:
        columns = {f"r{r}": self._describe_request(s, r) for r in range(self.cfg.requests)}
        if self.cfg.leases:
            columns["window"] = f"{s.window} left" if s.window else "open"
        columns["cache"] = f"v{s.cached}" if s.filled else "empty"
        if self.cfg.stale_values and s.deleted:
            columns["cache"] += " (stale kept)"
        if self.cfg.writers:
            columns["db"] = f"v{s.db}"
        columns["starts"] = str(s.starts)
        return columns

    def invariants(self) -> tuple[Invariant, ...]:
        """Candidate facts for induction proofs; the SMT engine keeps the inductive ones.

        - leased-read: a rebuilder whose token is still valid read the newest version (every
          delete since its read voided the token).
        - lease-life: a rebuilder holding a token issued ``timer`` ticks ago keeps the window
          closed for ``lease_window - timer`` more ticks (while no delete clears it).
        - token-holders: at most one valid token is outstanding (with ``new_token_voids_old``).
        - valid-holders, one-rebuilder: every rebuilder holds a valid token, and there is at
          most one (while the window outlives the rebuild and no delete voids tokens).
        - starts: rebuild starts are the requests rebuilding now, or one once the key is filled
          (without writers and crashes).
        """
        cfg = self.cfg
        n = range(cfg.requests)
        found = [
            Invariant("leased-read", lambda s: all_of(*(implies(
                all_of(s.pc[r] == REBUILDING, s.valid[r]), s.seen[r] >= s.db) for r in n))),
            Invariant("lease-life", lambda s: all_of(*(implies(
                s.pc[r] == REBUILDING, s.window + s.timer[r] == cfg.lease_window) for r in n))),
            Invariant("token-holders", lambda s: count(s.valid) <= 1),
            Invariant("valid-holders", lambda s: all_of(*(implies(
                s.pc[r] == REBUILDING, s.valid[r]) for r in n))),
            Invariant("one-rebuilder", lambda s: count(pc == REBUILDING for pc in s.pc) <= 1),
            Invariant("starts", lambda s: s.starts == ite(
                s.filled, 1, count(pc == REBUILDING for pc in s.pc))),
        ]
        return tuple(found)

    def canonical(self, s: LeaseState) -> LeaseState:
        """Requests are interchangeable: sort them by everything that distinguishes them."""
        order = sorted(range(self.cfg.requests), key=lambda r: (
            s.pc[r], s.timer[r], s.held[r], s.seen[r], s.valid[r]))
        return replace(s, pc=tuple(s.pc[r] for r in order),
                       timer=tuple(s.timer[r] for r in order),
                       held=tuple(s.held[r] for r in order),
                       seen=tuple(s.seen[r] for r in order),
                       valid=tuple(s.valid[r] for r in order))

    # -- the steps of the program --------------------------------------------------------

    def _about_to_get(self, s: LeaseState, r: int) -> Bool:
        """r arrives, or its sleep after "wait and retry" is over: its next step is a GET."""
        return any_of(s.pc[r] == IDLE, all_of(s.pc[r] == SLEEPING, s.timer[r] == 0))

    def _stale_on_offer(self, s: LeaseState) -> Bool:
        if not self.cfg.stale_values:
            return False
        return s.deleted

    def _completes(self, s: LeaseState, r: int) -> Bool:
        return all_of(environment.due(s.timer[r], self.cfg.rebuild), negate(s.held[r]))

    def _accepts(self, s: LeaseState, r: int) -> Bool:
        """memcached takes r's set: its token is valid (any set, without leases)."""
        if not self.cfg.leases:
            return True
        return s.valid[r]

    def _goto(self, s: LeaseState, r: int, pc: PC, timer: Int = 0) -> LeaseState:
        return replace(s, pc=set_at(s.pc, r, pc), timer=set_at(s.timer, r, timer))

    def _start_rebuild(self, s: LeaseState, r: int) -> LeaseState:
        """r queries the database and reads the current version."""
        return replace(self._goto(s, r, REBUILDING), starts=s.starts + 1,
                       seen=set_at(s.seen, r, s.db))

    def _end(self, s: LeaseState, r: int, outcome: PC) -> LeaseState:
        return replace(self._goto(s, r, outcome), held=set_at(s.held, r, False),
                       seen=set_at(s.seen, r, 0), valid=set_at(s.valid, r, False))

    # -- the environment -----------------------------------------------------------------

    def _write(self, s: LeaseState) -> LeaseState:
        """Commit ``db + 1``, then ``delete key``: the delete voids every outstanding token,
        keeps the old value for stale answers, and may reopen the window."""
        cfg = self.cfg
        voided = (False,) * cfg.requests if cfg.leases else s.valid
        window = 0 if cfg.delete_clears_window else s.window
        kept = any_of(s.filled, s.deleted) if cfg.stale_values else False
        return replace(s, db=s.db + 1, filled=False, valid=voided, window=window, deleted=kept)

    def _urgent_free(self, s: LeaseState) -> Bool:
        return negate(any_of(*(
            all_of(pc == REBUILDING, environment.holds_the_clock(timer, self.cfg.rebuild, held))
            for pc, timer, held in zip(s.pc, s.timer, s.held, strict=True))))

    def _tick(self, s: LeaseState) -> LeaseState:
        timers = tuple(
            ite(pc == REBUILDING, timer + 1,
                ite(pc == SLEEPING, maximum(timer - 1, 0), timer))
            for pc, timer in zip(s.pc, s.timer, strict=True))
        return replace(s, timer=timers, held=(False,) * self.cfg.requests,
                       window=maximum(s.window - 1, 0))

    # -- actions and labels ----------------------------------------------------------------

    def _build_actions(self) -> tuple[Action, ...]:
        cfg = self.cfg
        kinds: list[type[Action]] = [Hit]
        if cfg.leases:
            kinds += [WinLease, ToldToWait]
            if cfg.stale_values:
                kinds.append(GetStale)
            kinds += [Fill, FillRejected]
        else:
            kinds += [Miss, Fill]
        if is_symbolic(cfg.pause) or cfg.pause > 0:
            kinds.append(Pause)
        if environment.crash_bound(cfg.crash, cfg.crashes):
            kinds.append(Crash)
        per_request = [kind(r=r) for r in range(cfg.requests)  # type: ignore[call-arg]
                       for kind in kinds]
        writes: tuple[Action, ...] = (Write(),) if cfg.writers else ()
        return (Tick(), *writes, *per_request)

    def _describe_request(self, s: LeaseState, r: int) -> str:
        pc = PC(s.pc[r])
        label = SHORT[pc]
        if pc == REBUILDING:
            label = f"rebuild {s.timer[r]}/{self.cfg.rebuild}"
            if self.cfg.writers:
                label += f" v{s.seen[r]}"
            if self.cfg.leases:
                label += " token" if s.valid[r] else " void"
            if s.held[r]:
                label += " paused"
        elif pc == SLEEPING:
            label = f"wait {s.timer[r]}"
        return label


def build(params: Mapping[str, ParamValue], name: str = "lease") -> LeaseModel:
    """The ``lease`` model for complete, validated parameters."""
    return LeaseModel(LeaseConfig.from_params(params), params, name=name)
