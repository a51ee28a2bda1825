"""A real fleet's DB query counts equal the model's predictions (examples/fleet/).

Four OS processes with fifty concurrent requests each hit a key that has just expired, through
``examples/fleet/stack.py`` against the fixture's Redis. Each scenario is also a small instance
of the ``stack`` model, and the explicit engine's maximum of ``rebuild_starts`` over every
interleaving is the prediction. The arrival patterns are the worst case the model's maximum
describes, so the real count must equal it, not merely stay below it.

The mapping (1 tick = 250 ms in the scenarios with time in them): a process is a node, its
concurrent requests are the node's requests (the model needs only ``per_node=1``: followers
never query, the ``per_node=2`` instances say the same), ``lock_ms`` is ``ex``, ``rebuild_ms``
is ``rebuild``, and the fleet's arrival stagger is when each node's requests arrive.
"""

from __future__ import annotations

from typing import Any

import pytest

from examples.fleet.run import Fleet, run_fleet
from examples.fleet.stack import Config
from herdproof.engines import explicit
from herdproof.models.registry import build

TICK_MS = 250
PROCESSES, REQUESTS = 4, 50

SCENARIOS = {
    # single-flight only: every process's leader queries, all at once
    "singleflight-only": (
        Config(lock=False), Fleet(PROCESSES, REQUESTS, rebuild_ms=500),
        {"singleflight": True, "lock": False, "recheck": True}),
    # lock + single-flight, ex >= rebuild: one query for the whole fleet
    "lock": (
        Config(lock_ms=3000, wait_ms=700), Fleet(PROCESSES, REQUESTS, rebuild_ms=500),
        {"singleflight": True, "lock": True, "recheck": True, "ex": 3, "rebuild": 2}),
    # ex (1 tick) < rebuild (7 ticks), a process arriving every 2 ticks: each finds the lock
    # expired and the cache still empty, so each queries
    "ex-shorter-than-rebuild": (
        Config(lock_ms=TICK_MS, wait_ms=100),
        Fleet(PROCESSES, REQUESTS, rebuild_ms=7 * TICK_MS, stagger_ms=2 * TICK_MS),
        {"singleflight": True, "lock": True, "recheck": True, "ex": 1, "rebuild": 7}),
    # the same arrivals with ex (10 ticks) > rebuild: latecomers lose the lock, serve the stale
    # fallback, and the fleet still queries once
    "ex-longer-than-rebuild": (
        Config(lock_ms=10 * TICK_MS, wait_ms=100),
        Fleet(PROCESSES, REQUESTS, rebuild_ms=7 * TICK_MS, stagger_ms=2 * TICK_MS),
        {"singleflight": True, "lock": True, "recheck": True, "ex": 10, "rebuild": 7}),
}
EXPECTED = {"singleflight-only": 4, "lock": 1, "ex-shorter-than-rebuild": 4,
            "ex-longer-than-rebuild": 1}


def predicted(params: dict[str, Any], per_node: int = 1) -> int:
    model = build("stack", {**params, "nodes": PROCESSES, "per_node": per_node})
    found = explicit.maximise(model, "rebuild_starts", symmetry=True)
    assert found.complete
    return found.value


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_model_predicts_the_counts(name: str) -> None:
    assert predicted(SCENARIOS[name][2]) == EXPECTED[name]


@pytest.mark.parametrize("name", ["singleflight-only", "lock", "ex-shorter-than-rebuild"])
def test_followers_do_not_change_the_prediction(name: str) -> None:
    params = SCENARIOS[name][2]
    model = build("stack", {**params, "nodes": 2, "per_node": 2})
    fewer = build("stack", {**params, "nodes": 2, "per_node": 1})
    assert explicit.maximise(model, "rebuild_starts", symmetry=True).value == \
        explicit.maximise(fewer, "rebuild_starts", symmetry=True).value


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_real_fleet_queries_as_the_model_predicts(redis_url: str, name: str) -> None:
    config, fleet, params = SCENARIOS[name]
    counts = run_fleet(redis_url, config, fleet)
    assert counts["db_queries"] == predicted(params) == EXPECTED[name], counts
    assert sum(counts["outcomes"].values()) == PROCESSES * REQUESTS
    if name.startswith("ex-shorter"):
        assert counts["max_concurrent_queries"] > 1  # the lock did not keep them apart
    else:
        assert counts["max_concurrent_queries"] == EXPECTED[name]
