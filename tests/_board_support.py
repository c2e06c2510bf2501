"""Shared by tests/test_board_*.py: pynq availability and small compiled
models (the MLP and CNN architectures on 8x8 digits, seeded, untrained:
bit-exactness does not depend on training, and training would take minutes).

pynq 4.0.0 pins numpy<2, so these tests run in a venv with termshift[board].
Without pynq they skip, unless TERMSHIFT_BOARD_TESTS=required (CI), where a
missing pynq is a failure rather than a silent skip.
"""

from __future__ import annotations

import os

import pytest


def require_pynq():
    try:
        import pynq  # noqa: F401
    except ImportError as exc:
        msg = (f"pynq is not installed ({exc}); the board tests need `pip install 'termshift[board]'` "
               "(pynq 4.0.0, numpy<2)")
        if os.environ.get("TERMSHIFT_BOARD_TESTS") == "required":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg, allow_module_level=True)


def make_artifacts(directory, samples: int = 24) -> dict:
    """{"mlp": path, "cnn": path}: each with expected input/output from the reference backend."""
    from termshift.backends import get_backend
    from termshift.nn.artifact import save_artifact
    from termshift.nn.datasets import load_image_data
    from termshift.nn.lower import lower
    from termshift.nn.models import build

    data = load_image_data("digits")
    ref = get_backend("reference")
    out = {}
    for name in ("mlp", "cnn"):
        graph = lower(build(name, data.input_shape).eval(), data.calibration(), "int:bits=8")
        graph.meta.update(model=name, dataset=data.name)
        x = data.x_test[:samples]
        expected = {"input": x, "output": graph.run(x, ref).output}
        out[name] = save_artifact(graph, directory / f"{name}.tsm", expected=expected)
    return out
