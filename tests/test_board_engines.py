"""Every engine (int, pot, tr, bfp, teq) through the board driver and the
simulated ZCU104: register lists and m_axi bundles equal to the HLS tops',
single calls bit for bit and cycle for cycle with the reference (the
engines' own edge and random cases, row tiling, both C-sim builds), whole
MLP and CNN artifacts in every format, and overlays that lack an engine."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from _board_support import FORMAT_SPECS, load_overlay, make_artifacts, require_pynq
from numpy.testing import assert_array_equal

require_pynq()

from termshift.backends.engines import get_engine
from termshift.board import packing
from termshift.board import regmap as rm
from termshift.board.driver import (
    HOST_ENGINES,
    BoardBackend,
    OverlayMismatch,
)
from termshift.board.simulated import ENGINE_AXI_BUNDLES, write_overlay

ENGINES = ("int", "pot", "tr", "bfp", "teq")
TOPS = Path(__file__).resolve().parents[1] / "hls" / "top"


# ------------------------------------------------------------------ against the HLS tops


def _top_signature(engine: str) -> list[tuple[str, str, int]]:
    """(name, kind, bits) of each argument of hls/top/gemm_<engine>.cpp's top, parsed from the C++."""
    src = (TOPS / f"gemm_{engine}.cpp").read_text()
    m = re.search(rf"\bvoid\s+gemm_{engine}\s*\((.*?)\)\s*\{{", src, re.DOTALL)
    assert m, f"no top function gemm_{engine} in {TOPS}"
    out = []
    for param in m.group(1).split(","):
        name = re.findall(r"[A-Za-z_]\w*", param)[-1]
        if "*" in param:
            out.append((name, "ptr", 64))
        elif "&" in param:
            assert "uint64_t" in param, param
            out.append((name, "out", 64))
        else:
            assert re.search(r"\b(unsigned|int32_t|uint32_t|int)\b", param), param
            out.append((name, "in", 32))
    return out


@pytest.mark.parametrize("engine", ENGINES)
def test_register_lists_and_bundles_are_the_hls_tops(engine):
    assert rm.TOP_ARGS[f"gemm_{engine}"] == tuple(_top_signature(engine))
    src = (TOPS / f"gemm_{engine}.cpp").read_text()
    pragmas = re.findall(r"#pragma HLS INTERFACE mode=(\w+) port=(\w+)(?: bundle=(\w+))?", src)
    kinds = {port: mode for mode, port, _ in pragmas}
    for name, kind, _ in rm.TOP_ARGS[f"gemm_{engine}"]:
        assert kinds[name] == ("m_axi" if kind == "ptr" else "s_axilite"), name
    assert sorted(ENGINE_AXI_BUNDLES[engine]) == sorted({b for mode, _, b in pragmas if mode == "m_axi"})
    # The driver's geometry is the header's.
    header = (TOPS / f"gemm_{engine}.h").read_text()
    geom = {k: int(re.search(rf"#define GEMM_{engine.upper()}_{k.upper()} (\d+)", header).group(1))
            for k in ("rows", "cols", "tile_k")}
    g = HOST_ENGINES[engine]
    assert (g.rows, g.cols, g.tile_k) == (geom["rows"], geom["cols"], geom["tile_k"])


def test_vitis_renamed_group_register_is_found(overlay_dir):
    # `group` is a VHDL reserved word: Vitis may export it as group_r.
    regs = dict(rm.read_hwh(overlay_dir / "termshift.hwh")["gemm_tr_0"].registers)
    regs["group_r"] = regs.pop("group")
    assert rm.from_registers("gemm_tr", regs).args == rm.vitis_layout("gemm_tr").args


# ------------------------------------------------------------------ single calls


def _check_cases(be: BoardBackend, engine: str, reference, cases) -> int:
    n = 0
    for name, ops in cases:
        got, want = be.run(engine, **ops), reference.run(engine, **ops)
        assert_array_equal(got.out, want.out, err_msg=f"{engine}: {name}")
        assert got.cycles == want.cycles, f"{engine}: {name}: cycles {got.cycles} != {want.cycles}"
        n += 1
    return n


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_call_equals_the_reference(overlay_dir, reference, engine):
    """The engine's own edge cases (length 1, ragged K, extreme codes, largest
    K, zero operands, requant ties) and random calls, through registers and DMA
    buffers."""
    ol, dev = load_overlay(overlay_dir)
    be = ol.backend(engine)
    n = _check_cases(be, engine, reference, get_engine(engine).cases(11, 6))
    assert dev.engine(f"gemm_{engine}_0").calls == be.stats.calls == n > 10
    assert all(e.calls == 0 for cell, e in dev.engines.items() if cell != f"gemm_{engine}_0")


