"""Hypothesis stateful testing, generated from any registered model.

:func:`machine_for` turns a model and a list of properties into a
:class:`hypothesis.stateful.RuleBasedStateMachine`:

- an ``initialize`` rule draws, per run, the run's schedule (for ``pct``, a :class:`Plan`);
- one rule, ``step``, takes one action, chosen by the run's strategy (below). When only clock
  stutter is possible the run has come to rest: ``EVENTUALLY`` properties are judged there, and
  the run takes no further action. (It is the only rule: with a second one, Hypothesis's own
  swarm over rules would switch ``step`` off in some runs and waste them.)
- an invariant judges every ``ALWAYS`` property, and notes ``SOMETIMES`` witnesses, in every
  state visited.

Strategies (``strategy=``). Every choice is a Hypothesis draw, so the seed reproduces the runs,
and Hypothesis can replay and shrink them (its integers lean towards small values, so numbers
meant to be uniform are drawn as fair bits, :func:`draw_below`).

``pct`` (the default): probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi and
Nagarakatte, ASPLOS 2010, in the variant of Coyote and Shuttle) with swarm testing (Groce et
al., ISSTA 2012). The actors are the requests (:func:`actor_of`) and, each an actor of its own,
the argument-less kinds of action (the clock ``Tick()``, a DB ``Write()``, a background
``RefreshDone()``); a request's environment steps (``Pause``, ``Crash``) are that request's.
Per run the plan draws a priority order of the actors (uniform) and ``depth`` change points
(uniform in ``1..max_steps``, numbering the run's decisions: the steps at which more than one
actor could move). At every step the highest-priority actor that can move takes one of its
enabled actions (drawn, if it has several); after a change point's decision, the actor that
took it drops below all others. A clock tick that changes nothing is not a move while anything
else can move, so the clock at the top of the order runs time forward only while something is
timing. A race of depth ``depth + 1`` (in PCT's sense: that many ordering constraints among
``n`` actors, in runs of at most ``k`` decisions) is then found by a plain PCT run with
probability at least ``1/(n * k**depth)``, where a uniform random walk's chance shrinks
exponentially with the race's length. Three runs in four (``PLAIN_RUNS``) add the swarm:

- over action kinds: each kind (``LoseLock``, ``Tick``, ``Miss``, ...) is disabled with
  probability 1/2, and a disabled kind is taken only when nothing else can move: requests
  that would give up on a lock (``LoseLock``) stay ready and wait, time passes only when
  nothing else happens, a release waits for everything else (``DelLock``), and so on;
- over arrival times: each request's actions are held back until up to a drawn number of
  ticks have passed, unless nothing else can move.

So PCT's bound holds at a quarter of its strength, and races that need an actor to hold back
where it could act (the get-then-del race of three contenders: two requests must miss, then
wait at the lock instead of sleeping) become likely.

``random``: every step picks one of the enabled actions uniformly, after the arrival-time
swarm only (the walk of earlier versions).

A violation raises :class:`PropertyViolation` carrying the run as a :class:`Trace`. The engine
then shrinks it with :func:`traces.minimise.minimise`, which replays candidates through the model
at the model's speed; Hypothesis's own shrinker, which re-runs the whole machine per candidate
and costs seconds to minutes, is used too when asked (``hypothesis_shrink=True``). The
machine's ``TestCase`` attribute makes it a ``unittest`` test for the suite.

Runs are seeded (``seed``, default ``DEFAULT_SEED``): the same seed gives the same runs and the
same answer. ``max_seconds`` and ``max_states`` (steps taken, over all runs) stop a search
cleanly with ``unknown``, as does Ctrl-C. The result's detail names the runs tried, the
strategy (``by pct d=3 + swarm``) and the seed.

Examples
--------
>>> from herdproof.models.registry import build
>>> model = build("lock-cad", {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3})
>>> result = check(model, ["ONE"], max_examples=300)[0]
>>> result.verdict.value
'violated'
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, ClassVar

from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as use_seed
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException
from hypothesis.stateful import (
    RuleBasedStateMachine,
    get_state_machine_test,
    initialize,
    invariant,
    rule,
)

from herdproof.engines.interrupt import sigint_handled_by
from herdproof.engines.result import Result, Verdict
from herdproof.models.core import (
    Action,
    TransitionSystem,
    actor_of,
    check_domain,
    successors,
)
from herdproof.models.errors import HerdproofError
from herdproof.properties import Kind, Property, property_named
from herdproof.traces.minimise import minimise
from herdproof.traces.trace import Trace

ENGINE = "stateful"
DEFAULT_EXAMPLES = 200
DEFAULT_STEPS = 60
DEFAULT_SEED = 0
STRATEGIES = ("pct", "random")
DEFAULT_STRATEGY = "pct"
DEFAULT_DEPTH = 3  # PCT change points per run (races of depth 4 in PCT's terms)
# Per run, actors' arrivals are held back by up to one of these many ticks.
DELAY_SPREADS = (0, 1, 2, 3, 4, 6, 8, 12, 16)
# The share of pct runs that are plain PCT, without the swarm, as (numerator, denominator):
# PCT's bound holds for them. Measured on the get-del-gap-1 race: a half costs it about half
# its hit rate, a quarter little.
PLAIN_RUNS = (1, 4)

Actor = Hashable
Move = tuple[Action, Any]  # an enabled action and the state it leads to


def strategy_label(strategy: str, depth: int = DEFAULT_DEPTH) -> str:
    """How the detail of a result names a strategy: ``pct d=3 + swarm`` or ``random``."""
    if strategy not in STRATEGIES:
        raise HerdproofError(f"unknown stateful strategy `{strategy}`; choose "
                             f"{' or '.join(STRATEGIES)}")
    return f"pct d={depth} + swarm" if strategy == "pct" else "random"


def scheduled_actor(action: Action) -> Actor:
    """Who PCT gives a priority to for ``action``: its request (``(0,)`` for ``WinLock(r=0)``,
    and for ``Pause(r=0)``), or, for an action without arguments, its kind (``Tick``,
    ``Write``, ``RefreshDone``), each of which is an actor of its own."""
    return actor_of(action) or type(action).__name__


def kind_of(action: Action) -> str:
    """The action's kind, what swarm testing switches off: ``WinLock`` for ``WinLock(r=0)``."""
    return type(action).__name__


