"""Request programs: a policy written as what one request does, one labelled step at a time.

A policy module states the mechanism the way its documentation does: a request's program as a
list of :class:`Step` s, each an atomic step (PlusCal's labels: everything in a step happens at
once, and the label is the program counter). A step names

- the action it becomes in traces (``WinLock``), and the label the request must be at;
- its guard beyond the label and its effect, written with :mod:`models.ops` so the same step
  serves concrete search and the z3 encoding;
- the real command it models (``SET lock <token> NX EX <ex>``) and what the step says on the
  wire: :class:`~models.narration.Say` lines from which every renderer draws the step, so no
  renderer knows a policy or an action by name;
- the commands a server executes for it (:class:`Send`), from which ``replay --redis`` and
  ``replay --memcached`` drive a real server.

:class:`ProgramModel` compiles the program into the :class:`~models.core.TransitionSystem`
every engine reads, and supplies what every program shares instead of each policy repeating it:

- the candidate actions: the clock, the writer, the background actors' steps (``BACKGROUND``),
  then each request's steps in program order (the steps this configuration has), with the
  environment's steps on the work label;
- guards indexed by label: a request's action is looked up by its type, and a request that is
  not at the step's label is refused before the guard is evaluated;
- time: ``Tick()`` advances every request's timer by its label's :class:`Timer` (work counts
  up towards its duration, a sleep counts down), ticks the policy's stores, and is refused
  while a request sits at an urgent label or its work is due (DESIGN.md section 3);
- the fault environment (:mod:`models.environment`): ``Pause`` on the work label when
  ``pause`` > 0, ``Crash`` on the work label when crashes are allowed, ``Write`` when
  ``writers`` > 0, each with the layer's guard; the policy supplies only what a crash or a
  write does to its own stores (:meth:`ProgramModel.crash`, :meth:`ProgramModel.write`).
- the arrival window (:func:`with_arrivals`, which the registry applies to every policy):
  ``arrive_from`` and ``arrive_before`` confine a request's steps at the ``ARRIVAL`` label (and
  a background step that ``arrives``) to ticks ``arrive_from <= t < arrive_before`` after the
  expiry, counted in ``since`` only while a window is set; the defaults are "any time".

States are the policy's own frozen dataclass, extending :class:`RequestsState`, whose fields the
layer reads and writes: ``pc`` (labels per request), ``timer``, ``held`` (paused this tick) and
``seen`` (the DB version its work read), per request; ``db`` (the database version, which counts
the writes), ``starts`` and ``crashed``. For the explicit search the layer also compiles a
concrete successor function (:meth:`ProgramModel.successors`): the same successors as the
generic ``enabled``/``apply``, without trying every candidate action.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, ClassVar, Generic, TypeVar

from herdproof.models import environment, ops
from herdproof.models.clock import Tick
from herdproof.models.core import Action
from herdproof.models.environment import Crash, Pause, Write
from herdproof.models.errors import InvalidParameter
from herdproof.models.memcached_item import Item
from herdproof.models.narration import REQUEST, Message, Say, fill, note, shown
from herdproof.models.observation import Observation, waiting
from herdproof.models.ops import Bool, Int, all_of, any_of, implies, ite, negate
from herdproof.models.params import Param, ParamValue
from herdproof.models.policy import PolicyModel, PolicySpec

C = TypeVar("C")
S = TypeVar("S")

#: The ``r`` a background actor's step is given: it belongs to no request.
NOBODY = -1



@dataclass(frozen=True, slots=True)
class RequestAction(Action):
    """Base of a request's steps as actions: one field, the request ``r`` (``WinLock(r=1)``).

    A policy names each step's action with a subclass and a one-sentence docstring, "request r
    does what; enabled when ...": ``class WinLock(RequestAction): ...``.
    """

    r: int


@dataclass(frozen=True, slots=True)
class RequestsState:
    """The fields of a program's state the layer reads and writes, first in every policy's
    state (a policy's state class extends this one with its stores):

    ``pc[r]`` request r's label; ``timer[r]`` its elapsed work or remaining sleep; ``held[r]``
    its work is stalled by a pause this tick; ``seen[r]`` the database version its work read;
    ``db`` the database version (which also counts the writes); ``starts`` work started so far
    (database queries); ``crashed`` crashes so far.

    ``since``: ticks since the expiry (the run's start), counted only while an arrival window
    is set (:data:`ARRIVE_FROM`, :data:`ARRIVE_BEFORE`) and only up to the window's last edge,
    where it stays: later ticks cannot change whether a request may arrive, and the state
    space stays finite. Without a window it is 0 in every state (no policy sets it), so the
    reachable states are the same as without the field.
    """

    pc: tuple[Int, ...]
    timer: tuple[Int, ...]
    held: tuple[Bool, ...]
    seen: tuple[Int, ...]
    db: Int
    starts: Int
    crashed: Int
    since: Int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class Send:
    """A real command a step sends to the cache server, executable on one (``replay --redis``,
    ``replay --memcached``).

    ``op`` is one of :data:`REDIS_OPS` or :data:`MEMCACHED_OPS`; ``key`` names one of the
    program's ``KEYS`` (Redis) or ``MEMCACHED_KEYS``; ``when(cfg)`` limits the command to the
    configurations that send it (``None``: always).

    Redis: ``token`` sends the request's token as the value (``r<id>`` on the wire); ``ticks``
    names the parameter that gives a ``PX`` life.

    memcached: ``flags`` are the meta flags as the client sends them, each a letter with, in
    ``<...>``, the parameter that gives its value in ticks (``"v c N<stub_ttl> R<recache>"``);
    a flag whose parameter is 0 (or off) is not sent. ``value`` names a per-request field of
    the state before the step whose value ``ms`` stores (``"seen"``: the version the request
    read, ``v<n>`` on the wire); ``cas`` names the per-request field holding the CAS id sent as
    ``C<cas>``.

    ``why``: for a step that cannot be replayed on a server (:func:`not_on_a_server`), the one
    sentence saying why.

    ``server``: the server the command goes to, for a program that talks to several
    (:meth:`ProgramModel.servers`, e.g. Redlock's independent instances): ``""`` the first (or
    only) one; a participant's name (``"redis2"``); ``"*"`` every server, in order (a release
    on all instances); or ``"{name}"``: the action's field ``name`` if it has one (a fault
    striking ``Restart(server='redis2')``), else the per-request field ``name`` of the state
    before the step, the index of the server among :meth:`ProgramModel.servers` (``"{at}"``:
    the instance this request is at). :meth:`ProgramModel.servers_of` resolves it.
    """

    op: str
    key: str
    token: bool = False
    ticks: str = ""
    when: Callable[[Any], bool] | None = None
    flags: str = ""
    value: str = ""
    cas: str = ""
    why: str = ""
    server: str = ""


#: The commands :class:`Send` may name: ``GET k``, ``SET k v``, ``SET k v NX PX <ms>``,
#: ``DEL k``, the compare-and-delete script, and the owner-checked ``PEXPIRE k <ms>`` script
#: (a lock renewal: ``token`` and ``ticks`` as for ``SET NX PX``) (:mod:`models.redis_commands`
#: models each). Two more act on a whole server rather than send a client's command:
#: ``ADVANCE`` lets ``ticks`` ticks (the parameter; 1 when none is named) pass on that server
#: alone (its clock jumps or runs fast: every TTL on it rewritten, as a tick does everywhere),
#: and ``FORGET`` makes it forget every key (a restart without persistence).
REDIS_OPS = ("GET", "SET", "SET NX PX", "DEL", "CAD", "PEXPIRE IF OWNER", "ADVANCE", "FORGET")
#: The memcached meta commands :class:`Send` may name (:mod:`models.memcached_commands` models
#: each): ``mg k`` with ``v``, ``c``, ``t``, ``N<ttl>``, ``R<ttl>``, ``T<ttl>``; ``ms k`` with
#: ``C<cas>``, ``I``, ``T<ttl>``; ``md k`` with ``I``, ``T<ttl>``; and the classic text
#: protocol's ``get k``, ``set k`` (``value``, ``T<ttl>`` as its exptime) and ``delete k``.
MEMCACHED_OPS = ("mg", "ms", "md", "get", "set", "delete")
#: A step that cannot be replayed on a server (its effect has no faithful server command).
NOT_ON_A_SERVER: tuple[Send, ...] = (Send("", ""),)


def not_on_a_server(why: str, when: Callable[[Any], bool] | None = None) -> tuple[Send, ...]:
    """:data:`NOT_ON_A_SERVER` with the sentence saying why (in the configurations ``when``
    selects: a step that is faithful in some configurations lists its commands beside it)."""
    return (Send("", "", when=when, why=why),)


@dataclass(frozen=True)
class Step(Generic[S]):
    """One atomic step of a request's program.

    ``action`` is the action class (one field, ``r``); ``at`` the label the request must be
    at (or a tuple of labels, for a step two places of the program share);
    ``guard(model, s, r)`` the rest of the guard (``None``: the label alone);
    ``effect(model, s, r)`` the whole new state; ``when(cfg)`` whether this configuration has
    the step at all; ``command`` the real command (documentation, shown by ``herdproof
    list``); ``says`` the narration; ``sends`` the commands as a server executes them
    (:class:`Send`; empty for an in-process step, :data:`NOT_ON_A_SERVER` or
    :func:`not_on_a_server` for one that cannot be replayed on a server).

    A background actor's step (``ProgramModel.BACKGROUND``) has an action without fields
    (``RefreshDone()``), no label (``at=()``), and its guard and effect get ``r =`` :data:`NOBODY`.
    ``arrives``: the step is such an actor's arrival from outside (a caller of ``Forget``, not
    work a request started), confined to the arrival window like a request's first step
    (:meth:`ProgramModel.arrivals_open`). A step finishing due work must not set it: due work
    holds the clock, so a window refusing it would stop time rather than shape arrivals.
    """

    action: type[Action]
    at: int | tuple[int, ...]
    effect: Callable[[Any, S, int], S]
    guard: Callable[[Any, S, int], Bool] | None = None
    when: Callable[[Any], bool] | None = None
    command: str = ""
    says: tuple[Say, ...] = ()
    sends: tuple[Send, ...] = ()
    arrives: bool = False


@dataclass(frozen=True)
class Timer:
    """How a label's timer moves on a tick: ``up`` counts work towards ``duration`` (read from
    the configuration by that name), otherwise it counts a sleep down to zero (from at most
    ``duration``, when one is named: the bound :meth:`ProgramModel.timer_in_domain` states)."""

    up: bool
    duration: str = ""




class ProgramModel(PolicyModel[C], Generic[C, S]):
    """A policy's transition system compiled from its request program.

    A policy subclass supplies ``STEPS`` (the program, in order), ``TIMERS`` (label ->
    :class:`Timer`), ``URGENT`` (labels no tick may pass), ``WORK`` (the label of the
    database query, where pauses and crashes strike), ``PARTICIPANTS`` (who the narration
    talks to) and the state-level pieces only it knows: :meth:`initial_states`,
    :meth:`tick_stores`, :meth:`crash`, :meth:`write`, ``observe``, ``in_domain``,
    ``describe``, ``invariants``, ``canonical``. A program with a background actor (``swr``'s
    refresh) adds its steps as ``BACKGROUND`` and says when its work holds the clock
    (:meth:`background_holds_the_clock`).
    """

    STEPS: ClassVar[tuple[Step[Any], ...]]
    TIMERS: ClassVar[Mapping[int, Timer]] = {}
    URGENT: ClassVar[tuple[int, ...]] = ()
    WORK: ClassVar[int | None] = None
    #: The label of a request that has not arrived, and the labels where it has its answer.
    ARRIVAL: ClassVar[int] = 0
    DONE: ClassVar[tuple[int, ...]] = ()
    #: The labels among ``DONE`` where the request's answer is an error (its process died):
    #: answered, but not served.
    ERRORS: ClassVar[tuple[int, ...]] = ()
    #: The labels among ``DONE`` where the answer is an explicit fallback (a stale or default
    #: value the program serves instead of the value): served, but not with the value.
    FALLBACKS: ClassVar[tuple[int, ...]] = ()
    PARTICIPANTS: ClassVar[tuple[str, ...]] = ()
    #: Narration of the environment's own actions, by action name.
    ENVIRONMENT_SAYS: ClassVar[Mapping[str, tuple[Say, ...]]] = {}
    #: The keys the program's commands name, each compared by ``"token"`` (the value and the
    #: remaining life must match) or ``"presence"`` (only whether it exists).
    KEYS: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: The memcached keys the program's meta commands name, each compared by ``"item"``
    #: (everything ``mg`` shows: value, CAS, TTL, the ``W``/``Z``/``X`` flags) or ``"value"``
    #: (value and TTL: for a program that does not track CAS ids). Their state is
    #: :meth:`ProgramModel.items`.
    MEMCACHED_KEYS: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: What the environment's actions send, by action name (absent: cannot be replayed).
    ENVIRONMENT_SENDS: ClassVar[Mapping[str, tuple[Send, ...]]] = {}
    #: Steps of background actors that belong to no request (a cache's refresher, a watchdog),
    #: each one action tried once, after the writer and before the requests; such an actor's
    #: due work holds the clock through :meth:`background_holds_the_clock`.
    BACKGROUND: ClassVar[tuple[Step[Any], ...]] = ()

    def __init__(self, config: C, params: Mapping[str, Any], name: str) -> None:
        self._steps = {step.action: step for step in self.STEPS}
        self._background = {step.action: step for step in self.BACKGROUND}
        self._labels = {step.action: step.at if isinstance(step.at, tuple) else (step.at,)
                        for step in self.STEPS}
        super().__init__(config, params, name)

    # -- the compiled contract ---------------------------------------------------------------

    def action_types(self) -> Mapping[str, type[Action]]:
        types: list[type[Action]] = [Tick, Write, *self._background, *self._steps, Pause, Crash]
        return {t.__name__: t for t in types}

    def enabled(self, s: S, a: Action) -> Bool:
        if isinstance(a, Tick):
            return self.tick_enabled(s)
        if isinstance(a, Write):
            return environment.may_write(s.db, self.writers)  # type: ignore[attr-defined]
        if self._background and (actor := self._background.get(type(a))) is not None:
            acts = True if actor.guard is None else actor.guard(self, s, NOBODY)
            return all_of(self.arrivals_open(s), acts) if actor.arrives else acts
        r: int = a.r  # type: ignore[attr-defined]
        pc = s.pc[r]  # type: ignore[attr-defined]
        if isinstance(a, Pause | Crash):
            assert self.WORK is not None
            if isinstance(pc, int) and pc != self.WORK:
                return False
            if isinstance(a, Pause):
                return all_of(pc == self.WORK, environment.may_pause(
                    s.timer[r], self._duration(self.WORK, r), self.pause,  # type: ignore[attr-defined]
                    s.held[r]))  # type: ignore[attr-defined]
            return all_of(pc == self.WORK, environment.may_crash(
                s.crashed, self.crash_bound))  # type: ignore[attr-defined]
        step = self._steps.get(type(a))
        if step is None:
            raise TypeError(f"{self.name} has no action {a!r}")
        labels = self._labels[type(a)]
        if isinstance(pc, int) and pc not in labels:
            return False  # concrete fast path: the label is the guard's first conjunct
        at = any_of(*(pc == label for label in labels))
        if self.ARRIVAL in labels and self.windowed:  # arriving: only inside the window
            at = all_of(at, implies(pc == self.ARRIVAL, self.arrivals_open(s)))
        if step.guard is None:
            return at
        return all_of(at, step.guard(self, s, r))

    # -- the concrete fast path ----------------------------------------------------------

    def successors(self, s: S) -> tuple[tuple[Action, S], ...]:
        """Each enabled action of a concrete state with the state it leads to, in model order:
        the same answer as :func:`models.core.successors` (a test holds the two to it on every
        expectation row), found without trying every candidate action. The environment's
        actions are tried as usual; a request's candidates are only the steps at its current
        label, looked up in an index built once, and their guards are called directly."""
        index = self._index or self._build_index()
        out: list[tuple[Action, S]] = []
        for a in index[0]:
            if self.enabled(s, a):
                out.append((a, self.apply(s, a)))
        per_request = index[1]
        pcs: tuple[int, ...] = s.pc  # type: ignore[attr-defined]
        for r, pc in enumerate(pcs):
            for a, guard, effect in per_request[r].get(pc, ()):
                if guard is None or guard(self, s, r):
                    out.append((a, effect(self, s, r)))
        return tuple(out)

    _index: Any = None
    _counts_up: Mapping[int, bool] | None = None

    def _timer_directions(self) -> Mapping[int, bool]:
        """Label -> whether its timer counts up (work) or down (a sleep), for the concrete
        tick; labels without a timer are absent."""
        self._counts_up = {label: timer.up for label, timer in self.TIMERS.items()}
        return self._counts_up

    def _build_index(self) -> Any:
        """Environment actions in order, and per request: label -> (action, guard, effect)."""
        environment_actions = [a for a in self.candidate_actions()
                               if not isinstance(getattr(a, "r", None), int)]
        per_request: list[dict[int, list[Any]]] = [{} for _ in range(self.requests)]
        for a in self.candidate_actions():
            r = getattr(a, "r", None)
            if not isinstance(r, int):
                continue
            if isinstance(a, Pause | Crash):
                assert self.WORK is not None
                labels: tuple[int, ...] = (self.WORK,)
                guard: Any = partial(_environment_guard, a)
                effect: Any = partial(_environment_effect, a)
            else:
                step = self._steps[type(a)]
                labels = self._labels[type(a)]
                guard, effect = step.guard, step.effect
            for label in labels:
                # arriving: the window's guard first (as in ``enabled``)
                here = partial(_arriving, guard) if label == self.ARRIVAL and self.windowed \
                    else guard
                per_request[r].setdefault(label, []).append((a, here, effect))
        self._index = (tuple(environment_actions), per_request)
        return self._index

    def apply(self, s: S, a: Action) -> S:
        if isinstance(a, Tick):
            return self.tick(s)
        if isinstance(a, Write):
            return self.write(s)
        if self._background and (actor := self._background.get(type(a))) is not None:
            done: S = actor.effect(self, s, NOBODY)
            return done
        r: int = a.r  # type: ignore[attr-defined]
        if isinstance(a, Pause):
            return evolve(s, held=_set(s.held, r, True))  # type: ignore[attr-defined]
        if isinstance(a, Crash):
            return self.crash(s, r)
        step = self._steps.get(type(a))
        if step is None:
            raise TypeError(f"{self.name} has no action {a!r}")
        after: S = step.effect(self, s, r)
        return after

    def _build_actions(self) -> tuple[Action, ...]:
        kinds: list[type[Action]] = [step.action for step in self.STEPS
                                     if step.when is None or step.when(self.cfg)]
        if self.WORK is not None and pauses(self.cfg):
            kinds.append(Pause)
        if self.WORK is not None and crashes(self.cfg):
            kinds.append(Crash)
        per_request = [kind(r=r) for r in range(self.requests)  # type: ignore[call-arg]
                       for kind in kinds]
        writes: tuple[Action, ...] = (Write(),) if self.writers else ()
        background = [step.action() for step in self.BACKGROUND
                      if step.when is None or step.when(self.cfg)]
        return (Tick(), *writes, *background, *per_request)

    # -- what the layer reads from the configuration ---------------------------------------

    @property
    def requests(self) -> int:
        return int(self.cfg.requests)  # type: ignore[attr-defined]

    @property
    def pause(self) -> Int:
        pause: Int = getattr(self.cfg, "pause", 0)
        return pause

    @property
    def writers(self) -> int:
        return int(getattr(self.cfg, "writers", 0))

    @property
    def crash_bound(self) -> int:
        return environment.crash_bound(bool(getattr(self.cfg, "crash", False)),
                                       int(getattr(self.cfg, "crashes", 0)))

    # -- the arrival window ----------------------------------------------------------------

    #: ``(arrive_from, arrive_before)``, set by :meth:`confine_arrivals`; ``(0, 0)``: requests
    #: arrive at any tick.
    _window: tuple[Int, Int] = (0, 0)
    _windowed: bool = False

    def confine_arrivals(self, arrive_from: Int, arrive_before: Int) -> None:
        """Let requests arrive (and background actors whose step ``arrives``) only from tick
        ``arrive_from`` after the expiry, and before tick ``arrive_before`` (0: no end).
        :func:`with_arrivals` calls it for every policy; the parameters are recorded (in traces)
        only when they are not the defaults, so a run without a window is today's run."""
        for name, value in (("arrive_from", arrive_from), ("arrive_before", arrive_before)):
            if not ops.is_symbolic(value) and value < 0:
                raise InvalidParameter(f"parameter `{name}` of {self.name} counts ticks after "
                                       f"the expiry, so it cannot be {value}")
        if not ops.is_symbolic(arrive_from) and not ops.is_symbolic(arrive_before) \
                and 0 < arrive_before <= arrive_from:
            raise InvalidParameter(
                f"{self.name} with arrive_from={arrive_from} and arrive_before={arrive_before} "
                "lets no request arrive: arrive_before must be later than arrive_from (or 0 "
                "for no end)")
        self._window = (arrive_from, arrive_before)
        self._windowed = any(ops.is_symbolic(edge) or edge != 0 for edge in self._window)
        self._index = None
        self.params.update(recorded({"arrive_from": arrive_from,
                                     "arrive_before": arrive_before}))

    @property
    def arrive_from(self) -> Int:
        return self._window[0]

    @property
    def arrive_before(self) -> Int:
        return self._window[1]

    @property
    def windowed(self) -> bool:
        """An arrival window is set (or may be: a symbolic edge)."""
        return self._windowed

    def arrival_edge(self) -> Int:
        """Where the window's clock (``since``) stops: the later of its two edges. Every tick
        after that leaves the window as it is (open for good, or closed for good)."""
        return ops.maximum(*self._window)

    def arrivals_open(self, s: S) -> Bool:
        """A request may arrive now: ``arrive_from <= since`` and, when the window has an end,
        ``since < arrive_before``. Always, without a window."""
        if not self.windowed:
            return True
        since: Int = s.since  # type: ignore[attr-defined]
        start, end = self._window
        return all_of(since >= start, any_of(end == 0, since < end))

    def arrivals_over(self, s: S) -> Bool:
        """The window has closed: a request that has not arrived never will, so it is owed
        nothing (:meth:`observation`)."""
        if not self.windowed:
            return False
        since: Int = s.since  # type: ignore[attr-defined]
        end = self.arrive_before
        return all_of(end != 0, since >= end)

    def _duration(self, label: int, r: int | None = None) -> Int:
        return self.duration(label, r)

    def duration(self, label: int, r: int | None = None) -> Int:
        """How long the timer of ``label`` runs for request ``r``: the parameter its
        :class:`Timer` names, the same for every request. A simulator that draws each
        request's work duration (the program-driven fleet, :mod:`engines.fleet_program`)
        overrides this; every guard that waits for work reads it through here."""
        duration: Int = getattr(self.cfg, self.TIMERS[label].duration)
        return duration

    # -- time ------------------------------------------------------------------------------

    def urgent_free(self, s: S) -> Bool:
        """No request sits at an urgent label and no work is due unpaused: time may pass."""
        background = self.background_holds_the_clock(s)
        pcs = s.pc  # type: ignore[attr-defined]
        if type(pcs) is tuple and type(self).holds_the_clock is ProgramModel.holds_the_clock \
                and all(isinstance(pc, int) for pc in pcs):
            # concrete labels: only a request at an urgent label or one with a timer can hold
            # the clock (the layer's own rule), so only those are asked
            timers = self.TIMERS
            holds = [self.holds_the_clock(s, r) for r, pc in enumerate(pcs)
                     if pc in self.URGENT or pc in timers]
            if type(background) is bool and all(type(h) is bool for h in holds):
                return not (background or any(holds))
        else:
            holds = [self.holds_the_clock(s, r) for r in range(self.requests)]
        return negate(any_of(background, *holds))

    def background_holds_the_clock(self, s: S) -> Bool:
        """A background actor's work is due: no tick passes until it acts. None by default."""
        return False

    def holds_the_clock(self, s: S, r: int) -> Bool:
        """Request ``r`` is due to act before the next tick."""
        pc = s.pc[r]  # type: ignore[attr-defined]
        if isinstance(pc, int):  # a concrete state: plain Python, no operator dispatch
            if pc in self.URGENT:
                return True
            kind = self.TIMERS.get(pc)
            if kind is None or not kind.up:
                return False
            duration = self._duration(pc, r)
            if isinstance(duration, int):
                return bool(s.timer[r] >= duration  # type: ignore[attr-defined]
                            and not s.held[r])  # type: ignore[attr-defined]
        urgent = [pc == label for label in self.URGENT]
        for label, timer in self.TIMERS.items():
            if timer.up:
                urgent.append(all_of(pc == label, environment.holds_the_clock(
                    s.timer[r], self._duration(label, r), s.held[r])))  # type: ignore[attr-defined]
        return any_of(*urgent)

    def tick_enabled(self, s: S) -> Bool:
        return self.urgent_free(s)

    def tick(self, s: S) -> S:
        """One tick: timers move by their labels, the stores age, pauses end."""
        pcs: tuple[Int, ...] = s.pc  # type: ignore[attr-defined]
        now: tuple[Int, ...] = s.timer  # type: ignore[attr-defined]
        if all(isinstance(v, int) for v in (*pcs, *now)):  # concrete: no operator dispatch
            up = self._counts_up or self._timer_directions()
            timers = tuple(timer if (way := up.get(pc)) is None else timer + 1 if way
                           else timer - 1 if timer > 0 else 0
                           for pc, timer in zip(pcs, now, strict=True))
        else:
            moving = []
            for pc, timer in zip(pcs, now, strict=True):
                moved = timer
                for label, kind in self.TIMERS.items():
                    moved = ite(pc == label, timer + 1 if kind.up else ops.maximum(timer - 1, 0),
                                moved)
                moving.append(moved)
            timers = tuple(moving)
        ticked = evolve(s, timer=timers, held=(False,) * self.requests)
        if self.windowed:  # the arrival window's clock, up to its last edge
            edge = self.arrival_edge()
            since: Int = s.since  # type: ignore[attr-defined]
            ticked = evolve(ticked, since=ite(since < edge, since + 1, since))
        return self.tick_stores(ticked)

    def tick_stores(self, s: S) -> S:
        """Age the policy's stores by one tick (lock lives, TTLs); nothing by default."""
        return s

    # -- the environment's effects the policy defines --------------------------------------

    def crash(self, s: S, r: int) -> S:
        raise NotImplementedError(f"{self.name} allows crashes but does not say what one does")

    def write(self, s: S) -> S:
        raise NotImplementedError(f"{self.name} has writers but does not say what one does")

    # -- helpers every program uses -------------------------------------------------------

    def goto(self, s: S, r: int, label: int, timer: Int = 0) -> S:
        """Request ``r`` moves to ``label`` with its timer set (0 unless a sleep or work)."""
        return evolve(s, pc=_set(s.pc, r, label),  # type: ignore[attr-defined]
                      timer=_set(s.timer, r, timer))  # type: ignore[attr-defined]

    def end_work(self, s: S, r: int, label: int) -> S:
        """Request ``r``'s work is over: it moves to ``label``, and the pause that held it and
        the database version it read are gone."""
        return evolve(self.goto(s, r, label), held=_set(s.held, r, False),  # type: ignore[attr-defined]
                      seen=_set(s.seen, r, 0))  # type: ignore[attr-defined]

    def at_work(self, s: S, r: int) -> Bool:
        """Request ``r`` is at the ``WORK`` label (its database query runs)."""
        at: Bool = s.pc[r] == self.WORK  # type: ignore[attr-defined]
        return at

    def timer_column(self, word: str, s: S, r: int) -> str:
        """Request ``r``'s timer in a text timeline: ``word`` and the ticks run of its label's
        duration (``rebuild 1/2``)."""
        pc: int = s.pc[r]  # type: ignore[attr-defined]
        return f"{word} {s.timer[r]}/{getattr(self.cfg, self.TIMERS[pc].duration)}"  # type: ignore[attr-defined]

    def completes(self, s: S, r: int) -> Bool:
        """Request ``r``'s work (at ``WORK``) has run its duration and no pause holds it back
        this tick: the step that finishes the work may fire."""
        assert self.WORK is not None
        elapsed: Int = s.timer[r]  # type: ignore[attr-defined]
        return all_of(environment.due(elapsed, self._duration(self.WORK, r)),
                      negate(s.held[r]))  # type: ignore[attr-defined]

    def timer_in_domain(self, pc: Int, timer: Int, held: Bool) -> Bool:
        """A request's timer and pause flag as its label ``pc`` allows (for ``in_domain``): the
        work has run at most its duration plus its pauses, other work and a sleep at most their
        duration (a sleep without a named duration: any), every other label keeps the timer at
        0; only the work may be paused."""
        domain = all_of(negate(held), timer == 0)
        for label, kind in reversed(list(self.TIMERS.items())):
            if label == self.WORK:
                here = environment.elapsed_in_domain(timer, self._duration(label), self.pause,
                                                     held)
            else:
                bound = [timer <= self._duration(label)] if kind.duration else []
                here = all_of(negate(held), timer >= 0, *bound)
            domain = ite(pc == label, here, domain)
        return domain

    def sort_requests(self, s: S, *fields: str) -> S:
        """``s`` with its requests reordered by their values of the per-request ``fields``
        (tuples indexed by request), compared in that order: the canonical form of a state
        whose requests are interchangeable."""
        keys = list(zip(*(getattr(s, field) for field in fields), strict=True))
        ordered = sorted(keys)  # a request's key is all it has: sort the keys themselves
        if ordered == keys:
            return s  # already canonical (the common case): no copy
        return evolve(s, **dict(zip(fields, map(tuple, zip(*ordered, strict=True)),
                                    strict=True)))

    # -- narration ---------------------------------------------------------------------------

    def facts(self, before: S, after: S, r: int | None) -> Mapping[str, str]:
        """Facts a narration line may name (``{owner}``) beyond the layer's own (``{db}``, the
        database version after the step): none by default."""
        return {}

    def environment_says(self, name: str) -> tuple[Say, ...]:
        """The narration of the environment's action ``name``: the program's
        ``ENVIRONMENT_SAYS``, else the layer's: a write commits a version and invalidates the
        key in the cache server (the first participant), a pause stalls the work, a crash kills
        the request."""
        if name in self.ENVIRONMENT_SAYS:
            return self.ENVIRONMENT_SAYS[name]
        if name == "Write" and self.PARTICIPANTS:
            server, db = self.PARTICIPANTS[0], self.PARTICIPANTS[-1]
            return (note("a writer commits {db}", over=db),
                    Say(db, server, "delete key (invalidate)"))
        return _ENVIRONMENT_NOTES.get(name, ())

    def narrate(self, a: Action, before: S, after: S) -> tuple[Message, ...]:
        """What action ``a`` says on the wire, from the program's :class:`Say` lines."""
        name = type(a).__name__
        step = self._steps.get(type(a)) or self._background.get(type(a))
        says = step.says if step is not None else self.environment_says(name)
        r = getattr(a, "r", None)
        values: dict[str, Any] = {k: shown(v) for k, v in self.params.items()}
        if hasattr(after, "db"):
            values["db"] = f"v{after.db}"
        values.update(self.facts(before, after, r))
        who = f"r{r}" if r is not None else ""
        values["r"] = who
        out = []
        for say in says:
            if say.only and not values.get(say.only):
                continue
            # a participant may be a fact too (``"{server}"``: the instance a request is at)
            src = who if say.src == REQUEST else fill(say.src, values)
            dst = who if say.dst == REQUEST else fill(say.dst, values)
            out.append(Message(src, dst, fill(say.text, values), say.reply))
        return tuple(out)

    def observation(self, s: S, filled: Bool, *, cached: Int | None = None, background: Int = 0,
                    foreign: Bool | None = None) -> Observation:
        """The facts every property reads, from what the layer knows of every program: work
        running at the ``WORK`` label (plus ``background`` work), starts, who is answered
        (``DONE``; ``ERRORS`` among them are answers but not service) or still waiting
        (arrived: left ``ARRIVAL``), and, with writers, whether the cache (``filled``, holding
        version ``cached``) is stale. A policy's ``observe`` passes what only it knows.

        With an arrival window, a request that had not arrived when the window closed never
        will: it is owed no answer (it is not part of this run's load)."""
        pcs = s.pc  # type: ignore[attr-defined]
        db: Int = s.db  # type: ignore[attr-defined]
        served = [d for d in self.DONE if d not in self.ERRORS]
        over = self.arrivals_over(s)

        def owed(pc: Int, outcomes: Sequence[int]) -> Bool:
            missing = negate(any_of(*(pc == d for d in outcomes)))
            return missing if over is False else all_of(
                missing, any_of(pc != self.ARRIVAL, negate(over)))

        return Observation(
            rebuilding=ops.count(pc == self.WORK for pc in pcs) + background,
            rebuild_starts=s.starts,  # type: ignore[attr-defined]
            foreign_release=foreign,
            cache_filled=filled,
            unserved=ops.count(owed(pc, served) for pc in pcs),
            unanswered=ops.count(owed(pc, self.DONE) for pc in pcs),
            waiting=waiting(pcs, self.ARRIVAL, self.DONE),
            stale=environment.stale(filled, cached, db)
            if self.writers and cached is not None else None,
        )

    def participants(self) -> tuple[str, ...]:
        """Who the program talks to, the cache server first and the database last."""
        return self.PARTICIPANTS

    # -- the server's view (replay on a real server) ---------------------------------------

    def sends(self, a: Action) -> tuple[Send, ...] | None:
        """The commands action ``a`` sends in this configuration, in order; ``()`` for an
        in-process step; ``None`` when the step cannot be replayed on a server (or the program
        does not say what its environment's actions send)."""
        chosen = self._chosen_sends(a)
        if chosen is None or any(not c.op for c in chosen):
            return None
        return chosen

    def why_not_sent(self, a: Action) -> str:
        """Why action ``a`` cannot be replayed on a server, as the program says it
        (:func:`not_on_a_server`); ``""`` when it can, or the program gives no reason."""
        return next((c.why for c in self._chosen_sends(a) or () if not c.op), "")

    def _chosen_sends(self, a: Action) -> tuple[Send, ...] | None:
        step = self._steps.get(type(a)) or self._background.get(type(a))
        declared = step.sends if step is not None else self.ENVIRONMENT_SENDS.get(
            type(a).__name__)
        if declared is None:
            return None
        return tuple(c for c in declared if c.when is None or c.when(self.cfg))

    def keyspace(self, s: S) -> Mapping[str, tuple[int | None, int | None]]:
        """The program's ``KEYS`` as a server holds them in state ``s``: per key, the token it
        holds (``None`` when absent; any value for a key compared by presence) and its remaining
        life in ticks (``None`` without expiry). A program that sends commands supplies it."""
        raise NotImplementedError(f"{self.name} does not say how its state maps to server keys")

    def servers(self) -> tuple[str, ...]:
        """The servers the program's commands go to (:attr:`Send.server`), in order: the first
        participant by default. A program that talks to several independent servers (Redlock's
        instances) names each."""
        return self.participants()[:1]

    def keyspaces(self, s: S) -> Mapping[str, Mapping[str, tuple[int | None, int | None]]]:
        """:meth:`keyspace` per server: what each of :meth:`servers` holds in state ``s``
        (by default the one server holds :meth:`keyspace`)."""
        return {server: self.keyspace(s) for server in self.servers()[:1]}

    def servers_of(self, send: Send, a: Action, before: S) -> tuple[str, ...]:
        """The servers command ``send`` of action ``a`` goes to, from the state before the
        step (see :attr:`Send.server`)."""
        servers = self.servers()
        target = send.server
        if not target:
            return servers[:1]
        if target == "*":
            return servers
        if target.startswith("{") and target.endswith("}"):
            name = target[1:-1]
            if hasattr(a, name):
                return (str(getattr(a, name)),)
            index = getattr(before, name)[a.r]  # type: ignore[attr-defined]
            return (servers[index],)
        return (target,)

    def items(self, s: S) -> Mapping[str, Item]:
        """The program's ``MEMCACHED_KEYS`` as a memcached holds them in state ``s``: per key,
        its :class:`~models.memcached_item.Item` (absent, a stub or a value; stale and won
        flags, remaining ticks, CAS id; the CAS is ignored for a key compared by ``"value"``).
        A program that sends meta commands supplies it (``replay --memcached``)."""
        raise NotImplementedError(f"{self.name} does not say how its state maps to memcached "
                                  "items")

    def commands(self) -> Sequence[tuple[str, str]]:
        """Each step's action name and the real command it models (``herdproof list``)."""
        return [(step.action.__name__, step.command) for step in (*self.STEPS, *self.BACKGROUND)
                if step.command]


