"""``memcached-meta``: open-source memcached 1.6's meta-protocol anti-stampede flags.

Commands modelled (each atomic in memcached, so each is one step):

- ``mg k v c N<stub_ttl>`` (with ``R<recache>`` when ``recache > 0``): get the value and its
  CAS. On a miss, ``N`` *vivifies* a 0-byte stub item with TTL ``stub_ttl`` and returns ``W``
  (you won: recache it) to exactly one client; every later ``mg`` of the stub gets ``Z`` (a win
  was already handed out): the client sleeps ``wait`` ticks and retries. ``R<secs>`` hands a
  ``W`` to one client when the value's remaining TTL is below ``secs`` (early recache); the
  others keep getting the value.
- ``ms k S<n> C<cas>`` (``cas=on``) stores only if the item's CAS still equals the one the
  winner's ``mg`` returned; ``ms k S<n>`` (``cas=off``) stores unconditionally.
- ``md k I``, the DB writer's invalidation: marks the item stale (``X``), re-arms the win (the
  next ``mg`` gets ``W`` and the stale value, the ones after it ``X Z`` and the stale value) and
  bumps its CAS. A stale value is served marked stale, never as fresh.
- Expiry follows memcached: an item is gone once ``exptime <= t``; exptime 0 never expires.
  The stub's TTL is therefore the effective lease timeout: a winner that takes longer (or
  crashes) loses its win when the stub expires, and the next ``mg`` vivifies and wins again.

What each command does to the item is :mod:`models.memcached_item` (vivify, the win rules,
``md I``, ``ms``/``ms C``, expiry), the code ``tests/conformance/test_memcached_commands.py``
holds against a real memcached 1.6, together with this policy's scenarios sent command by
command; this module adds the clients' programs around it.

What is abstracted away, and why that is safe:

- One key; the value's bytes are its DB version. The CAS is one global counter (memcached's
  CAS ids are unique and increasing), bumped by every store, vivification and invalidation:
  all ``ms C`` does with it is an equality test against the id its ``mg`` returned.
- A winner's ``mg`` and the start of its DB query are one step (a delay in between is a pause
  before the write, which ``pause`` models); the winner's own caller is served after its store.
- Values stored with ``ms`` never expire (exptime 0) unless ``value_ttl > 0``, which the early
  recache ``R`` needs; ``md`` without ``I`` (a plain delete) is not modelled: with ``N`` it
  behaves like a stub expiry.

Meant to fail: FRESH with ``cas=off`` (the winner read the old version, ``md k I`` marks the
stub stale, the unconditional ``ms`` then stores the old version as fresh); ONE when
``stub_ttl <= rebuild`` (the stub expires under the winner and a second client wins).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import IntEnum

from herdproof.models import environment
from herdproof.models import memcached_item as mi
from herdproof.models.clock import Tick
from herdproof.models.core import Action, Invariant
from herdproof.models.environment import Crash, Pause, Write
from herdproof.models.errors import InvalidParameter
from herdproof.models.memcached_item import (
    Item,  # the item's semantics live there; re-exported here
)
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
    Param("stub_ttl", int, 3, "TTL of the stub mg ... N<ttl> vivifies on a miss (the lease "
          "timeout)", minimum=1, timing=True),
    Param("rebuild", int, 2, "rebuild duration in ticks", minimum=1, timing=True),
    Param("wait", int, 1, "ticks a client that got Z sleeps before it retries",
          minimum=0, timing=True),
    Param("cas", bool, True, "the winner stores with ms k C<cas> (off: plain ms k)"),
    Param("recache", int, 0, "mg ... R<secs>: early-recache win below this remaining TTL "
          "(0: off; needs value_ttl)", minimum=0),
    Param("value_ttl", int, 0, "TTL of stored values (0: never expire)", minimum=0),
    environment.PAUSE,
    environment.CRASH,
    environment.CRASHES,
    replace(environment.WRITERS, default=1),
)


class PC(IntEnum):
    """Where a request is in its program."""

    IDLE = 0        # not arrived yet
    REBUILDING = 1  # got W: querying the database
    SLEEPING = 2    # got Z on a stub: sleeping, then retries mg
    GOT_VALUE = 3   # ended with the value
    GOT_STALE = 4   # ended with the value marked stale (X)
    CRASHED = 5     # its process died


IDLE, REBUILDING, SLEEPING, GOT_VALUE, GOT_STALE, CRASHED = tuple(PC)
DONE = (GOT_VALUE, GOT_STALE, CRASHED)
SHORT = {IDLE: "-", REBUILDING: "rebuild", SLEEPING: "Z wait", GOT_VALUE: "value",
         GOT_STALE: "stale", CRASHED: "crashed"}


@dataclass(frozen=True, slots=True)
class MetaConfig:
    """The parameters of one instance; timing constants may be z3 terms in symbolic runs."""

    requests: int
    stub_ttl: Int
    rebuild: Int
    wait: Int
    cas: bool
    recache: int
    value_ttl: int
    pause: Int
    crash: bool
    crashes: int
    writers: int

    @classmethod
    def from_params(cls, params: Mapping[str, ParamValue]) -> MetaConfig:
        values = dict(params)
        if values["recache"] and not values["value_ttl"]:
            raise InvalidParameter("parameter `recache` of memcached-meta needs value_ttl > 0: "
                                   "a value that never expires has no remaining TTL to compare")
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class MetaState:
    """One moment of the race: the requests, the item, the database version.

    ``cas_seen[r]`` is the CAS id r's winning ``mg`` returned; ``seen[r]`` the DB version its
    rebuild read; ``timer``/``held`` as in every policy (elapsed rebuild or remaining sleep).
    """

    pc: tuple[Int, ...]
    timer: tuple[Int, ...]
    held: tuple[Bool, ...]
    seen: tuple[Int, ...]
    cas_seen: tuple[Int, ...]
    item: Item
    db: Int
    starts: Int
    crashed: Int


@dataclass(frozen=True, slots=True)
class Hit(Action):
    """Request r's mg returns a fresh value (with or without Z); enabled when r is about to mg,
    the item holds a value not marked X, and no early-recache win is up for grabs."""

    r: int


@dataclass(frozen=True, slots=True)
class WinStub(Action):
    """Request r's mg misses, vivifies a stub (N) and gets W, then queries the database;
    enabled when r is about to mg and the key is absent."""

    r: int


@dataclass(frozen=True, slots=True)
class WinRecache(Action):
    """Request r's mg gets W on an existing item (stale after md I, or R's early recache) and
    queries the database; enabled when no win was handed out for the item yet."""

    r: int


@dataclass(frozen=True, slots=True)
class GotZ(Action):
    """Request r's mg finds a stub whose win is taken (Z): r sleeps, then retries; enabled when
    r is about to mg and the item is a won stub."""

    r: int


@dataclass(frozen=True, slots=True)
class ServeStale(Action):
    """Request r's mg gets a value marked X with Z and serves it marked stale; enabled when the
    item's value is stale and its win is taken."""

    r: int


