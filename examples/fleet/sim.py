"""A controllable world for the stack: a manual clock and a network whose replies a test releases.

``CacheStack`` takes its ``sleep`` and its Redis client as arguments, so a test can run the real
class with time and message order in its own hands:

- :class:`ManualClock` ``sleep`` blocks until the test advances the clock far enough; each tick
  also rewrites the real server's TTLs by one tick (``herdproof.redis_replay.TickedRedis``),
  so a lock's ``PX`` expires in model time, not wall time.
- :class:`GatedRedis` holds every command a request sends until the test delivers it, so the
  test chooses the interleaving of the requests' Redis commands (what the model's actions are).

``tests/conformance/test_fleet_stateful.py`` drives these from a Hypothesis state machine.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REQUEST: contextvars.ContextVar[int] = contextvars.ContextVar("request")


@dataclass
class ManualClock:
    """Time in ticks of ``tick_ms``; ``advance`` is the only way it passes."""

    tick_ms: int
    on_tick: Callable[[], None] = lambda: None
    now: int = 0
    sleepers: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        ticks = round(seconds * 1000 / self.tick_ms)
        if ticks <= 0:
            await asyncio.sleep(0)
            return
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.now + ticks, wake))
        await wake

    @property
    def sleeping(self) -> int:
        return sum(1 for _, wake in self.sleepers if not wake.done())

    def advance(self) -> None:
        self.now += 1
        self.on_tick()
        due = [wake for at, wake in self.sleepers if at <= self.now]
        self.sleepers = [(at, wake) for at, wake in self.sleepers if at > self.now]
        for wake in due:
            if not wake.done():
                wake.set_result(None)


class GatedRedis:
    """Wraps an asyncio Redis client; each command waits until :meth:`deliver` lets it go."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.pending: dict[int, tuple[str, asyncio.Future[None]]] = {}

    async def _gate(self, what: str) -> None:
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        request = REQUEST.get()
        self.pending[request] = (what, gate)
        try:
            await gate
        finally:
            if self.pending.get(request, (what, None))[1] is gate:
                del self.pending[request]  # cancelled while held

    def deliver(self, request: int) -> str:
        what, gate = self.pending.pop(request)
        if not gate.done():
            gate.set_result(None)
        return what

    async def get(self, name: str) -> Any:
        await self._gate("GET")
        return await self.inner.get(name)

    async def set(self, name: str, value: str, *, nx: bool = False,
                  px: int | None = None) -> Any:
        await self._gate("SET NX" if nx else "SET")
        return await self.inner.set(name, value, nx=nx, px=px)

    async def eval(self, script: str, numkeys: int, *keys_and_args: str) -> Any:
        await self._gate("EVAL compare-and-delete")
        return await self.inner.eval(script, numkeys, *keys_and_args)


@dataclass
class CountingDB:
    """The database: counts queries, and how many run at once; a query takes ``ticks``."""

    clock: ManualClock
    ticks: int
    starts: int = 0
    active: int = 0
    max_active: int = 0

    async def query(self) -> str:
        self.starts += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await self.clock.sleep(self.ticks * self.clock.tick_ms / 1000)
        finally:
            self.active -= 1
        return f"value-{self.starts}"
