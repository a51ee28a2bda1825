"""Redlock on five real ``redis-server`` processes: ``herdproof replay TRACE --redis URL1,...``.

The test starts five servers without persistence on loopback ports, one per Redlock instance,
and replays traces the explicit engine found: the nominal run (two clients holding the lock in
turn, every ``SET NX PX`` and every compare-and-delete sent to its instance) and the violations
(a restart without persistence, replayed by killing an instance and starting it again; a clock
jump, replayed as that instance's TTLs jumping forward). After every step every reply and
every instance's lock key (its token and remaining life) must be what the model says.
"""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from herdproof.cli import main
from herdproof.engines import explicit
from herdproof.models.core import enabled_actions
from herdproof.models.policies.redlock import FastClock
from herdproof.models.registry import build
from herdproof.redis_replay import replay_on_redis, report
from herdproof.traces import write_trace
from herdproof.traces.trace import Trace
from tests.conformance.conftest import _free_port, _require, _wait_for_port
from tests.conformance.report import SEQUENCES

INSTANCES = 5
# A model tick is 10 s of server time: a key's PTTL carries half a tick (5 s) of slack for the
# real time the replay takes (a whole run of commands on five servers, a server's restart)
TICK_MS = 10_000
NOMINAL = {"requests": 2, "instances": INSTANCES, "ttl": 7}


