"""The Redis commands the models rely on, one command at a time, for conformance against a server.

The policy models abstract Redis into the lock of :mod:`models.redis_lock` and a cache flag.
This module is the level below: a tiny keyspace of a few named keys, each holding a small
integer value (a request's token, ``r<id>`` on the wire) and a remaining life in ticks, and the
exact commands the policies issue:

- ``GET k`` -> the value or nil;
- ``SET k v`` (no expiry) -> ``OK``;
- ``SET k v NX PX <ms>`` -> ``OK`` if no live key exists, else nil;
- ``DEL k`` -> the number of keys removed (0 or 1);
- compare-and-delete,
  ``if redis.call("get",KEYS[1])==ARGV[1] then return redis.call("del",KEYS[1]) else return 0 end``
  -> 1 or 0;
- owner-checked ``PEXPIRE`` (a lock extension / watchdog),
  ``if redis.call("get",KEYS[1])==ARGV[1] then return redis.call("pexpire",KEYS[1],ARGV[2])
  else return 0 end`` -> 1 or 0;
- ``PTTL k`` -> -2 (no key), -1 (no expiry) or the remaining life, here in whole ticks;
- a clock tick.

Expiry is the one of :mod:`models.clock` (alive while ``t <= exp``): a key with remaining life
0 is still there, and the next tick removes it. The lock-key operations are delegated to
:mod:`models.redis_lock`, so the conformance tests that hold this module against a real server
hold the lock model the policies use as well.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from herdproof.models import redis_lock
from herdproof.models.clock import redis_expires_on_tick
from herdproof.models.redis_lock import NO_OWNER, RedisLock, Release

ABSENT = NO_OWNER     # value of a key that does not exist
PERSIST = -1          # remaining life of a key without an expiry
PTTL_NO_KEY = -2      # Redis's PTTL reply for a missing key
PTTL_NO_EXPIRY = -1   # ... and for a key without an expiry


@dataclass(frozen=True, slots=True)
class Key:
    """One key: its value (a token, ``ABSENT`` when missing) and remaining life in ticks."""

    value: int = ABSENT
    remaining: int = 0


@dataclass(frozen=True, slots=True)
class Keyspace:
    """The keys the commands may name, by index, in a fixed order."""

    keys: tuple[Key, ...]

    @classmethod
    def empty(cls, size: int) -> Keyspace:
        return cls(keys=(Key(),) * size)

    def get(self, k: int) -> int | None:
        """``GET k``: the value, or ``None`` (nil) for a missing key."""
        value = self.keys[k].value
        return None if value == ABSENT else value

    def pttl(self, k: int) -> int:
        """``PTTL k`` in ticks: -2 missing, -1 no expiry, else the remaining life."""
        key = self.keys[k]
        if key.value == ABSENT:
            return PTTL_NO_KEY
        return PTTL_NO_EXPIRY if key.remaining == PERSIST else key.remaining

    def _put(self, k: int, key: Key) -> Keyspace:
        return replace(self, keys=(*self.keys[:k], key, *self.keys[k + 1:]))


def as_lock(key: Key) -> RedisLock:
    """The key as the policies' lock (only meaningful for a key with an expiry)."""
    return RedisLock(owner=key.value, remaining=key.remaining if key.value != ABSENT else 0)


def from_lock(lock: RedisLock) -> Key:
    return Key(value=lock.owner, remaining=lock.remaining)


def set_plain(space: Keyspace, k: int, value: int) -> tuple[Keyspace, str]:
    """``SET k v``: overwrite, dropping any expiry."""
    return space._put(k, Key(value=value, remaining=PERSIST)), "OK"


def set_nx_px(space: Keyspace, k: int, value: int, ticks: int) -> tuple[Keyspace, str | None]:
    """``SET k v NX PX <ticks>``: the lock's acquire; nil when a live key exists."""
    lock = as_lock(space.keys[k])
    if not redis_lock.is_free(lock):
        return space, None
    return space._put(k, from_lock(redis_lock.acquire(lock, value, ticks))), "OK"


def delete(space: Keyspace, k: int) -> tuple[Keyspace, int]:
    """``DEL k``: removes whatever is there (the ``del`` release)."""
    existed = space.keys[k].value != ABSENT
    if space.keys[k].remaining == PERSIST:
        return space._put(k, Key()), int(existed)
    released = redis_lock.release(as_lock(space.keys[k]), NO_OWNER, Release.DEL)
    return space._put(k, from_lock(released)), int(existed)


def compare_and_delete(space: Keyspace, k: int, token: int) -> tuple[Keyspace, int]:
    """The compare-and-delete script: removes the key only if it holds ``token``."""
    ours = space.keys[k].value == token
    if space.keys[k].remaining == PERSIST:
        return (space._put(k, Key()), 1) if ours else (space, 0)
    released = redis_lock.release(as_lock(space.keys[k]), token, Release.CAD)
    return space._put(k, from_lock(released)), int(ours)


def pexpire_if_owner(space: Keyspace, k: int, token: int,
                     ticks: int) -> tuple[Keyspace, int]:
    """The owner-checked ``PEXPIRE`` script: resets the life of a key that holds ``token``.

    ``PEXPIRE`` with a non-positive time deletes the key, as on the server.
    """
    if space.keys[k].value != token:
        return space, 0
    if ticks < 0:
        return space._put(k, Key()), 1
    return space._put(k, Key(value=token, remaining=ticks)), 1


def tick(space: Keyspace) -> Keyspace:
    """One tick: keys with an expiry lose a tick of life, or vanish if they had none left."""
    keys = []
    for key in space.keys:
        if key.value == ABSENT or key.remaining == PERSIST:
            keys.append(key)
        elif redis_expires_on_tick(key.remaining):
            keys.append(Key())
        else:
            keys.append(from_lock(redis_lock.tick(as_lock(key))))
    return Keyspace(keys=tuple(keys))
