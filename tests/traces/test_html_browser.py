"""The HTML timeline in a real headless browser (Debian's ``chromium``, installed by ``.ci/run``).

The page counts script errors into ``<html data-errors>`` and sets ``data-ready="1"`` when its
script has run; ``--dump-dom`` prints the DOM after scripts ran, ``--screenshot`` draws it.
Without chromium the tests skip locally and fail in CI (``CI`` set), where it must be present.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from herdproof.engines import explicit
from herdproof.models.registry import build
from herdproof.traces import replay
from herdproof.traces.html import render_html

RACE = {"nodes": 2, "per_node": 2, "ex": 1, "rebuild": 2, "release": "del"}
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1400,900"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (Debian package `chromium`)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; .ci/run installs it, so CI must have it")
        pytest.skip(message)
    return found


def browse(tmp_path: Path, url: str, *extra: str) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    result = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, url],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    trace = explicit.check(build("stack", RACE), ["NOFOREIGN"])[0].trace
    assert trace is not None
    path = tmp_path_factory.mktemp("html") / "race.html"
    path.write_text(render_html(replay(trace), replay_command="herdproof replay race.json"),
                    encoding="utf-8")
    return path


def test_the_timeline_loads_without_script_errors(page: Path, tmp_path: Path) -> None:
    dom = browse(tmp_path, page.as_uri(), "--dump-dom")
    root = re.search(r"<html[^>]*>", dom)
    assert root, dom[:500]
    assert 'data-errors="0"' in root.group(0), root.group(0)
    assert 'data-ready="1"' in root.group(0)
    lanes = re.findall(r'class="lane request" data-lane="(r\d+)"', dom)
    assert lanes == ["r0", "r1", "r2", "r3"]  # one lane per request
    # opened at the violating state, which the script reports and the details table shows
    assert 'data-step="9"' in root.group(0)
    assert re.search(r'id="where">state 9 of 9, t=2: Finish\(r=0\)', dom)
    assert re.search(r'<tr class="changed"><td>NOFOREIGN</td>', dom)


def test_step_through_from_the_url(page: Path, tmp_path: Path) -> None:
    dom = browse(tmp_path, page.as_uri() + "#step=3", "--dump-dom")
    assert 'data-step="3"' in dom and 'data-errors="0"' in dom
    assert re.search(r'id="where">state 3 of 9, t=0: WinLock\(r=0\)', dom)
    assert len(re.findall(r'class="cell[^"]*current[^"]*" data-i="3"', dom)) >= 6


def test_a_screenshot_is_produced(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "race.png"
    browse(tmp_path, page.as_uri(), f"--screenshot={shot}")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000, "a blank page compresses to a few kilobytes"