def environment_params(writers: int = 0) -> tuple[Param, ...]:
    """The fault environment's parameters, which every program's ``PARAMS`` ends with:
    ``pause``, ``crash``, ``crashes`` and ``writers`` (with the policy's default writers)."""
    return (environment.PAUSE, environment.CRASH, environment.CRASHES,
            replace(environment.WRITERS, default=writers))


#: The arrival window, which :func:`with_arrivals` gives every program (``herdproof list``
#: shows them with each policy's own): ticks after the expiry, which every model places at the
#: start of its run (the moment the key went missing or stale). Requests arrive at ticks
#: ``arrive_from <= t < arrive_before``; the defaults, 0 and 0, are "any time".
ARRIVE_FROM = Param("arrive_from", int, 0, "requests arrive no earlier than this many ticks "
                    "after the expiry", minimum=0, timing=True)
ARRIVE_BEFORE = Param("arrive_before", int, 0, "requests arrive before this many ticks after "
                      "the expiry; 0 = no end", minimum=0, timing=True)
ARRIVAL_PARAMS: tuple[Param, ...] = (ARRIVE_FROM, ARRIVE_BEFORE)
_ARRIVAL_NAMES = frozenset(p.name for p in ARRIVAL_PARAMS)


def recorded(params: Mapping[str, ParamValue]) -> dict[str, ParamValue]:
    """The parameters a model and its traces record: every one, except the arrival window's
    at their defaults (no window), so a run without a window is recorded as it was before the
    window existed. Reading a trace resolves the rest again."""
    return {name: value for name, value in params.items()
            if name not in _ARRIVAL_NAMES or ops.is_symbolic(value) or value != 0}


