"""The memcached expiry boundary itself, against real time, once (DESIGN.md section 3).

memcached keeps an item while ``current_time < exptime`` and treats it as gone once
``exptime <= current_time``: unlike Redis (alive *at* its expiry), an item is never seen alive
with 0 seconds left. The model's ticks (:func:`models.memcached_item.tick`: ttl 1 vanishes on
the next tick) rely on that rule, so it is shown here rather than assumed.

memcached's clock has 1-second granularity: ``current_time`` is whole seconds since start,
advanced by a timer once a second, not aligned with the moment a command arrives. ``T2`` sets
``exptime = current_time + 2``, so ``mg k t`` reads ``t2`` until the next clock step, then
``t1`` for one full second, then the item is gone: 1 to 2 seconds after the store, depending on
where in its second the server's clock was. The test stores ``ms k 2 T2``, polls ``mg k t v``
every ~20 ms and requires exactly that: alive with ``t2``/``t1`` only (never ``t0``), ``t``
never rising, the item gone within the window and gone for good, and the steps one clock second
apart. About 2 s of real time per attempt.
"""

from __future__ import annotations

import time
import uuid

from herdproof.ticked_memcached import MetaClient

POLL_S = 0.02


def _poll(client: MetaClient) -> list[tuple[float, int | None]]:
    """Store with ``T2`` and poll: (seconds since the store, ``t`` or None once gone)."""
    key = f"hp:expiry:{uuid.uuid4().hex}"
    start = time.monotonic()
    assert client.ask(f"ms {key} 2 T2", "v1") == "HD"
    probes: list[tuple[float, int | None]] = []
    while time.monotonic() - start < 4.0:
        client.send(f"mg {key} t v")
        status, *flags = client.line().split()
        now = time.monotonic() - start
        if status == "EN":
            probes.append((now, None))
            if sum(ttl is None for _, ttl in probes) >= 5:
                break  # five polls after it went: long enough to see it stays gone
        else:
            assert status == "VA" and client.block(int(flags[0])) == "v1"
            (ttl,) = (int(f[1:]) for f in flags[1:] if f.startswith("t"))
            probes.append((now, ttl))
        time.sleep(POLL_S)
    return probes


def test_a_memcached_item_is_gone_once_its_exptime_arrives(meta_client: MetaClient) -> None:
    # The rule is asserted on every attempt; the one-second spacing of the clock's steps on the
    # best one, since the OS may delay a poll or the server's timer now and then.
    steps = []
    for _ in range(3):
        probes = _poll(meta_client)
        alive = [ttl for _, ttl in probes if ttl is not None]
        assert alive and alive[0] in (1, 2), probes
        assert set(alive) <= {1, 2}, f"an item was seen alive with t{min(alive)}: {probes}"
        assert alive == sorted(alive, reverse=True), f"t went up: {probes}"
        first_gone = next(i for i, (_, ttl) in enumerate(probes) if ttl is None)
        assert all(ttl is None for _, ttl in probes[first_gone:]), "an item came back"
        gone_at = probes[first_gone][0]
        assert 1.0 - POLL_S < gone_at <= 2.5, f"gone after {gone_at:.3f} s, not in (1, 2]"
        if alive[0] == 2 and 1 in alive:
            # the clock steps that turned t2 into t1, and t1 into gone: one second apart
            to_one = next(at for at, ttl in probes if ttl == 1)
            steps.append(gone_at - to_one)
            if abs(steps[-1] - 1.0) <= 0.1:
                break
    assert steps and min(abs(step - 1.0) for step in steps) <= 0.1, steps
