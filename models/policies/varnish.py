"""``varnish``: Varnish Cache's request coalescing (the waiting list), grace, and hit-for-miss /
hit-for-pass, in front of a backend.

One object (one hash), ``requests`` clients, and a backend whose answer takes ``fetch`` ticks.
The VCL modelled::

    sub vcl_backend_response {
        set beresp.grace = 2m;                 # grace
        if (<the response is uncacheable>) {   # cacheable=off
            set beresp.uncacheable = true;     # hfp=miss: a hit-for-miss object (builtin VCL)
            set beresp.ttl = 120s;
            # return (pass(120s));             # hfp=pass: a hit-for-pass object
            # (hfp=off: ttl 0 and no marker object: nothing is remembered)
        }
    }

The object starts absent (``start=cold``) or expired but still within its grace
(``start=stale``, ``grace`` ticks of grace left). What Varnish's lookup (``HSH_Lookup``) does,
in the order it decides:

- a fresh object: a hit (``Hit``);
- a hit-for-miss or hit-for-pass object (left by an uncacheable response): the request goes
  to the backend itself, without waiting for anybody (``HitMiss`` / ``HitPass``; the hit-for-miss
  fetch could store a later cacheable answer, the hit-for-pass fetch never does; with an
  origin whose answer stays uncacheable, as here, both are one fetch per request);
- an expired object within grace: the stale object is delivered at once; if no fetch for the
  object is running, a background fetch starts (``GraceHitAndFetch``), else none
  (``GraceHit``);
- a fetch for the object is running (a *busy* object): the request parks on the object's
  waiting list (``Park``) until that fetch completes;
- otherwise a miss: the request inserts the busy object and fetches (``Miss``).

When a busy fetch completes (``FetchDone``), its client gets the response, and the parked
requests are woken ("rushed") and look the object up again: with a cacheable response they
hit (``WakeHit``); with hit-for-miss/pass they go to the backend side by side (``HitMiss`` /
``HitPass`` from the waiting list); with an uncacheable response and no marker object, the
first to look up finds nothing and becomes the next busy fetch (``Miss``) and the others park
again: **the waiting list serialises the requests**, one backend fetch after another.

What is abstracted away, and why that is safe: one object and no Vary; the response stays
fresh for the rest of the run; ``rush_exponent`` (woken requests wake further ones, three at a
time, all at the same moment) is a wake-up order, not a different outcome, so every parked
request may look up again as soon as the busy fetch completes, in any order; a hit-for-miss
object's own lifetime (120 s) outlasts the race; requests arrive at any tick.

The shared environment (:mod:`models.environment`), off by default: ``Pause(r=..)`` makes the
backend answer a busy fetch up to ``pause`` ticks late; ``Crash(r=..)`` fails a busy fetch
(the backend connection dies: the client gets a 503, an error; the busy object is failed,
nothing is inserted, and the waiting list is woken, so a parked request becomes the next busy
fetch); ``Write()`` changes the backend's content (version ``db + 1``) and PURGEs the object
(``return (purge)``: the object, its grace copy and any hit-for-* marker go). A fetch inserts
the version it read when it started, and nothing checks it (FRESH).

Meant to fail: REBUILDS<=1 with ``cacheable=off`` (every request reaches the backend); ONE with
hit-for-miss/pass (those fetches run side by side), while without a marker object ONE holds
because the waiting list serialises; bounded wait ``SERVED<=B`` for B below ``requests *
fetch`` in that serialised case (the last parked request waits for every fetch before its
own). Holds: one backend fetch for a cacheable object, cold or within grace, whatever grace
and fetch are (outside grace the stale object's clients park on the background fetch rather
than fetch beside it).
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
from herdproof.models.ops import Bool, Int, all_of, any_of, count, eq, implies, ite, negate, set_at
from herdproof.models.params import Param, ParamValue
from herdproof.models.program import ProgramModel, RequestAction, Step
from herdproof.models.symmetry import Symmetry

PARAMS: tuple[Param, ...] = (
    Param("requests", int, 2, "concurrent clients asking for the object", minimum=1),
    Param("start", str, "cold", "the object is absent (cold) or expired but in grace (stale)",
          choices=("cold", "stale")),
    Param("grace", int, 2, "beresp.grace in ticks: how long an expired object may still be "
          "delivered (start=stale)", minimum=0, timing=True),
    Param("cacheable", bool, True, "the backend's response is cacheable"),
    Param("hfp", str, "miss", "what an uncacheable response leaves: a hit-for-miss object "
          "(miss), a hit-for-pass object (pass), or nothing (off)", choices=("off", "miss",
                                                                             "pass")),
    Param("fetch", int, 2, "backend response time in ticks", minimum=1, timing=True),
    *program.environment_params(),
)

NO_REFRESH = -1  # ``refresh`` when no background fetch runs


class PC(IntEnum):
    """Where a client's request is in Varnish."""

    IDLE = 0       # not arrived yet
    PARKED = 1     # on the object's waiting list
    FETCHING = 2   # its busy fetch runs (other lookups park on it)
    PASSING = 3    # a hit-for-miss / hit-for-pass fetch (nobody waits on it)
    GOT_VALUE = 4  # delivered a response from the backend or the cache
    GOT_STALE = 5  # delivered the stale object (grace)
    CRASHED = 6    # its busy fetch failed: the client got a 503


