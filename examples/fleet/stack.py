"""The lesson's combined stack, as application code: read-through cache for one hot key.

A request (``CacheStack.get``) runs the lesson's seven steps, the program ``models/policies/
stack.py`` models:

1. ``GET key``: a hit ends the request with the value.
2. On a miss, single-flight in this process: if a rebuild of the key is already in flight here,
   wait for its outcome; otherwise lead it.
3. With the lock on: ``SET lock:key <token> PX <lock_ms> NX`` (the lesson's ``EX``, in ms).
4. Won: ``GET key`` again if ``recheck`` (someone may have refilled it meanwhile), else query
   the database, ``SET key <value> PX <ttl_ms>``, release the lock with compare-and-delete.
5. Lost: sleep ``wait_ms``, ``GET key`` again, and serve the stale fallback if it still misses.
6. The leader's outcome is every follower's outcome.

Everything with a timing or a side effect is injected, so the same class runs in a real fleet
(``run.py``: real ``asyncio.sleep``, real Redis, a database that counts its queries in Redis)
and under a Hypothesis state machine with a controllable clock and network
(``tests/conformance/test_fleet_stateful.py``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

CAD_SCRIPT = ('if redis.call("get", KEYS[1]) == ARGV[1] then '
              'return redis.call("del", KEYS[1]) else return 0 end')
STALE = "stale"


@dataclass(frozen=True)
class Config:
    """The knobs of the stack (the model's parameters, in milliseconds instead of ticks)."""

    singleflight: bool = True
    lock: bool = True
    recheck: bool = True
    lock_ms: int = 3000   # SET lock <token> PX lock_ms NX
    wait_ms: int = 100    # a request that lost the lock sleeps this long, then GETs again
    ttl_ms: int = 60_000  # the refilled value's TTL


class Redis(Protocol):
    """The four Redis calls the stack makes (``redis.asyncio.Redis`` provides them)."""

    def get(self, name: str) -> Awaitable[Any]: ...
    def set(self, name: str, value: str, *, nx: bool = ...,
            px: int | None = ...) -> Awaitable[Any]: ...
    def eval(self, script: str, numkeys: int, *keys_and_args: str) -> Awaitable[Any]: ...


class Database(Protocol):
    async def query(self) -> str: ...


Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Outcome:
    """How a request ended: ``hit`` (first GET), ``value`` (rebuilt or waited for it), or
    ``fallback`` (served the stale value)."""

    how: str
    value: str


class CacheStack:
    """One process's view of one hot key; create one per process (single-flight is per process)."""

    def __init__(self, redis: Redis, db: Database, config: Config, *, key: str = "hot",
                 lock_key: str | None = None, sleep: Sleep = asyncio.sleep) -> None:
        self.redis, self.db, self.config, self.sleep = redis, db, config, sleep
        self.key, self.lock_key = key, lock_key or f"lock:{key}"
        self.flights: dict[str, asyncio.Future[Outcome]] = {}
        self.following = 0  # requests waiting on another request's flight (for the test driver)

    async def get(self) -> Outcome:
        value = await self.redis.get(self.key)
        if value is not None:
            return Outcome("hit", value)
        if not self.config.singleflight:
            return await self._fetch()
        flight = self.flights.get(self.key)
        if flight is not None:
            self.following += 1
            try:
                return await asyncio.shield(flight)
            finally:
                self.following -= 1
        flight = asyncio.get_running_loop().create_future()
        self.flights[self.key] = flight
        try:
            outcome = await self._fetch()
            flight.set_result(outcome)
            return outcome
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # followers see it; do not warn if there are none
            raise
        finally:
            del self.flights[self.key]

    async def _fetch(self) -> Outcome:
        """The leader's part: take the lock (or not), rebuild, or wait and fall back."""
        cfg = self.config
        token = uuid.uuid4().hex
        if cfg.lock and not await self.redis.set(self.lock_key, token, nx=True, px=cfg.lock_ms):
            await self.sleep(cfg.wait_ms / 1000)
            value = await self.redis.get(self.key)
            return Outcome("value", value) if value is not None else Outcome("fallback", STALE)
        try:
            if cfg.recheck:
                value = await self.redis.get(self.key)
                if value is not None:
                    return Outcome("value", value)
            value = await self.db.query()
            await self.redis.set(self.key, value, px=cfg.ttl_ms)
            return Outcome("value", value)
        finally:
            if cfg.lock:
                await self.redis.eval(CAD_SCRIPT, 1, self.lock_key, token)
