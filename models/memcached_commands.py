"""The memcached meta commands the models rely on, one command at a time, for conformance.

The ``memcached-meta`` policy abstracts memcached into one item (:mod:`models.memcached_item`).
This module is the level below: a tiny keyspace of a few keys, each holding a
:class:`~models.memcached_item.Item`, one global CAS counter, and the exact replies of:

- ``mg k [v] c [N<n>] [R<r>] [T<t>] t`` -> ``VA <len> <flags>`` + data (with ``v``),
  ``HD <flags>`` (without), or ``EN`` on a miss without ``N``. The return flags are ``c<cas>``,
  ``t<ttl>`` (remaining ticks; -1 for an item that never expires) and then, in the server's
  order, ``Z`` (a win was already handed out), ``X`` (stale), ``W`` (this client won). The
  flags act in the order sent: ``N`` vivifies, ``R`` compares the TTL before ``T`` changes it,
  and ``t`` reports the TTL after ``T``.
- ``ms k <len> [C<cas>] [I] T<t>`` -> ``HD``, ``EX`` (CAS mismatch) or ``NF`` (``C`` on a
  missing key). ``I`` only matters with ``C``: a CAS older than the item's then stores a stale
  value (see :func:`models.memcached_item.compare_and_store`). ``NS`` is never returned: only the
  add/replace/append modes (``M``) produce it, and they are not modelled.
- ``md k [I [T<t>]]`` -> ``HD`` or ``NF``.
- the classic text protocol's ``get k`` -> ``VALUE`` + data (a stub's empty block too, a stale
  value unmarked) or ``END``; ``set k 0 <exptime> <len>`` -> ``STORED`` (as a plain ``ms``);
  ``delete k`` -> ``DELETED`` or ``NOT_FOUND``.
- a clock tick.

Findings from memcached 1.6.18 that shaped this module (each is asserted by
``tests/conformance/test_memcached_commands.py``):

- A vivified stub is a 0-byte item: with ``v`` the winner gets ``VA 0 ... W`` and an empty data
  block, every later ``mg`` ``VA 0 ... Z`` (never ``EN``), until a value is stored or the stub
  expires.
- ``R`` never wins on an item that never expires, nor on a stub the same ``mg`` vivified; it
  wins when ``0 < remaining < R`` (strictly) and no win went out yet.
- ``mg ... T<t>`` only sets the TTL: the ``W``/``Z``/``X`` state and the CAS are kept, but an
  ``mg`` with ``T`` of a stale, unwon item hands out ``W`` like any ``mg``. The classic
  ``touch k <exptime>`` keeps flags and CAS and hands out nothing (the tick uses it);
  ``touch k -1`` removes the item at once.
- ``md k I`` and ``md k`` on a missing key are ``NF``; ``md k I`` on a stale item re-arms the
  win again and bumps the CAS again.
- CAS ids are one global counter: vivification, every successful store (also a stale one) and
  every ``md I`` take the next id; ``mg``, ``touch`` and failed stores take none. A test
  compares model and server CAS ids through an order-preserving bijection.
- ``ms C<cas>`` with a CAS that is not the item's is ``EX`` (also with ``I`` when the CAS is
  newer than the item's); on a missing key it is ``NF``, with or without ``I``.
- ``ms`` without ``C`` ignores ``I`` and stores a fresh value.
- A classic ``get`` of a vivified stub is a hit with 0 bytes (``VALUE k 0 0``), of a stale item
  a hit with the value and nothing to say it is stale; it hands out no ``W`` (the next ``mg``
  of a stale item still gets it). ``set`` replaces the item like a plain ``ms`` (flags cleared,
  a fresh CAS); ``delete`` removes it, taking no CAS id.

What is abstracted away: values are versions, sent as ``v<version>``; client flags, sizes,
noreply/opaque/key flags and the LRU are not modelled; time is in ticks (the test driver maps
them to server seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from herdproof.models import memcached_item as mi
from herdproof.models.memcached_item import NEVER, Item, Status

TTL_NEVER = -1  # what ``t`` returns for an item that never expires


@dataclass(frozen=True, slots=True)
class MgReply:
    """An ``mg`` reply: status, data block (with ``v``), CAS, TTL in ticks and return flags.

    ``flags`` holds ``Z``, ``X`` and ``W`` in the order the server sends them.
    """

    status: str
    value: str | None = None
    cas: int | None = None
    ttl: int | None = None
    flags: str = ""


MISS = MgReply(status="EN")


@dataclass(frozen=True, slots=True)
class Keyspace:
    """The keys the commands may name, by index, and the last CAS id the server issued."""

    items: tuple[Item, ...]
    cas: int = 0

    @classmethod
    def empty(cls, size: int) -> Keyspace:
        return cls(items=(mi.ABSENT,) * size)

    def _fresh(self) -> int:
        """The CAS id the next vivification, store or invalidation takes."""
        return self.cas + 1

    def _put(self, k: int, item: Item) -> Keyspace:
        items = (*self.items[:k], item, *self.items[k + 1:])
        return replace(self, items=items, cas=max(self.cas, int(item.cas)))


def wire_value(item: Item) -> str:
    """The data block of a present item: ``v<version>``, or nothing for a stub."""
    return f"v{item.version}" if item.valued else ""


def ttl_reply(ttl: int) -> int:
    """What ``t`` returns for a remaining life of ``ttl`` ticks (-1: never expires)."""
    return TTL_NEVER if ttl == NEVER else ttl


def _reply(item: Item, got: mi.Got, value: bool) -> MgReply:
    if not got.hit:
        return MISS
    flags = "Z" * bool(got.sent) + "X" * bool(got.stale) + "W" * bool(got.win)
    return MgReply(status="VA" if value else "HD", value=wire_value(item) if value else None,
                   cas=int(item.cas), ttl=ttl_reply(int(item.ttl)), flags=flags)


def mg(space: Keyspace, k: int, *, value: bool = True, vivify: int | None = None,
       recache: int | None = None, touch: int | None = None) -> tuple[Keyspace, MgReply]:
    """``mg k [v] c [N<vivify>] [R<recache>] [T<touch>] t``."""
    item, got = mi.get(space.items[k], vivify_ttl=vivify, recache=recache, touch_ttl=touch,
                       fresh_cas=space._fresh())
    return space._put(k, item), _reply(item, got, value)


def peek(space: Keyspace, k: int) -> MgReply:
    """What ``mg k v c t`` would reply, without its effect (see :func:`peek_disturbs`)."""
    item, got = mi.get(space.items[k])
    return _reply(item, got, value=True)


def peek_disturbs(space: Keyspace, k: int) -> bool:
    """True if a plain ``mg k v c t`` would hand out a ``W`` (the item is stale and unwon)."""
    return bool(mi.win_up_for_grabs(space.items[k], recache=None))


def ms(space: Keyspace, k: int, version: int, *, cas: int | None = None, invalid: bool = False,
       ttl: int = NEVER) -> tuple[Keyspace, str]:
    """``ms k <len> [C<cas>] [I] T<ttl>`` of the value ``v<version>``."""
    item = space.items[k]
    if cas is None:
        return space._put(k, mi.store(item, version, ttl, space._fresh())), Status.HD.name
    after, status = mi.compare_and_store(item, version, ttl, cas, space._fresh(), invalid)
    return space._put(k, after), Status(status).name


def md(space: Keyspace, k: int, *, invalidate: bool = False,
       ttl: int | None = None) -> tuple[Keyspace, str]:
    """``md k`` (delete) or ``md k I [T<ttl>]`` (mark stale)."""
    item = space.items[k]
    if not item.present:
        return space, Status.NF.name
    if invalidate:
        return space._put(k, mi.invalidate(item, space._fresh(), ttl)), Status.HD.name
    return space._put(k, mi.delete(item)), Status.HD.name


def tick(space: Keyspace) -> Keyspace:
    """One tick: every item ages; those whose exptime arrives are gone."""
    return replace(space, items=tuple(mi.tick(item) for item in space.items))


def classic_get(space: Keyspace, k: int) -> tuple[Keyspace, MgReply]:
    """``get k``: ``VALUE`` with the data block (empty for a stub, unmarked for a stale value)
    or ``END`` on a miss; no CAS, TTL or flags; the item is unchanged."""
    item = space.items[k]
    if not mi.classic_hit(item):
        return space, MgReply(status="END")
    return space, MgReply(status="VALUE", value=wire_value(item))


def classic_set(space: Keyspace, k: int, version: int, ttl: int = NEVER) -> tuple[Keyspace, str]:
    """``set k 0 <exptime> <len>`` of ``v<version>``: always ``STORED``, a fresh value."""
    return space._put(k, mi.store(space.items[k], version, ttl, space._fresh())), "STORED"


def classic_delete(space: Keyspace, k: int) -> tuple[Keyspace, str]:
    """``delete k``: ``DELETED`` (the item is gone) or ``NOT_FOUND``."""
    item = space.items[k]
    if not item.present:
        return space, "NOT_FOUND"
    return space._put(k, mi.delete(item)), "DELETED"
