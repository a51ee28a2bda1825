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

The shared environment (:mod:`models.environment`), off by default:

- ``Pause(r=..)`` stalls a due synchronous fetch, ``PauseRefresh()`` the due background
  refresh, one tick at a time and at most ``pause`` ticks each (a GC pause, a slow origin).
- ``Crash(r=..)``: a synchronous fetcher dies; it never stores and its client gets an error,
  an explicit failure (``crashed``). ``CrashRefresh()``: the background refresh dies and never
  stores. The cache keeps the key marked as *updating* (nginx marks an entry so while one
  request updates it, and serves the others its stale copy: ``proxy_cache_use_stale
  updating`` with ``proxy_cache_background_update on``); a process that dies runs no
  clean-up, so the model lets the mark outlive the refresh. Inside the window every request
  is still served stale and none starts a second refresh: there the crash costs freshness,
  not origin load. Once the window closes nothing fresh was stored, so requests go to the
  origin synchronously, side by side. At most ``crash_bound(crash, crashes)`` crashes happen
  in a run.
- ``Write()``: a DB writer commits version ``db + 1`` and purges the key (the look-aside
  delete). Nothing stale is left to serve, so the window is over: every later request that
  finds no fresh value misses and fetches synchronously. A fetch or refresh reads the DB
  version when it starts and stores that version when it finishes; the cache records the
  version it holds.

What is abstracted away, and why that is safe: one key; the refreshed value stays fresh for the
rest of the run (its ``max-age`` is longer than the race); the background refresh belongs to the
cache, not to the request that triggered it (the request is answered at once), so it is a
background actor of its own (:data:`REFRESHER`) with its own pause and crash steps; a
revalidation may be conditional (``If-None-Match``), but a 304 and a 200 both make the stored
copy fresh, so one store step covers both; a purge that lands while the refresh runs does not
cancel it, because nothing recalls a request already sent to the origin.

Meant to fail: ONE and REBUILDS<=1. The single background refresh bounds the origin load only
inside the window: a request arriving after the window closes, while the refresh still runs,
queries the origin beside it. FRESH with writers: a refresh that read the old version before
the writer's purge stores it afterwards, and nothing checks its version (no stale-set
protection, unlike ``lease`` tokens or ``memcached-meta``'s ``ms C<cas>``). SERVED holds:
nobody waits inside the window, and every fetch after it completes or fails loudly.

What RFC 5861 does promise can be stated with the layer's arrival window (``arrive_before``):
with every request arriving inside the stale window (``arrive_before <=
stale_while_revalidate``; the run starts when the value went stale), the origin sees one fetch
(REBUILDS<=1 holds, for every window, refresh time, pause and refresh crash: the candidates
``window-clock`` and ``one-refresh`` make it inductive). One tick past the window the herd is
back, and a writer's purge (the environment, not an arrival, so never confined) ends the window
early.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import ClassVar

from herdproof.models import environment, policy, program
from herdproof.models.core import Action, Invariant
from herdproof.models.narration import Say, answer, call, note
from herdproof.models.observation import Observation
from herdproof.models.ops import Bool, Int, all_of, any_of, count, implies, ite, negate, set_at
from herdproof.models.params import Param, ParamValue
from herdproof.models.program import ProgramModel, RequestAction, Step
from herdproof.models.symmetry import Symmetry

PARAMS: tuple[Param, ...] = (
    Param("requests", int, 2, "concurrent requests for the key", minimum=1),
    Param("stale_while_revalidate", int, 2, "ticks the stale value may still be served",
          minimum=0, timing=True),
    Param("rebuild", int, 2, "refresh (origin fetch) duration in ticks", minimum=1, timing=True),
    environment.PAUSE,
    environment.CRASH,
    environment.CRASHES,
    environment.WRITERS,
)

NO_REFRESH = -1       # ``refresh`` when no background refresh runs
CRASHED_REFRESH = -2  # the refresh died; the cache still marks the key as updating


class PC(IntEnum):
    """Where a request is in its program."""

    IDLE = 0        # not arrived yet
    REBUILDING = 1  # window closed: fetching from the origin itself
    GOT_VALUE = 2   # ended with the fresh value
    GOT_STALE = 3   # ended with the stale value, inside the window
    CRASHED = 4     # its fetcher died: the client got an error


