"""``go-singleflight``: Go's ``golang.org/x/sync/singleflight``, with ``Forget`` and every outcome.

The package, as its source has it today (``singleflight.go``):

- A ``Group`` holds ``m map[string]*call`` under a mutex ``mu``. ``Do(key, fn)`` locks; if
  ``m[key]`` holds a call it counts itself in (``c.dups++``), unlocks and blocks in
  ``c.wg.Wait()``; otherwise it makes a call ``c``, ``c.wg.Add(1)``, ``m[key] = c``, unlocks and
  runs ``doCall`` itself, in its own goroutine.
- ``DoChan(key, fn)`` does the same but returns a channel: a joiner appends it to
  ``c.chans``; a leader starts ``go doCall(...)`` and its caller waits on the channel.
- ``doCall`` runs ``fn`` inside a double ``defer`` that tells a return, a panic and
  ``runtime.Goexit`` apart. Then, under ``mu``: ``c.wg.Done()``, and ``if g.m[key] == c {
  delete(g.m, key) }``. A value or an error is sent on every channel in ``c.chans``, and ``Do``
  returns it to every caller of the call (every joiner gets exactly that error). A panic is
  recovered as a ``panicError`` and re-raised in every ``Do`` caller of the call, unless the
  call has channels: then ``go panic(e)`` raises it in a fresh goroutine, where nothing can
  recover it, so the *process crashes* (and the doCall goroutine parks in ``select {}`` for the
  crash dump). On ``runtime.Goexit`` every ``Do`` caller of the call Goexits too, and nothing is
  sent on the channels: a ``DoChan`` waiter never receives (golang/go#52557, open).
- ``Forget(key)`` deletes ``m[key]`` under ``mu``: the running call goes on, and the next
  ``Do`` starts a second execution beside it. Its completion must not remove the second call's
  entry: before golang/go#31420 was fixed, ``doCall`` deleted the key unconditionally, so a third
  call started while the second still ran (``forget_check=off`` models that code).

The model: one ``Group`` in one process, one key, ``callers`` goroutines of which the last
``dochan`` call ``DoChan`` and the others ``Do``, each once. A caller either leads a new call
(``Lead``: the key is not in the map) or joins the one in the map (``Join``). The leader's call
runs ``fn`` for ``rebuild`` ticks (the ``Do`` leader's own goroutine, or the goroutine
``DoChan`` started; the model puts it on the leader either way) and then returns a value
(``ReturnValue``) or, each time it may, ends the way ``outcome`` says instead: ``ReturnError``,
``Panic`` (no channel waits on the call) or ``PanicWithWaiters`` (one does), ``Goexit``. So
``outcome=value`` is an ``fn`` that always succeeds, and every other value an ``fn`` that may
fail that way on any call (one call may fail while the next succeeds). After
``PanicWithWaiters`` the unrecoverable panic kills the process (``ProcessDies``, before the next
tick): every caller still inside the group, of any call, dies with it. With ``forget=on`` a
forgetter calls ``Forget`` up to ``forgets`` times, each while the key is in the map (a
``Forget`` on an absent key is a no-op, left out). A call is named by its number ``c1``, ``c2``,
... in the order the calls started.

The callers are one burst: each calls while the newest call is still running, or before the
first. A goroutine that calls after the newest call returned finds the key gone and starts a
fresh execution, by design: single-flight dedupes concurrent calls and caches nothing, which is
``stack``'s story (``singleflight`` there re-checks a cache). Such a caller never calls in this
model, and is not counted as waiting for an answer.

What is abstracted away, and why that is safe: one key (keys share nothing but the mutex); the
mutex, since each step is one critical section of the real code, atomic as in the real code;
time as ticks of ``fn`` (the only duration in the package); the ``shared`` flag and ``dups``
(no caller's control flow reads them); the value itself (every execution's value is ``v<n>``
of its call, so a caller that got another call's outcome would show); a woken ``Do`` joiner of
a panicking call re-raises before the crash reaches it (its caller gets a panic either way);
a ``Do`` caller's panic is an answer (an error), on the assumption that its caller recovers it
as ``net/http`` does; a goroutine that Goexits has ended (its defers ran), which is an answer
too, but not service.

The observation: the calls running are the rebuilds (``ONE``), the calls started are the rebuild
starts (``REBUILDS<=k``); ``SHARED`` is broken when a caller ends with an outcome other than its
own call's; ``ANSWERED`` when a caller that called never ends; ``SERVED`` counts values only;
``REFILL`` is witnessed when some call returns at all (the model is not vacuous).

Meant to fail: with ``forget=on``, ``ONE`` and ``REBUILDS<=1`` (``Forget`` is asked for a second
execution, and gets one); with ``forget_check=off``, ``REBUILDS<=1+forgets`` (the first call's
completion deletes the second call's entry, and a third execution starts beside the second);
with ``outcome=goexit`` and a ``DoChan`` caller, ``ANSWERED`` (the waiter never receives);
with ``outcome=panic`` and a ``DoChan`` caller, the process crashes, and after a ``Forget``
the crash kills the callers of the other call too, with this call's panic (``SHARED``);
``SERVED`` with every outcome but a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any, ClassVar

from herdproof.models import policy, program
from herdproof.models.core import Action, Invariant
from herdproof.models.errors import InvalidParameter
from herdproof.models.narration import Say, answer, call, note
from herdproof.models.observation import Observation, waiting
from herdproof.models.ops import Bool, Int, all_of, any_of, count, implies, ite, negate, set_at
from herdproof.models.params import Param, ParamValue
from herdproof.models.program import ProgramModel, RequestAction, Step, Timer
from herdproof.models.symmetry import Symmetry

OUTCOMES = ("value", "error", "panic", "goexit")

PARAMS: tuple[Param, ...] = (
    Param("callers", int, 2, "goroutines calling the group for the key, once each", minimum=1),
    Param("dochan", int, 0, "how many of the callers (the last ones) call DoChan; the others "
          "call Do", minimum=0),
    Param("outcome", str, "value", "how the shared fn may end besides returning a value: "
          "value (it always returns one), error, panic, or goexit (runtime.Goexit)",
          choices=OUTCOMES),
    Param("forget", bool, False, "a forgetter calls Forget(key) while a call is in the map"),
    Param("forgets", int, 1, "at most this many Forget calls in a run (with forget=on)",
          minimum=1),
    Param("forget_check", bool, True, "doCall deletes the key only if g.m[key] == c (today's "
          "code); off: the unconditional delete before golang/go#31420 was fixed"),
    Param("rebuild", int, 1, "ticks fn runs", minimum=1, timing=True),
)


class PC(IntEnum):
    """Where a caller is."""

    IDLE = 0       # has not called
    RUNNING = 1    # leads a call: fn runs (Do: in its goroutine; DoChan: in doCall's)
    WAITING = 2    # joined a call (Do: in c.wg.Wait; DoChan: on <-ch), or a DoChan leader on <-ch
    BLOCKED = 3    # a Do leader parked in select {} after go panic(e), until the crash
    GOT_VALUE = 4  # returned the call's value
    GOT_ERROR = 5  # returned the call's error
    PANICKED = 6   # the call's panic was re-raised in its goroutine
    GOEXITED = 7   # its goroutine Goexited with the call's
    CRASHED = 8    # the process died around it


(IDLE, RUNNING, WAITING, BLOCKED, GOT_VALUE, GOT_ERROR, PANICKED, GOEXITED,
 CRASHED) = tuple(PC)
DONE = (GOT_VALUE, GOT_ERROR, PANICKED, GOEXITED, CRASHED)
ERRORS = (GOT_ERROR, PANICKED, GOEXITED, CRASHED)
INSIDE = (RUNNING, WAITING, BLOCKED)  # inside the group: what a process crash ends

NO_CALL = 0  # ``m`` with the key absent; ``joined[r]`` before r calls; ``dying`` with no crash


@dataclass(frozen=True, slots=True)
class GoConfig:
    """The parameters of one instance; ``rebuild`` may be a z3 term in symbolic runs."""

    callers: int
    dochan: int
    outcome: str
    forget: bool
    forgets: int
    forget_check: bool
    rebuild: Int

    @classmethod
    def from_params(cls, params: Mapping[str, ParamValue]) -> GoConfig:
        if int(params["dochan"]) > int(params["callers"]):
            raise InvalidParameter(
                f"parameter `dochan` of go-singleflight counts callers that call DoChan, so it "
                f"can be at most callers={params['callers']}, not {params['dochan']}")
        return cls(**dict(params))  # type: ignore[arg-type]

    @property
    def requests(self) -> int:
        """The layer's name for the callers."""
        return self.callers


