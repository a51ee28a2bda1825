"""Test-suite configuration: Hypothesis profiles and the expectations table.

Profiles (choose with ``HYPOTHESIS_PROFILE=name``; the default is ``ci``):

- ``ci``: derandomized and bounded, so CI is fast and repeatable.
- ``thorough``: many more examples and longer runs, for local deep runs.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, max_examples=500, stateful_step_count=40, deadline=None,
    database=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile(
    "thorough", max_examples=3000, stateful_step_count=120, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config: pytest.Config) -> None:
    from tests.conformance.report import CONFORMANCE, SequenceReport, SkipGuard

    config.pluginmanager.register(SkipGuard(CONFORMANCE, bool(os.environ.get("CI"))),
                                  "conformance-skip-guard")
    config.pluginmanager.register(SequenceReport(), "conformance-sequences")
