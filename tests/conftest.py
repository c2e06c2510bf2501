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


# CI has every dataset and optional package installed, so a skip there means a
# test silently stopped testing: with TERMSHIFT_NO_SKIPS=1 (set by .ci/run) every
# skip, at run time or at collection, is reported as a failure instead.
def _no_skips() -> bool:
    return os.environ.get("TERMSHIFT_NO_SKIPS") == "1"


def _fail_skip(report, where: str) -> None:
    if _no_skips() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped {where}, but TERMSHIFT_NO_SKIPS=1 forbids skips: {report.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skip(outcome.get_result(), "at run time")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_skip(outcome.get_result(), "at collection")


@pytest.fixture(scope="module")
def overlay_dir(tmp_path_factory):
    """A simulated overlay (.bit, .hwh, manifest) with every engine (the board tests)."""
    from termshift.board.simulated import write_overlay

    d = tmp_path_factory.mktemp("overlay")
    write_overlay(d)
    return d

