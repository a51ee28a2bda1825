"""One memcached 1.6 item under the meta commands: what each command does to it, and replies.

This is the item-level semantics the ``memcached-meta`` policy is built on
(:mod:`models.policies.memcached_meta` calls these functions for its steps) and the command
model :mod:`models.memcached_commands` composes into whole commands, so the conformance tests
that hold the command model against a real ``memcached`` hold the policy's item code too. Every
function is written with the operators of :mod:`models.ops`, so it runs on concrete items and on
z3 terms alike.

Commands and rules modelled (``proto_text.c`` of memcached 1.6, checked against 1.6.18):

- ``mg k ... N<ttl>`` on a miss *vivifies* a 0-byte stub with TTL ``ttl`` and a fresh CAS, and
  hands that client ``W`` (won: recache it). Without ``N`` a miss is ``EN`` and changes nothing.
- The win rules of ``mg`` on a present item: ``W`` goes out when no win was handed out for the
  item yet (memcached's ``ITEM_TOKEN_SENT``, :attr:`Item.won`) and either the item is stale (after
  ``md k I``; this needs no flag) or ``R<secs>`` was sent and ``0 < remaining TTL < secs`` (a value
  that never expires never wins by ``R``; a stub just vivified is not checked). Every ``mg`` of an
  item whose win already went out returns ``Z``; every ``mg`` of a stale item returns ``X``.
  Nothing else of the item changes (``T<ttl>`` aside, which only sets its TTL).
- ``md k I [T<ttl>]``: a present item is marked stale, its win re-armed (``ITEM_TOKEN_SENT``
  cleared) and its CAS bumped; ``T`` sets its TTL. A missing key is ``NF``. ``md k`` deletes.
- ``ms k <len> [T<ttl>]`` stores a fresh value (no flags, a fresh CAS, exptime ``ttl``).
  ``ms k <len> C<cas>`` stores only if the item's CAS equals ``cas`` (``EX`` otherwise, ``NF`` on
  a missing key); with ``I`` as well, a ``cas`` *older* than the item's (but not ``C0``, which
  memcached reads as "no CAS") still stores, but marked stale, keeping the old item's exptime
  and ``won`` flag (``T`` is ignored), with a fresh CAS.
- Expiry: an item is gone once ``exptime <= now``; exptime 0 never expires. In ticks an item
  with ``ttl`` 1 vanishes on the next tick (:func:`tick`).
- The classic text protocol beside them: ``get k`` hits *any* present item, a 0-byte stub and
  a stale value included, and shows no flags (:func:`classic_hit`: a classic client cannot tell
  a placeholder or a stale value from a value); it changes nothing and hands out no win.
  ``set k <flags> <exptime> <len>`` stores like a plain ``ms`` (:func:`store`: a fresh value, no
  flags, a new CAS), ``delete k`` like ``md k`` (:func:`delete`).

What is abstracted away, and why:

- The value's bytes are a version number (``valued``/``version``); a stub has none. Client
  flags, LRU position, sizes and the fetched/last-access bits change no reply modelled here.
- CAS ids are one global, increasing counter in memcached. The functions take the next id
  (``fresh_cas``) as an argument: the one-key policy passes ``item.cas + 1``, the command model
  its keyspace-wide counter. Only equality and order of CAS ids matter to any command.

>>> stub = vivify(ABSENT, ttl=3, fresh_cas=1)
>>> stub.won, win_up_for_grabs(stub, recache=None)
(True, False)
>>> marked = invalidate(stub, fresh_cas=2)
>>> marked.stale, marked.won, win_up_for_grabs(marked, recache=None)
(True, False, True)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum

from herdproof.models.ops import Bool, Int, all_of, any_of, ite, negate

NEVER = 0  # the ttl of an item that never expires (memcached's exptime 0)


class Status(IntEnum):
    """The status code of an ``ms`` or ``md`` reply."""

    HD = 0  # stored / deleted / marked
    NS = 1  # not stored (only the add/replace modes, which are not modelled, return it)
    EX = 2  # the CAS did not match
    NF = 3  # no such item


@dataclass(frozen=True, slots=True)
class Item:
    """The key's item: absent, a 0-byte stub, or a value; its flags, remaining TTL and CAS.

    ``ttl`` is ``exptime - t`` (0: never expires); ``cas`` is the last CAS id memcached issued
    and survives the item's removal.
    """

    present: Bool = False
    valued: Bool = False
    version: Int = 0
    stale: Bool = False
    won: Bool = False
    ttl: Int = 0
    cas: Int = 0


ABSENT = Item()


@dataclass(frozen=True, slots=True)
class Got:
    """What one ``mg`` tells its client about the item: hit (not ``EN``) and the return flags.

    The value, CAS and TTL it returns are those of the item after the ``mg``.
    """

    hit: Bool
    win: Bool    # W: this client won the right to recache
    sent: Bool   # Z: a win had already been handed out for this item
    stale: Bool  # X: the item is stale


def gone(item: Item) -> Item:
    """The key without an item (the CAS counter carries on)."""
    return Item(cas=item.cas)


def is_stub(item: Item) -> Bool:
    """The item is a 0-byte stub vivified by ``mg ... N`` (no value stored yet)."""
    return all_of(item.present, negate(item.valued))


def recache_due(item: Item, recache: Int) -> Bool:
    """``R<recache>`` applies: the item expires (``ttl > 0``), and sooner than ``recache``
    ticks from now."""
    return all_of(item.ttl > 0, item.ttl < recache)


def win_up_for_grabs(item: Item, recache: Int | None) -> Bool:
    """An ``mg`` of this item (with ``R<recache>`` if given) gets ``W``: the item is present, no
    win went out for it yet, and it is stale or its early recache is due."""
    early: Bool = False if recache is None else recache_due(item, recache)
    return all_of(item.present, negate(item.won), any_of(item.stale, early))


def vivify(item: Item, ttl: Int, fresh_cas: Int) -> Item:
    """``mg ... N<ttl>`` on a miss: a stub with TTL ``ttl`` whose win this ``mg`` hands out."""
    return Item(present=True, valued=False, version=0, stale=False, won=True, ttl=ttl,
                cas=fresh_cas)


def hand_out_win(item: Item) -> Item:
    """The ``mg`` that gets ``W`` on an existing item: every later ``mg`` gets ``Z``."""
    return replace(item, won=True)


def touch(item: Item, ttl: Int) -> Item:
    """``T<ttl>`` (or ``touch k <ttl>``): a present item's TTL becomes ``ttl``, nothing else."""
    return ite(item.present, replace(item, ttl=ttl), item)


