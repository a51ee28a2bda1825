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

RATE, the rate limit itself: "at most one lease token is granted per ``lease_window``". The
paper states it without exception (each memcached server regulates the rate at which it
returns tokens: by default a token only once every 10 seconds per key), and separately that a
delete invalidates the outstanding token; it never says a delete restarts the rate limit. The
claim is stated here, not true by construction: two ghosts kept apart from the ``window`` the
protocol reads (which a delete may clear) record the ticks since the last token (``granted``,
up to ``lease_window``) and whether a token was ever issued less than ``lease_window`` ticks
after the one before (``rate_exceeded``). A token issued exactly ``lease_window`` ticks later
is within the rate (memcached's expiry: gone once the time is reached).

- RATE holds whatever the rebuild, pauses, crashes, stale values or ``new_token_voids_old``
  do, with ``delete_clears_window=off``: a slow holder (``rebuild`` > ``lease_window``) gets
  a second token beside it exactly ``lease_window`` ticks after the first, so ONE fails and
  RATE holds: one token per window does not mean one rebuilder. Proved for every
  ``lease_window``, ``rebuild`` and ``wait`` by induction (the ``rate-clock`` candidate).
- RATE is violated with ``delete_clears_window=on`` (and a writer): the delete reopens the
  window, and the next miss is issued a second token inside it (3 steps: ``WinLease``,
  ``Write``, ``WinLease``). That breaks the rate as the paper states it. It is a trade rather
  than a slip: the voided token can no longer fill, so with the reset the new version is
  fetched at once, and without it (``off``) the misses wait the window out (rate kept,
  freshness later).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import ClassVar

from herdproof.models import cache, environment, policy, program
from herdproof.models.candidates import Candidate, each_pair, each_request, some_request, whole
from herdproof.models.core import Invariant
from herdproof.models.memcached_item import Item
from herdproof.models.narration import Say, answer, call, note
from herdproof.models.observation import Observation
from herdproof.models.ops import Bool, Int, all_of, any_of, count, implies, ite, negate, set_at
from herdproof.models.params import Param, ParamValue
from herdproof.models.program import RequestAction, Send, Step, Timer, not_on_a_server
from herdproof.models.symmetry import Symmetry

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
class LeaseConfig(environment.EnvironmentConfig):
    """The parameters of one instance: the protocol's switches, the two choices the paper
    leaves open, the environment, and timing constants (z3 terms in symbolic runs)."""

    requests: int
    leases: bool
    lease_window: Int
    rebuild: Int
    wait: Int
    stale_values: bool
    delete_clears_window: bool
    new_token_voids_old: bool


@dataclass(frozen=True, slots=True)
class LeaseState(program.RequestsState):
    """One moment of the race.

    ``timer[r]``: elapsed rebuild ticks while REBUILDING, remaining sleep while SLEEPING, else 0.
    ``db``/``cached``/``seen``: versions (see :mod:`models.environment`). The other fields say
    what they hold where they are declared.
    """

    valid: tuple[Bool, ...]  # memcached still accepts r's token
    filled: Bool
    cached: Int
    window: Int  # ticks until memcached issues another token (0: the next miss gets one)
    deleted: Bool  # a recently deleted value is kept for stale answers
    # ghosts for RATE, kept apart from ``window`` (which a delete may clear): ticks since the
    # last token was issued, up to lease_window (where it stays: "long enough ago", also before
    # the first token), and whether a token was ever issued less than lease_window after another
    granted: Int
    rate_exceeded: Bool


class Hit(RequestAction):
    """Request r GETs and hits; enabled when r is about to GET and the key holds a value."""


class Miss(RequestAction):
    """Request r GETs, misses and queries the database (no leases); enabled on a miss."""


class WinLease(RequestAction):
    """Request r misses and is issued a token, then queries the database; enabled on a miss
    when no token was issued in the last ``lease_window`` ticks."""


class ToldToWait(RequestAction):
    """Request r misses inside the window and is told to wait and retry; enabled on such a miss
    with no stale value to offer."""


class GetStale(RequestAction):
    """Request r misses inside the window and is served the recently deleted value, marked
    stale; enabled on such a miss with ``stale_values`` and a deleted value kept."""


class Fill(RequestAction):
    """Request r sets the value with its token and memcached accepts it; enabled when r's
    rebuild is due and its token is valid (always, without leases)."""


class FillRejected(RequestAction):
    """Request r's set carries a token memcached no longer accepts (a delete or a newer token
    voided it); r serves the value it read. Enabled when due with an invalid token."""


# -- the program: one request, step by step ------------------------------------------------

MEMCACHED, DB = "memcached", "DB"
#: A request is about to ``get`` when it arrives, or when its sleep after "wait and retry" is
#: over (the steps' guards ask for ``timer == 0``, which holds on arrival too).
ABOUT_TO_GET = (IDLE, SLEEPING)
GET = call(MEMCACHED, "get key")
ROWS = answer(DB, "rows (rebuild done)")
# What a step sends to a real memcached (replay --memcached): the look-aside cache's get, set
# and delete are stock commands; a lease is not.
GET_SENDS = (Send("mg", "k", flags="v"),)
NO_LEASES_ON_A_SERVER = (
    "Facebook's lease tokens are not a stock memcached feature (no stock command hands one out, "
    "tells a miss to wait, keeps a deleted value or checks a token on set), so only lease with "
    "leases=off replays on a real memcached")
LEASE_SENDS = not_on_a_server(NO_LEASES_ON_A_SERVER)

STEPS: tuple[Step[LeaseState], ...] = (
    Step(Hit, at=ABOUT_TO_GET, command="get key", sends=GET_SENDS,
         says=(GET, answer(MEMCACHED, "value (hit)")),
         guard=lambda m, s, r: all_of(s.timer[r] == 0, cache.hits(s.filled)),
         effect=lambda m, s, r: m.end(s, r, GOT_VALUE)),
    Step(Miss, at=ABOUT_TO_GET, when=lambda cfg: not cfg.leases, command="get key",
         sends=GET_SENDS,
         says=(GET, answer(MEMCACHED, "nil (miss)")),
         guard=lambda m, s, r: m.get_misses(s, r),
         effect=lambda m, s, r: m.start_rebuild(s, r)),
    Step(WinLease, at=ABOUT_TO_GET, when=lambda cfg: cfg.leases, sends=LEASE_SENDS,
         command="get key (a miss that returns a lease token)",
         says=(GET, answer(MEMCACHED, "miss, and a lease token")),
         guard=lambda m, s, r: all_of(m.get_misses(s, r), s.window == 0),
         effect=lambda m, s, r: m.start_rebuild(m.issue_token(s, r), r)),
    Step(ToldToWait, at=ABOUT_TO_GET, when=lambda cfg: cfg.leases, sends=LEASE_SENDS,
         command="get key (a miss inside the window: wait and retry)",
         says=(GET, answer(MEMCACHED, "miss, no token: wait and retry"),
               note("waits {wait} tick(s), then gets again")),
         guard=lambda m, s, r: all_of(m.get_misses(s, r), s.window > 0,
                                      negate(m.stale_on_offer(s))),
         effect=lambda m, s, r: m.goto(s, r, SLEEPING, timer=m.cfg.wait)),
    Step(GetStale, at=ABOUT_TO_GET, when=lambda cfg: cfg.leases and cfg.stale_values,
         sends=LEASE_SENDS,
         command="get key (a miss inside the window: the recently deleted value, stale)",
         says=(GET, answer(MEMCACHED, "the stale value")),
         guard=lambda m, s, r: all_of(m.get_misses(s, r), s.window > 0, m.stale_on_offer(s)),
         effect=lambda m, s, r: m.end(s, r, GOT_STALE)),
    Step(Fill, at=REBUILDING, command="set key <value> <lease token> (no token without leases)",
         sends=(Send("ms", "k", value="seen", when=lambda cfg: not cfg.leases),
                *not_on_a_server(NO_LEASES_ON_A_SERVER, when=lambda cfg: cfg.leases)),
         says=(ROWS, call(MEMCACHED, "set key value{with_token}"), answer(MEMCACHED, "STORED")),
         guard=lambda m, s, r: all_of(m.completes(s, r), m.accepts(s, r)),
         effect=lambda m, s, r: m.end(replace(s, filled=cache.fill(), cached=s.seen[r],
                                              deleted=False), r, GOT_VALUE)),
    Step(FillRejected, at=REBUILDING, when=lambda cfg: cfg.leases, sends=LEASE_SENDS,
         command="set key <value> <lease token> (the token is void: not stored)",
         says=(ROWS, call(MEMCACHED, "set key value (token)"),
               answer(MEMCACHED, "rejected (its token is no longer valid)")),
         guard=lambda m, s, r: all_of(m.completes(s, r), negate(m.accepts(s, r))),
         effect=lambda m, s, r: m.end(s, r, GOT_VALUE)),
)


class LeaseModel(program.ProgramModel[LeaseConfig, LeaseState]):
    """The ``lease`` transition system for one configuration, compiled from :data:`STEPS`."""

    STEPS = STEPS
    # memcached holds the key; lease has no CAS in its state, so the value alone is compared
    PARTICIPANTS = (MEMCACHED, DB)
    MEMCACHED_KEYS = (("k", "value"),)
    TIMERS: ClassVar[Mapping[int, Timer]] = {REBUILDING: Timer(up=True, duration="rebuild"),
                                              SLEEPING: Timer(up=False)}
    WORK = REBUILDING
    DONE = DONE
    ERRORS = (CRASHED,)
    FALLBACKS = (GOT_STALE,)
    ENVIRONMENT_SENDS: ClassVar[Mapping[str, tuple[Send, ...]]] = {
        "Pause": (), "Crash": (), "Write": (Send("md", "k"),)}
    ENVIRONMENT_SAYS: ClassVar[Mapping[str, tuple[Say, ...]]] = {
        "Write": (note("a writer commits {db}", over=DB),
                  Say(DB, MEMCACHED, "delete key (invalidate)")),
        "Pause": (note("stalls for a tick (a GC or scheduling pause)"),),
        "Crash": (note("crashes: never sets the value, its token stays outstanding"),)}

    # -- the contract ------------------------------------------------------------------

    def initial_states(self) -> tuple[LeaseState, ...]:
        n = self.cfg.requests
        return (LeaseState(pc=(IDLE,) * n, timer=(0,) * n, held=(False,) * n, seen=(0,) * n,
                           valid=(False,) * n, filled=False, cached=0, window=0,
                           deleted=False, db=0, starts=0, crashed=0,
                           granted=self.cfg.lease_window, rate_exceeded=False),)

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
            s.granted >= 0, s.granted <= cfg.lease_window,
            implies(s.rate_exceeded, cfg.leases),
            implies(s.deleted, all_of(cfg.stale_values, negate(s.filled))),
            s.db >= 0, s.db <= cfg.writers, s.cached >= 0, s.cached <= s.db,
            s.starts >= 0, s.starts <= cfg.requests,
            s.crashed >= 0, s.crashed <= environment.crash_bound(cfg.crash, cfg.crashes),
        )

    def observe(self, s: LeaseState) -> Observation:
        """The layer's facts, and RATE's ghost (only with leases: no tokens, no rate)."""
        return replace(self.observation(s, s.filled, cached=s.cached),
                       rate_exceeded=s.rate_exceeded if self.cfg.leases else None)

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
        - rate-clock: RATE's ghost clock and the window agree: the window is closed for
          ``lease_window - granted`` more ticks after the last token (while no delete clears it),
          so a token is only ever issued once the last one is ``lease_window`` ticks old.
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
            Invariant("rate-clock", lambda s: self.rate_clock(s)),
        ]
        return tuple(found)

    def quantified_invariants(self) -> tuple[Candidate, ...]:
        """The candidates above, stated once per request (or pair of requests), for the proof
        for every number of requests (``herdproof prove --all-sizes``); and, for the DB-query
        bound, that some request holds the token and rebuilds while nothing is stored yet."""
        cfg = self.cfg
        return (
            each_request("leased-read", "a rebuilder whose token is still valid read the "
                         "newest version",
                         lambda m, s, r: implies(all_of(m.at_work(s, r), s.valid[r]),
                                                 s.seen[r] >= s.db)),
            each_request("token-holder", "only a request rebuilding (or crashed while it did) "
                         "holds a token",
                         lambda m, s, r: implies(s.valid[r], any_of(m.at_work(s, r),
                                                                    s.pc[r] == CRASHED))),
            whole("window", "the window is closed for at most lease_window more ticks",
                  lambda m, s: all_of(s.window >= 0, s.window <= cfg.lease_window)),
            whole("cached-version", "the cache holds a version the database had",
                  lambda m, s: all_of(s.cached >= 0, s.cached <= s.db)),
            each_request("lease-life", "a rebuilder's token was issued timer ticks ago, so the "
                         "window stays closed lease_window - timer more ticks",
                         lambda m, s, r: implies(m.at_work(s, r),
                                                 s.window + s.timer[r] == cfg.lease_window)),
            each_request("valid-holders", "every rebuilder holds a valid token",
                         lambda m, s, r: implies(m.at_work(s, r), s.valid[r])),
            each_pair("token-holders", "at most one valid token is outstanding",
                      lambda m, s, r, q: negate(all_of(s.valid[r], s.valid[q]))),
            each_pair("one-rebuilder", "no two requests rebuild at once",
                      lambda m, s, r, q: negate(all_of(m.at_work(s, r), m.at_work(s, q)))),
            whole("unstarted", "before the first rebuild starts the cache stays empty",
                  lambda m, s: implies(s.starts == 0, negate(s.filled))),
            each_request("no-early-rebuild", "no request rebuilds before a rebuild started",
                         lambda m, s, r: implies(s.starts == 0, negate(m.at_work(s, r)))),
            whole("rate-clock", "the window is closed exactly until the last token is "
                  "lease_window ticks old", lambda m, s: m.rate_clock(s)),
            some_request("rebuild-in-flight", "once a rebuild started and while the cache is "
                         "empty, some request is rebuilding with a valid token",
                         lambda m, s, r: implies(all_of(s.starts >= 1, negate(s.filled)),
                                                 all_of(m.at_work(s, r), s.valid[r]))),
        )

    def symmetry(self) -> Symmetry:
        """The symmetry :meth:`canonical` reduces by, as data (for engines that generate a
        model, such as SPIN)."""
        return Symmetry(fields=("pc", "timer", "held", "seen", "valid"),
                        groups=(tuple(range(self.cfg.requests)),))

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

    def get_misses(self, s: LeaseState, r: int) -> Bool:
        """r's ``get`` is due (it arrived, or its sleep is over) and finds no value."""
        return all_of(s.timer[r] == 0, cache.misses(s.filled))

    def stale_on_offer(self, s: LeaseState) -> Bool:
        """memcached keeps a recently deleted value to answer a miss with."""
        if not self.cfg.stale_values:
            return False
        return s.deleted

    def issue_token(self, s: LeaseState, r: int) -> LeaseState:
        """memcached issues r a token and closes the window; with ``new_token_voids_old`` the
        token still outstanding is void from now on."""
        cfg = self.cfg
        others = ite(cfg.new_token_voids_old, (False,) * cfg.requests, s.valid)
        too_soon = s.granted < cfg.lease_window  # RATE's ghost: the last token is that recent
        return replace(s, valid=set_at(others, r, True), window=cfg.lease_window, granted=0,
                       rate_exceeded=any_of(s.rate_exceeded, too_soon))

    def rate_clock(self, s: LeaseState) -> Bool:
        """The window is closed for ``lease_window - granted`` more ticks after the last
        token, and open once it is ``lease_window`` ticks old (RATE's candidate invariant)."""
        cfg = self.cfg
        return ite(s.granted < cfg.lease_window, s.window == cfg.lease_window - s.granted,
                   s.window == 0)

    def accepts(self, s: LeaseState, r: int) -> Bool:
        """memcached takes r's set: its token is valid (any set, without leases)."""
        if not self.cfg.leases:
            return True
        return s.valid[r]

    def start_rebuild(self, s: LeaseState, r: int) -> LeaseState:
        """r queries the database and reads the current version."""
        return replace(self.goto(s, r, REBUILDING), starts=s.starts + 1,
                       seen=set_at(s.seen, r, s.db))

    def end(self, s: LeaseState, r: int, outcome: PC) -> LeaseState:
        """r ends with ``outcome``; its token, if any, goes with it."""
        return replace(self.end_work(s, r, outcome), valid=set_at(s.valid, r, False))

    # -- the environment and time --------------------------------------------------------

    def write(self, s: LeaseState) -> LeaseState:
        """Commit ``db + 1``, then ``delete key``: the delete voids every outstanding token,
        keeps the old value for stale answers, and may reopen the window."""
        cfg = self.cfg
        voided = (False,) * cfg.requests if cfg.leases else s.valid
        window = 0 if cfg.delete_clears_window else s.window
        kept = any_of(s.filled, s.deleted) if cfg.stale_values else False
        return replace(s, db=s.db + 1, filled=False, valid=voided, window=window, deleted=kept)

    def crash(self, s: LeaseState, r: int) -> LeaseState:
        """r dies before its set; its token stays outstanding: memcached cannot know its
        holder died."""
        crashed = replace(s, crashed=s.crashed + 1)
        return replace(self.goto(crashed, r, CRASHED), held=set_at(s.held, r, False))

    def tick_stores(self, s: LeaseState) -> LeaseState:
        """The lease window counts down to 0 (open); RATE's ghost clock counts up to it."""
        return replace(s, window=ite(s.window > 0, s.window - 1, 0),
                       granted=ite(s.granted < self.cfg.lease_window, s.granted + 1, s.granted))

    def items(self, s: LeaseState) -> dict[str, Item]:
        """The key's item on a stock memcached: the value set, never expiring (the lease, the
        window and the kept deleted value are not stock; no CAS ids are tracked)."""
        return {"k": Item(present=s.filled, valued=s.filled, version=ite(s.filled, s.cached, 0))}

    # -- narration -------------------------------------------------------------------------

    def facts(self, before: LeaseState, after: LeaseState, r: int | None) -> dict[str, str]:
        """The version a writer committed, and whether a set carries a token."""
        return {"db": f"v{after.db}", "with_token": " (token)" if self.cfg.leases else ""}

    def _describe_request(self, s: LeaseState, r: int) -> str:
        pc = PC(s.pc[r])
        if pc == SLEEPING:
            return f"wait {s.timer[r]}"
        if pc != REBUILDING:
            return SHORT[pc]
        parts = [f"rebuild {s.timer[r]}/{self.cfg.rebuild}"]
        if self.cfg.writers:
            parts.append(f"v{s.seen[r]}")
        if self.cfg.leases:
            parts.append("token" if s.valid[r] else "void")
        if s.held[r]:
            parts.append("paused")
        return " ".join(parts)


def build(params: Mapping[str, ParamValue], name: str = "lease") -> LeaseModel:
    """The ``lease`` model for complete, validated parameters."""
    return LeaseModel(LeaseConfig.from_params(params), params, name=name)


SPEC = policy.PolicySpec(
    "lease", "Facebook memcache leases (NSDI 2013): one token per window, deletes void tokens, "
    "wait-and-retry or stale values", PARAMS, build)
