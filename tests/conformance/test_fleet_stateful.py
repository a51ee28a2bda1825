"""The real stack (examples/fleet/stack.py) as a system under test for Hypothesis.

The state machine runs ``CacheStack`` itself, on a real Redis, with time and message order in
the test's hands (examples/fleet/sim.py): two processes (two ``CacheStack`` objects, each with
its own single-flight map) get up to two requests each; a rule lets a request arrive, a rule
delivers one pending Redis command of a chosen request, and a rule advances the manual clock by
a tick (which also rewrites the server's TTLs, so the lock's ``PX`` expires in ticks). The
invariants are the model's properties, read off the real code: ONE (the counting database never
runs two queries at once) and REBUILDS<=1 (it is queried at most once).

What it finds, as the model predicts (examples/fleet/README.md shows the shrunk runs):

- ``ex >= rebuild`` with the re-check, Redis commands never held across a tick: nothing.
- ``ex < rebuild``: two concurrent queries (ONE).
- no re-check after winning the lock: a second query (REBUILDS<=1), even with ``ex >= rebuild``.
- a Redis command held across ticks (a pause between the query and the write): two
  concurrent queries even with ``ex >= rebuild``; the model's ``pause`` parameter is this.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from examples.fleet.sim import REQUEST, CountingDB, GatedRedis, ManualClock
from examples.fleet.stack import CacheStack, Config
from herdproof.redis_replay import TickedRedis
from tests.conformance.report import SEQUENCES

TICK_MS = 10_000  # long enough that wall time never moves a TTL across a tick during a run
NODES, PER_NODE = 2, 2


class FleetViolation(AssertionError):
    """A property of the model does not hold for the real code."""


def fleet_machine(url: str, *, ex: int, rebuild: int, recheck: bool = True,
                  urgent: bool = True, wait: int = 1,
                  check: tuple[str, ...] = ("ONE", "REBUILDS<=1")) -> type[RuleBasedStateMachine]:
    class FleetMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            SEQUENCES["fleet stack (stateful)"] += 1
            self.loop = asyncio.new_event_loop()
            key = f"fleetsim:{uuid.uuid4().hex[:10]}:hot"
            self.sync = redis.Redis.from_url(url, decode_responses=True)
            self.server = TickedRedis(self.sync, (key, f"lock:{key}"), TICK_MS, prefix="")
            self.clock = ManualClock(TICK_MS, on_tick=self.server.advance)
            self.net = GatedRedis(aioredis.Redis.from_url(url, decode_responses=True))
            self.db = CountingDB(self.clock, rebuild)
            config = Config(lock=True, recheck=recheck, lock_ms=self.server.ms(ex),
                            wait_ms=wait * TICK_MS, ttl_ms=self.server.ms(1000))
            self.stacks = [CacheStack(self.net, self.db, config, key=key, sleep=self.clock.sleep)
                           for _ in range(NODES)]
            self.tasks: list[asyncio.Task[Any]] = []
            self.arrived = [0] * NODES
            self.log: list[str] = []

        def teardown(self) -> None:
            self.loop.run_until_complete(self._shut_down())
            self.loop.close()
            self.server.cleanup()
            self.sync.close()

        async def _shut_down(self) -> None:
            for task in self.tasks:
                task.cancel()
            for _ in range(2000):  # a cancelled leader still releases its lock: let it through
                if all(task.done() for task in self.tasks):
                    break
                for request in list(self.net.pending):
                    self.net.deliver(request)
                await asyncio.sleep(0.001)
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await self.net.inner.aclose()

        @precondition(lambda self: min(self.arrived) < PER_NODE)
        @rule(node=st.integers(0, NODES - 1))
        def arrive(self, node: int) -> None:
            if self.arrived[node] >= PER_NODE:
                node = self.arrived.index(min(self.arrived))
            self.arrived[node] += 1
            request = len(self.tasks)
            context = contextvars.copy_context()
            context.run(REQUEST.set, request)
            self.tasks.append(self.loop.create_task(self.stacks[node].get(), context=context))
            self.log.append(f"t={self.clock.now} r{request} arrives at process {node}")
            self.settle()

        @precondition(lambda self: bool(self.net.pending))
        @rule(k=st.integers(0, NODES * PER_NODE - 1))
        def deliver(self, k: int) -> None:
            pending = sorted(self.net.pending)
            request = pending[k % len(pending)]
            what = self.net.deliver(request)
            self.settle()
            self.log.append(f"t={self.clock.now} r{request} {what}")

        @precondition(lambda self: bool(self.net.pending))
        @rule()
        def deliver_all(self) -> None:
            """Let every request run until it waits on the clock or a flight."""
            while self.net.pending:
                self.deliver(0)

        @precondition(lambda self: not (urgent and self.net.pending))
        @rule()
        def tick(self) -> None:
            self.clock.advance()
            self.log.append(f"t={self.clock.now} tick")
            self.settle()

        def settle(self) -> None:
            self.loop.run_until_complete(self._settle())
            for task in self.tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]

        async def _settle(self) -> None:
            """Run until every request waits on the test: a gate, the clock or a flight."""
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                await asyncio.sleep(0)  # one turn of the loop, polling the sockets
                live = sum(1 for t in self.tasks if not t.done())
                waiting = (len(self.net.pending) + self.clock.sleeping
                           + sum(s.following for s in self.stacks))
                if waiting >= live:
                    return
            raise AssertionError("the stack did not come to rest within 2 s")

        @invariant()
        def one_query_at_a_time(self) -> None:
            if "ONE" in check and self.db.max_active > 1:
                raise FleetViolation("ONE violated by the real code: two concurrent DB queries "
                                     "after\n  " + "\n  ".join(self.log))

        @invariant()
        def one_query_in_all(self) -> None:
            if "REBUILDS<=1" in check and self.db.starts > 1:
                raise FleetViolation("REBUILDS<=1 violated by the real code: a second DB query "
                                     "after\n  " + "\n  ".join(self.log))

    return FleetMachine


def run(machine: type[RuleBasedStateMachine], examples: int, shrink: bool = False) -> None:
    """Run the machine; shrinking (which re-runs the real stack hundreds of times, about a
    minute) is off in the suite and on for ``python -m tests.conformance.test_fleet_stateful``,
    which prints the shrunk runs examples/fleet/README.md quotes."""
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shrink else [])
    run_state_machine_as_test(machine, settings=settings(
        max_examples=examples, stateful_step_count=30, deadline=None, phases=phases))


def test_the_safe_stack_keeps_one_query(redis_url: str) -> None:
    run(fleet_machine(redis_url, ex=3, rebuild=2), examples=100)


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("ex < rebuild", {"ex": 1, "rebuild": 3, "check": ("ONE",)}, "ONE violated"),
    ("no re-check", {"ex": 2, "rebuild": 1, "recheck": False, "check": ("REBUILDS<=1",)},
     "REBUILDS<=1 violated"),
    ("a pause", {"ex": 2, "rebuild": 2, "urgent": False, "check": ("ONE",)}, "ONE violated"),
]


@pytest.mark.parametrize(("case", "options", "claim"), CASES)
def test_hypothesis_finds_the_models_races_in_the_code(
        redis_url: str, case: str, options: dict[str, Any], claim: str) -> None:
    with pytest.raises(FleetViolation, match=claim):
        run(fleet_machine(redis_url, **options), examples=500)


if __name__ == "__main__":  # pragma: no cover - documentation helper, needs a Redis URL
    import sys

    for case, options, _ in CASES:
        try:
            run(fleet_machine(sys.argv[1], **options), examples=300, shrink=True)
            print(f"{case}: nothing found")
        except FleetViolation as exc:
            print(f"{case}: {exc}\n")