@dataclass(frozen=True, slots=True)
class Store(Action):
    """Winner r's ms stores the version it read; enabled when due and (with C<cas>) the item is
    present with the CAS r's mg returned."""

    r: int


@dataclass(frozen=True, slots=True)
class StoreRejected(Action):
    """Winner r's ms C<cas> fails (EX: the CAS changed; NF: the item expired); r serves the
    value it read. Enabled when due and the CAS no longer matches."""

    r: int


ACTION_TYPES: tuple[type[Action], ...] = (
    Tick, Write, Hit, WinStub, WinRecache, GotZ, ServeStale, Store, StoreRejected, Pause, Crash)


class MetaModel(PolicyModel[MetaConfig]):
    """The ``memcached-meta`` transition system for one configuration."""

    ACTION_TYPES = ACTION_TYPES

    # -- the contract ------------------------------------------------------------------

    def initial_states(self) -> tuple[MetaState, ...]:
        n = self.cfg.requests
        return (MetaState(pc=(IDLE,) * n, timer=(0,) * n, held=(False,) * n, seen=(0,) * n,
                          cas_seen=(0,) * n, item=Item(), db=0, starts=0, crashed=0),)

    def enabled(self, s: MetaState, a: Action) -> Bool:
        cfg = self.cfg
        if isinstance(a, Tick):
            return self._urgent_free(s)
        if isinstance(a, Write):
            return environment.may_write(s.db, cfg.writers)
        r: int = a.r  # type: ignore[attr-defined]
        pc, item = s.pc[r], s.item
        match a:
            case Hit():
                return all_of(self._about_to_get(s, r), item.valued, negate(item.stale),
                              negate(self._win_up_for_grabs(item)))
            case WinStub():
                return all_of(self._about_to_get(s, r), negate(item.present))
            case WinRecache():
                return all_of(self._about_to_get(s, r), self._win_up_for_grabs(item))
            case GotZ():
                return all_of(self._about_to_get(s, r), mi.is_stub(item), item.won)
            case ServeStale():
                return all_of(self._about_to_get(s, r), item.valued, item.stale, item.won)
            case Store():
                return all_of(pc == REBUILDING, self._completes(s, r), self._cas_matches(s, r))
            case StoreRejected():
                return all_of(pc == REBUILDING, self._completes(s, r),
                              negate(self._cas_matches(s, r)))
            case Pause():
                return all_of(pc == REBUILDING, environment.may_pause(
                    s.timer[r], cfg.rebuild, cfg.pause, s.held[r]))
            case Crash():
                return all_of(pc == REBUILDING,
                              environment.may_crash(
                                  s.crashed, environment.crash_bound(cfg.crash, cfg.crashes)))
        raise TypeError(f"memcached-meta has no action {a!r}")

    def apply(self, s: MetaState, a: Action) -> MetaState:
        cfg = self.cfg
        if isinstance(a, Tick):
            return self._tick(s)
        if isinstance(a, Write):
            return self._write(s)
        r: int = a.r  # type: ignore[attr-defined]
        item = s.item
        match a:
            case Hit():
                return self._end(s, r, GOT_VALUE)
            case WinStub():
                stub = mi.vivify(item, cfg.stub_ttl, fresh_cas=item.cas + 1)
                return self._start_rebuild(replace(s, item=stub), r)
            case WinRecache():
                return self._start_rebuild(replace(s, item=mi.hand_out_win(item)), r)
            case GotZ():
                return self._goto(s, r, SLEEPING, timer=cfg.wait)
            case ServeStale():
                return self._end(s, r, GOT_STALE)
            case Store():
                stored = mi.store(item, s.seen[r], cfg.value_ttl, fresh_cas=item.cas + 1)
                return self._end(replace(s, item=stored), r, GOT_VALUE)
            case StoreRejected():
                return self._end(s, r, GOT_VALUE)
            case Pause():
                return replace(s, held=set_at(s.held, r, True))
            case Crash():
                crashed = replace(s, crashed=s.crashed + 1, held=set_at(s.held, r, False))
                return self._goto(crashed, r, CRASHED)
        raise TypeError(f"memcached-meta has no action {a!r}")

    def in_domain(self, s: MetaState) -> Bool:
        cfg = self.cfg
        item = s.item
        per_request = [
            all_of(
                pc >= IDLE, pc <= CRASHED,
                ite(pc == REBUILDING,
                    environment.elapsed_in_domain(timer, cfg.rebuild, cfg.pause, held),
                    all_of(negate(held), ite(pc == SLEEPING,
                                             all_of(timer >= 0, timer <= cfg.wait),
                                             timer == 0))),
                seen >= 0, seen <= s.db, cas_seen >= 0, cas_seen <= item.cas,
            )
            for pc, timer, held, seen, cas_seen in zip(s.pc, s.timer, s.held, s.seen,
                                                       s.cas_seen, strict=True)
        ]
        longest = maximum(cfg.stub_ttl, cfg.value_ttl)
        return all_of(
            *per_request,
            item.ttl >= 0, item.ttl <= longest,
            implies(negate(item.present), all_of(negate(item.valued), negate(item.stale),
                                                 negate(item.won), item.ttl == 0,
                                                 item.version == 0)),
            implies(negate(item.valued), item.version == 0),
            implies(all_of(item.present, negate(item.valued)),
                    all_of(item.ttl > 0, item.ttl <= cfg.stub_ttl)),
            implies(item.valued, item.ttl <= cfg.value_ttl),
            implies(item.stale, s.db > 0),
            item.version >= 0, item.version <= s.db,
            item.cas >= 0, item.cas <= 2 * cfg.requests + cfg.writers,
            s.db >= 0, s.db <= cfg.writers,
            s.starts >= 0, s.starts <= cfg.requests,
            s.crashed >= 0, s.crashed <= environment.crash_bound(cfg.crash, cfg.crashes),
        )

    def observe(self, s: MetaState) -> Observation:
        item = s.item
        fresh_value = all_of(item.present, item.valued, negate(item.stale))
        return Observation(
            rebuilding=count(pc == REBUILDING for pc in s.pc),
            rebuild_starts=s.starts,
            foreign_release=None,
            cache_filled=fresh_value,
            unserved=count(negate(any_of(*(pc == d for d in DONE))) for pc in s.pc),
            waiting=waiting(s.pc, IDLE, DONE),
            stale=environment.stale(fresh_value, item.version, s.db)
            if self.cfg.writers else None,
        )

    def describe(self, s: MetaState) -> dict[str, str]:
        columns = {f"r{r}": self._describe_request(s, r) for r in range(self.cfg.requests)}
        item = s.item
        if not item.present:
            label = "absent"
        else:
            label = f"v{item.version}" if item.valued else "stub"
            label += " X" if item.stale else ""
            label += " W-sent" if item.won else ""
            label += f" ttl {item.ttl}" if item.ttl else ""
        columns["item"] = f"{label} cas {item.cas}"
        if self.cfg.writers:
            columns["db"] = f"v{s.db}"
        columns["starts"] = str(s.starts)
        return columns

    def invariants(self) -> tuple[Invariant, ...]:
        """Candidate facts for induction proofs; the SMT engine keeps the inductive ones.

        - cas-read: a winner whose CAS still matches the item read the newest version (every
          invalidation since its read bumped the CAS).
        - stub-life: a winner's stub is present, won, and has ``stub_ttl - elapsed`` left, with
          the CAS its mg returned (while the stub outlives the rebuild, without writers).
        - one-rebuilder, starts: at most one winner; starts count the winners, or one once the
          key holds a value.
        """
        cfg = self.cfg
        n = range(cfg.requests)
        return (
            Invariant("cas-read", lambda s: all_of(*(implies(
                all_of(s.pc[r] == REBUILDING, s.item.present, s.item.cas == s.cas_seen[r]),
                s.seen[r] >= s.db) for r in n))),
            Invariant("stub-life", lambda s: all_of(*(implies(
                s.pc[r] == REBUILDING,
                all_of(s.item.present, negate(s.item.valued), s.item.won,
                       s.item.cas == s.cas_seen[r],
                       s.item.ttl + s.timer[r] == cfg.stub_ttl)) for r in n))),
            Invariant("one-rebuilder", lambda s: count(pc == REBUILDING for pc in s.pc) <= 1),
            Invariant("starts", lambda s: s.starts == ite(
                s.item.valued, 1, count(pc == REBUILDING for pc in s.pc))),
        )

    def canonical(self, s: MetaState) -> MetaState:
        """Requests are interchangeable: sort them by everything that distinguishes them."""
        order = sorted(range(self.cfg.requests), key=lambda r: (
            s.pc[r], s.timer[r], s.held[r], s.seen[r], s.cas_seen[r]))
        return replace(s, pc=tuple(s.pc[r] for r in order),
                       timer=tuple(s.timer[r] for r in order),
                       held=tuple(s.held[r] for r in order),
                       seen=tuple(s.seen[r] for r in order),
                       cas_seen=tuple(s.cas_seen[r] for r in order))

    # -- the steps of the program --------------------------------------------------------

    def _about_to_get(self, s: MetaState, r: int) -> Bool:
        """r arrives, or its sleep after a Z is over: its next step is an mg."""
        return any_of(s.pc[r] == IDLE, all_of(s.pc[r] == SLEEPING, s.timer[r] == 0))

    def _win_up_for_grabs(self, item: Item) -> Bool:
        """The next mg gets W on this item: it is stale (md I re-armed it) or, with R, its
        remaining TTL is below ``recache``; and no W went out for it yet."""
        return mi.win_up_for_grabs(item, recache=self.cfg.recache or None)

    def _completes(self, s: MetaState, r: int) -> Bool:
        return all_of(environment.due(s.timer[r], self.cfg.rebuild), negate(s.held[r]))

    def _cas_matches(self, s: MetaState, r: int) -> Bool:
        """``ms k C<cas>`` finds the item with the CAS r's mg returned (any ms, with cas off)."""
        if not self.cfg.cas:
            return True
        return mi.cas_matches(s.item, s.cas_seen[r])

    def _goto(self, s: MetaState, r: int, pc: PC, timer: Int = 0) -> MetaState:
        return replace(s, pc=set_at(s.pc, r, pc), timer=set_at(s.timer, r, timer))

    def _start_rebuild(self, s: MetaState, r: int) -> MetaState:
        """Winner r remembers the item's CAS and queries the database for the current version."""
        return replace(self._goto(s, r, REBUILDING), starts=s.starts + 1,
                       seen=set_at(s.seen, r, s.db), cas_seen=set_at(s.cas_seen, r, s.item.cas))

    def _end(self, s: MetaState, r: int, outcome: PC) -> MetaState:
        return replace(self._goto(s, r, outcome), held=set_at(s.held, r, False),
                       seen=set_at(s.seen, r, 0), cas_seen=set_at(s.cas_seen, r, 0))

    # -- the environment -----------------------------------------------------------------

    def _write(self, s: MetaState) -> MetaState:
        """Commit ``db + 1``, then ``md k I``: a present item is marked stale, its win re-armed
        and its CAS bumped; an absent one stays absent (NF)."""
        return replace(s, db=s.db + 1, item=mi.invalidate(s.item, fresh_cas=s.item.cas + 1))

    def _urgent_free(self, s: MetaState) -> Bool:
        return negate(any_of(*(
            all_of(pc == REBUILDING, environment.holds_the_clock(timer, self.cfg.rebuild, held))
            for pc, timer, held in zip(s.pc, s.timer, s.held, strict=True))))

    def _tick(self, s: MetaState) -> MetaState:
        """One tick: timers move, and an item whose exptime arrives is gone (``exptime <= t``)."""
        timers = tuple(
            ite(pc == REBUILDING, timer + 1,
                ite(pc == SLEEPING, maximum(timer - 1, 0), timer))
            for pc, timer in zip(s.pc, s.timer, strict=True))
        return replace(s, timer=timers, held=(False,) * self.cfg.requests,
                       item=mi.tick(s.item))

    # -- actions and labels ----------------------------------------------------------------

    def _build_actions(self) -> tuple[Action, ...]:
        cfg = self.cfg
        kinds: list[type[Action]] = [Hit, WinStub, GotZ]
        if cfg.writers or cfg.recache:
            kinds.append(WinRecache)
        if cfg.writers:
            kinds.append(ServeStale)
        kinds.append(Store)
        if cfg.cas:
            kinds.append(StoreRejected)
        if is_symbolic(cfg.pause) or cfg.pause > 0:
            kinds.append(Pause)
        if environment.crash_bound(cfg.crash, cfg.crashes):
            kinds.append(Crash)
        per_request = [kind(r=r) for r in range(cfg.requests)  # type: ignore[call-arg]
                       for kind in kinds]
        writes: tuple[Action, ...] = (Write(),) if cfg.writers else ()
        return (Tick(), *writes, *per_request)

    def _describe_request(self, s: MetaState, r: int) -> str:
        pc = PC(s.pc[r])
        label = SHORT[pc]
        if pc == REBUILDING:
            label = f"W rebuild {s.timer[r]}/{self.cfg.rebuild}"
            if self.cfg.writers:
                label += f" v{s.seen[r]}"
            if self.cfg.cas:
                label += f" cas {s.cas_seen[r]}"
            if s.held[r]:
                label += " paused"
        elif pc == SLEEPING:
            label = f"Z wait {s.timer[r]}"
        return label


def build(params: Mapping[str, ParamValue], name: str = "memcached-meta") -> MetaModel:
    """The ``memcached-meta`` model for complete, validated parameters."""
    return MetaModel(MetaConfig.from_params(params), params, name=name)
