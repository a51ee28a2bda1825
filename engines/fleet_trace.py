"""A small simulated run, written as a trace of the ``stack`` model.

The fleet engine claims to run the model's program in one of the interleavings the model
allows. This module makes the claim checkable: it rewrites a run (one key, fixed rebuild time, no
TTL, writes, crashes or leases, fleet = ``nodes x per_node`` with request ``r`` on node
``r // per_node``) as the model's actions, tick by tick and phase by phase: ``Finish`` for the
rebuilds due, ``WakeHit``/``WakeMiss`` for sleepers, delayed ``WinLock``/``LoseLock``, then each
arrival's ``Hit`` or ``Miss``, ``JoinFlight``/``LeadFlight``, lock attempt and re-check, and a
``Tick()`` between ticks. :func:`traces.replay` then re-executes it through the model; every
action must be enabled, and the model's final state must show the same database queries and the
same value-or-fallback answer per request as the simulation.

>>> from herdproof.engines.fleet import FleetConfig, simulate
>>> cfg = FleetConfig(policy="stack", nodes=2, requests=4, arrivals="explicit", rebuild=2,
...                   ex=3, wait=1, arrival_ticks=(0, 1, 0, 2), arrival_nodes=(0, 0, 1, 1))
>>> trace = to_trace(cfg, simulate(cfg).runs[0])
>>> [repr(a) for a in trace.actions[:4]]
['Miss(r=0)', 'LeadFlight(r=0)', 'WinLock(r=0)', 'Miss(r=2)']
"""

from __future__ import annotations

import numpy as np

from herdproof.engines.fleet import POLICIES, FleetConfig, FleetError
from herdproof.engines.fleet_core import (
    ARRIVE,
    ATTEMPT,
    FINISH,
    FOLLOWER,
    HIT,
    REBUILDER,
    RECHECKED,
    VALUE,
    WAITER,
    WAKE,
    KeyRun,
)
from herdproof.models.clock import Tick
from herdproof.models.core import Action
from herdproof.models.params import ParamValue
from herdproof.models.policies.stack import (
    Finish,
    Hit,
    JoinFlight,
    LeadFlight,
    LoseLock,
    Miss,
    RecheckHit,
    RecheckMiss,
    WakeHit,
    WakeMiss,
    WinLock,
)
from herdproof.models.registry import resolve
from herdproof.traces.trace import Trace


def model_params(cfg: FleetConfig) -> dict[str, ParamValue]:
    """The ``stack`` model's parameters for a fleet configuration it can express."""
    singleflight, lock, lease, _ = POLICIES[cfg.policy]
    per_node = cfg.requests // cfg.nodes
    problems = [
        (lease, "leases are not in the stack model"),
        (cfg.arrivals != "explicit", "the arrivals must be explicit ticks"),
        (cfg.rebuild_p99 is not None or bool(cfg.rebuild_samples),
         "the rebuild time must be fixed"),
        (bool(cfg.ttl or cfg.writes or cfg.write_rate or cfg.crash),
         "the model has no TTL, writes or crashes"),
        (per_node * cfg.nodes != cfg.requests or
         list(cfg.arrival_nodes) != [r // per_node for r in range(cfg.requests)],
         "request r must be on node r // per_node"),
    ]
    for bad, why in problems:
        if bad:
            raise FleetError(f"this run cannot be written as a stack trace: {why}")
    _, params = resolve("stack", {
        "nodes": cfg.nodes, "per_node": per_node, "singleflight": singleflight, "lock": lock,
        "release": cfg.release, "recheck": cfg.recheck, "ex": cfg.ex, "rebuild": cfg.rebuild,
        "wait": cfg.wait})
    return params


def to_trace(cfg: FleetConfig, run: KeyRun) -> Trace:
    """The run as a ``stack`` trace (model request ids are the configuration's order)."""
    params = model_params(cfg)
    singleflight, lock, _, _ = POLICIES[cfg.policy]
    ids = np.argsort(np.array(cfg.arrival_ticks, np.int64), kind="stable")  # sim id -> model id
    steps: list[tuple[int, int, int, list[Action]]] = []

    def step(tick: int, phase: int, order: int, *actions: Action) -> None:
        steps.append((tick, phase, order, list(actions)))

    for seq, (i, end) in enumerate(zip(run.rb_req, run.rb_end, strict=True)):
        step(int(end), FINISH, seq, Finish(r=int(ids[i])))
    for i in range(len(run.arrival)):
        r, a, role = int(ids[i]), int(run.arrival[i]), int(run.role[i])
        wake = WakeHit(r=r) if run.outcome[i] == VALUE else WakeMiss(r=r)
        arrive: list[Action] = [Hit(r=r) if role == HIT else Miss(r=r)]
        if role != HIT and singleflight:
            arrive.append(JoinFlight(r=r) if role == FOLLOWER else LeadFlight(r=r))
        if role in (HIT, FOLLOWER):
            step(a, ARRIVE, i, *arrive)
            continue
        then: list[Action] = []   # what follows the lock (or, without one, the miss) at once
        if role == RECHECKED:
            then.append(RecheckHit(r=r))
        elif role == REBUILDER and cfg.recheck:
            then.append(RecheckMiss(r=r))
        if lock:
            if role == WAITER:
                attempt: list[Action] = [LoseLock(r=r)] + ([wake] if cfg.wait == 0 else [])
                if cfg.wait:
                    step(a + cfg.gap + cfg.wait, WAKE, i, wake)
            else:
                attempt = [WinLock(r=r), *then]
            if cfg.gap:
                step(a, ARRIVE, i, *arrive)
                step(a + cfg.gap, ATTEMPT, i, *attempt)
            else:
                step(a, ARRIVE, i, *arrive, *attempt)
        else:
            step(a, ARRIVE, i, *arrive, *then)
    steps.sort(key=lambda s: s[:3])
    actions: list[Action] = []
    clock = 0
    for tick, _, _, taken in steps:
        actions.extend(Tick() for _ in range(tick - clock))
        clock = tick
        actions.extend(taken)
    return Trace("stack", params, tuple(actions), engine="fleet",
                 note=f"fleet simulation of policy {cfg.policy}")
