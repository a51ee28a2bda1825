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
- ``md k I [T<stale_ttl>]``, the DB writer's invalidation: marks the item stale (``X``),
  re-arms the win (the next ``mg`` gets ``W`` and the stale value and recaches it, the ones
  after it ``X Z`` and the stale value, which they serve marked stale, never as fresh) and
  bumps its CAS; ``T`` gives the stale item ``stale_ttl`` ticks to live (0: ``T`` is not sent,
  the item keeps its TTL). The winner's ``ms k C<cas>`` replaces it with a fresh value (the
  stale flag cleared); a second ``md k I`` in between bumps the CAS again, so that store fails
  with ``EX``, and re-arms the win for a second winner. ``invalidation=delete``: the writer
  sends the classic ``delete k`` instead, and the item is gone (a winner's ``ms C`` gets
  ``NF``, the next ``mg`` vivifies).
- Expiry follows memcached: an item is gone once ``exptime <= t``; exptime 0 never expires.
  The stub's TTL is therefore the effective lease timeout: a winner that takes longer (or
  crashes) loses its win when the stub expires, and the next ``mg`` vivifies and wins again.
  After ``md k I T<stale_ttl>`` the stale item's TTL plays that part for its winner.
- The start: by default the key is absent (the cold miss). ``start=value``: it holds ``v0``,
  the database's version, stored with CAS 1 (the store that put it there) and ``start_ttl``
  ticks left (0: never expires; 1: gone at the next tick, so the first ``mg`` after it
  vivifies; below ``recache``: an early-recache win is up for grabs at once).
- Mixed clients: the last ``classic`` requests speak the classic text protocol, as old code
  paths beside a meta client do: ``get k``; on a miss (``END``) they query the database and
  ``set k`` the version they read, unconditionally (no stub, no win, no CAS). ``get`` hits any
  present item and shows no flags, so a classic client that finds a meta client's vivified
  stub is handed its 0 bytes as a hit and serves them as the value (the NOPLACEHOLDER
  violation), and one that finds a stale value serves it as if fresh.

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
- Values stored with ``ms`` (or ``set``) never expire (exptime 0) unless ``value_ttl > 0``,
  which the early recache ``R`` needs; the writer deletes with ``md k I`` or, with
  ``invalidation=delete``, the classic ``delete k`` (``md k`` without ``I`` does the same).
- A classic client's ``get`` and its database query are one step, like a winner's ``mg``; it
  remembers no CAS (``cas_seen`` stays 0). Which requests are classic is fixed by their number
  (the last ones), so requests are interchangeable within each kind only.