@dataclass(frozen=True, slots=True)
class GoState(program.RequestsState):
    """``joined[r]``: the call r leads or joined (``NO_CALL`` before it calls). ``m``: the call
    ``g.m[key]`` holds (``NO_CALL``: absent). ``starts`` (the layer's): calls started, which is
    also the newest call's number. ``forgotten``: Forget calls so far. ``dying``: the call whose
    unrecoverable panic is killing the process. ``crashed`` (the layer's): 1 once the process
    died. Ghosts: ``returned``, some call returned; ``split``, some caller ended with another
    call's outcome than its own."""

    joined: tuple[Int, ...]
    m: Int
    forgotten: Int
    dying: Int
    returned: Bool
    split: Bool


class Lead(RequestAction):
    """Caller r calls Do or DoChan and leads a new call: enabled while the burst lasts and the
    key is not in the map."""


class Join(RequestAction):
    """Caller r calls Do or DoChan and joins the call in the map: enabled while the key is in
    the map."""


class ReturnValue(RequestAction):
    """fn returns a value in r's call, which every caller of the call gets; enabled when fn is
    due (outcome=value)."""


class ReturnError(RequestAction):
    """fn returns an error in r's call, which every caller of the call gets; enabled when fn is
    due (outcome=error)."""


class Panic(RequestAction):
    """fn panics in r's call, which no DoChan caller waits on: re-raised in every Do caller;
    enabled when fn is due (outcome=panic)."""