@pytest.mark.parametrize("engine", ENGINES)
def test_row_tiling_and_exact_build(overlay_dir, reference, engine):
    """Buffers too small for the batch: M is split into whole row tiles and
    the summed cycles still equal the reference's; the ap_types build agrees."""
    ol, _ = load_overlay(overlay_dir, build="exact")
    be = ol.backend(engine)
    be.allocate_io(a_bytes=8 * 700, c_words=8 * 40)
    rng = np.random.default_rng(7)
    cases = []
    for i, (name, ops) in enumerate(get_engine(engine).cases(5, 4)):
        if "random" in name and np.asarray(ops["a"]).shape[1] <= 700 and ops["bias"].size <= 40:
            m = int(rng.integers(17, 40))
            a = np.asarray(ops["a"])
            ops = {**ops, "a": np.resize(a, (m, a.shape[1])).astype(a.dtype)}
            cases.append((name, ops))
    calls = _check_cases(be, engine, reference, cases)
    assert calls >= 2 and be.stats.calls > calls  # tiled


def test_preloaded_constants_are_not_packed_again(overlay_dir, reference):
    ol, _ = load_overlay(overlay_dir)
    be = ol.backend("bfp")
    _, ops = next(iter(get_engine("bfp").cases(1, 0)))
    consts = {k: v for k, v in ops.items() if k != "a"}
    be.preload("bfp", a=ops["a"], **consts)
    got = be.run("bfp", **ops)
    assert not be._scratch  # nothing packed into scratch buffers: the preloaded ones were used
    assert_array_equal(got.out, reference.run("bfp", **ops).out)
    changed = {**ops, "bias": ops["bias"] + 1}  # a new array is new constants
    assert_array_equal(be.run("bfp", **changed).out, reference.run("bfp", **changed).out)
    assert set(be._scratch) == {"W", "eref", "bias", "multiplier"}
    with pytest.raises(ValueError, match="needs a="):
        be.preload("bfp", **consts)  # packed rows do not give K


def test_tr_unused_pointer_registers_are_zero(overlay_dir, reference):
    ol, _ = load_overlay(overlay_dir)
    eng = ol.engine("tr")
    be = ol.backend("tr")
    by_mode = {}
    for name, ops in get_engine("tr").cases(2, 3):
        by_mode.setdefault("w" in ops, (name, ops))
    r = eng.regmap

    def word(arg):
        return eng.read_word(r[arg].words[0]) | eng.read_word(r[arg].words[1]) << 32

    for conventional, (name, ops) in sorted(by_mode.items()):
        assert_array_equal(be.run("tr", **ops).out, reference.run("tr", **ops).out)
        unused = ("Wt", "Wn") if conventional else ("W",)
        used = ("W",) if conventional else ("Wt", "Wn")
        assert all(word(u) == 0 for u in unused) and all(word(u) != 0 for u in used), name
        assert eng.read_word(r["mode"].words[0]) == (0 if conventional else 1)
    assert len(by_mode) == 2


def test_backend_refuses_another_engines_operands(overlay_dir):
    ol, _ = load_overlay(overlay_dir)
    with pytest.raises(OverlayMismatch, match="drives the 'pot' engine, not 'int'"):
        ol.backend("pot").run("int", a=np.ones((1, 2), np.uint8), w=np.ones((1, 2), np.int8))
    with pytest.raises(OverlayMismatch, match="no driver for engine 'fp8'"):
        ol.backend("int").run("fp8", a=np.ones((1, 2), np.uint8))
    with pytest.raises(ValueError, match="emax"):  # validated by the engine's own EngineDef
        ol.backend("pot").run("pot", a=np.ones((1, 2), np.uint8), w=np.array([[3, 0]], np.int8), bits=4, emax=1)


def test_bad_register_values_are_refused_by_the_simulated_engine(overlay_dir):
    ol, dev = load_overlay(overlay_dir)
    eng = ol.engine("teq")
    buf = __import__("pynq").allocate((4096,), np.uint8, target=dev)
    ptrs = {a: buf.device_address for a, kind, _ in rm.TOP_ARGS["gemm_teq"] if kind == "ptr"}
    with pytest.raises(Exception, match="cannot run these register values.*w_bits=9"):
        eng.execute(**ptrs, M=1, N=1, K=1, w_bits=9, lw=1, la=1, shift=0, lo=0, hi=0, flags=2)
    assert eng.is_idle()


