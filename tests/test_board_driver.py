"""The board driver against the simulated ZCU104: artifact -> driver ->
simulated registers and DMA buffers -> C-sim, bit for bit with the reference;
offsets from the .hwh; timeouts with a register dump; manifest checks; the
Vitis control-register protocol; throughput_test; the CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from _board_support import load_overlay, make_artifacts, require_pynq
from numpy.testing import assert_array_equal

require_pynq()

import pynq
from termshift.board import regmap as rm
from termshift.board.driver import (
    BoardError,
    EngineTimeout,
    HostExpectation,
    OverlayMismatch,
    TermshiftOverlay,
)
from termshift.board.simulated import SimulatedZCU104, read_bit_payload, write_overlay
from termshift.formats.uniform import Requant


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return make_artifacts(tmp_path_factory.mktemp("artifacts"))


@pytest.mark.parametrize("build", ["fast", "exact"])
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_artifact_on_simulated_board_equals_reference(artifacts, overlay_dir, reference, model, build):
    ol, dev = load_overlay(overlay_dir, build=build)
    bm = ol.load_model(artifacts[model], batch_size=7)  # batches that do not divide the 24 samples
    x = bm.expected["input"]
    got = bm.run(x, keep_raw=True)
    want = bm.graph.run(x, reference, batch_size=bm.batch_size, keep_raw=True)
    assert_array_equal(got.output, want.output)
    assert got.raw.keys() == want.raw.keys()
    for name in want.raw:
        assert_array_equal(got.raw[name], want.raw[name])
    assert got.cycles == want.cycles  # the engine's cycles register equals the cycle model
    check = bm.check()
    assert check["identical"] and check["mismatching_values"] == 0 and check["samples"] == 24
    assert dev.engine("gemm_int_0").calls == bm.backend.stats.calls > 0
    assert ol.gemm_int_0.poll_count >= bm.backend.stats.calls  # it polled, the engine was not instant


def _random_case(rng, m, n, k, signed_a, raw):
    a = rng.integers(-128, 128, (m, k), dtype=np.int8) if signed_a else rng.integers(0, 256, (m, k), dtype=np.uint8)
    w = rng.integers(-128, 128, (n, k), dtype=np.int8)
    bias = rng.integers(-50_000, 50_000, n).astype(np.int32)
    rq = None if raw else Requant(rng.integers(0, 2**31 - 1, n).astype(np.int32), int(rng.integers(0, 63)),
                                 int(rng.integers(-300, 0)), int(rng.integers(0, 300)))
    return a, w, bias, rq


def test_backend_gemm_bit_exact_with_row_tiling(overlay_dir, reference):
    ol, _ = load_overlay(overlay_dir)
    be = ol.backend("int")
    be.allocate_io(a_bytes=8 * 300, c_words=8 * 40)  # small: M is split into 8-row tiles
    rng = np.random.default_rng(5)
    for m, n, k in [(1, 1, 1), (37, 19, 300), (8, 40, 300), (21, 3, 7), (64, 10, 2)]:
        for signed_a in (False, True):
            for raw in (False, True):
                if k > 300 or n > 40:
                    continue
                a, w, bias, rq = _random_case(rng, m, n, k, signed_a, raw)
                got, want = be.gemm_int(a, w, bias, rq), reference.gemm_int(a, w, bias, rq)
                assert_array_equal(got.out, want.out)
                assert got.cycles == want.cycles
    assert be.stats.calls > 5  # tiling happened


def test_sync_is_needed_buffers_are_not_coherent(overlay_dir):
    _, dev = load_overlay(overlay_dir)
    buf = pynq.allocate((16,), np.int32, target=dev)
    buf[:] = np.arange(16)
    assert not dev.ddr_read(buf.device_address, 16, np.int32).any()  # still in the CPU cache
    buf.sync_to_device()
    assert_array_equal(dev.ddr_read(buf.device_address, 16, np.int32), np.arange(16))
    dev.ddr_write(buf.device_address, np.full(16, 7, np.int32))
    assert buf[0] == 0
    buf.sync_from_device()
    assert_array_equal(buf, np.full(16, 7))


def test_offsets_are_read_from_the_hwh(tmp_path, reference):
    # An engine whose registers are not where the Vitis 2022+ rule puts them
    # (as an older Vitis would lay them out: every argument on a 16-byte
    # boundary). Only a driver that reads the .hwh can drive it.
    base = rm.vitis_layout("gemm_int")
    args, off = {}, 0x10
    for a in base.args.values():
        words = tuple(off + 4 * i for i in range(len(a.words)))
        ctrl = off + 4 * len(words) if a.kind == "out" else None
        args[a.name] = rm.ArgRegister(a.name, a.kind, a.bits, words, ctrl)
        off += 16
    shifted = rm.RegisterMap("gemm_int", args)
    write_overlay(tmp_path, layouts={"int": shifted})
    ol, _ = load_overlay(tmp_path)
    eng = ol.engine("int")
    assert eng.regmap.source == "hwh"
    assert eng.regmap["cycles"].words == shifted["cycles"].words != base["cycles"].words
    assert ol.ip_dict["gemm_int_0"]["registers"]["M"]["address_offset"] == shifted["M"].words[0]
    rng = np.random.default_rng(1)
    a, w, bias, rq = _random_case(rng, 13, 11, 50, False, False)
    assert_array_equal(ol.backend().gemm_int(a, w, bias, rq).out, reference.gemm_int(a, w, bias, rq).out)


def test_stale_hwh_is_caught(tmp_path):
    # The .hwh describes the standard layout but the engine decodes another:
    # the driver writes pointers where the engine does not look.
    base = rm.vitis_layout("gemm_int")
    moved = rm.RegisterMap("gemm_int", {k: rm.ArgRegister(a.name, a.kind, a.bits, tuple(o + 0x100 for o in a.words),
                                                          None if a.ctrl is None else a.ctrl + 0x100)
                                        for k, a in base.args.items()})
    write_overlay(tmp_path, layouts={"int": moved}, hwh_layouts={"int": base})
    ol, _ = load_overlay(tmp_path)
    a = np.ones((2, 3), np.uint8)
    w = np.ones((2, 3), np.int8)
    with pytest.raises(Exception, match="outside the simulated DDR|cannot run"):
        ol.backend().gemm_int(a, w)


def test_hwh_without_register_map_uses_checked_fallback(tmp_path, reference):
    write_overlay(tmp_path, hwh_registers=False)
    with pytest.warns(UserWarning, match="no register map"):
        ol, _ = load_overlay(tmp_path)
    assert ol.engine("int").regmap.source == "fallback"
    a, w, bias, rq = _random_case(np.random.default_rng(2), 9, 5, 20, True, False)
    assert_array_equal(ol.backend().gemm_int(a, w, bias, rq).out, reference.gemm_int(a, w, bias, rq).out)


def test_fallback_probe_rejects_a_non_idle_or_foreign_block():
    regmap = rm.vitis_layout("gemm_int")
    with pytest.raises(rm.RegisterMapError, match="ap_idle clear"):
        rm.check_probe(regmap, lambda off: 0x1)
    with pytest.raises(rm.RegisterMapError, match="not an HLS"):
        rm.check_probe(regmap, lambda off: 0xFFFFFFFF)
    rm.check_probe(regmap, lambda off: 0x4)


def test_hung_engine_times_out_with_a_register_dump(overlay_dir):
    ol, dev = load_overlay(overlay_dir, timeout_s=0.05)
    dev.engine("gemm_int_0").hung = True
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    w = np.ones((5, 4), np.int8)
    with pytest.raises(EngineTimeout) as info:
        ol.backend().gemm_int(a, w)
    msg = str(info.value)
    assert "ap_idle did not rise within 0.05 s" in msg and "gemm_int_0" in msg
    assert "0x00 CTRL" in msg and "(ap_start)" in msg  # started, never idle again
    dump = {line.split()[1]: int(line.split()[2], 16) for line in msg.splitlines() if line.startswith("  0x")}
    assert (dump["M"], dump["N"], dump["K"], dump["flags"]) == (3, 5, 4, 3)  # uint8 A, raw output
    assert isinstance(info.value, TimeoutError)
    with pytest.raises(BoardError, match="busy before a new call"):
        ol.backend().gemm_int(a, w)


def test_control_register_protocol(overlay_dir):
    ol, _ = load_overlay(overlay_dir, latency_polls=1)
    eng = ol.engine("int")
    r = eng.regmap
    assert eng.read_word(r.ctrl) == 0x4  # idle after reset
    eng.write_word(r.ctrl, 0x80)  # auto_restart is read/write
    assert eng.read_word(r.ctrl) & 0x80
    eng.write_word(r.ctrl, 0x0)
    eng.write_word(r.ier, 0x1)
    eng.write_word(r.gie, 0x1)
    be = ol.backend()
    be.gemm_int(np.ones((2, 2), np.uint8), np.ones((2, 2), np.int8))
    # the driver's poll read ap_done/ap_ready: they clear on read; ap_vld too
    ctrl = eng.read_word(r.ctrl)
    assert ctrl & 0x4 and not ctrl & 0x2 and not ctrl & 0x8 and not ctrl & 0x1
    assert eng.read_word(r["cycles"].ctrl) == 0
    assert ctrl & (1 << rm.INTERRUPT)  # GIE and IER set, ap_done latched in ISR
    assert eng.read_word(r.isr) == 0x1
    eng.write_word(r.isr, 0x1)  # toggle on write clears it
    assert eng.read_word(r.isr) == 0x0
    # a completed call seen by a raw poll: done and ready set once, then cleared
    eng.write_word(r.ctrl, 0x1)
    seen = [eng.read_word(r.ctrl) for _ in range(3)]
    assert seen[0] & 0x1 and not seen[0] & 0x4  # busy for latency_polls reads
    assert seen[1] & 0x6 == 0x6 and seen[2] & 0x2 == 0


def test_throughput_test_returns_the_figures(artifacts, overlay_dir):
    ol, _ = load_overlay(overlay_dir)
    bm = ol.load_model(artifacts["cnn"], batch_size=16)
    t = bm.throughput_test(inferences=40)
    assert t["inferences"] == 40 and t["batch_size"] == 16 and t["engine"] == "int"
    assert t["inferences_per_s"] > 0 and t["seconds"] > 0
    assert set(t["stage_ms"]) == {"pack", "copy", "execute", "unpack", "host"}
    assert all(v >= 0 for v in t["stage_ms"].values())
    assert t["engine_calls"] == 3 * len(list(bm.graph.gemm_nodes()))  # one call per layer per batch
    assert t["cycles_per_inference"] > 0
    assert t["modeled_engine_ms_per_inference"] > 0 and t["clock_mhz"] == pytest.approx(99.999)
    json.dumps(t)


def _mismatch(tmp_path, **overrides):
    write_overlay(tmp_path, manifest_overrides=overrides)
    dev = SimulatedZCU104()
    with pytest.raises(OverlayMismatch) as info:
        TermshiftOverlay(str(tmp_path / "termshift.bit"), device=dev)
    assert not dev.engines and dev.bitfile_name is None  # refused before anything was downloaded
    return str(info.value)


def test_manifest_mismatches_are_refused_with_clear_messages(tmp_path):
    msg = _mismatch(tmp_path / "a", engines={"int": {"rows": 16}})
    assert "is a 16x8 array" in msg and "models 8x8" in msg and "gemm_int.h" in msg
    msg = _mismatch(tmp_path / "c", version="0.9.0")
    assert "termshift 0.9.0" in msg and "Rebuild the overlay" in msg
    assert "board 'pynqz2'" in _mismatch(tmp_path / "d", board="pynqz2")
    assert "manifest_version" in _mismatch(tmp_path / "e", manifest_version=2)
    write_overlay(tmp_path / "f", engines=("int",))
    with pytest.raises(OverlayMismatch, match=r"needs engine\(s\) pot"):
        TermshiftOverlay(str(tmp_path / "f" / "termshift.bit"), device=SimulatedZCU104(),
                         expect=HostExpectation().requiring("pot"))
    bit = tmp_path / "f" / "termshift.bit"
    bit.write_bytes(bit.read_bytes()[:-4] + b"\0\0\0\1")
    with pytest.raises(OverlayMismatch, match="sha256"):
        TermshiftOverlay(str(bit), device=SimulatedZCU104())
    (tmp_path / "f" / "manifest.json").unlink()
    with pytest.raises(OverlayMismatch, match="no overlay manifest"):
        TermshiftOverlay(str(bit), device=SimulatedZCU104())


def test_patch_version_difference_is_a_note(tmp_path):
    import termshift

    major, minor, _ = termshift.__version__.split(".")[:3]
    write_overlay(tmp_path, manifest_overrides={"version": f"{major}.{minor}.99"})
    ol, _ = load_overlay(tmp_path)
    assert any("same minor version" in n for n in ol.notes)


def test_engine_address_disagreeing_with_hwh_is_refused(tmp_path):
    # Engines sit in name order (bfp, int, ...): int's control block is the second, at 0xA0010000.
    write_overlay(tmp_path, manifest_overrides={"engines": {"int": {"control_base": 0xA005_0000}}})
    from termshift.hls import manifest as mm

    m = json.loads((tmp_path / "manifest.json").read_text())
    mm.validate(m)
    with pytest.raises(OverlayMismatch, match="gemm_int_0': the .hwh maps it at 0xA0010000"):
        TermshiftOverlay(str(tmp_path / "termshift.bit"), device=SimulatedZCU104())


def test_hwh_parsers_agree(overlay_dir):
    from pynq.pl_server.hwh_parser import _HWHUltrascale

    mine = rm.read_hwh(overlay_dir / "termshift.hwh")
    engines = ["bfp", "int", "pot", "teq", "tr"]
    assert list(mine) == [f"gemm_{e}_0" for e in engines]
    legacy = _HWHUltrascale(str(overlay_dir / "termshift.hwh"))
    ol, _ = load_overlay(overlay_dir)
    for i, e in enumerate(engines):
        top, cell = f"gemm_{e}", f"gemm_{e}_0"
        ip = mine[cell]
        assert (ip.phys_addr, ip.addr_range, ip.vlnv) == (0xA000_0000 + i * 0x1_0000, 0x1_0000, f"termshift:hls:{top}:1.0")
        for regs in (legacy.ip_dict[cell]["registers"], ol.ip_dict[cell]["registers"]):
            assert {k: v["address_offset"] for k, v in regs.items()} == \
                {k: v["address_offset"] for k, v in ip.registers.items()}
            assert rm.from_registers(top, regs) == rm.from_registers(top, ip.registers)
        assert rm.from_registers(top, ip.registers).args == rm.vitis_layout(top).args
        assert ol.engine(e).regmap.source == "hwh"
    assert legacy.clock_dict[0]["enable"] == 1


def test_bitstream_header_is_a_real_bit_file(overlay_dir):
    from pynq.pl_server.embedded_device import parse_bit_header

    head = parse_bit_header((overlay_dir / "termshift.bit").read_bytes())
    assert head["design"] == "termshift" and head["part"] == "xczu7ev-ffvc1156-2-e" and head["version"] == "Version=2023.1"
    assert read_bit_payload(overlay_dir / "termshift.bit").startswith(b"TERMSHIFT-SIMULATED-OVERLAY")


def test_pl_clock_is_set_through_the_ps_registers(tmp_path):
    write_overlay(tmp_path, clock_mhz=150.0)
    ol, _ = load_overlay(tmp_path)
    assert pynq.Clocks.fclk0_mhz == pytest.approx(1499.985 / 10)
    assert ol.clock_mhz == pytest.approx(149.9985)


def test_cli(artifacts, overlay_dir, tmp_path, capsys):
    from termshift.board.cli import main

    assert main(["board", "run", "--simulated", str(artifacts["mlp"])]) == 0
    assert "IDENTICAL" in capsys.readouterr().out
    out_json = tmp_path / "t.json"
    assert main(["board", "throughput", "--simulated", "--overlay", str(overlay_dir / "termshift.bit"),
                 "--inferences", "20", "--batch", "8", "--json", str(out_json), str(artifacts["cnn"])]) == 0
    assert json.loads(out_json.read_text())["inferences"] == 20
    assert "inferences/s" in capsys.readouterr().out
    csv = tmp_path / "p.csv"
    assert main(["board", "power", "--simulated", "--idle-s", "0.2", "--active-s", "0.2", "--interval", "0.02",
                 "--csv", str(csv), str(artifacts["mlp"])]) == 0
    out = capsys.readouterr().out
    assert "mJ" in out and "inferences/J" in out and csv.read_text().startswith(",Mark,")
    assert main(["board", "simulate", str(tmp_path / "sim")]) == 0
    assert (tmp_path / "sim" / "manifest.json").is_file()
    assert main(["board", "run", "--overlay", str(tmp_path / "nothing.bit"), str(artifacts["mlp"])]) == 2
    assert "not found" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["board", "power", str(artifacts["mlp"]), "--simulated", "--rails", "12V,VCCAUX"]) == 2
    assert "VCCAUX not found" in capsys.readouterr().err
