"""``watchdog``: a renewing Redis lock, as Redisson's lock watchdog implements it.

``RLock.lock()`` without a lease time takes the lock for ``lockWatchdogTimeout`` (30 s by
default) and starts a *watchdog* in the holder's client: a timer task that, every third of that
time, extends the lock back to the full lease while the holder has not unlocked it. A holder
that works longer than the lease keeps the lock; a holder whose client dies stops renewing, and
the lock frees itself within one lease. The commands (Redisson's Lua scripts, on a hash whose
field is the holder's ``<client id>:<thread id>``):

- acquire, ``tryLockInnerAsync``: ``if redis.call('exists', KEYS[1]) == 0 then
  redis.call('hincrby', KEYS[1], ARGV[2], 1); redis.call('pexpire', KEYS[1], ARGV[1]);
  return nil end; return redis.call('pttl', KEYS[1])`` (its re-entrant branch aside). Its
  semantics are ``SET lock <token> NX PX <lease>``, which is what the model sends to a real
  server (``replay --redis``).
- renewal, ``renewExpirationAsync``, every ``lease / 3``: ``if redis.call('hexists', KEYS[1],
  ARGV[2]) == 1 then redis.call('pexpire', KEYS[1], ARGV[1]); return 1 end; return 0``: an
  owner-checked ``PEXPIRE`` back to the full lease. On ``1`` the task schedules itself again;
  on ``0`` (not the owner any more) it cancels itself; on an error (a timeout, a partition) it
  logs "Can't update lock ... expiration" and stops as well. The holder is never told. (The
  model has no step for the ``0``: a watchdog's renewal is due while its lock still has
  ``lease - lease/3`` ticks left, and it stops at its first lost renewal, so it never finds
  the lock gone or someone else's: the invariant holder-owns, proved by induction.)
- release, ``unlockInnerAsync``: owner-checked, then ``del`` (and a publish to wake waiters);
  for a lock taken once it is compare-and-delete, which the model sends. Unlocking cancels the
  holder's watchdog.

Waiters retry ``SET NX`` every ``retry`` ticks until they win (``lock()`` waits forever).
Redisson's waiters subscribe to the lock's channel and also retry when the TTL the acquire
returned runs out; polling every tick (``retry=1``) wakes a waiter within the tick of the
unlock, the same as the message would; a lost message is not modelled.

Each holder then does its protected work for ``work`` ticks (it writes the resource the lock
guards), writes the result and releases. A request is *served* once the lock is granted to it:
what a lock owes a client is the grant, and what the holder does with it is the holder's own.
So ``SERVED`` (every fair run ends with every request granted) and ``SERVED<=B`` (each within
``B`` ticks of arriving; ``longest_wait`` is the tight B) are exactly the waiters' liveness,
"every waiter acquires", and a waiter that never acquires is a violation, not a run that
silently never ends. (Counting the holder's own work as part of its service would make a hung
holder its own violation, and hide the finding, that everyone behind it starves.)

The renewal is a step of the holder's request (``Renew(r=..)``), not one background actor: the
watchdog belongs to the holder's client, and under a partition two requests both believe they
hold the lock, each with its own watchdog and its own next renewal (``renew_in[r]``); a single
actor with no request could not tell them apart. It is the watchdog's step, not the request's
code, so the narration draws it from the ``Watchdog`` participant. A due renewal is urgent
(no tick passes until it happens), as due work is.

Faults:

- ``partition_at`` (0: never): from that tick on, the watchdog's renewals never reach Redis.
  The holder keeps working; its lock expires ``lease`` ticks after its last renewal, a waiter
  wins it, and two holders act on the resource at once (MUTEX), and the first one's write lands
  after its lock lapsed (NOLAPSED), whenever ``work`` is longer than the lease (a holder that
  takes the lock after the cut gets no renewal at all, so a late partition is no safer). Only the
  renewal path is cut: the holder's own release is a compare-and-delete, which leaves someone
  else's lock alone whether it arrives or not.
- ``hang``: a holder hangs in its critical section forever (a deadlock, a call without a
  timeout): its client is alive, so its watchdog renews for ever, and every waiter starves
  (SERVED, SERVED<=B), while MUTEX holds. At most one holder hangs in a run.
- ``watchdog=off``: the lock is taken with an explicit lease time (``lock(leaseTime, unit)``),
  which Redisson never renews: the baseline, where ``work > lease`` breaks MUTEX with no fault.
- The shared environment (:mod:`models.environment`): ``pause`` stalls a holder's due work up
  to that many ticks (a slow call in the holder's thread; its watchdog, a timer task of the
  client, runs on and keeps the lock); ``crash`` / ``crashes`` kill a working holder's client
  process (one client, one request): it never writes or releases, its watchdog dies with it,
  so the lock expires within one lease and the waiters go on; its caller gets an error
  (answered, not served). There is no cache, so a DB writer (``writers``) has nothing to
  invalidate and is refused.

What is abstracted away, and why that is safe:

- One lock key, and the token is the request id (unique, as ``<client id>:<thread id>`` is);
  re-entrancy (the hash's counter) is not used by a request that locks once.
- Time is relative: remaining lock life, elapsed work, remaining sleep, ticks until the next
  renewal, ticks until the partition, so the state space is finite with no horizon; a hung
  holder's renewals cycle through the same states.
- The renewal fires exactly every ``lease / 3`` ticks (rounded down) and resets the life to
  ``lease``: the watchdog is a timer task of the holder's own client, and a late timer (a
  stop-the-world pause, which stalls the holder's work as much) is not modelled; the
  partition is what makes renewals fail here.
- The protected work's write and the release are one step: the write is where NOLAPSED looks,
  and no tick passes between the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any, ClassVar

from herdproof.models import environment, ops, policy, program, redis_lock
from herdproof.models.candidates import Candidate, each_pair, each_request, whole
from herdproof.models.core import Invariant
from herdproof.models.errors import InvalidParameter
from herdproof.models.narration import Say, answer, call, note
from herdproof.models.observation import Observation
from herdproof.models.ops import Bool, Int, all_of, any_of, implies, ite, negate
from herdproof.models.params import Param, ParamValue
from herdproof.models.program import RequestAction, Send, Step, Timer
from herdproof.models.redis_lock import NO_OWNER, RedisLock, Release
from herdproof.models.symmetry import Symmetry

PARAMS: tuple[Param, ...] = (
    Param("requests", int, 2, "clients that each take the lock once", minimum=1),
    Param("lease", int, 3, "lock lease in ticks (Redisson's lockWatchdogTimeout, 30 s); the "
          "watchdog renews every lease/3", minimum=3, timing=True),
    Param("work", int, 4, "ticks of protected work a holder does before it writes and "
          "releases", minimum=1, timing=True),
    Param("retry", int, 1, "ticks a waiter sleeps before it tries SET NX again", minimum=1,
          timing=True),
    Param("watchdog", bool, True, "renew the lock while the holder works (off: an explicit "
          "lease time, never renewed)"),
    Param("partition_at", int, 0, "from this tick on the watchdog's renewals fail (0: never)",
          minimum=0),
    Param("hang", bool, False, "a holder may hang in its critical section forever (its "
          "watchdog keeps renewing)"),
    *program.environment_params(),
)


class PC(IntEnum):
    """Where a request is in its program."""

    IDLE = 0      # not arrived yet
    WORKING = 1   # was granted the lock (holds it, as far as it knows): doing the work
    SLEEPING = 2  # lost SET NX: sleeping before it tries again
    HUNG = 3      # hung inside its critical section, for ever
    FINISHED = 4  # wrote its result and released
    CRASHED = 5   # its client process died holding the lock: its caller got an error


IDLE, WORKING, SLEEPING, HUNG, FINISHED, CRASHED = tuple(PC)
HOLDING = (WORKING, HUNG)  # believes it holds the lock and acts on the resource
SHORT = {IDLE: "-", WORKING: "work", SLEEPING: "sleep", HUNG: "hung", FINISHED: "done",
         CRASHED: "crashed"}
#: ``renew_in[r]`` of a request whose watchdog does not run (not holding, stopped, or off).
NO_WATCHDOG = -1


def renewal_interval(lease: Int) -> Int:
    """Redisson's ``internalLockLeaseTime / 3``, in whole ticks (integer division; a z3 term
    for a symbolic lease)."""
    if ops.is_symbolic(lease):
        return lease / 3
    return int(lease) // 3


@dataclass(frozen=True, slots=True)
class WatchdogConfig(environment.EnvironmentConfig):
    """The parameters of one instance; timing constants may be z3 terms in symbolic runs."""

    requests: int
    lease: Int
    work: Int
    retry: Int
    watchdog: bool
    partition_at: int
    hang: bool

    @classmethod
    def from_params(cls, params: Mapping[str, ParamValue]) -> WatchdogConfig:
        if params["writers"]:
            raise InvalidParameter("parameter `writers` of watchdog must be 0: the lock guards "
                                   "a resource only its holders write, with no cache for a DB "
                                   "writer to invalidate (FRESH is stack's, lease's and swr's)")
        return cls(**dict(params))  # type: ignore[arg-type]

    @property
    def interval(self) -> Int:
        """Ticks between two renewals."""
        return renewal_interval(self.lease)


@dataclass(frozen=True, slots=True)
class WatchdogState(program.RequestsState):
    """One moment of the run.

    ``timer[r]``: elapsed work while WORKING, remaining sleep while SLEEPING, else 0.
    ``renew_in[r]``: ticks until r's watchdog renews (0: due now), ``NO_WATCHDOG`` when none
    runs for r. ``cut_in``: ticks until the renewal path is partitioned (0: it is, when
    ``partition_at`` > 0). ``written``: some holder wrote its result (REFILL's witness).
    ``lapsed``: ghost flag, the resource accepted a write from a request whose lock had lapsed.
    """

    lock: RedisLock
    renew_in: tuple[Int, ...]
    cut_in: Int
    written: Bool
    lapsed: Bool


class WinLock(RequestAction):
    """Request r's SET lock NX PX lease succeeds and its watchdog starts; enabled when r has
    arrived (or its sleep is over) and no live lock exists."""


class LoseLock(RequestAction):
    """Request r's SET lock NX PX lease fails and r sleeps ``retry`` ticks; enabled when r has
    arrived (or its sleep is over) and a live lock exists."""


class Renew(RequestAction):
    """r's watchdog extends r's lock back to the full lease; enabled when the renewal is due,
    the path to Redis is up and the lock still holds r's token."""


class RenewFails(RequestAction):
    """r's watchdog's renewal is lost to the partition and the watchdog stops; enabled when the
    renewal is due and the renewal path is cut."""


class Hang(RequestAction):
    """Holder r hangs in its critical section for ever (its client and watchdog live on);
    enabled with ``hang`` while r works and no other request hangs."""

    by_environment: ClassVar[bool] = True


class Finish(RequestAction):
    """Holder r writes its result to the resource, releases with compare-and-delete and its
    watchdog is cancelled; enabled when r's work is due."""


# -- the program: one client, step by step ---------------------------------------------------

REDIS, WATCHDOG, RESOURCE = "Redis", "Watchdog", "Resource"
SET_NX = call(REDIS, "SET lock {r} NX PX {lease}")
TRY_LOCK = (Send("SET NX PX", "lock", token=True, ticks="lease"),)
RENEW = Say(WATCHDOG, REDIS, "EVAL renew: PEXPIRE lock {lease} if it holds {r}")
#: The renewal script as a server runs it: the owner-checked PEXPIRE.
RENEW_SENDS = (Send("PEXPIRE IF OWNER", "lock", token=True, ticks="lease"),)
ACQUIRE_SAYS = (note("{r}'s watchdog will renew every {interval} tick(s)", over=WATCHDOG,
                     only="watched"),
                note("{acting} still acting on it: its lock lapsed under it", over=RESOURCE,
                     only="acting"))


def _may_try(s: WatchdogState, r: int) -> Bool:
    """r is about to send SET NX: it just arrived, or its sleep is over."""
    return s.timer[r] == 0


STEPS: tuple[Step[WatchdogState], ...] = (
    Step(WinLock, at=(IDLE, SLEEPING),
         command="SET lock <token> NX PX <lease> (Redisson: the tryLockInnerAsync script, "
                 "hincrby + pexpire on a free key); the watchdog starts",
         says=(SET_NX, answer(REDIS, "OK"), *ACQUIRE_SAYS),
         sends=TRY_LOCK,
         guard=lambda m, s, r: all_of(_may_try(s, r), redis_lock.is_free(s.lock)),
         effect=lambda m, s, r: m.acquire(s, r)),
    Step(LoseLock, at=(IDLE, SLEEPING),
         command="SET lock <token> NX PX <lease> -> nil (the script returns the lock's pttl); "
                 "sleep, then retry",
         says=(SET_NX, answer(REDIS, "nil (held by {owner})"),
               note("retries in {retry} tick(s)")),
         sends=TRY_LOCK,
         guard=lambda m, s, r: all_of(_may_try(s, r), negate(redis_lock.is_free(s.lock))),
         effect=lambda m, s, r: m.goto(s, r, SLEEPING, timer=m.cfg.retry)),
    Step(Renew, at=HOLDING, when=lambda cfg: cfg.watchdog,
         command="EVAL renewExpirationAsync: if hexists(lock, token) then PEXPIRE lock <lease> "
                 "-> 1",
         says=(RENEW, Say(REDIS, WATCHDOG, "1 (lock back to {lease} tick(s))", reply=True)),
         sends=RENEW_SENDS,
         guard=lambda m, s, r: all_of(s.renew_in[r] == 0, negate(m.cut(s)),
                                      s.lock.owner == r),
         effect=lambda m, s, r: replace(s, lock=RedisLock(owner=r, remaining=m.cfg.lease),
                                        renew_in=ops.set_at(s.renew_in, r, m.cfg.interval))),
    Step(RenewFails, at=HOLDING, when=lambda cfg: cfg.watchdog and cfg.partition_at > 0,
         command="EVAL renewExpirationAsync, lost: 'Can't update lock expiration', the "
                 "watchdog stops",
         says=(Say(WATCHDOG, REDIS, "EVAL renew for {r}: lost (the renewal path is "
                                    "partitioned)"),
               note("error: stops renewing {r}'s lock ({left} tick(s) left); {r} is not told "
                    "and keeps working", over=WATCHDOG)),
         sends=(),  # nothing reaches the server
         guard=lambda m, s, r: all_of(s.renew_in[r] == 0, m.cut(s)),
         effect=lambda m, s, r: replace(s, renew_in=ops.set_at(s.renew_in, r, NO_WATCHDOG))),
    Step(Hang, at=WORKING, when=lambda cfg: cfg.hang,
         command="(a deadlock or a call without a timeout inside the critical section)",
         says=(note("hangs in its critical section for ever; its client lives on, and so "
                    "does its watchdog"),),
         sends=(),
         guard=lambda m, s, r: negate(any_of(*(pc == HUNG for pc in s.pc))),
         effect=lambda m, s, r: m.goto(s, r, HUNG)),
    Step(Finish, at=WORKING,
         command="write the result; EVAL unlockInnerAsync (compare-and-delete lock <token>); "
                 "the watchdog is cancelled",
         says=(call(RESOURCE, "write (the result of {work} tick(s) of work)"),
               note("accepted, though {r}'s lock lapsed ({owner_now})", over=RESOURCE,
                    only="lapsed"),
               call(REDIS, "EVAL compare-and-delete lock {r}"), answer(REDIS, "{cad_reply}"),
               note("unlock cancels {r}'s watchdog", over=WATCHDOG, only="watched")),
         sends=(Send("CAD", "lock", token=True),),
         guard=lambda m, s, r: m.completes(s, r),
         effect=lambda m, s, r: m.finish(s, r)),
)


class WatchdogModel(program.ProgramModel[WatchdogConfig, WatchdogState]):
    """The ``watchdog`` transition system for one configuration, compiled from :data:`STEPS`."""

    STEPS = STEPS
    TIMERS: ClassVar[Mapping[int, Timer]] = {WORKING: Timer(up=True, duration="work"),
                                              SLEEPING: Timer(up=False, duration="retry")}
    WORK = WORKING
    # served: the lock was granted (what a waiter waits for); the holder's own work is its
    # own. A crashed holder's caller got an error instead: answered, not served.
    DONE = (*HOLDING, FINISHED, CRASHED)
    ERRORS = (CRASHED,)
    PARTICIPANTS = (REDIS, WATCHDOG, RESOURCE)
    KEYS = (("lock", "token"),)
    ENVIRONMENT_SENDS: ClassVar[Mapping[str, tuple[Send, ...]]] = {"Pause": (), "Crash": ()}
    ENVIRONMENT_SAYS: ClassVar[Mapping[str, tuple[Say, ...]]] = {
        "Pause": (note("its work runs a tick late (a slow call); its watchdog runs on"),),
        "Crash": (note("its client process dies: no write, no release, and its watchdog dies "
                       "with it; its caller gets an error"),
                  note("{r}'s lock is no longer renewed: it expires by itself", over=WATCHDOG,
                       only="watched"))}

    # -- the contract ------------------------------------------------------------------

    def initial_states(self) -> tuple[WatchdogState, ...]:
        n = self.cfg.requests
        return (WatchdogState(pc=(IDLE,) * n, timer=(0,) * n, held=(False,) * n,
                              seen=(0,) * n, db=0, starts=0, crashed=0, lock=RedisLock(),
                              renew_in=(NO_WATCHDOG,) * n, cut_in=self.cfg.partition_at,
                              written=False, lapsed=False),)

    def in_domain(self, s: WatchdogState) -> Bool:
        cfg = self.cfg
        per_request = [
            all_of(pc >= IDLE, pc <= CRASHED, self.timer_in_domain(pc, timer, held),
                   seen == 0, implies(pc == HUNG, cfg.hang),
                   ite(renew == NO_WATCHDOG, True,
                       all_of(cfg.watchdog, renew >= 0, renew <= cfg.interval,
                              any_of(*(pc == label for label in HOLDING)))))
            for pc, timer, held, seen, renew in zip(s.pc, s.timer, s.held, s.seen, s.renew_in,
                                                    strict=True)
        ]
        return all_of(
            *per_request,
            redis_lock.in_domain(s.lock, cfg.requests, cfg.lease),
            s.cut_in >= 0, s.cut_in <= cfg.partition_at,
            s.db == 0, s.crashed >= 0,
            s.crashed <= environment.crash_bound(cfg.crash, cfg.crashes),
            s.crashed == ops.count(pc == CRASHED for pc in s.pc),
            s.starts >= 0, s.starts <= cfg.requests,
        )

    def observe(self, s: WatchdogState) -> Observation:
        hung = ops.count_where(s.pc, lambda pc: pc == HUNG)
        base = self.observation(s, s.written, background=hung, foreign=False)
        return replace(base, acting_holders=ops.count_where(
                           s.pc, lambda pc: any_of(*(pc == label for label in HOLDING))),
                       lapsed_write=s.lapsed)

    def describe(self, s: WatchdogState) -> dict[str, str]:
        columns = {f"r{r}": self._describe_request(s, r) for r in range(self.cfg.requests)}
        owner = s.lock.owner
        columns["lock"] = "free" if owner == NO_OWNER else f"r{owner} ({s.lock.remaining} left)"
        if self.cfg.partition_at:
            columns["renewals"] = "cut" if s.cut_in == 0 else f"cut in {s.cut_in}"
        columns["resource"] = "written" if s.written else "-"
        if s.lapsed:
            columns["resource"] += " (lapsed write)"
        return columns

    def invariants(self) -> tuple[Invariant, ...]:
        """Candidate facts for induction proofs; the SMT engine keeps the inductive ones.

        - watched: every holder's watchdog runs (true without a partition, with the watchdog).
        - holder-owns: a holder whose watchdog runs owns the lock, and the lock has as much
          life left as the last renewal gave it: ``lease - interval + renew_in`` (so it never
          reaches 0 before the next renewal, which is due while it still has
          ``lease - interval`` >= 1 tick).
        - lease-covers: a working holder owns the lock, and its life left plus the work done
          is at least the lease: a renewal only adds life, and a tick moves one tick from the
          one to the other. So when ``work <= lease`` the lock outlives the work even with no
          renewal at all (the watchdog off, or its renewals lost to a partition).
        - owner-holds: the lock's owner is a holder, or crashed holding it (a holder's release
          goes with its last step).
        - no-lapse: no write has been accepted from a request whose lock lapsed.
        - one-holder: at most one request holds the lock (MUTEX, as a candidate).
        """
        cfg = self.cfg
        n = range(cfg.requests)

        def holding(s: WatchdogState, r: int) -> Bool:
            return any_of(*(s.pc[r] == label for label in HOLDING))

        return (
            Invariant("watched", lambda s: all_of(*(implies(
                holding(s, r), s.renew_in[r] != NO_WATCHDOG) for r in n))),
            Invariant("holder-owns", lambda s: all_of(*(implies(
                all_of(holding(s, r), s.renew_in[r] != NO_WATCHDOG),
                all_of(s.lock.owner == r,
                       s.lock.remaining == cfg.lease - cfg.interval + s.renew_in[r]))
                for r in n))),
            Invariant("lease-covers", lambda s: all_of(*(implies(
                s.pc[r] == WORKING,
                all_of(s.lock.owner == r, s.lock.remaining + s.timer[r] >= cfg.lease))
                for r in n))),
            Invariant("owner-holds", lambda s: all_of(*(implies(
                s.lock.owner == r, any_of(holding(s, r), s.pc[r] == CRASHED)) for r in n))),
            Invariant("no-lapse", lambda s: negate(s.lapsed)),
            Invariant("one-holder", lambda s: ops.count(holding(s, r) for r in n) <= 1),
        )

    def quantified_invariants(self) -> tuple[Candidate, ...]:
        """The candidates above, stated once per request (one-holder once per pair of
        requests), for the proof for every number of requests (``herdproof prove
        --all-sizes``)."""
        cfg = self.cfg

        def holding(s: WatchdogState, r: Any) -> Bool:
            return any_of(*(s.pc[r] == label for label in HOLDING))

        return (
            each_request("renewal-clock", "a watchdog's next renewal is 0..interval ticks "
                         "away, and only a holder has one",
                         lambda m, s, r: ite(s.renew_in[r] == NO_WATCHDOG, True, all_of(
                             cfg.watchdog, s.renew_in[r] >= 0, s.renew_in[r] <= cfg.interval,
                             holding(s, r)))),
            each_request("hangs-only-if-asked", "no request hangs unless hang=on",
                         lambda m, s, r: implies(s.pc[r] == HUNG, cfg.hang)),
            each_request("watched", "a holder's watchdog runs",
                         lambda m, s, r: implies(holding(s, r),
                                                 s.renew_in[r] != NO_WATCHDOG)),
            each_request("holder-owns", "a watched holder owns the lock, with lease - "
                         "interval + renew_in ticks of it left",
                         lambda m, s, r: implies(
                             all_of(holding(s, r), s.renew_in[r] != NO_WATCHDOG),
                             all_of(s.lock.owner == r, s.lock.remaining
                                    == cfg.lease - cfg.interval + s.renew_in[r]))),
            each_request("lease-covers", "a working holder owns the lock, and its life left "
                         "plus the work done is at least the lease",
                         lambda m, s, r: implies(s.pc[r] == WORKING, all_of(
                             s.lock.owner == r, s.lock.remaining + s.timer[r] >= cfg.lease))),
            each_request("owner-holds", "the lock's owner is a holder, or crashed holding it",
                         lambda m, s, r: implies(s.lock.owner == r, any_of(
                             holding(s, r), s.pc[r] == CRASHED))),
            whole("no-lapse", "no write has been accepted from a request whose lock lapsed",
                  lambda m, s: negate(s.lapsed)),
            each_pair("one-holder", "no two requests hold the lock at once",
                      lambda m, s, r, q: negate(all_of(holding(s, r), holding(s, q)))),
        )

    def symmetry(self) -> Symmetry:
        """Requests are interchangeable; the lock's owner is a request number (for engines
        that generate a model, such as SPIN, and for :meth:`canonical`)."""
        return Symmetry(fields=("pc", "timer", "held", "seen", "renew_in"),
                        groups=(tuple(range(self.cfg.requests)),), owners=("lock.owner",))

    def canonical(self, s: WatchdogState) -> WatchdogState:
        """Requests sorted by everything that distinguishes them, the owner renamed."""
        canonical: WatchdogState = self.symmetry().canonical(s)
        return canonical

    # -- the steps of the program --------------------------------------------------------

    def cut(self, s: WatchdogState) -> Bool:
        """The renewal path is partitioned (from ``partition_at`` on)."""
        if self.cfg.partition_at == 0:
            return False
        return s.cut_in == 0

    def acquire(self, s: WatchdogState, r: int) -> WatchdogState:
        """r's SET NX succeeds: the lock is r's for a lease; its watchdog first renews after
        ``interval`` ticks (with the watchdog on)."""
        cfg = self.cfg
        renew = cfg.interval if cfg.watchdog else NO_WATCHDOG
        return replace(self.goto(s, r, WORKING), lock=redis_lock.acquire(s.lock, r, cfg.lease),
                       renew_in=ops.set_at(s.renew_in, r, renew), starts=s.starts + 1)

    def crash(self, s: WatchdogState, r: int) -> WatchdogState:
        """r's client process dies at its work (one client, one request): nothing written,
        nothing released, and its watchdog dies with it, so the lock lives out its lease."""
        return replace(self.goto(s, r, CRASHED), held=ops.set_at(s.held, r, False),
                       renew_in=ops.set_at(s.renew_in, r, NO_WATCHDOG), crashed=s.crashed + 1)

    def finish(self, s: WatchdogState, r: int) -> WatchdogState:
        """r writes (a lapsed write if the lock is no longer r's), releases with
        compare-and-delete, and its watchdog is cancelled."""
        return replace(self.goto(s, r, FINISHED), written=True, held=ops.set_at(s.held, r, False),
                       lapsed=any_of(s.lapsed, s.lock.owner != r),
                       lock=redis_lock.release(s.lock, r, Release.CAD),
                       renew_in=ops.set_at(s.renew_in, r, NO_WATCHDOG))

    # -- time ------------------------------------------------------------------------------

    def background_holds_the_clock(self, s: WatchdogState) -> Bool:
        """A due renewal is sent before the next tick (the watchdog's timer fires on time)."""
        if not self.cfg.watchdog:
            return False
        return ops.any_where(s.renew_in, lambda renew: renew == 0)

    def tick_stores(self, s: WatchdogState) -> WatchdogState:
        """The lock ages (and may expire), every watchdog's next renewal comes a tick closer,
        and so does the partition."""
        return replace(s, lock=redis_lock.tick(s.lock),
                       renew_in=ops.map_values(s.renew_in,
                                               lambda renew: ite(renew > 0, renew - 1, renew)),
                       cut_in=ite(s.cut_in > 0, s.cut_in - 1, 0))

    # -- narration and the server's view ---------------------------------------------------

    def keyspace(self, s: WatchdogState) -> dict[str, tuple[int | None, int | None]]:
        """The lock key: its owner's token and remaining life."""
        owner = s.lock.owner
        return {"lock": (None, None) if owner == NO_OWNER else (owner, s.lock.remaining)}

    def facts(self, before: WatchdogState, after: WatchdogState,
              r: int | None) -> dict[str, str]:
        """The lock's owner before the step, the renewal interval, whether r's watchdog ran,
        the lock's life left, what a release found, and who else still acts on the resource
        when r is granted the lock."""
        owner = before.lock.owner
        facts = {"owner": "" if owner == NO_OWNER else f"r{owner}",
                 "interval": str(self.cfg.interval), "left": str(before.lock.remaining),
                 "watched": "", "lapsed": "", "owner_now": "", "cad_reply": "", "acting": ""}
        if r is None:
            return facts
        if before.pc[r] != WORKING and after.pc[r] == WORKING:
            facts["acting"] = ", ".join(f"r{q}" for q, pc in enumerate(before.pc)
                                        if q != r and pc in HOLDING)
        if before.renew_in[r] != NO_WATCHDOG or after.renew_in[r] != NO_WATCHDOG:
            facts["watched"] = "yes"
        if before.pc[r] == WORKING and after.pc[r] == FINISHED:
            facts["cad_reply"] = "1" if owner == r else "0 (not the owner)"
            if owner != r:
                facts["lapsed"] = "yes"
                facts["owner_now"] = "the lock is free" if owner == NO_OWNER else \
                    f"r{owner} holds it now"
        return facts

    def _describe_request(self, s: WatchdogState, r: int) -> str:
        pc = PC(s.pc[r])
        if pc == SLEEPING:
            return f"sleep {s.timer[r]}"
        if pc not in HOLDING:
            return SHORT[pc]
        label = f"work {s.timer[r]}/{self.cfg.work}" if pc == WORKING else "hung"
        renew = s.renew_in[r]
        if renew == NO_WATCHDOG:
            return label + (" unwatched" if self.cfg.watchdog else "")
        return f"{label} renew in {renew}"


def build(params: Mapping[str, ParamValue], name: str = "watchdog") -> WatchdogModel:
    """The ``watchdog`` model for complete, validated parameters."""
    return WatchdogModel(WatchdogConfig.from_params(params), params, name=name)


SPEC = policy.PolicySpec(
    "watchdog", "a renewing Redis lock (Redisson's watchdog): SET NX PX lease, owner-checked "
    "PEXPIRE every lease/3 while the holder works; faults: a partitioned renewal path, a hung "
    "holder", PARAMS, build)
