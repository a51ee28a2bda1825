"""The fleet simulation's engine room: one cache key, stepped from state change to state change.

:mod:`engines.fleet` describes the semantics (the stack model's program, the phases of a tick,
the expiry rules); this module makes them fast. The idea: almost every request at a TTL
boundary changes nothing that another request can see. A GET that hits, a follower subscribing
to its node's flight, a request that loses ``SET NX`` while the lock lives, a lease waiter
retrying while the lease lives: each only *observes* the cache, the lock or its leader. So the
loop below visits only the ticks where shared state can change (a rebuild finishes, a write
deletes the key, a lock or lease frees, a node's next leader arrives, a leader wakes or
attempts the lock) and touches only the requests that change it. Everything else is decided
afterwards, all at once, with numpy: a request that hit, followed or lost is classified from the
recorded cache timeline and the recorded flights. No Python object is made per request, and the
number of loop iterations grows with the number of state changes (rebuilds, flights, writes),
not with the number of requests. Policy ``none`` is the exception where every miss changes
state (each starts a rebuild); its misses are started in vectorised batches, cut where the first
rebuild of the batch would refill the cache.

:mod:`engines.fleet_reference` is the same semantics written the obvious way (one SimPy process
per request); the tests require the two to agree request by request.
"""

from __future__ import annotations

import bisect
import contextvars
import heapq
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
Codes = npt.NDArray[np.int8]
Flags = npt.NDArray[np.bool_]

NEVER = 1 << 60  # a tick later than any run reaches

# The phases of one tick, in the order they happen (see engines.fleet).
EXPIRE, FINISH, WRITE, WAKE, ATTEMPT, ARRIVE = range(6)

# How a request was served (its role) and what it got (its outcome).
UNSET, HIT, FOLLOWER, REBUILDER, RECHECKED, WAITER = range(6)
ROLE_NAMES = ("unset", "hit", "follower", "rebuilder", "rechecked", "waiter")
VALUE, FALLBACK, ERROR = 1, 2, 3
OUTCOME_NAMES = ("none", "value", "fallback", "error")

_K_FINISH, _K_BATCH, _K_WAKE, _K_ATTEMPT = range(4)
_FIRST_BATCH = 64


class OutOfTime(Exception):
    """The deadline set with :func:`deadline` passed in the middle of a simulation."""


_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "herdproof_fleet_deadline", default=None)


@contextmanager
def deadline(at: float | None) -> Iterator[None]:
    """Stop every simulation inside (:class:`OutOfTime`) once ``time.perf_counter()`` passes
    ``at`` (``None``: no limit)."""
    token = _DEADLINE.set(at)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def spend() -> None:
    """Raise :class:`OutOfTime` if the deadline in force has passed."""
    at = _DEADLINE.get()
    if at is not None and time.perf_counter() > at:
        raise OutOfTime


@dataclass(frozen=True)
class Mechanisms:
    """What stands between the key and the database, with every duration in ticks.

    ``lock`` is ``SET lock <token> EX <ex> NX`` (Redis expiry: alive while ``t <= t0 + ex``);
    ``lease`` is a memcached lease (``mg key N<ex>``; memcached expiry: gone once
    ``t >= t0 + ex``). ``ttl`` is the cached value's TTL (0: it never expires in the run).
    ``crash`` rebuilds, the first to start, never write and never release.
    """

    singleflight: bool
    lock: bool
    lease: bool
    release_cad: bool
    recheck: bool
    ex: int
    wait: int
    gap: int
    ttl: int
    crash: int


