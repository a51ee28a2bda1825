"""``stack``: single-flight per node, a fleet-wide Redis lock, waiter re-check, stale fallback.

The canonical model: one hot cache key has just expired, and a fleet of ``nodes`` processes with
``per_node`` requests each races at the TTL boundary. Each request runs the lesson's program:

1. ``GET key``: a hit ends the request with the value.
2. On a miss, with ``singleflight`` on, look the key up in the node's in-process map (a separate
   step: a flight can finish between the GET and the look-up). A flight in progress: subscribe
   and wait for its outcome. None: register as the node's leader.
3. With ``lock`` on, try ``SET lock:key <token> EX <ex> NX``.
4. Lock won (or no lock): with ``recheck`` on, ``GET key`` again and stop if it hits (releasing
   the lock); otherwise query the database for ``rebuild`` ticks.
5. Rebuild done: ``SET key <value>``, release the lock (``DEL lock:key``, or with
   ``release=cad`` the compare-and-delete script
   ``if redis.call("get",KEYS[1])==ARGV[1] then return redis.call("del",KEYS[1]) end``),
   resolve the node's followers with the value.
6. Followers receive the leader's outcome through the shared promise.
7. Lock lost: sleep ``wait`` ticks, ``GET key`` again, and serve a stale fallback if it still
   misses (the node's followers get the same outcome).

What is abstracted away, and why that is safe:

- One key, one boundary: the refilled value does not expire again within a run, because the
  cache TTL is far longer than the rebuild; the race is at the moment of expiry.
- Writing the value, releasing the lock and resolving the promise are one step. Completion is
  urgent (no tick passes), and no other request can change the lock in between without a tick,
  so splitting them adds interleavings but no reachable outcome.
- A re-check that hits releases the lock in the same step, for the same reason.
- The token is the request id, unique per request, as the lesson's uuid is.

Faults and writers (the shared environment, :mod:`models.environment`):

- ``pause``: a due rebuilder may be stalled up to ``pause`` extra ticks before its write, so its
  lock can expire under it: with ``release=del`` its DEL then removes the next owner's lock.
- ``crash``: a rebuilder's process may die holding the lock; the lock's ``EX`` is the safety
  net, waiters elsewhere serve the fallback until it expires, the first request after that
  rebuilds. The process dies, not one request: every request it was serving dies with it
  (the leader's followers, a request that had only missed, one asleep after losing the lock),
  and their clients get a connection error. An error is an answer (ANSWERED) but not service
  (SERVED). The process restarts with an empty single-flight map and serves later arrivals.
- ``writers``: a DB writer commits a new version and deletes the key; a rebuild writes the
  version it read when it started, so a slow rebuild can set a stale value (FRESH).
- ``fencing`` (needs ``lock``): every lock grant takes a token from one increasing counter
  (``INCR lock:key:fence``), and the cache, as the storage, rejects a fill whose token is lower
  than the highest it has accepted (the ``FillRejected`` step). The writer's delete is itself a
  write to that storage and takes a token from the same counter; without that no fence could
  order a fill against a delete, and FRESH would fail with fencing too.

Meant to fail: ONE when ``ex < rebuild`` (the lock expires mid-rebuild and a second request wins
it); NOFOREIGN with ``release=del`` and ``ex < rebuild`` or a pause past
``ex`` (the first rebuilder's DEL removes the second's lock); FRESH with ``writers`` and no
fencing (a rebuild that read the old version fills after the writer's delete); REBUILDS<=1
with ``recheck`` off (a request that missed before the refill wins the
freed lock, or leads a new flight, and rebuilds again).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property
from operator import itemgetter
from typing import ClassVar

from herdproof.models import cache, environment, ops, program, redis_lock, singleflight
from herdproof.models.candidates import Candidate, each_node, each_pair, each_request, whole
from herdproof.models.core import Action, Invariant
from herdproof.models.errors import InvalidParameter
from herdproof.models.narration import Say, answer, call, note
from herdproof.models.observation import Observation
from herdproof.models.ops import Bool, Int, all_of, any_of, implies, ite, negate
from herdproof.models.params import Param, ParamValue
from herdproof.models.policy import PolicySpec, Preset
from herdproof.models.program import RequestAction, Send, Step, Timer, evolve
from herdproof.models.redis_lock import NO_OWNER, RedisLock, Release
from herdproof.models.singleflight import NO_LEADER
from herdproof.models.symmetry import Symmetry

PARAMS: tuple[Param, ...] = (
    Param("nodes", int, 2, "processes in the fleet", minimum=1),
    Param("per_node", int, 2, "concurrent requests per process", minimum=1),
    Param("singleflight", bool, True, "in-process single-flight per node"),
    Param("lock", bool, True, "fleet-wide SET lock <token> EX <ex> NX before rebuilding"),
    Param("release", str, "cad", "DEL lock (del), owner-checked compare-and-delete (cad), or "
          "GET lock then DEL lock if the token read was ours (get-del)",
          choices=("del", "cad", "get-del")),
    Param("recheck", bool, False, "GET the cache again after winning the lock / leading"),
    Param("ex", int, 3, "lock expiry in ticks (Redis EX)", minimum=1, timing=True),
    Param("rebuild", int, 2, "rebuild duration in ticks", minimum=1, timing=True),
    Param("wait", int, 1, "ticks a request that lost the lock sleeps before GETting again",
          minimum=0, timing=True),
    Param("gap", int, 0, "release=get-del: at most this many ticks pass between the GET lock "
          "and the DEL lock", minimum=0, timing=True),
    environment.PAUSE,
    environment.CRASH,
    environment.CRASHES,
    environment.WRITERS,
    Param("fencing", bool, False, "lock grants carry increasing tokens; the cache rejects a "
          "fill with a lower token than it has accepted (needs lock=on)"),
    Param("horizon", int, 0, "bound on the clock in ticks; 0 = unbounded (timers are relative)",
          minimum=0),
)


class PC(IntEnum):
    """Where a request is in its program."""

    IDLE = 0         # not arrived yet
    MISSED = 1       # GET missed; next: the in-process single-flight look-up
    FOLLOWING = 2    # subscribed to its node's in-flight rebuild
    READY = 3        # leading (or alone): next, try the lock
    RECHECK = 4      # won the lock / became leader: next, the urgent re-check GET
    REBUILDING = 5   # querying the database
    SLEEPING = 6     # lost the lock: sleeping before the second GET
    GOT_VALUE = 7    # ended with the value
    GOT_FALLBACK = 8  # ended with the stale fallback
    CRASHED = 9      # its process died (with crash=on)
    RELEASING_MINE = 10   # release=get-del: GET lock returned its token; next, DEL lock
    RELEASING_OTHER = 11  # release=get-del: GET lock returned another token (or nil); next, done


# Plain module names for the members: enum attribute look-ups are slow on the search's hot path.
(IDLE, MISSED, FOLLOWING, READY, RECHECK, REBUILDING, SLEEPING, GOT_VALUE,
 GOT_FALLBACK, CRASHED, RELEASING_MINE, RELEASING_OTHER) = tuple(PC)
DONE = (GOT_VALUE, GOT_FALLBACK, CRASHED)
SHORT = {IDLE: "-", MISSED: "missed", FOLLOWING: "follow", READY: "ready",
         RECHECK: "recheck", REBUILDING: "rebuild", SLEEPING: "sleep",
         GOT_VALUE: "value", GOT_FALLBACK: "fallback", CRASHED: "crashed",
         RELEASING_MINE: "unlock mine", RELEASING_OTHER: "unlock other"}


@dataclass(frozen=True, slots=True)
class StackConfig(environment.EnvironmentConfig):
    """The parameters of one instance; timing constants may be z3 terms in symbolic runs."""

    nodes: int
    per_node: int
    singleflight: bool
    lock: bool
    release: Release
    recheck: bool
    ex: Int
    rebuild: Int
    wait: Int
    gap: Int
    fencing: bool
    horizon: int

    @classmethod
    def from_params(cls, params: Mapping[str, ParamValue]) -> StackConfig:
        """The configuration of complete, validated parameters: ``release`` as its
        :class:`Release`, and ``fencing`` refused without the lock that issues the tokens."""
        values = dict(params)
        values["release"] = {"del": Release.DEL, "cad": Release.CAD,
                             "get-del": Release.GET_DEL}[str(values["release"])]
        if values["fencing"] and not values["lock"]:
            raise InvalidParameter("parameter `fencing` of stack needs lock=on: fencing tokens "
                                   "are issued with the lock grants")
        return cls(**values)  # type: ignore[arg-type]

    @property
    def crash_bound(self) -> int:
        return environment.crash_bound(self.crash, self.crashes)

    @property
    def requests(self) -> int:
        return self.nodes * self.per_node

    def node_of(self, r: int) -> int:
        return r // self.per_node

    def requests_of(self, node: int) -> range:
        return range(node * self.per_node, (node + 1) * self.per_node)


@dataclass(frozen=True, slots=True)
class StackState(program.RequestsState):
    """One moment of the race.

    ``timer[r]`` is request ``r``'s elapsed rebuild ticks while REBUILDING, its remaining sleep
    while SLEEPING, and 0 otherwise. ``starts`` and ``foreign`` are ghost history for the
    properties; ``t`` is the clock, tracked only when a horizon bounds it.

    The fault fields stay constant when their feature is off, so they add no states:
    ``held[r]`` (r's due rebuild is stalled by a pause this tick), ``seen[r]`` (the DB version
    r's rebuild read), ``token[r]`` (r's fencing token), ``db`` (the DB version, also the
    number of writes), ``cached`` (the version the cache holds), ``fence`` (the last token
    issued), ``accepted`` (the highest token the cache accepted), ``crashed`` (crashes so far).
    """

    flights: tuple[Int, ...]
    lock: RedisLock
    cache_filled: Bool
    foreign: Bool
    t: Int
    token: tuple[Int, ...]
    cached: Int
    fence: Int
    accepted: Int


class Hit(RequestAction):
    """Request r GETs the key and hits; enabled when r has not arrived and the cache is filled."""


class Miss(RequestAction):
    """Request r GETs the key and misses; enabled when r has not arrived and the cache is empty."""


class JoinFlight(RequestAction):
    """Request r subscribes to its node's in-flight rebuild; enabled when r missed, one exists."""