def with_arrivals(spec: PolicySpec) -> PolicySpec:
    """``spec`` with the arrival window's parameters after its own, and a ``build`` that hands
    the policy its own parameters and then confines the program's arrivals
    (:meth:`ProgramModel.confine_arrivals`): the registry applies it to every policy, so no
    policy lists or reads them.

    Arrival shapes, and who they confine:

    - a request's steps at its ``ARRIVAL`` label (its first step: it arrives and asks the
      cache) are enabled only inside the window; a request still there once the window has
      closed never arrives, and is owed nothing (SERVED, ANSWERED);
    - a background actor's step is confined only when it says it ``arrives`` (:class:`Step`):
      an actor coming from outside, like a caller of ``Forget``. The work a request started (a
      refresh, an update) is not: it is due when it is due, and holds the clock until it acts;
    - writers are not: they are the fault environment, like pauses and crashes, and strike at
      any tick. A claim "inside the window" is about the load the window lets in, and must
      still hold whatever the writers do (a purge inside the stale window is such a case).
    """
    names = {p.name for p in spec.params}
    if names & {p.name for p in ARRIVAL_PARAMS}:
        return spec
    return replace(spec, params=(*spec.params, *ARRIVAL_PARAMS),
                   build=partial(_build_with_arrivals, spec.build))


