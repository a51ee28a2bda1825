"""``failover``: a Redis lock on a primary with an asynchronously replicated replica, and what a
failover does to it (Kleppmann, "How to do distributed locking", 2016; the Redis docs on
``WAIT`` and on replication).

The mechanism, as a client runs it:

1. ``SET lock <token> NX PX <ttl>`` on the current primary. ``OK``: the client holds the lock;
   ``nil``: it is busy and the client gives up ("busy", an explicit answer).
2. With ``wait`` on, the client then sends ``WAIT 1 <timeout>`` and proceeds only once the
   replica has acknowledged the write (``WAIT`` returns 1). ``WAIT`` returns 0 after
   ``wait_timeout`` ticks if the replica has not: with ``on_timeout=abort`` the client gives
   the lock back (the compare-and-delete below) and gives up; with ``on_timeout=proceed`` it
   ignores the reply and goes ahead, as a client that does not read ``WAIT``'s answer does.
   ``WAIT`` does not undo the ``SET``: the key stays on the primary either way.
3. The holder does the protected work for ``work`` ticks and then writes the storage (a
   database row, or the cache fill), then releases with the compare-and-delete script
   ``if redis.call("get",KEYS[1])==ARGV[1] then return redis.call("del",KEYS[1]) end``.

Replication and failover:

- The primary acknowledges every command before the replica has it. Replication is its own
  step (``Replicate()``), which may lag up to ``lag`` ticks behind the oldest write the replica
  has not received (Redis streams commands in order, so one step delivers everything pending).
- ``Failover()``: the primary dies and the replica is promoted (Sentinel or Cluster failover,
  or an operator's ``REPLICAOF NO ONE``) with exactly what it had received. The dead primary
  comes back as the new primary's replica and resynchronises in full, so the pair is in sync
  right after. At most ``failovers`` happen in a run. A client blocked in ``WAIT`` loses its
  connection with the primary: it gets an error and gives up without the lock.
- Expiry: a key expires at the same moment on both servers. Redis replicates the ``PX`` as an
  absolute time, the primary propagates a ``DEL`` when a key expires, and a replica already
  treats a key past its time as missing; a promoted replica expires it by that same time
  (``tests/conformance/test_redis_failover.py`` holds the promoted key's life to the model).

The protected storage and its properties. MUTEX: at most one request that believes it holds
the lock is working at once (``acting_holders``: requests at ``WORKING``). NOLAPSED: the
storage never accepts a write from a request whose grant has been superseded, which the ghost
``written`` (the newest grant whose write the storage accepted) decides: a write from a request
granted earlier than that lands on top of a later holder's write, Kleppmann's overlap. A write
from a holder whose key merely expired, with nobody granted the lock since, is not counted: no
later holder exists whose write it could overwrite, and the storage's history is the same as if
it had written in time.

Fencing (``fencing=on``): every grant carries a token from a counter (``INCR lock:fence``, sent
in the same ``MULTI`` as the ``SET``), every write carries its token, and the storage rejects a
write whose token is lower than the highest it has accepted. Where the counter lives matters,
and is the parameter ``fence_counter``:

- ``primary``: the counter is a key on the lock's primary. It is replicated asynchronously like
  the lock, so a failover can take it *back*: the promoted replica hands out a token already
  issued, the storage accepts the equal token, and fencing fails. With ``wait`` on, the ``WAIT``
  covers the ``INCR`` too: a holder proceeds only once its token is on the replica.
- ``external``: a counter that survives the failover (kept by the storage itself, or by a
  consensus store): tokens only grow.

With DB writers (``writers``), the holder's work is the cache fill: it reads the DB version when
it starts and the storage is the cache; a writer commits and deletes the cached value, taking a
token from the same counter (without that no token could order a fill against the delete, as in
``stack``). FRESH then reads the cache.

What is abstracted away, and why that is safe:

- Promotion is immediate: in production Sentinel waits ``down-after-milliseconds`` first. A
  detection time longer than the ``ttl`` would let the lost key expire before anyone could take
  the lock again; immediate promotion is the worst case, and Cluster or an operator can promote
  well inside a lock's life.
- One key and one replica. ``WAIT 1`` with one replica is the strongest ``WAIT`` there is, and
  the promoted replica is the one that acknowledged.
- A request takes the lock once and never retries: the race is between the grants, and a retry
  is another request.
- The storage write and the release are one step: the work is urgent once due (no tick passes),
  and a failover between the two orders the same as a failover before or after both.
- A client whose ``WAIT`` failed with the primary gives up without a further command: its key,
  wherever it survived, expires by its ``PX``.

Meant to fail: MUTEX (and ONE) with a failover and ``wait`` off: the primary acknowledges the
``SET`` and dies before the replica has it, the promoted replica grants the lock again, and two
holders work. NOLAPSED without fencing when the second holder writes first; with fencing and
``fence_counter=primary`` too (the counter went back with the failover); it holds with an
``external`` counter. MUTEX holds with ``wait`` on while ``ttl >= lag + work``; with
``on_timeout=proceed`` and ``wait_timeout <= lag`` it fails again, and with ``ttl < lag`` a key
can expire while its ``WAIT`` waits, which then still answers 1 (``WAIT`` reports replication,
not the lock). A GC ``pause`` longer than the lock's remaining life breaks MUTEX without any
failover (the classic expiry case).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import ClassVar

from herdproof.models import environment, ops, policy, program, redis_lock
from herdproof.models.core import Action, Invariant
from herdproof.models.narration import Message, Say, answer, call, note
from herdproof.models.observation import Observation
from herdproof.models.ops import Bool, Int, all_of, any_of, implies, ite, negate
from herdproof.models.params import Param, ParamValue
from herdproof.models.program import ProgramModel, RequestAction, Step, Timer, not_on_a_server
from herdproof.models.redis_lock import NO_OWNER, RedisLock, Release
from herdproof.models.symmetry import Symmetry

PARAMS: tuple[Param, ...] = (
    Param("requests", int, 2, "clients that each take the lock once and do the work",
          minimum=1),
    Param("ttl", int, 4, "lock life in ticks (SET ... PX)", minimum=1, timing=True),
    Param("work", int, 2, "ticks the holder works before it writes the storage", minimum=1,
          timing=True),
    Param("lag", int, 1, "replication applies a write at most this many ticks after it",
          minimum=0, timing=True),
    Param("failovers", int, 1, "at most this many failovers (primary dies, replica promoted)",
          minimum=0),
    Param("wait", bool, False, "WAIT 1 <timeout> after the SET: proceed once the replica has it"),
    Param("wait_timeout", int, 2, "wait=on: ticks after which WAIT returns 0", minimum=0,
          timing=True),
    Param("on_timeout", str, "abort", "wait=on: when WAIT returns 0, release and give up "
          "(abort) or go ahead regardless (proceed)", choices=("abort", "proceed")),
    Param("fencing", bool, False, "grants carry increasing tokens (INCR); the storage rejects "
          "a write with a token below the highest it accepted"),
    Param("fence_counter", str, "primary", "fencing=on: the counter lives on the lock's "
          "primary (replicated asynchronously) or somewhere a failover cannot roll back "
          "(external)", choices=("primary", "external")),
    *program.environment_params(),
)


class PC(IntEnum):
    """Where a request is in its program."""

    IDLE = 0        # not arrived yet
    WAITING = 1     # wait=on: SET acknowledged, blocked in WAIT 1 until the replica has it
    REPLICATED = 2  # wait=on: the replica acknowledged; WAIT is about to return 1
    WORKING = 3     # holds the lock (as far as it knows): the protected work
    GOT_DONE = 4    # wrote the storage and released
    GOT_BUSY = 5    # SET NX answered nil: the lock is busy, gave up
    GAVE_UP = 6     # WAIT returned 0 (and it released), or failed with the primary
    REJECTED = 7    # fencing: the storage refused its write (a newer token was there)
    CRASHED = 8     # its process died while working


(IDLE, WAITING, REPLICATED, WORKING, GOT_DONE, GOT_BUSY, GAVE_UP, REJECTED,
 CRASHED) = tuple(PC)
DONE = (GOT_DONE, GOT_BUSY, GAVE_UP, REJECTED, CRASHED)
#: The labels where a request holds a grant: its token and grant number are kept there.
GRANTED = (WAITING, REPLICATED, WORKING)
SHORT = {IDLE: "-", WAITING: "wait", REPLICATED: "acked", WORKING: "work", GOT_DONE: "done",
         GOT_BUSY: "busy", GAVE_UP: "gave up", REJECTED: "rejected", CRASHED: "crashed"}
#: ``behind`` when the replica has every write the primary acknowledged.
IN_SYNC = -1


@dataclass(frozen=True, slots=True)
class FailoverConfig(environment.EnvironmentConfig):
    """The parameters of one instance; timing constants may be z3 terms in symbolic runs."""

    requests: int
    ttl: Int
    work: Int
    lag: Int
    failovers: int
    wait: bool
    wait_timeout: Int
    on_timeout: str
    fencing: bool
    fence_counter: str

    @property
    def counter_on_primary(self) -> bool:
        """The fencing counter is a key on the lock's primary (replicated with it)."""
        return self.fencing and self.fence_counter == "primary"


