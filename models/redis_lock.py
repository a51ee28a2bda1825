"""The Redis lock ``SET lock <token> EX <ex> NX`` and its two ways of being released.

Commands modelled (each atomic in Redis, so each is one step):

- acquire: ``SET lock <token> EX <ex> NX`` succeeds only if no live key exists.
- ``DEL lock``: removes whatever key is there, including one another request set after ours
  expired (the foreign release the ``del`` variant is meant to exhibit).
- compare-and-delete, the Lua script
  ``if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end``:
  removes the key only if it still holds our token.

The token is the owning request's id: unique per request, which is all the fencing the
release needs. Remaining life is relative to now (see :mod:`models.clock`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from herdproof.models.clock import redis_expires_on_tick
from herdproof.models.ops import Bool, Int, all_of, any_of, ite

NO_OWNER = -1


class Release(IntEnum):
    """How a rebuilder gives the lock back."""

    DEL = 0  # unconditional DEL lock
    CAD = 1  # owner-checked compare-and-delete (Lua)
    GET_DEL = 2  # GET lock, then (a round trip later) DEL lock if the token read was ours


@dataclass(frozen=True, slots=True)
class RedisLock:
    """The lock key: its owner's token (``NO_OWNER`` when absent) and remaining life."""

    owner: Int = NO_OWNER
    remaining: Int = 0


def is_free(lock: RedisLock) -> Bool:
    """No live lock key exists, so ``SET ... NX`` would succeed."""
    return lock.owner == NO_OWNER


def acquire(lock: RedisLock, token: int, ex: Int) -> RedisLock:
    """``SET lock <token> EX <ex> NX`` when the key is absent (the caller's guard)."""
    return RedisLock(owner=token, remaining=ex)


def removes_foreign(lock: RedisLock, token: int, release: Release) -> Bool:
    """True if releasing with ``token`` would delete a lock some other request owns."""
    if release is Release.CAD:
        return False
    return all_of(lock.owner != NO_OWNER, lock.owner != token)


def release(lock: RedisLock, token: int, how: Release) -> RedisLock:
    """Release by ``DEL`` (whatever is there) or by compare-and-delete (only our own)."""
    if how is not Release.CAD:
        return RedisLock()
    return ite(lock.owner == token, RedisLock(), lock)


def tick(lock: RedisLock) -> RedisLock:
    """One tick passes: a live lock loses a tick of life, or expires if it had none left."""
    expires = any_of(is_free(lock), redis_expires_on_tick(lock.remaining))
    return ite(expires, RedisLock(), RedisLock(owner=lock.owner, remaining=lock.remaining - 1))


def in_domain(lock: RedisLock, requests: int, ex: Int) -> Bool:
    """Owner is a request or nobody; a present key has 0..ex ticks left, an absent one 0."""
    return all_of(
        lock.owner >= NO_OWNER, lock.owner < requests,
        lock.remaining >= 0, lock.remaining <= ex,
        any_of(lock.owner != NO_OWNER, lock.remaining == 0),
    )
