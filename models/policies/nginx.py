"""``nginx``: an HTTP proxy cache in front of an origin, as ngx_http_proxy_module documents it.

One cache element (one ``proxy_cache_key``), ``requests`` clients asking nginx for it, and an
origin whose answer takes ``fetch`` ticks. The directives modelled::

    proxy_cache_path /var/cache/nginx keys_zone=zone:1m;
    proxy_cache zone;
    proxy_cache_valid 200 10m;
    proxy_cache_lock on;                  # cache_lock
    proxy_cache_lock_timeout 5s;          # lock_timeout
    proxy_cache_lock_age 5s;              # lock_age
    proxy_cache_use_stale updating;       # use_stale_updating
    proxy_cache_background_update on;     # background_update

The element starts absent (``start=cold``: a new cache element) or present but expired
(``start=stale``). What nginx does, step by step (the names are ``$upstream_cache_status``):

- **A new element, ``proxy_cache_lock off``**: every request that finds nothing is passed to
  the origin (``MISS``), and each response is cached.
- **A new element, ``proxy_cache_lock on``**: "only one request at a time will be allowed to
  populate a new cache element": the first takes the element's lock (``node->updating``, with
  ``lock_time = now + proxy_cache_lock_age``) and is passed to the origin (``TakeLock``); the
  others wait (``Park``) "for a response to appear in the cache or the cache lock for this
  element to be released, up to the time set by ``proxy_cache_lock_timeout``". A waiter polls
  the lock; once it is released it reads the element (``WakeHit``: ``HIT``), and if the lock is
  free and the element still absent it takes the lock itself.
  - ``proxy_cache_lock_timeout``: "When the time expires, the request will be passed to the
    proxied server, however, the response will not be cached" (``TimeOut``, then
    ``FinishUncached``; nginx returns ``NGX_HTTP_CACHE_SCARCE``, the upstream is marked not
    cacheable). A waiter is woken by its timer exactly when the timeout passes, so a timed-out
    waiter acts before the next tick.
  - ``proxy_cache_lock_age``: "If the last request passed to the proxied server for populating
    a new cache element has not completed for the specified time, one more request may be
    passed to the proxied server" (``TakeAgedLock``: the lock gets a new ``lock_time`` and a new
    holder; that request's response is cached). Only the current holder's completion releases
    the lock (nginx compares ``lock_time``): a superseded holder stores its response but the
    waiters keep waiting for the lock, and read the cached element once they wake.
- **An expired element**: the cache lock does not apply (it governs *new* elements). The first
  request marks the element as updating and is passed to the origin (``FetchExpired``:
  ``EXPIRED``). A request that finds it updating is, with ``proxy_cache_use_stale updating``,
  answered the stale response at once (``ServeUpdating``: ``UPDATING``); without it, it is
  passed to the origin as well (``FetchBeside``), its response cached too.
  - ``proxy_cache_background_update on`` (which needs ``use_stale updating``: "it is necessary
    to allow the usage of a stale cached response when it is being updated"): the first request
    is answered the stale response at once and the update runs as a background subrequest
    (``ServeStaleAndUpdate``, then the background ``UpdateDone``).

What is abstracted away, and why that is safe: one element and one worker's view of the shared
zone (nginx keeps ``updating`` and ``lock_time`` in the shared memory zone under a mutex, so
workers see one lock); the fresh response stays valid for the rest of the run
(``proxy_cache_valid`` longer than the race); the origin always answers 200 with a cacheable
response; the waiter's 500 ms poll is a latency detail: a waiter may notice a released or aged
lock at any later moment (it acts by the next tick only when its own timeout passes), which
covers every poll phase; requests arrive at any tick.

The shared environment (:mod:`models.environment`), off by default: ``Pause(r=..)`` makes the
origin answer a cacheable fetch up to ``pause`` ticks late (a slow origin: what
``proxy_cache_lock_age`` and ``proxy_cache_lock_timeout`` are for); ``Crash(r=..)`` kills the
worker serving a cacheable fetch: its client gets an error, nothing is stored, and the
element's lock stays set in the shared zone (a dead process runs no clean-up) until
``lock_age`` lets another request through (for an expired element it stays *updating*);
``Write()`` changes the origin's content (version ``db + 1``) and purges the element (as
``proxy_cache_purge`` or deleting its cache file does): it is then a new element, locked as
one. A fetch stores the version it read when it started, and nothing checks it (FRESH).

Meant to fail: REBUILDS<=1 (origin fetches for the element) with ``cache_lock=off`` (every
concurrent miss fetches), with ``lock_timeout`` not longer than ``fetch`` (a waiter times out
and fetches again, uncached), with ``lock_age`` not longer than ``fetch`` (one more request is
passed), and on an expired element without ``use_stale updating`` (the lock does not help
there). It holds for a new element with the lock on and both timers longer than the fetch, and
for an expired element with ``use_stale updating``; with ``background_update`` nobody waits at
all (``SERVED<=0``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import ClassVar

from herdproof.models import environment, policy, program, proxy_cache
from herdproof.models.candidates import Candidate, each_pair, each_request, some_request, whole
from herdproof.models.core import Action, Invariant
from herdproof.models.narration import Say, answer, call, note
from herdproof.models.observation import Observation
from herdproof.models.ops import Bool, Int, all_of, any_of, count, implies, ite, negate, set_at
from herdproof.models.params import Param, ParamValue
from herdproof.models.program import ProgramModel, RequestAction, Step
from herdproof.models.symmetry import Symmetry

PARAMS: tuple[Param, ...] = (
    Param("requests", int, 2, "concurrent clients asking for the element", minimum=1),
    Param("start", str, "cold", "the element is absent (cold: a new cache element) or present "
          "but expired (stale)", choices=("cold", "stale")),
    Param("cache_lock", bool, True, "proxy_cache_lock: one request at a time populates a new "
          "element"),
    Param("lock_timeout", int, 3, "proxy_cache_lock_timeout in ticks: a waiter then goes to the "
          "origin itself, uncached", minimum=0, timing=True),
    Param("lock_age", int, 3, "proxy_cache_lock_age in ticks: a lock this old lets one more "
          "request pass", minimum=0, timing=True),
    Param("use_stale_updating", bool, False, "proxy_cache_use_stale updating: serve the stale "
          "response while the element is being updated"),
    Param("background_update", bool, False, "proxy_cache_background_update: update in a "
          "background subrequest, the client gets the stale response at once"),
    Param("fetch", int, 2, "origin response time in ticks", minimum=1, timing=True),
    *program.environment_params(),
)

NOBODY = -1      # ``owner`` when nobody holds the element's lock
BACKGROUND = -2  # ``owner`` when the background subrequest updates the element
NO_UPDATE = -1   # ``update`` when no background subrequest runs


class PC(IntEnum):
    """Where a client's request is in nginx."""

    IDLE = 0            # not arrived yet
    WAITING = 1         # parked on the element's cache lock; timer: ticks to lock_timeout
    FETCHING = 2        # passed to the origin, the response will be cached
    FETCHING_UNCACHED = 3  # passed to the origin after the lock timeout: not cached
    GOT_VALUE = 4       # answered with a fresh response
    GOT_STALE = 5       # answered with the stale response
    CRASHED = 6         # its worker died during the fetch: the client got an error