class Instances:
    """Five ``redis-server`` processes without persistence; ``restart(i)`` kills instance
    ``i`` and starts it again on the same port, empty, as a restart without persistence
    does, and returns a new connection to it."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary, self.workdir = binary, workdir
        self.ports = [_free_port() for _ in range(INSTANCES)]
        self.processes: list[subprocess.Popen[bytes]] = [self._start(i)
                                                          for i in range(INSTANCES)]
        self.clients: list[Any] = []
        self.restarts = 0

    @property
    def urls(self) -> list[str]:
        return [f"redis://127.0.0.1:{port}/0" for port in self.ports]

    def _start(self, i: int) -> subprocess.Popen[bytes]:
        port = self.ports[i]
        process = subprocess.Popen(
            [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no",
             "--protected-mode", "yes", "--logfile", ""],
            cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(port, process, f"redis-server {i + 1}")
        return process

    def _stop(self, i: int) -> None:
        process = self.processes[i]
        process.kill()  # no shutdown save: a crash, and there is no persistence anyway
        process.wait(timeout=5)

    def connect(self) -> list[Any]:
        import redis

        self.clients = [redis.Redis.from_url(url, decode_responses=True) for url in self.urls]
        return self.clients

    def restart(self, i: int) -> Any:
        import redis

        self._stop(i)
        self.processes[i] = self._start(i)
        self.restarts += 1
        client = redis.Redis.from_url(self.urls[i], decode_responses=True)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for i in range(INSTANCES):
            self._stop(i)


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[Instances]:
    """Five fresh ``redis-server`` processes on free loopback ports, stopped afterwards."""
    binary = _require("redis-server", "redis-server")
    servers = Instances(binary, tmp_path)
    try:
        yield servers
    finally:
        servers.close()


def found(params: dict[str, Any], prop: str) -> Trace:
    """The explicit engine's shortest trace for ``prop``'s violation (or witness)."""
    (result,) = explicit.check(build("redlock", params), [prop])
    assert result.trace is not None, result
    return result.trace


def _replayed(trace: Trace, instances: Instances,
              restart: Callable[[int], Any] | None = None) -> tuple[Any, list[str]]:
    result = replay_on_redis(trace, instances.connect(), tick_ms=TICK_MS, restart=restart)
    ok, lines = report(result)
    assert ok and result.matched, "\n".join(lines)
    SEQUENCES["redlock on 5 redis servers"] += 1
    return result, lines


def test_the_nominal_run_replays_on_five_instances(instances: Instances) -> None:
    """Two clients hold the lock one after the other (REBUILDS<=1 is the witness): every SET
    goes to its instance in turn, the holder releases on all five."""
    trace = found(NOMINAL, "REBUILDS<=1")
    result, lines = _replayed(trace, instances)
    assert lines[-1].startswith("reproduced on 5 Redis servers: REBUILDS<=1 violated"), lines[-1]
    sets = [c for step in result.steps for c in step.commands if "SET lock" in c]
    assert {c.split(":")[0] for c in sets} == {f"redis{i + 1}" for i in range(INSTANCES)}
    releases = [c for step in result.steps for c in step.commands if "compare-and-delete" in c]
    assert len(releases) == INSTANCES  # the first holder releases on every instance
    # the read-back after the first SET: redis1 holds r<id> with the full ttl left
    first = next(step for step in result.steps if step.action.startswith("SetOk"))
    assert first.got[-1][0] == (f"r{trace.actions[0].r}", 7)  # type: ignore[attr-defined]


def test_a_restart_without_persistence_gives_two_holders(instances: Instances) -> None:
    """The instance that forgets r0's key is killed and started again (no AOF, no RDB): the
    server really comes back empty, r1 wins it, and both clients hold a majority."""
    trace = found({**NOMINAL, "restarts": 1}, "MUTEX")
    assert any(type(a).__name__ == "Restart" for a in trace.actions)
    result, lines = _replayed(trace, instances, restart=instances.restart)
    assert instances.restarts == 1
    assert lines[-1].startswith("reproduced on 5 Redis servers: MUTEX violated at step "
                                f"{len(trace)}"), lines[-1]
    restart = next(step for step in result.steps if step.action.startswith("Restart"))
    server = int(restart.action.split("redis")[1][0]) - 1
    assert restart.commands[0] == (f"redis{server + 1}: restart without persistence (the "
                                   "process killed and started again)")
    before = result.steps[restart.step - 2].got[-1][server]
    assert before[0] is not None and restart.got[-1][server] == (None, -2)  # forgot the key


def test_a_restart_replayed_by_deleting_the_keys(instances: Instances) -> None:
    """Without a way to restart the servers (the CLI's case), the restart deletes the
    instance's keys, which is all a restart without persistence changes in them."""
    trace = found({**NOMINAL, "restarts": 1}, "MUTEX")
    result, _ = _replayed(trace, instances)
    restart = next(step for step in result.steps if step.action.startswith("Restart"))
    assert restart.commands[0].endswith("restart without persistence: DEL lock")
    assert restart.got[0] == restart.expected[0] == 1


def test_a_clock_jump_is_that_instance_alone_moving_forward(instances: Instances) -> None:
    trace = found({**NOMINAL, "jumps": 1}, "MUTEX")
    result, lines = _replayed(trace, instances)
    assert lines[-1].startswith("reproduced on 5 Redis servers: MUTEX violated"), lines[-1]
    jump = next(step for step in result.steps if step.action.startswith("ClockJump"))
    assert "clock +100 tick(s)" in jump.commands[0]


def test_fast_clocks_replay_tick_by_tick(instances: Instances) -> None:
    """With drift, the longest-running schedule the engine finds for two holders in turn
    includes fast-clock ticks; each is one extra tick on its instance only."""
    params = {**NOMINAL, "drift": 1, "ttl": 8}
    trace = found(params, "REBUILDS<=1")
    server = "redis1"
    drifted = _insert_after_first_set(trace, FastClock(server=server))
    result, _ = _replayed(drifted, instances)
    step = next(s for s in result.steps if s.action.startswith("FastClock"))
    assert step.commands[0].startswith(f"{server}: clock +1 tick(s)")
    before = result.steps[step.step - 2].got[-1][0]
    assert step.got[-1][0] == (before[0], before[1] - 1)  # redis1's key lost one tick ...
    assert step.got[-1][1:] == result.steps[step.step - 2].got[-1][1:]  # ... and no other did


def _insert_after_first_set(trace: Trace, action: Any) -> Trace:
    """``trace`` with ``action`` after its first step that sets a key and the tick after it."""
    actions = list(trace.actions)
    first = next(n for n, a in enumerate(actions) if type(a).__name__ == "SetOk")
    tick = next(n for n in range(first, len(actions))
                if type(actions[n]).__name__ == "Tick")
    actions.insert(tick + 1, action)
    return Trace(trace.policy, trace.params, tuple(actions), None)


def test_random_runs_with_every_fault_replay_command_by_command(instances: Instances) -> None:
    """Random walks through the model with every fault switched on (fast clocks, a clock jump
    that shortens a key without expiring it, a restart, a pause after the check): whatever
    interleaving they take, each instance answers every command and holds every key as the
    model says."""
    params = {**NOMINAL, "ttl": 8, "drift": 1, "jumps": 1, "jump": 2, "restarts": 1,
              "client_pause": 2}
    model = build("redlock", params)
    rng = random.Random(0)
    clients = instances.connect()
    faults = set()
    for _ in range(12):
        state, actions = model.initial_states()[0], []
        for _ in range(40):
            moves = enabled_actions(model, state)
            if not moves:
                break
            action = rng.choice(moves)
            actions.append(action)
            state = model.apply(state, action)
        faults |= {type(a).__name__ for a in actions}
        result = replay_on_redis(Trace("redlock", model.params, tuple(actions), None), clients,
                                 tick_ms=TICK_MS)
        assert result.matched, "\n".join(report(result)[1])
        SEQUENCES["redlock on 5 redis servers"] += 1
    assert {"FastClock", "ClockJump", "Restart", "SetTaken"} <= faults


def test_cli_replays_on_a_comma_separated_list(instances: Instances, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = write_trace(found({**NOMINAL, "restarts": 1}, "MUTEX"), tmp_path / "restart.json")
    urls = ",".join(instances.urls)
    assert main(["replay", str(path), "--redis", urls, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["reproduced"] is True and all(step["match"] for step in data["steps"])
    assert main(["replay", str(path), "--redis", instances.urls[0]]) == 2
    err = capsys.readouterr().err
    assert "needs 5 server(s) for this trace (redis1, redis2, redis3, redis4, redis5)" in err
    assert len(err.strip().splitlines()) == 1


def test_a_refused_command_cannot_be_replayed(instances: Instances) -> None:
    trace = found({**NOMINAL, "instances": 3, "ttl": 5, "restarts": 1, "rejoin_delay": 6},
                  "NOLAPSED")
    assert any(type(a).__name__ == "SetRefused" for a in trace.actions)
    from herdproof.models.errors import HerdproofError

    with pytest.raises(HerdproofError, match="a restarting instance refuses connections"):
        replay_on_redis(trace, instances.connect()[:3], tick_ms=TICK_MS)