IDLE, PARKED, FETCHING, PASSING, GOT_VALUE, GOT_STALE, CRASHED = tuple(PC)


@dataclass(frozen=True, slots=True)
class VarnishConfig(environment.EnvironmentConfig):
    """The VCL and backend settings of one instance (:data:`PARAMS`); whether an uncacheable
    response leaves a marker object follows from them (:attr:`marks`)."""

    requests: int
    start: str
    grace: Int
    cacheable: bool
    hfp: str
    fetch: Int

    @property
    def marks(self) -> bool:
        """An uncacheable response leaves a hit-for-miss or hit-for-pass object."""
        return not self.cacheable and self.hfp != "off"


@dataclass(frozen=True, slots=True)
class VarnishState(program.RequestsState):
    """``fresh``: a fresh object is cached. ``grace``: ticks left in which the expired object
    may still be delivered (0: none, or grace over). ``busy``: a busy object exists (a
    coalescing fetch runs: a request's, or the background fetch). ``marker``: a hit-for-miss /
    hit-for-pass object is cached. ``refresh``: elapsed ticks of the background fetch,
    :data:`NO_REFRESH` if none runs. ``timer[r]``: a fetch's elapsed ticks. ``cached``: the
    backend version the object holds; ``refresh_seen``: the version the background fetch read
    (with writers)."""

    fresh: Bool
    grace: Int
    busy: Bool
    marker: Bool
    refresh: Int
    cached: Int
    refresh_seen: Int


class Hit(RequestAction):
    """Request r finds the object fresh in the cache; enabled when it is."""


class HitMiss(RequestAction):
    """Request r finds a hit-for-miss object and goes to the backend without waiting (arriving,
    or woken from the waiting list); enabled when the object is not fresh and the marker is."""


class HitPass(RequestAction):
    """Request r finds a hit-for-pass object and passes to the backend without waiting
    (arriving, or woken from the waiting list); enabled when the marker is cached."""


class GraceHitAndFetch(RequestAction):
    """Request r is delivered the expired object within grace and starts the background fetch;
    enabled in grace when no fetch for the object runs."""


class GraceHit(RequestAction):
    """Request r is delivered the expired object within grace; enabled while a fetch runs."""


class Park(RequestAction):
    """Request r parks on the object's waiting list; enabled when a busy fetch runs and
    nothing deliverable is cached."""


class Miss(RequestAction):
    """Request r (arriving, or woken from the waiting list) finds nothing deliverable and no
    busy fetch: it inserts the busy object and fetches."""


class WakeHit(RequestAction):
    """Parked request r is woken and finds the fresh object; enabled once it is cached."""


class FetchDone(RequestAction):
    """Request r's busy fetch completes: the object (or a marker) is inserted, r is delivered,
    the waiting list is woken. Enabled when the fetch is due."""


class PassDone(RequestAction):
    """Request r's hit-for-miss / hit-for-pass fetch completes and r is delivered; nothing is
    cached. Enabled when the fetch is due."""


class RefreshDone(Action):
    """The background fetch completes: the object is inserted fresh (or a marker), the busy
    object goes, and the waiting list is woken. Enabled when it is due."""


# -- the program: one client's request, step by step ---------------------------------------

PROXY, BACKEND = "Varnish", "backend"
GET = call(PROXY, "GET /item")
STALE = answer(PROXY, "200, the expired object (grace, {grace} tick(s) left)")


