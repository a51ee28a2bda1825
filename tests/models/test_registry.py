"""models/registry.py and models/params.py: presets, parameter parsing, clear errors."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from herdproof.models import policies
from herdproof.models.errors import InvalidParameter, UnknownParameter, UnknownPolicy
from herdproof.models.program import ARRIVAL_PARAMS
from herdproof.models.registry import POLICIES, PRESETS, build, resolve


def test_presets_of_the_lesson() -> None:
    assert {"none", "singleflight", "lock-del", "lock-cad", "stack", "stack-recheck"} <= set(
        PRESETS)
    expected = {
        "none": (False, False), "singleflight": (True, False), "lock-del": (False, True),
        "lock-cad": (False, True), "stack": (True, True), "stack-recheck": (True, True)}
    for name, (sf, lock) in expected.items():
        _, params = resolve(name)
        assert (params["singleflight"], params["lock"]) == (sf, lock), name
    assert resolve("lock-del")[1]["release"] == "del"
    assert resolve("stack")[1]["release"] == "cad" and not resolve("stack")[1]["recheck"]
    assert resolve("stack-recheck")[1]["recheck"]


def test_overrides_win_over_presets_and_strings_are_parsed() -> None:
    _, params = resolve("stack", {"ex": "7", "lock": "off", "release": "del"})
    assert params["ex"] == 7 and params["lock"] is False and params["release"] == "del"
    assert resolve("stack", {"lock": "ON"})[1]["lock"] is True


def test_every_parameter_has_a_default_and_builds() -> None:
    for spec in POLICIES.values():
        assert build(spec.name).candidate_actions()


@pytest.mark.parametrize(("overrides", "error", "message"), [
    ({"ex": 0}, InvalidParameter, "parameter `ex` of stack must be at least 1"),
    ({"nodes": 0}, InvalidParameter, "parameter `nodes` of stack must be at least 1"),
    ({"per_node": "-1"}, InvalidParameter, "must be at least 1"),
    ({"ex": "soon"}, InvalidParameter, "parameter `ex` of stack must be an integer"),
    ({"ex": True}, InvalidParameter, "is an integer, not a switch"),
    ({"lock": "maybe"}, InvalidParameter, "is a switch: write on or off"),
    ({"release": "unlink"}, InvalidParameter, "must be one of del, cad, get-del"),
    ({"colour": 1}, UnknownParameter, "stack has no parameter `colour`"),
])
def test_bad_parameters_name_the_cause(overrides: dict[str, object], error: type[Exception],
                                       message: str) -> None:
    with pytest.raises(error, match=message):
        resolve("stack", overrides)


def test_unknown_policy_lists_the_choices() -> None:
    choices = ", ".join(sorted(set(POLICIES) | set(PRESETS)))
    with pytest.raises(UnknownPolicy) as raised:
        build("no-such-lock")
    assert str(raised.value) == (f"unknown policy or preset `no-such-lock`; choose one of: "
                                 f"{choices}")


def test_every_policy_module_registers_itself() -> None:
    """A policy is one module: the registry finds every module under models/policies/ that
    declares a SPEC, and each module's SPEC is the registered one (no list kept by hand), with
    the request-program layer's arrival window after the policy's own parameters."""
    modules = sorted(info.name for info in pkgutil.iter_modules(policies.__path__))
    declared = [importlib.import_module(f"{policies.__name__}.{m}").SPEC for m in modules]
    assert sorted(spec.name for spec in declared) == sorted(POLICIES)
    for spec in declared:
        registered = POLICIES[spec.name]
        assert (registered.summary, registered.size, registered.order) == (
            spec.summary, spec.size, spec.order)
        assert registered.params == (*spec.params, *ARRIVAL_PARAMS)
    assert next(iter(POLICIES)) == "stack"  # the canonical model comes first in listings
    for preset in PRESETS.values():
        assert preset.policy in POLICIES
