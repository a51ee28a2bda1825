"""``redlock``: Redlock, the distributed lock of the Redis documentation ("Distributed Locks with
Redis"), on ``instances`` independent Redis masters, with the faults its critics name.

The algorithm, as the documentation gives it, for a client that wants the lock:

1. It gets the current time, ``t1`` (``Start``).
2. It tries the ``instances`` masters in turn with the same key and a random value,
   ``SET lock <token> NX PX <ttl>``, each attempt with a timeout small against the ``ttl``
   (``attempt`` ticks per instance), moving to the next one at once when an instance is down
   or already holds the key (``SetOk``, ``SetTaken``, ``SetRefused``).
3. It computes the time elapsed since ``t1``. The lock is acquired iff a majority
   (``instances // 2 + 1``) answered OK *and* the validity time ``ttl - elapsed - drift`` is
   positive (``Acquired``); ``drift`` is the documentation's ``CLOCK_DRIFT``, the most an
   instance's clock can gain on the client's over one ``ttl``.
4. Otherwise it releases on *all* instances, even those it believes it did not lock
   (``NotAcquired``). It does not retry here (the documentation retries after a random delay;
   a retry is a new request).
5. The holder does its protected work, then releases on all instances with the owner-checked
   script ``if redis.call("get",KEYS[1])==ARGV[1] then return redis.call("del",KEYS[1])
   else return 0 end`` (``Finish``).

The holder's protected work takes ``work`` ticks and ends with a write to the protected
resource (the ``DB`` participant). A client with ``work`` ticks of work needs a validity of at
least ``work``: the documentation's "validity is positive" at ``work = 1`` (the default), and
in general the check a client makes before it uses the lock for that long.

The faults, each bounded by a parameter and off by default:

- Clock drift (``drift``): an instance's clock runs fast, so a key there expires early; as a
  bounded rate difference in integer ticks, an instance may gain at most ``drift`` ticks over
  one key's life (``FastClock(server=..)``: one extra tick). The fast clock may spend its budget
  at any moment of the key's life, which covers every schedule a rate bound allows (and more),
  so "holds" is proved for all of them.
- A clock jump forward (``jumps``, ``jump``): an instance's clock leaps ``jump`` ticks at once
  (an administrator's or NTP's step, Kleppmann's example): its key loses ``jump`` ticks of
  life, and expires at once when fewer were left (``ClockJump(server=..)``).
- A restart without persistence (``restarts``, ``rejoin_delay``): an instance forgets its keys
  (``Restart(server=..)``) and accepts no command for ``rejoin_delay`` ticks (the
  documentation's *delayed restarts*: unavailable for a bit more than the longest ``ttl``, so
  every lock it knew of has expired everywhere when it rejoins).
- A client pause (``client_pause``, ``pause_at``): a GC or scheduling pause of the client, of
  exactly ``client_pause`` ticks, once per request, either ``before`` the validity check (the
  check then counts the pause in ``elapsed``) or ``after`` it, before the protected work (the
  client acts on a validity measured before it slept).

What is abstracted away, and why that is safe:

- One lock key; the token is the request id (unique, as the documentation's random value is).
- An attempt takes exactly ``attempt`` ticks, and the instance executes the ``SET`` as it ends
  (the reply follows at once). ``elapsed`` is measured from ``t1``, before the first attempt
  began, so wherever inside an attempt the server executes it, the client's measure
  over-estimates the key's age, as it does in the real algorithm.
- Every client tries the instances in the same order (as a client configured with one list of
  servers does), each attempt the same length. In small instances of the model this keeps a
  later client behind an earlier one: with 2 requests on 3 instances even a 1-tick rejoin
  delay keeps MUTEX. The delayed-rejoin proof does not rely on that: it shows MUTEX for every
  ``rejoin_delay > ttl - drift`` by an invariant over every interleaving.
- Releasing on all instances is one step (the client sends every script before the next
  tick); between the scripts another client could only lock an instance the releaser no
  longer uses.
- A down instance holds no key (a restart forgets them), so a release sent to it changes
  nothing whether it is refused or answered with 0.

Meant to fail: MUTEX (at most one request that holds the lock acts on the protected resource)
and NOLAPSED (no write from a request whose keys no longer form a majority), with a restart
without a rejoin delay (the restarted instance forgets the holder's key and grants it to a
second client, which now has a majority too), with a clock jump (likewise, by expiry), and with
a client pause after the validity check longer than what is left of it (the keys expire while
the holder sleeps). They hold with none of these, and with the pause before the check, which is
what the documentation's validity time is for, and with a pause after the check that the keys
outlive (proved for ``ttl >= (instances - 1) * attempt + drift + work + client_pause``: the
first key was set one attempt after ``t1``). The delayed rejoin keeps MUTEX (proved for every
``rejoin_delay > ttl - drift``) but not NOLAPSED: the holder writes when its key is on too few
instances, though nobody else could take the lock meanwhile. REBUILDS<=1 fails by design: two
requests may each hold the lock, one after the other.

Replay on real servers (``herdproof replay TRACE --redis URL1,URL2,...``, one URL per
instance): every ``SET NX PX`` and every compare-and-delete is sent to its instance; a tick
rewrites every TTL on every server. A clock jump or a fast clock is replayed as that many ticks
passing on that server alone (its TTLs rewritten with ``PEXPIRE``: exactly what an early expiry
on that instance is); a restart without persistence deletes the instance's keys (the tests
kill and restart a ``redis-server`` without persistence instead). A command to an instance that
is still rejoining is not replayed: the replay keeps every server up (``SetRefused``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import ClassVar

from herdproof.models import ops, policy, program
from herdproof.models.core import Action, Invariant
from herdproof.models.errors import InvalidParameter
from herdproof.models.narration import REQUEST, Message, Say, answer, call, note
from herdproof.models.observation import Observation
from herdproof.models.ops import Bool, Int, all_of, any_of, implies, ite, negate
from herdproof.models.params import Param, ParamValue
from herdproof.models.program import RequestAction, Send, Step, Timer, not_on_a_server
from herdproof.models.symmetry import Symmetry

PARAMS: tuple[Param, ...] = (
    Param("requests", int, 2, "concurrent clients wanting the lock", minimum=1),
    Param("instances", int, 5, "independent Redis masters (the documentation's 5)", minimum=1),
    Param("ttl", int, 6, "the lock's life in ticks (SET ... PX <ttl>)", minimum=1, timing=True),
    Param("attempt", int, 1, "ticks one SET attempt takes (the per-instance time)", minimum=0,
          timing=True),
    Param("drift", int, 0, "ticks an instance's clock may gain over one key's life; the client "
          "subtracts it from the validity (CLOCK_DRIFT)", minimum=0, timing=True),
    Param("work", int, 1, "ticks the holder's protected work takes; it needs that much validity",
          minimum=1, timing=True),
    Param("restarts", int, 0, "at most this many instance restarts without persistence "
          "(the instance forgets its keys)", minimum=0),
    Param("rejoin_delay", int, 0, "ticks a restarted instance refuses commands before it "
          "rejoins (the documentation's delayed restart)", minimum=0, timing=True),
    Param("jumps", int, 0, "at most this many clock jumps forward on an instance holding the "
          "key", minimum=0),
    Param("jump", int, 100, "ticks an instance's clock jumps forward (the key loses that much "
          "life)", minimum=1),
    Param("client_pause", int, 0, "ticks a client may be paused (a GC pause), once per request",
          minimum=0, timing=True),
    Param("pause_at", str, "after", "the client pause strikes before or after the validity "
          "check", choices=("before", "after")),
)

NO_OWNER = -1  # an instance holding no key
MAX_INSTANCES = 99


class PC(IntEnum):
    """Where a request is in its program."""

    IDLE = 0       # not arrived yet
    ACQUIRING = 1  # trying instance ``at[r]``: the attempt has run ``timer[r]`` ticks
    CHECK = 2      # every instance tried: next, the validity check (urgent)
    PAUSED = 3     # the client is paused for ``client_pause`` ticks (``timer[r]`` so far)
    ACTING = 4     # holds the lock and does its protected work (``timer[r]`` ticks so far)
    DONE = 5       # did its work, wrote the resource and released on all instances
    GAVE_UP = 6    # not acquired (no majority, or no validity left): released on all instances


IDLE, ACQUIRING, CHECK, PAUSED, ACTING, DONE, GAVE_UP = tuple(PC)


@dataclass(frozen=True, slots=True)
class RedlockConfig:
    """The parameters of one instance; timing constants may be z3 terms in symbolic runs."""

    requests: int
    instances: int
    ttl: Int
    attempt: Int
    drift: Int
    work: Int
    restarts: int
    rejoin_delay: Int
    jumps: int
    jump: int
    client_pause: Int
    pause_at: str

    @classmethod
    def from_params(cls, params: Mapping[str, ParamValue]) -> RedlockConfig:
        values = dict(params)
        if int(values["instances"]) > MAX_INSTANCES:
            raise InvalidParameter(
                f"parameter `instances` of redlock must be at most {MAX_INSTANCES}: every "
                f"instance's key is state (the documentation uses 5), got {values['instances']}")
        return cls(**values)  # type: ignore[arg-type]

    @property
    def majority(self) -> int:
        return self.instances // 2 + 1


@dataclass(frozen=True, slots=True)
class RedlockState(program.RequestsState):
    """One moment of the race.

    Per request: ``at[r]`` the instance it tries next (while acquiring), ``got[r]`` the OK
    replies it has counted, ``paused[r]`` it has been paused before the check (whose
    ``elapsed`` then includes the pause). Per instance: ``owner[i]`` the request whose key it
    holds (``NO_OWNER``), ``life[i]`` the key's remaining life in ticks (alive while ``>= 0``),
    ``skew[i]`` the extra ticks its fast clock has taken from the key so far, ``down[i]`` ticks
    until a restarted instance accepts commands again, and ``forgot[i]`` (ghost, for the
    proofs) whose key it forgot in that restart, while that request still uses the lock.
    ``restarted`` and ``jumped`` count the faults; ``written`` (the protected resource was
    written) and ``lapsed`` (a write came from a request whose keys were no longer a
    majority) are ghost history for the properties.
    """

    at: tuple[Int, ...]
    got: tuple[Int, ...]
    paused: tuple[Bool, ...]
    owner: tuple[Int, ...]
    life: tuple[Int, ...]
    skew: tuple[Int, ...]
    down: tuple[Int, ...]
    forgot: tuple[Int, ...]
    restarted: Int
    jumped: Int
    written: Bool
    lapsed: Bool


# -- a request's steps ------------------------------------------------------------------------

class Start(RequestAction):
    """Request r takes the current time ``t1`` and starts trying the instances; enabled when r
    has not arrived."""


class SetOk(RequestAction):
    """Request r's ``SET lock NX PX`` on instance ``at[r]`` succeeds; enabled when the attempt
    has taken its time and that instance is up and holds no live key."""


class SetTaken(RequestAction):
    """Request r's ``SET lock NX PX`` on instance ``at[r]`` answers nil; enabled when the
    attempt has taken its time and that instance holds another request's live key."""