IDLE, REBUILDING, GOT_VALUE, GOT_STALE, CRASHED = tuple(PC)
DONE = (GOT_VALUE, GOT_STALE, CRASHED)


@dataclass(frozen=True, slots=True)
class SwrConfig(environment.EnvironmentConfig):
    """The parameters of one instance; timing constants may be z3 terms in symbolic runs."""

    requests: int
    stale_while_revalidate: Int
    rebuild: Int


@dataclass(frozen=True, slots=True)
class SwrState(program.RequestsState):
    """``window``: ticks left in which the stale value may be served (0: closed).
    ``refresh``: elapsed ticks of the background refresh, ``NO_REFRESH`` if none runs.
    ``timer[r]``: elapsed ticks of r's synchronous fetch."""

    fresh: Bool
    window: Int
    refresh: Int
    # the environment's (models/environment.py) for the refresh: paused this tick, the DB
    # version it read; and the version the cache holds
    refresh_held: Bool
    refresh_seen: Int
    cached: Int


class Hit(RequestAction):
    """Request r finds the fresh value; enabled when r has not arrived and the value is fresh."""


class ServeStaleAndRefresh(RequestAction):
    """Request r is served the stale value and starts the key's background refresh; enabled
    inside the window when no refresh runs."""


class ServeStale(RequestAction):
    """Request r is served the stale value; enabled inside the window while the refresh runs."""


class Miss(RequestAction):
    """Request r finds neither a fresh value nor an open window and fetches from the origin."""


class Finish(RequestAction):
    """Request r's origin fetch completes: it stores the value and is served; enabled when due."""


class RefreshDone(Action):
    """The background refresh stores the fresh value; enabled when it is due."""


class PauseRefresh(Action):
    """The environment stalls the background refresh for one tick; enabled when the refresh is
    due, not already stalled this tick, and stalled fewer than ``pause`` ticks."""

    by_environment: ClassVar[bool] = True


class CrashRefresh(Action):
    """The background refresh dies and never stores; the key stays marked as updating. Enabled
    while the refresh runs and fewer than ``crashes`` crashes have happened."""

    by_environment: ClassVar[bool] = True


# -- the program: one request, step by step ------------------------------------------------
# The commands are an HTTP cache's (nginx with ``proxy_cache_use_stale updating`` and
# ``proxy_cache_background_update on``; its ``$upstream_cache_status`` in capitals).

CACHE, DB = "Cache", "DB"
GET = call(CACHE, "GET key")
STALE = answer(CACHE, "stale value, at once (the window has {window} tick(s) left)")


def stale_ok(s: SwrState) -> Bool:
    """Nothing fresh, but the window is open: the stale copy may be served."""
    return all_of(negate(s.fresh), s.window > 0)


STEPS: tuple[Step[SwrState], ...] = (
    Step(Hit, at=IDLE, command="GET key: fresh in the cache (HIT)",
         says=(GET, answer(CACHE, "value{version} (fresh)")),
         guard=lambda m, s, r: s.fresh,
         effect=lambda m, s, r: m.goto(s, r, GOT_VALUE)),
    Step(ServeStaleAndRefresh, at=IDLE,
         command="GET key: stale at once (STALE), and a background GET key to the origin",
         says=(GET, STALE, Say(CACHE, DB, "GET key (background refresh, {rebuild} tick(s))")),
         guard=lambda m, s, r: all_of(stale_ok(s), s.refresh == NO_REFRESH),
         effect=lambda m, s, r: replace(m.goto(s, r, GOT_STALE), refresh=0,
                                        starts=s.starts + 1, refresh_seen=s.db)),
    Step(ServeStale, at=IDLE, command="GET key: stale at once, the key is updating (UPDATING)",
         says=(GET, STALE,
               note("no second refresh: one is running", over=CACHE, only="refreshing"),
               note("no second refresh: the key is still marked updating, though its refresh "
                    "died", over=CACHE, only="dead_refresh")),
         guard=lambda m, s, r: all_of(stale_ok(s), s.refresh != NO_REFRESH),
         effect=lambda m, s, r: m.goto(s, r, GOT_STALE)),
    Step(Miss, at=IDLE, command="GET key: nothing to serve (EXPIRED), proxied to the origin",
         says=(GET, note("nothing fresh, and {why}", over=CACHE),
               Say(CACHE, DB, "GET key for {r} ({rebuild} tick(s), {r} waits)")),
         guard=lambda m, s, r: all_of(negate(s.fresh), s.window == 0),
         effect=lambda m, s, r: replace(m.goto(s, r, REBUILDING), starts=s.starts + 1,
                                        seen=set_at(s.seen, r, s.db))),
    Step(Finish, at=REBUILDING, command="the origin answers 200: the cache stores it, answers r",
         says=(Say(DB, CACHE, "value{version} (for {r})", reply=True),
               note("stores it: fresh", over=CACHE), answer(CACHE, "value{version} (fresh)")),
         guard=lambda m, s, r: m.completes(s, r),
         effect=lambda m, s, r: replace(m.end(s, r, GOT_VALUE), fresh=True, cached=s.seen[r])),
)

