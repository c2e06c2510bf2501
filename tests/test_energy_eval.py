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
    # The ops column names each format's own op, never a 0 MAC count for pot/tr/bfp.
    for op in ("fp32_macs ", "macs ", "shift_adds ", "term_pairs ", "bfp_pp_rows "):
        assert op in text
    assert "none 0" not in text
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


# --------------------------------------------------------------------------- docs/energy.md == energy/table.py


def _doc_op_rows() -> list[tuple[str, str]]:
    """(op, pJ cell) of every row of docs/energy.md's per-op table."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "energy.md").read_text()
    section = text.split("## Per-operation energies", 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows.append((cells[0].strip("`"), cells[-1]))
    return rows


def test_energy_doc_lists_every_op_of_the_table_with_its_value():
    rows = _doc_op_rows()
    assert [op for op, _ in rows] == list(table.OPS_PJ)  # same kinds, same order, no extras, no duplicates
    for op, cell in rows:
        decimals = len(cell.partition(".")[2])
        assert abs(float(cell) - table.OPS_PJ[op]) <= 0.5 * 10**-decimals, (op, cell, table.OPS_PJ[op])


def test_energy_doc_memory_rows():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "energy.md").read_text()
    assert f"| {table.DRAM_PJ_PER_BIT:.2f} |" in text and f"| {table.SRAM_PJ_PER_BIT:.3f} |" in text


def test_every_op_kind_an_engine_emits_is_priced():
    """The op kinds the format cost functions emit on a real graph are all in the table."""
    from termshift.evaluate import MAIN_OPS, evaluate, format_report, main_op

    assert set(MAIN_OPS) <= set(table.OPS_PJ)
    kinds = set()
    for fmt in ("int:bits=8", "pot:bits=4,sparsity=0.5", "tr", "bfp:block=8,mantissa=3", "teq:bits=4,beta=on"):
        r = evaluate("cnn", fmt, dataset="digits", limit=4, quiet=True)
        kinds |= set(r["total"]["ops"])
        text = format_report(r)  # every format's report prints, with its main op named
        assert f"{main_op(r['total']['ops'])[0]}=" in text
    assert kinds <= set(table.OPS_PJ)
    assert {"macs", "shift_adds", "term_pairs", "bfp_pp_rows", "teq_pairs", "teq_bank_incs"} <= kinds


# --------------------------------------------------------------------------- op columns of the reports


def _fake_report(fmt: str, ops: dict) -> dict:
    s = summarize([cost(name="fc1", ops=ops)])
    return {"model": "mlp", "dataset": "digits", "format": fmt, "backend": "reference", "metric": "accuracy",
            "accuracy": 0.5, "samples": 10, **s}


@pytest.mark.parametrize("fmt, ops, main", [
    ("int:bits=8", {"macs": 1000, "requants": 10}, "macs"),
    ("pot:bits=4", {"shift_adds": 668672, "requants": 10}, "shift_adds"),
    ("tr", {"term_pairs": 500, "term_encodes": 30, "conventional_term_pairs": 9000, "requants": 10}, "term_pairs"),
    ("bfp:block=8,mantissa=3", {"bfp_pp_rows": 300, "bfp_block_adds": 100, "bfp_align_adds": 20}, "bfp_pp_rows"),
    ("teq:bits=4", {"teq_pairs": 70, "teq_recons": 8, "teq_lut_reads": 40, "teq_bank_incs": 70}, "teq_pairs"),
])
def test_format_report_shows_every_op_kind_main_op_first(fmt, ops, main):
    from termshift.evaluate import format_report, main_op

    text = format_report(_fake_report(fmt, ops))
    layer_line = [line for line in text.splitlines() if line.strip().startswith("fc1")][0]
    for k, v in ops.items():
        assert f"{k}={v:,}" in layer_line
    assert layer_line.split("nJ")[1].strip().startswith(f"{main}={ops[main]:,}")
    assert main_op(ops) == (main, ops[main])


def test_main_op_of_float_and_of_nothing():
    from termshift.evaluate import main_op

    assert main_op({"fp32_macs": 7, "fp32_adds": 3}) == ("fp32_macs", 7)
    assert main_op({"requants": 3, "compares": 2}) == ("none", 0)


def test_demo_table_shows_each_formats_main_op():
    from termshift.demo import format_demo

    agree = {"format": "int:bits=8", "samples": 10, "engine_outputs_compared": 100, "mismatches": 0,
             "cycles_equal": True, "reference_seconds": 0.1, "csim_fast_seconds": 0.2}
    rows = [_fake_report("float", {"fp32_macs": 300032}), _fake_report("int:bits=8", {"macs": 300032, "requants": 9}),
            _fake_report("pot:bits=4", {"shift_adds": 668672, "requants": 9}),
            _fake_report("tr", {"term_pairs": 51411, "conventional_term_pairs": 632064, "term_encodes": 5}),
            _fake_report("bfp:block=8,mantissa=3", {"bfp_pp_rows": 900096, "bfp_block_adds": 300032})]
    text = format_demo({"model": "mlp", "dataset": "digits", "rows": rows, "backends_agree": agree,
                        "artifact": "x.tsm"})
    assert "ops/inf" in text and "MACs/inf" not in text
    lines = text.splitlines()
    # Formats are shown without their default parameters ("tr" resolves to tr:bits=4).
    assert any(ln.startswith("tr:bits=4 ") for ln in lines)
    for fmt, shown in (("float", "fp32_macs 300,032"), ("int:bits=8", "macs 300,032"), ("pot:bits=4", "shift_adds 668,672"),
                       ("tr", "term_pairs 51,411"), ("bfp:block=8", "bfp_pp_rows 900,096")):
        line = [ln for ln in lines if ln.startswith(fmt)][0]
        assert shown in line, line


# --------------------------------------------------------------------------- bfp:search through eval


def test_eval_bfp_search_reports_and_evaluates_its_plan(tmp_path, capsys):
    from termshift.formats import bfp

    path = tmp_path / "r.json"
    assert cli.main(["eval", "--model", "mlp", "--format", "bfp:search", "--dataset", "digits", "--limit", "40",
                     "--json", str(path)]) == 0
    out = capsys.readouterr().out
    r = json.loads(path.read_text())
    assert r["format"] == "bfp:search=on" and r["samples"] == 40
    assert list(r["plan"]) == [L["name"] for L in r["layers"]]  # the MLP's layers are all GEMMs
    for L in r["layers"]:
        p = r["plan"][L["name"]]
        assert p["block"] in bfp.BLOCKS and 2 <= p["mantissa"] <= 8 and 4 <= p["e_bits"] <= 8
        # The evaluated graph is the plan: each layer costs its own (block, mantissa, e_bits).
        assert L["bits_per_weight"] == pytest.approx(p["mantissa"] + p["e_bits"] / p["block"])
        assert L["bfp_pp_rows"] == p["mantissa"] * L["bfp_block_adds"]
        assert f"{L['name']} B={p['block']} m={p['mantissa']}" in out
    assert r["bfp_search"]["real_checks"] >= 1 and 0 < r["bfp_search"]["val_accuracy"] <= 1
    assert "per-layer plan:" in out and "bfp search: validation" in out


def test_eval_bfp_search_refuses_fixed_parameters(capsys):
    assert cli.main(["eval", "--model", "mlp", "--format", "bfp:search,block=8", "--dataset", "digits"]) == 2
    err = capsys.readouterr().err
    assert "cannot be combined with block=8" in err and "Traceback" not in err


def test_format_report_prints_the_search_of_any_model_family():
    """Image bfp:search, teq width searches and other families' plans (strings) all print."""
    from termshift.evaluate import format_report

    r = _fake_report("bfp:search=on", {"bfp_pp_rows": 300, "bfp_block_adds": 100})
    r["plan"] = {"fc1": {"block": 16, "mantissa": 3, "e_bits": 8, "spec": "bfp:block=16,mantissa=3,e_bits=8"}}
    r["bfp_search"] = {"met_target": False, "validation_images": 200, "int8_val_accuracy": 0.9, "val_accuracy": 0.85,
                       "real_checks": 4, "seconds": 2.0}
    text = format_report(r)
    assert "per-layer plan: fc1 B=16 m=3" in text and "target NOT met, 4 real checks" in text
    r = _fake_report("teq", {"teq_pairs": 70})
    r.update(widths=[5, 4, 3], search={"widths": [5, 4, 3], "avg_bits": 3.9, "evaluations": 11, "seconds": 1.5})
    text = format_report(r)
    assert "per-layer widths (bits): 5/4/3" in text and "search: avg_bits 3.9, evaluations 11" in text
    r = _fake_report("bfp:search=on", {"bfp_pp_rows": 300})
    r.update(plan={"l0.ih": "B8m3"}, search={"met_target": True, "val_bits_per_char": 2.25})
    assert "per-layer plan: l0.ih B8m3" in format_report(r)


def test_main_op_prefers_the_engine_op_over_host_float_work():
    from termshift.evaluate import main_op, ordered_ops

    ops = {"fp32_macs": 7_411_648, "fp32_funcs": 3, "term_pairs": 739_201_632, "conventional_term_pairs": 10}
    assert main_op(ops) == ("term_pairs", 739_201_632)
    assert list(ordered_ops(ops)) == ["term_pairs", "fp32_macs", "conventional_term_pairs", "fp32_funcs"]