IDLE, WAITING, FETCHING, FETCHING_UNCACHED, GOT_VALUE, GOT_STALE, CRASHED = tuple(PC)


@dataclass(frozen=True, slots=True)
class NginxConfig(environment.EnvironmentConfig):
    """The directives of one instance (:data:`PARAMS`); which of nginx's paths a run can take
    follows from them (:attr:`cold`, :attr:`new_elements`, :attr:`background`)."""

    requests: int
    start: str
    cache_lock: bool
    lock_timeout: Int
    lock_age: Int
    use_stale_updating: bool
    background_update: bool
    fetch: Int

    @property
    def cold(self) -> bool:
        return self.start == "cold"

    @property
    def new_elements(self) -> bool:
        """The element can be absent: it starts so, or a purge removes it."""
        return self.start == "cold" or self.writers > 0

    @property
    def background(self) -> bool:
        """Background update is in effect (it needs ``use_stale updating``)."""
        return self.use_stale_updating and self.background_update


@dataclass(frozen=True, slots=True)
class NginxState(program.RequestsState):
    """``fresh``: a valid response is cached. ``stale``: an expired copy is present (the
    ``stale`` start; it stays, shadowed once ``fresh``). ``updating``: the element's
    ``node->updating`` flag (the cache lock, or "being updated"). ``owner``: who set it
    (a request, :data:`BACKGROUND`, or :data:`NOBODY`). ``lock_left``: ticks until the lock's
    ``lock_time`` (0: the lock is older than ``proxy_cache_lock_age``). ``update``: elapsed
    ticks of the background subrequest, :data:`NO_UPDATE` if none runs. ``timer[r]``: a waiter's
    ticks left to its lock timeout, or a fetch's elapsed ticks. ``cached``: the origin version
    the cache holds; ``update_seen``: the version the background subrequest read (with
    writers)."""

    fresh: Bool
    stale: Bool
    updating: Bool
    owner: Int
    lock_left: Int
    update: Int
    cached: Int
    update_seen: Int


