"""Shared fixtures: the backends under test and hypothesis settings.

The C-sim extension is part of the package: if it is not built the csim
tests fail with the build instructions rather than being skipped.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from termshift.backends import get_backend

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("TERMSHIFT_HYPOTHESIS", "ci"))


@pytest.fixture(scope="session")
def reference():
    return get_backend("reference")


@pytest.fixture(scope="session")
def csim_fast():
    return get_backend("csim", build="fast")


@pytest.fixture(scope="session")
def csim_exact():
    return get_backend("csim", build="exact")
