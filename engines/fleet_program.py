"""The fleet as its policy's program: one SimPy process per request, stepping the model itself.

:mod:`engines.fleet_core` is hand-optimised and knows its programs by heart; this module knows
none. It builds the policy's transition system (any registered program, sized to the fleet) and
runs every request as a SimPy process that fires the program's own steps on one shared model
state, so the run *is* a run of the model, action by action, and comes out as a trace the model
replays. The fast engine is tested request by request against it, and ``herdproof fleet
--policy P`` uses it for programs the fast engine does not simulate.

The schedule is one of the interleavings the model allows, the one the fast engine documents
(:mod:`engines.fleet`), stated here without naming a step:

- A request acts greedily: once triggered it fires its first enabled step (program order),
  then the next, until none is enabled. It is triggered by its arrival; at a label with a
  :class:`~models.program.Timer` (its work, a sleep, an attempt) by every tick; by the
  fleet's ``gap`` (a step that sends ``SET NX`` waits ``gap`` ticks, one round trip, before it
  fires); and, at a label without a timer (a follower waiting on its leader), by any step of
  another request.
- Within a tick: requests at the work label, in the order their work started (the first
  ``crash`` works to start crash when they come due: the environment's ``Crash``); the
  writes, in order; requests at other timed labels (sleepers), by id;
  delayed ``SET NX`` attempts, by id; arrivals, by id. A background actor (a refresher) acts
  whenever its steps are enabled, before the requests. Then the clock ticks (``Tick``).
- The environment's faults other than those (pauses, a background actor's crash) never fire.

Work durations are the fleet's: the k-th work to start gets the k-th drawn duration
(:meth:`~models.program.ProgramModel.duration` answers per request). With a fixed rebuild the
run replays through the plain model; with drawn durations it is a run of the model with those
durations, which the trace records in its ``extra``.

Sizing: a program sized by ``nodes`` x ``per_node`` (``PolicySpec.size``) gets the fleet's
nodes, ``per_node`` = the most requests any node receives, and request ``i`` the next free slot
of its node (unused slots never arrive); a program sized by one count (``requests``,
``callers``) gets one slot per request (its requests share no process the program knows of,
so the fleet's nodes do not matter to it).

This costs a copy of every per-request tuple per step: it is an oracle for a few hundred
requests, not a simulator for a hundred thousand (:data:`MAX_PROGRAM_REQUESTS`).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from herdproof.engines.fleet_core import (
    ARRIVE,
    ATTEMPT,
    ERROR,
    FALLBACK,
    FINISH,
    HIT,
    NEVER,
    REBUILDER,
    VALUE,
    WAITER,
    WAKE,
    WRITE,
    KeyRun,
    KeyWorkload,
)
from herdproof.models.clock import Tick
from herdproof.models.core import Action
from herdproof.models.environment import Crash, Write
from herdproof.models.errors import HerdproofError
from herdproof.models.observation import Observation
from herdproof.models.params import ParamValue
from herdproof.models.program import ProgramModel
from herdproof.models.registry import POLICIES, PRESETS, resolve
from herdproof.traces.trace import Trace

#: The largest fleet (requests per key) the program-driven run accepts.
MAX_PROGRAM_REQUESTS = 1000
#: How long a program with a background actor may run past its last arrival or write.
MAX_IDLE_TICKS = 100_000
#: The command whose step waits the fleet's ``gap`` (one round trip after the GET).
GAP_OP = "SET NX PX"


class ProgramRunError(HerdproofError):
    """A fleet run the program cannot express (or a program that stops making progress)."""


@dataclass(frozen=True)
class ProgramRun:
    """One key's run: ``key`` in the fast engine's shape (:class:`~engines.fleet_core.KeyRun`,
    which the fleet summarises and the tests compare request by request; roles as far as a
    program tells them: a hit answered with the value on arrival, a rebuilder that started
    work, every other request a waiter; a work that ended neither crashed nor leaving the
    cache filled is a rejected set), ``trace`` the run as the model's actions, ``final`` the
    model's last state and ``observed`` what the properties see of it.
    """

    key: KeyRun
    trace: Trace
    final: Any
    observed: Observation


def program_params(name: str, overrides: Mapping[str, object], workload: KeyWorkload,
                   ) -> tuple[str, dict[str, ParamValue], list[int]]:
    """The program behind ``name`` sized for ``workload``, its parameters, and the model
    request (slot) of each fleet request."""
    if name not in POLICIES and name not in PRESETS:
        raise ProgramRunError(f"no program or preset is called `{name}`")
    program = resolve(name, {})[0]
    size = POLICIES[program].size
    n = len(workload.arrival)
    if n > MAX_PROGRAM_REQUESTS:
        raise ProgramRunError(
            f"the program-driven fleet runs at most {MAX_PROGRAM_REQUESTS:,} requests per key "
            f"(this key has {n:,}): it steps the model itself; use more keys or fewer requests")
    nodes = [int(x) for x in workload.node]
    if size == ("nodes", "per_node"):
        per_node = max([nodes.count(k) for k in range(workload.nodes)] + [1])
        taken = [0] * workload.nodes
        slots = []
        for k in nodes:
            slots.append(k * per_node + taken[k])
            taken[k] += 1
        sizing: dict[str, object] = {"nodes": workload.nodes, "per_node": per_node}
    elif len(size) == 1:
        slots, sizing = list(range(n)), {size[0]: max(n, 1)}
    else:
        raise ProgramRunError(f"`{program}` is sized by {', '.join(size)}: the fleet can only "
                              "size programs by nodes x per_node or by one count of requests")
    _, params = resolve(name, {**overrides, **sizing})
    return program, params, slots


def work_duration(name: str) -> str:
    """The parameter that times the work (the ``WORK`` label's :class:`~models.program.Timer`)
    of the program behind ``name``; ``rebuild`` for a program without one."""
    program, params = resolve(name, {})
    model = POLICIES[program].build(params, program)
    work = getattr(model, "WORK", None)
    timer = getattr(model, "TIMERS", {}).get(work)
    return timer.duration if timer is not None and timer.duration else "rebuild"


def run_program(name: str, overrides: Mapping[str, object], workload: KeyWorkload, *,
                crash: int = 0, gap: int = 0) -> ProgramRun:
    """Run one key's ``workload`` through the program ``name`` (a policy or preset) with
    parameters ``overrides``; the first ``crash`` works to start crash; a step sending
    ``SET NX`` waits ``gap`` ticks."""
    import simpy

    program, params, slots = program_params(name, overrides, workload)
    model = POLICIES[program].build(params, program)
    if not isinstance(model, ProgramModel):
        raise ProgramRunError(f"`{program}` is not written as a request program")
    drawn: dict[int, int] = {}
    _draw_work_durations(model, drawn)
    return _Run(simpy.Environment(), model, program, params, slots, workload, drawn,
                crash, gap).go()


def _draw_work_durations(model: ProgramModel[Any, Any], drawn: dict[int, int]) -> None:
    """Make ``model`` read its work duration per request from ``drawn`` (request -> ticks),
    falling back to the configured duration for a request not in it."""
    base = type(model)
    work = model.WORK

    def duration(self: Any, label: int, r: int | None = None) -> Any:
        if label == work and r is not None and r in drawn:
            return drawn[r]
        return base.duration(self, label, r)

    model.__class__ = type(f"Drawn{base.__name__}", (base,), {"duration": duration})


@dataclass
class _Run:
    env: Any
    model: Any  # a ProgramModel, read through the TransitionSystem contract too
    program: str
    params: dict[str, ParamValue]
    slots: list[int]
    workload: KeyWorkload
    drawn: dict[int, int]
    crash: int
    gap: int
    state: Any = None
    clock: int = 0
    actions: list[Action] = field(default_factory=list)
    changed: Any = None

    def go(self) -> ProgramRun:
        w = self.workload
        n = len(self.slots)
        self.state = self.model.initial_states()[0]
        self.clock = int(w.arrival[0]) if n else 0
        self.changed = self.env.event()
        self.durations = w.durations()
        self.fleet_id = {slot: i for i, slot in enumerate(self.slots)}
        self.outcome = np.zeros(n, np.int8)
        self.done = np.full(n, -1, np.int64)
        self.works: list[list[Any]] = []  # [fleet id, start, end, crashed, filled after]
        self.cache: list[tuple[int, bool]] = [(-NEVER, False)]  # (tick, filled): see ProgramRun
        self.working: dict[int, int] = {}  # model request -> its work's index in self.works
        self.scale = n + len(w.writes) + 2
        at = {step.action: step.at if isinstance(step.at, tuple) else (step.at,)
              for step in self.model.STEPS}
        self.mine: dict[int, dict[int, list[Action]]] = {r: {} for r in self.slots}
        for a in self.model.candidate_actions():  # per request, per label, in program order
            r = getattr(a, "r", None)
            if r in self.mine and not a.by_environment:
                for label in at[type(a)]:
                    self.mine[r].setdefault(label, []).append(a)
        # labels where a request still acts: some step starts there, or a timer runs (an
        # answered request may go on: a lock holder served when granted still works, renews)
        self.acting = set(self.model.TIMERS) | {
            label for step in self.model.STEPS if step.when is None or step.when(self.model.cfg)
            for label in (step.at if isinstance(step.at, tuple) else (step.at,))}
        self.background = [a for a in self.model.candidate_actions()
                           if not hasattr(a, "r") and not a.by_environment]
        for i, slot in enumerate(self.slots):
            self.env.process(self.request(slot, int(w.arrival[i]), i))
        self.env.process(self.writer())
        if self.background:
            self.env.process(self.background_actor())
        self.env.run()
        rb = self.works
        trace = Trace(self.program, self.params, tuple(self.actions), engine="fleet",
                      note="fleet run of the program, one SimPy process per request",
                      extra={"work_durations": {f"r{r}": d for r, d in sorted(self.drawn.items())}})
        observed = self.model.observe(self.state)
        rb_req = np.array([b[0] for b in rb], np.int64)
        rb_crashed = np.array([b[3] for b in rb], np.bool_)
        role = np.full(n, WAITER, np.int8)
        role[(self.outcome == VALUE) & (self.done == w.arrival)] = HIT
        role[rb_req] = REBUILDER
        key = KeyRun(
            arrival=w.arrival, node=w.node, role=role, outcome=self.outcome, done=self.done,
            rb_req=rb_req, rb_start=np.array([b[1] for b in rb], np.int64),
            rb_end=np.array([b[2] for b in rb], np.int64), rb_crashed=rb_crashed,
            rb_guard_gone=np.full(len(rb), NEVER, np.int64),
            rb_rejected=~rb_crashed & ~np.array([b[4] for b in rb], np.bool_),
            writes=w.writes, cache_t=np.array([t for t, _ in self.cache], np.int64),
            cache_s=np.array([f for _, f in self.cache], np.bool_),
            foreign_releases=int(bool(observed.foreign_release)),
            background_queries=int(observed.rebuild_starts) - len(rb))
        return ProgramRun(key=key, trace=trace, final=self.state, observed=observed)

    # -- SimPy's clock: tick + (phase + order / scale) / 8 -----------------------------------

    def at(self, tick: int, phase: int, order: int) -> Any:
        return self.env.timeout(tick + (phase + order / self.scale) / 8 - self.env.now)

    def now(self) -> int:
        return int(self.env.now)

    # -- the model ----------------------------------------------------------------------------

    def advance(self) -> None:
        """Tick the model up to SimPy's current tick."""
        while self.clock < self.now():
            if not self.model.enabled(self.state, Tick()):
                raise ProgramRunError(
                    f"the `{self.program}` program holds the clock at tick {self.clock} and no "
                    "step the fleet schedules can move it: " + self._stuck())
            self.fire(Tick())
            self.clock += 1

    def fire(self, a: Action) -> None:
        before = self.state
        self.state = self.model.apply(before, a)
        self.actions.append(a)
        self._account(before, a)
        self.changed.succeed()
        self.changed = self.env.event()

    def _account(self, before: Any, a: Action) -> None:
        """Record answers (a request entering a DONE label), works started and ended, and the
        cache as a GET finds it after this tick's finishes and writes."""
        model, now = self.model, self.now()
        if self.env.now - now < (WRITE + 1) / 8:
            filled = bool(model.observe(self.state).cache_filled)
            if self.cache[-1][0] == now:
                self.cache.pop()
            if self.cache[-1][1] != filled:
                self.cache.append((now, filled))
        if before.pc is self.state.pc:
            return  # no request moved (a tick)
        for r, (was, pc) in enumerate(zip(before.pc, self.state.pc, strict=True)):
            if was == pc and not (pc == model.WORK and isinstance(a, Crash) and a.r == r):
                continue
            if pc == model.WORK and was != model.WORK:
                self.drawn[r] = int(self.durations.take(1)[0])
                self.working[r] = len(self.works)
                self.works.append([self.fleet_id[r], now, -1, False, False])
            if was == model.WORK and pc != model.WORK and r in self.working:
                work = self.works[self.working.pop(r)]
                work[2], work[3] = now, pc in model.ERRORS
                work[4] = bool(model.observe(self.state).cache_filled)
            if pc in model.DONE and was not in model.DONE:
                i = self.fleet_id[r]
                self.done[i] = now
                self.outcome[i] = (ERROR if pc in model.ERRORS else
                                   FALLBACK if pc in model.FALLBACKS else VALUE)

    def first_enabled(self, r: int) -> Action | None:
        here = self.mine[r].get(self.state.pc[r], ())
        return next((a for a in here if self.model.enabled(self.state, a)), None)

    def run_background(self) -> None:
        fired = True
        while fired:
            fired = False
            for a in self.background:
                if self.model.enabled(self.state, a):
                    self.fire(a)
                    fired = True
                    break

    # -- the processes ------------------------------------------------------------------------

    def request(self, r: int, arrival: int, i: int) -> Generator[Any, Any, None]:
        yield self.at(arrival, ARRIVE, i)
        model = self.model
        waited_gap = False
        while True:
            self.advance()
            self.run_background()
            a = self.first_enabled(r)
            if a is not None and self.gap and not waited_gap and _sends_set_nx(model, a):
                waited_gap = True
                yield self.at(self.now() + self.gap, ATTEMPT, i)
                continue
            if a is not None:
                self.fire(a)
                waited_gap = False
                continue
            pc = self.state.pc[r]
            if pc in model.DONE and pc not in self.acting:
                return  # answered, and nothing is left for it to do
            if pc == model.WORK and r in self.working:
                work = self.working[r]  # works look again every tick, in the order they began
                yield self.at(self.now() + 1, FINISH, work)
                self.advance()
                self.run_background()
                due = self.works[work][1] + self.drawn[r]
                if work < self.crash and self.working.get(r) == work and self.now() >= due:
                    self.fire(Crash(r=r))  # the first `crash` works to start die at their end
            elif pc in model.TIMERS:
                yield self.at(self.now() + 1, WAKE, i)  # a timed label: look again next tick
            else:
                yield self.changed  # waits on another request (a follower on its leader)

    def background_actor(self) -> Generator[Any, Any, None]:
        """The program's background actors act whenever enabled, first in every tick, while
        requests are still coming or waiting (at most :data:`MAX_IDLE_TICKS` past the last
        arrival or write: a run that never settles is an error, not a hang)."""
        w = self.workload
        last = max([int(x) for x in w.arrival] + [int(x) for x in w.writes] + [0])
        while not all(self.outcome) or self.now() < last:
            if self.now() > last + MAX_IDLE_TICKS:
                raise ProgramRunError(
                    f"the `{self.program}` run has not settled {MAX_IDLE_TICKS:,} ticks after "
                    "its last arrival: " + self._stuck())
            yield self.at(self.now() + 1, FINISH, -1)
            self.advance()
            self.run_background()

    def writer(self) -> Generator[Any, Any, None]:
        for k, tick in enumerate(int(x) for x in self.workload.writes):
            yield self.at(tick, WRITE, k)
            self.advance()
            self.run_background()
            if self.model.enabled(self.state, Write()):
                self.fire(Write())

    def _stuck(self) -> str:
        waiting = [f"r{r} at label {pc}" for r, pc in enumerate(self.state.pc)
                   if pc != self.model.ARRIVAL and pc not in self.model.DONE]
        return ", ".join(waiting[:5]) or "no request is waiting"


def _sends_set_nx(model: Any, a: Action) -> bool:
    return any(c.op == GAP_OP for c in model.sends(a) or ())


