"""Shared by tests/test_board_*.py: pynq availability and small compiled
models in every engine's format (the MLP and CNN architectures on 8x8 digits, seeded, untrained:
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


# One format per engine, small settings that still exercise each engine's
# features (pruned PoT k-groups, TR term lists with g > 1, BFP blocks, TEQ banks).
FORMAT_SPECS = {
    "int": "int:bits=8",
    "pot": "pot:bits=4,sparsity=0.3",
    "tr": "tr:bits=8,group=4,budget=6,data_terms=3,encoding=hese",
    "bfp": "bfp:block=16,mantissa=5",
    "teq": "teq:bits=4",
}


def make_artifacts(directory, samples: int = 24, engine: str = "int", models=("mlp", "cnn")) -> dict:
    """{"mlp": path, "cnn": path} in the format of `engine` (FORMAT_SPECS):
    each with expected input/output from the reference backend. int
    artifacts are named <model>.tsm, the others <model>_<engine>.tsm."""
    from termshift.backends import get_backend
    from termshift.nn.artifact import save_artifact
    from termshift.nn.datasets import load_image_data
    from termshift.nn.lower import lower
    from termshift.nn.models import build

    data = load_image_data("digits")
    ref = get_backend("reference")
    out = {}
    for name in models:
        graph = lower(build(name, data.input_shape).eval(), data.calibration(), FORMAT_SPECS[engine])
        graph.meta.update(model=name, dataset=data.name)
        x = data.x_test[:samples]
        expected = {"input": x, "output": graph.run(x, ref).output}
        stem = name if engine == "int" else f"{name}_{engine}"
        out[name] = save_artifact(graph, directory / f"{stem}.tsm", expected=expected)
    return out


def load_overlay(directory, **kw):
    """(TermshiftOverlay, SimulatedZCU104) on the overlay in `directory`;
    `build` and `latency_polls` go to the simulated board, the rest to the overlay."""
    from termshift.board.driver import TermshiftOverlay
    from termshift.board.simulated import SimulatedZCU104

    dev = SimulatedZCU104(**{k: kw.pop(k) for k in ("build", "latency_polls") if k in kw})
    return TermshiftOverlay(str(directory / "termshift.bit"), device=dev, **kw), dev
