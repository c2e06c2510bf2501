"""Energy roll-up and the evaluation pipeline on the always-available digits set."""

import json

import numpy as np
import pytest

from termshift import cli
from termshift.energy import table
from termshift.energy.model import layer_energy, summarize
from termshift.evaluate import evaluate_image_model, float_costs
from termshift.nn.graph import LayerCost


def cost(**kw):
    base = dict(name="l", kind="linear", ops={"macs": 1000, "requants": 10}, weight_count=100, bias_count=10,
                act_in_count=10, act_out_count=10, sram_a_reads=80, sram_w_reads=80, cycles=50,
                bits_per_weight=8.0, bits_per_activation=8.0, weight_storage_bits=8.0, act_storage_bits=8.0,
                out_storage_bits=8.0)
    base.update(kw)
    return LayerCost(**base)


def test_layer_energy_by_hand():
    e = layer_energy(cost())
    compute = 1000 * (0.2 + 0.1) + 10 * (3.1 + 0.1)
    dram = (100 * 8 + 10 * 32 + 10 * 8 + 10 * 8) * 1950 / 64
    sram = (80 * 8 + 80 * 8) * 10 / 64
    assert e["compute_j"] == pytest.approx(compute * 1e-12)
    assert e["dram_j"] == pytest.approx(dram * 1e-12)
    assert e["sram_j"] == pytest.approx(sram * 1e-12)
    assert e["energy_j"] == pytest.approx((compute + dram + sram) * 1e-12)


def test_summary_totals_are_sums():
    s = summarize([cost(name="a"), cost(name="b", ops={"macs": 5}, cycles=7, weight_count=300, bits_per_weight=4.0)])
    assert s["total"]["ops"] == {"macs": 1005, "requants": 10}
    assert s["total"]["cycles"] == 57
    assert s["total"]["energy_j"] == pytest.approx(sum(r["energy_j"] for r in s["layers"]))
    assert s["total"]["bits_per_weight"] == pytest.approx((100 * 8 + 300 * 4) / 400)
    assert s["total"]["latency_s"] == pytest.approx(57 / table.CLOCK_HZ)


def test_float_costs_are_fp32():
    f = float_costs([cost()])[0]
    assert f.ops == {"fp32_macs": 1000}
    assert f.weight_bits == 100 * 32 + 10 * 32 and f.act_out_bits == 10 * 32 and f.cycles == 0
    assert layer_energy(f)["energy_j"] > 3 * layer_energy(cost())["energy_j"]


def test_unknown_op_kind_is_named():
    with pytest.raises(KeyError, match="no energy for op kind 'warp_drive'"):
        layer_energy(cost(ops={"warp_drive": 1}))


def test_mlp_on_digits_reference_and_csim_agree():
    ref = evaluate_image_model("mlp", "int:bits=8", "reference", dataset="digits", quiet=True)
    sim = evaluate_image_model("mlp", "int:bits=8", "csim", dataset="digits", quiet=True)
    flt = evaluate_image_model("mlp", "float", dataset="digits", quiet=True)
    assert ref["accuracy"] == sim["accuracy"] > 0.85
    assert abs(flt["accuracy"] - ref["accuracy"]) < 0.02
    assert ref["total"] == sim["total"]
    assert ref["total"]["ops"]["macs"] == 64 * 512 + 512 * 512 + 512 * 10
    assert flt["total"]["energy_j"] > 3 * ref["total"]["energy_j"]
    assert ref["samples"] == 360 and ref["dataset"] == "digits"


def test_eval_cli_json(tmp_path, capsys):
    path = tmp_path / "r.json"
    assert cli.main(["eval", "--model", "mlp", "--format", "int:bits=8", "--dataset", "digits",
                     "--backend", "csim", "--limit", "50", "--json", str(path)]) == 0
    r = json.loads(path.read_text())
    assert r["samples"] == 50 and r["metric"] == "accuracy" and 0 <= r["accuracy"] <= 1
    for key in ("macs",):
        assert key in r["total"]["ops"]
    for key in ("bits_per_weight", "bits_per_activation", "cycles", "energy_j"):
        assert key in r["total"]
    assert {"name", "macs", "cycles", "energy_j"} <= set(r["layers"][0])
    assert "accuracy:" in capsys.readouterr().out


def test_eval_cli_errors(capsys):
    assert cli.main(["eval", "--model", "mlp", "--format", "int:bits=12", "--dataset", "digits"]) == 2
    assert "bits=12 is out of range" in capsys.readouterr().err
    assert cli.main(["eval", "--model", "mlp", "--format", "int:bits=8", "--dataset", "cifar"]) == 2
    assert "unknown dataset 'cifar'" in capsys.readouterr().err


def test_demo_on_digits(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--dataset", "digits", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "IDENTICAL" in text
    report = json.loads((out / "demo.json").read_text())
    assert report["backends_agree"]["mismatches"] == 0 and report["backends_agree"]["samples"] == 360
    from termshift.demo import FORMATS

    assert {r["format"].partition(":")[0] for r in report["rows"]} == {f.partition(":")[0] for f in FORMATS}
    assert "int:bits=8,granularity=channel" in {r["format"] for r in report["rows"]}
    png = (out / "accuracy_vs_energy.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    from termshift.nn.artifact import load_artifact

    graph, expected = load_artifact(out / "mlp-int8.tsm")
    assert expected["output"].shape == (16, 10)


def test_agree_cli_on_digits(capsys):
    assert cli.main(["agree", "--model", "cnn", "--dataset", "digits"]) == 0
    out = capsys.readouterr().out
    assert "360 test samples" in out and "IDENTICAL, cycles equal" in out