@dataclass
class Plan:
    """One run's schedule under the ``pct`` strategy, drawn by :func:`draw_plan`.

    ``priorities`` lists the actors highest first (it changes during the run: see
    :meth:`after`). ``change_points`` number the run's scheduling decisions (1 is the first
    step at which more than one actor could move: steps without a choice are not counted, as
    PCT's authors advise): after the decision with that number, the actor that took it drops
    below all others. ``disabled`` are the action kinds taken only when nothing else can move;
    ``delays`` hold a request's actions back until that many ticks have passed, unless nothing
    else can move.
    """

    priorities: list[Actor]
    change_points: frozenset[int] = frozenset()
    disabled: frozenset[str] = frozenset()
    delays: Mapping[Actor, int] = field(default_factory=dict)
    decisions: int = field(default=0, compare=False)  # decisions taken so far in the run
    contested: bool = field(default=False, compare=False)  # the last choice was a decision

    def preferred(self, moves: Sequence[Move], state: Any, ticks: int) -> list[Move]:
        """The moves the schedule may take now: not stuttering, of a kind not disabled, by an
        actor already arrived; each filter is dropped when it would leave nothing, so the
        result is empty only when ``moves`` is."""
        kept = list(moves)
        for keep in (lambda m: m[1] != state,
                     lambda m: kind_of(m[0]) not in self.disabled,
                     lambda m: self.delays.get(actor_of(m[0]), 0) <= ticks):
            kept = [m for m in kept if keep(m)] or kept
        return kept

    def first(self, moves: Sequence[Move]) -> list[Move]:
        """The moves of the highest-priority actor among those that have one in ``moves``."""
        movers = {scheduled_actor(m[0]) for m in moves}
        top = next((a for a in self.priorities if a in movers), None)
        if top is None:  # an actor the plan does not know: no priority, take it as it comes
            return list(moves)
        return [m for m in moves if scheduled_actor(m[0]) == top]

    def choose(self, moves: Sequence[Move], state: Any, ticks: int) -> list[Move]:
        """The moves this step may take: those of the highest-priority actor among the
        :meth:`preferred` ones (one of them is drawn if there are several). Empty only when
        ``moves`` is."""
        preferred = self.preferred(moves, state, ticks)
        self.contested = len({scheduled_actor(m[0]) for m in preferred}) > 1
        return self.first(preferred)

    def after(self, action: Action) -> None:
        """``action``, chosen by :meth:`choose`, was taken: if that was a decision and its
        number is a change point, its actor drops to the bottom."""
        if not self.contested:
            return
        self.decisions += 1
        mover = scheduled_actor(action)
        if self.decisions in self.change_points and mover in self.priorities:
            self.priorities.remove(mover)
            self.priorities.append(mover)