class Hit(RequestAction):
    """Request r finds a valid response in the cache (HIT); enabled when the element is fresh."""


class Miss(RequestAction):
    """Request r finds no element and, without the cache lock, is passed to the origin (MISS);
    enabled with ``cache_lock=off`` on a new element."""


class TakeLock(RequestAction):
    """Request r takes the new element's cache lock and is passed to the origin (MISS);
    enabled when the element is absent and nobody holds its lock (r arriving, or a waiter)."""


class TakeAgedLock(RequestAction):
    """Request r finds the lock older than ``proxy_cache_lock_age``: it takes it over and is
    passed to the origin as well; enabled when the lock's holder has not completed in time."""


class Park(RequestAction):
    """Request r waits on the new element's cache lock; enabled when another request holds
    it and the lock is younger than ``proxy_cache_lock_age``."""


class WakeHit(RequestAction):
    """Waiter r wakes (the lock released or aged, or its timeout passed) and reads the element
    from the cache (HIT); enabled when the element is fresh."""


class TimeOut(RequestAction):
    """Waiter r's ``proxy_cache_lock_timeout`` passed with the element still locked: it is
    passed to the origin, and its response will not be cached."""


class Finish(RequestAction):
    """Request r's origin response arrives: nginx caches it and answers r; the lock is
    released if r still holds it. Enabled when the fetch is due."""


class FinishUncached(RequestAction):
    """Request r's origin response (after a lock timeout) arrives: r is answered, nothing is
    cached. Enabled when the fetch is due."""


class FetchExpired(RequestAction):
    """Request r finds the element expired and not being updated: it marks it updating and is
    passed to the origin, waiting for the answer (EXPIRED)."""


class ServeStaleAndUpdate(RequestAction):
    """Request r finds the element expired and not being updated: it marks it updating, starts
    the background subrequest and is answered the stale response at once (STALE)."""


class ServeUpdating(RequestAction):
    """Request r finds the expired element being updated and is answered the stale response
    at once (UPDATING); enabled with ``proxy_cache_use_stale updating``."""


class FetchBeside(RequestAction):
    """Request r finds the expired element being updated and, without ``use_stale updating``,
    is passed to the origin beside the update (EXPIRED)."""


class UpdateDone(Action):
    """The background subrequest's origin response arrives: nginx caches it and clears the
    element's updating mark; enabled when it is due."""


# -- the program: one client's request, step by step ---------------------------------------

PROXY, ORIGIN = "nginx", "origin"
GET = call(PROXY, "GET /item")
FRESH = answer(PROXY, "200, from the cache (HIT)")
STALE = answer(PROXY, "200, the stale response at once ({status})")


def absent(s: NginxState) -> Bool:
    """A new element: nothing fresh, and no expired copy to read."""
    return all_of(negate(s.fresh), negate(s.stale))


def lock_free(s: NginxState) -> Bool:
    """Nobody holds the element's lock."""
    return negate(s.updating)


def lock_aged(s: NginxState) -> Bool:
    """The lock is held, but its holder has not completed within ``proxy_cache_lock_age``."""
    return all_of(s.updating, s.lock_left <= 0)


def lock_held(s: NginxState) -> Bool:
    """The lock is held and younger than ``proxy_cache_lock_age``: newcomers must wait."""
    return all_of(s.updating, s.lock_left > 0)


def woken(s: NginxState, r: int) -> Bool:
    """Waiter r's poll ends: the lock was released or aged, or r's own timeout passed."""
    return any_of(negate(lock_held(s)), s.timer[r] <= 0)


def expired_idle(s: NginxState) -> Bool:
    """An expired copy, nothing fresh, and nobody updating it."""
    return all_of(negate(s.fresh), s.stale, negate(s.updating))


def expired_updating(s: NginxState) -> Bool:
    """An expired copy, nothing fresh, and an update running."""
    return all_of(negate(s.fresh), s.stale, s.updating)


def _locking(cfg: NginxConfig) -> bool:
    return cfg.new_elements and cfg.cache_lock