@dataclass(frozen=True, slots=True)
class FailoverState(program.RequestsState):
    """One moment of the race.

    ``timer[r]``: elapsed work ticks at WORKING, elapsed ``WAIT`` ticks at WAITING and
    REPLICATED, else 0. ``primary`` / ``replica``: the lock key on each server (owner and
    remaining life). ``behind``: ticks since the oldest write the replica has not received
    (``IN_SYNC``: none). ``fence`` / ``fence_replica``: the fencing counter on the primary (or
    the external counter) and on the replica. ``token[r]``: r's fencing token; ``accepted``:
    the highest token the storage accepted. ``filled`` / ``cached``: the storage holds a write,
    of DB version ``cached``. Ghosts: ``grant[r]`` the order of r's grant (0: none held),
    ``grants`` grants so far, ``written`` the newest grant whose write the storage accepted,
    ``lapsed`` the storage accepted a write from a superseded grant; ``failed`` failovers so
    far.
    """

    primary: RedisLock
    replica: RedisLock
    behind: Int
    fence: Int
    fence_replica: Int
    token: tuple[Int, ...]
    accepted: Int
    filled: Bool
    cached: Int
    grant: tuple[Int, ...]
    grants: Int
    written: Int
    lapsed: Bool
    failed: Int


class WinLock(RequestAction):
    """Request r's SET lock NX PX on the primary succeeds; enabled when r has not arrived and
    the primary holds no live lock key."""


