"""models/policies/varnish.py: coalescing and grace proved for every timing (from the CLI), the
waiting list's serialisation measured, and hit-for-miss against hit-for-pass.

The expectation rows (traces/expectations/varnish.toml) are checked by every engine through
the generic tests; these pin what the rows cannot say.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from herdproof import cli
from herdproof.engines import explicit
from herdproof.models.registry import build
from herdproof.traces import read_trace, replay
from herdproof.traces.mermaid import render_mermaid
from herdproof.traces.table import REGRESSION


def prove(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code = cli.main(["prove", "varnish", "-p", "requests=3", *argv, "--json"])
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert code == (0 if data["verdict"] == "holds" else 1)
    return data


@pytest.mark.parametrize(("params", "symbolic"), [
    ((), "fetch"),
    (("-p", "start=stale"), "grace,fetch"),
])
def test_one_backend_fetch_for_a_cacheable_object_for_every_timing(
        capsys: pytest.CaptureFixture[str], params: tuple[str, ...], symbolic: str) -> None:
    data = prove(capsys, *params, "--symbolic", symbolic, "--property", "REBUILDS<=1")
    assert (data["verdict"], data["method"], data["k"]) == ("holds", "induction", 1)
    assert {"busy-fetch", "fetches-so-far"} <= set(data["invariants"])


def test_the_waiting_list_serialises_uncacheable_fetches(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Without a hit-for-miss/pass object the fetches never overlap (ONE, for every fetch
    time), and the last of n parked clients waits for all n fetches."""
    data = prove(capsys, "-p", "cacheable=off", "-p", "hfp=off", "--symbolic", "fetch",
                 "--property", "ONE")
    assert (data["verdict"], data["method"]) == ("holds", "induction")
    waits = [explicit.maximise(build("varnish", {"requests": n, "cacheable": False,
                                                 "hfp": "off", "fetch": 2}),
                               "longest_wait").value for n in (1, 2, 3)]
    assert waits == [2, 4, 6]


@pytest.mark.parametrize("hfp", ["miss", "pass"])
def test_a_marker_object_sends_every_request_to_the_backend_at_once(hfp: str) -> None:
    model = build("varnish", {"requests": 3, "cacheable": False, "hfp": hfp})
    assert explicit.maximise(model, "concurrent_rebuilds").value == 2
    assert explicit.maximise(model, "longest_wait").value == 4  # the first fetch, then its own
    names = {type(a).__name__ for a in model.candidate_actions()}
    assert ("HitMiss" in names, "HitPass" in names) == (hfp == "miss", hfp == "pass")


def test_grace_shorter_than_the_fetch_still_parks_late_clients() -> None:
    """Where stale-while-revalidate lets a request after the window fetch beside the refresh,
    Varnish parks it on the busy background fetch: one fetch for every grace."""
    for grace in range(0, 4):
        model = build("varnish", {"requests": 2, "start": "stale", "grace": grace, "fetch": 3})
        assert explicit.maximise(model, "rebuild_starts").value == 1


def test_the_narration_shows_client_varnish_backend() -> None:
    text = render_mermaid(replay(read_trace(REGRESSION / "varnish-serialised-SERVED-le-2.json")))
    assert "participant Varnish\n    participant backend\n" in text
    assert "r1 parks on the waiting list (r0 is fetching)" in text
    assert "uncacheable, no hit-for-miss/pass: nothing inserted" in text