class LeadFlight(RequestAction):
    """Request r registers its node's flight; enabled when r missed and the node has none."""


class WinLock(RequestAction):
    """Request r's SET lock NX EX succeeds; enabled when r is ready and no live lock exists."""


class LoseLock(RequestAction):
    """Request r's SET lock NX EX fails and r sleeps; enabled when r is ready and a lock lives."""


class RecheckHit(RequestAction):
    """Request r re-GETs, hits, releases the lock and serves; enabled in RECHECK, cache filled."""


class RecheckMiss(RequestAction):
    """Request r re-GETs, misses and starts the rebuild; enabled in RECHECK, cache empty."""


class Finish(RequestAction):
    """Request r writes the value, releases the lock, resolves followers; enabled when due."""


class FillRejected(RequestAction):
    """Request r's fill carries a token lower than the cache accepted, so the cache refuses it;
    r still releases the lock and serves the value it read. Enabled when due, with fencing."""


class DelLock(RequestAction):
    """Request r, whose GET lock returned its own token, sends DEL lock (removing whatever key
    is there by now), serves the value and resolves its followers; enabled in RELEASING_MINE."""


class SkipDel(RequestAction):
    """Request r, whose GET lock returned another token or nil, leaves the lock alone, serves
    the value and resolves its followers; enabled in RELEASING_OTHER."""


class WakeHit(RequestAction):
    """Sleeping request r GETs again and hits; enabled when its sleep is over, cache filled."""


class WakeMiss(RequestAction):
    """Sleeping request r GETs again, misses, serves the fallback; enabled when sleep is over."""


# -- the program: one request, step by step ------------------------------------------------

REDIS, DB = "Redis", "DB"
GET_CACHE = (Send("GET", "cache"),)
SET_LOCK = (Send("SET NX PX", "lock", token=True, ticks="ex"),)
RELEASE_LOCK = (
    Send("DEL", "lock", when=lambda cfg: cfg.lock and cfg.release is Release.DEL),
    Send("CAD", "lock", token=True, when=lambda cfg: cfg.lock and cfg.release is Release.CAD),
    Send("GET", "lock", when=lambda cfg: cfg.lock and cfg.release is Release.GET_DEL))
