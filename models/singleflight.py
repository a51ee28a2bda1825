"""In-process single-flight (Go's ``singleflight.Group.Do``; a ``Map<key, Promise>`` in Node).

Each node (process) keeps at most one in-flight rebuild per key. A request that misses the
cache looks the key up in its node's map: if a flight exists it subscribes and waits for the
leader's outcome; otherwise it registers itself as the leader. Nodes share nothing, so
single-flight bounds concurrency per node, never across the fleet.

``flights[n]`` is the id of node ``n``'s current leader, or ``NO_LEADER``.
"""

from __future__ import annotations

from herdproof.models.ops import Bool, Int, all_of, any_of, set_at

NO_LEADER = -1


def in_flight(flights: tuple[Int, ...], node: int) -> Bool:
    """Node ``node`` has a rebuild in flight that newcomers can subscribe to."""
    return flights[node] != NO_LEADER


def lead(flights: tuple[Int, ...], node: int, request: int) -> tuple[Int, ...]:
    """``request`` registers the node's flight and becomes its leader."""
    return set_at(flights, node, request)


def resolve(flights: tuple[Int, ...], node: int) -> tuple[Int, ...]:
    """The leader resolves the promise and removes the flight from the map."""
    return set_at(flights, node, NO_LEADER)


def leader_in_domain(leader: Int, first_request: int, per_node: int) -> Bool:
    """A node's leader is nobody or one of that node's own requests."""
    return any_of(leader == NO_LEADER,
                  all_of(leader >= first_request, leader < first_request + per_node))
