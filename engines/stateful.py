"""Hypothesis stateful testing, generated from any registered model.

:func:`machine_for` turns a model and a list of properties into a
:class:`hypothesis.stateful.RuleBasedStateMachine`:

- one rule, ``step``, picks one of the actions enabled in the current state (the action list
  is ordered simplest first, so shrinking prefers simple actions);
- an ``initialize`` rule draws, per run, a start delay for each actor (the requests named by
  the actions' arguments): an actor's actions are left out of the choice until that many ticks
  have passed, unless nothing else is enabled. This is swarm testing for arrival times: races
  at a timing boundary ("B arrives after A's lock expired") become likely instead of rare,
  while every run remains a run of the model, and delays shrink towards zero;
- one rule, ``rest``, runs only in quiescent states (nothing but clock stutter is possible),
  where ``EVENTUALLY`` properties are judged;
- an invariant judges every ``ALWAYS`` property, and notes ``SOMETIMES`` witnesses, in every
  state visited.

A violation raises :class:`PropertyViolation` carrying the run as a :class:`Trace`. The engine
then shrinks it with :func:`traces.minimise.minimise`, which replays candidates through the model
at the model's speed; Hypothesis's own shrinker, which re-runs the whole machine per candidate
and costs seconds to minutes, is used too when asked (``hypothesis_shrink=True``). The
machine's ``TestCase`` attribute makes it a ``unittest`` test for the suite.

Runs are seeded (``seed``, default ``DEFAULT_SEED``): the same seed gives the same runs and the
same answer. ``max_seconds`` and ``max_states`` (steps taken, over all runs) stop a search
cleanly with ``unknown``, as does Ctrl-C.

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
from collections.abc import Iterable
from dataclasses import dataclass
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
    precondition,
    rule,
)

from herdproof.engines.result import Result, Verdict
from herdproof.models.core import (
    Action,
    TransitionSystem,
    actor_of,
    check_domain,
    enabled_actions,
    is_quiescent,
)
from herdproof.models.errors import HerdproofError
from herdproof.properties import Kind, Property, property_named
from herdproof.traces.minimise import minimise
from herdproof.traces.trace import Trace

ENGINE = "stateful"
DEFAULT_EXAMPLES = 200
DEFAULT_STEPS = 60
DEFAULT_SEED = 0
# Per run, actors' arrivals are held back by up to one of these many ticks.
DELAY_SPREADS = (0, 1, 2, 3, 4, 6, 8, 12, 16)


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
    ``time.perf_counter()`` value) or after ``max_steps_total`` steps."""

    runs: ClassVar[int] = 0
    steps: ClassVar[int] = 0
    deadline: ClassVar[float | None] = None
    max_steps_total: ClassVar[int | None] = None
    found: ClassVar[bool] = False  # a run broke a property: let Hypothesis report it

    @classmethod
    def spend(cls) -> None:
        if cls.found:
            return
        if cls.deadline is not None and time.perf_counter() > cls.deadline:
            raise OutOfBudget("time")
        if cls.max_steps_total is not None and cls.steps >= cls.max_steps_total:
            raise OutOfBudget("steps")


def machine_for(model: TransitionSystem[Any, Any],
                properties: Iterable[str | Property]) -> type[CountingMachine]:
    """A Hypothesis state machine that walks ``model`` and checks ``properties``.

    ``SOMETIMES`` properties make the machine fail as soon as they are witnessed, which is how
    a search for a witness is phrased to Hypothesis.
    """
    props = [property_named(p) if isinstance(p, str) else p for p in properties]
    always = [p for p in props if p.kind is not Kind.EVENTUALLY]
    eventually = [p for p in props if p.kind is Kind.EVENTUALLY]
    initials = model.initial_states()

    actors = sorted({actor_of(a) for a in model.candidate_actions()} - {()})

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
            self.delays: dict[tuple[Any, ...], int] = {}

        @initialize(index=st.integers(min_value=0, max_value=len(initials) - 1),
                    data=st.data())
        def start(self, index: int, data: st.DataObject) -> None:
            self.initial, self.state = index, initials[index]
            spread = data.draw(st.sampled_from(DELAY_SPREADS), label="delay spread")
            delays = data.draw(st.lists(st.integers(min_value=0, max_value=spread),
                                        min_size=len(actors), max_size=len(actors)),
                               label="delays")
            self.delays = dict(zip(actors, delays, strict=True))

        @rule(data=st.data())
        def step(self, data: st.DataObject) -> None:
            enabled = enabled_actions(model, self.state)
            if not enabled:
                return  # the model's horizon stopped the clock: the run can only stand still
            due = [a for a in enabled if self.delays.get(actor_of(a), 0) <= self.ticks]
            action = data.draw(st.sampled_from(due or enabled), label="action")
            type(self).spend()
            type(self).steps += 1
            self.state = model.apply(self.state, action)
            check_domain(model, self.state, after=action)
            self.actions.append(action)
            self.ticks += 1 if action.advances_time else 0

        @precondition(lambda self: bool(eventually) and is_quiescent(model, self.state)
                      and not model.truncated(self.state))
        @rule()
        def rest(self) -> None:
            observation = model.observe(self.state)
            for prop in eventually:
                if not prop.predicate(observation):
                    raise self._violation(prop, "the run comes to rest with it false")

        @invariant()
        def judge(self) -> None:
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

    ModelMachine.__name__ = ModelMachine.__qualname__ = f"{_identifier(model.name)}Machine"
    return ModelMachine


