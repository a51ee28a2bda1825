"""Counterexamples reproduce on a real memcached: ``herdproof replay TRACE --memcached HOST:PORT``.

Every counterexample the expectations table keeps (``traces/regression/``) for a program that
names memcached commands is replayed command by command on the session's memcached: the
``memcached-meta`` races (the stub expiring under its winner, ``md I`` re-arming the win, the
plain ``ms`` that stores the old version as fresh, ...) and the plain look-aside cache of
``lease`` with ``leases=off``. The server must give every reply, and show every item after every
step, as the model predicts. A trace with a step no stock memcached can run (a lease token) is
refused before anything is sent, with the program's reason.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, cast

import pytest

from herdproof.cli import main
from herdproof.memcached_replay import preflight, replay_on_memcached, report
from herdproof.models.errors import HerdproofError
from herdproof.models.registry import build
from herdproof.ticked_memcached import MetaClient
from herdproof.traces import read_trace, replay
from herdproof.traces.table import REGRESSION, Violation, violated
from herdproof.traces.trace import Trace
from tests.conformance.report import SEQUENCES


def _on_memcached(v: Violation) -> bool:
    return bool(getattr(build(v.preset, v.params), "MEMCACHED_KEYS", ()))


VIOLATIONS = [v for v in violated() if _on_memcached(v)]


def _trace(v: Violation) -> Trace:
    return read_trace(REGRESSION / f"{v.stem}.json")


def _sendable(v: Violation) -> bool:
    try:
        preflight(_trace(v))
    except HerdproofError:
        return False
    return True


SENDABLE = [v for v in VIOLATIONS if _sendable(v)]
REFUSED = [v for v in VIOLATIONS if not _sendable(v)]


def _address(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def _named(name: str) -> Path:
    """The stored regression trace of the expectation row and property ``name``."""
    (found,) = [REGRESSION / f"{v.stem}.json" for v in VIOLATIONS if v.stem == name]
    return found


def _why_refused(trace: Trace) -> str:
    """The program's reason its first unsendable step cannot run on a server."""
    model: Any = replay(trace).model
    model = getattr(model, "model", model)  # below a wait-clock monitor
    return str(next(model.why_not_sent(a) for a in trace.actions
                    if not type(a).advances_time and model.sends(a) is None))


def test_every_memcached_meta_violation_is_sent() -> None:
    meta = [v.stem for v in VIOLATIONS if v.preset == "memcached-meta"]
    assert len(meta) >= 10 and set(meta) <= {v.stem for v in SENDABLE}


@pytest.mark.parametrize("violation", SENDABLE, ids=lambda v: v.stem)
def test_the_violation_reproduces_on_memcached(meta_client: MetaClient,
                                               violation: Violation) -> None:
    SEQUENCES["memcached replay"] += 1
    result = replay_on_memcached(_trace(violation), meta_client)
    ok, lines = report(result)
    assert result.matched, "\n".join(lines)
    assert ok and lines[-1].startswith(f"reproduced on memcached: {violation.prop} violated "
                                       f"at step {violation.length}"), "\n".join(lines)
    assert len(result.steps) == violation.length


@pytest.mark.parametrize("violation", REFUSED, ids=lambda v: v.stem)
def test_a_step_no_stock_memcached_runs_is_refused_before_sending(violation: Violation) -> None:
    trace = _trace(violation)
    why = _why_refused(trace)
    assert why
    with pytest.raises(HerdproofError) as refused:
        replay_on_memcached(trace, cast(Any, None))  # no client: nothing may be sent
    assert str(refused.value).endswith(why)


def test_the_stale_store_is_visible_on_the_server(meta_client: MetaClient) -> None:
    SEQUENCES["memcached replay"] += 1
    steps = replay_on_memcached(read_trace(_named("mm-writer-no-cas-FRESH")), meta_client).steps
    write = next(s for s in steps if s.action == "Write()")
    assert write.commands[0] == "md k I" and write.got[0] == "HD"
    store = steps[-1]
    assert store.action == "Store(r=0)" and store.commands[0].startswith("ms k 2 T0")
    status, value, _, ttl, flags = store.got[-1][0]  # the item read back after the store
    assert (status, value, ttl, flags) == ("VA", "v0", -1, "")  # v0, fresh, although DB is v1


def test_a_server_that_disagrees_does_not_reproduce(meta_client: MetaClient) -> None:
    SEQUENCES["memcached replay"] += 1
    prefix = f"hp:held-by-someone-else:{uuid.uuid4().hex[:8]}:"
    # another client already stored a value: the first mg hits instead of winning a stub
    assert meta_client.ask(f"ms {prefix}k 2 T0", "v9") == "HD"
    result = replay_on_memcached(read_trace(_named("mm-stub-expires-ONE")), meta_client,
                                 prefix=prefix)
    ok, lines = report(result)
    assert not ok and result.first_mismatch is not None
    assert lines[-1].startswith("does not reproduce on memcached: step 1 `WinStub(r=0)`")
    first = result.steps[0]
    assert first.expected[0][1:] == ("", 1, 2, "W") and first.got[0][1] == "v9"
    assert meta_client.ask(f"mg {prefix}k") == "EN"  # the replay deleted its keys


def test_cli_replay_on_memcached(memcached_address: tuple[str, int], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    SEQUENCES["memcached replay"] += 2
    path = str(_named("mm-writer-no-cas-FRESH"))
    assert main(["replay", path, "--memcached", _address(memcached_address)]) == 0
    out = capsys.readouterr().out
    assert "   5  Store(r=0)       match    ms k 2 T0 (data v0) -> HD; then k=v0" in out
    assert out.strip().splitlines()[-1].startswith(
        "reproduced on memcached: FRESH violated at step 5")
    assert main(["replay", path, "--memcached", _address(memcached_address), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["reproduced"] is True and all(s["match"] for s in data["steps"])


def test_cli_refuses_a_lease_token_in_one_sentence(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    why = _why_refused(_trace(REFUSED[0]))
    # refused before connecting: the server address does not matter
    assert main(["replay", str(REGRESSION / f"{REFUSED[0].stem}.json"), "--memcached",
                 "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("herdproof: error: replay --memcached cannot send step ")
    assert err.endswith(why) and "not a stock memcached feature" in why


@pytest.mark.parametrize(("address", "said"), [
    ("127.0.0.1:1", "cannot reach memcached at 127.0.0.1:1"),
    ("localhost", "--memcached wants HOST:PORT like 127.0.0.1:11211, got 'localhost'"),
])
def test_cli_replay_with_an_unreachable_memcached_is_bad_input(
        address: str, said: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(_named("mm-stub-expires-ONE"))
    assert main(["replay", path, "--memcached", address]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"herdproof: error: {said}")
    assert len(err.strip().splitlines()) == 1


def test_cli_a_server_that_is_not_memcached_is_bad_input(
        redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    address = redis_url.removeprefix("redis://").removesuffix("/0")
    path = str(_named("mm-stub-expires-ONE"))
    assert main(["replay", path, "--memcached", address]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"herdproof: error: the server at {address} does not speak "
                          "memcached's meta protocol")
    assert len(err.strip().splitlines()) == 1


def test_cli_a_policy_without_memcached_commands_is_bad_input(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = next(REGRESSION / f"{v.stem}.json" for v in violated()
                 if not getattr(build(v.preset, v.params), "MEMCACHED_KEYS", ()))
    assert main(["replay", str(stack), "--memcached", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "needs a policy whose program names the memcached commands of its steps" in err