def scheduled_actors(model: TransitionSystem[Any, Any]) -> list[Actor]:
    """The actors PCT orders, in the model's action order (the clock first)."""
    return list(dict.fromkeys(scheduled_actor(a) for a in model.candidate_actions()))


def action_kinds(model: TransitionSystem[Any, Any]) -> list[str]:
    """The kinds of action the model has, in its action order."""
    return list(dict.fromkeys(kind_of(a) for a in model.candidate_actions()))


def draw_delays(data: st.DataObject, requests: Sequence[Actor]) -> dict[Actor, int]:
    """The arrival-time swarm: a spread, then each request's delay in ticks up to it."""
    spread = data.draw(st.sampled_from(DELAY_SPREADS), label="delay spread")
    delays = data.draw(st.lists(st.integers(min_value=0, max_value=spread),
                                min_size=len(requests), max_size=len(requests)),
                       label="delays")
    return dict(zip(requests, delays, strict=True))


def draw_below(data: st.DataObject, n: int, label: str) -> int:
    """A number in ``range(n)``, about uniformly, from Hypothesis's data: drawn as fair bits
    (Hypothesis draws a bounded integer leaning hard towards its lower end, which would make
    most runs share the first priorities and change points), shrinking towards 0."""
    if n <= 1:
        return 0
    bits = data.draw(st.lists(st.booleans(), min_size=(n - 1).bit_length() + 4,
                              max_size=(n - 1).bit_length() + 4), label=label)
    return sum(1 << i for i, bit in enumerate(bits) if bit) % n


def draw_plan(data: st.DataObject, model: TransitionSystem[Any, Any], depth: int,
              span: int) -> Plan:
    """One run's ``pct`` schedule, every choice a draw from ``data``: a priority order of the
    actors (a uniform shuffle) and ``depth`` change points uniform in ``1..span`` (two may
    coincide); then, except in the ``PLAIN_RUNS`` share of runs, the swarm: arrival delays and
    disabled kinds (each with probability 1/2). Everything shrinks towards the plain schedule:
    the actors in model order, change points at the first decision, no swarm."""
    actors = scheduled_actors(model)
    priorities = list(actors)
    for i in range(len(priorities) - 1):  # Fisher-Yates
        j = i + draw_below(data, len(priorities) - i, "priority")
        priorities[i], priorities[j] = priorities[j], priorities[i]
    points = frozenset(1 + draw_below(data, max(span, 1), "change point")
                       for _ in range(depth))
    if draw_below(data, PLAIN_RUNS[1], "swarm") < PLAIN_RUNS[0]:
        return Plan(priorities, points)
    delays = draw_delays(data, [a for a in actors if isinstance(a, tuple)])
    kinds = action_kinds(model)
    off = data.draw(st.lists(st.booleans(), min_size=len(kinds), max_size=len(kinds)),
                    label="disabled kinds")
    return Plan(priorities, points,
                frozenset(k for k, no in zip(kinds, off, strict=True) if no), delays)


class PropertyViolation(AssertionError):
    """A run broke (or, for ``SOMETIMES``, witnessed) a property; ``trace`` is the run."""

    def __init__(self, trace: Trace, message: str) -> None:
        super().__init__(f"{message}\nreplay with: {trace.program()}")
        self.trace = trace


class OutOfBudget(KeyboardInterrupt):
    """Raised inside a run when the search's time or step budget is spent.

    A kind of ``KeyboardInterrupt``, the one exception Hypothesis lets through at once without
    recording the run: anything else (even a ``BaseException``) is taken for a failure, or for
    the run ending early, which Hypothesis may then report as flaky data generation."""