class PanicWithWaiters(RequestAction):
    """fn panics in r's call, which a DoChan caller waits on: ``go panic(e)`` will kill the
    process; enabled when fn is due (outcome=panic)."""


class Goexit(RequestAction):
    """fn calls runtime.Goexit in r's call: every Do caller of it Goexits, no channel is sent
    to; enabled when fn is due (outcome=goexit)."""


class Forget(Action):
    """The forgetter calls Forget(key): the key leaves the map, its call runs on; enabled while
    the key is in the map and fewer than ``forgets`` Forget calls were made (forget=on)."""


class ProcessDies(Action):
    """The goroutine ``go panic(e)`` started panics, unrecovered: the process dies, with every
    caller still inside the group; enabled after PanicWithWaiters, before the next tick."""


# -- the program: one caller, step by step --------------------------------------------------

GROUP, FN = "Group", "DB"  # fn queries the backend; the renderers draw it last, as DB


def _returns(outcome: str) -> Any:
    return lambda cfg: cfg.outcome == outcome


STEPS: tuple[Step[GoState], ...] = (
    Step(Lead, at=IDLE,
         command="g.mu.Lock(); key not in g.m: c := new(call); c.wg.Add(1); g.m[key] = c; "
                 "g.mu.Unlock(); then doCall (Do: in r's goroutine; DoChan: go doCall)",
         says=(call(GROUP, "{api}(key)"),
               note("key not in g.m: new call {new}, g.m[key] = {new}", over=GROUP),
               Say(GROUP, FN, "fn() for {new}: the backend query ({rebuild} tick(s), {runner})")),
         guard=lambda m, s, r: all_of(s.m == NO_CALL, m.burst(s)),
         effect=lambda m, s, r: replace(m.goto(s, r, RUNNING), starts=s.starts + 1,
                                        m=s.starts + 1,
                                        joined=set_at(s.joined, r, s.starts + 1))),
    Step(Join, at=IDLE,
         command="g.mu.Lock(); c := g.m[key]; c.dups++ (DoChan: c.chans = append(c.chans, "
                 "ch)); g.mu.Unlock(); then Do: c.wg.Wait(); DoChan: <-ch",
         says=(call(GROUP, "{api}(key)"),
               note("key in g.m: joins {map}{chans}; {r} waits ({wait})", over=GROUP)),
         guard=lambda m, s, r: s.m != NO_CALL,
         effect=lambda m, s, r: replace(m.goto(s, r, WAITING), joined=set_at(s.joined, r, s.m))),
    Step(ReturnValue, at=RUNNING,
         command="fn returns (v, nil); doCall: c.wg.Done(), delete, send on c.chans",
         says=(Say(FN, GROUP, "{call}: (v{n}, nil)", reply=True),
               note("c.wg.Done(); {delete}", over=GROUP),
               answer(GROUP, "v{n}, nil (to {attached})")),
         guard=lambda m, s, r: m.completes(s, r),
         effect=lambda m, s, r: m.finish(s, r, (GOT_VALUE, GOT_VALUE), (GOT_VALUE, GOT_VALUE))),
    Step(ReturnError, at=RUNNING, when=_returns("error"),
         command="fn returns (nil, err); doCall: c.wg.Done(), delete, send on c.chans",
         says=(Say(FN, GROUP, "{call}: (nil, err{n})", reply=True),
               note("c.wg.Done(); {delete}", over=GROUP),
               answer(GROUP, "nil, err{n} (to {attached})")),
         guard=lambda m, s, r: m.completes(s, r),
         effect=lambda m, s, r: m.finish(s, r, (GOT_ERROR, GOT_ERROR), (GOT_ERROR, GOT_ERROR))),
    Step(Panic, at=RUNNING, when=_returns("panic"),
         command="fn panics; recovered as panicError; c.wg.Done(), delete; no channels: "
                 "panic(e) in every Do caller",
         says=(Say(FN, GROUP, "{call}: panic", reply=True),
               note("c.wg.Done(); {delete}; no DoChan waiter", over=GROUP),
               answer(GROUP, "panic(e) re-raised (in {attached})")),
         guard=lambda m, s, r: all_of(m.completes(s, r), negate(m.has_chans(s, r))),
         effect=lambda m, s, r: m.finish(s, r, (PANICKED, PANICKED), (PANICKED, PANICKED))),
    Step(PanicWithWaiters, at=RUNNING, when=_returns("panic"),
         command="fn panics; recovered as panicError; c.wg.Done(), delete; len(c.chans) > 0: "
                 "go panic(e); select {}",
         says=(Say(FN, GROUP, "{call}: panic", reply=True),
               note("c.wg.Done(); {delete}; a DoChan waiter: go panic(e), which nothing can "
                    "recover; doCall parks in select {}", over=GROUP),
               note("Do joiners re-raise it: {do_joiners}", over=GROUP, only="do_joiners")),
         guard=lambda m, s, r: all_of(m.completes(s, r), m.has_chans(s, r)),
         effect=lambda m, s, r: replace(m.finish(s, r, (BLOCKED, WAITING), (PANICKED, WAITING)),
                                        dying=s.joined[r])),
    Step(Goexit, at=RUNNING, when=_returns("goexit"),
         command="fn calls runtime.Goexit; c.err = errGoexit; c.wg.Done(), delete; nothing "
                 "sent on c.chans",
         says=(Say(FN, GROUP, "{call}: runtime.Goexit", reply=True),
               note("c.wg.Done(); {delete}; errGoexit: nothing sent on c.chans", over=GROUP),
               note("Goexit in {do_attached}", over=GROUP, only="do_attached"),
               note("{chan_attached} never receive(s)", over=GROUP, only="chan_attached")),
         guard=lambda m, s, r: m.completes(s, r),
         effect=lambda m, s, r: m.finish(s, r, (GOEXITED, WAITING), (GOEXITED, WAITING))),
)

