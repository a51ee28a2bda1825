"""Run the stack as a real fleet: several OS processes, many concurrent requests each.

Every process builds its own :class:`~examples.fleet.stack.CacheStack` (so single-flight is per
process, as in production), waits at a barrier shared by the whole fleet, sleeps its own
arrival offset, then fires ``requests`` concurrent ``get()`` calls at a key that has just
expired. The stand-in database counts its queries with ``INCR`` on a Redis key, tracks how
many run at once, and takes ``rebuild_ms`` per query.

    python -m examples.fleet.run --redis redis://127.0.0.1:6379 --processes 4 --requests 50
    python -m examples.fleet.run --redis ... --no-lock            # single-flight only: 4 queries
    python -m examples.fleet.run --redis ... --lock-ms 250 --rebuild-ms 1750 --stagger-ms 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

from examples.fleet.stack import CacheStack, Config

# INCR the running count, keep the maximum seen: one atomic step, so the maximum is exact.
ENTER = ('local n = redis.call("incr", KEYS[1]) '
         'if n > tonumber(redis.call("get", KEYS[2]) or "0") then '
         'redis.call("set", KEYS[2], n) end return redis.call("incr", KEYS[3])')


@dataclass(frozen=True)
class Fleet:
    processes: int = 4
    requests: int = 50
    rebuild_ms: int = 500
    stagger_ms: int = 0   # process i arrives i * stagger_ms after the common start


class RedisCountingDB:
    """A database stand-in: each query is counted in Redis and takes ``rebuild_ms``."""

    def __init__(self, client: aioredis.Redis, prefix: str, rebuild_ms: int) -> None:
        self.client, self.prefix, self.rebuild_ms = client, prefix, rebuild_ms

    async def query(self) -> str:
        keys = [self.prefix + k for k in ("db:active", "db:max_active", "db:queries")]
        number = await self.client.eval(ENTER, 3, *keys)
        await asyncio.sleep(self.rebuild_ms / 1000)
        await self.client.decr(keys[0])
        return f"value-{number}"


async def _process(url: str, prefix: str, config: Config, fleet: Fleet, index: int,
                   start_at: float) -> list[tuple[str, str]]:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        db = RedisCountingDB(client, prefix, fleet.rebuild_ms)
        stack = CacheStack(client, db, config, key=prefix + "hot")
        await client.ping()  # connect before the start, so arrival times are what we said
        await asyncio.sleep(max(0.0, start_at + index * fleet.stagger_ms / 1000 - time.time()))
        outcomes = await asyncio.gather(*(stack.get() for _ in range(fleet.requests)))
        return [(o.how, o.value) for o in outcomes]
    finally:
        await client.aclose()


def _worker(url: str, prefix: str, config: Config, fleet: Fleet, index: int,
            barrier: Any, go: Any, results: Any) -> None:
    barrier.wait()  # every process is up and has imported everything
    go.wait()       # ... and the parent has now set the common start instant
    start_at = float(results.get_start())
    outcomes = asyncio.run(_process(url, prefix, config, fleet, index, start_at))
    results.put(index, outcomes)


class _Results:
    """A tiny shared mailbox: the common start time, and each process's outcomes."""

    def __init__(self, manager: Any) -> None:
        self.start = manager.Value("d", 0.0)
        self.queue = manager.Queue()

    def get_start(self) -> float:
        return float(self.start.value)

    def put(self, index: int, outcomes: list[tuple[str, str]]) -> None:
        self.queue.put((index, outcomes))


def run_fleet(url: str, config: Config, fleet: Fleet) -> dict[str, Any]:
    """Run one fleet against the Redis at ``url``; returns the counts.

    ``db_queries`` (the stand-in DB's query count), ``max_concurrent_queries``, and
    ``outcomes`` (how many requests ended ``hit`` / ``value`` / ``fallback``).
    """
    prefix = f"fleet:{uuid.uuid4().hex[:10]}:"
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        results = _Results(manager)
        barrier, go = context.Barrier(fleet.processes + 1), context.Event()
        workers = [context.Process(target=_worker, args=(url, prefix, config, fleet, i,
                                                         barrier, go, results))
                   for i in range(fleet.processes)]
        for worker in workers:
            worker.start()
        barrier.wait(timeout=60)
        # everyone sleeps until the same instant, far enough ahead to have connected by then
        results.start.value = time.time() + 0.3
        go.set()
        collected = [results.queue.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
            if worker.exitcode != 0:
                raise RuntimeError(f"fleet process exited with {worker.exitcode}")
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        queries = int(client.get(prefix + "db:queries") or 0)
        max_active = int(client.get(prefix + "db:max_active") or 0)
        client.delete(*client.keys(prefix + "*"))
    finally:
        client.close()
    hows: Counter[str] = Counter(how for _, outcomes in collected for how, _ in outcomes)
    return {"db_queries": queries, "max_concurrent_queries": max_active,
            "outcomes": dict(sorted(hows.items())), "config": asdict(config),
            "fleet": asdict(fleet)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", required=True, metavar="URL")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--rebuild-ms", type=int, default=500)
    parser.add_argument("--stagger-ms", type=int, default=0)
    parser.add_argument("--lock-ms", type=int, default=3000)
    parser.add_argument("--wait-ms", type=int, default=100)
    parser.add_argument("--no-lock", action="store_true")
    parser.add_argument("--no-singleflight", action="store_true")
    parser.add_argument("--no-recheck", action="store_true")
    args = parser.parse_args()
    config = Config(singleflight=not args.no_singleflight, lock=not args.no_lock,
                    recheck=not args.no_recheck, lock_ms=args.lock_ms, wait_ms=args.wait_ms)
    fleet = Fleet(args.processes, args.requests, args.rebuild_ms, args.stagger_ms)
    print(json.dumps(run_fleet(args.redis, config, fleet), indent=2), flush=True)


if __name__ == "__main__":
    main()
