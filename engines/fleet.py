"""The fleet at the TTL boundary: how many DB queries, for 100,000 requests on 50 nodes?

Exhaustive search cannot hold 100,000 requests; this engine simulates them. It runs the
``stack`` model's program (``models/policies/stack.py``) for every request of a fleet, for one
hot key (or ``keys`` independent hot keys), and counts what matters at the boundary: database
queries, concurrent rebuilds, fallbacks served, who waited and for how long.

The program, per request (the lesson's seven steps):

1. ``GET key``: a hit ends the request with the value.
2. On a miss, with single-flight, look the key up in the node's in-process map: a flight in
   progress -> subscribe and get the leader's outcome when it resolves; none -> lead one.
3. With the lock, ``SET lock:key <token> EX <ex> NX``, ``gap`` ticks after the GET (one round
   trip; 0 by default). Won (or no lock): with ``recheck``, ``GET key`` again and, on a hit,
   release the lock and serve the value; otherwise query the database for a rebuild duration.
4. Rebuild done: ``SET key <value> [EX ttl]``, release the lock (``DEL lock:key``, or the
   compare-and-delete script with ``release=cad``), resolve the node's followers.
5. Lock lost: sleep ``wait`` ticks, ``GET key`` again, serve the stale fallback if it misses
   (followers get the same).
6. ``lease`` (memcached / Facebook leases, no lock, no single-flight): the miss is
   ``get key`` with a lease; a miss gets the token unless one was handed out in the last
   ``ex`` ticks (the lease window), and rebuilds; otherwise (a "hot miss") it sleeps ``wait``
   ticks and tries again, until it gets the value or the token. A token stays good until a
   newer token or a write voids it: a write (``delete key``) deletes the value *and*
   invalidates the outstanding token, so a rebuild that started before the write cannot
   store its stale result (``rejected_sets``). This is the ``lease`` program's semantics.

Policies: ``none`` (every miss rebuilds), ``singleflight``, ``lock`` (Redis lock, no
single-flight), ``stack`` (single-flight + lock) and ``lease``, simulated by the fast engine;
and every other registered program (``memcached-meta``, ``swr``, ...), which runs step by step
through its own program (:mod:`engines.fleet_program`, up to 1,000 requests per key; the
summary's ``followers`` are then counted among the ``waiters``, and ``unanswered`` counts
requests the program never answers).

Time. One tick is one millisecond, the resolution at which Redis keeps expiry deadlines
(``EX 30`` is stored as a millisecond deadline 30,000 ms away), and every duration here is an
integer number of ticks. A model tick of ``stack`` is a simulation tick: ``ex``, ``rebuild`` and
``wait`` mean the same numbers in both. Expiry follows the real servers: a Redis key set at
``t0`` with ``EX ex`` is alive while ``t <= t0 + ex`` (the lock, and the cached value under
every policy but ``lease``); a memcached item (the lease and, under ``lease``, the value) is gone
once ``t >= t0 + ex``.

Within a tick, things happen in phases, and within a phase in a fixed order:

0. the cached value's TTL runs out (if ``t`` is past its expiry);
1. rebuilds due at ``t`` finish, in the order they started (write, release, resolve; a crashed
   one does nothing, and its followers get an error);
2. writes at ``t`` delete the key;
3. sleepers wake and GET again (and lease waiters retry), by request id;
4. delayed ``SET NX`` attempts (``gap > 0``), by request id;
5. requests arriving at ``t``, by request id, each running its program as far as it can
   without waiting (GET, look-up, ``SET NX`` when ``gap`` is 0, re-check, start of rebuild).

Each of these choices is one interleaving the ``stack`` model allows (finishing is urgent there
too; a GET, the in-process look-up and ``SET NX`` may follow each other at once), so a
simulated run is a run of the model: :mod:`engines.fleet_program` runs the same fleet through
the policy's own program, step by step, and the tests require the two to agree request by
request, replay its runs as model traces, and check the simulated worst case against the
explicit engine's maximum of ``rebuild_starts``.

What is abstracted away: Redis and memcached commands take no time (except the ``gap`` round
trip), a sleeper wakes exactly ``wait`` ticks after losing, and a crash (``crash`` = the first N
rebuilds to start crash, at the tick they would finish) means the rebuilder never writes and
never releases, and kills its process: every request of its node in progress gets an error
(with single-flight, the leader's followers; without, the node's other rebuilds, sleepers and
pending ``SET NX`` attempts), as in the models, where a node is one process. Arrivals are
``burst`` (the lesson's assumption: every miss inside the rebuild window, spread evenly over
``window`` ticks, by default the rebuild's median), ``uniform`` (at random over ``window``),
``poisson`` (at ``rate`` per second) or explicit ticks; request k (in arrival order) goes to
node ``k mod nodes``. Rebuild durations are fixed, lognormal (median and p99) or drawn from an
empirical list, rounded up to whole ticks. Everything random comes from ``seed``.

How it is fast (:mod:`engines.fleet_core`): the loop visits only the ticks where shared state
can change and touches only the requests that change it (leaders, lock winners, lease holders,
rebuilds); every other request is classified afterwards with numpy. No Python object is made
per request. :mod:`engines.fleet_reference` is the same program as one SimPy process per
request; the tests require the two to agree request by request.

Examples
--------
>>> result = simulate(FleetConfig(policy="singleflight", nodes=50, requests=100_000))
>>> result.summary["db_queries"], result.summary["max_concurrent_rebuilds"]
(50, 50)
>>> simulate(FleetConfig(policy="stack", nodes=50, requests=100_000)).summary["db_queries"]
1
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from herdproof.engines.fleet_core import (
    ERROR,
    FALLBACK,
    FOLLOWER,
    HIT,
    RECHECKED,
    WAITER,
    Durations,
    Ints,
    KeyRun,
    KeyWorkload,
    Mechanisms,
    run_key,
    spend,
)
from herdproof.models.errors import HerdproofError
from herdproof.models.params import clipped

TICK_MS = 1
_DURATIONS = ("rebuild", "rebuild_p99", "window", "ex", "wait", "gap", "ttl")
Z99 = 2.3263478740408408  # the standard normal's 99th percentile

POLICIES: dict[str, tuple[bool, bool, bool, str]] = {
    # name: (single-flight, lock, lease, summary)
    "none": (False, False, False, "no mitigation: every miss queries the database"),
    "singleflight": (True, False, False, "in-process single-flight per node"),
    "lock": (False, True, False, "Redis SET lock <token> EX <ex> NX, no single-flight"),
    "stack": (True, True, False, "single-flight + Redis lock + stale fallback"),
    "lease": (False, False, True, "memcached leases: one token per miss, the rest retry"),
}
ARRIVALS = ("burst", "uniform", "poisson", "explicit")
#: The request programs whose steps the fast engine simulates (its policies are these programs
#: and presets of them); every other program runs through :mod:`engines.fleet_program`.
SIMULATED_PROGRAMS = ("stack", "lease")


def program_of(policy: str, release: str = "cad") -> str:
    """The registered program or preset a fast-engine policy runs (``lock`` is the preset
    with the configured release), or the name itself for any other program."""
    return f"lock-{release}" if policy == "lock" else policy


def unsupported_steps(name: str) -> list[str]:
    """The steps of the program ``name`` the fast engine does not simulate (named from the
    program itself); empty for the fast engine's own policies."""
    from herdproof.models.registry import build

    if name in POLICIES:
        return []

    def steps(policy: str) -> list[str]:
        commands = getattr(build(policy), "commands", None)
        return [step for step, _ in (commands() if commands is not None else ())]

    simulated = {step for program in SIMULATED_PROGRAMS for step in steps(program)}
    return [step for step in steps(name) if step not in simulated]