class SetRefused(RequestAction):
    """Request r cannot reach instance ``at[r]``; enabled when the attempt has taken its time
    and that instance is restarting (before it rejoins)."""


class Acquired(RequestAction):
    """Request r holds the lock and starts its protected work; enabled at the check when a
    majority answered OK and the validity ``ttl - elapsed - drift`` is at least ``work``."""


class AcquiredThenPaused(RequestAction):
    """Request r passes the check as ``Acquired`` does, and its process is paused before it
    acts; enabled with ``pause_at=after`` and a pause allowed."""


class PausedBeforeCheck(RequestAction):
    """Request r's process is paused before the validity check; enabled at the check with
    ``pause_at=before`` when r has not been paused yet."""


class NotAcquired(RequestAction):
    """Request r fails the check (no majority, or too little validity left) and releases on
    all instances; enabled at the check otherwise."""


class Resume(RequestAction):
    """Request r's pause is over: it goes on to the check (before) or to its work (after);
    enabled when the pause has lasted ``client_pause`` ticks."""


class Finish(RequestAction):
    """Request r's protected work is done: it writes the resource and releases on all
    instances; enabled when the work has taken ``work`` ticks."""


# -- the faults: one instance each ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class InstanceFault(Action):
    """A fault striking one instance, named as the narration names it (``redis2``)."""

    server: str
    by_environment: ClassVar[bool] = True


