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
from typing import ClassVar

from herdproof.models import environment, policy, program
from herdproof.models import memcached_item as mi
from herdproof.models.core import Invariant
from herdproof.models.errors import InvalidParameter
from herdproof.models.memcached_item import (
    Item,  # the item's semantics live there; re-exported here
)
from herdproof.models.narration import Say, answer, call, note
from herdproof.models.observation import Observation
from herdproof.models.ops import Bool, Int, all_of, any_of, count, implies, ite, negate, set_at
from herdproof.models.params import Param, ParamValue
from herdproof.models.program import RequestAction, Send, Step, Timer
from herdproof.models.symmetry import Symmetry

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
    *program.environment_params(writers=1),
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
#: How ``describe`` shows each label, indexed by :class:`PC`.
SHORT = ("-", "W rebuild", "Z wait", "value", "stale", "crashed")


@dataclass(frozen=True, slots=True)
class MetaConfig:
    """The parameters of one instance: the client's flags, the item's TTLs, the environment;
    ``stub_ttl``, ``rebuild`` and ``wait`` may be z3 terms in symbolic runs."""

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
        if params["recache"] and not params["value_ttl"]:
            raise InvalidParameter("parameter `recache` of memcached-meta needs value_ttl > 0: "
                                   "a value that never expires has no remaining TTL to compare")
        return cls(**dict(params))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class MetaState(program.RequestsState):
    """One moment of the race: the requests, the item, the database version.

    ``cas_seen[r]`` is the CAS id r's winning ``mg`` returned; ``seen[r]`` the DB version its
    rebuild read; ``timer``/``held`` as in every policy (elapsed rebuild or remaining sleep).
    """

    cas_seen: tuple[Int, ...]
    item: Item


class Hit(RequestAction):
    """Request r's mg returns a fresh value (with or without Z); enabled when r is about to mg,
    the item holds a value not marked X, and no early-recache win is up for grabs."""


class WinStub(RequestAction):
    """Request r's mg misses, vivifies a stub (N) and gets W, then queries the database;
    enabled when r is about to mg and the key is absent."""


class WinRecache(RequestAction):
    """Request r's mg gets W on an existing item (stale after md I, or R's early recache) and
    queries the database; enabled when no win was handed out for the item yet."""


class GotZ(RequestAction):
    """Request r's mg finds a stub whose win is taken (Z): r sleeps, then retries; enabled when
    r is about to mg and the item is a won stub."""


class ServeStale(RequestAction):
    """Request r's mg gets a value marked X with Z and serves it marked stale; enabled when the
    item's value is stale and its win is taken."""


class Store(RequestAction):
    """Winner r's ms stores the version it read; enabled when due and (with C<cas>) the item is
    present with the CAS r's mg returned."""


class StoreRejected(RequestAction):
    """Winner r's ms C<cas> fails (EX: the CAS changed; NF: the item expired); r serves the
    value it read. Enabled when due and the CAS no longer matches."""


# -- the program: one request, step by step ------------------------------------------------
#
# "About to mg" is two places of the program: a request that has not arrived (IDLE) and one
# whose sleep after a Z is over (SLEEPING with its timer run down). An IDLE request's timer is
# always 0, so "timer == 0" is the whole of that condition beyond the labels.

MEMCACHED, DB = "memcached", "DB"
ABOUT_TO_MG = (IDLE, SLEEPING)
MG = "mg k v c N<stub_ttl> [R<recache>]"
MS = "ms k S<n> C<cas> (cas=on) or ms k S<n> (cas=off)"


def _mg(reply: str) -> tuple[Say, ...]:
    return (call(MEMCACHED, "mg key v"), answer(MEMCACHED, reply))


def _ms(reply: str) -> tuple[Say, ...]:
    return (answer(DB, "rows (rebuild done)"),
            call(MEMCACHED, "ms key value C(cas)", only="with_cas"),
            call(MEMCACHED, "ms key value", only="without_cas"),
            answer(MEMCACHED, reply))


def _slept(s: MetaState, r: int) -> Bool:
    """Beyond the labels, "about to mg": a sleep after a Z is over (IDLE's timer is 0)."""
    return s.timer[r] == 0


def _with_winners(cfg: MetaConfig) -> bool:
    return bool(cfg.writers or cfg.recache)


def _with_writers(cfg: MetaConfig) -> bool:
    return bool(cfg.writers)


def _with_cas(cfg: MetaConfig) -> bool:
    return cfg.cas


def _without_cas(cfg: MetaConfig) -> bool:
    return not cfg.cas


# What each step sends to a real memcached (replay --memcached): the flags as the client sends
# them, R left off when recache is 0, T when value_ttl is 0 (never expires).
MG_SENDS = (Send("mg", "k", flags="v c N<stub_ttl> R<recache>"),)
MS_SENDS = (Send("ms", "k", value="seen", cas="cas_seen", flags="T<value_ttl>", when=_with_cas),
            Send("ms", "k", value="seen", flags="T<value_ttl>", when=_without_cas))


