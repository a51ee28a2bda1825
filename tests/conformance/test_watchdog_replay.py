"""The renewing lock (``watchdog``) on a real Redis: ``herdproof replay TRACE --redis URL``.

Every stored counterexample of the ``watchdog`` rows is replayed command by command: the
acquire (``SET lock r<id> NX PX``), the watchdog's owner-checked ``PEXPIRE`` script, the
compare-and-delete release, and ticks as TTL rewrites. A renewal lost to the partition sends
nothing; the server must give every reply the model predicts and hold the lock key the model
holds after every step, down to the lock that lapses under its working holder.
"""

from __future__ import annotations

from typing import Any

import pytest

from herdproof.redis_replay import replay_on_redis, report
from herdproof.traces import read_trace
from herdproof.traces.table import REGRESSION, violated
from tests.conformance.report import SEQUENCES

STORED = [v for v in violated() if v.preset == "watchdog"]


@pytest.mark.parametrize("item", [pytest.param(v, id=v.stem) for v in STORED])
def test_every_watchdog_counterexample_reproduces_on_redis(redis_client: Any, item: Any) -> None:
    result = replay_on_redis(read_trace(REGRESSION / f"{item.stem}.json"), redis_client,
                             tick_ms=200)
    SEQUENCES["watchdog lock replays"] += 1
    ok, lines = report(result)
    assert result.matched, "\n".join(lines)
    assert ok and lines[-1].startswith(f"reproduced on Redis: {item.prop} violated at step "
                                       f"{item.length}"), lines[-1]


def test_the_renewals_reach_the_server_until_the_partition(redis_client: Any) -> None:
    trace = read_trace(REGRESSION / "watchdog-nominal-REBUILDS-le-1.json")
    steps = replay_on_redis(trace, redis_client, tick_ms=200).steps
    renewals = [s for s in steps if s.action == "Renew(r=0)"]
    assert renewals and all(s.got[0] == 1 for s in renewals)  # the script found r0's token
    assert all(s.got[-1][0] == ("r0", 3) for s in renewals)  # back to the full lease
    cut = replay_on_redis(read_trace(REGRESSION / "watchdog-partition-MUTEX.json"),
                          redis_client, tick_ms=200).steps
    lost = next(s for s in cut if s.action == "RenewFails(r=0)")
    assert lost.commands == ["read back lock"]  # nothing reached the server
    assert cut[-1].got[-1][0] == ("r1", 3)  # r1 holds the lock r0 still works under
