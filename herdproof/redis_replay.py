"""Drive a real Redis with model time, and replay a trace's Redis-level steps against it.

:class:`TickedRedis` issues the exact commands the models describe (``GET``, ``SET``,
``SET k v NX PX``, ``DEL``, the compare-and-delete script, the owner-checked ``PEXPIRE`` script)
on a few namespaced keys, and pushes model time into the server deterministically: a tick
rewrites every remaining TTL by one tick's worth of milliseconds with ``PEXPIRE`` (in one Lua
script, so it is atomic). No test waits for real time to pass, except the one that checks the
boundary itself (``tests/conformance/test_redis_expiry.py``).

The mapping between model ticks and server milliseconds: a life of ``n`` ticks is sent as
``n * tick_ms + tick_ms // 2`` ms. The extra half tick puts the server's clock half a tick
*behind* the model's instant, so the few milliseconds a step really takes never carry a key
across a tick boundary; a key with ``r`` ticks left has a PTTL in ``(r*tick_ms,
r*tick_ms + tick_ms/2]`` minus that drift, read back as ``PTTL // tick_ms == r``. At ``r == 0`` the
key is alive (Redis keeps a key while ``now <= exp``) and the next tick's rewrite makes its PTTL
negative, which deletes it: DESIGN.md section 3's "alive at exp, gone after".

:func:`replay_on_redis` maps a ``stack`` trace to commands (``WinLock`` -> ``SET lock r<id> NX PX``
that must succeed, ``LoseLock`` -> the same ``SET`` that must fail, ``Finish`` -> ``SET`` of the
cache key and the release the trace's ``release`` parameter names, ``RecheckHit`` -> ``GET`` and
the release, ``Tick`` -> the TTL rewrite, every other GET-step -> ``GET`` of the cache key), and
after every step compares the server's lock (value, PTTL in ticks) and cache with the model's.
This module does network I/O, which is why it lives in ``herdproof/`` and not in ``engines/``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import redis

from herdproof.models.core import Action
from herdproof.models.errors import HerdproofError
from herdproof.models.policies.stack import REBUILDING
from herdproof.models.redis_lock import NO_OWNER
from herdproof.traces.replay import replay
from herdproof.traces.trace import Trace

TICK_MS = 1000

CAD_SCRIPT = ('if redis.call("get", KEYS[1]) == ARGV[1] then '
              'return redis.call("del", KEYS[1]) else return 0 end')
EXTEND_SCRIPT = ('if redis.call("get", KEYS[1]) == ARGV[1] then '
                 'return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end')
# One tick for every key given: subtract a tick from each remaining TTL; a result <= 0 makes
# PEXPIRE delete the key, exactly as expiry would.
TICK_SCRIPT = ('for _, k in ipairs(KEYS) do local p = redis.call("pttl", k) '
               'if p >= 0 then redis.call("pexpire", k, p - tonumber(ARGV[1])) end end '
               'return 0')


class RedisUnavailable(HerdproofError):
    """The server cannot be reached or the URL is not a Redis URL."""


def token(value: int) -> str:
    """The wire form of a model token (a request id): ``r<id>``."""
    return f"r{value}"


def untoken(raw: str | None) -> int | None:
    """The model form of a wire value, ``None`` for nil."""
    if raw is None:
        return None
    if not raw.startswith("r") or not raw[1:].isdigit():
        raise ValueError(f"value {raw!r} was not written by herdproof (expected r<id>)")
    return int(raw[1:])


def connect(url: str) -> redis.Redis:
    """A client for ``redis://host:port[/db]``; raises :class:`RedisUnavailable` if unreachable."""
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss", "unix") or not (parsed.hostname or parsed.path):
        raise RedisUnavailable(f"--redis wants a URL like redis://127.0.0.1:6379, got {url!r}")
    try:
        client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5,
                                      socket_connect_timeout=5)
        client.ping()
    except (redis.RedisError, ValueError, OSError) as exc:
        raise RedisUnavailable(f"cannot reach Redis at {url}: {exc}") from None
    return client


