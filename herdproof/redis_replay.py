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

:func:`replay_on_redis` sends each step's commands as the policy's request program names them
(``SET lock r<id> NX PX``, ``GET cache``, ``DEL lock``, the compare-and-delete script; a tick is
the TTL rewrite), predicts every reply with the command model, and after every step compares
the server's keys with the model's view of them. A program that talks to several independent
servers (Redlock's instances) is replayed on as many, one connection each (``--redis
URL1,URL2,...``): each command goes to the server its step names, a tick passes on all of them,
an instance's clock jump or fast clock is that many ticks passing on that server alone, and a
restart without persistence empties that server of the program's keys (the conformance tests
kill and restart a real ``redis-server`` instead).
This module does network I/O, which is why it lives in ``herdproof/`` and not in ``engines/``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlparse

import redis

from herdproof import server_replay
from herdproof.models import redis_commands as rc
from herdproof.models.core import Action
from herdproof.models.errors import HerdproofError
from herdproof.models.params import clipped
from herdproof.models.redis_lock import NO_OWNER
from herdproof.server_replay import ServerReplay, policy_state
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


def connect_all(urls: str) -> list[redis.Redis]:
    """One client per URL of a comma-separated list (``--redis URL1,URL2,...``: one server per
    instance of a program that talks to several, in its order); raises
    :class:`RedisUnavailable` naming the first that cannot be reached."""
    clients: list[redis.Redis] = []
    try:
        for url in urls.split(","):
            clients.append(connect(url.strip()))
    except RedisUnavailable:
        for client in clients:
            client.close()
        raise
    return clients


def connect(url: str) -> redis.Redis:
    """A client for ``redis://host:port[/db]``; raises :class:`RedisUnavailable` if unreachable."""
    refuse = RedisUnavailable(f"--redis wants a URL like redis://127.0.0.1:6379, got "
                              f"{clipped(repr(url))}")
    try:
        parsed = urlparse(url)
        usable = parsed.scheme in ("redis", "rediss", "unix") and bool(parsed.hostname or
                                                                        parsed.path)
    except ValueError:  # e.g. "redis://[::1": an unclosed IPv6 address
        raise refuse from None
    if not usable:
        raise refuse
    try:
        client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5,
                                      socket_connect_timeout=5)
        client.ping()
    except (redis.RedisError, ValueError, OSError) as exc:
        raise RedisUnavailable(f"cannot reach Redis at {url}: {exc}") from None
    return client