STEPS: tuple[Step[MetaState], ...] = (
    Step(Hit, at=ABOUT_TO_MG, command=MG, sends=MG_SENDS, says=_mg("value (hit)"),
         guard=lambda m, s, r: all_of(_slept(s, r), s.item.valued, negate(s.item.stale),
                                      negate(m.win_up_for_grabs(s.item))),
         effect=lambda m, s, r: m.end(s, r, GOT_VALUE)),
    Step(WinStub, at=ABOUT_TO_MG, command=MG, sends=MG_SENDS,
         says=_mg("EN W: a stub is created and you win the rebuild"),
         guard=lambda m, s, r: all_of(_slept(s, r), negate(s.item.present)),
         effect=lambda m, s, r: m.start_rebuild(replace(s, item=mi.vivify(
             s.item, m.cfg.stub_ttl, fresh_cas=s.item.cas + 1)), r)),
    Step(GotZ, at=ABOUT_TO_MG, command=MG, sends=MG_SENDS,
         says=(*_mg("Z: another request won"), note("waits {wait} tick(s), then retries")),
         guard=lambda m, s, r: all_of(_slept(s, r), mi.is_stub(s.item), s.item.won),
         effect=lambda m, s, r: m.goto(s, r, SLEEPING, timer=m.cfg.wait)),
    Step(WinRecache, at=ABOUT_TO_MG, when=_with_winners, command=MG, sends=MG_SENDS,
         says=_mg("W: you win the recache"),
         guard=lambda m, s, r: all_of(_slept(s, r), m.win_up_for_grabs(s.item)),
         effect=lambda m, s, r: m.start_rebuild(replace(s, item=mi.hand_out_win(s.item)), r)),
    Step(ServeStale, at=ABOUT_TO_MG, when=_with_writers, command=MG, sends=MG_SENDS,
         says=_mg("X Z: a stale value, another request is rebuilding"),
         guard=lambda m, s, r: all_of(_slept(s, r), s.item.valued, s.item.stale,
                                      s.item.won),
         effect=lambda m, s, r: m.end(s, r, GOT_STALE)),
    Step(Store, at=REBUILDING, command=MS, sends=MS_SENDS, says=_ms("HD: stored"),
         guard=lambda m, s, r: all_of(m.completes(s, r), m.cas_matches(s, r)),
         effect=lambda m, s, r: m.end(replace(s, item=mi.store(
             s.item, s.seen[r], m.cfg.value_ttl, fresh_cas=s.item.cas + 1)), r, GOT_VALUE)),
    Step(StoreRejected, at=REBUILDING, when=_with_cas, command="ms k S<n> C<cas>", sends=MS_SENDS,
         says=_ms("EX or NF: not stored"),
         guard=lambda m, s, r: all_of(m.completes(s, r), negate(m.cas_matches(s, r))),
         effect=lambda m, s, r: m.end(s, r, GOT_VALUE)),
)