def unsupported_policy(name: str) -> str:
    """Why the fleet cannot simulate ``name`` at all: it names no program or preset."""
    from herdproof.models.registry import POLICIES as PROGRAMS
    from herdproof.models.registry import PRESETS

    programs = sorted(set(PROGRAMS) | set(PRESETS) - set(POLICIES))
    return (f"unknown fleet policy `{clipped(name)}`; choose one of: {', '.join(POLICIES)} "
            f"(the fast engine), or any program: {', '.join(programs)} (run step by step, up "
            "to 1,000 requests per key)")


def is_program_run(cfg: FleetConfig) -> bool:
    """``cfg`` runs step by step through its program (:mod:`engines.fleet_program`): its
    policy is not one of the fast engine's."""
    return cfg.policy not in POLICIES

# Sizes checked before anything is allocated (FleetConfig.validate, ex_risk). A run keeps
# about 140 bytes per request (10,000,000 requests: about 1.4 GB and 5 s); a key costs a few
# tenths of a millisecond of Python however few requests it has; nodes cost a few numpy
# entries each. Every duration, and the span of the arrivals, stays within MAX_TICKS, which
# keeps every tick and every per-node search key (node x span) far inside 64-bit integers.
MAX_REQUESTS = 10_000_000
MAX_NODES = 1_000_000
MAX_KEYS = 100_000
MAX_TICKS = 10_000_000_000  # ms: 10,000,000 s, about 116 days
MAX_BOUNDARIES = 1_000_000


class FleetError(HerdproofError):
    """A fleet configuration that cannot be simulated; the message names the fix."""


