"""The fleet simulation written the obvious way: one SimPy process per request.

This is the benchmark's baseline and the tests' oracle for :mod:`engines.fleet_core`: the same
program and the same phases of a tick (see :mod:`engines.fleet`), with nothing clever. Every
request is a process that sleeps until its arrival, GETs, subscribes or leads, tries the lock,
sleeps, rebuilds, exactly as the prose says. It costs a Python generator and several events per
request, which is why the fast engine exists.

SimPy's clock is a float. A step at tick ``t`` in phase ``p`` by request (or rebuild) ``k`` is
scheduled at ``t + (p + k / K) / 8`` for a ``K`` larger than any ``k``, so SimPy runs the steps of
one tick in the engine's phase order and, within a phase, in id order; the integer part is the
tick. SimPy is imported only when this runs (it is a development dependency).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from herdproof.engines.fleet_core import (
    ARRIVE,
    ATTEMPT,
    ERROR,
    FALLBACK,
    FINISH,
    FOLLOWER,
    HIT,
    NEVER,
    REBUILDER,
    RECHECKED,
    VALUE,
    WAITER,
    WAKE,
    WRITE,
    KeyRun,
    KeyWorkload,
    Mechanisms,
)


@dataclass
class _Flight:
    """A node's in-flight rebuild: the event followers wait on."""

    done: Any


@dataclass
class _World:
    """Everything requests share: the cache key, the lock, the lease, the nodes' maps."""

    filled: bool = False
    cache_gone: int = NEVER
    lock_owner: int = -1
    lock_gone: int = 0
    lease_holder: int = -1
    lease_gone: int = 0
    flights: dict[int, _Flight] = field(default_factory=dict)
    rebuilds: list[tuple[int, int, int, bool, int]] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    foreign: int = 0
    cache_events: list[tuple[int, int, bool, int]] = field(default_factory=list)
    in_progress: dict[int, dict[int, Any]] = field(default_factory=dict)  # node -> {r: process}
    working: dict[int, int] = field(default_factory=dict)  # r -> its rebuild's seq
    died: dict[int, int] = field(default_factory=dict)  # seq -> tick its process died