class FastClock(InstanceFault):
    """The instance's fast clock gains a tick on its key (which expires if it had none left);
    enabled while the key lives and has lost fewer than ``drift`` ticks this way."""


class ClockJump(InstanceFault):
    """The instance's clock jumps ``jump`` ticks forward: its key loses that much life, and
    expires if less was left; enabled while it holds a key and jumps remain."""


class Restart(InstanceFault):
    """The instance restarts without persistence: it forgets its key and refuses commands for
    ``rejoin_delay`` ticks; enabled while it is up, restarts remain, and the restart changes
    something (it holds a key, or it will be unavailable for a while)."""


FAULTS: tuple[type[InstanceFault], ...] = (FastClock, ClockJump, Restart)
FAULT_COMMANDS: Mapping[type[InstanceFault], str] = {
    FastClock: "(drift > 0) the instance's clock runs fast: its key loses one more tick",
    ClockJump: "(jumps > 0) the instance's clock jumps <jump> ticks forward: its key loses "
               "that much life",
    Restart: "(restarts > 0) the instance restarts without AOF or RDB: its keys are gone; it "
             "refuses connections for <rejoin_delay> ticks"}


# -- the program: one request, step by step ---------------------------------------------------

DB = "DB"
SERVER = "{server}"  # the instance a request is at (a fact of the step)
SET_NX = (Send("SET NX PX", "lock", token=True, ticks="ttl", server="{at}"),)
RELEASE_ALL = (Send("CAD", "lock", token=True, server="*"),)
SET = call(SERVER, "SET lock {r} NX PX {ttl}")
REFUSED_ON_A_SERVER = (
    "a restarting instance refuses connections until it rejoins; the replay keeps every server "
    "up, so it cannot send a command that must be refused")
CHECK_SAYS = "{got} of {instances} OK (majority {majority}), elapsed {elapsed}: validity " \
    "{ttl} - {elapsed} - {drift} = {validity}"


def _pausing(cfg: RedlockConfig) -> bool:
    return ops.is_symbolic(cfg.client_pause) or cfg.client_pause > 0


def _pausing_before(cfg: RedlockConfig) -> bool:
    return _pausing(cfg) and cfg.pause_at == "before"


def _pausing_after(cfg: RedlockConfig) -> bool:
    return _pausing(cfg) and cfg.pause_at == "after"


def _rejoining(cfg: RedlockConfig) -> bool:
    return cfg.restarts > 0 and (ops.is_symbolic(cfg.rejoin_delay) or cfg.rejoin_delay > 0)