# -- the cache's background refresher: one per key, owned by no request ---------------------

REFRESHER: tuple[Step[SwrState], ...] = (
    Step(RefreshDone, at=(), command="the origin answers the background GET (200, or 304)",
         says=(Say(DB, CACHE, "value{version} (background refresh done)", reply=True),
               note("stores it: fresh again", over=CACHE)),
         guard=lambda m, s, _: m.refresh_due(s),
         effect=lambda m, s, _: replace(m.refresh_over(s, NO_REFRESH), fresh=True,
                                        cached=s.refresh_seen)),
    Step(PauseRefresh, at=(), when=program.pauses,
         command="(a slow origin: the answer comes a tick late)",
         says=(note("the background refresh stalls one more tick (pause)", over=CACHE),),
         guard=lambda m, s, _: all_of(m.refreshing(s), environment.may_pause(
             s.refresh, m.cfg.rebuild, m.cfg.pause, s.refresh_held)),
         effect=lambda m, s, _: replace(s, refresh_held=True)),
    Step(CrashRefresh, at=(), when=program.crashes,
         command="(the refreshing worker dies, no clean-up)",
         says=(note("the background refresh dies: nothing stored, the key stays marked "
                    "updating", over=CACHE),),
         guard=lambda m, s, _: all_of(m.refreshing(s),
                                      environment.may_crash(s.crashed, m.crash_bound)),
         effect=lambda m, s, _: replace(m.refresh_over(s, CRASHED_REFRESH),
                                        crashed=s.crashed + 1)),
)