def parse_duration(text: str, what: str = "duration") -> int:
    """Milliseconds (ticks) from ``100ms``, ``1.5s``, ``30s`` or a bare number of ms.

    >>> parse_duration("30s"), parse_duration("50ms"), parse_duration("250")
    (30000, 50, 250)
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s)?\s*", text)
    if not match:
        raise FleetError(f"{what} `{clipped(text)}` is not a duration; write e.g. 100ms, 1.5s "
                         "or 250")
    value = float(match.group(1)) * (1000 if match.group(2) == "s" else 1)
    if not value <= MAX_TICKS:
        raise FleetError(f"{what} `{clipped(text)}` is longer than {MAX_TICKS // 1000:,} s, the "
                         "longest duration the fleet simulates")
    if abs(value - round(value)) > 1e-6:
        raise FleetError(f"{what} `{text}` is not a whole number of milliseconds (one tick is "
                         "1 ms)")
    return round(value)


@dataclass(frozen=True)
class FleetConfig:
    """One simulated boundary (or run of boundaries); durations in ms (= ticks).

    ``rebuild`` is the fixed rebuild time or, with
    ``rebuild_p99``, the median of a lognormal; ``rebuild_samples`` (if given) is an empirical
    distribution instead. ``window`` spreads ``burst``/``uniform`` arrivals (default: the
    rebuild median); ``rate`` is per second per key for ``poisson``. ``requests`` is the total,
    split evenly over the ``keys``. ``write_rate`` (per second per key)
    or explicit ``writes`` delete the key; ``ttl`` expires the cached value (0: never).
    """

    policy: str = "stack"
    nodes: int = 50
    requests: int = 100_000
    arrivals: str = "burst"
    window: int | None = None
    rate: float = 1000.0
    rebuild: int = 100
    rebuild_p99: int | None = None
    rebuild_samples: tuple[int, ...] = ()
    ex: int = 30_000
    wait: int = 50
    gap: int = 0
    release: str = "cad"
    recheck: bool = False
    crash: int = 0
    ttl: int = 0
    write_rate: float = 0.0
    writes: tuple[int, ...] = ()
    keys: int = 1
    seed: int = 0
    arrival_ticks: tuple[int, ...] = field(default=(), repr=False)
    arrival_nodes: tuple[int, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`FleetError` naming the first bad value and how to fix it."""
        if self.policy not in POLICIES:
            self._check_program()
        if self.arrivals not in ARRIVALS:
            raise FleetError(f"unknown arrival pattern `{clipped(str(self.arrivals))}`; choose "
                             f"one of: {', '.join(ARRIVALS[:3])}")
        for name, low in (("nodes", 1), ("requests", 1), ("keys", 1), ("rebuild", 1),
                          ("ex", 1), ("wait", 0), ("gap", 0), ("crash", 0), ("ttl", 0),
                          ("seed", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise FleetError(f"{name} must be an integer >= {low}, got {clipped(repr(value))}")
        for name, high, why in (
                ("requests", MAX_REQUESTS, " per run (about 140 bytes of memory each)"),
                ("nodes", MAX_NODES, ""), ("keys", MAX_KEYS, " (each is simulated in turn)"),
                *((d, MAX_TICKS, " ms (10,000,000 s)") for d in _DURATIONS)):
            value = getattr(self, name)
            if value is not None and value > high:
                raise FleetError(f"{name} must be at most {high:,}{why}, got {value:,}")
        if self.window is not None and self.window < 1:
            raise FleetError(f"window must be at least 1 ms, got {self.window}")
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise FleetError(f"rate must be a positive number of requests per second, got "
                             f"{self.rate}")
        if not (math.isfinite(self.write_rate) and self.write_rate >= 0):
            raise FleetError(f"write rate must be >= 0 per second, got {self.write_rate}")
        if self.release not in ("del", "cad"):
            raise FleetError(f"release must be del or cad, not {clipped(repr(self.release))}")
        if self.rebuild_p99 is not None and self.rebuild_p99 <= self.rebuild:
            raise FleetError(f"rebuild p99 ({self.rebuild_p99} ms) must exceed the median "
                             f"({self.rebuild} ms)")
        if any(v < 1 for v in self.rebuild_samples):
            raise FleetError("rebuild samples must be positive durations in ms")
        if len(self.rebuild_samples) > MAX_REQUESTS or len(self.writes) > MAX_REQUESTS:
            raise FleetError(f"at most {MAX_REQUESTS:,} rebuild samples and explicit writes")
        if any(v > MAX_TICKS for v in (*self.rebuild_samples, *self.writes,
                                       *self.arrival_ticks)):
            raise FleetError(f"rebuild samples, write and arrival ticks must be at most "
                             f"{MAX_TICKS:,} ms (10,000,000 s)")
        if self.policy == "lease" and self.wait < 1:
            raise FleetError("a lease waiter must sleep at least 1 ms between retries "
                             "(set wait >= 1ms)")
        if any(w < 0 for w in self.writes) or any(a < 0 for a in self.arrival_ticks):
            raise FleetError("write and arrival ticks must be >= 0")
        if self.arrivals == "explicit":
            if self.keys != 1 or len(self.arrival_ticks) != self.requests or \
                    len(self.arrival_nodes) != self.requests:
                raise FleetError("explicit arrivals need one tick and one node per request, "
                                 "and a single key")
            if any(not 0 <= n < self.nodes for n in self.arrival_nodes):
                raise FleetError(f"arrival nodes must be in 0..{self.nodes - 1}")
        if self.requests < self.keys:
            raise FleetError(f"{self.requests} requests cannot cover {self.keys} keys")
        self._check_resources()

    def _check_program(self) -> None:
        """A policy outside the fast engine's must be a registered program (or preset) the
        step-by-step run can express."""
        from herdproof.engines.fleet_program import MAX_PROGRAM_REQUESTS
        from herdproof.models.registry import POLICIES as PROGRAMS
        from herdproof.models.registry import PRESETS

        if not isinstance(self.policy, str) or self.policy not in set(PROGRAMS) | set(PRESETS):
            raise FleetError(unsupported_policy(str(self.policy)))
        missing = unsupported_steps(self.policy)
        fix = (f"the fast engine does not simulate the `{self.policy}` program (its steps "
               f"{', '.join(missing) or '(none listed)'} are not the fast engine's), so it runs "
               "step by step")
        if -(-self.requests // self.keys) > MAX_PROGRAM_REQUESTS:
            raise FleetError(f"{fix}, at most {MAX_PROGRAM_REQUESTS:,} requests per key; lower "
                             "--requests or raise --keys")
        if self.ttl:
            raise FleetError(f"{fix}, and the programs model one expiry: ttl must be 0")

    def _check_resources(self) -> None:
        """Refuse, before allocating, a run whose arrivals span more than :data:`MAX_TICKS` or
        whose writes would number more than :data:`MAX_REQUESTS`."""
        per_key = -(-self.requests // self.keys)
        if self.arrivals == "poisson":
            span = per_key * 1000.0 / self.rate
            if span > MAX_TICKS:
                raise FleetError(
                    f"{per_key:,} poisson arrivals per key at {self.rate:g}/s span about "
                    f"{_about(span / 1000)} s, more than the {MAX_TICKS // 1000:,} s the fleet "
                    "simulates; raise --rate or lower --requests")
        elif self.arrivals == "explicit":
            span = float(max(self.arrival_ticks, default=0))
        else:
            span = float(self.spread)
        writes = self.keys * self.write_rate * (span + 1) / 1000.0
        if writes > MAX_REQUESTS:
            raise FleetError(
                f"writes at {self.write_rate:g}/s per key over about {_about(span)} ms and "
                f"{self.keys:,} key(s) make about {_about(writes)} writes, more than the "
                f"{MAX_REQUESTS:,} the fleet simulates; lower --write-rate")

    # -- derived ------------------------------------------------------------------------------

    @property
    def mechanisms(self) -> Mechanisms:
        if self.policy not in POLICIES:
            raise FleetError(f"`{self.policy}` runs step by step through its program; it has "
                             "no fast-engine mechanisms")
        singleflight, lock, lease, _ = POLICIES[self.policy]
        return Mechanisms(singleflight=singleflight, lock=lock, lease=lease,
                          release_cad=self.release == "cad", recheck=self.recheck, ex=self.ex,
                          wait=self.wait, gap=self.gap, ttl=self.ttl, crash=self.crash)

    @property
    def spread(self) -> int:
        """The burst/uniform window: by default the rebuild's median (the lesson's case)."""
        return self.window if self.window is not None else self.rebuild_quantile(0.5)

    def rebuild_mean(self) -> float:
        """The mean rebuild duration in ms (of the whole-tick durations, for fixed/empirical)."""
        if self.rebuild_samples:
            return float(np.mean(self.rebuild_samples))
        if self.rebuild_p99 is None:
            return float(self.rebuild)
        sigma = self._sigma()
        return self.rebuild * math.exp(sigma * sigma / 2)

    def rebuild_quantile(self, q: float) -> int:
        """The ``q`` quantile of the rebuild duration, in whole ms."""
        if self.rebuild_samples:
            return int(np.quantile(np.array(self.rebuild_samples), q, method="inverted_cdf"))
        if self.rebuild_p99 is None:
            return self.rebuild
        z = _normal_quantile(q)
        return max(1, math.ceil(self.rebuild * math.exp(self._sigma() * z)))

    def rebuild_tail(self, ex: int) -> float:
        """P(rebuild > ex): the chance a rebuild outlives a lock taken with ``EX ex`` ms."""
        if self.rebuild_samples:
            return float(np.mean(np.array(self.rebuild_samples) > ex))
        if self.rebuild_p99 is None:
            return 1.0 if self.rebuild > ex else 0.0
        z = (math.log(ex) - math.log(self.rebuild)) / self._sigma()
        return 0.5 * math.erfc(z / math.sqrt(2))

    def _sigma(self) -> float:
        assert self.rebuild_p99 is not None
        return (math.log(self.rebuild_p99) - math.log(self.rebuild)) / Z99

    def describe_rebuild(self) -> str:
        if self.rebuild_samples:
            return f"rebuild from {len(self.rebuild_samples)} samples"
        if self.rebuild_p99 is None:
            return f"rebuild {_ms(self.rebuild)}"
        return (f"rebuild lognormal p50 {_ms(self.rebuild)} p99 {_ms(self.rebuild_p99)} "
                f"(mean {_ms(round(self.rebuild_mean()))})")

    def describe(self) -> str:
        """One line: the workload, for the CLI's tables."""
        keys = f" over {self.keys} keys" if self.keys > 1 else ""
        if self.arrivals == "poisson":
            pattern = f"poisson {self.rate:g}/s" + (" per key" if self.keys > 1 else "")
        elif self.arrivals == "explicit":
            pattern = "explicit arrivals"
        else:
            pattern = f"{self.arrivals} over {_ms(self.spread)}"
        parts = [f"{self.requests:,} requests{keys} on {self.nodes} nodes, {pattern}",
                 self.describe_rebuild(), f"ex {_ms(self.ex)}", f"wait {_ms(self.wait)}"]
        if self.gap:
            parts.append(f"gap {_ms(self.gap)}")
        if self.recheck:
            parts.append("recheck")
        if self.release == "del":
            parts.append("release del")
        if self.crash:
            parts.append(f"{self.crash} crash{'es' if self.crash > 1 else ''}")
        if self.ttl:
            parts.append(f"ttl {_ms(self.ttl)}")
        if self.write_rate or self.writes:
            parts.append(f"writes {self.write_rate:g}/s" if self.write_rate else
                         f"{len(self.writes)} writes")
        return "; ".join(parts)

    def params(self) -> dict[str, Any]:
        """The configuration as JSON-friendly data (durations in ms)."""
        data = asdict(self)
        data.pop("arrival_ticks")
        data.pop("arrival_nodes")
        data["window"] = self.spread
        data["rebuild_samples"] = len(self.rebuild_samples)
        data["writes"] = len(self.writes)
        return data


def _ms(value: int) -> str:
    if value >= 1000 and value % 100 == 0:
        return f"{value / 1000:g} s"
    return f"{value} ms"


def _about(x: float) -> str:
    """A size for a message: ``1,234,567``, or ``2.2e+19`` when it is absurdly large."""
    return f"{x:,.0f}" if x < 1e15 else f"{x:.2g}"


def _normal_quantile(q: float) -> float:
    """The standard normal quantile (bisection on erf: no scipy needed)."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(-mid / math.sqrt(2)) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# -- workloads ----------------------------------------------------------------------------------

def _draw_durations(cfg: FleetConfig, rng: np.random.Generator, n: int) -> Ints:
    if cfg.rebuild_samples:
        return rng.choice(np.array(cfg.rebuild_samples, np.int64), size=n)
    if cfg.rebuild_p99 is None:
        return np.full(n, cfg.rebuild, np.int64)
    sigma = (math.log(cfg.rebuild_p99) - math.log(cfg.rebuild)) / Z99
    values = np.ceil(cfg.rebuild * np.exp(sigma * rng.standard_normal(n)))
    ticks: Ints = np.clip(values, 1, MAX_TICKS).astype(np.int64)  # the far tail, cut
    return ticks


def _durations(cfg: FleetConfig, seed: np.random.SeedSequence) -> Durations:
    return Durations(partial(_draw_durations, cfg, np.random.default_rng(seed)))


def _arrivals(cfg: FleetConfig, n: int, rng: np.random.Generator) -> tuple[Ints, Ints]:
    if cfg.arrivals == "explicit":
        ticks = np.array(cfg.arrival_ticks, np.int64)
        order = np.argsort(ticks, kind="stable")
        return ticks[order], np.array(cfg.arrival_nodes, np.int64)[order]
    if cfg.arrivals == "burst":
        ticks = (np.arange(n, dtype=np.int64) * cfg.spread) // n
    elif cfg.arrivals == "uniform":
        ticks = np.sort(rng.integers(0, cfg.spread, n, dtype=np.int64))
    else:
        gaps = rng.exponential(1000.0 / cfg.rate, n)
        ticks = np.floor(np.cumsum(gaps)).astype(np.int64)
    return ticks, np.arange(n, dtype=np.int64) % cfg.nodes


def _writes(cfg: FleetConfig, arrival: Ints, rng: np.random.Generator) -> Ints:
    if cfg.writes:
        return np.sort(np.array(cfg.writes, np.int64))
    if cfg.write_rate <= 0 or not len(arrival):
        return np.empty(0, np.int64)
    span = int(arrival[-1]) + 1
    count = rng.poisson(cfg.write_rate * span / 1000.0)
    return np.sort(rng.integers(0, span, count, dtype=np.int64))


def workloads(cfg: FleetConfig) -> list[KeyWorkload]:
    """Each key's arrivals, nodes, writes and rebuild durations (deterministic in ``seed``)."""
    result = []
    children = np.random.SeedSequence(cfg.seed).spawn(cfg.keys)
    for k, child in enumerate(children):
        spend()  # a time limit (fleet_core.deadline) holds here too: keys can be many
        n = cfg.requests // cfg.keys + (1 if k < cfg.requests % cfg.keys else 0)
        arrival_seed, write_seed, duration_seed = child.spawn(3)
        arrival, node = _arrivals(cfg, n, np.random.default_rng(arrival_seed))
        writes = _writes(cfg, arrival, np.random.default_rng(write_seed))
        result.append(KeyWorkload(arrival=arrival, node=node, nodes=cfg.nodes, writes=writes,
                                  durations=partial(_durations, cfg, duration_seed)))
    return result


# -- running and summarising ---------------------------------------------------------------------

@dataclass(frozen=True)
class FleetResult:
    """A simulation's configuration, per-key runs (arrays) and summary (the JSON keys)."""

    config: FleetConfig
    runs: tuple[KeyRun, ...]
    summary: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.config.policy, "params": self.config.params(), **self.summary}


def simulate(cfg: FleetConfig, *, reference: bool = False, program: bool = False,
             ) -> FleetResult:
    """Simulate ``cfg``; with ``reference`` use the per-request SimPy model (slow; needs simpy);
    with ``program`` (or for a policy the fast engine does not simulate) run every request
    through its policy's program (:mod:`engines.fleet_program`; needs simpy).

    Examples
    --------
    >>> lock = simulate(FleetConfig(policy="lock", nodes=10, requests=20_000)).summary
    >>> lock["db_queries"], lock["waiters"], lock["fallbacks"], lock["waiter_latency_p50"]
    (1, 19999, 9999, 50)
    """
    started = time.perf_counter()
    if program or is_program_run(cfg):
        runs = tuple(program_run(cfg, w)[0] for w in workloads(cfg))
        summary = summarise(runs)
        summary["seconds"] = round(time.perf_counter() - started, 4)
        return FleetResult(cfg, runs, summary)
    if reference:
        from herdproof.engines.fleet_reference import run_key_reference

        runner: Callable[[Mechanisms, KeyWorkload], KeyRun] = run_key_reference
    else:
        runner = run_key
    mechanisms = cfg.mechanisms
    runs = tuple(runner(mechanisms, w) for w in workloads(cfg))
    summary = summarise(runs)
    summary["seconds"] = round(time.perf_counter() - started, 4)
    return FleetResult(cfg, runs, summary)


def program_overrides(cfg: FleetConfig, program: str, workload: KeyWorkload,
                      ) -> dict[str, object]:
    """The program's parameters for a fleet configuration: each fleet setting the program has
    a parameter for (``ex``, the life of what guards the rebuild, is also a lease's
    ``lease_window``, a memcached stub's ``stub_ttl``, a renewed lock's ``lease`` and a lock's
    ``ttl``; ``wait`` is also a poller's ``retry``; ``rebuild`` is whatever parameter times the
    program's work), the key's writes as
    ``writers``, ``crash`` as ``crashes``; every other parameter keeps the program's (or the
    preset's) value."""
    from herdproof.engines.fleet_program import work_duration
    from herdproof.models.registry import POLICIES as PROGRAMS
    from herdproof.models.registry import resolve

    has = {p.name for p in PROGRAMS[resolve(program, {})[0]].params}
    given: dict[str, object] = {"ex": cfg.ex, "lease_window": cfg.ex, "stub_ttl": cfg.ex,
                                "lease": cfg.ex, "ttl": cfg.ex, "wait": cfg.wait,
                                "retry": cfg.wait, work_duration(program): cfg.rebuild,
                                "recheck": cfg.recheck,
                                "writers": len(workload.writes), "crashes": cfg.crash}
    if cfg.policy in POLICIES:
        given["release"] = cfg.release
    return {name: value for name, value in given.items() if name in has}


def program_run(cfg: FleetConfig, workload: KeyWorkload) -> tuple[KeyRun, Any]:
    """One key of ``cfg`` run through its program: its :class:`KeyRun` and the whole
    :class:`~engines.fleet_program.ProgramRun` (with the trace)."""
    from herdproof.engines.fleet_program import ProgramRunError, run_program
    from herdproof.models.errors import HerdproofError

    program = program_of(cfg.policy, cfg.release)
    try:
        run = run_program(program, program_overrides(cfg, program, workload), workload,
                          crash=cfg.crash, gap=cfg.gap)
    except ModuleNotFoundError as e:  # run_program's first line imports it
        if e.name != "simpy":
            raise
        # the `programs` extra (herdproof/extras.py says the same)
        raise FleetError(f"`herdproof fleet --policy {cfg.policy}` needs simpy, which is not "
                         "installed: pip install 'herdproof[programs]'") from None
    except ProgramRunError as e:
        raise FleetError(str(e)) from None
    except HerdproofError as e:
        raise FleetError(f"the `{program}` program cannot run this fleet: {e}") from None
    return run.key, run


def summarise(runs: Sequence[KeyRun]) -> dict[str, Any]:
    """The numbers a person asks about a run (see the README's table of JSON keys)."""
    role = np.concatenate([r.role for r in runs])
    outcome = np.concatenate([r.outcome for r in runs])
    answered = outcome != 0  # a program run may leave a request unanswered (it never returns)
    latency = np.concatenate([r.done - r.arrival for r in runs])[answered]
    starts = np.concatenate([r.rb_start for r in runs])
    waiting = latency[role[answered] == WAITER]
    per_key = [_rebuild_stats(r) for r in runs]
    p50, p99, top = _quantiles(latency, (0.5, 0.99, 1.0))
    w50, w99 = _quantiles(waiting, (0.5, 0.99))
    last = max([int(r.done.max()) for r in runs if len(r.done)] + [0])
    return {
        "requests": len(outcome),
        "unanswered": int(np.count_nonzero(~answered)),
        "db_queries": len(starts) + sum(r.background_queries for r in runs),
        "max_concurrent_rebuilds": per_key[0]["most"] if len(runs) == 1 else
        _max_overlap(starts, np.concatenate([r.rb_end for r in runs]))[0],
        "fallbacks": int(np.count_nonzero(outcome == FALLBACK)),
        "waiters": int(np.count_nonzero(role == WAITER)),
        "latency_p50": p50,
        "latency_p99": p99,
        "latency_max": top,
        "hits": int(np.count_nonzero(role == HIT)),
        "followers": int(np.count_nonzero(role == FOLLOWER)),
        "rechecked": int(np.count_nonzero(role == RECHECKED)),
        "errors": int(np.count_nonzero(outcome == ERROR)),
        "waiter_latency_p50": w50,
        "waiter_latency_p99": w99,
        "duplicate_rebuilds": sum(s["duplicates"] for s in per_key),
        "outlived_lock": sum(s["outlived"] for s in per_key),
        "overtaken_rebuilds": sum(s["overtaken"] for s in per_key),
        "foreign_releases": sum(r.foreign_releases for r in runs),
        "stale_sets": sum(s["stale"] for s in per_key),
        "rejected_sets": int(sum(int(r.rb_rejected.sum()) for r in runs)),
        "boundaries": sum(s["boundaries"] for s in per_key),
        "boundaries_with_duplicates": sum(s["dup_boundaries"] for s in per_key),
        "peak_db_per_s": _peak_per_window(starts, 1000),
        "first_rebuilds_ms": [int(x) for x in np.sort(starts)[:20]],
        "simulated_ms": last,
    }


def _quantiles(values: Ints, qs: Iterable[float]) -> list[int]:
    """Nearest-rank quantiles of non-negative integers (0 for an empty set)."""
    qs = list(qs)
    if not len(values):
        return [0 for _ in qs]
    counts = np.cumsum(np.bincount(values)) if values.max() < 50_000_000 else None
    ordered = None if counts is not None else np.sort(values)
    out = []
    for q in qs:
        rank = max(1, math.ceil(q * len(values)))
        if counts is not None:
            out.append(int(np.searchsorted(counts, rank, "left")))
        else:
            assert ordered is not None
            out.append(int(ordered[rank - 1]))
    return out


def _max_overlap(starts: Ints, ends: Ints) -> tuple[int, int]:
    """The most rebuilds running at once, and how many started while another was running.

    A rebuild runs over ``[start, end)``: one finishing at ``t`` is done before any other
    starts at ``t`` (finishes come first in a tick).
    """
    if not len(starts):
        return 0, 0
    starts, ends = np.sort(starts), np.sort(ends)
    # just after the i-th start: i + 1 started, minus those finished by then (at or before it)
    level = np.arange(1, len(starts) + 1) - np.searchsorted(ends, starts, "right")
    return int(level.max()), int(np.count_nonzero(level >= 2))


def _rebuild_stats(run: KeyRun) -> dict[str, int]:
    starts, ends = run.rb_start, run.rb_end
    written = ~run.rb_crashed & ~run.rb_rejected
    outlived_mask = written & (ends >= run.rb_guard_gone)  # guard is NEVER without a lock
    outlived = int(np.count_nonzero(outlived_mask))
    overtaken = stale = 0
    if outlived:
        # overtaken: another rebuild started after this one's lock expired, while it still ran
        ordered = np.sort(starts)
        later = np.searchsorted(ordered, ends, "left") - \
            np.searchsorted(ordered, run.rb_guard_gone, "left")
        overtaken = int(np.count_nonzero(outlived_mask & (later >= 1)))
    if len(run.writes):
        # a write landing strictly inside a rebuild: the value stored was read before it
        inside = np.searchsorted(run.writes, ends, "left") > \
            np.searchsorted(run.writes, starts, "right")
        stale = int(np.count_nonzero(written & inside))
    # boundaries: periods in which the key was missing and at least one rebuild started
    empty_from = run.cache_t[~run.cache_s]
    period = np.searchsorted(empty_from, starts, "right") - 1
    per_period = np.bincount(period, minlength=len(empty_from)) if len(starts) else \
        np.zeros(0, np.int64)
    most, duplicates = _max_overlap(starts, ends)
    return {"most": most, "duplicates": duplicates, "outlived": outlived,
            "overtaken": overtaken, "stale": stale,
            "boundaries": int(np.count_nonzero(per_period >= 1)),
            "dup_boundaries": int(np.count_nonzero(per_period >= 2))}


def _peak_per_window(starts: Ints, window: int) -> int:
    """The most rebuild starts in any ``window`` consecutive ticks."""
    if not len(starts):
        return 0
    ordered = np.sort(starts)
    inside = np.searchsorted(ordered, ordered + window, "left") - np.arange(len(ordered))
    return int(inside.max())


# -- the lesson's questions as computations ------------------------------------------------------

@dataclass(frozen=True)
class RiskRow:
    """One EX value of the sweep: how often a rebuild outlived its lock, and how often, because
    of that, a duplicate rebuild started while it still ran."""

    label: str
    ex: int
    boundaries: int
    rebuilds: int
    outlived: float
    duplicate: float
    tail: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def named_ex_points(cfg: FleetConfig) -> list[tuple[str, int]]:
    """The lesson's three candidates for EX: the average rebuild, its p99, 3x the average."""
    mean = cfg.rebuild_mean()
    return [("average", max(1, round(mean))), ("p99", cfg.rebuild_quantile(0.99)),
            ("3x average", max(1, round(3 * mean)))]


def ex_grid(cfg: FleetConfig) -> list[tuple[str, int]]:
    """The named points plus a grid from half the median to 10x the median."""
    points = dict((ex, label) for label, ex in named_ex_points(cfg))
    for factor in (0.5, 0.75, 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        points.setdefault(max(1, round(factor * cfg.rebuild_quantile(0.5))), "")
    return sorted(((label, ex) for ex, label in points.items()), key=lambda p: p[1])


def ex_risk(cfg: FleetConfig, points: Sequence[tuple[str, int]], boundaries: int = 5000,
            ) -> list[RiskRow]:
    """For each EX, simulate about ``boundaries`` boundaries under steady traffic and measure
    the risk that a rebuild outlives its lock.

    The workload: Poisson arrivals at ``cfg.rate`` per second (traffic never stops, so a lock
    that expires early is found free), the refilled value expiring 1 ms after it is written
    (``ttl`` 1 unless set), so the next request starts a fresh boundary with a freshly drawn
    rebuild time. ``outlived`` is the fraction of (written) rebuilds that finished after their
    lock had expired; ``duplicate`` the fraction where, in addition, another request took the
    freed lock and started a duplicate rebuild while it still ran; ``tail`` is the
    distribution's own P(rebuild > EX), which ``outlived`` estimates.
    """
    if not 1 <= boundaries <= MAX_BOUNDARIES:
        raise FleetError(f"the sweep needs from 1 to {MAX_BOUNDARIES:,} boundaries per EX, "
                         f"got {boundaries:,}")
    if not POLICIES[cfg.policy][1] and not POLICIES[cfg.policy][2]:
        raise FleetError(f"policy {cfg.policy} has no lock to expire; sweep EX with policy "
                         "lock, stack or lease")
    cycle_ms = cfg.rebuild_mean() + 2 + 1000.0 / cfg.rate
    needed = boundaries * cycle_ms * cfg.rate / 1000 * 1.05
    if needed > MAX_REQUESTS:
        raise FleetError(
            f"{boundaries:,} boundaries per EX need about {_about(needed)} requests each (at "
            f"{cfg.rate:g}/s, with a mean rebuild of {_about(cfg.rebuild_mean())} ms), more than "
            f"the {MAX_REQUESTS:,} the fleet simulates in one run; lower --boundaries")
    if boundaries * cycle_ms * 1.05 > MAX_TICKS:
        raise FleetError(
            f"{boundaries:,} boundaries per EX, with a mean rebuild of "
            f"{_about(cfg.rebuild_mean())} ms, span more than the {MAX_TICKS // 1000:,} s the "
            "fleet simulates; lower --boundaries")
    rows = []
    for label, ex in points:
        requests = max(cfg.nodes, math.ceil(needed))
        run_cfg = replace(cfg, arrivals="poisson", requests=requests, keys=1,
                          ttl=cfg.ttl or 1, ex=ex, writes=(), write_rate=0.0)
        s = simulate(run_cfg).summary
        written = s["db_queries"] - s["errors"]
        rows.append(RiskRow(label=label, ex=ex, boundaries=s["boundaries"],
                            rebuilds=s["db_queries"],
                            outlived=s["outlived_lock"] / max(1, written),
                            duplicate=s["overtaken_rebuilds"] / max(1, written),
                            tail=cfg.rebuild_tail(ex)))
    return rows


DEFAULT_FLEET_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500)
SIZE_POLICIES = ("none", "singleflight", "lock", "stack")


def fleet_sizes(cfg: FleetConfig, sizes: Sequence[int] = DEFAULT_FLEET_SIZES,
                policies: Sequence[str] = SIZE_POLICIES) -> dict[str, list[int]]:
    """DB queries for each policy at each fleet size, ``cfg.requests`` requests in all."""
    table: dict[str, list[int]] = {}
    for policy in policies:
        table[policy] = [simulate(replace(cfg, policy=policy, nodes=n)).summary["db_queries"]
                         for n in sizes]
    return table


# Facebook's thundering-herd setting (Nishtala et al., NSDI 2013, 3.2.1): hot keys read all
# the time and written often, every write deleting the key. Our workload: 100 hot keys, each
# read 2,500 times a second (Poisson) by a 50-node fleet and written 13 times a second
# (Poisson), for 5 seconds; a rebuild takes 10 ms at the median, 40 ms at p99; lease waiters
# retry every 5 ms. Without leases, every read of a key between its delete and the first
# refill queries the database: about (reads per second per key) x (time until the fastest of
# the concurrent rebuilds refills it), ~12 queries per write here. With leases one read per
# write queries (plus one more when a write lands inside that rebuild). So the cut is driven by
# reads per key per rebuild time, and the leased rate by keys x writes per second (1,300/s).
SCENARIOS: dict[str, dict[str, Any]] = {
    "lesson": {},
    "hot-key": {"keys": 100, "nodes": 50, "arrivals": "poisson", "rate": 2500.0,
                "requests": 1_250_000, "write_rate": 13.0, "rebuild": 10, "rebuild_p99": 40,
                "ex": 10_000, "wait": 5},
}


def scenario(name: str, overrides: Mapping[str, Any] | None = None) -> FleetConfig:
    """A named workload with ``overrides`` applied."""
    if name not in SCENARIOS:
        raise FleetError(f"unknown scenario `{clipped(str(name))}`; choose one of: "
                         f"{', '.join(SCENARIOS)}")
    values = {**SCENARIOS[name], **(overrides or {})}
    try:
        return FleetConfig(**values)
    except TypeError as exc:
        raise FleetError(str(exc)) from None
