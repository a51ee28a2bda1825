"""Counterexamples reproduce on a real Redis: ``herdproof replay TRACE --redis URL``.

The two races the Redis lock is known for, found by the explicit engine and replayed command by
command: with ``release=del`` and ``ex < rebuild`` request 0's ``DEL`` removes request 1's lock
(NOFOREIGN), and with ``ex < rebuild`` two requests win ``SET NX`` while the first is still
rebuilding (ONE). The server must give every reply the model predicts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from herdproof.cli import main
from herdproof.engines import explicit
from herdproof.models.registry import build
from herdproof.redis_replay import replay_on_redis, report
from herdproof.traces import write_trace
from herdproof.traces.trace import Trace

RACES = {
    "get-then-del": ("lock-cad", {"nodes": 1, "per_node": 3, "ex": 2, "rebuild": 2,
                                  "release": "get-del", "gap": 1}, "NOFOREIGN"),
    "foreign-release": ("lock-del", {"nodes": 1, "per_node": 3, "ex": 2, "rebuild": 3},
                        "NOFOREIGN"),
    "double-acquisition": ("lock-cad", {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3},
                           "ONE"),
}


def race(name: str) -> Trace:
    preset, params, prop = RACES[name]
    (result,) = explicit.check(build(preset, params), [prop])
    assert result.trace is not None
    return result.trace


@pytest.mark.parametrize("name", sorted(RACES))
def test_the_race_reproduces_on_redis(redis_client: Any, name: str) -> None:
    result = replay_on_redis(race(name), redis_client)
    ok, lines = report(result)
    assert result.matched, "\n".join(lines)
    assert ok and lines[-1].startswith("reproduced on Redis"), lines[-1]


def test_the_foreign_release_is_visible_on_the_server(redis_client: Any) -> None:
    steps = replay_on_redis(race("foreign-release"), redis_client).steps
    dels = [s for s in steps if "DEL lock" in s.commands]
    # the first DEL, by request 0, finds request 1's lock there, and removes it
    first = dels[0]
    lock_before, _ = steps[first.step - 2].got[-1]  # the keys after the previous step
    assert first.action == "Finish(r=0)" and lock_before[0] == "r1"
    assert first.got[first.commands.index("DEL lock")] == 1
    assert first.got[-1][0] == (None, -2)  # no lock key left
    assert first.note == "deleted r1's lock, not r0's own"


def test_cli_replay_on_redis(redis_url: str, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    path = write_trace(race("foreign-release"), tmp_path / "foreign.json")
    assert main(["replay", str(path), "--redis", redis_url]) == 0
    out = capsys.readouterr().out
    assert "reproduced on Redis: NOFOREIGN violated at step" in out
    assert main(["replay", str(path), "--redis", redis_url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["reproduced"] is True and all(s["match"] for s in data["steps"])


def test_cli_replay_with_an_unreachable_redis_is_bad_input(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_trace(race("double-acquisition"), tmp_path / "one.json")
    assert main(["replay", str(path), "--redis", "redis://127.0.0.1:1/0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("herdproof: error: cannot reach Redis at redis://127.0.0.1:1/0")
    assert len(err.strip().splitlines()) == 1


def test_a_server_that_disagrees_does_not_reproduce(redis_client: Any) -> None:
    trace = race("double-acquisition")
    prefix = "herdproof:held-by-someone-else:"
    redis_client.set(prefix + "lock", "r9", px=60_000)  # another client holds the lock
    try:
        result = replay_on_redis(trace, redis_client, prefix=prefix)
    finally:
        redis_client.delete(prefix + "lock")
    ok, lines = report(result)
    assert not ok and result.first_mismatch is not None
    # already the state after step 1 shows a lock the model does not have; then SET NX fails
    assert result.first_mismatch.action == "Miss(r=0)"
    assert lines[-1].startswith("does not reproduce on Redis: step 1 `Miss(r=0)`")
    win = result.steps[1]
    assert win.action == "WinLock(r=0)" and (win.expected[0], win.got[0]) == ("OK", None)
