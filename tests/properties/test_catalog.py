"""properties/: names, kinds, parametric REBUILDS<=k, applicability."""

from __future__ import annotations

import pytest

from herdproof.models.errors import UnknownProperty
from herdproof.models.observation import Observation
from herdproof.properties import Kind, applicable_properties, property_named, quantity_named


def observation(**changes: object) -> Observation:
    base: dict[str, object] = {"rebuilding": 0, "rebuild_starts": 0, "foreign_release": False,
                               "cache_filled": False, "unserved": 0}
    return Observation(**(base | changes))  # type: ignore[arg-type]


def test_kinds() -> None:
    assert property_named("ONE").kind is Kind.ALWAYS
    assert property_named("NOFOREIGN").kind is Kind.ALWAYS
    assert property_named("SERVED").kind is Kind.EVENTUALLY
    assert property_named("REFILL").kind is Kind.SOMETIMES
    assert property_named("rebuilds<=3").kind is Kind.ALWAYS


@pytest.mark.parametrize(("name", "fields", "holds"), [
    ("ONE", {"rebuilding": 1}, True),
    ("ONE", {"rebuilding": 2}, False),
    ("REBUILDS<=1", {"rebuild_starts": 1}, True),
    ("REBUILDS<=1", {"rebuild_starts": 2}, False),
    ("REBUILDS<=3", {"rebuild_starts": 3}, True),
    ("NOFOREIGN", {"foreign_release": True}, False),
    ("SERVED", {"unserved": 0}, True),
    ("SERVED", {"unserved": 1}, False),
    ("REFILL", {"cache_filled": True}, True),
])
def test_predicates(name: str, fields: dict[str, object], holds: bool) -> None:
    assert property_named(name).predicate(observation(**fields)) is holds


def test_properties_that_need_a_missing_field_do_not_apply() -> None:
    names = [p.name for p in applicable_properties(observation(foreign_release=None))]
    assert names == ["ONE", "REBUILDS<=1", "SERVED", "REFILL"]


def test_unknown_names() -> None:
    with pytest.raises(UnknownProperty, match="unknown property `TWO`; choose one of: ONE"):
        property_named("TWO")
    with pytest.raises(UnknownProperty, match="unknown quantity `speed`"):
        quantity_named("speed")