def nothing_fresh(s: VarnishState) -> Bool:
    return all_of(negate(s.fresh), negate(s.marker))


def in_grace(s: VarnishState) -> Bool:
    """Nothing fresh and no marker, but the expired object is still within grace."""
    return all_of(nothing_fresh(s), s.grace > 0)


def undeliverable(s: VarnishState) -> Bool:
    """Nothing fresh, no marker, and no object within grace."""
    return all_of(nothing_fresh(s), s.grace <= 0)


def _stale(cfg: VarnishConfig) -> bool:
    return cfg.start == "stale"


STEPS: tuple[Step[VarnishState], ...] = (
    Step(Hit, at=IDLE, command="vcl_hit: a fresh object is delivered",
         says=(GET, answer(PROXY, "200, from the cache (hit)")),
         guard=lambda m, s, r: s.fresh,
         effect=lambda m, s, r: m.goto(s, r, GOT_VALUE)),
    Step(HitMiss, at=(IDLE, PARKED), when=lambda cfg: cfg.marks and cfg.hfp == "miss",
         command="HSH_HITMISS: a hit-for-miss object: fetch without waiting",
         says=(call(PROXY, "GET /item", only="arriving"),
               note("hit-for-miss: {r} does not wait", over=PROXY),
               Say(PROXY, BACKEND, "GET /item for {r} ({fetch} tick(s))")),
         guard=lambda m, s, r: all_of(negate(s.fresh), s.marker),
         effect=lambda m, s, r: replace(m.goto(s, r, PASSING), starts=s.starts + 1)),
    Step(HitPass, at=(IDLE, PARKED), when=lambda cfg: cfg.marks and cfg.hfp == "pass",
         command="HSH_HITPASS: a hit-for-pass object: pass to the backend",
         says=(call(PROXY, "GET /item", only="arriving"),
               note("hit-for-pass: {r} passes", over=PROXY),
               Say(PROXY, BACKEND, "GET /item for {r} ({fetch} tick(s), pass)")),
         guard=lambda m, s, r: all_of(negate(s.fresh), s.marker),
         effect=lambda m, s, r: replace(m.goto(s, r, PASSING), starts=s.starts + 1)),
    Step(GraceHitAndFetch, at=IDLE, when=_stale,
         command="HSH_GRACE, no busy object: deliver the expired object, fetch in the "
                 "background",
         says=(GET, STALE, Say(PROXY, BACKEND, "GET /item (background fetch, {fetch} "
                                               "tick(s))")),
         guard=lambda m, s, r: all_of(in_grace(s), negate(s.busy)),
         effect=lambda m, s, r: replace(m.goto(s, r, GOT_STALE), busy=True, refresh=0,
                                        starts=s.starts + 1, refresh_seen=s.db)),
    Step(GraceHit, at=IDLE, when=_stale,
         command="HSH_GRACE with a busy object: deliver the expired object",
         says=(GET, STALE, note("a fetch is running: no second one", over=PROXY)),
         guard=lambda m, s, r: all_of(in_grace(s), s.busy),
         effect=lambda m, s, r: m.goto(s, r, GOT_STALE)),
    Step(Park, at=IDLE, command="HSH_BUSY: park on the object's waiting list",
         says=(GET, note("{r} parks on the waiting list ({owner} is fetching)", over=PROXY)),
         guard=lambda m, s, r: all_of(undeliverable(s), s.busy),
         effect=lambda m, s, r: m.goto(s, r, PARKED)),
    Step(Miss, at=(IDLE, PARKED), command="HSH_MISS: insert the busy object and fetch",
         says=(call(PROXY, "GET /item", only="arriving"),
               note("nothing to deliver, no busy object: {r} fetches", over=PROXY),
               Say(PROXY, BACKEND, "GET /item for {r} ({fetch} tick(s))")),
         guard=lambda m, s, r: all_of(undeliverable(s), negate(s.busy)),
         effect=lambda m, s, r: replace(m.goto(s, r, FETCHING), busy=True,
                                        starts=s.starts + 1, seen=set_at(s.seen, r, s.db))),
    Step(WakeHit, at=PARKED, command="(woken from the waiting list) a hit",
         says=(answer(PROXY, "200, from the cache (woken from the waiting list)"),),
         guard=lambda m, s, r: s.fresh,
         effect=lambda m, s, r: m.goto(s, r, GOT_VALUE)),
    Step(FetchDone, at=FETCHING,
         command="the backend answers: insert the object (or a marker), deliver, rush the "
                 "waiting list",
         says=proxy_cache.answered(PROXY, BACKEND, reply="200 (for {r}, {kind})",
                                   then="{stored}; the waiting list is woken"),
         guard=lambda m, s, r: m.completes(s, r),
         effect=lambda m, s, r: m.fetched(m.end_work(s, r, GOT_VALUE), s.seen[r])),
    Step(PassDone, at=PASSING, when=lambda cfg: cfg.marks,
         command="the backend answers the hit-for-miss / hit-for-pass fetch: deliver",
         says=(Say(BACKEND, PROXY, "200 (for {r}, uncacheable)", reply=True),
               answer(PROXY, "200")),
         guard=lambda m, s, r: environment.due(s.timer[r], m.duration(PASSING, r)),
         effect=lambda m, s, r: m.goto(s, r, GOT_VALUE)),
)

