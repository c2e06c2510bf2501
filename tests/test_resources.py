"""The analytical resource model: primitives, the INT8 engine's scaling laws,
the tree-derived interface, the XCZU7EV table and csynth comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from termshift.hls import resources as rs

ROOT = Path(__file__).resolve().parents[1]


def test_device_is_the_xczu7ev():
    assert rs.DEVICE["part"] == "xczu7ev-ffvc1156-2-e"
    assert {r: rs.DEVICE[r] for r in rs.RESOURCES} == {
        "LUT": 230400,
        "FF": 460800,
        "DSP": 1728,
        "BRAM36": 312,
        "URAM": 96,
    }


@pytest.mark.parametrize(
    "depth, width, bram18, lut",
    [
        (16, 32, 0, 32),  # 512 bits: distributed RAM, one LUT per bit per 64 words
        (64, 16, 0, 16),  # exactly the LUTRAM limit
        (256, 9, 1, 0),  # a_tile row: one BRAM18 as 2K x 9
        (256, 8, 1, 0),
        (4096, 8, 2, 0),  # m_axi read FIFO of a 256-beat burst, 16 outstanding
        (4096, 32, 8, 0),
        (512, 36, 1, 0),
        (1024, 36, 2, 0),
        (16384, 1, 1, 0),
    ],
)
def test_memory_mapping(depth, width, bram18, lut):
    c = rs.memory(depth, width)
    assert (c.bram18, c.lut) == (bram18, lut)


@pytest.mark.parametrize(
    "a, b, dsp",
    [(9, 8, 1), (27, 18, 1), (18, 27, 1), (28, 18, 2), (32, 32, 4), (64, 64, 12), (3, 8, 0)],
)
def test_multiplier_dsp_tiles(a, b, dsp):
    assert rs.multiplier(a, b).dsp == dsp


def test_small_primitives():
    assert rs.adder(32).lut == 32
    assert rs.mux(32, 2).lut == 16 and rs.mux(32, 8).lut == 64 and rs.mux(8, 1).lut == 0
    assert rs.comparator(64).lut == 32
    assert rs.barrel_shift(64, 6).lut == 192
    assert rs.clog2(270) == 9 and rs.clog2(1) == 1


def test_int_dsp_law():
    # One DSP per PE, four per requant column (32 x 32), 3 x 4 for addresses.
    for r, c in [(1, 1), (4, 8), (8, 8), (16, 16), (8, 32)]:
        assert rs.estimate("int", r, c)["DSP"] == r * c + 4 * c + 12


def test_int_tile_buffers_follow_tile_k():
    def tiles(tk):
        return rs.estimate("int", 8, 8, tk)["breakdown"]["tile buffers"]

    assert tiles(256)["BRAM18"] == 16
    assert tiles(4096)["BRAM18"] == 8 * 2 + 8 * 2  # 4K deep needs two 2K x 9 halves
    assert tiles(64)["BRAM18"] == 0 and tiles(64)["LUT"] > 0  # 64 x 9 fits LUTRAM


def test_scaling_is_monotonic_and_pe_dominated():
    prev = None
    for n in (2, 4, 8, 16, 32):
        e = rs.estimate("int", n, n)
        if prev:
            assert all(e[r] >= prev[r] for r in ("LUT", "FF", "DSP", "BRAM18"))
        prev = e
    big = rs.estimate("int", 32, 32)
    assert big["breakdown"]["PE array"]["FF"] > big["FF"] / 2


def test_breakdown_adds_up():
    e = rs.estimate("int", 8, 8)
    for r in ("LUT", "FF", "DSP", "BRAM18"):
        parts = sum(p[r] for p in e["breakdown"].values())
        assert e[r] <= parts <= e[r] + len(e["breakdown"])
    assert e["BRAM36"] == e["BRAM18"] / 2


def test_default_configuration_fits_with_room():
    from termshift.hls.engines import read_config

    cfg = read_config(ROOT, "int")
    est = rs.estimate("int", cfg.rows, cfg.cols, cfg.tile_k, bundles=rs.tree_bundles(ROOT, "int"))
    ov = rs.estimate_overlay([est])
    assert all(0 < ov["utilization"][r] < 25 for r in ("LUT", "FF", "DSP", "BRAM36"))
    assert ov["total"]["LUT"] == est["LUT"] + ov["shell"]["LUT"]


def test_tree_bundles_read_from_the_int_top():
    bundles = {b.name: b for b in rs.tree_bundles(ROOT, "int")}
    assert set(bundles) == {"gmem_a", "gmem_w", "gmem_p", "gmem_c"}
    a, w, p, c = bundles["gmem_a"], bundles["gmem_w"], bundles["gmem_p"], bundles["gmem_c"]
    assert (a.read, a.write, a.width, a.read_burst) == (True, False, 8, 256)
    assert (w.read, w.write, w.width, w.read_burst) == (True, False, 8, 256)
    assert (p.read, p.write, p.width) == (True, False, 32)
    assert (c.write, c.width, c.write_burst) == (True, 32, 256)
    assert rs.tree_bundles(ROOT, "posit") is None


def test_every_model_runs_and_only_int_is_final():
    for name in rs.MODELS:
        e = rs.estimate(name, 8, 8)
        assert e["provisional"] is not (ROOT / "hls/top" / f"gemm_{name}.cpp").is_file()  # final once the engine exists
        assert all(e[r] >= 0 for r in ("LUT", "FF", "DSP", "BRAM18"))
    # The multiplier-free formats must not spend DSPs in their PEs.
    for name in ("pot", "tr", "teq"):
        assert rs.estimate(name, 8, 8)["DSP"] < rs.estimate("int", 8, 8)["DSP"]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: rs.estimate("posit", 8, 8), "no resource model for engine 'posit'"),
        (lambda: rs.estimate("int", 0, 8), "rows must be a positive integer"),
        (lambda: rs.estimate("int", 8, True), "cols must be a positive integer"),
        (lambda: rs.estimate("int", 8, 8, a_bitz=9), "unknown parameter(s) for engine 'int': a_bitz"),
        (lambda: rs.estimate("int", 8, 8, acc_bits=0), "acc_bits must be a positive integer"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError) as exc:
        call()
    assert message in str(exc.value)


def test_width_parameters_change_the_estimate():
    narrow = rs.estimate("int", 8, 8, acc_bits=24)
    assert narrow["FF"] < rs.estimate("int", 8, 8)["FF"]


# --------------------------------------------------------------------------- CLI and reports


def test_main_table(capsys):
    assert rs.main(["--root", str(ROOT)]) == 0
    out = capsys.readouterr().out
    assert "XCZU7EV" in out and "gemm_int 8x8x256" in out and "230,400" in out and "used %" in out
    assert "provisional" not in out


def test_main_all_models_and_overrides(capsys):
    assert rs.main(["--all-models"]) == 0
    out = capsys.readouterr().out
    assert all(f"gemm_{m} 8x8x256" in out for m in rs.MODELS)
    assert ("provisional" in out) == any(provisional for _, _, provisional in rs.MODELS.values())
    assert (
        rs.main(["--root", str(ROOT), "--engine", "int", "--rows", "16", "--cols", "4", "--tile-k", "128", "--json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    (e,) = data["engines"]
    assert (e["rows"], e["cols"], e["tile_k"]) == (16, 4, 128)
    assert set(data["utilization"]) == set(rs.RESOURCES)


def test_main_errors(capsys):
    assert rs.main(["--engine", "posit"]) == 2
    assert "posit" in capsys.readouterr().err
    assert rs.main(["--engine", "int", "--rows", "0"]) == 2


CSYNTH = """<?xml version="1.0" encoding="UTF-8"?>
<profile>
  <RTLDesignHierarchy/>
  <AreaEstimates>
    <Resources><BRAM_18K>28</BRAM_18K><{dsp}>112</{dsp}><FF>12000</FF><LUT>9800</LUT><URAM>0</URAM></Resources>
    <AvailableResources><BRAM_18K>624</BRAM_18K><{dsp}>1728</{dsp}><FF>460800</FF><LUT>230400</LUT><URAM>96</URAM></AvailableResources>
  </AreaEstimates>
</profile>
"""


@pytest.mark.parametrize("dsp_tag", ["DSP", "DSP48E"])
def test_parse_csynth_and_compare(tmp_path, capsys, dsp_tag):
    xml = tmp_path / "csynth.xml"
    xml.write_text(CSYNTH.format(dsp=dsp_tag))
    rep = rs.parse_csynth_xml(xml)
    assert rep == {"LUT": 9800, "FF": 12000, "DSP": 112, "BRAM18": 28, "URAM": 0, "BRAM36": 14.0}
    assert rs.main(["--root", str(ROOT), "--engine", "int", "--compare", str(xml)]) == 0
    out = capsys.readouterr().out
    assert "csynth" in out and "DSP" in out and "ratio" in out
    rows = {r: (m, h, q) for r, m, h, q in rs.compare(rs.estimate("int", 8, 8), rep)}
    assert rows["DSP"][1] == 112 and rows["URAM"][2] is None


def test_compare_errors(tmp_path, capsys):
    bad = tmp_path / "bad.xml"
    bad.write_text("<profile/>")
    assert rs.main(["--engine", "int", "--compare", str(bad)]) == 2
    assert "AreaEstimates" in capsys.readouterr().err
    assert rs.main(["--all-models", "--compare", str(bad)]) == 2