class CountingMachine(RuleBasedStateMachine):
    """A state machine class that counts how many runs Hypothesis made of it, and the steps
    taken in all of them, and stops the search (:class:`OutOfBudget`) at ``deadline`` (a
    ``time.perf_counter()`` value) or after ``max_steps_total`` steps. ``strategy`` names how
    its runs schedule actions (``pct d=3 + swarm``)."""

    runs: ClassVar[int] = 0
    steps: ClassVar[int] = 0
    deadline: ClassVar[float | None] = None
    max_steps_total: ClassVar[int | None] = None
    found: ClassVar[bool] = False  # a run broke a property: let Hypothesis report it
    strategy: ClassVar[str] = ""
    interrupted: ClassVar[bool] = False  # Ctrl-C was pressed (see :func:`_ctrl_c_noted`)

    @classmethod
    def spend(cls) -> None:
        if cls.interrupted:  # the KeyboardInterrupt may have been dropped: raise it again
            raise KeyboardInterrupt
        if cls.found:
            return
        if cls.deadline is not None and time.perf_counter() > cls.deadline:
            raise OutOfBudget("time")
        if cls.max_steps_total is not None and cls.steps >= cls.max_steps_total:
            raise OutOfBudget("steps")


def machine_for(model: TransitionSystem[Any, Any], properties: Iterable[str | Property], *,
                strategy: str = DEFAULT_STRATEGY, depth: int = DEFAULT_DEPTH,
                max_steps: int = DEFAULT_STEPS) -> type[CountingMachine]:
    """A Hypothesis state machine that walks ``model`` and checks ``properties``.

    ``strategy`` is ``pct`` (with ``depth`` change points drawn among the first ``max_steps``
    decisions of a run) or ``random`` (see the module's documentation). ``SOMETIMES`` properties
    make the machine fail as soon as they are witnessed, which is how a search for a witness is
    phrased to Hypothesis.
    """
    label = strategy_label(strategy, depth)
    if depth < 0:
        raise HerdproofError(f"the PCT depth must be at least 0, got {depth}")
    props = [property_named(p) if isinstance(p, str) else p for p in properties]
    always = [p for p in props if p.kind is not Kind.EVENTUALLY]
    eventually = [p for p in props if p.kind is Kind.EVENTUALLY]
    initials = model.initial_states()

    # requests' numbers in order; actors of other kinds (a fault's instance, ``('redis2',)``)
    # after them, by kind, so mixed kinds never meet in one comparison
    actors = sorted({actor_of(a) for a in model.candidate_actions()} - {()},
                    key=lambda actor: (tuple(type(x).__name__ for x in actor), actor))

    class ModelMachine(CountingMachine):
        runs = 0

        def __init__(self) -> None:
            super().__init__()
            type(self).spend()
            type(self).runs += 1
            self.initial = 0
            self.state = initials[0]
            self.actions: list[Action] = []
            self.ticks = 0
            self.delays: Mapping[Actor, int] = {}
            self.plan: Plan | None = None
            self.resting = False  # nothing but stutter is possible: the run stands still
            self.judged = False  # ... and its state was judged

        @initialize(index=st.integers(min_value=0, max_value=len(initials) - 1),
                    data=st.data())
        def start(self, index: int, data: st.DataObject) -> None:
            self.initial, self.state = index, initials[index]
            if strategy == "random":
                self.delays = draw_delays(data, actors)
            else:
                self.plan = draw_plan(data, model, depth, max_steps)

        @rule(data=st.data())
        def step(self, data: st.DataObject) -> None:
            # The only rule: a second one (``rest``, say) would let Hypothesis's own swarm over
            # rules switch this one off, wasting the run.
            type(self).spend()
            if self.resting:
                return
            moves = successors(model, self.state)
            if all(nxt == self.state for _, nxt in moves):
                # quiescent (or the model's horizon stopped the clock): the run stands still,
                # and comes to rest here
                self.resting = True
                if eventually and not model.truncated(self.state):
                    observation = model.observe(self.state)
                    for prop in eventually:
                        if not prop.predicate(observation):
                            raise self._violation(prop, "the run comes to rest with it false")
                return
            if self.plan is None:  # random: uniform, after the arrival-time swarm
                due = [m for m in moves if self.delays.get(actor_of(m[0]), 0) <= self.ticks]
                chosen = due or list(moves)
            else:
                chosen = self.plan.choose(moves, self.state, self.ticks)
            move: Move = (chosen[0] if len(chosen) == 1
                          else data.draw(st.sampled_from(chosen), label="action"))
            action, self.state = move
            type(self).steps += 1
            check_domain(model, self.state, after=action)
            self.actions.append(action)
            self.ticks += 1 if action.advances_time else 0
            if self.plan is not None:
                self.plan.after(action)

        @invariant()
        def judge(self) -> None:
            if self.judged:
                return
            self.judged = self.resting
            observation = model.observe(self.state)
            for prop in always:
                value = bool(prop.predicate(observation))
                if prop.kind is Kind.ALWAYS and not value:
                    raise self._violation(prop, "violated")
                if prop.kind is Kind.SOMETIMES and value:
                    raise self._violation(prop, "witnessed")

        def _violation(self, prop: Property, what: str) -> PropertyViolation:
            trace = Trace(model.name, dict(model.params), tuple(self.actions),
                          property=prop.name, engine=ENGINE, initial=self.initial)
            type(self).found = True
            return PropertyViolation(trace, f"{prop.name} {what} after {len(self.actions)} steps")

    ModelMachine.strategy = label
    ModelMachine.__name__ = ModelMachine.__qualname__ = f"{_identifier(model.name)}Machine"
    return ModelMachine


