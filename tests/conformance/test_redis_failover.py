"""The ``failover`` model against a real primary and replica: two ``redis-server`` processes on
loopback ports, the replica started with ``--replicaof``, both without persistence.

Each test takes a run of the model (a shortest counterexample the explicit engine finds, or a
run written out here and replayed through the model first) and performs it on the pair, step by
step, with redis-py:

- the replica replicates through a small proxy in the test, which holds the primary's
  replication stream (the replica's acknowledgements pass) until the model's ``Replicate()``
  step; that step lets the stream through and waits until the replica has all of it and the
  primary has its acknowledgement (which ends a pending ``WAIT``). Stopping the replica with
  ``SIGSTOP`` would not do: its kernel still receives the stream into the socket buffer, and on
  ``SIGCONT`` the replica reads the write before ``REPLICAOF NO ONE``. The held bytes are what
  an un-replicated write is;
- ``Failover()`` kills the primary (``SIGKILL``), drops the stream the proxy still holds (the
  writes the replica never received), promotes the replica with ``REPLICAOF NO ONE``, and starts
  a fresh server (no persistence) as the new primary's replica, through a new proxy: the old
  primary rejoining with a full resync;
- a request's commands are the model's: ``SET lock r<i> NX PX``, then with ``wait`` on ``WAIT 1
  <timeout>`` on the same connection (in a thread: it blocks until the model's ``Acked``,
  ``WaitTimedOut`` or ``ProceedUnacked`` step reads its reply, or the failover breaks it), and
  the compare-and-delete script;
- a tick is one second of real time (``WAIT``'s timeout is real time); a life of ``n`` ticks is
  sent as ``n`` seconds and a half, so every step falls half a tick away from an expiry
  boundary (``herdproof/redis_replay.py`` explains the offset).

Every reply must be the one the model's step implies, and after every step the lock key on the
primary (owner and remaining ticks), and on the replica wherever it runs, must be the model's.
"""

from __future__ import annotations

import contextlib
import select
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from herdproof.engines import explicit
from herdproof.models.core import Action
from herdproof.models.policies import failover as fo
from herdproof.models.redis_lock import NO_OWNER, RedisLock
from herdproof.models.registry import build
from herdproof.traces import replay
from herdproof.traces.trace import Trace
from tests.conformance.conftest import _free_port, _require, _wait_for_port
from tests.conformance.report import SEQUENCES

TICK_MS = 1000
CAD = ('if redis.call("get", KEYS[1]) == ARGV[1] then '
       'return redis.call("del", KEYS[1]) else return 0 end')


class Server:
    """One ``redis-server`` process on a free loopback port."""

    def __init__(self, binary: str, workdir: Path, replica_of: int | None = None) -> None:
        self.port = _free_port()
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no",
                   "--repl-diskless-sync-delay", "0", "--logfile", ""]
        if replica_of is not None:
            command += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, self.process, "redis-server")
        self.client = redis.Redis(port=self.port, decode_responses=True)

    def connect(self) -> redis.Redis:
        """A client's own connection; a connection error is final (no retries: the model's
        client that loses the primary gives up)."""
        return redis.Redis(port=self.port, decode_responses=True, retry=Retry(NoBackoff(), 0),
                           retry_on_error=[])

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.client.close()


class Link(threading.Thread):
    """The replication link, as a TCP proxy: the replica connects here, the proxy connects to
    the primary. Bytes from the replica always pass; bytes from the primary are held while
    ``holding`` is set, and delivered in order once it is cleared."""

    def __init__(self, primary_port: int) -> None:
        super().__init__(daemon=True)
        self.primary_port = primary_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.holding = False
        self.held = bytearray()
        self.closed = threading.Event()
        self.start()

    def run(self) -> None:
        self.listener.settimeout(0.05)
        while not self.closed.is_set():
            try:
                downstream, _ = self.listener.accept()
            except TimeoutError:
                continue
            self._pump(downstream)

    def _pump(self, downstream: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.primary_port))
        except OSError:  # the primary is gone: the replica's reconnection fails
            downstream.close()
            return
        with downstream, upstream, contextlib.suppress(OSError):
            while not self.closed.is_set():
                if self.held and not self.holding:
                    downstream.sendall(self.held)
                    self.held.clear()
                ready, _, _ = select.select([downstream, upstream], [], [], 0.005)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is downstream:
                        upstream.sendall(data)
                    elif self.holding:
                        self.held += data
                    else:
                        downstream.sendall(data)

    def close(self) -> None:
        """The primary is gone: what the link still holds is lost."""
        self.closed.set()
        self.join(timeout=5)
        self.listener.close()