class SwrModel(ProgramModel[SwrConfig, SwrState]):
    """The ``swr`` transition system for one configuration, compiled from :data:`STEPS` (a
    request) and :data:`REFRESHER` (the cache's background refresh)."""

    STEPS = STEPS
    BACKGROUND = REFRESHER
    # a fetch counts up to ``rebuild`` and holds the clock when due; pauses and crashes strike it
    TIMERS: ClassVar[Mapping[int, program.Timer]] = {
        REBUILDING: program.Timer(up=True, duration="rebuild")}
    WORK = REBUILDING
    DONE = DONE
    ERRORS = (CRASHED,)
    FALLBACKS = (GOT_STALE,)
    PARTICIPANTS = (CACHE, DB)
    ENVIRONMENT_SAYS: ClassVar[Mapping[str, tuple[Say, ...]]] = {
        "Pause": (note("the origin answers {r}'s fetch one more tick late (pause)"),),
        "Crash": (note("the fetch for {r} dies: nothing stored, {r} gets an error"),),
        "Write": (note("a writer commits {db}", over=DB),
                  Say(DB, CACHE, "purge key: the stale copy goes too, the window is over")),
    }

    def initial_states(self) -> tuple[SwrState, ...]:
        n = self.cfg.requests
        return (SwrState(pc=(IDLE,) * n, timer=(0,) * n, fresh=False,
                         window=self.cfg.stale_while_revalidate, refresh=NO_REFRESH, starts=0,
                         held=(False,) * n, seen=(0,) * n, refresh_held=False, refresh_seen=0,
                         cached=0, db=0, crashed=0),)

    def in_domain(self, s: SwrState) -> Bool:
        cfg = self.cfg
        per_request = [
            all_of(pc >= IDLE, pc <= CRASHED, seen >= 0, seen <= s.db,
                   ite(pc == REBUILDING,
                       environment.elapsed_in_domain(timer, cfg.rebuild, cfg.pause, held),
                       all_of(timer == 0, negate(held), seen == 0)))
            for pc, timer, held, seen in zip(s.pc, s.timer, s.held, s.seen, strict=True)
        ]
        return all_of(
            *per_request,
            s.window >= 0, s.window <= cfg.stale_while_revalidate,
            s.refresh >= CRASHED_REFRESH,
            ite(self.refreshing(s),
                environment.elapsed_in_domain(s.refresh, cfg.rebuild, cfg.pause, s.refresh_held),
                all_of(negate(s.refresh_held), s.refresh_seen == 0)),
            s.refresh_seen >= 0, s.refresh_seen <= s.db,
            implies(s.refresh == CRASHED_REFRESH, s.crashed >= 1),
            s.db >= 0, s.db <= cfg.writers,
            s.cached >= 0, s.cached <= s.db, implies(negate(s.fresh), s.cached == 0),
            implies(s.window > 0, s.db == 0),  # a purge closes the window for good
            s.starts >= 0, s.starts <= cfg.requests,
            s.crashed >= 0, s.crashed <= environment.crash_bound(cfg.crash, cfg.crashes),
        )

    def observe(self, s: SwrState) -> Observation:
        return self.observation(s, s.fresh, cached=s.cached,
                                background=ite(self.refreshing(s), 1, 0))

    def describe(self, s: SwrState) -> dict[str, str]:
        cfg = self.cfg
        columns = {f"r{r}": self._describe_request(s, r) for r in range(cfg.requests)}
        if s.fresh:
            columns["value"] = f"fresh v{s.cached}" if cfg.writers else "fresh"
        elif s.window:
            columns["value"] = f"stale ({s.window} left)"
        else:
            columns["value"] = "purged" if s.db else "expired"
        columns["refresh"] = self._describe_refresh(s)
        if cfg.writers:
            columns["db"] = f"v{s.db}"
        columns["starts"] = str(s.starts)
        return columns

    def invariants(self) -> tuple[Invariant, ...]:
        """Candidate facts for induction proofs; the SMT engine keeps the inductive ones.

        - started-rebuilders: every fetch running now, and the refresh if it runs, was counted
          as a start when it began.
        - start-per-arrival: a request starts at most one query (a miss or the refresh), so
          starts never exceed the requests that arrived. Together: one request, one query.
        - one-refresh: once a query started, no second refresh can: the key is fresh, marked
          updating (the refresh runs or died), or the window is over.
        - window-clock: with arrivals confined to the stale window (``arrive_before``), the
          window has ``stale_while_revalidate - since`` ticks left while requests may still
          arrive, so none arrives to a closed window (vacuous without an arrival window).
          With these, "inside the stale window, one origin fetch" (REBUILDS<=1) is inductive.
        """
        cfg = self.cfg
        return (
            Invariant("started-rebuilders", lambda s: count(pc == REBUILDING for pc in s.pc)
                      + ite(self.refreshing(s), 1, 0) <= s.starts),
            Invariant("start-per-arrival",
                      lambda s: s.starts <= count(pc != IDLE for pc in s.pc)),
            Invariant("one-refresh", lambda s: implies(
                s.starts >= 1, any_of(s.fresh, s.refresh != NO_REFRESH, s.window == 0))),
            Invariant("window-clock", lambda s: implies(
                s.since < self.arrive_before, s.since + s.window == cfg.stale_while_revalidate)),
        )

    def symmetry(self) -> Symmetry:
        """The symmetry :meth:`canonical` reduces by, as data (for engines that generate a
        model, such as SPIN)."""
        return Symmetry(fields=("pc", "timer", "held", "seen"),
                        groups=(tuple(range(self.cfg.requests)),))

    def canonical(self, s: SwrState) -> SwrState:
        """Requests are interchangeable: sort them by everything that distinguishes them."""
        order = sorted(range(self.cfg.requests),
                       key=lambda r: (s.pc[r], s.timer[r], s.held[r], s.seen[r]))
        return replace(s, pc=tuple(s.pc[r] for r in order),
                       timer=tuple(s.timer[r] for r in order),
                       held=tuple(s.held[r] for r in order),
                       seen=tuple(s.seen[r] for r in order))

    # -- the steps' helpers ----------------------------------------------------------------

    def end(self, s: SwrState, r: int, outcome: PC) -> SwrState:
        """r's fetch is over: r ends with ``outcome``, its pause and the version it read gone."""
        return self.end_work(s, r, outcome)

    def refreshing(self, s: SwrState) -> Bool:
        """The background refresh is alive (not absent, not crashed)."""
        return s.refresh >= 0

    def refresh_over(self, s: SwrState, mark: int) -> SwrState:
        """The refresh ends: ``NO_REFRESH``, or ``CRASHED_REFRESH`` for the mark a dead one left."""
        return replace(s, refresh=mark, refresh_held=False, refresh_seen=0)

    def refresh_due(self, s: SwrState) -> Bool:
        """The refresh is alive, due, and no pause holds it back this tick."""
        return all_of(self.refreshing(s), environment.due(s.refresh, self.cfg.rebuild),
                      negate(s.refresh_held))

    def background_holds_the_clock(self, s: SwrState) -> Bool:
        """Work is urgent: a due refresh stores before the next tick."""
        return self.refresh_due(s)

    # -- time and the environment ----------------------------------------------------------

    def tick_stores(self, s: SwrState) -> SwrState:
        """The window shrinks; the refresh, if alive, runs one tick longer."""
        return replace(s, window=ite(s.window > 0, s.window - 1, 0), refresh_held=False,
                       refresh=ite(self.refreshing(s), s.refresh + 1, s.refresh))

    def crash(self, s: SwrState, r: int) -> SwrState:
        """r's fetcher dies: nothing stored, and its client gets an error."""
        return replace(self.end(s, r, CRASHED), crashed=s.crashed + 1)

    def write(self, s: SwrState) -> SwrState:
        """Commit, then purge: the stale copy goes too, which closes the window."""
        return replace(s, db=s.db + 1, fresh=False, cached=0, window=0)

    # -- narration and the text timeline ---------------------------------------------------

    def facts(self, before: SwrState, after: SwrState, r: int | None) -> dict[str, str]:
        """The window left, why a miss found nothing, the refresh's fate, and (with writers)
        the version a step serves or stores."""
        facts = {"window": str(before.window),
                 "why": "the key was purged" if before.db else "the window is over",
                 "refreshing": "yes" if before.refresh >= 0 else "",
                 "dead_refresh": "yes" if before.refresh == CRASHED_REFRESH else "",
                 "version": ""}
        if self.cfg.writers:
            if r is None:
                version = before.refresh_seen
            else:
                version = before.seen[r] if before.pc[r] == REBUILDING else before.cached
            facts["version"] = f" v{version}"
        return facts

    def _describe_request(self, s: SwrState, r: int) -> str:
        pc = PC(s.pc[r])
        if pc == REBUILDING:
            label = f"fetch {s.timer[r]}/{self.cfg.rebuild}"
            label += f" v{s.seen[r]}" if self.cfg.writers else ""
            return label + (" paused" if s.held[r] else "")
        return {IDLE: "-", GOT_VALUE: "value", GOT_STALE: "stale", CRASHED: "crashed"}[pc]

    def _describe_refresh(self, s: SwrState) -> str:
        if s.refresh == NO_REFRESH:
            return "-"
        if s.refresh == CRASHED_REFRESH:
            return "crashed (updating)"
        label = f"{s.refresh}/{self.cfg.rebuild}"
        label += f" v{s.refresh_seen}" if self.cfg.writers else ""
        return label + (" paused" if s.refresh_held else "")


def build(params: Mapping[str, ParamValue], name: str = "swr") -> SwrModel:
    """The ``swr`` model for complete, validated parameters."""
    return SwrModel(SwrConfig(**dict(params)), params, name=name)  # type: ignore[arg-type]


SPEC = policy.PolicySpec(
    "swr", "stale-while-revalidate (RFC 5861): serve stale in the window while one background "
    "refresh runs", PARAMS, build)