def run_key_reference(m: Mechanisms, w: KeyWorkload) -> KeyRun:
    """Simulate one key with one SimPy process per request; same result as ``run_key``."""
    import simpy

    env = simpy.Environment()
    arr = [int(a) for a in w.arrival]
    node = [int(n) for n in w.node]
    n = len(arr)
    scale = n + len(w.writes) + 2
    durations = w.durations()
    world = _World()
    role = np.zeros(n, np.int8)
    outcome = np.zeros(n, np.int8)
    done = np.full(n, -1, np.int64)

    def at(tick: int, phase: int, order: int) -> Any:
        return env.timeout(tick + (phase + order / scale) / 8 - env.now)

    def alive(t: int) -> bool:
        return world.filled and t < world.cache_gone

    def fill(t: int) -> None:
        world.filled = True
        world.cache_gone = NEVER if m.ttl == 0 else t + m.ttl + (0 if m.lease else 1)
        world.cache_events.append((t, FINISH, True, world.cache_gone))

    def lock_free(t: int) -> bool:
        return world.lock_owner < 0 or t >= world.lock_gone

    def lease_free(t: int) -> bool:
        return world.lease_holder < 0 or t >= world.lease_gone

    def release(r: int, t: int) -> None:
        live = world.lock_owner >= 0 and t < world.lock_gone
        if m.release_cad:
            if live and world.lock_owner == r:
                world.lock_owner = -1
        else:
            if live and world.lock_owner != r:
                world.foreign += 1
            world.lock_owner = -1

    def answer(r: int, how: int, t: int) -> None:
        outcome[r] = how
        done[r] = t

    def resolve(r: int, how: int, t: int) -> None:
        if m.singleflight:
            world.flights.pop(node[r]).done.succeed((how, t))

    # A crash kills its whole process (node): with single-flight that is the crashed leader's
    # flight; without, every other request of the node in progress is interrupted.
    kills = m.crash > 0 and not m.singleflight and not m.lease
    processes: dict[int, Any] = {}

    def request(r: int) -> Generator[Any, Any, None]:
        t = arr[r]
        yield at(t, ARRIVE, r)
        if not kills:
            yield from program(r, t)
            return
        world.in_progress.setdefault(node[r], {})[r] = processes[r]
        try:
            yield from program(r, t)
        except simpy.Interrupt as crash:
            died = int(str(crash.cause))  # the tick of the crash, given to interrupt()
            if not role[r]:
                role[r] = WAITER  # it was waiting to try SET NX
            answer(r, ERROR, died)
            seq = world.working.pop(r, None)
            if seq is not None:
                world.died[seq] = died
        finally:
            world.in_progress[node[r]].pop(r, None)

    def kill_node(r: int, t: int) -> None:
        for q, process in list(world.in_progress.get(node[r], {}).items()):
            if q != r:
                process.interrupt(t)

    def program(r: int, t: int) -> Generator[Any, Any, None]:
        if alive(t):
            role[r] = HIT
            answer(r, VALUE, t)
            return
        if m.singleflight:
            flight = world.flights.get(node[r])
            if flight is not None:
                role[r] = FOLLOWER
                how, when = yield flight.done
                answer(r, how, when)
                return
            world.flights[node[r]] = _Flight(env.event())
        if m.lease:
            while not lease_free(t):  # a hot miss: sleep, then mg again
                role[r] = WAITER
                t += m.wait
                yield at(t, WAKE, r)
                if alive(t):
                    answer(r, VALUE, t)
                    return
            world.lease_holder, world.lease_gone = r, t + m.ex
        elif m.lock:
            if m.gap:
                t += m.gap
                yield at(t, ATTEMPT, r)
            if lock_free(t):
                world.lock_owner, world.lock_gone = r, t + m.ex + 1
            else:
                role[r] = WAITER
                if m.wait:
                    t += m.wait
                    yield at(t, WAKE, r)
                how = VALUE if alive(t) else FALLBACK
                answer(r, how, t)
                resolve(r, how, t)
                return
        if m.recheck and alive(t):
            if m.lock:
                release(r, t)
            role[r] = RECHECKED
            answer(r, VALUE, t)
            resolve(r, VALUE, t)
            return
        seq = len(world.rebuilds)
        end = t + int(durations.take(1)[0])
        guard = world.lock_gone if m.lock else world.lease_gone if m.lease else NEVER
        world.rebuilds.append((r, t, end, seq < m.crash, guard))
        world.working[r] = seq
        role[r] = REBUILDER
        yield at(end, FINISH, seq)
        world.working.pop(r)
        if seq < m.crash:
            answer(r, ERROR, end)
            resolve(r, ERROR, end)
            if kills:
                kill_node(r, end)
            return
        if m.lease:
            if world.lease_holder == r:
                fill(end)
                world.lease_holder = -1
            else:
                world.rejected.append(seq)
        else:
            fill(end)
            if m.lock:
                release(r, end)
        answer(r, VALUE, end)
        resolve(r, VALUE, end)

    def writer() -> Generator[Any, Any, None]:
        for k, tick in enumerate(int(x) for x in w.writes):
            yield at(tick, WRITE, k)
            if alive(tick):
                world.filled = False
                world.cache_events.append((tick, WRITE, False, NEVER))
            if m.lease:
                world.lease_holder = -1

    for r in range(n):
        processes[r] = env.process(request(r))
    env.process(writer())
    env.run()
    cache_t, cache_s = _timeline(world.cache_events)
    rebuilds = [(q, start, world.died.get(seq, end), crashed or seq in world.died, guard)
                for seq, (q, start, end, crashed, guard) in enumerate(world.rebuilds)]
    rejected = np.zeros(len(rebuilds), np.bool_)
    rejected[world.rejected] = True
    return KeyRun(
        arrival=w.arrival, node=w.node, role=role, outcome=outcome, done=done,
        rb_req=np.array([b[0] for b in rebuilds], np.int64),
        rb_start=np.array([b[1] for b in rebuilds], np.int64),
        rb_end=np.array([b[2] for b in rebuilds], np.int64),
        rb_crashed=np.array([b[3] for b in rebuilds], np.bool_),
        rb_guard_gone=np.array([b[4] for b in rebuilds], np.int64),
        rb_rejected=rejected, writes=w.writes, cache_t=cache_t, cache_s=cache_s,
        foreign_releases=world.foreign)


def _timeline(events: list[tuple[int, int, bool, int]]) -> tuple[Any, Any]:
    """The cache's state per tick (after finishes and writes) from fills, deletes and TTLs."""
    ticks, states = [-NEVER], [False]
    filled, gone = False, NEVER
    by_tick: dict[int, list[tuple[int, bool, int]]] = {}
    for tick, phase, state, until in events:
        by_tick.setdefault(tick, []).append((phase, state, until))
    expiries = {until for _, _, _, until in events if until < NEVER}
    for tick in sorted(set(by_tick) | expiries):
        if filled and tick >= gone:
            filled, gone = False, NEVER
        for _, state, until in by_tick.get(tick, []):  # in the order they happened
            filled, gone = state, until
        if filled != states[-1]:
            ticks.append(tick)
            states.append(filled)
    return np.array(ticks, np.int64), np.array(states, np.bool_)