def _replication(client: redis.Redis) -> dict[str, Any]:
    info: dict[str, Any] = client.info("replication")
    return info


def _wait_until(condition: Any, what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.005)


@dataclass
class Pair:
    """A primary and its replica, linked through a :class:`Link` that holds the replication
    stream between the model's replication steps."""

    binary: str
    workdir: Path
    primary: Server = field(init=False)
    replica: Server = field(init=False)
    link: Link = field(init=False)
    retired: list[Server] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.primary = Server(self.binary, self.workdir)
        self.replica, self.link = self._replica_of(self.primary)

    def _replica_of(self, primary: Server) -> tuple[Server, Link]:
        link = Link(primary.port)
        replica = Server(self.binary, self.workdir, replica_of=link.port)
        self._synced(primary, replica)
        link.holding = True
        return replica, link

    def _synced(self, primary: Server, replica: Server) -> None:
        """Wait until the replica has processed the primary's whole stream so far (a pending
        ``WAIT`` then gets its acknowledgement: the primary asked for one in that stream)."""
        end = int(_replication(primary.client)["master_repl_offset"])

        def caught_up() -> bool:
            mine = _replication(replica.client)
            return mine.get("master_link_status") == "up" and \
                not mine.get("master_sync_in_progress") and \
                int(mine.get("slave_repl_offset", -1)) >= end
        _wait_until(caught_up, f"the replica on port {replica.port} caught up")

    def replicate(self) -> None:
        """The replica receives everything the primary sent so far, and acknowledges it."""
        self.link.holding = False
        self._synced(self.primary, self.replica)
        self.link.holding = True

    def failover(self) -> None:
        """The primary dies; the replica is promoted; a fresh server becomes its replica."""
        self.link.close()
        self.primary.kill()
        self.retired.append(self.primary)
        assert self.replica.client.execute_command("REPLICAOF", "NO", "ONE") == "OK"
        self.primary = self.replica
        self.replica, self.link = self._replica_of(self.primary)

    def close(self) -> None:
        self.link.close()
        for server in (self.primary, self.replica, *self.retired):
            server.kill()


@pytest.fixture
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    binary = _require("redis-server", "redis-server")
    made = Pair(binary, tmp_path_factory.mktemp("failover"))
    yield made
    made.close()


class Waiter(threading.Thread):
    """``WAIT 1 <timeout>`` on the connection that sent the ``SET``: blocks until the replica
    acknowledges, the timeout, or the primary's death."""

    def __init__(self, client: redis.Redis, timeout_ms: int) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.timeout_ms = timeout_ms
        self.reply: int | None = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.reply = int(self.client.execute_command("WAIT", 1, self.timeout_ms))
        except redis.ConnectionError as exc:
            self.error = exc


