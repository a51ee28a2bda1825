"""The ``nginx`` model against a real nginx (Debian's ``nginx-light``) in front of an origin the
test controls: origin fetch counts, and who is answered stale, as the model says.

Each test starts its own nginx (the ``nginx`` fixture in conftest.py: one foreground process
under the test's ``tmp_path``, on a loopback port) with the directives of one configuration of
the model, and an origin (a Python HTTP server in a thread) that counts its fetches and holds
each response on an event until the test's clock releases it. A model tick is :data:`TICK`
seconds of real time: the directives' times are written in milliseconds, clients are started
at their arrival tick, and the origin answers a fetch ``fetch`` ticks after it arrived.

The same arrival schedule is run through the model (:func:`model_run`: arrivals at their tick,
every other step as soon as it is enabled, the clock only when nothing else can happen) and the
real run must match it: the number of origin fetches, the response each client gets (the
body names the fetch it came from, so a response that was not cached is visible), and that
clients the model answers stale are answered before the update completes. nginx's cache lock
waiters poll every 500 ms, which shifts when they are answered, not what: the tests compare
outcomes, not latencies, except that stale answers must come at once.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from herdproof.models.clock import Tick
from herdproof.models.core import Action
from herdproof.models.policies import nginx as policy
from herdproof.models.registry import build
from tests.conformance.report import SEQUENCES

TICK = 0.3  # seconds of real time per model tick
STAGGER = 0.04  # clients arriving in the same tick start this far apart, in request order
SEQUENCE = "nginx proxy cache"


# -- the origin ------------------------------------------------------------------------------

@dataclass
class Origin:
    """An HTTP origin on a loopback port: fetch ``n`` (from 1) answers ``fetch-<n>``, held on
    its event until released (``hold`` seconds after it arrived, by a timer; the test may
    release earlier). ``expires_now`` makes the next answers expire within a second
    (``X-Accel-Expires: @<now>``), to prime an element that is then stale."""

    hold: float
    expires_now: bool = False
    fetches: list[float] = field(default_factory=list)
    events: dict[int, threading.Event] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def arrive(self) -> tuple[int, threading.Event]:
        with self.lock:
            self.fetches.append(time.monotonic())
            n = len(self.fetches)
            event = self.events.setdefault(n, threading.Event())
        timer = threading.Timer(self.hold, event.set)
        timer.daemon = True
        timer.start()
        return n, event

    def release_all(self) -> None:
        with self.lock:
            for event in self.events.values():
                event.set()

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.fetches)


def _handler(origin: Origin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the http.server hook's name
            n, event = origin.arrive()
            event.wait(timeout=20)
            body = f"fetch-{n}".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            if origin.expires_now:
                self.send_header("X-Accel-Expires", f"@{int(time.time())}")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def origin() -> Iterator[Origin]:
    """An origin whose fetches the test holds (see :class:`Origin`)."""
    found = Origin(hold=0.0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(found))
    server.daemon_threads = True
    found.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.release_all()
        server.shutdown()
        server.server_close()


# -- nginx configured as one instance of the model ------------------------------------------

def nginx_config(params: Mapping[str, Any], origin: Origin, cache: Path) -> str:
    """The ``http { }`` body whose directives are the model's parameters, times in ms."""
    ms = {name: int(params[name] * TICK * 1000) for name in ("lock_timeout", "lock_age")}
    lines = [
        f"proxy_cache_path {cache} levels=1 keys_zone=herd:1m;",
        "server {",
        "    listen 127.0.0.1:{port};",
        "    location / {",
        f"        proxy_pass http://127.0.0.1:{origin.port};",
        "        proxy_cache herd;",
        "        proxy_cache_valid 200 10m;",
        f"        proxy_cache_lock {'on' if params['cache_lock'] else 'off'};",
        f"        proxy_cache_lock_timeout {ms['lock_timeout']}ms;",
        f"        proxy_cache_lock_age {ms['lock_age']}ms;",
        "        add_header X-Cache-Status $upstream_cache_status;",
    ]
    if params["use_stale_updating"]:
        lines.append("        proxy_cache_use_stale updating;")
    if params["background_update"]:
        lines.append("        proxy_cache_background_update on;")
    return "\n".join([*lines, "    }", "}"])