class TickedRedis:
    """A few namespaced keys on a real Redis, driven by ticks of model time.

    Example (against a running server, so not a doctest)::

        server = TickedRedis(redis.Redis(), ("lock", "cache"))
        server.set_nx_px(0, 1, 2), server.get(0)   # ('OK', 1)
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
        """Let ``ticks`` of model time pass on the server by rewriting every TTL (one script:
        a key with ``r`` ticks left keeps a positive PTTL exactly when ``r >= ticks``)."""
        if ticks > 0:
            self._tick(keys=list(self.keys), args=[ticks * self.tick_ms])

    def delete_all(self) -> int:
        """``DEL`` every key (what a restart without persistence does to them): keys removed."""
        return int(self.client.delete(*self.keys)) if self.keys else 0

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


# -- replaying a trace ------------------------------------------------------------------------

View = tuple[Any, ...]  # per key: (token or None, ticks left) or "value"/"nil"


class StepCheck(server_replay.StepCheck):
    """One trace step on Redis (see :class:`herdproof.server_replay.StepCheck`)."""

    def line(self) -> str:
        if len(self.commands) <= 1:
            return (f"{self.step:>4}  {self.action:<16} -        "
                    "(in-process step: no Redis command)")
        verdict = "match" if self.ok else "MISMATCH"
        sent = zip(self.commands[:-1], self.got[:-1], strict=True)
        parts = [c if c.startswith("tick:") else f"{c} -> {_show(g)}" for c, g in sent]
        parts.append("then " + " ".join(f"{name}={_show_key(view)}"
                                        for name, view in zip(self.keys, self.got[-1],
                                                              strict=True)))
        if not self.ok:
            parts.append(f"model expected {self.expected}")
        note = f"   <- {self.note}" if self.note else ""
        return f"{self.step:>4}  {self.action:<16} {verdict:<8} " + "; ".join(parts) + note


def _show(reply: Any) -> str:
    return "(nil)" if reply is None else str(reply)


def _show_key(view: Any) -> str:
    if isinstance(view, tuple):
        value, ttl = view
        return "-" if value is None else f"{value} ({ttl} left)"
    return str(view)


def replay_on_redis(trace: Trace, clients: redis.Redis | Sequence[redis.Redis],
                    tick_ms: int = TICK_MS, prefix: str | None = None,
                    restart: Callable[[int], redis.Redis] | None = None) -> ServerReplay:
    """Replay ``trace`` on real Redis servers, checking every reply and every key after every
    step.

    What a step sends is the policy's own annotation (each program step's ``sends``); the
    replies it should get are computed by the command model (:mod:`models.redis_commands`,
    itself held against a real server by the conformance tests) from the policy's view of the
    keys before the step (``keyspaces``), and the keys after the step must be the policy's view
    of the state after it: so the step's effect, its commands and the server must all agree.
    Nothing here knows a policy or an action by name. Keys live under ``prefix`` (by default a
    fresh ``herdproof:<id>:``) and are deleted afterwards.

    ``clients``: one connection per server the program talks to (``model.servers()``, in
    order: Redlock's instances), or a single connection for a program with one server. A
    command goes to the server its :class:`~models.program.Send` names; a tick rewrites every
    TTL on every server. A server's own clock jumping or running fast (``ADVANCE``) rewrites
    the TTLs on that server alone; a restart without persistence (``FORGET``) calls
    ``restart(i)``, which must restart server ``i`` without persistence and return a new
    connection to it, or, without ``restart``, deletes the program's keys on that server
    (all that a restart changes in them).
    """
    replayed = replay(trace)
    model: Any = getattr(replayed.model, "model", replayed.model)  # below a wait-clock monitor
    keys = tuple(getattr(model, "KEYS", ()))
    if not keys or not hasattr(model, "sends"):
        raise HerdproofError(f"replay --redis needs a policy whose program names the Redis "
                             f"commands of its steps; `{trace.policy}` does not")
    servers = _servers(model)
    connections = [clients] if isinstance(clients, redis.Redis) else list(clients)
    if len(connections) != len(servers):
        raise HerdproofError(
            f"replay --redis needs {len(servers)} server(s) for this trace "
            f"({', '.join(servers)}), one URL each separated by commas; got "
            f"{len(connections)}")
    _check_sendable(model, trace.actions)
    names = tuple(name for name, _ in keys)
    shown = names if len(servers) == 1 else tuple(f"{server}.{name}" for server in servers
                                                  for name in names)
    prefix = prefix if prefix is not None else f"herdproof:{uuid.uuid4().hex[:12]}:"
    fleet = Fleet([TickedRedis(c, names, tick_ms=tick_ms, prefix=prefix) for c in connections],
                  servers, names, restart)
    checks: list[StepCheck] = []
    try:
        for number, action in enumerate(trace.actions, start=1):
            before = policy_state(replayed.states[number - 1])
            after = policy_state(replayed.states[number])
            check = StepCheck(number, repr(action), shown)
            predicted = _run_step(model, fleet, check, action, before, keys)
            expected = _views(model, after, keys, servers)
            if predicted != expected:
                check.note = (f"the model's step and its own commands disagree: the commands "
                              f"leave {predicted}, the step {expected}")
            else:
                check.note = "; ".join(m.text for m in model.narrate(action, before, after)
                                       if not m.dst and m.src in servers)
            check.commands.append("read back " + ", ".join(shown))
            check.expected.append(expected)
            check.got.append(tuple(view for server in fleet.servers
                                   for view in _server_view(server, keys)))
            checks.append(check)
    finally:
        fleet.cleanup()
    what = "Redis" if len(servers) == 1 else f"{len(servers)} Redis servers"
    return ServerReplay(what, "state", "the {keys} state", checks, replayed.violation,
                        trace.property)


class Fleet:
    """The servers of one replay, in the program's order, with their names and the way to
    restart one."""

    def __init__(self, servers: list[TickedRedis], names: Sequence[str],
                 keys: Sequence[str], restart: Callable[[int], redis.Redis] | None) -> None:
        self.servers = servers
        self.names = tuple(names)
        self.keys = tuple(keys)
        self.restart = restart

    def index(self, name: str) -> int:
        return self.names.index(name)

    def restarted(self, k: int) -> None:
        """Server ``k`` restarts without persistence (``restart`` must be given)."""
        assert self.restart is not None
        old = self.servers[k]
        self.servers[k] = TickedRedis(self.restart(k), self.keys, tick_ms=old.tick_ms,
                                      prefix=old.prefix)

    def cleanup(self) -> None:
        for server in self.servers:
            server.cleanup()


def _servers(model: Any) -> tuple[str, ...]:
    """The servers the program's commands go to (the first participant, for a program that
    does not name them)."""
    method = getattr(model, "servers", None)
    if method is not None:
        return tuple(method())
    return tuple(model.participants()[:1]) if model.participants() else ("Redis",)


def _check_sendable(model: Any, actions: Sequence[Action]) -> None:
    """Refuse, before anything is sent, a step that cannot be sent to a server, with the
    program's reason."""
    for number, action in enumerate(actions, start=1):
        if type(action).advances_time or model.sends(action) is not None:
            continue
        why = getattr(model, "why_not_sent", lambda a: "")(action) or (
            f"{model.name} does not say which Redis commands it is")
        raise HerdproofError(f"replay --redis cannot send step {number} `{action!r}` to a "
                             f"server: {why}")