def check(model: TransitionSystem[Any, Any], properties: Iterable[str | Property], *,
          max_examples: int = DEFAULT_EXAMPLES, max_steps: int = DEFAULT_STEPS,
          seed: int | None = DEFAULT_SEED, hypothesis_shrink: bool = False,
          max_seconds: float | None = None, max_states: int | None = None) -> list[Result]:
    """Search for violations of each property with Hypothesis, one search per property.

    A found violation is ``violated`` with the shrunk trace; a ``SOMETIMES`` property whose
    witness is found ``holds``; otherwise the verdict is ``unknown`` and the detail says how
    many runs were tried (testing cannot prove that a property holds). The detail names the
    seed, which reproduces the answer.

    Parameters
    ----------
    max_examples:
        Runs per property (Hypothesis's ``max_examples``).
    max_steps:
        Actions per run (Hypothesis's ``stateful_step_count``).
    seed:
        Hypothesis's random seed: the same seed, the same runs, the same answer. ``None``
        draws a fresh one (and the detail names it).
    hypothesis_shrink:
        Also run Hypothesis's shrink phase before herdproof's minimiser (slow, rarely shorter).
    max_seconds, max_states:
        Stop cleanly after this many seconds for the whole call, or this many steps (states
        visited) in the runs for one property: the properties not yet decided are ``unknown``
        with the runs and steps reached. Ctrl-C stops the same way, with ``interrupted`` set.
    """
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    deadline = time.perf_counter() + max_seconds if max_seconds is not None else None
    budget = _Budget(seed, deadline, max_seconds, max_states)
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


def _search(model: TransitionSystem[Any, Any], prop: Property, max_examples: int,
            max_steps: int, hypothesis_shrink: bool, budget: _Budget) -> Result:
    machine = machine_for(model, [prop])
    machine.deadline, machine.max_steps_total = budget.deadline, budget.max_states
    phases = list(Phase) if hypothesis_shrink else [p for p in Phase if p is not Phase.shrink]
    config = settings(max_examples=max_examples, stateful_step_count=max_steps,
                      derandomize=False, database=None, deadline=None, phases=phases,
                      suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
                      print_blob=False)
    test = use_seed(budget.seed)(get_state_machine_test(machine, settings=config))
    started = time.perf_counter()
    what = "witness" if prop.kind is Kind.SOMETIMES else "violation"
    try:
        test()
    except PropertyViolation as found:
        shrunk = minimise(found.trace, model)
        seconds = time.perf_counter() - started
        verdict = Verdict.HOLDS if prop.kind is Kind.SOMETIMES else Verdict.VIOLATED
        note = (f"{what} found in {machine.runs} runs; shrunk from {len(found.trace)} "
                f"to {len(shrunk)} steps")
        trace = Trace(shrunk.policy, shrunk.params, shrunk.actions, property=prop.name,
                      engine=ENGINE, initial=shrunk.initial, note=note)
        return Result(prop.name, ENGINE, verdict, None, seconds, trace,
                      f"{what} found in {machine.runs} runs (seed {budget.seed})")
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
                      f"{seconds:.1f}s); no {what} found (seed {budget.seed})",
                      interrupted=not isinstance(stop, OutOfBudget))
    except HypothesisException as exc:
        raise HerdproofError(f"the stateful engine could not run: {exc}") from exc
    seconds = time.perf_counter() - started
    return Result(prop.name, ENGINE, Verdict.UNKNOWN, None, seconds, None,
                  f"no {what} found in {machine.runs} runs of up to {max_steps} steps "
                  f"(seed {budget.seed})")


def _identifier(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))