STEPS: tuple[Step[NginxState], ...] = (
    Step(Hit, at=IDLE, command="GET: a valid response in the cache (HIT)",
         says=(GET, FRESH),
         guard=lambda m, s, r: s.fresh,
         effect=lambda m, s, r: m.goto(s, r, GOT_VALUE)),
    Step(Miss, at=IDLE, when=lambda cfg: cfg.new_elements and not cfg.cache_lock,
         command="GET: no element, proxy_cache_lock off: passed to the origin (MISS)",
         says=(GET, Say(PROXY, ORIGIN, "GET /item for {r} ({fetch} tick(s))")),
         guard=lambda m, s, r: absent(s),
         effect=lambda m, s, r: m.fetch(s, r)),
    Step(TakeLock, at=(IDLE, WAITING), when=_locking,
         command="GET: no element; take its cache lock (updating, lock_time = now + "
                 "proxy_cache_lock_age) and pass to the origin (MISS)",
         says=(call(PROXY, "GET /item", only="arriving"),
               note("no element; {r} takes its cache lock", over=PROXY),
               Say(PROXY, ORIGIN, "GET /item for {r} ({fetch} tick(s))")),
         guard=lambda m, s, r: all_of(absent(s), lock_free(s)),
         effect=lambda m, s, r: m.lock(s, r)),
    Step(TakeAgedLock, at=(IDLE, WAITING), when=_locking,
         command="GET: the lock's holder has not completed within proxy_cache_lock_age: one "
                 "more request is passed to the origin",
         says=(call(PROXY, "GET /item", only="arriving"),
               note("the lock is {lock_age} tick(s) old: {r} takes it over", over=PROXY),
               Say(PROXY, ORIGIN, "GET /item for {r} ({fetch} tick(s)), a second fetch")),
         guard=lambda m, s, r: all_of(absent(s), lock_aged(s)),
         effect=lambda m, s, r: m.lock(s, r)),
    Step(Park, at=IDLE, when=_locking,
         command="GET: the element is locked by another request: wait for it, up to "
                 "proxy_cache_lock_timeout",
         says=(GET, note("locked by {owner}: {r} waits (at most {lock_timeout} tick(s))",
                         over=PROXY)),
         guard=lambda m, s, r: all_of(absent(s), lock_held(s)),
         effect=lambda m, s, r: m.goto(s, r, WAITING, m.cfg.lock_timeout)),
    Step(WakeHit, at=WAITING, when=_locking,
         command="(the waiter wakes) the element is in the cache now (HIT)",
         says=(FRESH,),
         guard=lambda m, s, r: all_of(s.fresh, woken(s, r)),
         effect=lambda m, s, r: m.goto(s, r, GOT_VALUE)),
    Step(TimeOut, at=WAITING, when=_locking,
         command="(proxy_cache_lock_timeout passed) passed to the origin; the response will "
                 "not be cached (NGX_HTTP_CACHE_SCARCE)",
         says=(note("{r} waited {lock_timeout} tick(s): lock timeout", over=PROXY),
               Say(PROXY, ORIGIN, "GET /item for {r} ({fetch} tick(s), not to be cached)")),
         guard=lambda m, s, r: all_of(negate(s.fresh), lock_held(s), s.timer[r] <= 0),
         effect=lambda m, s, r: m.fetch(s, r, FETCHING_UNCACHED)),
    Step(Finish, at=FETCHING,
         command="the origin answers 200: nginx caches it, answers r, and releases the lock "
                 "if r still holds it (lock_time unchanged)",
         says=proxy_cache.answered(PROXY, ORIGIN, reply="200 (for {r})", then="caches it{release}"),
         guard=lambda m, s, r: m.completes(s, r),
         effect=lambda m, s, r: m.store(m.end_work(s, r, GOT_VALUE), r, s.seen[r])),
    Step(FinishUncached, at=FETCHING_UNCACHED, when=_locking,
         command="the origin answers 200: r is answered, nothing is cached",
         says=proxy_cache.answered(PROXY, ORIGIN, reply="200 (for {r})",
                                   then="not cached (a lock-timeout fetch)"),
         guard=lambda m, s, r: m.uncached_due(s, r),
         effect=lambda m, s, r: m.end_work(s, r, GOT_VALUE)),
    Step(FetchExpired, at=IDLE, when=lambda cfg: not cfg.cold and not cfg.background,
         command="GET: the element expired; mark it updating and pass to the origin (EXPIRED)",
         says=(GET, note("expired: {r} updates it", over=PROXY),
               Say(PROXY, ORIGIN, "GET /item for {r} ({fetch} tick(s), {r} waits)")),
         guard=lambda m, s, r: expired_idle(s),
         effect=lambda m, s, r: replace(m.fetch(s, r), updating=True, owner=r)),
    Step(ServeStaleAndUpdate, at=IDLE, when=lambda cfg: not cfg.cold and cfg.background,
         command="GET: the element expired; mark it updating, start a background subrequest "
                 "and answer the stale response at once (STALE)",
         says=(GET, STALE,
               Say(PROXY, ORIGIN, "GET /item (background subrequest, {fetch} tick(s))")),
         guard=lambda m, s, r: expired_idle(s),
         effect=lambda m, s, r: replace(m.goto(s, r, GOT_STALE), updating=True,
                                        owner=BACKGROUND, update=0, starts=s.starts + 1,
                                        update_seen=s.db)),
    Step(ServeUpdating, at=IDLE, when=lambda cfg: not cfg.cold and cfg.use_stale_updating,
         command="GET: the element is being updated: the stale response at once (UPDATING)",
         says=(GET, STALE),
         guard=lambda m, s, r: expired_updating(s),
         effect=lambda m, s, r: m.goto(s, r, GOT_STALE)),
    Step(FetchBeside, at=IDLE, when=lambda cfg: not cfg.cold and not cfg.use_stale_updating,
         command="GET: the element is being updated, and stale may not be used while "
                 "updating: passed to the origin too (EXPIRED)",
         says=(GET, note("being updated, but use_stale updating is off", over=PROXY),
               Say(PROXY, ORIGIN, "GET /item for {r} ({fetch} tick(s)), beside the update")),
         guard=lambda m, s, r: expired_updating(s),
         effect=lambda m, s, r: m.fetch(s, r)),
)

