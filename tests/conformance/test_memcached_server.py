"""The memcached fixture: a real memcached 1.6 that speaks the meta protocol.

This is the fixture's smoke test. The models are held against the same server by
``test_memcached_commands.py`` (the command model :mod:`models.memcached_commands`, the item
semantics :mod:`models.memcached_item` the ``memcached-meta`` policy uses, and the policy's own
scenarios replayed command by command) and ``test_memcached_expiry.py`` (the expiry boundary
against real time).
"""

from __future__ import annotations

import socket


def _ask(address: tuple[str, int], request: bytes) -> bytes:
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(request)
        reply = b""
        while not reply.endswith(b"MN\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply


def test_memcached_speaks_the_meta_protocol(memcached_address: tuple[str, int]) -> None:
    reply = _ask(memcached_address, b"ms hp:k 2 T60\r\nhi\r\nmg hp:k v t\r\nmn\r\n")
    assert reply.startswith(b"HD\r\nVA 2 t")
    assert b"\r\nhi\r\n" in reply and reply.endswith(b"MN\r\n")