class Durations:
    """Rebuild durations in ticks, handed out in the order rebuilds start.

    Values are drawn in fixed-size blocks, so the k-th rebuild gets the same duration however
    many are taken at a time (the vectorised batches and the per-request reference agree).
    """

    BLOCK = 4096

    def __init__(self, draw: Callable[[int], Ints]) -> None:
        self._draw = draw
        self._buffer: Ints = np.empty(0, np.int64)
        self._position = 0

    def peek(self, n: int) -> Ints:
        """The next ``n`` durations, without using them up."""
        missing = n - (len(self._buffer) - self._position)
        if missing > 0:
            blocks = [np.asarray(self._draw(self.BLOCK), dtype=np.int64)
                      for _ in range(-(-missing // self.BLOCK))]
            self._buffer = np.concatenate([self._buffer[self._position:], *blocks])
            self._position = 0
        return self._buffer[self._position:self._position + n]

    def take(self, n: int) -> Ints:
        """The next ``n`` durations, used up."""
        values = self.peek(n).copy()
        self._position += n
        return values


@dataclass(frozen=True)
class KeyWorkload:
    """One key's requests and writes.

    ``arrival`` is sorted; a request's id is its index, which is also its place in the order of
    requests arriving in the same tick. ``durations`` makes a fresh duration stream (the same
    every time it is called).
    """

    arrival: Ints
    node: Ints
    nodes: int
    writes: Ints
    durations: Callable[[], Durations]


@dataclass(frozen=True)
class KeyRun:
    """Everything one key's run produced, as arrays (request ids index the per-request ones).

    ``done`` is the tick a request was answered; ``rb_*`` describe rebuilds in start order:
    ``rb_guard_gone`` is the first tick at which the rebuild's lock or lease no longer protected
    it (``NEVER`` without one). ``cache_t``/``cache_s``: from tick ``cache_t[i]`` on, a GET
    finds the key filled iff ``cache_s[i]`` (the state after the tick's finishes and writes).
    """

    arrival: Ints
    node: Ints
    role: Codes
    outcome: Codes
    done: Ints
    rb_req: Ints
    rb_start: Ints
    rb_end: Ints
    rb_crashed: Flags
    rb_guard_gone: Ints
    rb_rejected: Flags
    writes: Ints
    cache_t: Ints
    cache_s: Flags
    foreign_releases: int
    #: Database queries no request made (a program's background actor: a refresher), counted
    #: in ``db_queries`` but not among the ``rb_*`` records.
    background_queries: int = 0

    def filled_at(self, ticks: Ints) -> Flags:
        """Whether a GET at each of ``ticks`` (after that tick's finishes and writes) hits."""
        index = np.searchsorted(self.cache_t, ticks, side="right") - 1
        return np.asarray(self.cache_s[index], dtype=np.bool_)


class _Rebuilds:
    """Rebuild records in start order: single starts buffered in lists, batches as arrays."""

    def __init__(self) -> None:
        self.count = 0
        self._parts: list[tuple[Ints, Ints, Ints, Flags, Ints]] = []
        self._single: tuple[list[int], list[int], list[int], list[bool], list[int]] = (
            [], [], [], [], [])
        self.rejected: list[int] = []
        self._died: dict[int, int] = {}  # seq -> tick its process died under it

    def died(self, seq: int, t: int) -> None:
        """Rebuild ``seq`` ends at ``t``, crashed: another request's crash killed its process."""
        self._died[seq] = t

    def add(self, req: int, start: int, end: int, crashed: bool, guard: int) -> int:
        for column, value in zip(self._single, (req, start, end, crashed, guard), strict=True):
            column.append(value)  # type: ignore[attr-defined]
        self.count += 1
        return self.count - 1

    def add_many(self, reqs: Ints, starts: Ints, ends: Ints, crashed: Flags) -> int:
        self._flush()
        first = self.count
        guard = np.full(len(reqs), NEVER, np.int64)
        self._parts.append((reqs, starts, ends, crashed, guard))
        self.count += len(reqs)
        return first

    def _flush(self) -> None:
        if self._single[0]:
            req, start, end, crashed, guard = self._single
            self._parts.append((np.array(req, np.int64), np.array(start, np.int64),
                                np.array(end, np.int64), np.array(crashed, np.bool_),
                                np.array(guard, np.int64)))
            self._single = ([], [], [], [], [])

    def arrays(self) -> tuple[Ints, Ints, Ints, Flags, Ints, Flags]:
        self._flush()
        columns = [np.concatenate([p[i] for p in self._parts]) if self._parts else
                   np.empty(0, np.bool_ if i == 3 else np.int64) for i in range(5)]
        rejected = np.zeros(self.count, np.bool_)
        rejected[self.rejected] = True
        crashed = columns[3].astype(np.bool_)
        for seq, t in self._died.items():
            columns[2][seq], crashed[seq] = t, True
        return (columns[0], columns[1], columns[2], crashed, columns[4], rejected)


@dataclass
class _Batch:
    """Policy ``none``: many rebuilds started together, finishing in ``ends`` order."""

    ends: Ints          # sorted end ticks
    seqs: Ints          # rebuild sequence numbers in the same order
    fill_ends: Ints     # sorted end ticks of the rebuilds that will write (not crashed)
    cursor: int = 0


class _Key:
    """One key's run. Read :func:`run_key`; the methods follow the phases of a tick."""

    def __init__(self, m: Mechanisms, w: KeyWorkload) -> None:
        self.m = m
        self.arr = w.arrival
        self.node = w.node
        self.n = len(w.arrival)
        self.writes = w.writes
        self.durations = w.durations()
        self.role: Codes = np.zeros(self.n, np.int8)
        self.outcome: Codes = np.zeros(self.n, np.int8)
        self.done: Ints = np.full(self.n, -1, np.int64)
        self.now = 0
        self.filled = False
        self.cache_gone = NEVER            # first tick the current value is gone (TTL)
        self.tl_t: list[int] = [-NEVER]    # cache timeline, see KeyRun
        self.tl_s: list[bool] = [False]
        self.lock_owner = -1
        self.lock_gone = 0                 # the lock protects while t < lock_gone
        self.lease_holder = -1
        self.lease_gone = 0
        self.heap: list[tuple[int, int, int, int, int]] = []
        self.write_cursor = 0
        self.cursor = 0                    # no single-flight: first request not yet handled
        self.attempt_cursor = 0            # no single-flight, lock with gap: same, for SET NX
        self.rebuilds = _Rebuilds()
        self.batches: list[_Batch] = []
        self.first_live_batch = 0
        self.foreign = 0
        self.waiting: Ints = np.empty(0, np.int64)   # lease waiters, by id
        # A crash kills its whole process (node). With single-flight every request of the node
        # in progress belongs to the crashed leader's flight; without, the node's other
        # rebuilders, pending SET NX attempts and sleepers die too (tracked only then).
        self.kills_nodes = m.crash > 0 and not m.singleflight and not m.lease
        self.rebuilding_on: dict[int, dict[int, int]] = {}  # node -> {request: rebuild seq}
        self.dead: set[int] = set()
        self.kills: list[tuple[int, int]] = []  # (tick, node) of each crash
        if m.singleflight:
            self._index_nodes(w.nodes)

    # -- single-flight bookkeeping ----------------------------------------------------------

    def _index_nodes(self, nodes: int) -> None:
        """Requests grouped by node (then by id), with a search key per (node, tick)."""
        self.nodes = nodes
        self.flat = np.argsort(self.node, kind="stable").astype(np.int64)
        self.flat_t = self.arr[self.flat]
        self.big = int(self.arr[-1]) + 2 if self.n else 2
        self.flat_key = self.node[self.flat] * self.big + self.flat_t
        self.base = np.arange(nodes, dtype=np.int64) * self.big
        self.seg_end = np.searchsorted(self.node[self.flat], np.arange(1, nodes + 1), "left")
        self.node_min = np.searchsorted(self.node[self.flat], np.arange(nodes), "left")
        self.flight_of_node = np.full(nodes, -1, np.int64)
        self.f_pos: list[int] = []       # flat position of the flight's leader
        self.f_end: list[int] = []       # flat position of the first request after it resolved
        self.f_done: list[int] = []
        self.f_outcome: list[int] = []
        self.pos_of: dict[int, int] = {}  # leader id -> flat position
        # Each node with no flight: its next request, the one that would lead (if it misses).
        # Entries go stale when the node leads or the heap is rebuilt (a new epoch).
        self.candidates: list[tuple[int, int, int, int, int]] = []  # tick, id, node, pos, epoch
        self.epoch = 0
        self._refresh_candidates(0)

    def _refresh_candidates(self, t: int) -> None:
        """The key just went missing at ``t``: every idle node's first request from ``t`` on."""
        self.epoch += 1
        pos = np.maximum(np.searchsorted(self.flat_key, self.base + t, "left"), self.node_min)
        ok = (pos < self.seg_end) & (self.flight_of_node < 0)
        nodes = np.nonzero(ok)[0]
        pos = pos[ok]
        self.candidates = [(int(tick), int(r), int(n), int(p), self.epoch) for tick, r, n, p in
                           zip(self.flat_t[pos], self.flat[pos], nodes, pos, strict=True)]
        heapq.heapify(self.candidates)

    def _push_candidate(self, n: int, t: int) -> None:
        """Node ``n`` has no flight from ``t`` on: queue its next request."""
        p = max(int(np.searchsorted(self.flat_key, n * self.big + t, "left")),
                int(self.node_min[n]))
        if p < self.seg_end[n]:
            heapq.heappush(self.candidates, (int(self.flat_t[p]), int(self.flat[p]), n, p,
                                             self.epoch))

    def _next_candidate(self) -> tuple[int, int, int, int, int] | None:
        while self.candidates:
            top = self.candidates[0]
            _, _, n, p, epoch = top
            if epoch == self.epoch and self.flight_of_node[n] < 0 and p >= self.node_min[n]:
                return top
            heapq.heappop(self.candidates)
        return None

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> KeyRun:
        at, rounds = _DEADLINE.get(), 0
        while True:
            rounds += 1
            if at is not None and not rounds & 15 and time.perf_counter() > at:
                raise OutOfTime
            t = self._next_tick()
            if t >= NEVER:
                break
            self._absorb(t)
            if self.filled and t >= self.cache_gone:
                self._empty(t)
            self._finishes(t)
            while self.write_cursor < len(self.writes) and \
                    int(self.writes[self.write_cursor]) == t:
                self._write(t)
                self.write_cursor += 1
            self._record(t)
            self._wakes(t)
            self._attempts(t)
            self._arrivals(t)
            self.now = t + 1
        return self._classify()

    def _next_tick(self) -> int:
        """The next tick at which shared state may change."""
        m, candidate = self.m, NEVER
        if self.heap:
            candidate = self.heap[0][0]
        if self.write_cursor < len(self.writes):
            candidate = min(candidate, int(self.writes[self.write_cursor]))
        if self.filled:
            candidate = min(candidate, self.cache_gone)
        elif m.lease and self.lease_holder >= 0 and self.lease_gone >= self.now:
            candidate = min(candidate, self.lease_gone)
        return min(candidate, self._next_request_tick())

    def _next_request_tick(self) -> int:
        m, now = self.m, self.now
        if m.singleflight:
            if self.filled:
                return NEVER
            top = self._next_candidate()
            return NEVER if top is None else top[0]
        if m.lock and m.gap > 0:
            return self._next_attempt_tick()
        if self.filled:
            return NEVER
        if m.lease:
            if not self._lease_free(now):
                return NEVER
            first = int(self.arr[self.cursor]) if self.cursor < self.n else NEVER
            return min(first, self._next_retry(now))
        if self.cursor >= self.n:
            return NEVER
        if m.lock:
            start = now if self._lock_free(now) else self.lock_gone
            i = max(self.cursor, int(np.searchsorted(self.arr, start, "left")))
            return int(self.arr[i]) if i < self.n else NEVER
        return int(self.arr[self.cursor])

    def _next_attempt_tick(self) -> int:
        """No single-flight, lock with a gap: the next SET NX that may find the lock free."""
        start = self.now if self._lock_free(self.now) else self.lock_gone
        gap = self.m.gap
        i = max(self.attempt_cursor, int(np.searchsorted(self.arr, start - gap, "left")))
        while i < self.n:
            a = int(self.arr[i])
            if a >= self.now:
                return NEVER if self.filled else a + gap
            k = bisect.bisect_right(self.tl_t, a) - 1
            if not self.tl_s[k]:
                return a + gap
            until = self.tl_t[k + 1] if k + 1 < len(self.tl_t) else self.now
            i = int(np.searchsorted(self.arr, until, "left"))   # skip the GETs that hit
        return NEVER

    def _next_retry(self, now: int) -> int:
        if not len(self.waiting):
            return NEVER
        return int(self._retry_at(self.waiting, now).min())

    def _retry_at(self, ids: Ints, t: int) -> Ints:
        """Each lease waiter's first retry at or after ``t`` (retries every ``wait`` ticks)."""
        a = self.arr[ids]
        rounds = np.maximum(1, -((a - t) // self.m.wait))
        retry: Ints = a + rounds * self.m.wait
        return retry

    def _absorb(self, t: int) -> None:
        """Requests arriving before ``t`` that changed nothing: hits, losers, lease waiters."""
        if self.m.singleflight:
            return
        upto = int(np.searchsorted(self.arr, t, "left"))
        if upto > self.cursor:
            if self.m.lease and not self.filled:
                self._add_waiters(self.cursor, upto)
            self.cursor = upto

    # -- phases -------------------------------------------------------------------------------

    def _finishes(self, t: int) -> None:
        while self.heap and self.heap[0][0] == t and self.heap[0][1] == FINISH:
            _, _, seq, kind, payload = heapq.heappop(self.heap)
            if kind == _K_BATCH:
                self._finish_batch(t, payload)
            else:
                self._finish(t, seq, payload)

    def _finish(self, t: int, seq: int, r: int) -> None:
        """Rebuild ``seq`` of request ``r`` is due: write, release, resolve (or it crashed)."""
        m = self.m
        if self.kills_nodes:
            if r in self.dead:
                return  # its process died under it at an earlier crash
            self.rebuilding_on[int(self.node[r])].pop(r)
        if seq < m.crash:
            self._answer(r, ERROR, t)
            self._resolve(r, t, FINISH, ERROR)
            if self.kills_nodes:
                self._kill_node(int(self.node[r]), t)
            return
        if m.lease:
            if self.lease_holder == r:  # a token stays good until a new one or a delete
                self._fill(t)
                self.lease_holder = -1
                self._resolve_waiters(t)
            else:
                self.rebuilds.rejected.append(seq)  # a newer token or a delete voided it
        else:
            self._fill(t)
            if m.lock:
                self._release(r, t)
        self._answer(r, VALUE, t)
        self._resolve(r, t, FINISH, VALUE)

    def _kill_node(self, n: int, t: int) -> None:
        """Node ``n``'s process dies at ``t`` (a rebuild crashed, phase FINISH): its other
        rebuilds end crashed, requests that arrived before ``t`` and wait to try ``SET NX``
        (the ``gap``) get the error now, and its sleepers are classified afterwards."""
        for q, seq in self.rebuilding_on.pop(n, {}).items():
            self.dead.add(q)
            self.rebuilds.died(seq, t)
            self._answer(q, ERROR, t)
        if self.m.lock and self.m.gap:
            lo = int(np.searchsorted(self.arr, t - self.m.gap, "left"))
            hi = int(np.searchsorted(self.arr, t, "left"))
            for q in range(lo, hi):
                if self.node[q] == n and self.outcome[q] == 0 and self.role[q] == UNSET \
                        and not self._filled_before(int(self.arr[q])):  # a hit is answered
                    self.dead.add(q)
                    self.role[q] = WAITER
                    self._answer(q, ERROR, t)
        self.kills.append((t, n))

    def _finish_batch(self, t: int, b: int) -> None:
        batch = self.batches[b]
        stop = int(np.searchsorted(batch.ends, t, "right"))
        fills = np.searchsorted(batch.fill_ends, t, "right") > \
            np.searchsorted(batch.fill_ends, t, "left")
        if fills:
            self._fill(t)
        batch.cursor = stop
        while self.first_live_batch < len(self.batches) and \
                self.batches[self.first_live_batch].cursor == \
                len(self.batches[self.first_live_batch].ends):
            self.first_live_batch += 1  # batches whose rebuilds have all finished
        if stop < len(batch.ends):
            heapq.heappush(self.heap, (int(batch.ends[stop]), FINISH, int(batch.seqs[stop]),
                                       _K_BATCH, b))

    def _write(self, t: int) -> None:
        """``DEL key`` (and, for leases, the delete invalidates the outstanding token)."""
        if self.filled:
            self._empty(t)
        if self.m.lease:
            self.lease_holder = -1

    def _wakes(self, t: int) -> None:
        while self.heap and self.heap[0][0] == t and self.heap[0][1] == WAKE:
            _, _, _, _, r = heapq.heappop(self.heap)
            self._wake(r, t, WAKE)
        if self.m.lease and not self.filled and len(self.waiting) and self._lease_free(t):
            due = self.waiting[self._retry_at(self.waiting, t) == t]
            if len(due):
                winner = int(due[0])
                self.waiting = self.waiting[self.waiting != winner]
                self._take_lease(winner, t)

    def _attempts(self, t: int) -> None:
        while self.heap and self.heap[0][0] == t and self.heap[0][1] == ATTEMPT:
            _, _, _, _, r = heapq.heappop(self.heap)
            self._attempt(r, t, ATTEMPT)
        m = self.m
        if m.singleflight or not m.lock or m.gap == 0:
            return
        # No single-flight: every request that missed at t - gap tries SET NX now, in id order.
        lo = max(self.attempt_cursor, int(np.searchsorted(self.arr, t - m.gap, "left")))
        hi = int(np.searchsorted(self.arr, t - m.gap, "right"))
        self.attempt_cursor = max(self.attempt_cursor, hi)
        if lo >= hi or self._filled_before(t - m.gap):
            return
        for r in range(lo, hi):
            if r in self.dead:
                continue
            if not self._lock_free(t):
                break  # the rest lose; they are classified afterwards
            self._attempt(r, t, ATTEMPT)

    def _arrivals(self, t: int) -> None:
        m = self.m
        if m.singleflight:
            self._leaders(t)
            return
        lo = self.cursor
        hi = int(np.searchsorted(self.arr, t, "right"))
        if lo >= hi:
            return
        self.cursor = hi
        if self.filled:
            return
        if m.lease:
            if self._lease_free(t):
                self._take_lease(lo, t)
                lo += 1
            self._add_waiters(lo, hi)
        elif m.lock:
            if m.gap == 0 and self._lock_free(t):
                self._attempt(lo, t, ARRIVE)  # the first wins; the rest lose (classified later)
        elif self.kills_nodes:
            for r in range(lo, hi):  # one by one: a crash may kill a node's rebuilds
                self._start(r, t)
        else:
            self._batch(lo, t)

    def _leaders(self, t: int) -> None:
        """Single-flight: the first request on each node with no flight leads one (by id)."""
        while not self.filled:
            top = self._next_candidate()
            if top is None or top[0] != t:
                return
            heapq.heappop(self.candidates)
            _, r, n, p, _ = top
            self.node_min[n] = p + 1
            self.flight_of_node[n] = len(self.f_pos)
            self.f_pos.append(p)
            self.f_end.append(-1)
            self.f_done.append(-1)
            self.f_outcome.append(0)
            self.pos_of[r] = p
            self._contend(r, t)

    # -- the request's program ----------------------------------------------------------------

    def _contend(self, r: int, t: int) -> None:
        """A leader (or, without single-flight, any missing request) acts for its node."""
        m = self.m
        if m.lock:
            if m.gap > 0:
                heapq.heappush(self.heap, (t + m.gap, ATTEMPT, r, _K_ATTEMPT, r))
            else:
                self._attempt(r, t, ARRIVE)
        else:
            self._cleared(r, t, ARRIVE)

    def _attempt(self, r: int, t: int, phase: int) -> None:
        """``SET lock <r> EX <ex> NX`` at ``t``: win and go on, or lose and sleep."""
        m = self.m
        if self._lock_free(t):
            self.lock_owner, self.lock_gone = r, t + m.ex + 1
            self._cleared(r, t, phase)
            return
        self.role[r] = WAITER
        if not m.singleflight:
            return  # the wake-up GET changes nothing shared: classified afterwards
        if m.wait == 0:
            self._wake(r, t, phase)
        else:
            heapq.heappush(self.heap, (t + m.wait, WAKE, r, _K_WAKE, r))

    def _cleared(self, r: int, t: int, phase: int) -> None:
        """``r`` may rebuild: re-check the cache first if configured."""
        if self.m.recheck and self.filled:
            if self.m.lock:
                self._release(r, t)
            self.role[r] = RECHECKED
            self._answer(r, VALUE, t)
            self._resolve(r, t, phase, VALUE)
            return
        self._start(r, t)

    def _take_lease(self, r: int, t: int) -> None:
        self.lease_holder, self.lease_gone = r, t + self.m.ex
        self._start(r, t)

    def _start(self, r: int, t: int) -> None:
        m = self.m
        seq = self.rebuilds.count
        end = t + int(self.durations.take(1)[0])
        guard = self.lock_gone if m.lock else self.lease_gone if m.lease else NEVER
        self.rebuilds.add(r, t, end, seq < m.crash, guard)
        if self.kills_nodes:
            self.rebuilding_on.setdefault(int(self.node[r]), {})[r] = seq
        self.role[r] = REBUILDER
        heapq.heappush(self.heap, (end, FINISH, seq, _K_FINISH, r))

    def _wake(self, r: int, t: int, phase: int) -> None:
        """A leader that lost the lock GETs again: the value, or the stale fallback."""
        outcome = VALUE if self.filled else FALLBACK
        self._answer(r, outcome, t)
        self._resolve(r, t, phase, outcome)

    def _batch(self, lo: int, t: int) -> None:
        """Policy ``none``: every miss from ``lo`` on rebuilds, until the first refill."""
        m = self.m
        refill = NEVER
        for batch in self.batches[self.first_live_batch:]:
            i = int(np.searchsorted(batch.fill_ends, t, "right"))  # those at t are done
            if i < len(batch.fill_ends):
                refill = min(refill, int(batch.fill_ends[i]))
        size = min(_FIRST_BATCH, self.n - lo)
        seq0 = self.rebuilds.count
        while True:
            spend()  # the sizes double: a huge burst takes several rounds
            starts = self.arr[lo:lo + size]
            ends = starts + self.durations.peek(size)
            crashed = (seq0 + np.arange(size)) < m.crash
            fill_ends = np.where(crashed, NEVER, ends)
            bound = np.minimum.accumulate(np.concatenate([[refill], fill_ends[:-1]]))
            inside = starts < bound  # a prefix: a miss needs the cache still empty at its tick
            count = int(np.argmin(inside)) if not inside.all() else size
            if count < size or lo + size == self.n:
                break
            size = min(2 * size, self.n - lo)
        self.durations.take(count)
        starts, ends, crashed = starts[:count], ends[:count], crashed[:count]
        ids = np.arange(lo, lo + count, dtype=np.int64)
        self.rebuilds.add_many(ids, starts.copy(), ends.copy(), crashed.copy())
        self.role[lo:lo + count] = REBUILDER
        self.outcome[lo:lo + count] = np.where(crashed, ERROR, VALUE)
        self.done[lo:lo + count] = ends
        order = np.argsort(ends, kind="stable")
        batch = _Batch(ends=ends[order], seqs=seq0 + order.astype(np.int64),
                       fill_ends=np.sort(ends[~crashed]))
        self.batches.append(batch)
        heapq.heappush(self.heap, (int(batch.ends[0]), FINISH, int(batch.seqs[0]), _K_BATCH,
                                   len(self.batches) - 1))
        self.cursor = lo + count

    # -- shared state -------------------------------------------------------------------------

    def _lock_free(self, t: int) -> bool:
        return self.lock_owner < 0 or t >= self.lock_gone

    def _lease_free(self, t: int) -> bool:
        return self.lease_holder < 0 or t >= self.lease_gone

    def _release(self, r: int, t: int) -> None:
        """``DEL lock`` (whatever is there) or compare-and-delete (only our own token)."""
        alive = self.lock_owner >= 0 and t < self.lock_gone
        if self.m.release_cad:
            if alive and self.lock_owner == r:
                self.lock_owner = -1
            return
        if alive and self.lock_owner != r:
            self.foreign += 1
        self.lock_owner = -1

    def _fill(self, t: int) -> None:
        """``SET key <value> [EX ttl]`` (Redis: alive while t <= t0 + ttl; memcached: < )."""
        self.filled = True
        ttl = self.m.ttl
        self.cache_gone = NEVER if ttl == 0 else t + ttl + (0 if self.m.lease else 1)

    def _empty(self, t: int) -> None:
        self.filled = False
        self.cache_gone = NEVER
        if self.m.singleflight:
            self._refresh_candidates(t)

    def _record(self, t: int) -> None:
        if self.filled != self.tl_s[-1]:
            self.tl_t.append(t)
            self.tl_s.append(self.filled)

    def _filled_before(self, t: int) -> bool:
        """Whether a GET at tick ``t`` (already recorded) hit."""
        return self.tl_s[bisect.bisect_right(self.tl_t, t) - 1]

    def _answer(self, r: int, outcome: int, t: int) -> None:
        self.outcome[r] = outcome
        self.done[r] = t

    def _resolve(self, r: int, t: int, phase: int, outcome: int) -> None:
        """Leader ``r`` resolves its node's flight; requests arriving after that do not join."""
        if not self.m.singleflight:
            return
        n = int(self.node[r])
        f = int(self.flight_of_node[n])
        self.flight_of_node[n] = -1
        if phase == ARRIVE:
            end = self.pos_of[r] + 1
        else:
            end = int(np.searchsorted(self.flat_key, n * self.big + t, "left"))
        self.f_end[f], self.f_done[f], self.f_outcome[f] = end, t, outcome
        self._push_candidate(n, t)

    def _add_waiters(self, lo: int, hi: int) -> None:
        if hi > lo:
            self.role[lo:hi] = WAITER
            self.waiting = np.concatenate([self.waiting, np.arange(lo, hi, dtype=np.int64)])

    def _resolve_waiters(self, t: int) -> None:
        """The lease holder stored the value at ``t``: waiters that retry before the key is
        deleted or expires again get it."""
        if not len(self.waiting):
            return
        next_write = int(self.writes[self.write_cursor]) if \
            self.write_cursor < len(self.writes) else NEVER
        retry = self._retry_at(self.waiting, t)
        served = retry < min(next_write, self.cache_gone)
        ids = self.waiting[served]
        self.outcome[ids] = VALUE
        self.done[ids] = retry[served]
        self.waiting = self.waiting[~served]

    # -- afterwards: everyone who changed nothing --------------------------------------------

    def _classify(self) -> KeyRun:
        rb_req, rb_start, rb_end, rb_crashed, rb_guard, rejected = self.rebuilds.arrays()
        run = KeyRun(arrival=self.arr, node=self.node, role=self.role, outcome=self.outcome,
                     done=self.done, rb_req=rb_req, rb_start=rb_start, rb_end=rb_end,
                     rb_crashed=rb_crashed, rb_guard_gone=rb_guard, rb_rejected=rejected,
                     writes=self.writes, cache_t=np.array(self.tl_t, np.int64),
                     cache_s=np.array(self.tl_s, np.bool_), foreign_releases=self.foreign)
        m = self.m
        hit = run.filled_at(self.arr)
        unset = self.role == UNSET
        self.role[unset & hit] = HIT
        self.outcome[unset & hit] = VALUE
        self.done[unset & hit] = self.arr[unset & hit]
        rest = unset & ~hit
        if m.singleflight:
            self._classify_followers(rest)
        elif m.lock:
            self._classify_losers(run, rest | ((self.role == WAITER) & (self.outcome == 0)))
        if (self.outcome == 0).any():
            raise AssertionError("fleet engine left a request unanswered")  # pragma: no cover
        return run

    def _classify_followers(self, rest: Flags) -> None:
        order = np.argsort(np.array(self.f_pos, np.int64), kind="stable")
        starts = np.array(self.f_pos, np.int64)[order]
        ends = np.array(self.f_end, np.int64)[order]
        done = np.array(self.f_done, np.int64)[order]
        outcome = np.array(self.f_outcome, np.int8)[order]
        positions = np.nonzero(rest[self.flat])[0]
        f = np.searchsorted(starts, positions, "right") - 1
        ok = (f >= 0) & (positions < ends[np.maximum(f, 0)])
        if not ok.all():
            raise AssertionError("a missing request belongs to no flight")  # pragma: no cover
        ids = self.flat[positions]
        self.role[ids] = FOLLOWER
        self.outcome[ids] = outcome[f]
        self.done[ids] = done[f]

    def _classify_losers(self, run: KeyRun, losers: Flags) -> None:
        """No single-flight, lock: sleep ``wait`` after the failed SET NX, GET, fall back."""
        m = self.m
        ids = np.nonzero(losers)[0]
        wake = self.arr[ids] + m.gap + m.wait
        self.role[ids] = WAITER
        self.outcome[ids] = np.where(run.filled_at(wake), VALUE, FALLBACK)
        self.done[ids] = wake
        for t, n in sorted(self.kills, reverse=True):  # the earliest crash wins
            # arrived before the crash, answered at or after it (WAKE follows FINISH)
            killed = (self.node[ids] == n) & (self.arr[ids] < t) & (wake >= t)
            self.outcome[ids[killed]] = ERROR
            self.done[ids[killed]] = t


def run_key(m: Mechanisms, w: KeyWorkload) -> KeyRun:
    """Simulate one key: every request of ``w`` under mechanisms ``m``."""
    if not len(w.arrival):
        empty = np.empty(0, np.int64)
        return KeyRun(w.arrival, w.node, np.empty(0, np.int8), np.empty(0, np.int8), empty,
                      empty, empty, empty, np.empty(0, np.bool_), empty,
                      np.empty(0, np.bool_), w.writes, np.array([-NEVER], np.int64),
                      np.array([False]), 0)
    return _Key(m, w).run()
