"""The BFP engine: C-sim (fast and exact builds) == numpy reference bit for
bit, cycles == the cycle model, the testbench's golden vectors are current,
and the `bfp` GemmFormat lowers, runs and costs a model under the contract."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from termshift.backends.engine_bfp import BFP_ENGINE, VECTORS, bfp_cycles, edge_cases, random_case, render_vectors
from termshift.backends.engines import engine_names
from termshift.formats import bfp, parse

ROOT = Path(__file__).resolve().parents[1]


def run_all(ops, *backends):
    return [b.run("bfp", **ops) for b in backends]


@pytest.mark.parametrize("case", list(edge_cases(np.random.default_rng(11))), ids=lambda c: c[0])
def test_edge_cases_agree(case, reference, csim_fast, csim_exact):
    want, fast, exact = run_all(case[1], reference, csim_fast, csim_exact)
    assert_array_equal(fast.out, want.out)
    assert_array_equal(exact.out, want.out)
    assert fast.cycles == exact.cycles == want.cycles


# Shapes straddle the 8 x 8 array, the 256-deep K tile and every block size.
@given(m=st.integers(1, 20), n=st.integers(1, 20), k=st.integers(1, 600), seed=st.integers(0, 2**32 - 1))
def test_random_gemms_agree(m, n, k, seed, reference, csim_fast, csim_exact):
    name, ops = random_case(np.random.default_rng(seed), m, n, k)
    want, fast, exact = run_all(ops, reference, csim_fast, csim_exact)
    assert_array_equal(fast.out, want.out)
    assert_array_equal(exact.out, want.out)
    assert fast.cycles == exact.cycles == bfp_cycles(m, n, k)


def test_edge_cases_reach_what_they_claim(reference):
    cases = dict(edge_cases(np.random.default_rng(11)))
    assert reference.run("bfp", **cases["drain ties round up"]).out.tolist() == [[1, 0, 2]]
    assert reference.run("bfp", **cases["floor visible at the drain"]).out.tolist() == [[-1, 0, 1]]
    big = cases["max K uint8 255 x -128"]
    out = reference.run("bfp", **big).out
    assert (out == -big["a"].shape[1] * 255 * 128).all() and out.min() < -(2**31) + 2**16
    assert bfp.max_reduction_length(True, bfp.BfpParams(4, 8, 8)) == big["a"].shape[1]


def test_engine_geometry_matches_python_model(csim_fast):
    info = csim_fast._ext.ENGINES["bfp"]
    assert (info["rows"], info["cols"], info["tile_k"]) == (BFP_ENGINE.rows, BFP_ENGINE.cols, BFP_ENGINE.tile_k)
    assert (info["acc_bits"], info["frac_bits"], info["max_align"]) == (bfp.ACC_BITS, bfp.FRAC_BITS, bfp.MAX_SHIFT)
    assert info["max_shift"] == 62
    assert "bfp" in engine_names()


def test_cycle_model_by_hand():
    # The block-dot PE aligns a block in the step of its last multiply: the
    # INT8 array's count. 8 x 8 x 256: 256 steps + 14 fill/drain + 64 drain.
    assert bfp_cycles(8, 8, 256) == 256 + 14 + 64
    assert bfp_cycles(9, 16, 257) == 4 * (257 + 2 * 14 + 64)


def test_csim_validates_like_the_reference(csim_fast):
    p = bfp.BfpParams(16, 4, 8)
    w = bfp.pack(np.zeros((1, 1), np.uint8), np.zeros((1, 10), np.int8), p)
    with pytest.raises(TypeError, match="int8 or uint8"):
        csim_fast.run("bfp", a=np.ones((2, 10)), w=w, eref=np.zeros(1, np.uint8), block=16, mantissa=4)
    with pytest.raises(ValueError, match="w rows must be"):
        csim_fast.run("bfp", a=np.ones((2, 11), np.int8), w=w, eref=np.zeros(1, np.uint8), block=16, mantissa=4)


def test_extension_guards_memory_even_without_host_checks(csim_fast):
    ext = csim_fast._ext
    a = np.ones((2, 10), np.uint8)
    w = np.zeros((3, bfp.BfpParams(16, 4, 8).row_bytes(10)), np.uint8)
    e = np.zeros(3, np.uint8)
    z = np.zeros(3, np.int32)
    with pytest.raises(ValueError, match="w rows do not match"):
        ext.gemm_bfp("fast", a, w[:, :-1], e, z, z, 4, 4, 8, 0, 0, 0, 2)
    with pytest.raises(ValueError, match="block_log2 out of range"):
        ext.gemm_bfp("fast", a, w, e, z, z, 8, 4, 8, 0, 0, 0, 2)
    with pytest.raises(ValueError, match="m_bits out of range"):
        ext.gemm_bfp("fast", a, w, e, z, z, 4, 9, 8, 0, 0, 0, 2)
    with pytest.raises(ValueError, match="eref must have N"):
        ext.gemm_bfp("fast", a, w, e[:2], z, z, 4, 4, 8, 0, 0, 0, 2)
    with pytest.raises(ValueError, match="build must be"):
        ext.gemm_bfp("slow", a, w, e, z, z, 4, 4, 8, 0, 0, 0, 2)


def test_committed_vectors_are_current():
    committed = (ROOT / VECTORS).read_text()
    assert committed == render_vectors(), "regenerate with: python -m termshift.backends.engine_bfp"


def test_vectors_cover_the_edges():
    text = render_vectors()
    for name in ("length 1", "slice starts mid-byte B=128 e=5", "alignment shifts 0..255", "floor visible at the drain",
                 "drain ties round up", "quantized floats B64m3e5", "all negative", "mantissa 2 bits"):
        assert f'"{name}"' in text


# --------------------------------------------------------------------------- the GemmFormat


def _tiny_model():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 20), nn.ReLU(), nn.Linear(20, 5)).eval()


def test_lowered_graph_runs_the_same_on_every_backend(reference, csim_fast, csim_exact, tmp_path):
    from termshift.nn.artifact import load_artifact, save_artifact
    from termshift.nn.lower import lower

    x = np.random.default_rng(0).random((30, 1, 8, 8)).astype(np.float32)
    graph = lower(_tiny_model(), x, "bfp:block=16,mantissa=5")
    ref = graph.run(x, reference, keep_raw=True)
    for be in (csim_fast, csim_exact):
        got = graph.run(x, be, keep_raw=True)
        for k in ref.raw:
            assert_array_equal(got.raw[k], ref.raw[k])
        assert got.cycles == ref.cycles
    loaded, _ = load_artifact(save_artifact(graph, tmp_path / "m.tsm"))
    assert_array_equal(loaded.run(x, reference).output, ref.output)


def test_lowered_graph_tracks_the_float_model():
    import torch

    from termshift.backends import get_backend
    from termshift.nn.lower import lower

    model = _tiny_model()
    x = np.random.default_rng(1).random((40, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    errs = {}
    for fmt in ("bfp:preset=mxint8", "bfp:block=16,mantissa=4", "bfp:block=128,mantissa=2"):
        out = lower(model, x, fmt).run(x, get_backend("reference")).output
        errs[fmt] = np.abs(out - want).max() / np.abs(want).max()
    assert errs["bfp:preset=mxint8"] < 0.02
    assert errs["bfp:preset=mxint8"] < errs["bfp:block=16,mantissa=4"] < errs["bfp:block=128,mantissa=2"]


def test_cost_charges_packed_bits_and_native_ops():
    from termshift.energy.model import summarize
    from termshift.nn.lower import lower

    x = np.random.default_rng(0).random((10, 1, 8, 8)).astype(np.float32)
    g4 = lower(_tiny_model(), x, "bfp:block=16,mantissa=4")
    g8 = lower(_tiny_model(), x, "bfp:block=16,mantissa=8")
    fc1 = [c for c in g4.costs() if c.name == "fc1"][0]
    p = bfp.BfpParams(16, 4, 8)
    assert fc1.weight_bits == 20 * (p.row_bytes(64) * 8 + 8) + 20 * 32  # packed rows + anchors + int32 bias
    assert fc1.bits_per_weight == 4.5
    assert fc1.ops == {"bfp_pp_rows": 20 * 64 * 4, "bfp_block_adds": 20 * 64, "bfp_align_adds": 20 * 5, "requants": 20}
    e4, e8 = summarize(g4.costs())["total"], summarize(g8.costs())["total"]
    assert e4["weight_bits"] < e8["weight_bits"] and e4["energy_j"] < e8["energy_j"]


def test_search_spec_needs_the_optimizer():
    from termshift.nn.lower import lower

    x = np.random.default_rng(0).random((10, 1, 8, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="bfp:search chooses"):
        lower(_tiny_model(), x, parse("bfp:search=on"))
