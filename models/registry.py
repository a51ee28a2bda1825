"""The one list of policies and named presets.

Adding a policy is one module under ``models/policies/``, one :class:`PolicySpec` line here, and
its rows in ``traces/expectations/``. Presets are named parameter sets (Quint's named instances):
``herdproof check stack-recheck`` is ``herdproof check stack`` with the preset's values, which
``-p`` options may still override.

>>> resolve("lock-del", {"ex": 2})[0]
'stack'
>>> sorted(PRESETS)
['lock-cad', 'lock-del', 'none', 'singleflight', 'stack', 'stack-recheck']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from herdproof.models.core import TransitionSystem
from herdproof.models.errors import UnknownPolicy
from herdproof.models.params import Param, ParamValue, resolve_params
from herdproof.models.policies import lease, memcached_meta, stack, swr


@dataclass(frozen=True)
class PolicySpec:
    """A registered policy: its parameters and how to build a model from them."""

    name: str
    summary: str
    params: tuple[Param, ...]
    build: Callable[[Mapping[str, ParamValue], str], TransitionSystem[Any, Any]]


@dataclass(frozen=True)
class Preset:
    """A named configuration of a policy."""

    name: str
    policy: str
    summary: str
    values: Mapping[str, ParamValue] = field(default_factory=dict)


POLICIES: dict[str, PolicySpec] = {
    spec.name: spec for spec in (
        PolicySpec("stack", "single-flight per node + SET NX EX lock + re-check + stale fallback",
                   stack.PARAMS, stack.build),
        PolicySpec("lease", "Facebook memcache leases (NSDI 2013): one token per window, "
                   "deletes void tokens, wait-and-retry or stale values",
                   lease.PARAMS, lease.build),
        PolicySpec("memcached-meta", "memcached 1.6 meta commands: mg N vivifies a stub and "
                   "hands W to one client, Z to the rest; md I marks stale; ms C<cas>",
                   memcached_meta.PARAMS, memcached_meta.build),
        PolicySpec("swr", "stale-while-revalidate (RFC 5861): serve stale in the window while "
                   "one background refresh runs", swr.PARAMS, swr.build),
    )
}

PRESETS: dict[str, Preset] = {
    preset.name: preset for preset in (
        Preset("none", "stack", "no mitigation: every miss rebuilds",
               {"singleflight": False, "lock": False}),
        Preset("singleflight", "stack", "in-process single-flight only",
               {"singleflight": True, "lock": False}),
        Preset("lock-del", "stack", "Redis lock released with an unconditional DEL",
               {"singleflight": False, "lock": True, "release": "del"}),
        Preset("lock-cad", "stack", "Redis lock released with compare-and-delete",
               {"singleflight": False, "lock": True, "release": "cad"}),
        Preset("stack", "stack", "single-flight + Redis lock (compare-and-delete)",
               {"singleflight": True, "lock": True, "release": "cad", "recheck": False}),
        Preset("stack-recheck", "stack", "the stack, re-checking the cache before rebuilding",
               {"singleflight": True, "lock": True, "release": "cad", "recheck": True}),
    )
}


def resolve(name: str, overrides: Mapping[str, object] | None = None,
            ) -> tuple[str, dict[str, ParamValue]]:
    """The policy behind a policy or preset name, and its complete validated parameters.

    A name that is both (``stack``) means the preset, whose values are the policy's defaults
    anyway. Raises :class:`UnknownPolicy` or a parameter error naming the fix.
    """
    given: dict[str, object] = {}
    if name in PRESETS:
        preset = PRESETS[name]
        policy_name = preset.policy
        given.update(preset.values)
    elif name in POLICIES:
        policy_name = name
    else:
        names = ", ".join(sorted(set(POLICIES) | set(PRESETS)))
        raise UnknownPolicy(f"unknown policy or preset `{name}`; choose one of: {names}")
    given.update(overrides or {})
    spec = POLICIES[policy_name]
    return policy_name, resolve_params(policy_name, spec.params, given)


def build(name: str, overrides: Mapping[str, object] | None = None) -> TransitionSystem[Any, Any]:
    """The model for a policy or preset name with ``overrides`` applied."""
    policy_name, params = resolve(name, overrides)
    return POLICIES[policy_name].build(params, policy_name)
