"""Renderers: text timeline (with state diffs and the property per state), Mermaid sequence
diagrams, the self-contained HTML timeline (its browser test is test_html_browser.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from herdproof.cli import main
from herdproof.engines import explicit
from herdproof.models.registry import build
from herdproof.properties import Kind, property_named
from herdproof.traces import read_trace, render_text, replay
from herdproof.traces.formats import FORMATS, render
from herdproof.traces.html import render_html
from herdproof.traces.mermaid import render_mermaid
from herdproof.traces.table import REGRESSION, violated
from herdproof.traces.timeline import timeline
from herdproof.traces.trace import Trace

RACE = {"nodes": 1, "per_node": 2, "ex": 2, "rebuild": 3}
STEMS = [v.stem for v in violated()]


def race(policy: str = "lock-cad", prop: str = "ONE") -> Trace:
    trace = explicit.check(build(policy, RACE), [prop])[0].trace
    assert trace is not None
    return trace


# -- a checker for the Mermaid we emit ---------------------------------------------------------
# Real Mermaid (10 and 11) parsed and rendered every diagram of the table when this was written;
# this structural check keeps the output inside the subset of the grammar that was verified.

_PARTICIPANT = re.compile(r"participant (\w+)(?: as [^;#]+)?")
_MESSAGE = re.compile(r"(\w+)(->>|-->>)(\w+): [^;#]+")
_NOTE = re.compile(r"Note (?:over (\w+)(?:,(\w+))?|right of (\w+)|left of (\w+)): [^;#]+")
_RECT = re.compile(r"rect rgb\(\d{1,3}, \d{1,3}, \d{1,3}\)")


def check_mermaid(text: str) -> list[str]:
    """Problems in a sequence diagram (empty when valid); returns the participants otherwise."""
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "sequenceDiagram", lines[0]
    declared: list[str] = []
    depth = 0
    for line in lines[1:]:
        body = line.strip()
        assert line.startswith("    ") and body, f"bad indentation: {line!r}"
        if body.startswith("title "):
            assert not declared, "title must come first"
            continue
        if match := _PARTICIPANT.fullmatch(body):
            declared.append(match.group(1))
            continue
        if _RECT.fullmatch(body):
            depth += 1
            continue
        if body == "end":
            depth -= 1
            assert depth >= 0, "`end` without a block"
            continue
        match = _MESSAGE.fullmatch(body) or _NOTE.fullmatch(body)
        assert match, f"not a message or note: {body!r}"
        for who in match.groups():
            if who and who not in ("->>", "-->>"):
                assert who in declared, f"{who} is not a participant: {body!r}"
    assert depth == 0, "unclosed rect"
    return declared


@pytest.mark.parametrize("stem", STEMS)
def test_mermaid_of_every_expected_counterexample(stem: str) -> None:
    replayed = replay(read_trace(REGRESSION / f"{stem}.json"))
    text = render_mermaid(replayed)
    declared = check_mermaid(text)
    lanes = list(timeline(replayed).lanes)
    servers = list(replayed.model.participants())  # type: ignore[attr-defined]
    assert len(servers) >= 2, "the policy declares who it talks to, the database last"
    assert declared == lanes + servers
    assert "Note over r" in text or "->>" in text
    assert f"{replayed.trace.property} violated here (state {len(replayed.trace)})" in text
    changes = render_mermaid(replayed, changes_only=True)
    check_mermaid(changes)
    if property_named(str(replayed.trace.property)).kind is Kind.ALWAYS:
        assert f"{replayed.trace.property}: true → false" in changes
    else:  # a progress violation ends at the point of no return, not at a false state
        assert "every fair run ends with the property false" in changes


def test_mermaid_tells_the_expiry_race() -> None:
    text = render_mermaid(replay(race("lock-del", "NOFOREIGN")))
    assert "r0->>Redis: (2) SET lock r0 EX 2 NX" in text
    assert "Redis-->>r0: OK" in text
    assert "r0->>DB: (2) query the database (rebuild, 3 ticks)" in text
    assert "Note over Redis: lock of r0 expired (alive through t=2)" in text
    assert "r0->>Redis: DEL lock" in text
    assert "Note over Redis: deleted r1's lock, not r0's own" in text
    assert text.rstrip().endswith("end")


def test_text_shows_the_property_at_every_state_and_changes_only() -> None:
    replayed = replay(race())
    full = render_text(replayed).splitlines()
    assert full[1].split()[-1] == "ONE"
    assert [row.split()[-1] for row in full[3:-1]] == ["true"] * 7
    assert full[-1].endswith("false  <- ONE violated")
    diff = render_text(replayed, changes_only=True).splitlines()
    assert diff[3] == full[3]  # the start state in full
    tick = diff[6]  # step 3: a tick; only the rebuild progress and the lock's life change
    assert tick.split() == ["3", "1", "Tick()", "rebuild", "1/3", "r0", "(1", "left)"]
    assert "rebuild 0/3  r1 (2 left)" in diff[-1] and "empty" not in diff[-1]


def test_timeline_lanes_bars_and_lock_holdings() -> None:
    view = timeline(replay(race("lock-del", "NOFOREIGN")))
    assert view.lanes == ("r0", "r1")
    rebuilds = [(s.lane, s.first, s.last) for s in view.segments if s.phase == "rebuild"]
    assert rebuilds == [("r0", 2, 7), ("r1", 7, 8)]
    holdings = [(h.owner, h.first, h.last, h.acquired_at, h.expires_at, h.ended)
                for h in view.holdings]
    assert holdings == [("r0", 2, 4, 0, 3, "expired"), ("r1", 7, 7, 3, 6, "released")]
    assert view.violation == 8 and view.prop == "NOFOREIGN"
    assert view.changes[8]["NOFOREIGN"] == ("true", "false")


def test_html_is_self_contained_with_one_lane_per_request() -> None:
    page = render_html(replay(race()), replay_command="herdproof replay out/x.json")
    assert page.startswith("<!doctype html>")
    assert not re.search(r"\b(src|href)\s*=", page), "the page must load nothing"
    assert "url(" not in page and "@import" not in page and "http" not in page
    assert len(re.findall(r'class="lane request" data-lane="r\d+"', page)) == 2
    assert 'class="lane lock"' in page and 'data-lane="ONE"' in page
    assert page.count("violating") >= 7  # the violating state, highlighted in every lane
    assert "herdproof replay out/x.json" in page
    data = json.loads(re.search(r'id="trace-data">(.*?)</script>', page, re.S)
                      .group(1).replace("<\\/", "</"))  # type: ignore[union-attr]
    assert data["violation"] == 7 and len(data["columns"]) == 8


def test_render_dispatches_every_format() -> None:
    trace = race()
    out = {fmt: render(trace, fmt) for fmt in FORMATS}
    assert out["text"].splitlines()[-1].endswith("<- ONE violated")
    assert json.loads(out["json"])["format"] == "herdproof-trace"
    assert json.loads(out["itf"])["#meta"]["format"] == "ITF"
    assert out["mermaid"].startswith("sequenceDiagram")
    assert out["html"].startswith("<!doctype html>")
    assert " checked>" in render(trace, "html", changes_only=True)


GET_DEL = ["-p", "release=get-del", "-p", "singleflight=off", "-p", "nodes=1", "-p",
           "per_node=3", "-p", "ex=2", "-p", "rebuild=2", "-p", "gap=1"]


def test_get_then_del_is_two_messages_and_the_race_between_them(tmp_path: Path) -> None:
    """GET lock and DEL lock are two steps with a tick allowed between them: the lock expires
    in the gap, another request takes it, and the DEL removes that request's lock."""
    assert main(["check", "stack", *GET_DEL, "--property", "NOFOREIGN", "--trace-dir",
                 str(tmp_path)]) == 1
    text = render_mermaid(replay(read_trace(tmp_path / "stack-NOFOREIGN-explicit.json")))
    lines = [line.strip() for line in text.splitlines()]
    get = lines.index("r0->>Redis: GET lock")
    assert lines[get + 1] == "Redis-->>r0: r0"
    expired = lines.index("Note over Redis: lock of r0 expired (alive through t=2)")
    taken = lines.index("r1->>Redis: (8) SET lock r1 EX 2 NX")
    deleted = lines.index("r0->>Redis: (9) DEL lock")
    assert get < expired < taken < deleted
    assert lines[deleted + 2] == "Note over Redis: deleted r1's lock, not r0's own"
    cad = [a if a != "release=get-del" else "release=cad" for a in GET_DEL]
    assert main(["check", "stack", *cad, "--property", "NOFOREIGN"]) == 0