class MetaModel(program.ProgramModel[MetaConfig, MetaState]):
    """The ``memcached-meta`` transition system for one configuration, compiled from
    :data:`STEPS`."""

    STEPS = STEPS
    TIMERS: ClassVar[Mapping[int, Timer]] = {REBUILDING: Timer(up=True, duration="rebuild"),
                                              SLEEPING: Timer(up=False, duration="wait")}
    WORK = REBUILDING
    DONE = DONE
    ERRORS = (CRASHED,)
    PARTICIPANTS = (MEMCACHED, DB)
    MEMCACHED_KEYS = (("k", "item"),)
    ENVIRONMENT_SENDS: ClassVar[Mapping[str, tuple[Send, ...]]] = {
        "Pause": (), "Crash": (), "Write": (Send("md", "k", flags="I"),)}

    # -- the contract ------------------------------------------------------------------

    def initial_states(self) -> tuple[MetaState, ...]:
        n = self.cfg.requests
        return (MetaState(pc=(IDLE,) * n, timer=(0,) * n, held=(False,) * n, seen=(0,) * n,
                          cas_seen=(0,) * n, item=Item(), db=0, starts=0, crashed=0),)

    def in_domain(self, s: MetaState) -> Bool:
        cfg = self.cfg
        item = s.item
        per_request = [
            all_of(
                pc >= IDLE, pc <= CRASHED, self.timer_in_domain(pc, timer, held),
                seen >= 0, seen <= s.db, cas_seen >= 0, cas_seen <= item.cas,
            )
            for pc, timer, held, seen, cas_seen in zip(s.pc, s.timer, s.held, s.seen,
                                                       s.cas_seen, strict=True)
        ]
        return all_of(
            *per_request,
            item.ttl >= 0, any_of(item.ttl <= cfg.stub_ttl, item.ttl <= cfg.value_ttl),
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
        return self.observation(s, fresh_value, cached=item.version)

    def describe(self, s: MetaState) -> dict[str, str]:
        columns = {f"r{r}": self._describe_request(s, r) for r in range(self.cfg.requests)}
        columns["item"] = _describe_item(s.item)
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

    def symmetry(self) -> Symmetry:
        """The symmetry :meth:`canonical` reduces by, as data (for engines that generate a
        model, such as SPIN)."""
        return Symmetry(fields=("pc", "timer", "held", "seen", "cas_seen"),
                        groups=(tuple(range(self.cfg.requests)),))

    def canonical(self, s: MetaState) -> MetaState:
        """Requests are interchangeable: sort them by everything that distinguishes them."""
        return self.sort_requests(s, "pc", "timer", "held", "seen", "cas_seen")

    # -- the steps of the program --------------------------------------------------------

    def win_up_for_grabs(self, item: Item) -> Bool:
        """The next mg gets W on this item: it is stale (md I re-armed it) or, with R, its
        remaining TTL is below ``recache``; and no W went out for it yet."""
        return mi.win_up_for_grabs(item, recache=self.cfg.recache or None)

    def cas_matches(self, s: MetaState, r: int) -> Bool:
        """``ms k C<cas>`` finds the item with the CAS r's mg returned (any ms, with cas off)."""
        if not self.cfg.cas:
            return True
        return mi.cas_matches(s.item, s.cas_seen[r])

    def start_rebuild(self, s: MetaState, r: int) -> MetaState:
        """Winner r remembers the item's CAS and queries the database for the current version."""
        return replace(self.goto(s, r, REBUILDING), starts=s.starts + 1,
                       seen=set_at(s.seen, r, s.db), cas_seen=set_at(s.cas_seen, r, s.item.cas))

    def end(self, s: MetaState, r: int, outcome: PC) -> MetaState:
        """r ends with ``outcome``: it forgets what its rebuild read."""
        return replace(self.goto(s, r, outcome), held=set_at(s.held, r, False),
                       seen=set_at(s.seen, r, 0), cas_seen=set_at(s.cas_seen, r, 0))

    # -- the environment and the item's clock -------------------------------------------

    def write(self, s: MetaState) -> MetaState:
        """Commit ``db + 1``, then ``md k I``: a present item is marked stale, its win re-armed
        and its CAS bumped; an absent one stays absent (NF)."""
        return replace(s, db=s.db + 1, item=mi.invalidate(s.item, fresh_cas=s.item.cas + 1))

    def crash(self, s: MetaState, r: int) -> MetaState:
        """r's process dies mid-rebuild: it never stores, and its stub is left to expire."""
        crashed = replace(s, crashed=s.crashed + 1, held=set_at(s.held, r, False))
        return self.goto(crashed, r, CRASHED)

    def tick_stores(self, s: MetaState) -> MetaState:
        """An item whose exptime arrives is gone (``exptime <= t``)."""
        return replace(s, item=mi.tick(s.item))

    def items(self, s: MetaState) -> dict[str, Item]:
        """The key's item, as memcached holds it (``replay --memcached``)."""
        return {"k": s.item}

    # -- narration -------------------------------------------------------------------------

    def facts(self, before: MetaState, after: MetaState, r: int | None) -> dict[str, str]:
        """Whether the winner's store carries ``C<cas>``."""
        cas = self.cfg.cas
        return {"with_cas": "yes" if cas else "", "without_cas": "" if cas else "yes"}

    def _describe_request(self, s: MetaState, r: int) -> str:
        """``W rebuild 1/2 v0 cas 3 paused`` for a winner, ``Z wait 1`` for a sleeper."""
        pc = PC(s.pc[r])
        if pc == REBUILDING:
            read = f" v{s.seen[r]}" if self.cfg.writers else ""
            cas = f" cas {s.cas_seen[r]}" if self.cfg.cas else ""
            paused = " paused" if s.held[r] else ""
            return f"{SHORT[pc]} {s.timer[r]}/{self.cfg.rebuild}{read}{cas}{paused}"
        return f"{SHORT[pc]} {s.timer[r]}" if pc == SLEEPING else SHORT[pc]


def _describe_item(item: Item) -> str:
    """``v1 X W-sent ttl 2 cas 4``: the value's version (or a stub), its flags, TTL and CAS."""
    if not item.present:
        return f"absent cas {item.cas}"
    label = f"v{item.version}" if item.valued else "stub"
    label += " X" if item.stale else ""
    label += " W-sent" if item.won else ""
    label += f" ttl {item.ttl}" if item.ttl else ""
    return f"{label} cas {item.cas}"


def build(params: Mapping[str, ParamValue], name: str = "memcached-meta") -> MetaModel:
    """The ``memcached-meta`` model for complete, validated parameters."""
    return MetaModel(MetaConfig.from_params(params), params, name=name)


SPEC = policy.PolicySpec(
    "memcached-meta", "memcached 1.6 meta commands: mg N vivifies a stub and hands W to one "
    "client, Z to the rest; md I marks stale; ms C<cas>", PARAMS, build)