Meant to fail: FRESH with ``cas=off`` (the winner read the old version, ``md k I`` marks the
stub stale, the unconditional ``ms`` then stores the old version as fresh), and with a classic
client (its ``set`` cannot carry a CAS); ONE when ``stub_ttl <= rebuild`` (the stub expires
under the winner and a second client wins), when ``stale_ttl <= rebuild`` (the stale item
does), with a second invalidation during the recache (the win is re-armed), and with a classic
client (its miss is nobody's win); NOPLACEHOLDER with a classic client beside meta clients.
Meant to hold: from a warm item, one ``md k I T<stale_ttl>`` with ``stale_ttl > rebuild`` gives
one recache while everybody else is served the stale value (ONE, FRESH with ``C<cas>``), and
with meta clients only nobody serves a placeholder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import ClassVar

from herdproof.models import environment, ops, policy, program
from herdproof.models import memcached_item as mi
from herdproof.models.candidates import Candidate, each_pair, each_request, some_request, whole
from herdproof.models.core import Action, Invariant
from herdproof.models.environment import Crash, Pause
from herdproof.models.errors import InvalidParameter
from herdproof.models.memcached_item import (
    Item,  # the item's semantics live there; re-exported here
)
from herdproof.models.narration import Say, answer, call, note
from herdproof.models.observation import Observation
from herdproof.models.ops import Bool, Int, all_of, any_of, implies, ite, negate
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
    Param("start", str, "absent", "the key at the start: absent (a cold miss) or value (v0 "
          "stored with CAS 1 and start_ttl ticks left)", choices=("absent", "value")),
    Param("start_ttl", int, 0, "ticks the start value has left (0: never expires; 1: gone at "
          "the next tick)", minimum=0),
    Param("stale_ttl", int, 0, "md k I T<stale_ttl>: ticks the writer's invalidation gives the "
          "stale item (0: T not sent, the TTL is kept)", minimum=0, timing=True),
    Param("invalidation", str, "mark", "the writer's invalidation: mark (md k I) or delete "
          "(the classic delete k)", choices=("mark", "delete")),
    Param("classic", int, 0, "how many of the requests (the last ones) use the classic text "
          "protocol: get k, on a miss rebuild and set k", minimum=0),
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
    GOT_EMPTY = 6   # a classic client served a stub's 0 bytes as the value


IDLE, REBUILDING, SLEEPING, GOT_VALUE, GOT_STALE, CRASHED, GOT_EMPTY = tuple(PC)
#: How ``describe`` shows each label, indexed by :class:`PC`.
SHORT = ("-", "W rebuild", "Z wait", "value", "stale", "crashed", "empty (stub)")


@dataclass(frozen=True, slots=True)
class MetaConfig(environment.EnvironmentConfig):
    """The parameters of one instance: the client's flags, the item's TTLs, the environment;
    ``stub_ttl``, ``rebuild`` and ``wait`` may be z3 terms in symbolic runs."""

    requests: int
    stub_ttl: Int
    rebuild: Int
    wait: Int
    cas: bool
    recache: int
    value_ttl: int
    start: str
    start_ttl: int
    stale_ttl: Int
    invalidation: str
    classic: int

    @classmethod
    def from_params(cls, params: Mapping[str, ParamValue]) -> MetaConfig:
        if params["recache"] and not params["value_ttl"]:
            raise InvalidParameter("parameter `recache` of memcached-meta needs value_ttl > 0: "
                                   "a value that never expires has no remaining TTL to compare")
        if int(params["classic"]) > int(params["requests"]):
            raise InvalidParameter(
                f"parameter `classic` of memcached-meta counts requests that use the classic "
                f"protocol, so it can be at most requests={params['requests']}, not "
                f"{params['classic']}")
        if params["start_ttl"] and params["start"] != "value":
            raise InvalidParameter("parameter `start_ttl` of memcached-meta needs start=value: "
                                   "an absent key has no TTL")
        stale_ttl = params["stale_ttl"]
        if params["invalidation"] != "mark" and (ops.is_symbolic(stale_ttl) or stale_ttl):
            raise InvalidParameter("parameter `stale_ttl` of memcached-meta needs "
                                   "invalidation=mark: it is the T flag of md k I, and the "
                                   "classic delete k has none")
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


class ClassicHit(RequestAction):
    """Classic client r's get k returns a value (a stale one unmarked: get shows no flags) and
    r serves it; enabled when r arrives and the item holds a value."""


class ServeEmpty(RequestAction):
    """Classic client r's get k hits a meta client's 0-byte stub, and r serves the empty bytes
    as the value; enabled when r arrives and the item is a stub."""


class ClassicMiss(RequestAction):
    """Classic client r's get k misses (END), and r queries the database; enabled when r
    arrives and the key is absent."""


class ClassicSet(RequestAction):
    """Classic client r's set k stores the version it read, unconditionally (no CAS); enabled
    when its rebuild is due."""


# -- the program: one request, step by step ------------------------------------------------
#
# "About to mg" is two places of the program: a request that has not arrived (IDLE) and one
# whose sleep after a Z is over (SLEEPING with its timer run down). An IDLE request's timer is
# always 0, so "timer == 0" is the whole of that condition beyond the labels.

MEMCACHED, DB = "memcached", "DB"
ABOUT_TO_MG = (IDLE, SLEEPING)
MG = "mg k v c N<stub_ttl> [R<recache>]"
MS = "ms k S<n> C<cas> (cas=on) or ms k S<n> (cas=off)"
GET = "get k (classic text protocol)"
SET = "set k 0 <value_ttl> <n> (classic text protocol)"


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


def _get(reply: str) -> tuple[Say, ...]:
    return (call(MEMCACHED, "get key"), answer(MEMCACHED, reply))


def _with_classic(cfg: MetaConfig) -> bool:
    return cfg.classic > 0


def _marks(cfg: MetaConfig) -> bool:
    return cfg.invalidation == "mark"


def _deletes(cfg: MetaConfig) -> bool:
    return cfg.invalidation == "delete"


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
GET_SENDS = (Send("get", "k"),)
SET_SENDS = (Send("set", "k", value="seen", flags="T<value_ttl>"),)


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
    # the classic clients (the last ``classic`` requests; :meth:`MetaModel.runs` says whose)
    Step(ClassicHit, at=IDLE, when=_with_classic, command=GET, sends=GET_SENDS,
         says=_get("VALUE: the value (no flags: fresh or stale, it cannot tell)"),
         guard=lambda m, s, r: s.item.valued,
         effect=lambda m, s, r: m.end(s, r, GOT_VALUE)),
    Step(ServeEmpty, at=IDLE, when=_with_classic, command=GET, sends=GET_SENDS,
         says=(*_get("VALUE, 0 bytes: a meta client's stub"),
               note("serves the empty bytes as the value")),
         guard=lambda m, s, r: mi.is_stub(s.item),
         effect=lambda m, s, r: m.end(s, r, GOT_EMPTY)),
    Step(ClassicMiss, at=IDLE, when=_with_classic, command=GET, sends=GET_SENDS,
         says=_get("END: a miss, it queries the database itself"),
         guard=lambda m, s, r: negate(mi.classic_hit(s.item)),
         effect=lambda m, s, r: replace(m.goto(s, r, REBUILDING), starts=s.starts + 1,
                                        seen=ops.set_at(s.seen, r, s.db))),
    Step(ClassicSet, at=REBUILDING, when=_with_classic, command=SET, sends=SET_SENDS,
         says=(answer(DB, "rows (rebuild done)"), call(MEMCACHED, "set key value"),
               answer(MEMCACHED, "STORED")),
         guard=lambda m, s, r: m.completes(s, r),
         effect=lambda m, s, r: m.end(replace(s, item=mi.store(
             s.item, s.seen[r], m.cfg.value_ttl, fresh_cas=s.item.cas + 1)), r, GOT_VALUE)),
)