def _views(model: Any, s: Any, keys: tuple[tuple[str, str], ...],
           servers: Sequence[str]) -> View:
    """The model's view of every server's keys in state ``s``, flat, server by server."""
    spaces = model.keyspaces(s) if hasattr(model, "keyspaces") else {servers[0]:
                                                                      model.keyspace(s)}
    return tuple(view for server in servers for view in _view(spaces[server], keys))


def _run_step(model: Any, fleet: Fleet, check: StepCheck, action: Action, before: Any,
              keys: tuple[tuple[str, str], ...]) -> View:
    """Send the step's commands; returns the keys' view (every server's, flat) that the
    command model predicts after it."""
    index = {name: k for k, (name, _) in enumerate(keys)}
    servers = fleet.names
    spaces_before = model.keyspaces(before) if hasattr(model, "keyspaces") else {
        servers[0]: model.keyspace(before)}
    spaces = [_keyspace(spaces_before[name], keys) for name in servers]
    many = len(servers) > 1

    def at(n: int, text: str) -> str:
        return f"{servers[n]}: {text}" if many else text

    send = check.send
    if type(action).advances_time:
        for server in fleet.servers:
            server.advance()
        send(f"tick: PEXPIRE each key to PTTL-{fleet.servers[0].tick_ms}"
             + (" on every server" if many else ""), None, None)
        return _flat([rc.tick(space) for space in spaces], keys)
    commands = model.sends(action)
    r: int = getattr(action, "r", NO_OWNER)
    for c in commands:
        ticks = int(model.params[c.ticks]) if c.ticks else (1 if c.op == "ADVANCE" else 0)
        for target in model.servers_of(c, action, before) if many else servers[:1]:
            n = fleet.index(target)
            server, space = fleet.servers[n], spaces[n]
            if c.op == "ADVANCE":
                server.advance(ticks)
                for _ in range(ticks):
                    space = rc.tick(space)
                send(at(n, f"clock +{ticks} tick(s): PEXPIRE each key to "
                           f"PTTL-{ticks * server.tick_ms}"), None, None)
            elif c.op == "FORGET":
                present = sum(space.get(k) is not None for k in range(len(keys)))
                space = rc.Keyspace.empty(len(keys))
                if fleet.restart is not None:
                    fleet.restarted(n)
                    send(at(n, "restart without persistence (the process killed and started "
                               "again)"), "restarted", "restarted")
                else:
                    send(at(n, "restart without persistence: DEL " + " ".join(
                        name for name, _ in keys)), present, server.delete_all())
            else:
                k = index[c.key]
                space = _send_command(server, space, c, k, r, ticks, keys, check, action,
                                      at(n, ""))
            spaces[n] = space
    return _flat(spaces, keys)