def _build_with_arrivals(build: Callable[[Mapping[str, ParamValue], str], Any],
                         params: Mapping[str, ParamValue], name: str) -> Any:
    """A policy's model from ``params``: its own ones to ``build``, the window to the model."""
    own = {k: v for k, v in params.items() if k not in _ARRIVAL_NAMES}
    model = build(own, name)
    start, end = params.get("arrive_from", 0), params.get("arrive_before", 0)
    if isinstance(model, ProgramModel):
        model.confine_arrivals(start, end)
    elif ops.is_symbolic(start) or ops.is_symbolic(end) or start or end:
        raise InvalidParameter(f"{name} is not written as a request program, so its "
                               "arrivals cannot be confined (arrive_from, arrive_before)")
    return model


def pauses(cfg: Any) -> bool:
    """The configuration lets the environment pause due work (``pause`` > 0, or symbolic):
    the ``when`` of a background actor's pause step."""
    pause = getattr(cfg, "pause", 0)
    return ops.is_symbolic(pause) or pause > 0


def crashes(cfg: Any) -> bool:
    """The configuration allows a crash: the ``when`` of a background actor's crash step."""
    return environment.crash_bound(bool(getattr(cfg, "crash", False)),
                                   int(getattr(cfg, "crashes", 0))) > 0