# -- the background subrequest (proxy_cache_background_update on) ------------------------

UPDATER: tuple[Step[NginxState], ...] = (
    Step(UpdateDone, at=(), when=lambda cfg: not cfg.cold and cfg.background,
         command="the origin answers the background subrequest: cached, updating cleared",
         says=(Say(ORIGIN, PROXY, "200 (background subrequest)", reply=True),
               note("caches it: fresh again", over=PROXY)),
         guard=lambda m, s, _: m.update_due(s),
         effect=lambda m, s, _: replace(s, fresh=True, updating=False, owner=NOBODY,
                                        update=NO_UPDATE, cached=s.update_seen,
                                        update_seen=0)),
)


class NginxModel(ProgramModel[NginxConfig, NginxState]):
    """The ``nginx`` transition system for one configuration, compiled from :data:`STEPS` (a
    client's request) and :data:`UPDATER` (the background subrequest)."""

    STEPS = STEPS
    BACKGROUND = UPDATER
    # a waiter counts down to its lock timeout; a fetch counts up to ``fetch`` and holds the
    # clock when due
    TIMERS: ClassVar[Mapping[int, program.Timer]] = {
        WAITING: program.Timer(up=False, duration="lock_timeout"),
        FETCHING: proxy_cache.FETCH, FETCHING_UNCACHED: proxy_cache.FETCH}
    WORK = FETCHING
    DONE, ERRORS, FALLBACKS = proxy_cache.ends(GOT_VALUE, GOT_STALE, CRASHED)
    PARTICIPANTS = (PROXY, ORIGIN)
    ENVIRONMENT_SAYS = proxy_cache.environment_says(
        PROXY, ORIGIN, crash="the worker serving {r} dies: nothing cached, {r} gets an error, "
        "the element's lock stays set", purge="purge /item: the element is gone")

    def initial_states(self) -> tuple[NginxState, ...]:
        n = self.cfg.requests
        return (NginxState(pc=(IDLE,) * n, timer=(0,) * n, held=(False,) * n, seen=(0,) * n,
                           db=0, starts=0, crashed=0, fresh=False, stale=not self.cfg.cold,
                           updating=False, owner=NOBODY, lock_left=0, update=NO_UPDATE,
                           cached=0, update_seen=0),)

    def in_domain(self, s: NginxState) -> Bool:
        cfg = self.cfg
        per_request = [
            all_of(pc >= IDLE, pc <= CRASHED, seen >= 0, seen <= s.db,
                   implies(all_of(pc != FETCHING, pc != FETCHING_UNCACHED), seen == 0),
                   ite(pc == FETCHING, environment.elapsed_in_domain(timer, cfg.fetch,
                                                                      cfg.pause, held),
                       all_of(negate(held), ite(
                           pc == WAITING, all_of(timer >= 0, timer <= cfg.lock_timeout),
                           ite(pc == FETCHING_UNCACHED, all_of(timer >= 0, timer <= cfg.fetch),
                               timer == 0)))))
            for pc, timer, held, seen in zip(s.pc, s.timer, s.held, s.seen, strict=True)]
        return all_of(
            *per_request,
            s.owner >= (BACKGROUND if cfg.background else NOBODY), s.owner < cfg.requests,
            implies(negate(s.updating), all_of(s.owner == NOBODY, s.lock_left == 0)),
            s.lock_left >= 0, s.lock_left <= cfg.lock_age,
            implies(s.owner == BACKGROUND, s.update >= 0),
            s.update == NO_UPDATE if not cfg.background else implies(
                s.update != NO_UPDATE, all_of(s.update >= 0, s.update <= cfg.fetch,
                                              s.owner == BACKGROUND)),
            implies(s.stale, s.db == 0), negate(s.stale) if cfg.cold else True,
            s.db >= 0, s.db <= cfg.writers, s.cached >= 0, s.cached <= s.db,
            implies(negate(s.fresh), s.cached == 0),
            s.update_seen >= 0, s.update_seen <= s.db,
            implies(s.update == NO_UPDATE, s.update_seen == 0),
            s.crashed >= 0, s.crashed <= environment.crash_bound(cfg.crash, cfg.crashes),
            s.starts >= 0, s.starts <= cfg.requests)

    def observe(self, s: NginxState) -> Observation:
        """Lock-timeout fetches (never cached) and the background subrequest run beside the
        locked fetch: the observation counts them as background work."""
        return self.observation(s, s.fresh, cached=s.cached, background=proxy_cache.side_fetches(
            s.pc, FETCHING_UNCACHED, s.update >= 0))

    def describe(self, s: NginxState) -> dict[str, str]:
        columns = {f"r{r}": self._describe_request(s, r) for r in range(self.cfg.requests)}
        version = f" v{s.cached}" if self.cfg.writers else ""
        columns["element"] = (f"fresh{version}" if s.fresh else "expired" if s.stale
                              else "purged" if s.db else "absent")
        if s.updating:
            holder = {BACKGROUND: "background"}.get(s.owner, f"r{s.owner}")
            age = f", {s.lock_left} to lock_age" if self.cfg.cold else ""
            columns["lock"] = f"{holder}{age}"
        else:
            columns["lock"] = "-"
        if self.cfg.background:
            columns["update"] = "-" if s.update < 0 else f"{s.update}/{self.cfg.fetch}"
        return columns | proxy_cache.origin_columns(ORIGIN, s.db, s.starts, self.cfg.writers)

    def invariants(self) -> tuple[Invariant, ...]:
        """Candidate facts for induction proofs; the SMT engine keeps the inductive ones.

        For a new element with the lock on (``lock_age`` and ``lock_timeout`` longer than the
        fetch):

        - holder-fetches: a request fetching (cacheably) holds the lock;
        - lock-age-left: which it took ``timer`` ticks ago: ``lock_left + timer == lock_age``.
        - one-holder: while the lock is held exactly one request (or the background
          subrequest) fetches; while it is free none does.
        - fetches-so-far: one fetch was started once the lock was taken or the element
          stored, none before.
        - nothing-uncached: no lock-timeout fetch runs.
        - waiters-outlast: a waiter parked after the holder took the lock, so its timeout is
          at least ``lock_timeout - timer[holder]`` away; and waiters exist only while the
          lock is held or after the store.
        - stored-released: once the element is stored, nobody holds the lock or fetches.

        For an expired element with ``use_stale updating``, holder-fetches, one-holder and
        fetches-so-far carry over: the one update (a request's fetch, or the background
        subrequest) is the one fetch.
        """
        cfg = self.cfg
        n = range(cfg.requests)

        def fetching(s: NginxState) -> Int:
            return count(pc == FETCHING for pc in s.pc)

        return (
            Invariant("holder-fetches", lambda s: all_of(*(implies(
                s.pc[r] == FETCHING, all_of(s.updating, s.owner == r)) for r in n))),
            Invariant("lock-age-left", lambda s: all_of(*(implies(
                s.pc[r] == FETCHING, s.lock_left + s.timer[r] == cfg.lock_age) for r in n))),
            Invariant("one-holder", lambda s: fetching(s) + ite(s.update >= 0, 1, 0)
                      == ite(s.updating, 1, 0)),
            Invariant("fetches-so-far", lambda s: s.starts == ite(
                any_of(s.updating, s.fresh), 1, 0)),
            Invariant("nothing-uncached", lambda s: count(
                pc == FETCHING_UNCACHED for pc in s.pc) == 0),
            Invariant("waiters-outlast", lambda s: all_of(*(implies(
                all_of(s.pc[w] == WAITING, s.pc[h] == FETCHING),
                s.timer[w] + s.timer[h] >= cfg.lock_timeout)
                for w in n for h in n if w != h), *(implies(
                    s.pc[w] == WAITING, any_of(s.updating, s.fresh)) for w in n))),
            Invariant("stored-released", lambda s: implies(s.fresh, all_of(
                negate(s.updating), fetching(s) == 0))),
        )

    def quantified_invariants(self) -> tuple[Candidate, ...]:
        """The candidates above, stated once per client (or pair of clients), for the proof
        for every number of clients (``herdproof prove --all-sizes``); "exactly one fetches
        while the lock is held" becomes "no two fetch" and "while the lock is held and no
        background update runs, some client fetches and owns it"."""
        cfg = self.cfg
        return (
            each_request("holder-fetches", "a client fetching (cacheably) holds the lock",
                         lambda m, s, r: implies(s.pc[r] == FETCHING,
                                                 all_of(s.updating, s.owner == r))),
            each_request("lock-age-left", "the holder took the lock timer ticks ago",
                         lambda m, s, r: implies(s.pc[r] == FETCHING,
                                                 s.lock_left + s.timer[r] == cfg.lock_age)),
            each_pair("one-fetcher", "no two clients fetch at once",
                      lambda m, s, r, q: negate(all_of(s.pc[r] == FETCHING,
                                                       s.pc[q] == FETCHING))),
            whole("no-background", "no background subrequest runs without "
                  "proxy_cache_background_update",
                  lambda m, s: implies(negate(cfg.background), s.update < 0)),
            some_request("lock-has-fetcher", "while the lock is held and no background update "
                         "runs, some client fetches and owns it",
                         lambda m, s, r: implies(all_of(s.updating, s.update < 0), all_of(
                             s.pc[r] == FETCHING, s.owner == r))),
            whole("fetches-so-far", "one fetch was started once the lock was taken or the "
                  "element stored, none before",
                  lambda m, s: s.starts == ite(any_of(s.updating, s.fresh), 1, 0)),
            each_request("nothing-uncached", "no lock-timeout fetch runs",
                         lambda m, s, r: s.pc[r] != FETCHING_UNCACHED),
            each_pair("waiters-outlast", "a waiter parked after the holder took the lock",
                      lambda m, s, w, h: implies(all_of(s.pc[w] == WAITING,
                                                        s.pc[h] == FETCHING),
                                                 s.timer[w] + s.timer[h] >= cfg.lock_timeout)),
            each_request("waiters-behind-lock", "waiters exist only while the lock is held or "
                         "after the store",
                         lambda m, s, r: implies(s.pc[r] == WAITING,
                                                 any_of(s.updating, s.fresh))),
            whole("stored-released", "once the element is stored, nobody holds the lock",
                  lambda m, s: implies(s.fresh, negate(s.updating))),
            each_request("stored-no-fetch", "once the element is stored, nobody fetches",
                         lambda m, s, r: implies(s.fresh, s.pc[r] != FETCHING)),
        )

    def symmetry(self) -> Symmetry:
        """The symmetry :meth:`canonical` reduces by, as data (for engines that generate a
        model, such as SPIN): clients are interchangeable, and the lock's owner is renamed."""
        return Symmetry(fields=("pc", "timer", "held", "seen"),
                        groups=(tuple(range(self.cfg.requests)),), owners=("owner",))

    def canonical(self, s: NginxState) -> NginxState:
        """Clients are interchangeable: sort them, renaming the lock's owner."""
        canonical: NginxState = self.symmetry().canonical(s)
        return canonical

    # -- the steps' helpers ----------------------------------------------------------------

    def lock(self, s: NginxState, r: int) -> NginxState:
        """r takes the element's lock (``updating = 1``, ``lock_time = now + lock_age``) and is
        passed to the origin."""
        return replace(self.goto(s, r, FETCHING), updating=True, owner=r,
                       lock_left=self.cfg.lock_age, starts=s.starts + 1)

    def fetch(self, s: NginxState, r: int, label: int = FETCHING) -> NginxState:
        """r is passed to the origin (one more fetch), reading its current version."""
        return replace(self.goto(s, r, label), starts=s.starts + 1,
                       seen=set_at(s.seen, r, s.db))

    def store(self, s: NginxState, r: int, version: Int) -> NginxState:
        """r's response (origin ``version``) is cached; the lock is released only if r still
        holds it."""
        mine = all_of(s.updating, s.owner == r)
        return replace(s, fresh=True, cached=version, updating=ite(mine, False, s.updating),
                       owner=ite(mine, NOBODY, s.owner), lock_left=ite(mine, 0, s.lock_left))

    def uncached_due(self, s: NginxState, r: int) -> Bool:
        """r's lock-timeout fetch has run ``fetch`` ticks."""
        elapsed: Int = s.timer[r]
        return environment.due(elapsed, self.duration(FETCHING_UNCACHED, r))

    def update_due(self, s: NginxState) -> Bool:
        """The background subrequest runs and is due."""
        return all_of(s.update >= 0, environment.due(s.update, self.cfg.fetch))

    def background_holds_the_clock(self, s: NginxState) -> Bool:
        """A due background subrequest completes before the next tick."""
        return self.update_due(s)

    def holds_the_clock(self, s: NginxState, r: int) -> Bool:
        """Due fetches, and a waiter whose lock timeout has passed (its timer fires then)."""
        timed_out = all_of(s.pc[r] == WAITING, s.timer[r] <= 0)
        return any_of(timed_out, super().holds_the_clock(s, r))

    # -- time and the environment ----------------------------------------------------------

    def crash(self, s: NginxState, r: int) -> NginxState:
        """r's worker dies mid-fetch: an error for its client, nothing stored, and the lock it
        holds stays set (no clean-up runs in a dead process)."""
        return replace(self.end_work(s, r, CRASHED), crashed=s.crashed + 1)

    def write(self, s: NginxState) -> NginxState:
        """The origin's content changes and the element is purged, stale copy and all: a new
        element from now on (fetches in flight still store what they read)."""
        return replace(s, db=s.db + 1, fresh=False, stale=False, cached=0)

    def tick_stores(self, s: NginxState) -> NginxState:
        """The lock ages toward ``lock_age``; the background subrequest runs one tick longer."""
        return replace(s, lock_left=ite(all_of(s.updating, s.lock_left > 0), s.lock_left - 1,
                                        s.lock_left),
                       update=ite(s.update >= 0, s.update + 1, s.update))

    # -- narration and the text timeline ---------------------------------------------------

    def facts(self, before: NginxState, after: NginxState, r: int | None) -> dict[str, str]:
        """Who holds the lock, whether a step arrives, whether a store releases the lock, and
        the cache status of a stale answer."""
        owner = "the background update" if before.owner == BACKGROUND else f"r{before.owner}"
        facts = {"owner": owner, "arriving": "", "release": "",
                 "status": "UPDATING" if before.updating else "STALE"}
        if r is not None:
            facts["arriving"] = "yes" if before.pc[r] == IDLE else ""
            if before.pc[r] == FETCHING and before.updating:
                facts["release"] = (", releases the lock" if before.owner == r
                                    else f"; the lock stays {owner}'s (taken over at lock_age)")
        return facts

    def _describe_request(self, s: NginxState, r: int) -> str:
        pc = PC(s.pc[r])
        if pc == WAITING:
            return f"waits ({s.timer[r]} left)"
        if pc == FETCHING:
            return proxy_cache.fetch_column(s.timer[r], self.cfg.fetch, s.held[r])
        if pc == FETCHING_UNCACHED:
            return f"fetch {s.timer[r]}/{self.cfg.fetch} uncached"
        return {IDLE: "-", GOT_VALUE: "200", GOT_STALE: "stale", CRASHED: "error"}[pc]


def build(params: Mapping[str, ParamValue], name: str = "nginx") -> NginxModel:
    """The ``nginx`` model for complete, validated parameters."""
    return NginxModel(NginxConfig.from_params(params), params, name=name)


SPEC = policy.PolicySpec(
    "nginx", "nginx proxy cache: proxy_cache_lock (timeout, age), use_stale updating and "
    "background update, in front of an origin", PARAMS, build)