@dataclass
class Answer:
    """What one client got: the body (``fetch-<n>``), ``$upstream_cache_status`` and when."""

    body: str
    status: str
    seconds: float


def get(port: int) -> Answer:
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("GET", "/item")
        response = connection.getresponse()
        body = response.read().decode()
        assert response.status == 200, body
        return Answer(body, response.getheader("X-Cache-Status") or "",
                      time.monotonic() - started)
    finally:
        connection.close()


def clients(port: int, arrivals: list[int]) -> list[Answer]:
    """One client per arrival tick, started at that tick (in order within it)."""
    answers: list[Answer | BaseException | None] = [None] * len(arrivals)
    start = time.monotonic()

    def run(r: int) -> None:
        delay = start + arrivals[r] * TICK + r * STAGGER - time.monotonic()
        time.sleep(max(0.0, delay))
        try:
            answers[r] = get(port)
        except BaseException as exc:  # handed to the test thread
            answers[r] = exc

    threads = [threading.Thread(target=run, args=(r,), daemon=True)
               for r in range(len(arrivals))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    assert all(isinstance(a, Answer) for a in answers), "a client did not finish"
    return [a for a in answers if isinstance(a, Answer)]


# -- the model on the same schedule ---------------------------------------------------------

@dataclass
class ModelRun:
    """The model's run on an arrival schedule: origin fetches, each request's final label, and
    the actions taken."""

    fetches: int
    outcome: tuple[int, ...]
    actions: list[Action]

    def took(self, name: str, r: int) -> bool:
        return any(type(a).__name__ == name and getattr(a, "r", None) == r
                   for a in self.actions)


def model_run(params: Mapping[str, Any], arrivals: list[int]) -> ModelRun:
    """Run ``nginx`` with request r arriving at tick ``arrivals[r]``: every step other than a
    not-yet-due arrival fires as soon as it is enabled (in the model's order), the clock
    advances only when none can."""
    model = build("nginx", {**params, "requests": len(arrivals)})
    state = model.initial_states()[0]
    taken: list[Action] = []
    now = 0
    while now < 100:
        step = next((a for a in model.candidate_actions() if not isinstance(a, Tick)
                     and not _early(a, state, arrivals, now) and model.enabled(state, a)), None)
        if step is None:
            if all(pc in model.DONE for pc in state.pc):
                return ModelRun(state.starts, tuple(state.pc), taken)
            step = Tick()
            assert model.enabled(state, step), "the model is stuck"
            now += 1
        state = model.apply(state, step)
        taken.append(step)
    raise AssertionError("the schedule did not finish within 100 ticks")


def _early(a: Action, state: Any, arrivals: list[int], now: int) -> bool:
    r = getattr(a, "r", None)
    return r is not None and state.pc[r] == policy.IDLE and arrivals[r] > now


def instance(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {p.name: p.default for p in policy.PARAMS}
    values.update(overrides)
    return values


# -- the sequences ---------------------------------------------------------------------------

Start = Callable[[str], int]


def run_real(nginx: Start, origin: Origin, tmp_path: Path, params: Mapping[str, Any],
             arrivals: list[int]) -> list[Answer]:
    origin.hold = params["fetch"] * TICK
    port = nginx(nginx_config(params, origin, tmp_path / "cache"))
    answers = clients(port, arrivals)
    SEQUENCES[SEQUENCE] += 1
    return answers


def test_cache_lock_one_origin_fetch_for_concurrent_clients(nginx: Start, origin: Origin,
                                                            tmp_path: Path) -> None:
    params = instance(cache_lock=True, lock_timeout=10, lock_age=10, fetch=3)
    arrivals = [0, 0, 0, 0]
    expected = model_run(params, arrivals)
    answers = run_real(nginx, origin, tmp_path, params, arrivals)
    assert expected.fetches == origin.count == 1
    assert all(pc == policy.GOT_VALUE for pc in expected.outcome)
    assert [a.body for a in answers] == ["fetch-1"] * 4
    assert sorted(a.status for a in answers) == ["HIT", "HIT", "HIT", "MISS"]


def test_without_cache_lock_every_client_fetches(nginx: Start, origin: Origin,
                                                 tmp_path: Path) -> None:
    params = instance(cache_lock=False, fetch=3)
    arrivals = [0, 0, 0, 0]
    expected = model_run(params, arrivals)
    answers = run_real(nginx, origin, tmp_path, params, arrivals)
    assert expected.fetches == origin.count == 4
    assert sorted(a.body for a in answers) == [f"fetch-{n}" for n in range(1, 5)]
    assert {a.status for a in answers} == {"MISS"}


def test_lock_timeout_sends_a_second_fetch_whose_response_is_not_cached(
        nginx: Start, origin: Origin, tmp_path: Path) -> None:
    """lock_timeout (1 tick) shorter than the held fetch (3): the waiter goes to the origin
    itself; its response is not cached, so a later client reads the lock holder's."""
    params = instance(cache_lock=True, lock_timeout=1, lock_age=10, fetch=3)
    arrivals = [0, 0, 6]  # the third client comes after both fetches completed
    expected = model_run(params, arrivals)
    answers = run_real(nginx, origin, tmp_path, params, arrivals)
    assert expected.fetches == origin.count == 2
    assert expected.took("TimeOut", 1) and expected.took("Hit", 2)
    assert [a.body for a in answers] == ["fetch-1", "fetch-2", "fetch-1"]
    assert answers[2].status == "HIT"


def test_lock_age_lets_one_more_request_through(nginx: Start, origin: Origin,
                                                tmp_path: Path) -> None:
    """lock_age (1 tick) shorter than the held fetch (3): the waiter takes the aged lock and
    fetches too (a cacheable fetch), long before its own timeout."""
    params = instance(cache_lock=True, lock_timeout=10, lock_age=1, fetch=3)
    arrivals = [0, 0, 6]
    expected = model_run(params, arrivals)
    answers = run_real(nginx, origin, tmp_path, params, arrivals)
    assert expected.fetches == origin.count == 2
    assert expected.took("TakeAgedLock", 1) and expected.took("Hit", 2)
    assert [a.body for a in answers[:2]] == ["fetch-1", "fetch-2"]
    assert answers[2].status == "HIT" and answers[2].body in ("fetch-1", "fetch-2")


def test_stale_answers_at_once_while_one_background_update_runs(
        nginx: Start, origin: Origin, tmp_path: Path) -> None:
    """An expired element with use_stale updating and background_update: every client is
    answered the stale response at once, and the origin sees one fetch (the update)."""
    params = instance(start="stale", use_stale_updating=True, background_update=True,
                      fetch=4)
    arrivals = [0, 0, 0]
    expected = model_run(params, arrivals)
    assert expected.fetches == 1
    assert all(pc == policy.GOT_STALE for pc in expected.outcome)
    origin.hold = 0.0
    origin.expires_now = True  # prime the element: its response expires within the second
    port = nginx(nginx_config(params, origin, tmp_path / "cache"))
    assert get(port).body == "fetch-1"
    origin.expires_now = False
    time.sleep(int(time.time()) + 1.1 - time.time())  # expired once now > its valid second
    origin.hold = params["fetch"] * TICK
    answers = clients(port, arrivals)
    SEQUENCES[SEQUENCE] += 1
    assert origin.count - 1 == expected.fetches
    assert [a.body for a in answers] == ["fetch-1"] * 3  # the stale response
    # answered at once: long before the held update (fetch ticks) completes
    assert all(a.seconds < origin.hold / 2 for a in answers), [a.seconds for a in answers]
    assert sorted(a.status for a in answers) == ["STALE", "UPDATING", "UPDATING"]
    time.sleep(origin.hold + TICK)  # the background update completes
    probe = get(port)
    assert (probe.body, probe.status) == ("fetch-2", "HIT")
    assert origin.count - 1 == expected.fetches