def check(model: TransitionSystem[Any, Any], properties: Iterable[str | Property], *,
          max_examples: int = DEFAULT_EXAMPLES, max_steps: int = DEFAULT_STEPS,
          seed: int | None = DEFAULT_SEED, hypothesis_shrink: bool = False,
          max_seconds: float | None = None, max_states: int | None = None,
          strategy: str = DEFAULT_STRATEGY, depth: int = DEFAULT_DEPTH) -> list[Result]:
    """Search for violations of each property with Hypothesis, one search per property.

    A found violation is ``violated`` with the shrunk trace; a ``SOMETIMES`` property whose
    witness is found ``holds``; otherwise the verdict is ``unknown`` and the detail says how
    many runs were tried (testing cannot prove that a property holds). The detail names the
    strategy and the seed, which reproduce the answer.

    Parameters
    ----------
    max_examples:
        Runs per property (Hypothesis's ``max_examples``).
    max_steps:
        Actions per run (Hypothesis's ``stateful_step_count``); also the span in which PCT's
        change points fall.
    seed:
        Hypothesis's random seed: the same seed, the same runs, the same answer. ``None``
        draws a fresh one (and the detail names it).
    hypothesis_shrink:
        Also run Hypothesis's shrink phase before herdproof's minimiser (slow, rarely shorter).
    max_seconds, max_states:
        Stop cleanly after this many seconds for the whole call, or this many steps (states
        visited) in the runs for one property: the properties not yet decided are ``unknown``
        with the runs and steps reached. Ctrl-C stops the same way, with ``interrupted`` set.
    strategy, depth:
        How runs schedule actions: ``pct`` (the default) with ``depth`` priority change points
        per run, plus swarm over action kinds and arrival times; or ``random`` (a uniform walk,
        as in earlier versions). See the module's documentation.
    """
    strategy_label(strategy, depth)  # an unknown strategy fails before any search
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    deadline = time.perf_counter() + max_seconds if max_seconds is not None else None
    budget = _Budget(seed, deadline, max_seconds, max_states, strategy, depth)
    results: list[Result] = []
    for item in properties:
        prop = property_named(item) if isinstance(item, str) else item
        checked = prop.prepare(model)
        if not prop.applies_to_model(model):
            raise HerdproofError(f"property {prop.name} does not apply to this configuration "
                                 f"of {model.name} (it needs {', '.join(prop.requires)})")
        if results and results[-1].interrupted:  # Ctrl-C: start no further search
            results.append(Result(prop.name, ENGINE, Verdict.UNKNOWN, None, 0.0, None,
                                  "not checked: interrupted", interrupted=True))
            continue
        results.append(_search(checked, prop, max_examples, max_steps, hypothesis_shrink,
                               budget))
    return results


@dataclass(frozen=True)
class _Budget:
    seed: int
    deadline: float | None
    max_seconds: float | None
    max_states: int | None
    strategy: str = DEFAULT_STRATEGY
    depth: int = DEFAULT_DEPTH