class LoseLock(RequestAction):
    """Request r's SET lock NX PX answers nil and r gives up (busy); enabled when r has not
    arrived and the primary holds a live lock key."""


class Acked(RequestAction):
    """Request r's WAIT 1 returns 1 and r starts the work; enabled once the replica has r's
    write."""


class WaitTimedOut(RequestAction):
    """Request r's WAIT 1 returns 0 after its timeout: r releases with compare-and-delete and
    gives up; enabled when the timeout is reached and the replica still lacks r's write."""


class ProceedUnacked(RequestAction):
    """Request r's WAIT 1 returns 0 after its timeout and r works anyway (on_timeout=proceed);
    enabled when the timeout is reached and the replica still lacks r's write."""


class Store(RequestAction):
    """Request r writes the storage, which accepts it, then releases the lock with
    compare-and-delete; enabled when r's work is due (and, with fencing, its token is not
    below the highest the storage accepted)."""


class StoreRejected(RequestAction):
    """Request r's write carries a token below the highest the storage accepted and is
    refused; r releases with compare-and-delete. Enabled when due, with fencing."""


class Replicate(Action):
    """The replica receives every write the primary acknowledged so far; enabled while it
    lacks some, and due ``lag`` ticks after the oldest."""


class Failover(Action):
    """The primary dies and the replica is promoted with what it has; clients blocked in WAIT
    lose their connection and give up. Enabled while fewer than ``failovers`` happened."""

    by_environment: ClassVar[bool] = True


# -- the program: one request, step by step ------------------------------------------------

PRIMARY, REPLICA, STORAGE, DB = "Primary", "Replica", "Storage", "DB"
SET_NX = call(PRIMARY, "SET lock {r} NX PX {ttl}{incr}")
CAD = call(PRIMARY, "EVAL compare-and-delete lock {r}")
CAD_REPLY = answer(PRIMARY, "{cad_reply}")
TWO_SERVERS = not_on_a_server(
    "the failover model runs on two servers (a primary and its replica) and kills one, which "
    "`replay --redis` against a single server cannot do; tests/conformance/test_redis_failover.py "
    "drives a real pair instead")


def _waits(cfg: FailoverConfig) -> bool:
    return cfg.wait


def _fenced(cfg: FailoverConfig) -> bool:
    return cfg.fencing