#: The steps only a classic client takes; every other request step is a meta client's.
CLASSIC_STEPS = (ClassicHit, ServeEmpty, ClassicMiss, ClassicSet)


class MetaModel(program.ProgramModel[MetaConfig, MetaState]):
    """The ``memcached-meta`` transition system for one configuration, compiled from
    :data:`STEPS`."""

    STEPS = STEPS
    TIMERS: ClassVar[Mapping[int, Timer]] = {REBUILDING: Timer(up=True, duration="rebuild"),
                                              SLEEPING: Timer(up=False, duration="wait")}
    WORK = REBUILDING
    DONE = (GOT_VALUE, GOT_STALE, CRASHED, GOT_EMPTY)
    ERRORS = (CRASHED,)
    FALLBACKS = (GOT_STALE,)
    PARTICIPANTS = (MEMCACHED, DB)
    MEMCACHED_KEYS = (("k", "item"),)
    ENVIRONMENT_SENDS: ClassVar[Mapping[str, tuple[Send, ...]]] = {
        "Pause": (), "Crash": (),
        "Write": (Send("md", "k", flags="I T<stale_ttl>", when=_marks),
                  Send("delete", "k", when=_deletes))}
    ENVIRONMENT_SAYS: ClassVar[Mapping[str, tuple[Say, ...]]] = {
        "Write": (note("a writer commits {db}", over=DB),
                  Say(DB, MEMCACHED, "md key I (mark stale)", only="marks_only"),
                  Say(DB, MEMCACHED, "md key I T{stale_ttl} (mark stale, {stale_ttl} tick(s) "
                      "to live)", only="marks_for"),
                  Say(DB, MEMCACHED, "delete key", only="deletes"))}

    # -- the contract ------------------------------------------------------------------

    def initial_states(self) -> tuple[MetaState, ...]:
        n = self.cfg.requests
        return (MetaState(pc=(IDLE,) * n, timer=(0,) * n, held=(False,) * n, seen=(0,) * n,
                          cas_seen=(0,) * n, item=self.start_item(), db=0, starts=0,
                          crashed=0),)

    def start_item(self) -> Item:
        """The key at the start: absent, or ``v0`` stored with CAS 1 and ``start_ttl`` left."""
        if self.cfg.start == "absent":
            return Item()
        return Item(present=True, valued=True, version=0, ttl=self.cfg.start_ttl, cas=1)

    def is_classic(self, r: int) -> bool:
        """Request r speaks the classic text protocol (the last ``classic`` requests do)."""
        return r >= self.cfg.requests - self.cfg.classic

    def runs(self, a: Action) -> bool:
        """Whether action ``a`` is one its request's kind of client takes (classic steps for
        classic clients, meta steps for meta clients; the environment's for everybody)."""
        r = getattr(a, "r", None)
        if not isinstance(r, int) or isinstance(a, Pause | Crash):
            return True
        return (type(a) in CLASSIC_STEPS) == self.is_classic(r)

    def _build_actions(self) -> tuple[Action, ...]:
        """The layer's actions, each request's only those of its kind of client."""
        return tuple(a for a in super()._build_actions() if self.runs(a))

    def enabled(self, s: MetaState, a: Action) -> Bool:
        return self.runs(a) and super().enabled(s, a)

    def in_domain(self, s: MetaState) -> Bool:
        cfg = self.cfg
        item = s.item
        per_request = [
            all_of(
                pc >= IDLE, pc <= (GOT_EMPTY if cfg.classic else CRASHED),
                self.timer_in_domain(pc, timer, held),
                seen >= 0, seen <= s.db, cas_seen >= 0, cas_seen <= item.cas,
                *self._kind_in_domain(r, pc, cas_seen),
            )
            for r, (pc, timer, held, seen, cas_seen) in enumerate(zip(
                s.pc, s.timer, s.held, s.seen, s.cas_seen, strict=True))
        ]
        # The lives an item may have left: a stub's, a stored value's, and with the options
        # that set them, the start value's and a stale item's after md I T.
        stub_lives = [item.ttl <= cfg.stub_ttl, *self._stale_life(item.ttl)]
        value_lives = [item.ttl <= cfg.value_ttl, *self._stale_life(item.ttl)]
        if cfg.start_ttl:
            value_lives.append(item.ttl <= cfg.start_ttl)
        return all_of(
            *per_request,
            item.ttl >= 0, any_of(*stub_lives, *value_lives),
            implies(negate(item.present), all_of(negate(item.valued), negate(item.stale),
                                                 negate(item.won), item.ttl == 0,
                                                 item.version == 0)),
            implies(negate(item.valued), item.version == 0),
            implies(all_of(item.present, negate(item.valued)),
                    all_of(item.ttl > 0, any_of(*stub_lives))),
            implies(item.valued, any_of(*value_lives)),
            implies(item.stale, s.db > 0),
            item.version >= 0, item.version <= s.db,
            item.cas >= 0,
            item.cas <= 2 * cfg.requests + cfg.writers + (cfg.start == "value"),
            s.db >= 0, s.db <= cfg.writers,
            s.starts >= 0, s.starts <= cfg.requests,
            s.crashed >= 0, s.crashed <= environment.crash_bound(cfg.crash, cfg.crashes),
        )

    def _stale_life(self, ttl: Int) -> list[Bool]:
        """``ttl <= stale_ttl`` when ``md k I T<stale_ttl>`` may set it (nothing otherwise)."""
        stale_ttl = self.cfg.stale_ttl
        if not self.cfg.writers or not (ops.is_symbolic(stale_ttl) or stale_ttl):
            return []
        return [ttl <= stale_ttl]

    def _kind_in_domain(self, r: int, pc: Int, cas_seen: Int) -> list[Bool]:
        """A classic client never sleeps on a Z nor remembers a CAS; a meta client never
        serves a stub's bytes (only with classic clients: nothing to say otherwise)."""
        if not self.cfg.classic:
            return []
        if self.is_classic(r):
            return [pc != SLEEPING, cas_seen == 0]
        return [pc != GOT_EMPTY]

    def observe(self, s: MetaState) -> Observation:
        item = s.item
        fresh_value = all_of(item.present, item.valued, negate(item.stale))
        if self.cfg.start == "value":
            # the start value is there, but nobody refilled it: in a warm start it alone holds
            # CAS 1 (every later item takes a newer id)
            fresh_value = all_of(fresh_value, item.cas != 1)
        observed = self.observation(s, fresh_value, cached=item.version)
        return replace(observed, placeholder_served=ops.any_where(s.pc, lambda pc: pc == GOT_EMPTY))

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
        - winner-life: the same for a winner of either kind of item, from a warm start: its
          item is present, won, with its CAS, and a stub with ``stub_ttl - elapsed`` left or a
          stale value with ``stale_ttl - elapsed`` left (one ``md k I T<stale_ttl>``).
        - warm: from a warm start (that never expires), until the write nothing rebuilds and
          the item is the start value; after it, no stub is stale (the one write is spent).
        - warm-starts: from a warm start, the starts count the winners, or one once a client
          stored a fresh value (which lives ``value_ttl``).
        - never-absent: from a warm start where nothing expires, the key always holds a value.
        - no-empty: no request has served a stub's bytes (meta clients only).
        """
        cfg = self.cfg
        n = range(cfg.requests)
        warm = self._warm_invariants()
        return (
            Invariant("cas-read", lambda s: all_of(*(implies(
                all_of(s.pc[r] == REBUILDING, s.item.present, s.item.cas == s.cas_seen[r]),
                s.seen[r] >= s.db) for r in n))),
            Invariant("stub-life", lambda s: all_of(*(implies(
                s.pc[r] == REBUILDING,
                all_of(s.item.present, negate(s.item.valued), s.item.won,
                       s.item.cas == s.cas_seen[r],
                       s.item.ttl + s.timer[r] == cfg.stub_ttl)) for r in n))),
            Invariant("one-rebuilder", lambda s: ops.count(pc == REBUILDING for pc in s.pc) <= 1),
            Invariant("starts", lambda s: s.starts == ite(
                s.item.valued, 1, ops.count(pc == REBUILDING for pc in s.pc))),
            *warm,
        )

    def _warm_invariants(self) -> tuple[Invariant, ...]:
        """winner-life, warm, warm-starts and no-empty (see :meth:`invariants`); only for the
        configurations they speak of, so the others' proofs see the candidates they always
        had."""
        cfg = self.cfg
        n = range(cfg.requests)
        out: list[Invariant] = []
        if not cfg.classic:
            out.append(Invariant("no-empty", lambda s: all_of(*(pc != GOT_EMPTY
                                                               for pc in s.pc))))
        if cfg.start != "value":
            return tuple(out)

        def rebuilding(s: MetaState) -> Int:
            return ops.count(pc == REBUILDING for pc in s.pc)

        def untouched(item: Item) -> Bool:
            """The start value, as stored (its TTL aside)."""
            return all_of(item.present, item.valued, item.version == 0, negate(item.stale),
                          negate(item.won), item.cas == 1)

        def refilled(item: Item) -> Bool:
            """A fresh value some client stored (not the start value: that one alone holds
            CAS 1)."""
            return all_of(item.valued, negate(item.stale), item.cas != 1)

        stale_ttl = cfg.stale_ttl

        def stale_life(ttl: Int, elapsed: Int) -> Bool:
            """A stale item's life after md k I T<stale_ttl>, ``elapsed`` ticks into the win;
            without T it keeps its TTL, which from this warm start is none."""
            if ops.is_symbolic(stale_ttl) or stale_ttl:
                return ttl + elapsed == stale_ttl
            return ttl == 0

        out += [
            Invariant("winner-life", lambda s: all_of(*(implies(
                s.pc[r] == REBUILDING,
                all_of(s.item.present, s.item.won, s.item.cas == s.cas_seen[r],
                       ite(s.item.valued,
                           all_of(s.item.stale, stale_life(s.item.ttl, s.timer[r])),
                           s.item.ttl + s.timer[r] == cfg.stub_ttl))) for r in n))),
            Invariant("warm", lambda s: all_of(
                s.item.cas >= 1,
                implies(s.db == 0, all_of(untouched(s.item), s.item.ttl == 0,
                                          rebuilding(s) == 0, s.starts == 0)),
                implies(s.db > 0, negate(all_of(mi.is_stub(s.item), s.item.stale))))),
            Invariant("warm-starts", lambda s: all_of(
                s.item.cas >= 1,
                implies(refilled(s.item), s.item.ttl <= cfg.value_ttl),
                s.starts == ite(refilled(s.item), 1, rebuilding(s)))),
            # nothing ever expires: the start value, md k I without T and ms without T
            Invariant("never-absent", lambda s: all_of(s.item.present, s.item.valued)),
        ]
        return tuple(out)

    def quantified_invariants(self) -> tuple[Candidate, ...]:
        """The candidates above for the proof for every number of requests (``herdproof prove
        --all-sizes``): the CAS and version a winner read and a stub's life, once per request;
        one rebuilder, once per pair of requests; the item, as a whole; and, for the DB-query
        bound, some request at work while a rebuild has started and nothing is stored."""
        cfg = self.cfg
        return (
            each_request("cas-read", "a winner whose CAS still matches the item read the "
                         "newest version",
                         lambda m, s, r: implies(all_of(m.at_work(s, r), s.item.present,
                                                        s.item.cas == s.cas_seen[r]),
                                                 s.seen[r] >= s.db)),
            each_request("cas-seen", "a winner's CAS is one memcached issued",
                         lambda m, s, r: all_of(s.cas_seen[r] >= 0,
                                                s.cas_seen[r] <= s.item.cas)),
            whole("item", "the item's version is one the database had, its TTL not negative",
                  lambda m, s: all_of(s.item.version >= 0, s.item.version <= s.db,
                                      s.item.ttl >= 0, s.item.cas >= 0)),
            whole("fresh-value", "a value not marked stale is the newest version",
                  lambda m, s: implies(all_of(s.item.valued, negate(s.item.stale)),
                                       s.item.version >= s.db)),
            each_request("stub-life", "a winner's stub is present, won, has stub_ttl - elapsed "
                         "ticks left and the CAS its mg returned",
                         lambda m, s, r: implies(m.at_work(s, r), all_of(
                             s.item.present, negate(s.item.valued), s.item.won,
                             s.item.cas == s.cas_seen[r],
                             s.item.ttl + s.timer[r] == cfg.stub_ttl))),
            each_pair("one-rebuilder", "no two requests hold a win at once",
                      lambda m, s, r, q: negate(all_of(m.at_work(s, r), m.at_work(s, q)))),
            whole("unstarted", "before the first rebuild starts the key holds no value",
                  lambda m, s: implies(s.starts == 0, negate(s.item.valued))),
            whole("absent-item", "an absent item holds nothing: no value, no win, no "
                  "stale mark", lambda m, s: implies(negate(s.item.present), all_of(
                      negate(s.item.valued), negate(s.item.won), negate(s.item.stale)))),
            whole("value-life", "a value expires no later than the longest TTL it can be "
                  "given (never, with value_ttl, start_ttl and stale_ttl all 0)",
                  lambda m, s: implies(s.item.valued, all_of(
                      s.item.ttl >= 0,
                      s.item.ttl <= max(cfg.value_ttl, cfg.start_ttl, cfg.stale_ttl)))),
            some_request("rebuild-in-flight", "once a rebuild started and while the key holds "
                         "no value, some request holds the win and is rebuilding",
                         lambda m, s, r: implies(all_of(s.starts >= 1, negate(s.item.valued)),
                                                 m.at_work(s, r))),
        )

    def symmetry(self) -> Symmetry:
        """The symmetry :meth:`canonical` reduces by, as data (for engines that generate a
        model, such as SPIN)."""
        n, classic = self.cfg.requests, self.cfg.classic
        kinds = (tuple(range(n - classic)), tuple(range(n - classic, n)))
        return Symmetry(fields=("pc", "timer", "held", "seen", "cas_seen"),
                        groups=tuple(kind for kind in kinds if kind))

    def canonical(self, s: MetaState) -> MetaState:
        """Requests of one kind (meta, classic) are interchangeable: sort them by everything
        that distinguishes them."""
        if self.cfg.classic:
            canonical: MetaState = self.symmetry().canonical(s)
            return canonical
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
                       seen=ops.set_at(s.seen, r, s.db),
                       cas_seen=ops.set_at(s.cas_seen, r, s.item.cas))

    def end(self, s: MetaState, r: int, outcome: PC) -> MetaState:
        """r ends with ``outcome``: it forgets what its rebuild read."""
        return replace(self.end_work(s, r, outcome), cas_seen=ops.set_at(s.cas_seen, r, 0))

    # -- the environment and the item's clock -------------------------------------------

    def write(self, s: MetaState) -> MetaState:
        """Commit ``db + 1``, then ``md k I [T<stale_ttl>]``: a present item is marked stale,
        its win re-armed, its CAS bumped (and its TTL set); an absent one stays absent (NF).
        With ``invalidation=delete``, ``delete k``: the item is gone."""
        if _deletes(self.cfg):
            return replace(s, db=s.db + 1, item=mi.delete(s.item))
        stale_ttl = self.cfg.stale_ttl
        life: Int | None = None
        if ops.is_symbolic(stale_ttl):
            life = ite(stale_ttl == 0, s.item.ttl, stale_ttl)
        elif stale_ttl:
            life = stale_ttl
        return replace(s, db=s.db + 1,
                       item=mi.invalidate(s.item, fresh_cas=s.item.cas + 1, ttl=life))

    def crash(self, s: MetaState, r: int) -> MetaState:
        """r's process dies mid-rebuild: it never stores, and its stub is left to expire."""
        crashed = replace(s, crashed=s.crashed + 1, held=ops.set_at(s.held, r, False))
        return self.goto(crashed, r, CRASHED)

    def tick_stores(self, s: MetaState) -> MetaState:
        """An item whose exptime arrives is gone (``exptime <= t``)."""
        return replace(s, item=mi.tick(s.item))

    def items(self, s: MetaState) -> dict[str, Item]:
        """The key's item, as memcached holds it (``replay --memcached``)."""
        return {"k": s.item}

    # -- narration -------------------------------------------------------------------------

    def facts(self, before: MetaState, after: MetaState, r: int | None) -> dict[str, str]:
        """Whether the winner's store carries ``C<cas>``, and how the writer invalidates."""
        cas = self.cfg.cas
        marks, life = _marks(self.cfg), self.cfg.stale_ttl
        return {"with_cas": "yes" if cas else "", "without_cas": "" if cas else "yes",
                "marks_only": "yes" if marks and not life else "",
                "marks_for": "yes" if marks and life else "",
                "deletes": "" if marks else "yes"}

    def _describe_request(self, s: MetaState, r: int) -> str:
        """``W rebuild 1/2 v0 cas 3 paused`` for a winner, ``Z wait 1`` for a sleeper."""
        pc = PC(s.pc[r])
        if pc == REBUILDING and self.is_classic(r):
            read = f" v{s.seen[r]}" if self.cfg.writers else ""
            paused = " paused" if s.held[r] else ""
            return f"get miss: rebuild {s.timer[r]}/{self.cfg.rebuild}{read}{paused}"
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