def _search(model: TransitionSystem[Any, Any], prop: Property, max_examples: int,
            max_steps: int, hypothesis_shrink: bool, budget: _Budget) -> Result:
    machine = machine_for(model, [prop], strategy=budget.strategy, depth=budget.depth,
                          max_steps=max_steps)
    machine.deadline, machine.max_steps_total = budget.deadline, budget.max_states
    phases = list(Phase) if hypothesis_shrink else [p for p in Phase if p is not Phase.shrink]
    config = settings(max_examples=max_examples, stateful_step_count=max_steps,
                      derandomize=False, database=None, deadline=None, phases=phases,
                      suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
                      print_blob=False)
    test = use_seed(budget.seed)(_machine_test(machine, config, max_steps))
    started = time.perf_counter()
    what = "witness" if prop.kind is Kind.SOMETIMES else "violation"
    how = f"by {machine.strategy} (seed {budget.seed})"
    try:
        with _ctrl_c_noted(machine):
            test()
        if machine.interrupted:  # noted during the last run's last step: still Ctrl-C
            raise KeyboardInterrupt
    except PropertyViolation as found:
        shrunk = minimise(found.trace, model)
        seconds = time.perf_counter() - started
        verdict = Verdict.HOLDS if prop.kind is Kind.SOMETIMES else Verdict.VIOLATED
        note = (f"{what} found in {machine.runs} runs {how}; shrunk from {len(found.trace)} "
                f"to {len(shrunk)} steps")
        trace = Trace(shrunk.policy, shrunk.params, shrunk.actions, property=prop.name,
                      engine=ENGINE, initial=shrunk.initial, note=note)
        return Result(prop.name, ENGINE, verdict, None, seconds, trace,
                      f"{what} found in {machine.runs} runs {how}")
    except KeyboardInterrupt as stop:  # Ctrl-C, or OutOfBudget
        seconds = time.perf_counter() - started
        if not isinstance(stop, OutOfBudget):
            why = "interrupted"
        elif str(stop) == "time":
            why = f"time limit {budget.max_seconds:g}s reached"
        else:
            why = f"step limit {budget.max_states} reached"
        return Result(prop.name, ENGINE, Verdict.UNKNOWN, None, seconds, None,
                      f"{why} after {machine.runs} runs ({machine.steps} steps, "
                      f"{seconds:.1f}s) by {machine.strategy}; no {what} found "
                      f"(seed {budget.seed})",
                      interrupted=not isinstance(stop, OutOfBudget))
    except HypothesisException as exc:
        raise HerdproofError(f"the stateful engine could not run: {exc}") from exc
    seconds = time.perf_counter() - started
    return Result(prop.name, ENGINE, Verdict.UNKNOWN, None, seconds, None,
                  f"no {what} found in {machine.runs} runs of up to {max_steps} steps {how}")


@contextmanager
def _ctrl_c_noted(machine: type[CountingMachine]) -> Iterator[None]:
    """Ctrl-C inside is noted on ``machine``, whose next step raises ``KeyboardInterrupt``, and
    is raised at once unless the main thread is inside a ``__del__`` or a garbage-collection
    callback (Hypothesis installs one): there Python prints the exception as "Exception
    ignored" with a traceback and drops it, and the search would run on to its budget. Only
    where Python's own handler is in force, in the main thread."""
    def note(signum: int, frame: FrameType | None) -> None:
        machine.interrupted = True
        while frame is not None:
            if frame.f_code.co_name in _DROPPING:
                return  # raised by the next step instead
            frame = frame.f_back
        raise KeyboardInterrupt

    with sigint_handled_by(note):
        yield


# functions in which Python prints an exception and drops it rather than raise it
_DROPPING = frozenset({"gc_callback", "__del__"})


def _machine_test(machine: type[CountingMachine], config: settings,
                  steps: int) -> Callable[[], None]:
    """The Hypothesis test running ``machine``, every run for all ``steps`` steps.

    Otherwise Hypothesis decides before each step whether to stop, and once a run's plan is
    drawn those are the only choices left in it (a pct run draws little else), so its search
    for new behaviour keeps trying runs cut short, some with no step at all. A run
    that comes to rest earlier stands still for its remaining steps. ``_min_steps`` is
    Hypothesis's own (private) parameter for this; without it, runs may stop early."""
    try:
        return get_state_machine_test(machine, settings=config, _min_steps=steps)
    except TypeError:
        return get_state_machine_test(machine, settings=config)


def _identifier(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))