#: The layer's narration of a pause and a crash (a program may say otherwise).
_ENVIRONMENT_NOTES: Mapping[str, tuple[Say, ...]] = {
    "Pause": (note("stalls for a tick (a GC or scheduling pause)"),),
    "Crash": (note("crashes: never writes, never releases"),)}


def _environment_guard(a: Action, model: Any, s: Any, r: int) -> Bool:
    """A pause's or crash's guard, shaped like a step's (the index calls both alike)."""
    guard: Bool = model.enabled(s, a)
    return guard


def _environment_effect(a: Action, model: Any, s: Any, r: int) -> Any:
    return model.apply(s, a)


def _arriving(guard: Callable[[Any, Any, int], Bool] | None, model: Any, s: Any, r: int) -> Bool:
    """A step's guard at the arrival label while an arrival window is set: the window is open
    (concrete states only: the compiled successor function's)."""
    if not model.arrivals_open(s):
        return False
    return True if guard is None else guard(model, s, r)


def _set(values: tuple[Any, ...], i: int, value: Any) -> tuple[Any, ...]:
    if type(values) is not tuple:  # the quantified encoding's array of per-request values
        return ops.set_at(values, i, value)
    return (*values[:i], value, *values[i + 1:])


def evolve(s: S, /, **changes: Any) -> S:
    """``dataclasses.replace(s, **changes)``, about three times faster on the search's hot
    path: a program's effects build one new state per successor.

    For a frozen dataclass with ``__slots__`` (every program state, and the stores in them) a
    function compiled once per class makes the copy, filling each slot through its descriptor
    instead of going through ``__init__`` (a frozen class's ``__init__`` sets every field with
    ``object.__setattr__``). Any other class, or one whose ``__init__`` does more than set its
    fields (``__post_init__``, ``init=False`` fields), goes through ``dataclasses.replace``.
    The result is the same: an equal instance of the same class, or the same ``TypeError``
    for a name that is no field.

    >>> from herdproof.models.redis_lock import RedisLock
    >>> evolve(RedisLock(owner=2, remaining=3), remaining=1)
    RedisLock(owner=2, remaining=1)
    """
    cls = type(s)
    copy = _EVOLVERS.get(cls)
    if copy is None:
        copy = _EVOLVERS[cls] = _compile_evolve(cls)
    evolved: S = copy(s, **changes)
    return evolved


