"""Drive a real memcached with model time, over the meta protocol (``replay --memcached``, and
the conformance tests in ``tests/conformance``).

:class:`TickedMemcached` sends the exact commands of :mod:`models.memcached_commands` for a few
namespaced keys and pushes model time into the server deterministically, so no step waits for
real time (only ``tests/conformance/test_memcached_expiry.py`` does, to show the boundary
itself). :class:`MetaClient` speaks the text protocol over a plain socket: no client library.

The mapping between model ticks and server seconds (memcached's clock has 1 s resolution):

- One tick is ``tick_s`` seconds (100). A life of ``n`` ticks is sent as ``n * tick_s +
  tick_s // 2`` seconds (``N``, ``T`` of ``mg``/``ms``/``md``); 0 stays 0 (never expires). The
  extra half tick puts the server half a tick *behind* the model's instant, so the seconds a
  test really takes (under ``tick_s // 2`` since the item's TTL was last written) never carry
  an item across a tick boundary. ``t`` of ``r*tick_s + 50 - drift`` seconds reads back as
  ``r`` ticks; the driver refuses a reading whose drift reached half a tick.
- ``R<r>`` is sent as ``R<r * tick_s>``: memcached wins when ``remaining < R`` in seconds, and
  ``r' * tick_s + 50 - drift < r * tick_s`` exactly when ``r' < r``, the model's rule.
- A tick rewrites every live, expiring item's TTL with the classic ``touch k <exptime>``:
  ``r`` ticks left become ``(r - 1) * tick_s + tick_s // 2`` seconds, and an item with one tick
  left gets ``touch k -1``, which memcached treats as already expired (the item is gone at
  once, as the model's ``exptime <= t`` rule says). ``touch`` keeps the item's CAS and its
  stale/won flags and hands out no win, unlike ``mg k T<n>``, which gives ``W`` on a stale
  item. The remaining TTL is read with ``me k`` (meta debug), which also hands out nothing;
  memcached 1.6.18 prints its ``exp`` as ``current_time - exptime`` (minus the remaining
  seconds) and -1 for no expiry, later versions the remaining seconds: both are accepted.

The classic text protocol's ``get``, ``set`` and ``delete`` are sent as they are (a ``set``'s
exptime mapped like ``T``), for clients that do not speak the meta protocol.

CAS ids are the server's, raw: :class:`CasBijection` relates them to the model's.
This module does network I/O, which is why it lives in ``herdproof/`` and not in ``models/``.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Sequence

from herdproof.models.memcached_commands import TTL_NEVER, MgReply

TICK_S = 100
FLAGS = "ZXW"


class MetaClient:
    """One text-protocol connection: send a command (and data block), read its reply."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=5)
        self.reader = self.sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def send(self, command: str, data: str | None = None) -> None:
        payload = command.encode() + b"\r\n"
        if data is not None:
            payload += data.encode() + b"\r\n"
        self.sock.sendall(payload)

    def line(self) -> str:
        raw = self.reader.readline()
        if not raw.endswith(b"\r\n"):
            raise ConnectionError(f"memcached closed the connection (read {raw!r})")
        return raw[:-2].decode()

    def block(self, length: int) -> str:
        raw = self.reader.read(length + 2)
        assert raw.endswith(b"\r\n"), raw
        return raw[:-2].decode()

    def ask(self, command: str, data: str | None = None) -> str:
        """A command with a one-line reply."""
        self.send(command, data)
        return self.line()