STEPS: tuple[Step[RedlockState], ...] = (
    Step(Start, at=IDLE, command="t1 = now()", sends=(),
         says=(note("t1 = now: tries the {instances} instances in turn, {attempt} tick(s) "
                    "each"),),
         effect=lambda m, s, r: m.goto(s, r, ACQUIRING)),
    Step(SetOk, at=ACQUIRING, command="SET lock <token> NX PX <ttl> on the next instance: OK",
         sends=SET_NX, says=(SET, answer(SERVER, "OK ({got} so far)")),
         guard=lambda m, s, r: all_of(m.attempted(s, r), m.free(s, s.at[r])),
         effect=lambda m, s, r: m.next_instance(m.lock_at(s, r), r, won=True)),
    Step(SetTaken, at=ACQUIRING,
         command="SET lock <token> NX PX <ttl> on the next instance: nil (held)",
         sends=SET_NX, says=(SET, answer(SERVER, "nil (holds {holder}'s key)")),
         guard=lambda m, s, r: all_of(m.attempted(s, r), m.taken(s, s.at[r])),
         effect=lambda m, s, r: m.next_instance(s, r, won=False)),
    Step(SetRefused, at=ACQUIRING, when=_rejoining,
         command="SET lock <token> NX PX <ttl> on the next instance: connection refused",
         sends=not_on_a_server(REFUSED_ON_A_SERVER),
         says=(SET, answer(SERVER, "connection refused (restarting: rejoins in {down} "
                                   "tick(s))")),
         guard=lambda m, s, r: all_of(m.attempted(s, r), m.pick(s.down, s.at[r]) > 0),
         effect=lambda m, s, r: m.next_instance(s, r, won=False)),
    Step(Acquired, at=CHECK, command="majority and validity = ttl - elapsed - drift >= work: "
         "the lock is held", sends=(),
         says=(note(CHECK_SAYS + " >= {work}: holds the lock"),
               call(DB, "protected work ({work} tick(s))")),
         guard=lambda m, s, r: m.acquires(s, r),
         effect=lambda m, s, r: m.act(m.checked(s, r), r)),
    Step(AcquiredThenPaused, at=CHECK, when=_pausing_after,
         command="the check passes, then the client is paused before it acts", sends=(),
         says=(note(CHECK_SAYS + " >= {work}: holds the lock"),
               note("paused for {client_pause} tick(s) before it acts (GC)")),
         guard=lambda m, s, r: m.acquires(s, r),
         effect=lambda m, s, r: m.goto(m.checked(s, r), r, PAUSED)),
    Step(PausedBeforeCheck, at=CHECK, when=_pausing_before,
         command="the client is paused before the validity check", sends=(),
         says=(note("paused for {client_pause} tick(s) before the validity check (GC)"),),
         guard=lambda m, s, r: negate(s.paused[r]),
         effect=lambda m, s, r: replace(m.goto(s, r, PAUSED),
                                        paused=ops.set_at(s.paused, r, True))),
    Step(NotAcquired, at=CHECK, command="no majority, or too little validity: unlock on all "
         "instances (the compare-and-delete script)", sends=RELEASE_ALL,
         says=(note(CHECK_SAYS + ": not acquired ({why})"),),
         guard=lambda m, s, r: negate(m.acquires(s, r)),
         effect=lambda m, s, r: m.goto(m.release_all(m.checked(s, r), r), r, GAVE_UP)),
    Step(Resume, at=PAUSED, when=_pausing, command="the pause ends", sends=(),
         says=(note("resumes after {client_pause} tick(s)"),
               call(DB, "protected work ({work} tick(s))", only="acts")),
         guard=lambda m, s, r: m.paused_enough(s, r),
         effect=lambda m, s, r: m.resume(s, r)),
    Step(Finish, at=ACTING, command="write the resource, then unlock on all instances (the "
         "compare-and-delete script)", sends=RELEASE_ALL,
         says=(Say(REQUEST, DB, "write (its work is done)"),
               note("its key is on {kept} of {instances} instances: it no longer holds the lock",
                    over=DB, only="lapsed")),
         guard=lambda m, s, r: m.completes(s, r),
         effect=lambda m, s, r: m.finish(s, r)),
)


