"""Replay a trace's memcached-level steps against a real memcached (``replay --memcached``).

:func:`replay_on_memcached` is :mod:`herdproof.redis_replay`'s counterpart for the programs that
talk to memcached: it sends each step's meta commands as the policy's request program names
them (each step's ``sends``: ``mg k v c N<stub_ttl> R<recache>``, ``ms k C<cas> T<value_ttl>``,
``md k I T<stale_ttl>``, and the classic ``get k``, ``set k``, ``delete k`` of a client that does
not speak the meta protocol; a tick pushes model time into the server with ``touch``, see
:mod:`herdproof.ticked_memcached`), predicts every reply with the command model
(:mod:`models.memcached_commands`, itself held against a real memcached by
``tests/conformance/test_memcached_commands.py``) applied to the policy's view of its items
before the step (``items``), and after every step compares the server's items with the
policy's view of the state after it. Nothing here knows a policy or an action by name.

A program that starts from a present item (``memcached-meta`` with ``start=value``) has it put
on the server first: before step 1's own commands, ``ms k T<ttl>`` stores it and ``gets``/``me``
read it back (its CAS id, paired with the model's, and its TTL), all recorded as step 1's.

What is compared: every reply (``mg``: status, value, the ``W``/``Z``/``X`` flags, CAS, TTL in
ticks; ``get``: status and value; ``ms``/``md``/``set``/``delete``: the status), and each item
after the step, read back without disturbing it: by ``mg k v c t`` unless that would hand out
a ``W`` (a stale item whose win is not out), then by ``gets`` and ``me`` (value, CAS, TTL; its
flags are seen by the next ``mg``). CAS ids
are the model's: the server's (one global counter) are related to them by an order-preserving
bijection, and a server id that breaks it is shown as ``server <id>``. A key the program
compares by ``"value"`` (a program that does not track CAS ids) is compared without the CAS.

Commands are shown as sent, with the bare key and the model's CAS ids; lives are server
seconds (a tick is 100 s, a life of n ticks is sent as n x 100 + 50 s).
This module does network I/O, which is why it lives in ``herdproof/`` and not in ``engines/``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from herdproof import server_replay
from herdproof.models import memcached_commands as mc
from herdproof.models.core import Action
from herdproof.models.errors import HerdproofError
from herdproof.models.memcached_item import NEVER, Item
from herdproof.models.params import clipped
from herdproof.models.program import MEMCACHED_OPS, Send
from herdproof.server_replay import ServerReplay, policy_state
from herdproof.ticked_memcached import TICK_S, CasBijection, MetaClient, TickedMemcached
from herdproof.traces.replay import replay
from herdproof.traces.trace import Trace

#: One reply or item as compared: (status, value, CAS, ticks left, flags); ``None`` where not
#: read or not compared.
View = tuple[str, str | None, int | str | None, int | None, str | None]
Keys = tuple[tuple[str, str], ...]


class MemcachedUnavailable(HerdproofError):
    """The server cannot be reached, does not speak the meta protocol, or the address is bad."""


def connect(address: str) -> MetaClient:
    """A meta-protocol connection to ``HOST:PORT``; raises :class:`MemcachedUnavailable` if the
    address is malformed, nothing answers there, or what answers does not speak ``mn``."""
    host, _, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise MemcachedUnavailable(f"--memcached wants HOST:PORT like 127.0.0.1:11211, got "
                                   f"{clipped(repr(address))}")
    try:
        client = MetaClient((host, int(port)))
    except (OSError, ValueError) as exc:
        raise MemcachedUnavailable(f"cannot reach memcached at {address}: {exc}") from None
    try:
        answer = client.ask("mn")
    except (OSError, UnicodeDecodeError) as exc:
        client.close()
        raise MemcachedUnavailable(f"cannot reach memcached at {address}: {exc}") from None
    if answer != "MN":
        client.close()
        raise MemcachedUnavailable(f"the server at {address} does not speak memcached's meta "
                                   f"protocol (memcached 1.6 or later): it answered "
                                   f"{clipped(repr(answer))} to `mn`")
    return client


class StepCheck(server_replay.StepCheck):
    """One trace step on memcached (see :class:`herdproof.server_replay.StepCheck`)."""

    @property
    def sent(self) -> int:
        """The meta commands the step itself sent (not the tick, not the read-back)."""
        return sum(not c.startswith("tick:") for c in self.commands[:-1])

    def line(self) -> str:
        verdict = "match" if self.ok else "MISMATCH"
        sent = list(zip(self.commands[:-1], self.got[:-1], strict=True))
        parts = [c if c.startswith("tick:") else f"{c} -> {show_reply(g)}" for c, g in sent]
        after = " ".join(f"{name}={show_item(view)}"
                         for name, view in zip(self.keys, self.got[-1], strict=True))
        parts.append(("then " if sent else "(no memcached command); then ") + after)
        if not self.ok:
            parts.append(f"model expected {self.expected}")
        note = f"   <- {self.note}" if self.note else ""
        return f"{self.step:>4}  {self.action:<16} {verdict:<8} " + "; ".join(parts) + note


def show_reply(reply: Any) -> str:
    """An ``mg`` reply as ``VA v0 W, cas 2, 3 left`` (model CAS id, TTL in ticks); a status as
    itself."""
    if not isinstance(reply, tuple):
        return str(reply)
    status, value, cas, ttl, flags = reply
    if status in ("EN", "END"):
        return str(status)
    head = " ".join(x for x in (status, value or "(stub)", flags) if x)
    return ", ".join([head, *_cas_and_ttl(cas, ttl)])


def show_item(view: View) -> str:
    """An item read back: ``-`` (absent), ``stub won, cas 1, 2 left``, ``v0 stale, ...``."""
    status, value, cas, ttl, flags = view
    if status == "EN":
        return "-"
    words = [value or "stub"]
    if flags is None:
        words.append("(flags unread)")
    else:
        words += [word for letter, word in (("X", "stale"), ("Z", "won")) if letter in flags]
    return ", ".join([" ".join(words), *_cas_and_ttl(cas, ttl)])


def _cas_and_ttl(cas: Any, ttl: int | None) -> list[str]:
    shown = [] if cas is None else [f"cas {cas}"]
    if ttl is not None:
        shown.append("no expiry" if ttl == mc.TTL_NEVER else f"{ttl} left")
    return shown


def replay_on_memcached(trace: Trace, client: MetaClient, tick_s: int = TICK_S,
                        prefix: str | None = None) -> ServerReplay:
    """Replay ``trace`` on a real memcached, checking every reply and every item after every
    step (see the module docstring). Every step is checked to be sendable before anything is
    sent: a step the program marks as having no faithful server command
    (:func:`models.program.not_on_a_server`) stops the replay with the program's reason. Keys
    live under ``prefix`` (by default a fresh ``hp:<id>:``) and are deleted afterwards."""
    replayed = replay(trace)
    model: Any = getattr(replayed.model, "model", replayed.model)  # below a wait-clock monitor
    keys = preflight(trace, model)
    names = tuple(name for name, _ in keys)
    server = TickedMemcached(client, names, tick_s=tick_s, prefix=prefix)
    cas = CasBijection()
    cache_server = model.participants()[0] if model.participants() else ""
    checks: list[StepCheck] = []
    try:
        for number, action in enumerate(trace.actions, start=1):
            before = policy_state(replayed.states[number - 1])
            after = policy_state(replayed.states[number])
            check = StepCheck(number, repr(action), names)
            if number == 1:
                _put_start(model, server, cas, check, before, keys)
            predicted = _run_step(model, server, cas, check, action, before, keys)
            expected = _space(model.items(after), keys)
            if not _same_items(predicted, expected, keys):
                check.note = (f"the model's step and its own commands disagree: the commands "
                              f"leave {predicted.items}, the step {expected.items}")
            else:
                check.note = "; ".join(m.text for m in model.narrate(action, before, after)
                                       if not m.dst and m.src == cache_server)
            views = [_read_back(server, cas, expected, k, mode)
                     for k, (_, mode) in enumerate(keys)]
            check.commands.append("read back " + ", ".join(names))
            check.expected.append(tuple(want for want, _ in views))
            check.got.append(tuple(got for _, got in views))
            checks.append(check)
    finally:
        server.cleanup()
    return ServerReplay("memcached", "item", "the item {keys}", checks, replayed.violation,
                        trace.property)


def preflight(trace: Trace, model: Any = None) -> Keys:
    """Refuse, before anything is sent, a trace whose policy names no memcached commands or
    that has a step which cannot be sent to a server (with the program's reason); returns the
    program's ``MEMCACHED_KEYS``. ``model`` is the trace's (replayed here if not given)."""
    if model is None:
        replayed = replay(trace)
        model = getattr(replayed.model, "model", replayed.model)
    keys: Keys = tuple(getattr(model, "MEMCACHED_KEYS", ()))
    if not keys or not hasattr(model, "sends"):
        raise HerdproofError(f"replay --memcached needs a policy whose program names the "
                             f"memcached commands of its steps; `{trace.policy}` does not")
    _check_sendable(model, trace.actions)
    return keys


def _check_sendable(model: Any, actions: Sequence[Action]) -> None:
    for number, action in enumerate(actions, start=1):
        if type(action).advances_time:
            continue
        commands = model.sends(action)
        if commands is None:
            why = model.why_not_sent(action) or (f"{model.name} does not say which memcached "
                                                 "commands it is")
            raise HerdproofError(f"replay --memcached cannot send step {number} `{action!r}` "
                                 f"to a server: {why}")
        for c in commands:
            if c.op not in MEMCACHED_OPS:
                raise HerdproofError(f"replay --memcached cannot send step {number} "
                                     f"`{action!r}`: `{c.op}` is not a memcached command")


def _put_start(model: Any, server: TickedMemcached, cas: CasBijection, check: StepCheck,
                start: Any, keys: Keys) -> None:
    """Store each item the program starts with (``ms k T<ttl>`` of its value) and read it
    back, pairing its CAS id with the model's; recorded as commands of ``check`` (step 1).
    Only an absent key or a stored value (not stale, no win handed out) can be put there."""
    space = _space(model.items(start), keys)
    for k, (name, mode) in enumerate(keys):
        item = space.items[k]
        if not item.present:
            continue
        if not item.valued or item.stale or item.won:
            raise HerdproofError(f"replay --memcached can start from an absent key or a stored "
                                 f"value, not from {name}={item}")
        version, ttl = int(item.version), int(item.ttl)
        shown = server.ms_command(k, version, ttl=ttl).replace(server.keys[k], name, 1)
        check.send(f"start: {shown} (data v{version})", "HD", server.ms(k, version, ttl=ttl))
        want = mc.peek(space, k)
        check.send(f"start: read back {name}", _view(want, mode, flags=False),
                   _server_view(server.look(k), want.cas, mode, cas, flags=False))


def _space(items: Mapping[str, Item], keys: Keys) -> mc.Keyspace:
    """The policy's view of its items as the command model's keyspace (the CAS counter: the
    newest CAS id any item carries)."""
    held = tuple(items[name] for name, _ in keys)
    return mc.Keyspace(items=held, cas=max(int(item.cas) for item in held))


def _same_items(a: mc.Keyspace, b: mc.Keyspace, keys: Keys) -> bool:
    return all(x == y if mode == "item" else replace(x, cas=0) == replace(y, cas=0)
               for x, y, (_, mode) in zip(a.items, b.items, keys, strict=True))


_FLAG = re.compile(r"([A-Za-z])(?:<(\w+)>)?$")


def _flags(model: Any, send: Send) -> dict[str, int | None]:
    """The flags of ``send`` this configuration sends: letter -> ticks (``None``: no value);
    a flag whose parameter is 0 (or off) is left off."""
    out: dict[str, int | None] = {}
    for word in send.flags.split():
        found = _FLAG.match(word)
        if found is None:
            raise HerdproofError(f"replay --memcached cannot read the flag `{word}` of "
                                 f"`{send.op} {send.key}`")
        letter, param = found.groups()
        if param is None:
            out[letter] = None
        elif model.params[param]:
            out[letter] = int(model.params[param])
    return out


def _local(state: Any, name: str, r: int) -> int:
    """Request ``r``'s value of the per-request field ``name``."""
    return int(getattr(state, name)[r])


def _run_step(model: Any, server: TickedMemcached, cas: CasBijection, check: StepCheck,
              action: Action, before: Any, keys: Keys) -> mc.Keyspace:
    """Send the step's commands; returns the items the command model predicts after it."""
    index = {name: k for k, (name, _) in enumerate(keys)}
    space = _space(model.items(before), keys)

    send = check.send

    if type(action).advances_time:
        server.advance()
        send(f"tick: touch each item to its TTL - {server.tick_s} s", None, None)
        return mc.tick(space)
    r: int = getattr(action, "r", -1)
    for c in model.sends(action):
        k = index[c.key]
        mode = keys[k][1]
        flags = _flags(model, c)

        def bare(command: str, k: int = k, key: str = c.key) -> str:
            return command.replace(server.keys[k], key, 1)

        if c.op == "mg":
            unknown = set(flags) - set("vctNRT")
            if unknown:
                raise HerdproofError(f"replay --memcached does not know the mg flag(s) "
                                     f"{''.join(sorted(unknown))} of step {check.step}")
            options: dict[str, Any] = {"value": "v" in flags, "vivify": flags.get("N"),
                                       "recache": flags.get("R"), "touch": flags.get("T")}
            space, reply = mc.mg(space, k, **options)
            got = server.mg(k, **options)
            send(bare(server.mg_command(k, **options)), _view(reply, mode),
                 _server_view(got, reply.cas, mode, cas))
        elif c.op == "ms":
            if not c.value:
                raise HerdproofError(f"replay --memcached: the ms of step {check.step} names "
                                     "no value to store")
            version = _local(before, c.value, r)
            model_cas = _local(before, c.cas, r) if c.cas else None
            server_cas = None if model_cas is None else cas.to_server.get(
                model_cas, CasBijection.SERVER_FUTURE)
            invalid, ttl = "I" in flags, flags.get("T") or NEVER
            space, status = mc.ms(space, k, version, cas=model_cas, invalid=invalid, ttl=ttl)
            shown = server.ms_command(k, version, cas=model_cas, invalid=invalid, ttl=ttl)
            send(f"{bare(shown)} (data v{version})", status,
                 server.ms(k, version, cas=server_cas, invalid=invalid, ttl=ttl))
        elif c.op == "get":
            space, reply = mc.classic_get(space, k)
            send(bare(server.get_command(k)), _classic(reply), _classic(server.get(k)))
        elif c.op == "set":
            if not c.value:
                raise HerdproofError(f"replay --memcached: the set of step {check.step} names "
                                     "no value to store")
            version, ttl = _local(before, c.value, r), flags.get("T") or NEVER
            space, status = mc.classic_set(space, k, version, ttl=ttl)
            send(f"{bare(server.set_command(k, version, ttl=ttl))} (data v{version})", status,
                 server.set(k, version, ttl=ttl))
        elif c.op == "delete":
            space, status = mc.classic_delete(space, k)
            send(bare(server.delete_command(k)), status, server.delete(k))
        elif c.op == "md":
            invalidate, life = "I" in flags, flags.get("T")
            space, status = mc.md(space, k, invalidate=invalidate, ttl=life)
            send(bare(server.md_command(k, invalidate=invalidate, ttl=life)), status,
                 server.md(k, invalidate=invalidate, ttl=life))
        else:
            raise HerdproofError(f"replay --memcached does not know the command `{c.op}` of "
                                 f"step {check.step} `{action!r}`")
    return space


def _classic(reply: mc.MgReply) -> View:
    """What is compared of a classic ``get`` reply: ``VALUE`` and the data, or ``END``."""
    return (reply.status, reply.value, None, None, None)


def _view(reply: mc.MgReply, mode: str, flags: bool = True) -> View:
    """What is compared of a reply the model gives (its CAS only for an ``"item"`` key)."""
    if reply.status == "EN":
        return ("EN", None, None, None, None)
    return (reply.status, reply.value, reply.cas if mode == "item" else None, reply.ttl,
            reply.flags if flags else None)


def _server_view(reply: mc.MgReply, expected_cas: int | None, mode: str, cas: CasBijection,
                 flags: bool = True) -> View:
    """What is compared of the server's reply, its CAS id mapped to the model's."""
    if reply.status == "EN":
        return ("EN", None, None, None, None)
    model_cas: int | str | None = None
    if mode == "item" and reply.cas is not None:
        if expected_cas is not None and cas.matches(expected_cas, reply.cas):
            model_cas = expected_cas
        else:
            known = cas.to_model(reply.cas)
            model_cas = known if known is not None else f"server {reply.cas}"
    return (reply.status, reply.value, model_cas, reply.ttl, reply.flags if flags else None)


def _read_back(server: TickedMemcached, cas: CasBijection, expected: mc.Keyspace, k: int,
               mode: str) -> tuple[View, View]:
    """Item ``k`` as the policy says it is after the step, and as the server shows it."""
    want = mc.peek(expected, k)
    if mc.peek_disturbs(expected, k):  # an mg would hand out a W: look without the flags
        return (_view(want, mode, flags=False),
                _server_view(server.look(k), want.cas, mode, cas, flags=False))
    return _view(want, mode), _server_view(server.mg(k), want.cas, mode, cas)


def report(result: ServerReplay) -> tuple[bool, list[str]]:
    """Whether the trace reproduced on memcached, and the lines to print."""
    return result.report()