GET = (call(REDIS, "GET key"),)
HIT = (*GET, answer(REDIS, "value (hit)"))
MISS = (*GET, answer(REDIS, "nil (miss)"))
SET_NX = call(REDIS, "SET lock {r} EX {ex} NX")
REBUILT = answer(DB, "rows (rebuild done)")
RELEASE = (call(REDIS, "GET lock", only="get_reply"),
           answer(REDIS, "{get_reply}", only="get_reply"),
           call(REDIS, "DEL lock", only="del_reply"),
           answer(REDIS, "{del_reply}", only="del_reply"),
           note("deleted {foreign}'s lock, not {r}'s own", over=REDIS, only="foreign"),
           call(REDIS, "EVAL compare-and-delete lock {r}", only="cad_reply"),
           answer(REDIS, "{cad_reply}", only="cad_reply"))


def _with_singleflight(cfg: StackConfig) -> bool:
    return cfg.singleflight


def _with_lock(cfg: StackConfig) -> bool:
    return cfg.lock


def _with_recheck(cfg: StackConfig) -> bool:
    return cfg.recheck


def _with_fencing(cfg: StackConfig) -> bool:
    return cfg.fencing


def _with_get_del(cfg: StackConfig) -> bool:
    return cfg.lock and cfg.release is Release.GET_DEL


STEPS: tuple[Step[StackState], ...] = (
    Step(Hit, at=IDLE, command="GET key", says=HIT,
         guard=lambda m, s, r: cache.hits(s.cache_filled),
         sends=GET_CACHE,
         effect=lambda m, s, r: m.end(s, r, GOT_VALUE)),
    Step(Miss, at=IDLE, command="GET key", says=MISS,
         guard=lambda m, s, r: cache.misses(s.cache_filled),
         sends=GET_CACHE,
         effect=lambda m, s, r: m.goto(s, r, MISSED) if m.cfg.singleflight else m.contend(s, r)),
    Step(JoinFlight, at=MISSED, when=_with_singleflight, command="(in process) flight.join()",
         says=(note("joins its node's in-flight rebuild (single-flight)"),),
         guard=lambda m, s, r: singleflight.in_flight(s.flights, m.cfg.node_of(r)),
         sends=(),
         effect=lambda m, s, r: m.goto(s, r, FOLLOWING)),
    Step(LeadFlight, at=MISSED, when=_with_singleflight, command="(in process) flight.lead()",
         says=(note("leads its node's flight (single-flight)"),),
         guard=lambda m, s, r: negate(singleflight.in_flight(s.flights, m.cfg.node_of(r))),
         sends=(),
         effect=lambda m, s, r: m.contend(
             s, r, flights=singleflight.lead(s.flights, m.cfg.node_of(r), r))),
    Step(WinLock, at=READY, when=_with_lock, command="SET lock <token> NX EX <ex>",
         says=(SET_NX, answer(REDIS, "OK")),
         guard=lambda m, s, r: redis_lock.is_free(s.lock),
         sends=SET_LOCK,
         effect=lambda m, s, r: m.cleared(
             m.issue_token(s, r), r, lock=redis_lock.acquire(s.lock, r, m.cfg.ex))),
    Step(LoseLock, at=READY, when=_with_lock, command="SET lock <token> NX EX <ex>",
         says=(SET_NX, answer(REDIS, "nil (held by {owner})", only="owner"),
               answer(REDIS, "nil", only="no_owner"),
               note("sleeps {wait} tick(s), then GETs again")),
         guard=lambda m, s, r: negate(redis_lock.is_free(s.lock)),
         sends=SET_LOCK,
         effect=lambda m, s, r: m.goto(s, r, SLEEPING, timer=m.cfg.wait)),
    Step(RecheckHit, at=RECHECK, when=_with_recheck, command="GET key", says=(*HIT, *RELEASE),
         guard=lambda m, s, r: cache.hits(s.cache_filled),
         sends=(*GET_CACHE, *RELEASE_LOCK),
         effect=lambda m, s, r: m.release_and_end(s, r)),
    Step(RecheckMiss, at=RECHECK, when=_with_recheck, command="GET key", says=MISS,
         guard=lambda m, s, r: cache.misses(s.cache_filled),
         sends=GET_CACHE,
         effect=lambda m, s, r: m.start_rebuild(s, r)),
    Step(Finish, at=REBUILDING,
         command="SET key <value>, then the release: DEL lock, EVAL cad, or GET lock",
         says=(REBUILT, call(REDIS, "SET key value"), *RELEASE),
         guard=lambda m, s, r: all_of(m.completes(s, r), m.fill_accepted(s, r)),
         sends=(Send("SET", "cache", token=True), *RELEASE_LOCK),
         effect=lambda m, s, r: m.release_and_end(
             s, r, cache_filled=cache.fill(), cached=s.seen[r], accepted=s.token[r])),
    Step(FillRejected, at=REBUILDING, when=_with_fencing, command="SET key <value> (fenced)",
         says=(REBUILT, call(REDIS, "SET key value"),
               answer(REDIS, "rejected (its token is no longer valid)"), *RELEASE),
         guard=lambda m, s, r: all_of(m.completes(s, r), negate(m.fill_accepted(s, r))),
         sends=program.NOT_ON_A_SERVER,
         effect=lambda m, s, r: m.release_and_end(s, r)),
    Step(DelLock, at=RELEASING_MINE, when=_with_get_del, command="DEL lock",
         says=(call(REDIS, "DEL lock"), answer(REDIS, "{del_reply}"),
               note("deleted {foreign}'s lock, not {r}'s own", over=REDIS, only="foreign")),
         sends=(Send("DEL", "lock"),),
         effect=lambda m, s, r: m.end(m.release(s, r), r, GOT_VALUE)),
    Step(SkipDel, at=RELEASING_OTHER, when=_with_get_del, command="(no command)",
         says=(note("the lock is not its own: leaves it"),),
         sends=(),
         effect=lambda m, s, r: m.end(s, r, GOT_VALUE)),
    Step(WakeHit, at=SLEEPING, when=_with_lock, command="GET key", says=HIT,
         guard=lambda m, s, r: all_of(s.timer[r] == 0, cache.hits(s.cache_filled)),
         sends=GET_CACHE,
         effect=lambda m, s, r: m.end(s, r, GOT_VALUE)),
    Step(WakeMiss, at=SLEEPING, when=_with_lock, command="GET key",
         says=(*MISS, note("serves the stale fallback")),
         guard=lambda m, s, r: all_of(s.timer[r] == 0, cache.misses(s.cache_filled)),
         sends=GET_CACHE,
         effect=lambda m, s, r: m.end(s, r, GOT_FALLBACK)),
)


