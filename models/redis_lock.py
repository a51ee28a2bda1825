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


#: The absent key, shared: what a release or an expiry leaves.
FREE = RedisLock()

#: Concrete lock values made so far, one shared instance each (see :func:`key`), up to
#: ``_KEYS_KEPT`` of them (a model's locks take a few dozen values; a server replay may take more).
_KEYS: dict[tuple[int, int], RedisLock] = {(NO_OWNER, 0): FREE}
_KEYS_KEPT = 4096


def key(owner: int, remaining: int) -> RedisLock:
    """The lock key owned by ``owner`` with ``remaining`` ticks, for plain ints: one shared
    instance per value (equal to ``RedisLock(owner, remaining)``), which is cheaper to make
    than a new frozen instance and is stored once however many states of a search hold it."""
    if type(owner) is not int or type(remaining) is not int:
        return RedisLock(owner=owner, remaining=remaining)
    found = _KEYS.get((owner, remaining))
    if found is None:
        found = RedisLock(owner=owner, remaining=remaining)
        if len(_KEYS) < _KEYS_KEPT:
            _KEYS[(owner, remaining)] = found
    return found


def is_free(lock: RedisLock) -> Bool:
    """No live lock key exists, so ``SET ... NX`` would succeed."""
    return lock.owner == NO_OWNER


def acquire(lock: RedisLock, token: int, ex: Int) -> RedisLock:
    """``SET lock <token> EX <ex> NX`` when the key is absent (the caller's guard)."""
    if type(token) is int and type(ex) is int:  # concrete: the shared instance
        return key(token, ex)
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
    if type(lock.owner) is int and type(token) is int:  # concrete: plain Python
        return FREE if lock.owner == token else lock
    return ite(lock.owner == token, RedisLock(), lock)


def tick(lock: RedisLock) -> RedisLock:
    """One tick passes: a live lock loses a tick of life, or expires if it had none left."""
    owner, remaining = lock.owner, lock.remaining
    if type(owner) is int and type(remaining) is int:  # concrete: plain Python
        if owner == NO_OWNER or remaining == 0:
            return lock if owner == NO_OWNER and remaining == 0 else FREE
        return key(owner, remaining - 1)
    expires = any_of(is_free(lock), redis_expires_on_tick(lock.remaining))
    return ite(expires, RedisLock(), RedisLock(owner=lock.owner, remaining=lock.remaining - 1))


def in_domain(lock: RedisLock, requests: int, ex: Int) -> Bool:
    """Owner is a request or nobody; a present key has 0..ex ticks left, an absent one 0."""
    return all_of(
        lock.owner >= NO_OWNER, lock.owner < requests,
        lock.remaining >= 0, lock.remaining <= ex,
        any_of(lock.owner != NO_OWNER, lock.remaining == 0),
    )