class CasBijection:
    """Model CAS ids <-> server CAS ids, learnt as pairs are observed; order-preserving.

    memcached's CAS is one global counter (other keys and other tests take ids too), the
    model's is its own; all a command does with a CAS is compare it, so the two agree exactly
    when the pairs seen so far form a strictly increasing bijection. ``0`` (no CAS) and
    :attr:`FUTURE` (newer than any id issued) are fixed points of it.
    """

    FUTURE = 10**9
    SERVER_FUTURE = 2**62

    def __init__(self) -> None:
        self.to_server: dict[int, int] = {0: 0, self.FUTURE: self.SERVER_FUTURE}

    def matches(self, model: int, server: int) -> bool:
        """Record ``model <-> server``; False if that contradicts a pair seen before."""
        if model in self.to_server:
            return self.to_server[model] == server
        if any((m < model) != (s < server) or s == server for m, s in self.to_server.items()):
            return False
        self.to_server[model] = server
        return True

    def known(self) -> list[int]:
        """The model CAS ids a test may send (their server ids are known)."""
        return sorted(self.to_server)

    def to_model(self, server: int) -> int | None:
        """The model CAS id a server id stands for, if that pair was seen."""
        return next((m for m, s in self.to_server.items() if s == server), None)


class TickedMemcached:
    """A few namespaced keys on a real memcached, driven by ticks of model time."""

    def __init__(self, client: MetaClient, names: Sequence[str], tick_s: int = TICK_S,
                 prefix: str | None = None) -> None:
        self.client = client
        self.tick_s = tick_s
        self.prefix = prefix if prefix is not None else f"hp:{uuid.uuid4().hex[:12]}:"
        self.keys = tuple(self.prefix + name for name in names)

    def seconds(self, ticks: int) -> int:
        """Seconds sent for a life of ``ticks`` (half a tick of slack; 0: never expires)."""
        return 0 if ticks == 0 else ticks * self.tick_s + self.tick_s // 2

    def ticks(self, seconds: int) -> int:
        """Remaining ticks of an item with ``seconds`` left (see the module docstring)."""
        ticks, into = divmod(seconds, self.tick_s)
        if not 0 < into <= self.tick_s // 2:
            raise RuntimeError(f"{seconds} s left is not r*{self.tick_s} + (0, "
                               f"{self.tick_s // 2}]: real time drifted half a tick")
        return ticks

    # -- the commands ----------------------------------------------------------------

    def mg_command(self, k: int, *, value: bool = True, vivify: int | None = None,
                   recache: int | None = None, touch: int | None = None) -> str:
        parts = ["mg", self.keys[k]] + (["v"] if value else []) + ["c"]
        if vivify is not None:
            parts.append(f"N{self.seconds(vivify)}")
        if recache is not None:
            parts.append(f"R{recache * self.tick_s}")
        if touch is not None:
            parts.append(f"T{self.seconds(touch)}")
        parts.append("t")
        return " ".join(parts)

    def mg(self, k: int, *, value: bool = True, vivify: int | None = None,
           recache: int | None = None, touch: int | None = None) -> MgReply:
        """``mg k [v] c [N] [R] [T] t``; CAS raw, TTL in ticks."""
        self.client.send(self.mg_command(k, value=value, vivify=vivify, recache=recache,
                                         touch=touch))
        return self._mg_reply()

    def _mg_reply(self) -> MgReply:
        status, *tokens = self.client.line().split()
        if status == "EN":
            assert not tokens
            return MgReply(status="EN")
        data = None
        if status == "VA":
            data = self.client.block(int(tokens.pop(0)))
        assert status in ("VA", "HD"), status
        cas = ttl = None
        flags = ""
        for token in tokens:
            if token.startswith("c"):
                cas = int(token[1:])
            elif token.startswith("t"):
                seconds = int(token[1:])
                ttl = TTL_NEVER if seconds == -1 else self.ticks(seconds)
            else:
                assert token in FLAGS, token
                flags += token
        return MgReply(status=status, value=data, cas=cas, ttl=ttl, flags=flags)

    def ms_command(self, k: int, version: int, *, cas: int | None = None,
                   invalid: bool = False, ttl: int = 0) -> str:
        data = f"v{version}"
        parts = ["ms", self.keys[k], str(len(data))]
        if cas is not None:
            parts.append(f"C{cas}")
        if invalid:
            parts.append("I")
        parts.append(f"T{self.seconds(ttl)}")
        return " ".join(parts)

    def ms(self, k: int, version: int, *, cas: int | None = None, invalid: bool = False,
           ttl: int = 0) -> str:
        """``ms k <len> [C<cas>] [I] T<ttl>`` of ``v<version>``, ``cas`` the server's id."""
        command = self.ms_command(k, version, cas=cas, invalid=invalid, ttl=ttl)
        return self.client.ask(command, f"v{version}")

    def md_command(self, k: int, *, invalidate: bool = False, ttl: int | None = None) -> str:
        parts = ["md", self.keys[k]]
        if invalidate:
            parts.append("I")
            if ttl is not None:
                parts.append(f"T{self.seconds(ttl)}")
        return " ".join(parts)

    def md(self, k: int, *, invalidate: bool = False, ttl: int | None = None) -> str:
        """``md k`` or ``md k I [T<ttl>]``."""
        return self.client.ask(self.md_command(k, invalidate=invalidate, ttl=ttl))

    # -- the classic text protocol ------------------------------------------------------

    def get_command(self, k: int) -> str:
        return f"get {self.keys[k]}"

    def get(self, k: int) -> MgReply:
        """``get k``: ``VALUE`` with the data (no CAS, TTL or flags), or ``END``."""
        self.client.send(self.get_command(k))
        header = self.client.line()
        if header == "END":
            return MgReply(status="END")
        _, _, _, length = header.split()
        data = self.client.block(int(length))
        assert self.client.line() == "END"
        return MgReply(status="VALUE", value=data)

    def set_command(self, k: int, version: int, *, ttl: int = 0) -> str:
        return f"set {self.keys[k]} 0 {self.seconds(ttl)} {len(f'v{version}')}"

    def set(self, k: int, version: int, *, ttl: int = 0) -> str:
        """``set k 0 <exptime> <len>`` of ``v<version>``."""
        return self.client.ask(self.set_command(k, version, ttl=ttl), f"v{version}")

    def delete_command(self, k: int) -> str:
        return f"delete {self.keys[k]}"

    def delete(self, k: int) -> str:
        """``delete k``: ``DELETED`` or ``NOT_FOUND``."""
        return self.client.ask(self.delete_command(k))

    # -- looking without touching ------------------------------------------------------

    def remaining(self, k: int) -> int | None:
        """Seconds left (-1: never expires) by ``me k``, or None for a missing key."""
        reply = self.client.ask(f"me {self.keys[k]}")
        if reply == "EN":
            return None
        fields = dict(f.split("=", 1) for f in reply.split()[2:])
        exp = int(fields["exp"])
        # Our TTLs are >= tick_s // 2 seconds, so -1 can only mean "no expiry".
        return TTL_NEVER if exp == -1 else abs(exp)

    def look(self, k: int) -> MgReply:
        """The key by ``gets`` and ``me``, which hand out no win: status, value, CAS, TTL in
        ticks; no return flags (only ``mg`` shows them)."""
        self.client.send(f"gets {self.keys[k]}")
        header = self.client.line()
        if header == "END":
            return MgReply(status="EN")
        _, _, _, length, cas = header.split()
        data = self.client.block(int(length))
        assert self.client.line() == "END"
        seconds = self.remaining(k)
        assert seconds is not None
        ttl = TTL_NEVER if seconds == TTL_NEVER else self.ticks(seconds)
        return MgReply(status="VA", value=data, cas=int(cas), ttl=ttl)

    # -- time --------------------------------------------------------------------------

    def advance(self, ticks: int = 1) -> None:
        """``ticks`` ticks pass: every expiring item's TTL is rewritten, or the item removed."""
        for _ in range(ticks):
            for k, key in enumerate(self.keys):
                seconds = self.remaining(k)
                if seconds is None or seconds == TTL_NEVER:
                    continue
                left = self.ticks(seconds) - 1
                exptime = self.seconds(left) if left > 0 else -1
                assert self.client.ask(f"touch {key} {exptime}") == "TOUCHED"

    def cleanup(self) -> None:
        """Delete the keys (whatever state they are in)."""
        for key in self.keys:
            assert self.client.ask(f"md {key}") in ("HD", "NF")