# -- the forgetter and the runtime: actors of no caller ----------------------------------------

ACTORS: tuple[Step[GoState], ...] = (
    Step(Forget, at=(), when=lambda cfg: cfg.forget,
         command="g.mu.Lock(); delete(g.m, key); g.mu.Unlock()",
         says=(note("the forgetter calls Forget(key): delete(g.m, key); {map} runs on, out of "
                    "the map", over=GROUP),),
         guard=lambda m, s, _: all_of(s.m != NO_CALL, s.forgotten < m.cfg.forgets),
         effect=lambda m, s, _: replace(s, m=NO_CALL, forgotten=s.forgotten + 1)),
    Step(ProcessDies, at=(), when=_returns("panic"),
         command="the panic in the new goroutine is not recovered: the process exits (status 2)",
         says=(note("panic: {dying} (unrecovered): the process dies with {inside}",
                    over=GROUP),),
         guard=lambda m, s, _: m.dying_now(s),
         effect=lambda m, s, _: m.die(s)),
)


class GoSingleflightModel(ProgramModel[GoConfig, GoState]):
    """The ``go-singleflight`` transition system for one configuration, compiled from
    :data:`STEPS` (a caller) and :data:`ACTORS` (the forgetter, and the runtime's crash)."""

    STEPS = STEPS
    BACKGROUND = ACTORS
    # fn counts up to ``rebuild`` and holds the clock when due
    TIMERS: ClassVar[Mapping[int, Timer]] = {RUNNING: Timer(up=True, duration="rebuild")}
    WORK = RUNNING
    DONE = DONE
    ERRORS = ERRORS
    PARTICIPANTS = (GROUP, FN)

    def initial_states(self) -> tuple[GoState, ...]:
        n = self.cfg.callers
        return (GoState(pc=(IDLE,) * n, timer=(0,) * n, held=(False,) * n, seen=(0,) * n,
                        db=0, starts=0, crashed=0, joined=(NO_CALL,) * n, m=NO_CALL,
                        forgotten=0, dying=NO_CALL, returned=False, split=False),)

    def in_domain(self, s: GoState) -> Bool:
        cfg = self.cfg
        per_caller = [
            all_of(pc >= IDLE, pc <= CRASHED, negate(held), seen == 0,
                   ite(pc == RUNNING, all_of(timer >= 0, timer <= cfg.rebuild), timer == 0),
                   ite(pc == IDLE, joined == NO_CALL, all_of(joined >= 1, joined <= s.starts)))
            for pc, timer, held, seen, joined in zip(s.pc, s.timer, s.held, s.seen, s.joined,
                                                     strict=True)
        ]
        return all_of(
            *per_caller,
            s.db == 0, s.starts >= 0, s.starts <= cfg.callers,
            s.m >= NO_CALL, s.m <= s.starts,
            s.forgotten >= 0, s.forgotten <= (cfg.forgets if cfg.forget else 0),
            s.dying >= NO_CALL, s.dying <= s.starts,
            implies(s.dying != NO_CALL, cfg.outcome == "panic"),
            s.crashed >= 0, s.crashed <= 1, implies(s.crashed == 1, s.dying != NO_CALL),
        )

    def observe(self, s: GoState) -> Observation:
        """Calls running are rebuilds, calls started are rebuild starts; a caller that never
        called while the burst lasted is neither waiting nor owed an answer."""
        # ... nor one the arrival window (the layer's arrive_before) let no longer call
        may_call = all_of(self.burst(s), negate(self.arrivals_over(s)))
        owed = [any_of(pc != IDLE, may_call) for pc in s.pc]
        served = [d for d in DONE if d not in ERRORS]
        return Observation(
            rebuilding=count(pc == RUNNING for pc in s.pc),
            rebuild_starts=s.starts,
            foreign_release=None,
            cache_filled=s.returned,
            unserved=count(all_of(o, negate(any_of(*(pc == d for d in served))))
                           for o, pc in zip(owed, s.pc, strict=True)),
            unanswered=count(all_of(o, negate(any_of(*(pc == d for d in DONE))))
                             for o, pc in zip(owed, s.pc, strict=True)),
            waiting=waiting(s.pc, IDLE, DONE),
            split_outcome=s.split,
        )

    def describe(self, s: GoState) -> dict[str, str]:
        columns = {f"r{r}": self._describe_caller(s, r) for r in range(self.cfg.callers)}
        columns["g.m"] = f"c{s.m}" if s.m != NO_CALL else "-"
        columns["calls"] = str(s.starts)
        if self.cfg.forget:
            columns["forgets"] = str(s.forgotten)
        if self.cfg.outcome == "panic":
            columns["process"] = "dead" if s.crashed else (
                f"dying (c{s.dying})" if s.dying != NO_CALL else "up")
        return columns

    def invariants(self) -> tuple[Invariant, ...]:
        """Candidate facts for induction proofs; the SMT engine keeps the inductive ones.

        - map-newest: the map holds the newest call or nothing, and a call in the map runs
          (its completion, or a Forget, takes it out; a crash empties it).
        - one-leader-per-call: no two callers run the same call.
        - running-in-map: every running call is the map's (true until a Forget).
        - forgotten-calls: the calls started exceed the Forget calls by at most one, and by
          none while the newest call runs outside the map (only a Forget takes a running call
          out of the map, when doCall checks g.m[key] == c).
        - one-dying-call: every caller still inside the group is in the dying call (true
          without Forget, where there is one call).
        """
        n = self.cfg.callers
        return (
            Invariant("map-newest", lambda s: implies(s.m != NO_CALL, all_of(
                s.m == s.starts, self.newest_running(s)))),
            Invariant("one-leader-per-call", lambda s: all_of(*(
                negate(all_of(s.pc[r] == RUNNING, s.pc[q] == RUNNING, s.joined[r] == s.joined[q]))
                for r in range(n) for q in range(r + 1, n)))),
            Invariant("running-in-map", lambda s: all_of(*(
                implies(s.pc[r] == RUNNING, s.joined[r] == s.m) for r in range(n)))),
            Invariant("forgotten-calls", lambda s: all_of(
                s.starts <= s.forgotten + 1,
                implies(all_of(s.m == NO_CALL, s.starts >= 1, self.newest_running(s)),
                        s.starts <= s.forgotten))),
            Invariant("one-dying-call", lambda s: implies(s.dying != NO_CALL, all_of(*(
                implies(any_of(*(s.pc[r] == label for label in INSIDE)),
                        s.joined[r] == s.dying) for r in range(n))))),
        )

    def symmetry(self) -> Symmetry:
        """Callers of the same function (Do, DoChan) are interchangeable; call numbers are not
        caller numbers, so nothing is renamed."""
        do = tuple(range(self.cfg.callers - self.cfg.dochan))
        chan = tuple(range(self.cfg.callers - self.cfg.dochan, self.cfg.callers))
        return Symmetry(fields=("pc", "timer", "held", "seen", "joined"),
                        groups=tuple(g for g in (do, chan) if g))

    def canonical(self, s: GoState) -> GoState:
        canonical: GoState = self.symmetry().canonical(s)
        return canonical

    # -- the steps' helpers ----------------------------------------------------------------

    def is_chan(self, r: int) -> bool:
        """Caller r calls DoChan (the last ``dochan`` callers do)."""
        return r >= self.cfg.callers - self.cfg.dochan

    def newest_running(self, s: GoState) -> Bool:
        """The newest call's fn is running."""
        return any_of(*(all_of(pc == RUNNING, joined == s.starts)
                        for pc, joined in zip(s.pc, s.joined, strict=True)))

    def burst(self, s: GoState) -> Bool:
        """The burst lasts: no call yet, or the newest one still running, in a live process."""
        return all_of(s.crashed == 0, any_of(s.starts == 0, self.newest_running(s)))

    def attached(self, s: GoState, r: int, q: int) -> Bool:
        """Caller q is in r's call, still waiting for it (r itself runs it)."""
        if q == r:
            return True
        return all_of(s.pc[q] == WAITING, s.joined[q] == s.joined[r])

    def has_chans(self, s: GoState, r: int) -> Bool:
        """``len(c.chans) > 0`` for r's call: a DoChan caller leads or joined it."""
        return any_of(*(self.attached(s, r, q) for q in range(self.cfg.callers)
                        if self.is_chan(q)))

    def finish(self, s: GoState, r: int, leader: tuple[PC, PC], joiner: tuple[PC, PC]) -> GoState:
        """r's call ends (doCall's deferred function, under ``mu``): its callers move to their
        outcome (``leader``/``joiner``, each as (Do, DoChan)), and the key leaves the map if it
        still holds this call (or, with ``forget_check=off``, whatever it holds)."""
        k = s.joined[r]
        pcs = tuple(ite(self.attached(s, r, q),
                        (leader if q == r else joiner)[int(self.is_chan(q))], s.pc[q])
                    for q in range(self.cfg.callers))
        m = ite(s.m == k, NO_CALL, s.m) if self.cfg.forget_check else NO_CALL
        return replace(s, pc=pcs, timer=set_at(s.timer, r, 0), m=m, returned=True)

    def dying_now(self, s: GoState) -> Bool:
        """An unrecoverable panic is on its way, and the process still runs."""
        return all_of(s.dying != NO_CALL, s.crashed == 0)

    def die(self, s: GoState) -> GoState:
        """The process exits: every caller inside the group ends, the map is gone; a caller of
        another call than the dying one ends with that call's panic instead of its own."""
        inside = [any_of(*(pc == label for label in INSIDE)) for pc in s.pc]
        return replace(
            s, pc=tuple(ite(i, CRASHED, pc) for i, pc in zip(inside, s.pc, strict=True)),
            timer=(0,) * self.cfg.callers, m=NO_CALL, crashed=1,
            split=any_of(s.split, *(all_of(i, joined != s.dying)
                                    for i, joined in zip(inside, s.joined, strict=True))))

    def background_holds_the_clock(self, s: GoState) -> Bool:
        """The panicking goroutine runs before time passes (scheduling is not time)."""
        if self.cfg.outcome != "panic":
            return False
        return self.dying_now(s)

    # -- narration and the text timeline ---------------------------------------------------

    def facts(self, before: GoState, after: GoState, r: int | None) -> dict[str, str]:
        """The API the caller uses, the calls by number, what the completion deleted, and who
        the outcome reaches."""
        n = self.cfg.callers
        facts = {"map": f"c{before.m}", "new": f"c{after.starts}",
                 "dying": f"c{before.dying}",
                 "inside": ", ".join(f"r{q}" for q in range(n) if before.pc[q] in INSIDE)}
        if r is None:
            return facts
        chan = self.is_chan(r)
        k = int(before.joined[r]) if before.pc[r] != IDLE else int(before.m)
        callers = [q for q in range(n) if q == r or (before.pc[q] == WAITING
                                                    and before.joined[q] == before.joined[r]
                                                    and before.pc[r] == RUNNING)]
        facts.update({
            "api": "DoChan" if chan else "Do",
            "runner": "in a new goroutine: go doCall" if chan else "in its own goroutine",
            "chans": ", appends ch to its chans" if chan else "",
            "wait": "<-ch" if chan else "c.wg.Wait()",
            "call": f"c{k}", "n": str(k),
            "attached": ", ".join(f"r{q}" for q in callers),
            "do_attached": ", ".join(f"r{q}" for q in callers if not self.is_chan(q)),
            "chan_attached": ", ".join(f"r{q}" for q in callers if self.is_chan(q)),
            "do_joiners": ", ".join(f"r{q}" for q in callers
                                    if q != r and not self.is_chan(q)),
            "delete": self._deleted(before, k),
        })
        return facts

    def _deleted(self, before: GoState, k: int) -> str:
        if not self.cfg.forget_check:
            if before.m not in (NO_CALL, k):
                return f"delete(g.m, key) unchecked: removes c{before.m}'s entry"
            return "delete(g.m, key) unchecked"
        if before.m == k:
            return f"g.m[key] == c{k}: delete"
        if before.m == NO_CALL:
            return "key already gone (Forget): nothing to delete"
        return f"g.m[key] is c{before.m}, not c{k}: left alone"

    def _describe_caller(self, s: GoState, r: int) -> str:
        pc = PC(s.pc[r])
        api = "DoChan" if self.is_chan(r) else "Do"
        k = s.joined[r]
        if pc == IDLE:
            return f"- ({api})"
        if pc == RUNNING:
            return self.timer_column(f"{api} c{k} fn", s, r)
        if pc == WAITING:
            return f"{api} wait c{k}"
        return {BLOCKED: f"select{{}} c{k}", GOT_VALUE: f"value v{k}", GOT_ERROR: f"err{k}",
                PANICKED: f"panic c{k}", GOEXITED: f"Goexit c{k}",
                CRASHED: f"crashed (c{s.dying})"}[pc]


def build(params: Mapping[str, ParamValue], name: str = "go-singleflight") -> GoSingleflightModel:
    """The ``go-singleflight`` model for complete, validated parameters."""
    return GoSingleflightModel(GoConfig.from_params(params), params, name=name)


SPEC = policy.PolicySpec(
    "go-singleflight", "Go's golang.org/x/sync/singleflight: Do and DoChan, Forget, and fn's "
    "value, error, panic or Goexit shared with every caller", PARAMS, build, size=("callers",),
    order=60)