STEPS: tuple[Step[FailoverState], ...] = (
    Step(WinLock, at=IDLE, command="SET lock <token> NX PX <ttl> (with fencing: and INCR "
         "lock:fence, in one MULTI)", sends=TWO_SERVERS,
         says=(SET_NX, answer(PRIMARY, "OK{token}"),
               note("the replica does not have it yet", over=PRIMARY, only="unreplicated"),
               note("works {work} tick(s), then writes the storage", only="no_wait"),
               call(PRIMARY, "WAIT 1 (timeout {wait_timeout} tick(s))", only="waits")),
         guard=lambda m, s, r: redis_lock.is_free(s.primary),
         effect=lambda m, s, r: m.granted(s, r)),
    Step(LoseLock, at=IDLE, command="SET lock <token> NX PX <ttl>", sends=TWO_SERVERS,
         says=(SET_NX, answer(PRIMARY, "nil (held by {owner})"), note("gives up: busy")),
         guard=lambda m, s, r: negate(redis_lock.is_free(s.primary)),
         effect=lambda m, s, r: m.goto(s, r, GOT_BUSY)),
    Step(Acked, at=REPLICATED, when=_waits, command="WAIT 1 <timeout> returns 1",
         sends=TWO_SERVERS,
         says=(answer(PRIMARY, "1 (the replica has it)"),
               note("works {work} tick(s), then writes the storage")),
         effect=lambda m, s, r: m.start_work(s, r)),
    Step(WaitTimedOut, at=WAITING, when=lambda cfg: cfg.wait and cfg.on_timeout == "abort",
         command="WAIT 1 <timeout> returns 0; EVAL compare-and-delete", sends=TWO_SERVERS,
         says=(answer(PRIMARY, "0 (timed out: the replica does not have it)"), CAD, CAD_REPLY,
               note("gives up without the lock")),
         guard=lambda m, s, r: s.timer[r] >= m.cfg.wait_timeout,
         effect=lambda m, s, r: m.end(m.release(s, r), r, GAVE_UP)),
    Step(ProceedUnacked, at=WAITING, when=lambda cfg: cfg.wait and cfg.on_timeout == "proceed",
         command="WAIT 1 <timeout> returns 0, and the client goes ahead", sends=TWO_SERVERS,
         says=(answer(PRIMARY, "0 (timed out: the replica does not have it)"),
               note("ignores it: works {work} tick(s), then writes the storage")),
         guard=lambda m, s, r: s.timer[r] >= m.cfg.wait_timeout,
         effect=lambda m, s, r: m.start_work(s, r)),
    Step(Store, at=WORKING, command="write the storage (token), then EVAL compare-and-delete",
         sends=TWO_SERVERS,
         says=(call(STORAGE, "write{version}{token}"), answer(STORAGE, "accepted"),
               note("{r}'s grant is superseded: it writes over a later holder's write",
                    over=STORAGE, only="lapsed"),
               CAD, CAD_REPLY),
         guard=lambda m, s, r: all_of(m.completes(s, r), m.accepts(s, r)),
         effect=lambda m, s, r: m.end(m.release(m.stored(s, r), r), r, GOT_DONE)),
    Step(StoreRejected, at=WORKING, when=_fenced,
         command="write the storage (token): refused; EVAL compare-and-delete",
         sends=TWO_SERVERS,
         says=(call(STORAGE, "write{version}{token}"),
               answer(STORAGE, "rejected (token {mine} < {accepted})"), CAD, CAD_REPLY),
         guard=lambda m, s, r: all_of(m.completes(s, r), negate(m.accepts(s, r))),
         effect=lambda m, s, r: m.end(m.release(s, r), r, REJECTED)),
)

# -- the servers: replication, and the fault that kills the primary --------------------------

SERVERS: tuple[Step[FailoverState], ...] = (
    Step(Replicate, at=(), command="the replication stream reaches the replica",
         sends=TWO_SERVERS,
         says=(Say(PRIMARY, REPLICA, "replication stream: {stream}"),),
         guard=lambda m, s, _: s.behind != IN_SYNC,
         effect=lambda m, s, _: m.replicate(s)),
    Step(Failover, at=(), when=lambda cfg: cfg.failovers > 0,
         command="the primary dies; REPLICAOF NO ONE on the replica (Sentinel's promotion)",
         sends=TWO_SERVERS,
         says=(note("dies, with the writes the replica has not received", over=PRIMARY),
               note("{waiters}: WAIT fails with the connection, gives up", over=PRIMARY,
                    only="waiters"),
               note("promoted (REPLICAOF NO ONE): now the primary, lock {replica_lock}",
                    over=REPLICA),
               Say(REPLICA, PRIMARY, "the old primary restarts as the new one's replica "
                   "(full resync)")),
         guard=lambda m, s, _: s.failed < m.cfg.failovers,
         effect=lambda m, s, _: m.failover(s)),
)


#: ``WAIT 1 <timeout>``'s clock: it runs from the call, through the acknowledgement, up to
#: ``wait_timeout``.
WAIT_TIMEOUT = Timer(up=True, duration="wait_timeout")