# ------------------------------------------------------------------ whole models


@pytest.fixture(scope="module")
def format_artifacts(tmp_path_factory):
    d = tmp_path_factory.mktemp("format-artifacts")
    return {e: make_artifacts(d, samples=12, engine=e) for e in ENGINES if e != "int"}


@pytest.mark.parametrize("model", ["mlp", "cnn"])
@pytest.mark.parametrize("engine", [e for e in ENGINES if e != "int"])
def test_model_in_every_format_equals_the_reference(format_artifacts, overlay_dir, reference, engine, model):
    ol, dev = load_overlay(overlay_dir)
    bm = ol.load_model(format_artifacts[engine][model], batch_size=5)
    assert bm.engine_name == engine and bm.graph.fmt.startswith(engine)
    x = bm.expected["input"]
    got = bm.run(x, keep_raw=True)
    want = bm.graph.run(x, reference, batch_size=bm.batch_size, keep_raw=True)
    assert_array_equal(got.output, want.output)
    assert got.raw.keys() == want.raw.keys()
    for name in want.raw:
        assert_array_equal(got.raw[name], want.raw[name])
    assert got.cycles == want.cycles
    check = bm.check()
    assert check["identical"] and check["samples"] == 12 and check["engine"] == engine
    assert dev.engine(f"gemm_{engine}_0").calls == bm.backend.stats.calls > 0
    assert not bm.backend._scratch  # every layer's constants were preloaded, none packed per call


def test_overlay_without_the_models_engine_is_refused(format_artifacts, tmp_path):
    write_overlay(tmp_path / "int_only", engines=("int",))
    ol, _ = load_overlay(tmp_path / "int_only")
    assert ol.engine_names == ["int"]
    with pytest.raises(OverlayMismatch, match=r"mlp_pot.tsm is a pot:bits=4\S* model: it needs engine 'pot' \(gemm_pot\) but the overlay has "
                                              r"only int; build an overlay with TERMSHIFT_ENGINES including pot"):
        ol.load_model(format_artifacts["pot"]["mlp"])
    # The manifest promises teq, but the .hwh (from another build) has no such IP.
    write_overlay(tmp_path / "stale", engines=("int", "teq"), omit_from_hwh=("teq",))
    with pytest.raises(OverlayMismatch, match="engine 'teq' at cell 'gemm_teq_0' but the .hwh has no such IP"):
        load_overlay(tmp_path / "stale")


def test_cli_runs_every_format(format_artifacts, capsys):
    from termshift.board.cli import main

    for engine in ("tr", "teq"):
        assert main(["board", "run", "--simulated", str(format_artifacts[engine]["cnn"])]) == 0
        out = capsys.readouterr().out
        assert f"on engine '{engine}'" in out and "IDENTICAL" in out
    assert main(["board", "throughput", "--simulated", "--inferences", "10", "--batch", "4",
                 str(format_artifacts["pot"]["mlp"])]) == 0
    assert "on 'pot'" in capsys.readouterr().out


def test_cli_simulate_picks_engines(tmp_path, capsys):
    import json

    from termshift.board.cli import main

    assert main(["board", "simulate", "--engines", "tr,int", str(tmp_path / "two")]) == 0
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert [e["name"] for e in manifest["engines"]] == ["int", "tr"]
    assert "engines int, tr" in capsys.readouterr().out
    assert main(["board", "simulate", "--engines", "int,fp8", str(tmp_path / "bad")]) == 2
    assert "fp8" in capsys.readouterr().err


def test_packing_covers_every_engine_and_spec():
    assert set(packing.BOARD_ENGINES) == set(ENGINES) == set(FORMAT_SPECS) == set(ENGINE_AXI_BUNDLES)
    for e in ENGINES:
        ptrs = {a for a, kind, _ in rm.TOP_ARGS[f"gemm_{e}"] if kind == "ptr"}
        _, ops = next(iter(get_engine(e).cases(0, 0)))
        be = packing.board_engine(e)
        args = be.validate(**ops)
        assert set(be.consts(args)) <= ptrs - {"A", "C"}
        ins = {a for a, kind, _ in rm.TOP_ARGS[f"gemm_{e}"] if kind == "in"}
        assert set(be.scalars(args)) == ins - {"M"}