class StackModel(program.ProgramModel[StackConfig, StackState]):
    """The ``stack`` transition system for one configuration, compiled from :data:`STEPS`."""

    STEPS = STEPS
    TIMERS: ClassVar[Mapping[int, Timer]] = {
        REBUILDING: Timer(up=True, duration="rebuild"), SLEEPING: Timer(up=False),
        RELEASING_MINE: Timer(up=True, duration="gap"),
        RELEASING_OTHER: Timer(up=True, duration="gap")}
    URGENT = (RECHECK,)
    WORK = REBUILDING
    DONE = DONE
    ERRORS = (CRASHED,)
    FALLBACKS = (GOT_FALLBACK,)
    PARTICIPANTS = (REDIS, DB)
    KEYS = (("lock", "token"), ("cache", "presence"))
    ENVIRONMENT_SENDS: ClassVar[Mapping[str, tuple[Send, ...]]] = {
        "Pause": (), "Crash": (), "Write": (Send("DEL", "cache"),)}
    ENVIRONMENT_SAYS: ClassVar[Mapping[str, tuple[Say, ...]]] = {
        "Write": (note("a writer commits {db}", over=DB),
                  Say(DB, REDIS, "delete key (invalidate)"))}

    # -- the contract ------------------------------------------------------------------

    def initial_states(self) -> tuple[StackState, ...]:
        n = self.cfg.requests
        return (StackState(pc=(IDLE,) * n, timer=(0,) * n,
                           flights=(NO_LEADER,) * self.cfg.nodes, lock=RedisLock(),
                           cache_filled=cache.EXPIRED, starts=0, foreign=False, t=0,
                           held=(False,) * n, seen=(0,) * n, token=(0,) * n, db=0, cached=0,
                           fence=0, accepted=0, crashed=0),)

    def in_domain(self, s: StackState) -> Bool:
        cfg = self.cfg
        get_del = _with_get_del(cfg)
        last = RELEASING_OTHER if get_del else CRASHED
        per_request = [
            all_of(
                pc >= IDLE, pc <= last, timer >= 0,
                ite(pc == REBUILDING,
                    environment.elapsed_in_domain(timer, cfg.rebuild, cfg.pause, held),
                    all_of(negate(held),
                           ite(pc == SLEEPING, timer <= cfg.wait,
                               ite(releasing, timer <= cfg.gap, timer == 0)))),
                seen >= 0, seen <= s.db, token >= 0, token <= s.fence,
            )
            for pc, timer, held, seen, token in zip(s.pc, s.timer, s.held, s.seen, s.token,
                                                    strict=True)
            for releasing in [any_of(pc == RELEASING_MINE, pc == RELEASING_OTHER)
                              if get_del else False]
        ]
        per_node = [singleflight.leader_in_domain(s.flights[n], n * cfg.per_node, cfg.per_node)
                    for n in range(cfg.nodes)]
        return all_of(
            *per_request, *per_node,
            redis_lock.in_domain(s.lock, cfg.requests, cfg.ex),
            s.starts >= 0, s.starts <= cfg.requests,
            s.t >= 0, s.t <= cfg.horizon,
            s.db >= 0, s.db <= cfg.writers, s.cached >= 0, s.cached <= s.db,
            s.fence >= 0, s.fence <= ite(cfg.fencing, cfg.requests + cfg.writers, 0),
            s.accepted >= 0, s.accepted <= s.fence,
            s.crashed >= 0, s.crashed <= cfg.crash_bound,
        )

    def observe(self, s: StackState) -> Observation:
        return self.observation(s, s.cache_filled, cached=s.cached,
                                foreign=s.foreign if self.cfg.lock else None)

    def truncated(self, s: StackState) -> bool:
        return self.cfg.horizon > 0 and s.t == self.cfg.horizon and self.urgent_free(s)

    def describe(self, s: StackState) -> dict[str, str]:
        columns = {f"r{r}": self._describe_request(s, r) for r in range(self.cfg.requests)}
        if self.cfg.lock:
            owner = s.lock.owner
            columns["lock"] = "free" if owner == NO_OWNER else f"r{owner} ({s.lock.remaining} left)"
        columns["cache"] = "filled" if s.cache_filled else "empty"
        if self.cfg.writers:
            columns["cache"] += f" v{s.cached}" if s.cache_filled else ""
            columns["db"] = f"v{s.db}"
        if self.cfg.fencing:
            columns["fence"] = f"{s.fence} (accepted {s.accepted})"
        columns["starts"] = str(s.starts)
        return columns

    def invariants(self) -> tuple[Invariant, ...]:
        """Candidate facts for induction proofs; the SMT engine keeps the inductive ones.

        - lock-holder: a request re-checking or rebuilding owns the lock (so the lock, while it
          lives, admits one rebuilder).
        - lock-life: a rebuilder's lock has ``ex - elapsed`` ticks left (true while the lock
          outlives the rebuild, i.e. when ``ex >= rebuild``).
        - fresh-lock: a request re-checking won its lock in this very tick.
        - leader: a request past the in-process look-up leads its node's flight, and a flight's
          leader is past the look-up.
        - starts: rebuild starts are the requests rebuilding now, or one once the cache is full.
        - no-foreign: no lock has been released by a non-owner.
        - fenced-read (fencing): a rebuilder whose token the cache would still accept read the
          newest version: every write since its read took a newer token and was accepted.
        """
        cfg = self.cfg
        past_lookup = (READY, RECHECK, REBUILDING, SLEEPING, RELEASING_MINE, RELEASING_OTHER)
        found: list[Invariant] = []

        def each(check: Callable[[StackState, int], Bool]) -> Callable[[StackState], Bool]:
            return lambda s: all_of(*(check(s, r) for r in range(cfg.requests)))

        if cfg.lock:
            found += [
                Invariant("lock-holder", each(lambda s, r: implies(
                    any_of(s.pc[r] == RECHECK, s.pc[r] == REBUILDING), s.lock.owner == r))),
                Invariant("lock-life", each(lambda s, r: implies(
                    s.pc[r] == REBUILDING, s.lock.remaining + s.timer[r] == cfg.ex))),
                Invariant("fresh-lock", each(lambda s, r: implies(
                    s.pc[r] == RECHECK, s.lock.remaining == cfg.ex))),
                Invariant("no-foreign", lambda s: negate(s.foreign)),
            ]
        if _with_get_del(cfg):
            found += [
                # between its GET and its DEL, a request whose GET read its own token still
                # owns the lock, with what the rebuild and the gap so far left of its life
                # (true while the lock outlives rebuild + gap, i.e. ex >= rebuild + gap)
                Invariant("release-life", each(lambda s, r: implies(
                    s.pc[r] == RELEASING_MINE, all_of(
                        s.lock.owner == r,
                        s.lock.remaining + s.timer[r] + cfg.rebuild == cfg.ex)))),
            ]
        if cfg.singleflight:
            found += [
                Invariant("leader", each(lambda s, r: implies(
                    any_of(*(s.pc[r] == pc for pc in past_lookup)),
                    s.flights[cfg.node_of(r)] == r))),
                Invariant("leader-active", lambda s: all_of(*(
                    any_of(s.flights[n] == NO_LEADER, *(
                        all_of(s.flights[n] == r, any_of(*(s.pc[r] == pc for pc in past_lookup)))
                        for r in cfg.requests_of(n)))
                    for n in range(cfg.nodes)))),
            ]
        if cfg.fencing:
            found += [
                Invariant("fenced-read", each(lambda s, r: implies(
                    all_of(s.pc[r] == REBUILDING, s.token[r] >= s.accepted),
                    s.seen[r] >= s.db))),
            ]
        found.append(Invariant("starts", lambda s: s.starts == ite(
            s.cache_filled, 1, ops.count(pc == REBUILDING for pc in s.pc))))
        return tuple(found)

    def quantified_invariants(self) -> tuple[Candidate, ...]:
        """The candidates above, stated once per request (or pair, or node), for the proof
        for every fleet size (``herdproof prove --all-sizes``); it keeps the inductive ones."""
        cfg = self.cfg
        holding = (RECHECK, REBUILDING, RELEASING_MINE)
        past_lookup = (READY, RECHECK, REBUILDING, SLEEPING, RELEASING_MINE, RELEASING_OTHER)

        def at(s: StackState, r: int, labels: tuple[int, ...]) -> Bool:
            return any_of(*(s.pc[r] == label for label in labels))

        found: list[Candidate] = []
        if cfg.lock:
            found += [
                whole("lock-key", "the lock key lives 0..ex ticks, and only while it has an owner",
                      lambda m, s: all_of(s.lock.remaining >= 0, s.lock.remaining <= cfg.ex,
                                          any_of(s.lock.owner != NO_OWNER,
                                                 s.lock.remaining == 0))),
                each_request("lock-holder", "a request re-checking or rebuilding holds the lock",
                             lambda m, s, r: implies(at(s, r, (RECHECK, REBUILDING)),
                                                     s.lock.owner == r)),
                each_request("lock-life", "a rebuilder's lock lives ex - elapsed more ticks",
                             lambda m, s, r: implies(s.pc[r] == REBUILDING,
                                                     s.lock.remaining + s.timer[r] == cfg.ex)),
                each_request("owned-lock-life", "a rebuilder that still owns the lock has "
                             "ex - elapsed ticks of it left",
                             lambda m, s, r: implies(all_of(s.pc[r] == REBUILDING,
                                                            s.lock.owner == r),
                                                     s.lock.remaining + s.timer[r] == cfg.ex)),
                each_request("lapsed-lock", "a rebuilder that lost the lock has rebuilt for "
                             "longer than ex",
                             lambda m, s, r: implies(all_of(s.pc[r] == REBUILDING,
                                                            s.lock.owner != r),
                                                     s.timer[r] > cfg.ex)),
                each_request("fresh-lock", "a request re-checking won its lock this tick",
                             lambda m, s, r: implies(s.pc[r] == RECHECK,
                                                     s.lock.remaining == cfg.ex)),
                each_pair("one-holder", "at most one request acts as the lock's holder",
                          lambda m, s, r, q: negate(all_of(at(s, r, holding),
                                                           at(s, q, holding)))),
                whole("owner-at-work", "the lock's owner is re-checking, rebuilding, "
                      "releasing, or crashed",
                      lambda m, s: implies(s.lock.owner != NO_OWNER, at(
                          s, s.lock.owner, (*holding, RELEASING_OTHER, CRASHED)))),
                whole("no-foreign", "no lock has been released by a non-owner",
                      lambda m, s: negate(s.foreign)),
                whole("rebuild-owner", "once a rebuild started and until the cache is filled, "
                      "the lock's owner is rebuilding",
                      lambda m, s: implies(all_of(s.starts >= 1, negate(s.cache_filled)),
                                           all_of(s.lock.owner != NO_OWNER,
                                                  s.pc[s.lock.owner] == REBUILDING))),
            ]
        if _with_get_del(cfg):
            found.append(each_request(
                "release-life", "between its GET lock and its DEL lock, a request that read "
                "its own token still owns the lock, with rebuild + gap of its life spent",
                lambda m, s, r: implies(s.pc[r] == RELEASING_MINE, all_of(
                    s.lock.owner == r,
                    s.lock.remaining + s.timer[r] + cfg.rebuild == cfg.ex))))
        if cfg.fencing:
            found += [
                each_request("fenced-read", "a rebuilder whose token the cache would still "
                             "accept read the newest version",
                             lambda m, s, r: implies(all_of(s.pc[r] == REBUILDING,
                                                            s.token[r] >= s.accepted),
                                                     s.seen[r] >= s.db)),
                whole("fence", "tokens accepted were issued",
                      lambda m, s: all_of(s.accepted >= 0, s.accepted <= s.fence,
                                          s.cached >= 0, s.cached <= s.db)),
                each_request("token", "a request's token was issued",
                             lambda m, s, r: all_of(s.token[r] >= 0, s.token[r] <= s.fence)),
            ]
        if cfg.singleflight:
            found += [
                each_request("leader", "a request past the in-process look-up leads its node",
                             lambda m, s, r: implies(at(s, r, past_lookup),
                                                     s.flights[m.cfg.node_of(r)] == r)),
                each_node("leader-active", "a node's leader is its own request, past the "
                          "look-up (rebuilding, or still on its way to the value)",
                          lambda m, s, n: implies(s.flights[n] != NO_LEADER, all_of(
                              m.cfg.node_of(s.flights[n]) == n,
                              at(s, s.flights[n], past_lookup)))),
                each_request("follower", "a follower's node has a leader at work",
                             lambda m, s, r: implies(s.pc[r] == FOLLOWING,
                                                     s.flights[m.cfg.node_of(r)] != NO_LEADER)),
            ]
        found += [
            each_request("sleep", "a request that lost the lock sleeps at most wait ticks",
                         lambda m, s, r: implies(s.pc[r] == SLEEPING, s.timer[r] <= cfg.wait)),
            whole("unstarted", "before the first rebuild starts the cache stays empty",
                  lambda m, s: implies(s.starts == 0, negate(s.cache_filled))),
            each_request("no-early-rebuild", "no request rebuilds before a rebuild started",
                         lambda m, s, r: implies(s.starts == 0, s.pc[r] != REBUILDING)),
            each_request("refilled-starts", "a rebuild still running after the cache was "
                         "filled is a second database query",
                         lambda m, s, r: implies(all_of(s.cache_filled,
                                                        s.pc[r] == REBUILDING), s.starts >= 2)),
            each_pair("two-starts", "two rebuilds running are two database queries",
                      lambda m, s, r, q: implies(all_of(s.pc[r] == REBUILDING,
                                                        s.pc[q] == REBUILDING), s.starts >= 2)),
        ]
        return tuple(found)

    def symmetry(self) -> Symmetry:
        """The symmetry :meth:`canonical` reduces by, as data (for engines that generate a
        model, such as SPIN): a node's requests are interchangeable, and so are nodes; the lock
        owner and the flight leaders are request numbers."""
        cfg = self.cfg
        return Symmetry(fields=("pc", "timer", "held", "seen", "token"),
                        groups=tuple(tuple(cfg.requests_of(n)) for n in range(cfg.nodes)),
                        swap_groups=True, group_fields=("flights",), owners=("lock.owner",))

    def canonical(self, s: StackState) -> StackState:
        """Requests of a node are interchangeable, and so are nodes: sort both.

        Each request is keyed by everything that distinguishes it (program counter, timer,
        whether it owns the lock, whether it leads its node's flight); the lock owner and the
        flight leaders are then renamed to follow the sorted order.
        """
        requests, node_of, groups, identity, unused, spans = self._shape
        pcs, timers, held, seen, token = s.pc, s.timer, s.held, s.seen, s.token
        lock, leaders = s.lock, s.flights
        owner = lock.owner
        plain = held == unused and seen == unused and token == unused  # no pause, writer, fencing
        keys: list[Int] | list[tuple[Int, ...]]
        if plain and min(timers) >= 0:
            # the key (pc, timer, owns the lock, leads the flight) packed into one int that
            # sorts the same way (timer < width / 4, flags < 4): cheaper to make and compare
            width = 4 * (max(timers) + 1)
            packed = [pc * width + 4 * timer for pc, timer in zip(pcs, timers, strict=True)]
            if 0 <= owner < len(packed):
                packed[owner] += 2
            for node, leader in enumerate(leaders):
                if 0 <= leader < len(packed) and node_of[leader] == node:
                    packed[leader] += 1
            keys = packed
        elif plain:
            keys = [(pcs[r], timers[r], owner == r, leaders[node_of[r]] == r) for r in requests]
        else:
            keys = [(pcs[r], timers[r], owner == r, leaders[node_of[r]] == r, held[r], seen[r],
                     token[r]) for r in requests]
        members = [sorted(group, key=keys.__getitem__) for group in groups]
        node_keys = [sorted(keys[span]) for span in spans]  # each node's keys, in member order
        nodes = sorted(range(len(groups)), key=node_keys.__getitem__)
        order = [r for n in nodes for r in members[n]]
        if order == identity:
            return s  # already sorted (about half the states the search meets): no copy
        moved = itemgetter(*order)  # two or more requests: a one-request order is the identity
        new_id = order.index  # request r is renamed new_id(r)
        if owner != NO_OWNER and new_id(owner) != owner:
            lock = redis_lock.key(new_id(owner), lock.remaining)
        flights = tuple([NO_LEADER if leader == NO_LEADER else new_id(leader)
                         for leader in map(leaders.__getitem__, nodes)])
        if plain:  # held, seen and token are the same for every request: nothing to move
            return evolve(s, pc=moved(pcs), timer=moved(timers), flights=flights, lock=lock)
        return evolve(s, pc=moved(pcs), timer=moved(timers), held=moved(held), seen=moved(seen),
                      token=moved(token), flights=flights, lock=lock)

    @cached_property
    def _shape(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[range, ...], list[int],
                              tuple[int, ...], tuple[slice, ...]]:
        """For :meth:`canonical` and the concrete fast paths: the requests, each one's node,
        each node's requests, the identity order, the value of ``held``, ``seen`` and
        ``token`` when their features are off (then they cannot tell requests apart, and the
        sort leaves them out), and each node's requests as a slice of a per-request list."""
        cfg = self.cfg
        requests = tuple(range(cfg.requests))
        groups = tuple(cfg.requests_of(n) for n in range(cfg.nodes))
        return (requests, tuple(cfg.node_of(r) for r in requests), groups, list(requests),
                (0,) * cfg.requests, tuple(slice(g.start, g.stop) for g in groups))

    # -- the steps of the program --------------------------------------------------------
    #
    # Each helper has a concrete fast path for the explicit search, which calls them hundreds
    # of thousands of times: when the state's per-request fields are tuples (not the
    # quantified encoding's arrays, engines/quantified.py) and every value the helper branches
    # on is a plain int, it computes the changed fields in plain Python and makes the new
    # state once. Otherwise (z3 terms: engines/smt.py, the all-sizes proof) it takes the
    # generic path through models.ops. tests/engines/test_expectations.py holds the two to the
    # same successors on every row (each state also evaluated with z3 constants for values).
    # ``changes``: the step's other changes to the stores (fields the helper neither reads nor
    # writes), made in the same new state.

    def contend(self, s: StackState, r: int, **changes: object) -> StackState:
        """r is the one to act for its node: try the lock if there is one, else go ahead."""
        if self.cfg.lock:
            return self._goto(s, r, READY, changes)
        return self.cleared(s, r, **changes)

    def cleared(self, s: StackState, r: int, **changes: object) -> StackState:
        """r may rebuild: re-check the cache first if configured, else query the database."""
        if self.cfg.recheck:
            return self._goto(s, r, RECHECK, changes)
        return self.start_rebuild(s, r, **changes)

    def start_rebuild(self, s: StackState, r: int, **changes: object) -> StackState:
        """r queries the database: it reads the current version, which its fill will write."""
        pcs, timers, seen = s.pc, s.timer, s.seen
        if type(pcs) is tuple and type(timers) is tuple and type(seen) is tuple:
            return evolve(s, pc=(*pcs[:r], REBUILDING, *pcs[r + 1:]),
                          timer=(*timers[:r], 0, *timers[r + 1:]), starts=s.starts + 1,
                          seen=(*seen[:r], s.db, *seen[r + 1:]), **changes)
        if changes:
            s = evolve(s, **changes)
        return evolve(self.goto(s, r, REBUILDING), starts=s.starts + 1,
                       seen=ops.set_at(s.seen, r, s.db))

    def _goto(self, s: StackState, r: int, label: PC, changes: dict[str, object]) -> StackState:
        """:meth:`goto`, with ``changes`` made in the same new state."""
        if not changes:
            return self.goto(s, r, label)
        pcs, timers = s.pc, s.timer
        if type(pcs) is tuple and type(timers) is tuple:
            return evolve(s, pc=(*pcs[:r], label, *pcs[r + 1:]),
                          timer=(*timers[:r], 0, *timers[r + 1:]), **changes)
        return self.goto(evolve(s, **changes), r, label)

    def lapse_detector(self) -> Callable[[StackState, Action], Bool] | None:
        """How NOLAPSED tells a lapsed write (:mod:`properties.lapse` keeps the history in a
        monitor, so no state count of ``stack`` changes); ``None`` without a lock."""
        return self.lapsed_write if self.cfg.lock else None

    def lapsed_write(self, s: StackState, a: Action) -> Bool:
        """``a`` is an accepted cache fill (``Finish``) by a request that no longer holds the
        lock: it expired under a slow or paused rebuild, and maybe another request holds it
        now (Kleppmann's overlap). With fencing a lapsed fill is still accepted until a
        newer token has been."""
        if not isinstance(a, Finish):
            return False
        return s.lock.owner != a.r

    def issue_token(self, s: StackState, r: int) -> StackState:
        """With fencing, the lock grant carries the next token (``INCR lock:key:fence``)."""
        if not self.cfg.fencing:
            return s
        return evolve(s, fence=s.fence + 1, token=ops.set_at(s.token, r, s.fence + 1))

    def fill_accepted(self, s: StackState, r: int) -> Bool:
        """The cache takes r's fill: always without fencing, else if r's token is not older
        than the highest it has accepted."""
        if not self.cfg.fencing:
            return True
        return s.token[r] >= s.accepted

    def write(self, s: StackState) -> StackState:
        """The writer commits ``db + 1`` and deletes the key; with fencing the delete takes the
        next token and the cache accepts it, so every fill with an older token is refused."""
        written = evolve(s, db=s.db + 1, cache_filled=False)
        if not self.cfg.fencing:
            return written
        return evolve(written, fence=s.fence + 1, accepted=s.fence + 1)

    def crash(self, s: StackState, r: int) -> StackState:
        """r's process dies, holding the lock: every request that process is serving dies
        with it (its client gets a connection error: an answer, not service), whatever step it
        was at; the node restarts with an empty single-flight map, and requests that arrive
        later are served by the restarted process. The lock's ``EX`` is the safety net."""
        node = self.cfg.node_of(r)
        members = self.cfg.requests_of(node)

        def alive(pc: Int) -> Bool:
            return all_of(pc != IDLE, negate(any_of(*(pc == d for d in DONE))))

        pcs = ops.update_where(s.pc, members, alive, lambda pc: CRASHED)
        flights = singleflight.resolve(s.flights, node) if self.cfg.singleflight \
            else s.flights
        return evolve(
            s, pc=pcs, flights=flights, crashed=s.crashed + 1,
            timer=ops.update_where(s.timer, members, lambda pc: pc == CRASHED, lambda t: 0,
                                   by=pcs),
            held=ops.update_where(s.held, members, alive, lambda h: False, by=s.pc),
            seen=ops.update_where(s.seen, members, alive, lambda v: 0, by=s.pc),
            token=ops.update_where(s.token, members, alive, lambda t: 0, by=s.pc))

    def release(self, s: StackState, r: int) -> StackState:
        """r gives the lock back in one command (DEL or the compare-and-delete script)."""
        if not self.cfg.lock:
            return s
        released = self._released(s, r)
        if released is not None:
            return evolve(s, **released) if released else s
        foreign = redis_lock.removes_foreign(s.lock, r, self.cfg.release)
        return evolve(s, lock=redis_lock.release(s.lock, r, self.cfg.release),
                       foreign=any_of(s.foreign, foreign))

    def _released(self, s: StackState, r: int) -> dict[str, object] | None:
        """The fields :meth:`release` changes (with a lock), in plain Python; ``None`` when
        the lock's owner or the ``foreign`` flag is a z3 term."""
        lock, foreign = s.lock, s.foreign
        owner = lock.owner
        if type(owner) is not int or type(r) is not int or not isinstance(foreign, int):
            return None
        if self.cfg.release is Release.CAD:  # compare-and-delete: only its own lock
            after, removes = (redis_lock.FREE if owner == r else lock), False
        else:  # DEL: whatever lock is there
            after, removes = redis_lock.FREE, owner != NO_OWNER and owner != r
        changes: dict[str, object] = {}
        if after is not lock:
            changes["lock"] = after
        flagged = bool(foreign) or removes  # any_of(foreign, removes), as a bool
        if flagged is not foreign:
            changes["foreign"] = flagged
        return changes

    def release_and_end(self, s: StackState, r: int, **changes: object) -> StackState:
        """r releases the lock and serves the value; with ``release=get-del`` it first GETs
        the lock and remembers whether the token was its own (the DEL is a later step)."""
        if not (self.cfg.lock and self.cfg.release is Release.GET_DEL):
            released = self._released(s, r) if self.cfg.lock else {}
            ended = self._ended(s, r, GOT_VALUE)
            if released is not None and ended is not None:
                return evolve(s, **changes, **released, **ended)
            if changes:
                s = evolve(s, **changes)
            return self.end(self.release(s, r), r, GOT_VALUE)
        if changes:
            s = evolve(s, **changes)
        mine = s.lock.owner == r
        return self.goto(s, r, ite(mine, RELEASING_MINE, RELEASING_OTHER))

    def end(self, s: StackState, r: int, outcome: PC) -> StackState:
        """r ends with ``outcome``; as its node's leader it hands the outcome to followers."""
        changes = self._ended(s, r, outcome)
        if changes is not None:
            return evolve(s, **changes)
        ended = evolve(self.goto(s, r, outcome), held=ops.set_at(s.held, r, False),
                        seen=ops.set_at(s.seen, r, 0), token=ops.set_at(s.token, r, 0))
        if not self.cfg.singleflight:
            return ended
        node = self.cfg.node_of(r)
        is_leader = s.flights[node] == r
        if is_leader is False:  # concretely no leader (a hit, a follower): nobody to resolve
            return ended
        pcs = ops.update_where(ended.pc, self.cfg.requests_of(node),
                               lambda pc: all_of(is_leader, pc == FOLLOWING), lambda pc: outcome)
        flights = ite(is_leader, singleflight.resolve(s.flights, node), s.flights)
        return evolve(ended, pc=pcs, flights=flights)

    def _ended(self, s: StackState, r: int, outcome: PC) -> dict[str, object] | None:
        """The fields :meth:`end` changes, in plain Python (a field left as it was is not
        listed); ``None`` when they are not tuples, or the node's leader (or, when r leads,
        the label of one of its node's requests) is a z3 term."""
        pcs, timers, held, seen, token = s.pc, s.timer, s.held, s.seen, s.token
        if not (type(pcs) is tuple and type(timers) is tuple and type(held) is tuple
                and type(seen) is tuple and type(token) is tuple):
            return None
        labels = list(pcs)
        labels[r] = outcome
        changes: dict[str, object] = {}
        if self.cfg.singleflight:
            flights = s.flights
            if type(flights) is not tuple:
                return None
            node = self._shape[1][r]
            leader = flights[node]
            if not isinstance(leader, int):
                return None
            if leader == r:  # r leads its node's flight: its followers get its outcome
                for q in self._shape[2][node]:
                    label = labels[q]
                    if not isinstance(label, int):
                        return None
                    if label == FOLLOWING:
                        labels[q] = outcome
                changes["flights"] = (*flights[:node], NO_LEADER, *flights[node + 1:])
        changes["pc"] = tuple(labels)
        # each reset to its resting value (0, False), where it is not there already
        if not (type(timers[r]) is int and timers[r] == 0):
            changes["timer"] = (*timers[:r], 0, *timers[r + 1:])
        if held[r] is not False:
            changes["held"] = (*held[:r], False, *held[r + 1:])
        if not (type(seen[r]) is int and seen[r] == 0):
            changes["seen"] = (*seen[:r], 0, *seen[r + 1:])
        if not (type(token[r]) is int and token[r] == 0):
            changes["token"] = (*token[:r], 0, *token[r + 1:])
        return changes

    # -- time and the stores ------------------------------------------------------------

    def tick_enabled(self, s: StackState) -> Bool:
        if self.cfg.horizon > 0:
            return all_of(self.urgent_free(s), s.t < self.cfg.horizon)
        return self.urgent_free(s)

    def tick_stores(self, s: StackState) -> StackState:
        """The lock ages; the absolute clock moves only when a horizon bounds it."""
        lock = redis_lock.tick(s.lock)
        if self.cfg.horizon > 0:
            return evolve(s, lock=lock, t=s.t + 1)
        return s if lock is s.lock else evolve(s, lock=lock)  # a free lock stays free

    # -- narration and the server's view ---------------------------------------------------

    def keyspace(self, s: StackState) -> dict[str, tuple[int | None, int | None]]:
        """The lock key (its owner's token and life) and the cache key (present or not)."""
        owner = s.lock.owner
        return {"lock": (None, None) if owner == NO_OWNER else (owner, s.lock.remaining),
                "cache": (0 if s.cache_filled else None, None)}

    def facts(self, before: StackState, after: StackState, r: int | None) -> dict[str, str]:
        """Who held the lock before the step, and what a release answered."""
        if not self.cfg.lock:
            return {"db": f"v{after.db}"}
        owner = before.lock.owner
        facts = {"db": f"v{after.db}", "owner": "" if owner == NO_OWNER else f"r{owner}",
                 "no_owner": "yes" if owner == NO_OWNER else ""}
        releases = r is not None and after.pc[r] in DONE and before.pc[r] in (
            RECHECK, REBUILDING, RELEASING_MINE)
        reads = r is not None and after.pc[r] in (RELEASING_MINE, RELEASING_OTHER) and \
            before.pc[r] in (RECHECK, REBUILDING)
        if reads:
            facts["get_reply"] = f"r{owner}" if owner != NO_OWNER else "nil"
        elif releases and self.cfg.release is not Release.CAD:
            facts["del_reply"] = "0" if owner == NO_OWNER else "1"
            facts["foreign"] = f"r{owner}" if owner not in (NO_OWNER, r) else ""
        elif releases:
            facts["cad_reply"] = "1" if owner == r else "0 (not the owner)"
        return facts

    def _describe_request(self, s: StackState, r: int) -> str:
        pc = PC(s.pc[r])
        label = SHORT[pc]
        if pc == REBUILDING:
            label = self.timer_column("rebuild", s, r)
            if self.cfg.writers:
                label += f" v{s.seen[r]}"
            if self.cfg.fencing:
                label += f" #{s.token[r]}"
            if s.held[r]:
                label += " paused"
        elif pc == SLEEPING:
            label = f"sleep {s.timer[r]}"
        elif pc in (RELEASING_MINE, RELEASING_OTHER):
            label = self.timer_column(label, s, r)
        if self.cfg.singleflight and s.flights[self.cfg.node_of(r)] == r:
            label += "*"
        return label


def build(params: Mapping[str, ParamValue], name: str = "stack") -> StackModel:
    """The ``stack`` model for complete, validated parameters."""
    return StackModel(StackConfig.from_params(params), params, name=name)


SPEC = PolicySpec("stack", "single-flight per node + SET NX EX lock + re-check + stale fallback",
                  PARAMS, build, size=("nodes", "per_node"), order=0)

PRESETS = (
    Preset("none", "stack", "no mitigation: every miss rebuilds",
           {"singleflight": False, "lock": False}),
    Preset("singleflight", "stack", "in-process single-flight only",
           {"singleflight": True, "lock": False}),
    Preset("lock-del", "stack", "Redis lock released with an unconditional DEL",
           {"singleflight": False, "lock": True, "release": "del"}),
    Preset("lock-cad", "stack", "Redis lock released with compare-and-delete",
           {"singleflight": False, "lock": True, "release": "cad"}),
    Preset("stack", "stack", "single-flight + Redis lock (compare-and-delete)",
           {"singleflight": True, "lock": True, "release": "cad", "recheck": False}),
    Preset("stack-recheck", "stack", "the stack, re-checking the cache before rebuilding",
           {"singleflight": True, "lock": True, "release": "cad", "recheck": True}),
)