class TickedRedis:
    """A few namespaced keys on a real Redis, driven by ticks of model time.

    Examples
    --------
    >>> server = TickedRedis(redis.Redis(), ("lock", "cache"))  # doctest: +SKIP
    >>> server.set_nx_px(0, 1, 2), server.get(0)                # doctest: +SKIP
    ('OK', 1)
    """

    def __init__(self, client: redis.Redis, names: Sequence[str], tick_ms: int = TICK_MS,
                 prefix: str | None = None) -> None:
        self.client = client
        self.tick_ms = tick_ms
        self.prefix = prefix if prefix is not None else f"herdproof:{uuid.uuid4().hex[:12]}:"
        self.keys = tuple(self.prefix + name for name in names)
        self._cad = client.register_script(CAD_SCRIPT)
        self._extend = client.register_script(EXTEND_SCRIPT)
        self._tick = client.register_script(TICK_SCRIPT)

    def ms(self, ticks: int) -> int:
        """Milliseconds sent for a life of ``ticks`` (half a tick of slack; see the module)."""
        return ticks * self.tick_ms + self.tick_ms // 2

    def get(self, k: int) -> int | None:
        return untoken(self.client.get(self.keys[k]))  # type: ignore[arg-type]

    def set_plain(self, k: int, value: int) -> str | None:
        return _ok(self.client.set(self.keys[k], token(value)))

    def set_nx_px(self, k: int, value: int, ticks: int) -> str | None:
        return _ok(self.client.set(self.keys[k], token(value), nx=True, px=self.ms(ticks)))

    def delete(self, k: int) -> int:
        return int(self.client.delete(self.keys[k]))

    def compare_and_delete(self, k: int, value: int) -> int:
        return int(self._cad(keys=[self.keys[k]], args=[token(value)]))

    def pexpire_if_owner(self, k: int, value: int, ticks: int) -> int:
        return int(self._extend(keys=[self.keys[k]], args=[token(value), self.ms(ticks)]))

    def pttl(self, k: int) -> int:
        """``PTTL`` in ticks: -2 missing, -1 no expiry, else whole ticks left."""
        raw = int(self.client.pttl(self.keys[k]))
        return raw if raw < 0 else raw // self.tick_ms

    def advance(self, ticks: int = 1) -> None:
        """Let ``ticks`` of model time pass on the server by rewriting every TTL."""
        for _ in range(ticks):
            self._tick(keys=list(self.keys), args=[self.tick_ms])

    def state(self) -> tuple[tuple[int | None, int], ...]:
        """Every key's (value, PTTL in ticks), read in one round trip."""
        pipe = self.client.pipeline(transaction=True)
        for key in self.keys:
            pipe.get(key)
            pipe.pttl(key)
        raw = pipe.execute()
        return tuple((untoken(raw[i]), raw[i + 1] if raw[i + 1] < 0 else
                      raw[i + 1] // self.tick_ms) for i in range(0, len(raw), 2))

    def cleanup(self) -> None:
        self.client.delete(*self.keys)


def _ok(reply: Any) -> str | None:
    return "OK" if reply is True or reply == "OK" else None


# -- replaying a stack trace -----------------------------------------------------------------

LOCK, CACHE = 0, 1


@dataclass
class StepCheck:
    """One trace step on the server: the commands sent, the replies expected and received."""

    step: int
    action: str
    commands: list[str] = field(default_factory=list)
    expected: list[Any] = field(default_factory=list)
    got: list[Any] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.expected == self.got

    def line(self) -> str:
        if len(self.commands) <= 1:
            return (f"{self.step:>4}  {self.action:<16} -        "
                    "(in-process step: no Redis command)")
        verdict = "match" if self.ok else "MISMATCH"
        sent = zip(self.commands[:-1], self.got[:-1], strict=True)
        parts = [c if c.startswith("tick:") else f"{c} -> {_show(g)}" for c, g in sent]
        lock, ttl, cache = self.got[-1]
        parts.append(f"then lock={lock or '-'}" + (f" ({ttl} left)" if lock else "")
                     + f" cache={cache}")
        if not self.ok:
            parts.append(f"model expected {self.expected}")
        note = f"   <- {self.note}" if self.note else ""
        return f"{self.step:>4}  {self.action:<16} {verdict:<8} " + "; ".join(parts) + note


def _show(reply: Any) -> str:
    return "(nil)" if reply is None else str(reply)


@dataclass
class RedisReplay:
    """The outcome of :func:`replay_on_redis`."""

    steps: list[StepCheck]
    violation: int | None
    prop: str | None

    @property
    def matched(self) -> bool:
        return all(s.ok for s in self.steps)

    def to_json(self) -> list[dict[str, Any]]:
        return [{"step": c.step, "action": c.action, "commands": c.commands,
                 "expected": c.expected, "got": c.got, "match": c.ok} for c in self.steps]

    @property
    def first_mismatch(self) -> StepCheck | None:
        return next((s for s in self.steps if not s.ok), None)


def replay_on_redis(trace: Trace, client: redis.Redis, tick_ms: int = TICK_MS,
                    prefix: str | None = None) -> RedisReplay:
    """Replay ``trace`` (a ``stack`` trace) on a real Redis, checking every reply and state.

    The model's replay gives the state before and after every step; the expected replies and
    the expected server state (lock owner and PTTL in ticks, cache filled or not) are read off
    those states, never computed a second way. Keys live under ``prefix`` (by default a fresh
    ``herdproof:<id>:``) and are deleted afterwards.
    """
    if trace.policy != "stack":
        raise HerdproofError(f"replay --redis knows the Redis steps of `stack` traces; this "
                             f"trace is of `{trace.policy}`")
    if trace.params.get("fencing"):
        raise HerdproofError("replay --redis does not replay fencing tokens yet: use a trace "
                             "with fencing=off")
    replayed = replay(trace)
    params = trace.params
    locking = bool(params["lock"])
    release = str(params["release"])
    ex = int(params["ex"])
    server = TickedRedis(client, ("lock", "cache"), tick_ms=tick_ms, prefix=prefix)
    checks: list[StepCheck] = []
    try:
        for number, action in enumerate(trace.actions, start=1):
            before, after = replayed.states[number - 1], replayed.states[number]
            check = StepCheck(number, repr(action))
            _run_step(server, check, action, before, locking, release, ex)
            check.commands.append("GET lock; PTTL lock; GET cache")
            check.expected.append(_model_view(after))
            check.got.append(_server_view(server))
            checks.append(check)
    finally:
        server.cleanup()
    return RedisReplay(checks, replayed.violation, trace.property)


def _run_step(server: TickedRedis, check: StepCheck, action: Action, before: Any,
              locking: bool, release: str, ex: int) -> None:
    name = type(action).__name__
    r: int = getattr(action, "r", NO_OWNER)

    def send(command: str, expected: Any, got: Any) -> None:
        check.commands.append(command)
        check.expected.append(expected)
        check.got.append(got)

    def release_lock() -> None:
        if not locking:
            return
        if release == "del":
            if before.lock.owner not in (NO_OWNER, r):
                check.note = (f"{token(r)}'s DEL removed {token(before.lock.owner)}'s lock: "
                              "a foreign release")
            send("DEL lock", int(before.lock.owner != NO_OWNER), server.delete(LOCK))
        else:
            send(f"EVAL compare-and-delete lock {token(r)}", int(before.lock.owner == r),
                 server.compare_and_delete(LOCK, r))

    if name == "Tick":
        server.advance()
        send(f"tick: PEXPIRE each key to PTTL-{server.tick_ms}", None, None)
    elif name in ("WinLock", "LoseLock"):
        if name == "WinLock" and before.lock.owner == NO_OWNER and \
                any(pc == REBUILDING for pc in before.pc):
            check.note = "a second rebuilder wins the lock while another still rebuilds"
        send(f"SET lock {token(r)} NX PX {server.ms(ex)}", "OK" if name == "WinLock" else None,
             server.set_nx_px(LOCK, r, ex))
    elif name == "Finish":
        send(f"SET cache {token(r)}", "OK", server.set_plain(CACHE, r))
        release_lock()
    elif name == "RecheckHit":
        send("GET cache", _cache_reply(before), _hit(server.get(CACHE)))
        release_lock()
    elif name in ("Hit", "Miss", "WakeHit", "WakeMiss", "RecheckMiss"):
        send("GET cache", _cache_reply(before), _hit(server.get(CACHE)))
    elif name not in IN_PROCESS:
        raise HerdproofError(f"replay --redis does not know which Redis commands step "
                             f"{check.step} `{action!r}` sends; only the stack's lock and cache "
                             "steps can be replayed on a server so far")


# Steps that never reach Redis: the in-process single-flight map, a pause, a crash.
IN_PROCESS = frozenset({"JoinFlight", "LeadFlight", "Pause", "Crash"})


def _cache_reply(state: Any) -> str:
    return "value" if state.cache_filled else "nil"


def _model_view(state: Any) -> tuple[str | None, int, str]:
    owner = state.lock.owner
    if owner == NO_OWNER:
        return (None, -2, _cache_reply(state))
    return (token(owner), int(state.lock.remaining), _cache_reply(state))


def _hit(value: int | None) -> str:
    return "nil" if value is None else "value"


def _server_view(server: TickedRedis) -> tuple[str | None, int, str]:
    (lock_value, lock_ttl), (cache_value, _) = server.state()
    return (None if lock_value is None else token(lock_value), lock_ttl,
            "nil" if cache_value is None else "value")


def report(result: RedisReplay) -> tuple[bool, list[str]]:
    """Whether the trace reproduced on the server, and the lines to print."""
    lines = [c.line() for c in result.steps]
    mismatch = result.first_mismatch
    if mismatch is not None:
        lines.append(f"does not reproduce on Redis: step {mismatch.step} `{mismatch.action}` "
                     f"got {mismatch.got} where the model expects {mismatch.expected}")
        return False, lines
    sent = sum(len(c.commands) for c in result.steps)
    if result.prop is None:
        lines.append(f"replayed all {len(result.steps)} steps on Redis: {sent} commands, every "
                     "reply and state as the model says")
        return True, lines
    if result.violation is None:
        lines.append(f"every reply matched, but {result.prop} is not violated in the "
                     f"{len(result.steps)} steps")
        return False, lines
    lines.append(f"reproduced on Redis: {result.prop} violated at step {result.violation}; "
                 f"all {sent} commands' replies and the lock/cache state after every step "
                 "matched the model")
    return True, lines