class RedlockModel(program.ProgramModel[RedlockConfig, RedlockState]):
    """The ``redlock`` transition system for one configuration, compiled from :data:`STEPS`,
    with the instance faults as environment actions."""

    STEPS = STEPS
    TIMERS: ClassVar[Mapping[int, Timer]] = {
        ACQUIRING: Timer(up=True, duration="attempt"),
        PAUSED: Timer(up=True, duration="client_pause"),
        ACTING: Timer(up=True, duration="work")}
    URGENT = (CHECK,)
    WORK = ACTING
    DONE = (DONE, GAVE_UP)
    KEYS = (("lock", "token"),)
    ENVIRONMENT_SENDS: ClassVar[Mapping[str, tuple[Send, ...]]] = {
        "FastClock": (Send("ADVANCE", "lock", server="{server}"),),
        "ClockJump": (Send("ADVANCE", "lock", ticks="jump", server="{server}"),),
        "Restart": (Send("FORGET", "lock", server="{server}"),)}

    # -- the instances -----------------------------------------------------------------------

    def servers(self) -> tuple[str, ...]:
        return tuple(f"redis{i + 1}" for i in range(self.cfg.instances))

    def participants(self) -> tuple[str, ...]:
        """Each instance, then the protected resource."""
        return (*self.servers(), DB)

    def index_of(self, server: str) -> int:
        return self.servers().index(server)

    # -- the compiled contract: the faults beside the program's steps ---------------------------

    def action_types(self) -> Mapping[str, type[Action]]:
        return {**super().action_types(), **{t.__name__: t for t in FAULTS}}

    def _build_actions(self) -> tuple[Action, ...]:
        cfg = self.cfg
        kinds: list[type[InstanceFault]] = []
        if ops.is_symbolic(cfg.drift) or cfg.drift > 0:
            kinds.append(FastClock)
        if cfg.jumps > 0:
            kinds.append(ClockJump)
        if cfg.restarts > 0:
            kinds.append(Restart)
        faults = [kind(server=server) for kind in kinds for server in self.servers()]
        tick, *rest = super()._build_actions()
        return (tick, *faults, *rest)

    def enabled(self, s: RedlockState, a: Action) -> Bool:
        if isinstance(a, InstanceFault):
            return self.fault_enabled(s, type(a), self.index_of(a.server))
        return super().enabled(s, a)

    def apply(self, s: RedlockState, a: Action) -> RedlockState:
        if isinstance(a, InstanceFault):
            return self.fault(s, type(a), self.index_of(a.server))
        return super().apply(s, a)

    def fault_enabled(self, s: RedlockState, kind: type[InstanceFault], i: int) -> Bool:
        cfg = self.cfg
        holds = s.owner[i] != NO_OWNER
        if kind is FastClock:
            return all_of(holds, s.skew[i] < cfg.drift)
        if kind is ClockJump:
            return all_of(holds, s.jumped < cfg.jumps)
        return all_of(s.down[i] == 0, s.restarted < cfg.restarts,
                      any_of(holds, cfg.rejoin_delay > 0))

    def fault(self, s: RedlockState, kind: type[InstanceFault], i: int) -> RedlockState:
        if kind is FastClock:
            left = s.life[i] - 1
            return self.key_at(s, i, ite(left < 0, NO_OWNER, s.owner[i]),
                               ite(left < 0, 0, left), ite(left < 0, 0, s.skew[i] + 1))
        if kind is ClockJump:
            left = s.life[i] - self.cfg.jump
            jumped = self.key_at(s, i, ite(left < 0, NO_OWNER, s.owner[i]),
                                 ite(left < 0, 0, left), ite(left < 0, 0, s.skew[i]))
            return replace(jumped, jumped=s.jumped + 1)
        restarted = self.key_at(s, i, NO_OWNER, 0, 0)
        return replace(restarted, down=ops.set_at(s.down, i, self.cfg.rejoin_delay),
                       forgot=ops.set_at(s.forgot, i, ite(self.cfg.rejoin_delay > 0,
                                                          s.owner[i], NO_OWNER)),
                       restarted=s.restarted + 1)

    def commands(self) -> list[tuple[str, str]]:
        """The program's steps, then the faults, each with what it does to an instance and
        the parameter that switches it on (``herdproof list``)."""
        return [*super().commands(), *((kind.__name__, FAULT_COMMANDS[kind]) for kind in FAULTS)]

    # -- the contract ------------------------------------------------------------------------

    def initial_states(self) -> tuple[RedlockState, ...]:
        n, k = self.cfg.requests, self.cfg.instances
        return (RedlockState(pc=(IDLE,) * n, timer=(0,) * n, held=(False,) * n, seen=(0,) * n,
                             at=(0,) * n, got=(0,) * n, paused=(False,) * n,
                             owner=(NO_OWNER,) * k, life=(0,) * k, skew=(0,) * k,
                             down=(0,) * k, forgot=(NO_OWNER,) * k, restarted=0, jumped=0,
                             written=False, lapsed=False,
                             db=0, starts=0, crashed=0),)

    def in_domain(self, s: RedlockState) -> Bool:
        cfg = self.cfg
        per_request = [
            all_of(pc >= IDLE, pc <= GAVE_UP, seen == 0,
                   self.timer_in_domain(pc, timer, held),
                   ite(pc == ACQUIRING, all_of(at >= 0, at < cfg.instances), at == 0),
                   got >= 0, ite(pc == ACQUIRING, got <= at, got <= cfg.instances),
                   implies(any_of(pc == IDLE, pc == ACTING, pc == DONE, pc == GAVE_UP),
                           got == 0),
                   implies(paused, all_of(cfg.pause_at == "before",
                                          any_of(pc == PAUSED, pc == CHECK))),
                   implies(pc == PAUSED, all_of(cfg.client_pause > 0, paused
                                                if cfg.pause_at == "before" else negate(paused))))
            for pc, timer, held, seen, at, got, paused in zip(
                s.pc, s.timer, s.held, s.seen, s.at, s.got, s.paused, strict=True)]
        per_instance = [
            all_of(owner >= NO_OWNER, owner < cfg.requests,
                   life >= 0, skew >= 0, skew <= cfg.drift, life + skew <= cfg.ttl,
                   implies(owner == NO_OWNER, all_of(life == 0, skew == 0)),
                   down >= 0, down <= cfg.rejoin_delay,
                   implies(down > 0, owner == NO_OWNER),
                   forgot >= NO_OWNER, forgot < cfg.requests,
                   implies(forgot != NO_OWNER, down > 0))
            for owner, life, skew, down, forgot in zip(s.owner, s.life, s.skew, s.down,
                                                       s.forgot, strict=True)]
        return all_of(*per_request, *per_instance,
                      s.restarted >= 0, s.restarted <= cfg.restarts,
                      s.jumped >= 0, s.jumped <= cfg.jumps,
                      s.db == 0, s.crashed == 0, s.starts >= 0, s.starts <= cfg.requests,
                      implies(s.lapsed, s.written))

    def observe(self, s: RedlockState) -> Observation:
        acting = ops.count(pc == ACTING for pc in s.pc)
        return replace(self.observation(s, s.written, foreign=False),
                       acting_holders=acting, lapsed_write=s.lapsed)

    def describe(self, s: RedlockState) -> dict[str, str]:
        columns = {f"r{r}": self._describe_request(s, r) for r in range(self.cfg.requests)}
        for i, server in enumerate(self.servers()):
            columns[server] = self._describe_instance(s, i)
        columns["resource"] = ("written (lapsed)" if s.lapsed else "written") if s.written \
            else "-"
        columns["starts"] = str(s.starts)
        return columns

    def invariants(self) -> tuple[Invariant, ...]:
        """Candidate facts for induction proofs; the SMT engine keeps the inductive ones.

        - key-age: a key of a request still acquiring (or at its check, or paused before it)
          has lost to time and the fast clock at most what elapsed since its ``SET``, which
          ended the instance's attempt: ``elapsed`` less ``(i + 1) * attempt`` on instance
          ``i``.
        - counted-keys: while that request still has ``work`` ticks of validity, every OK it
          counted is a key it still holds, on an instance it has tried, or one a restart
          made that instance forget.
        - forgot-age: such an instance restarted after ``t1``, so it stays down at least
          ``rejoin_delay - elapsed`` more ticks.
        - holder-keys: on a majority, an acting request's key lives for the rest of its work
          even if the fast clocks spend all the drift they have left, or the instance that
          forgot it stays down longer than that (true when ``rejoin_delay > ttl - drift``).
        - paused-holder-keys: the same for a holder paused after its check, over the pause
          and the work still ahead of it (true when the validity left covers both).
        - no-stray-keys: a request that has not arrived, or has finished, holds no key and
          no restarting instance forgot one of its keys.
        - starts: a request starts work at most once; those acting now started.
        - no-lapse: no write came from a request whose keys were no longer a majority.
        Together: two requests cannot both have a majority, so at most one acts (MUTEX), and
        the holder still holds the lock when it writes (NOLAPSED).
        """
        cfg = self.cfg
        n, k = range(cfg.requests), range(cfg.instances)

        def each(check: Callable[[RedlockState, int], Bool]) -> Callable[[RedlockState], Bool]:
            return lambda s: all_of(*(check(s, r) for r in n))

        def before_check(s: RedlockState, r: int) -> Bool:
            return any_of(s.pc[r] == ACQUIRING, s.pc[r] == CHECK,
                          all_of(s.pc[r] == PAUSED, s.paused[r]))

        return (
            Invariant("key-age", each(lambda s, r: implies(before_check(s, r), all_of(*(
                implies(s.owner[i] == r, s.life[i] + s.skew[i] + self.elapsed(s, r)
                        >= cfg.ttl + (i + 1) * cfg.attempt)
                for i in k))))),
            Invariant("counted-keys", each(lambda s, r: implies(
                all_of(before_check(s, r), self.validity(s, r) >= cfg.work),
                s.got[r] == ops.count(all_of(any_of(s.owner[i] == r, s.forgot[i] == r),
                                             self.tried(s, r, i)) for i in k)))),
            Invariant("forgot-age", each(lambda s, r: implies(before_check(s, r), all_of(*(
                implies(s.forgot[i] == r, s.down[i] + self.elapsed(s, r) >= cfg.rejoin_delay)
                for i in k))))),
            Invariant("untried-free", each(lambda s, r: implies(s.pc[r] == ACQUIRING, all_of(*(
                implies(any_of(s.owner[i] == r, s.forgot[i] == r), self.tried(s, r, i))
                for i in k))))),
            Invariant("holder-keys", each(lambda s, r: implies(
                s.pc[r] == ACTING, ops.count(any_of(
                    all_of(s.owner[i] == r,
                           s.life[i] + s.skew[i] - cfg.drift + s.timer[r] >= cfg.work),
                    all_of(s.forgot[i] == r, s.down[i] + s.timer[r] > cfg.work)) for i in k)
                >= cfg.majority))),
            Invariant("paused-holder-keys", each(lambda s, r: implies(
                all_of(s.pc[r] == PAUSED, negate(s.paused[r])), ops.count(any_of(
                    all_of(s.owner[i] == r, s.life[i] + s.skew[i] - cfg.drift + s.timer[r]
                           >= cfg.work + cfg.client_pause),
                    all_of(s.forgot[i] == r,
                           s.down[i] + s.timer[r] > cfg.work + cfg.client_pause)) for i in k)
                >= cfg.majority))),
            Invariant("no-stray-keys", each(lambda s, r: implies(
                any_of(s.pc[r] == IDLE, s.pc[r] == DONE, s.pc[r] == GAVE_UP),
                all_of(*(all_of(s.owner[i] != r, s.forgot[i] != r) for i in k))))),
            Invariant("starts", lambda s: s.starts == ops.count(
                any_of(pc == ACTING, pc == DONE) for pc in s.pc)),
            Invariant("no-lapse", lambda s: negate(s.lapsed)),
        )

    def symmetry(self) -> Symmetry:
        """Requests are interchangeable; the instances' owners are request numbers. (The
        instances are not: every client tries them in the same order.)"""
        return Symmetry(fields=("pc", "timer", "held", "seen", "at", "got", "paused"),
                        groups=(tuple(range(self.cfg.requests)),),
                        owners=tuple(f"{field}[{i}]" for field in ("owner", "forgot")
                                     for i in range(self.cfg.instances)))

    def canonical(self, s: RedlockState) -> RedlockState:
        """Requests sorted by everything that tells them apart, owners renamed to follow."""
        canonical: RedlockState = self.symmetry().canonical(s)
        return canonical

    # -- the steps' helpers ------------------------------------------------------------------

    def pick(self, values: tuple[Int, ...], i: Int) -> Int:
        """``values[i]`` for an instance index that may be symbolic."""
        if isinstance(i, int):
            return values[i]
        picked = values[-1]
        for k in reversed(range(len(values) - 1)):
            picked = ite(i == k, values[k], picked)
        return picked

    def key_at(self, s: RedlockState, i: Int, owner: Int, life: Int,
               skew: Int) -> RedlockState:
        """``s`` with instance ``i``'s key replaced (``i`` may be symbolic)."""
        if isinstance(i, int):
            return replace(s, owner=ops.set_at(s.owner, i, owner), life=ops.set_at(s.life, i, life),
                           skew=ops.set_at(s.skew, i, skew))
        here = [i == k for k in range(self.cfg.instances)]
        return replace(s, owner=tuple(ite(h, owner, v) for h, v in zip(here, s.owner, strict=True)),
                       life=tuple(ite(h, life, v) for h, v in zip(here, s.life, strict=True)),
                       skew=tuple(ite(h, skew, v) for h, v in zip(here, s.skew, strict=True)))

    def attempted(self, s: RedlockState, r: int) -> Bool:
        """r's attempt on its current instance has taken its time."""
        return s.timer[r] >= self.cfg.attempt

    def free(self, s: RedlockState, i: Int) -> Bool:
        """Instance ``i`` is up and holds no live key: ``SET NX`` answers OK."""
        return all_of(self.pick(s.down, i) == 0, self.pick(s.owner, i) == NO_OWNER)

    def taken(self, s: RedlockState, i: Int) -> Bool:
        """Instance ``i`` is up and holds a live key: ``SET NX`` answers nil."""
        return all_of(self.pick(s.down, i) == 0, self.pick(s.owner, i) != NO_OWNER)

    def lock_at(self, s: RedlockState, r: int) -> RedlockState:
        """Instance ``at[r]`` stores r's key with the full ``ttl``; r counts one more OK."""
        return replace(self.key_at(s, s.at[r], r, self.cfg.ttl, 0),
                       got=ops.set_at(s.got, r, s.got[r] + 1))

    def next_instance(self, s: RedlockState, r: int, won: bool) -> RedlockState:
        """r moves on to the next instance, or to the check after the last one."""
        last = s.at[r] == self.cfg.instances - 1
        moved = self.goto(s, r, ite(last, CHECK, ACQUIRING))
        return replace(moved, at=ops.set_at(s.at, r, ite(last, 0, s.at[r] + 1)))

    def tried(self, s: RedlockState, r: int, i: int) -> Bool:
        """r has already sent its ``SET`` to instance ``i``."""
        return any_of(s.pc[r] != ACQUIRING, s.at[r] > i)

    def elapsed(self, s: RedlockState, r: int) -> Int:
        """Ticks since r's ``t1``, as r's clock measures them (before its check)."""
        cfg = self.cfg
        acquiring = cfg.instances * cfg.attempt
        for i in reversed(range(cfg.instances)):
            acquiring = ite(s.at[r] == i, i * cfg.attempt, acquiring)
        tried_all = cfg.instances * cfg.attempt
        pause = cfg.client_pause if cfg.pause_at == "before" else 0
        return ite(s.pc[r] == ACQUIRING, acquiring + s.timer[r],
                   tried_all + ite(s.pc[r] == PAUSED, s.timer[r], ite(s.paused[r], pause, 0)))

    def validity(self, s: RedlockState, r: int) -> Int:
        """The documentation's validity time: ``ttl - elapsed - drift``."""
        return self.cfg.ttl - self.elapsed(s, r) - self.cfg.drift

    def acquires(self, s: RedlockState, r: int) -> Bool:
        """A majority answered OK and the validity covers the protected work."""
        return all_of(s.got[r] >= self.cfg.majority, self.validity(s, r) >= self.cfg.work)

    def checked(self, s: RedlockState, r: int) -> RedlockState:
        """The check is made: r's count of OKs and its pause mark are spent."""
        return replace(s, got=ops.set_at(s.got, r, 0), paused=ops.set_at(s.paused, r, False))

    def act(self, s: RedlockState, r: int) -> RedlockState:
        """r starts its protected work."""
        return replace(self.goto(s, r, ACTING), starts=s.starts + 1)

    def paused_enough(self, s: RedlockState, r: int) -> Bool:
        return s.timer[r] >= self.cfg.client_pause

    def resume(self, s: RedlockState, r: int) -> RedlockState:
        """After the pause: back to the check (before), or on to the work (after)."""
        if self.cfg.pause_at == "before":
            return self.goto(s, r, CHECK)
        return self.act(s, r)

    def release_all(self, s: RedlockState, r: int) -> RedlockState:
        """The compare-and-delete script on every instance: r's keys go, no other key does
        (and r no longer needs a restarting instance to keep its lock: the ghost is cleared)."""
        mine = [owner == r for owner in s.owner]
        return replace(s, forgot=tuple(ite(f == r, NO_OWNER, f) for f in s.forgot),
                       owner=tuple(ite(m, NO_OWNER, o) for m, o in zip(mine, s.owner,
                                                                          strict=True)),
                       life=tuple(ite(m, 0, v) for m, v in zip(mine, s.life, strict=True)),
                       skew=tuple(ite(m, 0, v) for m, v in zip(mine, s.skew, strict=True)))

    def kept(self, s: RedlockState, r: int) -> Int:
        """Instances that still hold r's key."""
        return ops.count(owner == r for owner in s.owner)

    def finish(self, s: RedlockState, r: int) -> RedlockState:
        """r writes the resource (lapsed if its keys are no longer a majority), then releases
        on all instances."""
        lapsed = any_of(s.lapsed, self.kept(s, r) < self.cfg.majority)
        written = replace(s, written=True, lapsed=lapsed)
        return self.goto(self.release_all(written, r), r, DONE)

    # -- time --------------------------------------------------------------------------------

    def tick_stores(self, s: RedlockState) -> RedlockState:
        """Every live key loses a tick (a key with none left expires); restarting instances
        come one tick closer to rejoining."""
        gone = [all_of(owner != NO_OWNER, life == 0) for owner, life in zip(s.owner, s.life,
                                                                             strict=True)]
        return replace(
            s, owner=tuple(ite(g, NO_OWNER, o) for g, o in zip(gone, s.owner, strict=True)),
            life=tuple(ite(o == NO_OWNER, 0, ite(life > 0, life - 1, 0))
                       for o, life in zip(s.owner, s.life, strict=True)),
            skew=tuple(ite(g, 0, v) for g, v in zip(gone, s.skew, strict=True)),
            down=tuple(ite(d > 0, d - 1, 0) for d in s.down),
            forgot=tuple(ite(d <= 1, NO_OWNER, f) for d, f in zip(s.down, s.forgot, strict=True)))

    # -- the server's view -----------------------------------------------------------------

    def keyspaces(self, s: RedlockState) -> dict[str, dict[str, tuple[int | None,
                                                                         int | None]]]:
        """Each instance's lock key: the owner's token and its remaining life."""
        return {server: {"lock": (None, None) if s.owner[i] == NO_OWNER
                         else (s.owner[i], s.life[i])}
                for i, server in enumerate(self.servers())}

    def keyspace(self, s: RedlockState) -> dict[str, tuple[int | None, int | None]]:
        return dict(self.keyspaces(s)[self.servers()[0]])

    # -- narration -------------------------------------------------------------------------

    def facts(self, before: RedlockState, after: RedlockState,
              r: int | None) -> dict[str, str]:
        """The instance a request is at and what it holds; the check's arithmetic; how many
        keys a writer still holds."""
        cfg = self.cfg
        facts = {"majority": str(cfg.majority)}
        if r is None:
            return facts
        i = before.at[r]
        owner = before.owner[i]
        validity = self.validity(before, r)
        facts.update(server=self.servers()[i], holder=f"r{owner}", down=str(before.down[i]),
                     got=str(after.got[r] if before.pc[r] == ACQUIRING else before.got[r]),
                     elapsed=str(self.elapsed(before, r)), validity=str(validity),
                     kept=str(self.kept(before, r)),
                     lapsed="yes" if after.lapsed and not before.lapsed else "",
                     acts="yes" if after.pc[r] == ACTING else "",
                     why="no majority" if before.got[r] < cfg.majority
                     else f"validity below {cfg.work}")
        return facts

    def narrate(self, a: Action, before: RedlockState,
                after: RedlockState) -> tuple[Message, ...]:
        """The program's lines; a release on all instances as one script per instance; a
        fault as a note over its instance."""
        if isinstance(a, InstanceFault):
            return (Message(a.server, "", self._fault_text(a, before, after)),)
        said = super().narrate(a, before, after)
        r = getattr(a, "r", None)
        if r is None or not self._releases(a):
            return said
        who = f"r{r}"
        scripts = []
        for i, server in enumerate(self.servers()):
            reply = "1" if before.owner[i] == r else "0 (not its key)"
            scripts += [Message(who, server, f"EVAL compare-and-delete lock {who}"),
                        Message(server, who, reply, reply=True)]
        return (*said, *scripts)

    def _releases(self, a: Action) -> bool:
        return isinstance(a, NotAcquired | Finish)

    def _fault_text(self, a: InstanceFault, before: RedlockState, after: RedlockState) -> str:
        i = self.index_of(a.server)
        owner = f"r{before.owner[i]}"
        if isinstance(a, FastClock):
            return (f"fast clock: {owner}'s key loses a tick "
                    + ("and expires" if after.owner[i] == NO_OWNER
                       else f"({after.life[i]} left)"))
        if isinstance(a, ClockJump):
            return (f"clock jumps {self.cfg.jump} tick(s) forward: {owner}'s key "
                    + ("expires" if after.owner[i] == NO_OWNER else f"has {after.life[i]} left"))
        lost = f"forgets {owner}'s key" if before.owner[i] != NO_OWNER else "holds no key"
        delay = self.cfg.rejoin_delay
        return (f"restarts without persistence: {lost}"
                + (f", refuses commands for {delay} tick(s)" if delay else ", back at once"))

    def _describe_request(self, s: RedlockState, r: int) -> str:
        pc = PC(s.pc[r])
        if pc == ACQUIRING:
            return f"set@{self.servers()[s.at[r]]} {s.timer[r]}/{self.cfg.attempt} " \
                f"({s.got[r]} ok)"
        if pc == CHECK:
            return f"check ({s.got[r]} ok)"
        if pc == PAUSED:
            return f"pause {s.timer[r]}/{self.cfg.client_pause}"
        if pc == ACTING:
            return f"act {s.timer[r]}/{self.cfg.work}"
        return {IDLE: "-", DONE: "done", GAVE_UP: "gave-up"}[pc]

    def _describe_instance(self, s: RedlockState, i: int) -> str:
        if s.down[i]:
            return f"down {s.down[i]}"
        if s.owner[i] == NO_OWNER:
            return "free"
        fast = f", fast {s.skew[i]}" if s.skew[i] else ""
        return f"r{s.owner[i]} ({s.life[i]} left{fast})"


def build(params: Mapping[str, ParamValue], name: str = "redlock") -> RedlockModel:
    """The ``redlock`` model for complete, validated parameters."""
    return RedlockModel(RedlockConfig.from_params(params), params, name=name)


SPEC = policy.PolicySpec(
    "redlock", "Redlock (the Redis documentation's distributed lock): a majority of N "
    "independent instances within the validity time; clock drift, jumps, restarts, pauses",
    PARAMS, build, order=60)