def get(item: Item, *, vivify_ttl: Int | None = None, recache: Int | None = None,
        touch_ttl: Int | None = None, fresh_cas: Int = 0) -> tuple[Item, Got]:
    """``mg k v c [N<vivify_ttl>] [R<recache>] [T<touch_ttl>] t``, flags applied in that order:
    the item afterwards and what the client is told."""
    missed = negate(item.present)
    created: Bool = False if vivify_ttl is None else missed
    win = any_of(created, win_up_for_grabs(item, recache))
    got = Got(hit=any_of(item.present, created), win=win,
              sent=all_of(item.present, item.won), stale=all_of(item.present, item.stale))
    after = ite(win, hand_out_win(item), item)
    if vivify_ttl is not None:
        after = ite(missed, vivify(item, vivify_ttl, fresh_cas), after)
    if touch_ttl is not None:
        after = touch(after, touch_ttl)
    return after, got


def store(item: Item, version: Int, ttl: Int, fresh_cas: Int) -> Item:
    """``ms k <len> T<ttl>`` (or a matching ``C<cas>``): a fresh value, no flags, a new CAS."""
    return Item(present=True, valued=True, version=version, stale=False, won=False, ttl=ttl,
                cas=fresh_cas)


def cas_matches(item: Item, cas: Int) -> Bool:
    """``ms k C<cas>`` finds the item, with exactly that CAS."""
    return all_of(item.present, item.cas == cas)


def classic_hit(item: Item) -> Bool:
    """``get k`` returns the item (``VALUE``, else ``END``): every present item, a stub's 0
    bytes included; nothing of the item changes."""
    return item.present


def stale_store_allowed(item: Item, cas: Int) -> Bool:
    """``ms k I C<cas>`` with a CAS older than the item's: stored, but as a stale value.
    ``C0`` is "no CAS" to memcached: it never stores (``EX``), not even as stale."""
    return all_of(item.present, cas > 0, cas < item.cas)


def store_stale(item: Item, version: Int, fresh_cas: Int) -> Item:
    """The stale store of ``ms k I C<old cas>``: the value replaced, the item's exptime and won
    flag kept, marked stale, a new CAS."""
    return replace(item, valued=True, version=version, stale=True, cas=fresh_cas)


def compare_and_store(item: Item, version: Int, ttl: Int, cas: Int, fresh_cas: Int,
                      invalid: bool = False) -> tuple[Item, Int]:
    """``ms k <len> C<cas> [I] T<ttl>``: the item afterwards and the status (HD, EX or NF)."""
    matches = cas_matches(item, cas)
    as_stale: Bool = stale_store_allowed(item, cas) if invalid else False
    after = ite(matches, store(item, version, ttl, fresh_cas),
                ite(as_stale, store_stale(item, version, fresh_cas), item))
    status = ite(negate(item.present), int(Status.NF),
                 ite(any_of(matches, as_stale), int(Status.HD), int(Status.EX)))
    return after, status


def invalidate(item: Item, fresh_cas: Int, ttl: Int | None = None) -> Item:
    """``md k I [T<ttl>]``: a present item is marked stale, its win re-armed, its CAS bumped
    (and its TTL set); a missing key stays missing (``NF``)."""
    marked = replace(item, stale=True, won=False, cas=fresh_cas,
                     ttl=item.ttl if ttl is None else ttl)
    return ite(item.present, marked, item)


def delete(item: Item) -> Item:
    """``md k``: the item is removed (``NF`` if there was none)."""
    return ite(item.present, gone(item), item)


def tick(item: Item) -> Item:
    """One tick: the item ages, and one whose exptime arrives is gone (``exptime <= t``)."""
    expires = all_of(item.present, item.ttl == 1)
    aged = replace(item, ttl=ite(item.ttl > 1, item.ttl - 1, item.ttl))
    return ite(expires, gone(item), aged)