# -- the background fetch (grace) -----------------------------------------------------------

REFRESHER: tuple[Step[VarnishState], ...] = (
    Step(RefreshDone, at=(), when=_stale,
         command="the background fetch completes: insert the object, rush the waiting list",
         says=(Say(BACKEND, PROXY, "200 (background fetch, {kind})", reply=True),
               note("{stored}; the waiting list is woken", over=PROXY)),
         guard=lambda m, s, _: all_of(s.refresh >= 0, environment.due(s.refresh, m.cfg.fetch)),
         effect=lambda m, s, _: m.fetched(replace(s, refresh=NO_REFRESH, refresh_seen=0),
                                          s.refresh_seen)),
)


class VarnishModel(ProgramModel[VarnishConfig, VarnishState]):
    """The ``varnish`` transition system for one configuration, compiled from :data:`STEPS`
    (a client's request) and :data:`REFRESHER` (the background fetch)."""

    PARTICIPANTS = (PROXY, BACKEND)
    ENVIRONMENT_SAYS = proxy_cache.environment_says(
        PROXY, BACKEND, crash="{r}'s busy fetch fails: a 503 for {r}, nothing inserted, the "
        "waiting list is woken", purge="PURGE /item: object, grace copy and markers go")
    STEPS = STEPS
    BACKGROUND = REFRESHER
    # fetches count up to ``fetch`` and hold the clock when due
    TIMERS: ClassVar[Mapping[int, program.Timer]] = {FETCHING: proxy_cache.FETCH,
                                                      PASSING: proxy_cache.FETCH}
    WORK = FETCHING
    DONE, ERRORS, FALLBACKS = proxy_cache.ends(GOT_VALUE, GOT_STALE, CRASHED)

    def initial_states(self) -> tuple[VarnishState, ...]:
        n = self.cfg.requests
        grace = self.cfg.grace if _stale(self.cfg) else 0
        return (VarnishState(pc=(IDLE,) * n, timer=(0,) * n, held=(False,) * n, seen=(0,) * n,
                             db=0, starts=0, crashed=0, fresh=False, grace=grace, busy=False,
                             marker=False, refresh=NO_REFRESH, cached=0, refresh_seen=0),)

    def in_domain(self, s: VarnishState) -> Bool:
        cfg = self.cfg
        per_request = [
            all_of(pc >= IDLE, pc <= CRASHED, seen >= 0, seen <= s.db,
                   implies(pc != FETCHING, seen == 0),
                   ite(pc == FETCHING,
                       environment.elapsed_in_domain(timer, cfg.fetch, cfg.pause, held),
                       all_of(negate(held), ite(pc == PASSING,
                                                all_of(timer >= 0, timer <= cfg.fetch),
                                                timer == 0))))
            for pc, timer, held, seen in zip(s.pc, s.timer, s.held, s.seen, strict=True)]
        return all_of(
            *per_request,
            s.grace >= 0, s.grace <= (cfg.grace if _stale(cfg) else 0),
            s.refresh >= NO_REFRESH, s.refresh <= cfg.fetch,
            implies(s.refresh >= 0, s.busy),
            eq(s.marker, False) if not cfg.marks else True,
            s.db >= 0, s.db <= cfg.writers, implies(s.grace > 0, s.db == 0),
            s.cached >= 0, s.cached <= s.db, implies(negate(s.fresh), s.cached == 0),
            s.refresh_seen >= 0, s.refresh_seen <= s.db,
            implies(s.refresh < 0, s.refresh_seen == 0),
            s.crashed >= 0, s.crashed <= environment.crash_bound(cfg.crash, cfg.crashes),
            s.starts >= 0, s.starts <= cfg.requests)

    def observe(self, s: VarnishState) -> Observation:
        """Hit-for-miss/pass fetches and the background fetch run beside the busy one."""
        return self.observation(s, s.fresh, cached=s.cached, background=proxy_cache.side_fetches(
            s.pc, PASSING, s.refresh >= 0))

    def describe(self, s: VarnishState) -> dict[str, str]:
        columns = {f"r{r}": self._describe_request(s, r) for r in range(self.cfg.requests)}
        if s.fresh:
            columns["object"] = f"fresh v{s.cached}" if self.cfg.writers else "fresh"
        elif s.marker:
            columns["object"] = f"hit-for-{self.cfg.hfp}"
        elif s.grace:
            columns["object"] = f"grace ({s.grace} left)"
        else:
            columns["object"] = "-"
        columns["busy"] = "yes" if s.busy else "-"
        if _stale(self.cfg):
            columns["background"] = "-" if s.refresh < 0 else f"{s.refresh}/{self.cfg.fetch}"
        return columns | proxy_cache.origin_columns(BACKEND, s.db, s.starts, self.cfg.writers)

    def invariants(self) -> tuple[Invariant, ...]:
        """Candidate facts for induction proofs; the SMT engine keeps the inductive ones.

        - busy-fetch: a busy object exists exactly while one coalescing fetch runs (a
          request's, or the background fetch).
        - no-marker, no-pass: without a marker object (a cacheable response, or ``hfp=off``)
          nobody passes, so every fetch is the busy one: one at a time (ONE).
        - fetches-so-far: with a cacheable response, one fetch was started once a busy object
          appeared or the object was stored, none before: one fetch in all (REBUILDS<=1).
        - stored-idle: once the object is stored, no fetch runs.
        """
        def coalescing(s: VarnishState) -> Int:
            return count(pc == FETCHING for pc in s.pc) + ite(s.refresh >= 0, 1, 0)

        return (
            Invariant("busy-fetch", lambda s: coalescing(s) == ite(s.busy, 1, 0)),
            Invariant("no-marker", lambda s: negate(s.marker)),
            Invariant("no-pass", lambda s: count(pc == PASSING for pc in s.pc) == 0),
            Invariant("fetches-so-far", lambda s: s.starts == ite(any_of(s.busy, s.fresh),
                                                                   1, 0)),
            Invariant("stored-idle", lambda s: implies(s.fresh, negate(s.busy))),
        )

    def quantified_invariants(self) -> tuple[Candidate, ...]:
        """The candidates above, stated once per client (or pair of clients), for the proof
        for every number of clients (``herdproof prove --all-sizes``): "exactly one coalescing
        fetch while a busy object exists" becomes "no two fetch, none beside the background
        fetch, none without a busy object" and "while a busy object exists and no background
        fetch runs, some client fetches"."""
        return (
            each_request("fetch-is-busy", "a client fetching has the busy object",
                         lambda m, s, r: implies(s.pc[r] == FETCHING, s.busy)),
            each_pair("one-fetcher", "no two clients fetch at once",
                      lambda m, s, r, q: negate(all_of(s.pc[r] == FETCHING,
                                                       s.pc[q] == FETCHING))),
            each_request("not-beside-refresh", "no client fetches beside the background fetch",
                         lambda m, s, r: implies(s.refresh >= 0, s.pc[r] != FETCHING)),
            whole("refresh-is-busy", "the background fetch has the busy object",
                  lambda m, s: implies(s.refresh >= 0, s.busy)),
            some_request("busy-has-fetcher", "while a busy object exists and no background "
                         "fetch runs, some client fetches",
                         lambda m, s, r: implies(all_of(s.busy, s.refresh < 0),
                                                 s.pc[r] == FETCHING)),
            whole("no-marker", "no hit-for-miss / hit-for-pass object is cached",
                  lambda m, s: negate(s.marker)),
            each_request("no-pass", "nobody passes", lambda m, s, r: s.pc[r] != PASSING),
            whole("fetches-so-far", "one fetch was started once a busy object appeared or the "
                  "object was stored, none before",
                  lambda m, s: s.starts == ite(any_of(s.busy, s.fresh), 1, 0)),
            whole("stored-idle", "once the object is stored, no fetch runs",
                  lambda m, s: implies(s.fresh, negate(s.busy))),
        )

    def symmetry(self) -> Symmetry:
        """The symmetry :meth:`canonical` reduces by, as data (for engines that generate a
        model, such as SPIN): clients are interchangeable."""
        return Symmetry(fields=("pc", "timer", "held", "seen"),
                        groups=(tuple(range(self.cfg.requests)),))

    def canonical(self, s: VarnishState) -> VarnishState:
        """Clients are interchangeable: sort them."""
        canonical: VarnishState = self.symmetry().canonical(s)
        return canonical

    # -- the steps' helpers ----------------------------------------------------------------

    def fetched(self, s: VarnishState, version: Int) -> VarnishState:
        """A busy fetch completed: the busy object goes; a cacheable response (backend
        ``version``) is inserted fresh, an uncacheable one leaves a marker (hit-for-miss/pass)
        or nothing."""
        if self.cfg.cacheable:
            return replace(s, busy=False, fresh=True, cached=version)
        return replace(s, busy=False, marker=True if self.cfg.marks else s.marker)

    def background_holds_the_clock(self, s: VarnishState) -> Bool:
        """A due background fetch completes before the next tick."""
        return all_of(s.refresh >= 0, environment.due(s.refresh, self.cfg.fetch))

    # -- time and the environment ----------------------------------------------------------

    def crash(self, s: VarnishState, r: int) -> VarnishState:
        """r's busy fetch fails: a 503 for r, the busy object goes, nothing is inserted."""
        return replace(self.end_work(s, r, CRASHED), busy=False, crashed=s.crashed + 1)

    def write(self, s: VarnishState) -> VarnishState:
        """The backend's content changes and the object is PURGEd, grace copy and markers too
        (a busy fetch in flight still inserts what it read)."""
        return replace(s, db=s.db + 1, fresh=False, marker=False, grace=0, cached=0)

    def tick_stores(self, s: VarnishState) -> VarnishState:
        """Grace runs out; the background fetch runs one tick longer."""
        return replace(s, grace=ite(s.grace > 0, s.grace - 1, 0),
                       refresh=ite(s.refresh >= 0, s.refresh + 1, s.refresh))

    # -- narration and the text timeline ---------------------------------------------------

    def facts(self, before: VarnishState, after: VarnishState, r: int | None) -> dict[str, str]:
        """Who fetches, whether a step arrives, what a completed fetch leaves, grace left."""
        fetchers = [f"r{q}" for q, pc in enumerate(before.pc) if pc == FETCHING]
        if before.refresh >= 0:
            fetchers.append("the background fetch")
        cfg = self.cfg
        stored = ("inserts the object" if cfg.cacheable else
                  f"uncacheable: inserts a hit-for-{cfg.hfp} object" if cfg.marks else
                  "uncacheable, no hit-for-miss/pass: nothing inserted")
        return {"owner": ", ".join(fetchers) or "nobody", "stored": stored,
                "kind": "cacheable" if cfg.cacheable else "uncacheable",
                "grace": str(before.grace),
                "arriving": "yes" if r is not None and before.pc[r] == IDLE else ""}

    def _describe_request(self, s: VarnishState, r: int) -> str:
        pc = PC(s.pc[r])
        if pc == FETCHING:
            return proxy_cache.fetch_column(s.timer[r], self.cfg.fetch, s.held[r])
        if pc == PASSING:
            return f"hit-for-{self.cfg.hfp} {s.timer[r]}/{self.cfg.fetch}"
        return {IDLE: "-", PARKED: "parked", GOT_VALUE: "200", GOT_STALE: "stale",
                CRASHED: "503"}[pc]


def build(params: Mapping[str, ParamValue], name: str = "varnish") -> VarnishModel:
    """The ``varnish`` model for complete, validated parameters."""
    return VarnishModel(VarnishConfig.from_params(params), params, name=name)


SPEC = policy.PolicySpec(
    "varnish", "Varnish: request coalescing on the waiting list, grace, hit-for-miss / "
    "hit-for-pass for uncacheable responses", PARAMS, build)