_EVOLVERS: dict[type, Callable[..., Any]] = {}
_UNCHANGED = object()


def _compile_evolve(cls: type) -> Callable[..., Any]:
    """The copy-with-changes function of ``cls`` (see :func:`evolve`)."""
    fields = dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ()
    slotted = bool(fields) and all(
        f.init and f.name.isidentifier()
        and type(inspect.getattr_static(cls, f.name, None)) is types.MemberDescriptorType
        for f in fields) and not hasattr(cls, "__post_init__")
    if not slotted:
        return dataclasses.replace
    names = [f.name for f in fields]
    setters = {f"_set_{n}": inspect.getattr_static(cls, n).__set__ for n in names}
    lines = [f"def evolve(_old_, /, *, {', '.join(f'{n}=_UNCHANGED' for n in names)}):",
             "    _new_ = _new(_cls)",
             *(f"    _set_{n}(_new_, _old_.{n} if {n} is _UNCHANGED else {n})" for n in names),
             "    return _new_"]
    namespace: dict[str, Any] = {"_UNCHANGED": _UNCHANGED, "_new": object.__new__,
                                 "_cls": cls, **setters}
    exec("\n".join(lines), namespace)  # generated from the class's own fields
    compiled: Callable[..., Any] = namespace["evolve"]
    return compiled