class Driver:
    """Performs a run of the model on the pair and holds the servers to the model."""

    def __init__(self, pair: Pair, model: fo.FailoverModel) -> None:
        self.pair = pair
        self.model = model
        self.cfg = model.cfg
        self.origin = time.monotonic()
        self.now = 0
        self.waiters: dict[int, Waiter] = {}
        self.log: list[str] = []

    def life_ms(self, ticks: int) -> int:
        return ticks * TICK_MS + TICK_MS // 2

    def run(self, actions: Sequence[Action]) -> list[Any]:
        trace = Trace("failover", self.model.params, tuple(actions))
        states = replay(trace, self.model).states
        self.expect_lock(self.pair.primary, states[0].primary, "primary at the start")
        for step, (action, before, after) in enumerate(
                zip(actions, states, states[1:], strict=False), start=1):
            self.perform(action, before, after)
            where = f"after step {step} {action!r} ({'; '.join(self.log[-3:])})"
            self.expect_lock(self.pair.primary, after.primary, f"primary {where}")
            self.expect_lock(self.pair.replica, after.replica, f"replica {where}")
        SEQUENCES["redis primary + replica failover"] += 1
        return list(states)

    def expect_lock(self, server: Server, lock: RedisLock, where: str) -> None:
        value = server.client.get("lock")
        owner = None if lock.owner == NO_OWNER else f"r{lock.owner}"
        assert value == owner, f"{where}: the server holds {value}, the model {owner}"
        if owner is not None:
            pttl = int(server.client.pttl("lock"))
            # A step is due half a tick before an expiry; a busy machine (the suite runs on
            # every core) can make it later than that, and only then is one tick less right.
            late = time.monotonic() - (self.origin + self.now * TICK_MS / 1000)
            lowest = lock.remaining - (1 if late * 1000 >= TICK_MS // 2 else 0)
            assert lowest <= pttl // TICK_MS <= lock.remaining, \
                f"{where}: PTTL {pttl} ms, the model {lock.remaining} tick(s) left " \
                f"({late:.2f}s into the tick)"

    def perform(self, action: Action, before: fo.FailoverState,
                after: fo.FailoverState) -> None:
        name = type(action).__name__
        r = getattr(action, "r", None)
        if name == "Tick":
            self.now += 1
            time.sleep(max(0.0, self.origin + self.now * TICK_MS / 1000 - time.monotonic()))
        elif name == "Replicate":
            self.pair.replicate()
            for q, waiter in list(self.waiters.items()):
                if after.pc[q] == fo.REPLICATED:
                    waiter.join(timeout=5)
                    assert waiter.reply == 1, f"WAIT of r{q} answered {waiter.reply}"
            self.log.append("replica resumed and caught up")
        elif name == "Failover":
            self.pair.failover()
            for q, waiter in list(self.waiters.items()):
                waiter.join(timeout=5)
                if before.pc[q] == fo.WAITING:  # (an acknowledged reply is lost unread)
                    assert waiter.error is not None, f"r{q}'s WAIT survived the primary's death"
                assert after.pc[q] == fo.GAVE_UP
                del self.waiters[q]
            self.log.append("primary killed, replica promoted")
        elif name in ("WinLock", "LoseLock"):
            assert r is not None
            client = self.pair.primary.connect()
            ok = client.set("lock", f"r{r}", nx=True, px=self.life_ms(self.cfg.ttl))
            self.log.append(f"SET lock r{r} NX PX -> {ok}")
            assert (ok is True) == (name == "WinLock"), f"SET NX of r{r} answered {ok}"
            if ok and self.cfg.wait:
                waiter = Waiter(client, self.cfg.wait_timeout * TICK_MS)
                waiter.start()
                self.waiters[r] = waiter
                # the WAIT must be blocked on the primary before the run goes on: its request
                # for acknowledgements travels in the replication stream the link holds
                primary = self.pair.primary.client
                _wait_until(lambda: int(primary.info("clients")["blocked_clients"])
                            >= sum(w.is_alive() for w in self.waiters.values()),
                            f"r{r}'s WAIT blocked")
        elif name in ("Acked", "WaitTimedOut", "ProceedUnacked"):
            assert r is not None
            waiter = self.waiters.pop(r)
            waiter.join(timeout=self.cfg.wait_timeout + 5)
            self.log.append(f"WAIT of r{r} -> {waiter.reply}")
            assert waiter.reply == (1 if name == "Acked" else 0), \
                f"{action!r}: WAIT answered {waiter.reply} ({waiter.error})"
            if name == "WaitTimedOut":
                self.release(r, before)
        elif name in ("Store", "StoreRejected"):
            assert r is not None
            self.release(r, before)
        else:
            assert name in ("Pause", "Crash"), f"no server counterpart for {action!r}"

    def release(self, r: int, before: fo.FailoverState) -> None:
        reply = self.pair.primary.client.eval(CAD, 1, "lock", f"r{r}")
        self.log.append(f"compare-and-delete r{r} -> {reply}")
        assert reply == (1 if before.primary.owner == r else 0)


def _model(params: dict[str, Any]) -> fo.FailoverModel:
    model = build("failover", params)
    assert isinstance(model, fo.FailoverModel)
    return model


def _shortest(params: dict[str, Any], prop: str) -> tuple[Action, ...]:
    result = explicit.check(_model(params), [prop])[0]
    assert result.trace is not None, f"{prop} is no longer violated with {params}"
    return result.trace.actions


def _actions(model: fo.FailoverModel, text: str) -> tuple[Action, ...]:
    """``"WinLock(r=0); Tick()"`` as the model's actions."""
    types = model.action_types()
    out = []
    for step in text.split("; "):
        name, _, args = step.rstrip(")").partition("(")
        fields = dict(arg.split("=") for arg in args.split(", ") if arg)
        out.append(types[name](**{k: int(v) for k, v in fields.items()}))
    return tuple(out)


def test_a_failover_loses_the_acknowledged_lock_and_two_clients_hold_it(pair: Pair) -> None:
    """The model's shortest MUTEX counterexample: SET NX on the primary (OK), the primary dies
    before the replica has it, the promoted replica answers the second SET NX with OK too."""
    params = {"failovers": 1, "wait": False}
    actions = _shortest(params, "MUTEX")
    assert [type(a).__name__ for a in actions] == ["WinLock", "Failover", "WinLock"]
    states = Driver(pair, _model(params)).run(actions)
    assert [pc for pc in states[-1].pc] == [fo.WORKING, fo.WORKING]


def test_the_lapsed_write_trace_releases_as_the_model_says(pair: Pair) -> None:
    """The shortest NOLAPSED counterexample, with its ticks, its replication step and both
    compare-and-delete replies (the second holder's 1, the first's 0)."""
    params = {"failovers": 1}
    actions = _shortest(params, "NOLAPSED")
    assert len(actions) == 8
    Driver(pair, _model(params)).run(actions)


def test_wait_keeps_the_lock_through_a_failover(pair: Pair) -> None:
    """WAIT 1 returns 1 once the replica has the key; the promoted replica then refuses the
    second SET NX, and the holder's compare-and-delete on the new primary answers 1."""
    model = _model({"wait": True})
    Driver(pair, model).run(_actions(model,
        "WinLock(r=0); Replicate(); Acked(r=0); Failover(); LoseLock(r=1); Tick(); Tick(); "
        "Store(r=0)"))


def test_a_failover_during_wait_breaks_it_and_the_waiter_gives_up(pair: Pair) -> None:
    model = _model({"wait": True})
    states = Driver(pair, model).run(_actions(model,
        "WinLock(r=0); Failover(); WinLock(r=1); Replicate(); Acked(r=1)"))
    assert states[-1].pc == (fo.GAVE_UP, fo.WORKING)


def test_wait_times_out_without_the_replica_and_the_client_releases(pair: Pair) -> None:
    """The replica lags past WAIT's timeout: WAIT returns 0 although the SET succeeded, and the
    client (on_timeout=abort) deletes its key with compare-and-delete."""
    model = _model({"wait": True, "wait_timeout": 1})
    states = Driver(pair, model).run(_actions(model, "WinLock(r=0); Tick(); WaitTimedOut(r=0)"))
    assert states[-1].pc[0] == fo.GAVE_UP


def test_a_client_that_ignores_wait_still_loses_the_lock_in_a_failover(pair: Pair) -> None:
    params = {"wait": True, "wait_timeout": 1, "on_timeout": "proceed"}
    actions = _shortest(params, "MUTEX")
    assert len(actions) == 7
    Driver(pair, _model(params)).run(actions)