class FailoverModel(ProgramModel[FailoverConfig, FailoverState]):
    """The ``failover`` transition system for one configuration, compiled from :data:`STEPS`
    (a request) and :data:`SERVERS` (replication and the failover)."""

    STEPS = STEPS
    BACKGROUND = SERVERS
    TIMERS: ClassVar[Mapping[int, Timer]] = {WAITING: WAIT_TIMEOUT, REPLICATED: WAIT_TIMEOUT,
                                              WORKING: Timer(up=True, duration="work")}
    URGENT = (REPLICATED,)
    WORK = WORKING
    DONE = DONE
    ERRORS = (CRASHED,)
    FALLBACKS = (GOT_BUSY, GAVE_UP, REJECTED)
    # the servers by their roles at the start: after a failover the replica's column is the
    # primary's (:meth:`narrate` swaps the roles); the storage; the database writers commit to
    PARTICIPANTS = (PRIMARY, REPLICA, STORAGE, DB)
    ENVIRONMENT_SAYS: ClassVar[Mapping[str, tuple[Say, ...]]] = {
        "Pause": (note("stalls for a tick before its write (a GC pause)"),),
        "Crash": (note("crashes while working: never writes, its key expires by PX"),),
        "Write": (note("a writer commits {db}", over=DB),
                  Say(DB, STORAGE, "delete the cached value{writer_token}"))}

    # -- the contract ------------------------------------------------------------------

    def initial_states(self) -> tuple[FailoverState, ...]:
        n = self.cfg.requests
        return (FailoverState(pc=(IDLE,) * n, timer=(0,) * n, held=(False,) * n, seen=(0,) * n,
                              db=0, starts=0, crashed=0, primary=RedisLock(),
                              replica=RedisLock(), behind=IN_SYNC, fence=0, fence_replica=0,
                              token=(0,) * n, accepted=0, filled=False, cached=0,
                              grant=(0,) * n, grants=0, written=0, lapsed=False, failed=0),)

    def in_domain(self, s: FailoverState) -> Bool:
        cfg = self.cfg
        n = cfg.requests
        tokens = n + cfg.writers if cfg.fencing else 0
        # labels only some configurations reach: WAIT's, a refused write, a crash
        absent = [label for label, present in ((WAITING, cfg.wait), (REPLICATED, cfg.wait),
                                               (GAVE_UP, cfg.wait), (REJECTED, cfg.fencing),
                                               (CRASHED, self.crash_bound > 0)) if not present]
        per_request = [
            all_of(pc >= IDLE, pc <= CRASHED, *(pc != label for label in absent),
                   self.timer_in_domain(pc, timer, held),
                   seen >= 0, seen <= s.db, token >= 0, token <= tokens,
                   grant >= 0, grant <= s.grants,
                   ite(any_of(*(pc == label for label in GRANTED)), grant >= 1,
                       all_of(grant == 0, token == 0, seen == 0)))
            for pc, timer, held, seen, token, grant in zip(
                s.pc, s.timer, s.held, s.seen, s.token, s.grant, strict=True)]
        return all_of(
            *per_request,
            redis_lock.in_domain(s.primary, n, cfg.ttl),
            redis_lock.in_domain(s.replica, n, cfg.ttl),
            s.behind >= IN_SYNC, s.behind <= cfg.lag,
            s.fence >= 0, s.fence <= tokens, s.fence_replica >= 0, s.fence_replica <= s.fence,
            implies(negate(cfg.counter_on_primary), s.fence_replica == 0),
            s.accepted >= 0, s.accepted <= tokens,
            s.cached >= 0, s.cached <= s.db, implies(negate(s.filled), s.cached == 0),
            s.grants >= 0, s.grants <= n, s.written >= 0, s.written <= s.grants,
            s.db >= 0, s.db <= cfg.writers, s.starts >= 0, s.starts <= n,
            s.crashed >= 0, s.crashed <= self.crash_bound,
            s.failed >= 0, s.failed <= cfg.failovers,
        )

    def observe(self, s: FailoverState) -> Observation:
        base = self.observation(s, s.filled, cached=s.cached, foreign=False)
        return replace(base, acting_holders=ops.count_where(s.pc, lambda pc: pc == WORKING),
                       lapsed_write=s.lapsed)

    def describe(self, s: FailoverState) -> dict[str, str]:
        cfg = self.cfg
        columns = {f"r{r}": self._describe_request(s, r) for r in range(cfg.requests)}
        columns["primary"] = _describe_lock(s.primary)
        columns["replica"] = _describe_lock(s.replica)
        columns["repl"] = "in sync" if s.behind == IN_SYNC else f"behind {s.behind}"
        if cfg.fencing:
            columns["fence"] = f"{s.fence}/{s.fence_replica}" if cfg.counter_on_primary \
                else str(s.fence)
        storage = "-"
        if s.filled:
            storage = f"v{s.cached}" if cfg.writers else "written"
        if cfg.fencing:
            storage += f" (#{s.accepted})"
        columns["storage"] = storage
        if cfg.writers:
            columns["db"] = f"v{s.db}"
        if cfg.failovers:
            columns["failovers"] = str(s.failed)
        return columns

    def invariants(self) -> tuple[Invariant, ...]:
        """Candidate facts for induction proofs; the SMT engine keeps the inductive ones.

        - holder-owns: a holder at work owns the key on the primary, and its key outlives the
          work (``remaining + elapsed >= work``: true while no pause stretches the work and the
          key was set with at least ``work`` ticks to go, i.e. ``ttl >= work`` without
          ``WAIT`` and ``ttl >= lag + work`` with it).
        - holder-replicated (wait=on): the replica has a holder's key, with the same life, so a
          promotion keeps it.
        - waiter-owns (wait=on): a client blocked in ``WAIT`` owns the key on the primary, set
          ``timer`` ticks ago; and the replica is at least that far behind (its write is the
          oldest it lacks, or a later one), so ``timer <= lag``.
        - acked-owns (wait=on): a client whose write the replica acknowledged owns the key on
          both servers, set ``timer <= lag`` ticks ago.
        - newest-grant: a holder has the newest grant, and no write from a later one is in the
          storage (true while one holder at a time exists: then no write lapses).
        - token-issued, fenced-order, superseded-fenced, fence-ahead (fencing): tokens follow
          the grants' order and the storage has accepted a token above every superseded
          holder's, so it refuses a superseded grant's write (not inductive when a failover can
          take the counter back: the solver drops them there).
        - fenced-read (fencing): a holder whose token the storage would still accept read the
          newest DB version: every write since its read took a newer token.
        """
        cfg = self.cfg
        n = range(cfg.requests)

        def each(check: Callable[[FailoverState, int], Bool]) -> Callable[[FailoverState], Bool]:
            return lambda s: all_of(*(check(s, r) for r in n))

        def same_key(s: FailoverState) -> Bool:
            return all_of(s.replica.owner == s.primary.owner,
                          s.replica.remaining == s.primary.remaining)

        found = [
            Invariant("holder-owns", each(lambda s, r: implies(s.pc[r] == WORKING, all_of(
                s.primary.owner == r, s.primary.remaining + s.timer[r] >= cfg.work)))),
            Invariant("lapsed-never", lambda s: negate(s.lapsed)),
            Invariant("newest-grant", each(lambda s, r: implies(_holds_grant(s, r), all_of(
                s.grant[r] == s.grants, s.written < s.grant[r])))),
        ]
        if cfg.wait:
            found += [
                Invariant("holder-replicated", each(lambda s, r: implies(
                    s.pc[r] == WORKING, same_key(s)))),
                Invariant("waiter-owns", each(lambda s, r: implies(s.pc[r] == WAITING, all_of(
                    s.primary.owner == r, s.primary.remaining + s.timer[r] == cfg.ttl,
                    s.behind >= s.timer[r])))),
                Invariant("acked-owns", each(lambda s, r: implies(s.pc[r] == REPLICATED, all_of(
                    s.primary.owner == r, s.primary.remaining + s.timer[r] == cfg.ttl,
                    s.timer[r] <= cfg.lag, same_key(s))))),
            ]
        if cfg.fencing:
            pairs = [(r, q) for r in n for q in n if r != q]
            found += [
                Invariant("token-issued", each(lambda s, r: implies(
                    _holds_grant(s, r), all_of(s.token[r] >= 1, s.token[r] <= s.fence)))),
                Invariant("fenced-order", lambda s: all_of(*(implies(
                    all_of(_holds_grant(s, r), _holds_grant(s, q), s.grant[r] < s.grant[q]),
                    s.token[r] < s.token[q]) for r, q in pairs))),
                Invariant("superseded-fenced", each(lambda s, r: implies(
                    all_of(_holds_grant(s, r), s.grant[r] < s.written),
                    s.token[r] < s.accepted))),
                Invariant("fence-ahead", lambda s: s.accepted <= s.fence),
                Invariant("fenced-read", each(lambda s, r: implies(
                    all_of(s.pc[r] == WORKING, s.token[r] >= s.accepted), s.seen[r] >= s.db))),
            ]
        return tuple(found)

    def symmetry(self) -> Symmetry:
        """Requests are interchangeable; the lock's owner on either server names one."""
        return Symmetry(fields=("pc", "timer", "held", "seen", "token", "grant"),
                        groups=(tuple(range(self.cfg.requests)),),
                        owners=("primary.owner", "replica.owner"))

    def canonical(self, s: FailoverState) -> FailoverState:
        """Requests sorted by everything that distinguishes them, owners renamed to follow."""
        cfg = self.cfg
        keys = [(s.pc[r], s.timer[r], s.held[r], s.seen[r], s.token[r], s.grant[r],
                 s.primary.owner == r, s.replica.owner == r) for r in range(cfg.requests)]
        order = sorted(range(cfg.requests), key=keys.__getitem__)
        if order == list(range(cfg.requests)):
            return s
        new_id = {old: new for new, old in enumerate(order)}

        def renamed(lock: RedisLock) -> RedisLock:
            return RedisLock(owner=new_id.get(lock.owner, NO_OWNER), remaining=lock.remaining)

        return replace(s, pc=tuple(s.pc[r] for r in order),
                       timer=tuple(s.timer[r] for r in order),
                       held=tuple(s.held[r] for r in order),
                       seen=tuple(s.seen[r] for r in order),
                       token=tuple(s.token[r] for r in order),
                       grant=tuple(s.grant[r] for r in order),
                       primary=renamed(s.primary), replica=renamed(s.replica))

    # -- the steps of the program --------------------------------------------------------

    def granted(self, s: FailoverState, r: int) -> FailoverState:
        """The primary sets r's key (and, with fencing, issues the next token): a write the
        replica does not have yet. Without ``wait`` r starts working at once."""
        cfg = self.cfg
        taken = replace(s, primary=redis_lock.acquire(s.primary, r, cfg.ttl),
                        grants=s.grants + 1, grant=ops.set_at(s.grant, r, s.grants + 1))
        if cfg.fencing:
            taken = replace(taken, fence=s.fence + 1, token=ops.set_at(s.token, r, s.fence + 1))
        taken = self.primary_wrote(taken)
        if cfg.wait:
            return self.goto(taken, r, WAITING)
        return self.start_work(taken, r)

    def start_work(self, s: FailoverState, r: int) -> FailoverState:
        """r works: with writers, it reads the DB version its fill will store."""
        return replace(self.goto(s, r, WORKING), starts=s.starts + 1,
                       seen=ops.set_at(s.seen, r, s.db))

    def accepts(self, s: FailoverState, r: int) -> Bool:
        """The storage takes r's write: always without fencing, else if r's token is not below
        the highest it accepted."""
        if not self.cfg.fencing:
            return True
        return s.token[r] >= s.accepted

    def stored(self, s: FailoverState, r: int) -> FailoverState:
        """The storage accepts r's write; it is a lapsed one if a later grant's write is
        already there."""
        return replace(s, filled=True, cached=s.seen[r],
                       accepted=ite(self.cfg.fencing, s.token[r], s.accepted),
                       lapsed=any_of(s.lapsed, s.grant[r] < s.written),
                       written=ops.maximum(s.written, s.grant[r]))

    def release(self, s: FailoverState, r: int) -> FailoverState:
        """Compare-and-delete on the current primary: a delete is a write to replicate."""
        mine = s.primary.owner == r
        released = replace(s, primary=redis_lock.release(s.primary, r, Release.CAD))
        return ite(mine, self.primary_wrote(released), released)

    def end(self, s: FailoverState, r: int, outcome: PC) -> FailoverState:
        """r ends with ``outcome``; its grant, token and read version go with it."""
        return replace(self.end_work(s, r, outcome), token=ops.set_at(s.token, r, 0),
                       grant=ops.set_at(s.grant, r, 0))

    # -- the servers ---------------------------------------------------------------------

    def primary_wrote(self, s: FailoverState) -> FailoverState:
        """The primary acknowledged a write: the replica lacks it (since now, unless it
        already lacked an older one)."""
        return replace(s, behind=ops.maximum(s.behind, 0))

    def replicate(self, s: FailoverState) -> FailoverState:
        """The replica catches up: the lock key and the counter as the primary has them; every
        client in ``WAIT`` now has its write on the replica."""
        caught = replace(s, replica=s.primary, behind=IN_SYNC,
                         fence_replica=s.fence if self.cfg.counter_on_primary else 0)
        if not self.cfg.wait:
            return caught
        return replace(caught, pc=tuple(ite(pc == WAITING, REPLICATED, pc) for pc in s.pc))

    def failover(self, s: FailoverState) -> FailoverState:
        """The replica is promoted with what it has (lock and counter); the old primary
        rejoins as its replica, in sync; clients in ``WAIT`` give up."""
        cfg = self.cfg
        promoted = replace(s, primary=s.replica, behind=IN_SYNC, failed=s.failed + 1,
                           fence=s.fence_replica if cfg.counter_on_primary else s.fence)
        if not cfg.wait:
            return promoted
        for r in range(cfg.requests):
            blocked = any_of(s.pc[r] == WAITING, s.pc[r] == REPLICATED)
            promoted = ite(blocked, self.end(promoted, r, GAVE_UP), promoted)
        return promoted

    def background_holds_the_clock(self, s: FailoverState) -> Bool:
        """Replication lags at most ``lag`` ticks: then it happens before the next tick."""
        return all_of(s.behind != IN_SYNC, s.behind >= self.cfg.lag)

    # -- time and the environment ----------------------------------------------------------

    def tick_stores(self, s: FailoverState) -> FailoverState:
        """Both copies of the key age alike (one absolute expiry); the lag grows."""
        return replace(s, primary=redis_lock.tick(s.primary), replica=redis_lock.tick(s.replica),
                       behind=ite(s.behind == IN_SYNC, IN_SYNC, s.behind + 1))

    def crash(self, s: FailoverState, r: int) -> FailoverState:
        """r's process dies while working: it never writes, never releases."""
        return replace(self.end(s, r, CRASHED), crashed=s.crashed + 1)

    def write(self, s: FailoverState) -> FailoverState:
        """A writer commits ``db + 1`` and deletes the cached value; with fencing the delete
        takes the next token (an INCR on the primary, with a counter there) and the storage
        accepts it, so every older fill is refused."""
        written = replace(s, db=s.db + 1, filled=False, cached=0)
        if not self.cfg.fencing:
            return written
        fenced = replace(written, fence=s.fence + 1, accepted=s.fence + 1)
        return self.primary_wrote(fenced) if self.cfg.counter_on_primary else fenced

    # -- narration -------------------------------------------------------------------------

    def narrate(self, a: Action, before: FailoverState,
                after: FailoverState) -> tuple[Message, ...]:
        """The program's narration, addressed to the servers by their roles *before* the step:
        after an odd number of failovers the server that started as the replica is the
        primary, so the columns swap roles."""
        said = super().narrate(a, before, after)
        if before.failed % 2 == 0:
            return said
        swap = {PRIMARY: REPLICA, REPLICA: PRIMARY}
        return tuple(replace(m, src=swap.get(m.src, m.src), dst=swap.get(m.dst, m.dst))
                     for m in said)

    def facts(self, before: FailoverState, after: FailoverState,
              r: int | None) -> dict[str, str]:
        """Who held the lock, what the replication stream carries, the tokens, the fate of a
        write, the waiters a failover cuts off."""
        cfg = self.cfg
        owner = before.primary.owner
        facts = {"owner": f"r{owner}" if owner != NO_OWNER else "nobody",
                 "incr": " + INCR lock:fence" if cfg.counter_on_primary else "",
                 "no_wait": "" if cfg.wait else "yes", "waits": "yes" if cfg.wait else "",
                 "unreplicated": "yes", "replica_lock": _describe_lock(before.replica),
                 "stream": f"lock = {_describe_lock(before.primary)}"
                 + (f", fence = {before.fence}" if cfg.counter_on_primary else ""),
                 "version": f" v{before.seen[r]}" if cfg.writers and r is not None else "",
                 "writer_token": f" (token {after.accepted})" if cfg.fencing else "",
                 "accepted": str(before.accepted),
                 "lapsed": "yes" if after.lapsed and not before.lapsed else "",
                 "waiters": ", ".join(f"r{q}" for q in range(cfg.requests)
                                      if before.pc[q] in (WAITING, REPLICATED))
                 if r is None else ""}
        if r is not None:
            mine = after.token[r] if after.pc[r] in GRANTED else before.token[r]
            facts["mine"] = str(mine)
            facts["token"] = f" (token {mine})" if cfg.fencing else ""
            if before.pc[r] in (WAITING, WORKING) and after.pc[r] in DONE:
                facts["cad_reply"] = "1" if owner == r else \
                    "0 (not the owner: the key is gone or another's)"
        return facts

    def _describe_request(self, s: FailoverState, r: int) -> str:
        pc = PC(s.pc[r])
        # the work and the WAIT show their timers ("work 1/2", "wait 0/3")
        label = self.timer_column(SHORT[pc], s, r) if pc in (WORKING, WAITING) else SHORT[pc]
        if pc in GRANTED and self.cfg.fencing:
            label += f" #{s.token[r]}"
        if pc in GRANTED and self.cfg.writers:
            label += f" v{s.seen[r]}"
        if s.held[r]:
            label += " paused"
        return label


def _holds_grant(s: FailoverState, r: int) -> Bool:
    """r holds a grant (blocked in WAIT, acknowledged, or working)."""
    return any_of(*(s.pc[r] == label for label in GRANTED))


def _describe_lock(lock: RedisLock) -> str:
    if lock.owner == NO_OWNER:
        return "free"
    return f"r{lock.owner} ({lock.remaining} left)"


def build(params: Mapping[str, ParamValue], name: str = "failover") -> FailoverModel:
    """The ``failover`` model for complete, validated parameters."""
    return FailoverModel(FailoverConfig.from_params(params), params, name=name)


SPEC = policy.PolicySpec(
    "failover", "a Redis lock on an asynchronously replicated primary: a failover can lose an "
    "acknowledged SET NX; WAIT 1 and fencing tokens as the remedies", PARAMS, build,
    order=60)

