"""The termshift CLI: verify, bench, and how errors reach the user."""

import json

import numpy as np
import pytest

from termshift import cli
from termshift.backends.base import GemmResult
from termshift.backends.csim import CSimBackend


def test_verify_reports_zero_mismatches(capsys):
    assert cli.main(["verify", "--engine", "int", "--cases", "5", "--seed", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("int    fast") and "mismatches=0" in lines[0]
    assert lines[1].startswith("int    exact") and "mismatches=0" in lines[1]
    n_edge = int(lines[0].split("cases=")[1].split()[0]) - 5
    assert n_edge >= 10


def test_verify_fails_on_a_single_flipped_bit(monkeypatch, capsys):
    real = CSimBackend.run

    def broken(self, engine, **operands):
        res = real(self, engine, **operands)
        out = res.out.copy()
        out.flat[-1] ^= 1
        return GemmResult(out, res.cycles)

    monkeypatch.setattr(CSimBackend, "run", broken)
    assert cli.main(["verify", "--engine", "int", "--build", "fast", "--cases", "2"]) == 1
    out = capsys.readouterr().out
    assert "mismatches=" in out and "mismatches=0" not in out and "1 outputs differ" in out


def test_verify_fails_on_wrong_cycles(monkeypatch, capsys):
    real = CSimBackend.run
    monkeypatch.setattr(CSimBackend, "run", lambda self, *a, **k: GemmResult(real(self, *a, **k).out, 0))
    assert cli.main(["verify", "--engine", "int", "--build", "exact", "--cases", "0"]) == 1
    assert "csim 0" in capsys.readouterr().out


def test_bench_writes_json(tmp_path, capsys):
    path = tmp_path / "sub" / "bench.json"
    assert cli.main(["bench", "csim", "--size", "24", "--repeats", "1", "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    assert report["gemm"]["macs"] == 24**3
    assert set(report["results"]) == {"csim_fast", "csim_exact", "plain_ap_int_loop", "plain_native_loop",
                                      "numpy_int32_matmul", "numpy_float64_blas"}
    assert report["outputs_checked"] is True
    assert report["ratios"]["fast_over_exact"] == pytest.approx(
        report["results"]["csim_fast"]["mac_per_s"] / report["results"]["csim_exact"]["mac_per_s"])
    assert "M MAC/s" in capsys.readouterr().out
    assert not list(path.parent.glob(".*.tmp"))


def test_user_errors_exit_2_with_one_line(capsys):
    assert cli.main(["verify", "--engine", "posit"]) == 2
    err = capsys.readouterr().err
    assert "unknown engine 'posit'" in err and "Traceback" not in err


def test_argument_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["verify", "--cases", "-1"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        cli.main(["bench", "csim", "--size", "0"])


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    from termshift.atomic import write_json_atomic

    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": np.zeros(1)})  # not JSON-serializable
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_bfp_search_forwards_every_argument_in_order(monkeypatch):
    from termshift.search import bfp_cli

    seen = []
    monkeypatch.setattr(bfp_cli, "main", lambda argv=None: seen.append(list(argv)) or 7)
    argv = ["--model", "mlp", "--model", "cnn", "--val", "300", "-h", "--", "--out", "x y"]
    assert cli.main(["bfp-search", *argv]) == 7
    assert cli.main(["bfp-search"]) == 7
    assert seen == [argv, []]


def test_bfp_search_is_in_the_help_and_its_options_are_bfp_clis(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    assert "bfp-search" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli.main(["bfp-search", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: termshift bfp-search" in out and "--time-budget" in out and "--tolerance" in out


def test_bfp_search_runs_on_digits(tmp_path, capsys):
    out = tmp_path / "bfp"
    assert cli.main(["bfp-search", "--model", "mlp", "--dataset", "digits", "--val", "200", "--time-budget", "5",
                     "--test-limit", "50", "--out", str(out)]) == 0
    report = json.loads((out / "bfp_search.json").read_text())["reports"][0]
    assert report["model"] == "mlp" and report["test_images"] == 50 and report["validation_images"] == 200
    assert set(report["rows"]) >= {"int8", "best_uniform", "optimizer", "bitq"}
    assert (out / "bfp_search.png").read_bytes()[:4] == b"\x89PNG"
    assert "| best uniform BFP |" in (out / "bfp_search.md").read_text()


def test_bfp_search_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bfp-search", "--model", "lstm"])
    assert exc.value.code == 2
    assert "invalid choice: 'lstm'" in capsys.readouterr().err