def _send_command(server: TickedRedis, space: rc.Keyspace, c: Any, k: int, r: int, ticks: int,
                  keys: tuple[tuple[str, str], ...], check: StepCheck, action: Action,
                  where: str) -> rc.Keyspace:
    """One client command on one server (named ``where`` in the record: ``"redis2: "``, or
    ``""`` for the only one): sent, its reply predicted; the keyspace after it."""

    def send(text: str, expected: Any, got: Any) -> None:
        check.send(where + text, expected, got)

    if c.op == "GET":
        value = space.get(k)
        reply = None if value is None else (token(value) if keys[k][1] == "token"
                                            else "value")
        raw = server.get(k)
        got = None if raw is None else (token(raw) if keys[k][1] == "token" else "value")
        send(f"GET {c.key}", reply, got)
    elif c.op == "SET":
        space, reply = rc.set_plain(space, k, r)
        send(f"SET {c.key} {token(r)}", reply, server.set_plain(k, r))
    elif c.op == "SET NX PX":
        space, reply = rc.set_nx_px(space, k, r, ticks)
        send(f"SET {c.key} {token(r)} NX PX {server.ms(ticks)}", reply,
             server.set_nx_px(k, r, ticks))
    elif c.op == "DEL":
        space, count = rc.delete(space, k)
        send(f"DEL {c.key}", count, server.delete(k))
    elif c.op == "CAD":
        space, count = rc.compare_and_delete(space, k, r)
        send(f"EVAL compare-and-delete {c.key} {token(r)}", count,
             server.compare_and_delete(k, r))
    elif c.op == "PEXPIRE IF OWNER":
        space, count = rc.pexpire_if_owner(space, k, r, ticks)
        send(f"EVAL pexpire-if-owner {c.key} {token(r)} {server.ms(ticks)}", count,
             server.pexpire_if_owner(k, r, ticks))
    else:
        raise HerdproofError(f"replay --redis does not know the command `{c.op}` of step "
                             f"{check.step} `{action!r}`")
    return space


def _flat(spaces: Sequence[rc.Keyspace], keys: tuple[tuple[str, str], ...]) -> View:
    return tuple(view for space in spaces for view in _view_of(space, keys))


def _keyspace(keys_state: Any, keys: tuple[tuple[str, str], ...]) -> rc.Keyspace:
    """The policy's view of its keys as the command model's keyspace."""
    out = []
    for name, _ in keys:
        value, ttl = keys_state[name]
        if value is None:
            out.append(rc.Key())
        else:
            out.append(rc.Key(value=value, remaining=rc.PERSIST if ttl is None else ttl))
    return rc.Keyspace(keys=tuple(out))


def _view(keys_state: Any, keys: tuple[tuple[str, str], ...]) -> View:
    return _view_of(_keyspace(keys_state, keys), keys)


def _view_of(space: rc.Keyspace, keys: tuple[tuple[str, str], ...]) -> View:
    """What is compared per key: (token, ticks left) or, for a key compared by presence,
    ``value`` / ``nil``."""
    out: list[Any] = []
    for k, (_, mode) in enumerate(keys):
        value = space.get(k)
        if mode == "token":
            out.append((None, -2) if value is None else (token(value), space.pttl(k)))
        else:
            out.append("nil" if value is None else "value")
    return tuple(out)


def _server_view(server: TickedRedis, keys: tuple[tuple[str, str], ...]) -> View:
    out: list[Any] = []
    for (_, mode), (value, ttl) in zip(keys, server.state(), strict=True):
        if mode == "token":
            out.append((None, -2) if value is None else (token(value), ttl))
        else:
            out.append("nil" if value is None else "value")
    return tuple(out)


def report(result: ServerReplay) -> tuple[bool, list[str]]:
    """Whether the trace reproduced on Redis, and the lines to print."""
    return result.report()
