"""notebooks/board_demo.ipynb executed end to end against the simulated
ZCU104 (nbclient): every cell runs, the MLP and CNN in every engine's format
are bit-exact on their engines, throughput and energy figures per engine and
the plot are produced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _board_support import FORMAT_SPECS, make_artifacts, require_pynq

require_pynq()

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "board_demo.ipynb"


def _require(module: str):
    try:
        return __import__(module)
    except ImportError as exc:
        import os

        msg = f"{module} is not installed ({exc}); the notebook test needs nbclient, nbformat and ipykernel"
        if os.environ.get("TERMSHIFT_BOARD_TESTS") == "required":
            pytest.fail(msg)
        pytest.skip(msg)


def test_board_demo_notebook_on_the_simulated_board(tmp_path):
    nbformat = _require("nbformat")
    _require("nbclient")
    _require("ipykernel")
    from nbclient import NotebookClient

    engines = list(FORMAT_SPECS)
    arts = [path for e in engines for path in make_artifacts(tmp_path, samples=16, engine=e).values()]
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    params[0].source = "\n".join([
        f"OVERLAY = {str(tmp_path / 'no-overlay-here.bit')!r}  # simulated: one is written",
        f"ARTIFACTS = {[str(p) for p in arts]!r}",
        "SIMULATED = True",
        "BATCH = 16",
        "THROUGHPUT_INFERENCES = 32",
        "POWER_IDLE_S, POWER_ACTIVE_S, POWER_INTERVAL_S = 0.1, 0.15, 0.01",
        "RESULTS_JSON = 'board_results.json'",
    ])
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    results = json.loads((tmp_path / "board_results.json").read_text())
    assert results["simulated"] is True
    runs = [f"{m}/{e}" for e in engines for m in ("mlp", "cnn")]
    assert [f"{c['model']}/{c['engine']}" for c in results["checks"]] == runs
    assert sorted(results["engines"]) == sorted(engines)
    assert all(c["identical"] and c["samples"] == 16 for c in results["checks"])
    assert list(results["throughput"]) == list(results["energy"]) == runs
    assert all(t["inferences_per_s"] > 0 and t["engine"] == k.split("/")[1] for k, t in results["throughput"].items())
    assert all(e["energy_per_inference_j"] > 0 for e in results["energy"].values())
    assert (tmp_path / "board_energy.png").stat().st_size > 1000
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.output_type == "stream")
    assert "SIMULATED ZCU104" in text and text.count("IDENTICAL") == len(runs)
    assert all(f"hwh register map of gemm_{e}_0" in text for e in engines)
