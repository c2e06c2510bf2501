"""The `bfp` format: spec strings, the shared-exponent quantizer (OCP MX
MXINT8 included), the packed bit-stream, and the reference GEMM against a
plain Python-int model of docs/formats/bfp.md."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from termshift.formats import bfp, parse
from termshift.formats.uniform import Requant


def P(block=32, mantissa=8, e_bits=8):
    return bfp.BfpParams(block, mantissa, e_bits)


# --------------------------------------------------------------------------- spec strings


def test_spec_defaults_are_mxint8_and_roundtrip():
    spec = parse("bfp")
    assert bfp.params_of(spec) == P(32, 8, 8)
    assert bfp.params_of(parse("bfp:preset=mxint8")) == P(32, 8, 8)
    spec = parse("bfp:block=16,mantissa=4")
    assert bfp.params_of(spec) == P(16, 4, 8)
    assert parse(str(spec)) == spec
    assert P(16, 4, 8).spec() == "bfp:block=16,mantissa=4,e_bits=8"
    assert bfp.params_of(parse(P(64, 3, 5).spec())) == P(64, 3, 5)


@pytest.mark.parametrize("text, message", [
    ("bfp:block=12", "block=12 is out of range"),
    ("bfp:block=256", "out of range"),
    ("bfp:mantissa=9", "mantissa=9 is out of range"),
    ("bfp:mantissa=1", "out of range"),
    ("bfp:e_bits=3", "e_bits=3 is out of range"),
    ("bfp:preset=mxfp8", "preset='mxfp8' is out of range"),
    ("bfp:search=yes", "search='yes' is out of range"),
])
def test_bad_specs_name_the_parameter(text, message):
    with pytest.raises(ValueError, match=message):
        parse(text)


def test_preset_refuses_conflicting_parameters():
    with pytest.raises(ValueError, match="preset=mxint8 fixes block=32.*block=16"):
        bfp.params_of(parse("bfp:preset=mxint8,block=16"))
    with pytest.raises(TypeError, match="parsed bfp spec"):
        bfp.params_of(parse("int:bits=8"))


def test_params_derived_sizes():
    p = P(4, 3, 5)
    assert (p.block_log2, p.bias, p.e_code_max, p.q_max) == (2, 15, 30, 3)
    assert p.n_blocks(11) == 3 and p.row_bits(11) == 3 * 5 + 11 * 3 and p.row_bytes(11) == 6
    assert P(32, 8, 8).bits_per_weight() == 8.25
    with pytest.raises(ValueError, match="block=12 must be one of"):
        bfp.validated_params(12, 4, 8)
    with pytest.raises(TypeError, match="mantissa must be an integer"):
        bfp.validated_params(16, 4.0, 8)


# --------------------------------------------------------------------------- quantizer


def test_mxint8_matches_the_ocp_mx_definition():
    # OCP MX v1.0 MXINT8: X = floor(log2 max|V|) - emax_elem (0 for INT8), scale
    # E8M0 = X + 127, element = clamp(round(V / 2^X * 2^6), +-127) with ties
    # away from zero (the spec authors' reference library, microxcaling).
    v = np.zeros((1, 32))
    v[0, :8] = [1.5, -0.75, 0.0078125, 1.9921875, -1.9921875, 0.01171875, -0.0234375, 1.99]
    exps, mant = bfp.quantize(v, P())
    assert exps.tolist() == [[127]]  # max 1.99.. -> X = 0
    # 1.5*64 = 96; 0.0078125*64 = 0.5 -> 1 (tie away); 127.5 -> 128 -> 127; -127.5 -> -127;
    # 0.75 -> 0.75*64 = 48; 0.01171875*64 = 0.75 -> 1; -1.5 -> -2; 1.99*64 = 127.36 -> 127
    assert mant[0, :8].tolist() == [96, -48, 1, 127, -127, 1, -2, 127]
    assert (mant[0, 8:] == 0).all()
    w = np.full((1, 32), 0.3)
    exps, mant = bfp.quantize(w, P())
    assert exps[0, 0] == 127 - 2  # floor(log2 0.3) = -2
    assert mant[0, 0] == round(0.3 * 2**8)  # 76.8 -> 77
    assert bfp.dequantize(exps, mant, P())[0, 0] == 77 / 256


def test_narrow_mantissas_and_ties():
    # m = 3: codes in [-3, 3], the block max lands in [2, 4) before rounding.
    w = np.array([[1.0, 0.25, -0.25, 0.75, 1.75, -1.0, 0.5, -0.75]])
    exps, mant = bfp.quantize(w, P(8, 3, 8))
    assert exps[0, 0] == 127  # max 1.75 -> X = 0, LSB 2^-1
    # w / 0.5 = 2, 0.5, -0.5, 1.5, 3.5, -2, 1, -1.5 -> ties away from zero, clamp to 3
    assert mant[0].tolist() == [2, 1, -1, 2, 3, -2, 1, -2]
    exps, mant = bfp.quantize(np.array([[0.4, -0.9, 0.1, 0.0]]), P(4, 2, 8))
    assert exps[0, 0] == 126 and mant[0].tolist() == [1, -1, 0, 0]  # m = 2: ternary codes


def test_zero_blocks_and_ragged_last_block():
    w = np.zeros((2, 10))
    w[1, 9] = -3.0  # only the ragged last block (values 8, 9) of row 1 is non-zero
    exps, mant = bfp.quantize(w, P(4, 5, 8))
    assert exps.tolist() == [[0, 0, 0], [0, 0, 128]]
    assert mant[1, 9] == -12 and np.count_nonzero(mant) == 1  # -3 / 2^(1-3)
    assert bfp.row_anchor(exps).tolist() == [0, 128]


def test_exponent_saturates_and_underflows_with_narrow_e_bits():
    p = P(4, 4, 4)  # X in [-7, 7]
    w = np.array([[1000.0, 1.0, 0.0, 0.0], [0.001, 0.0005, 0.0, 0.0]])
    exps, mant = bfp.quantize(w, p)
    assert exps[0, 0] == 14 and mant[0].tolist() == [7, 0, 0, 0]  # X = 9 saturates at 7; 1000 clamps
    # X = -10 raises to -7: LSB 2^-9, 0.001 * 512 = 0.512 -> 1, 0.0005 -> 0.256 -> 0
    assert exps[1, 0] == 0 and mant[1].tolist() == [1, 0, 0, 0]


@given(st.integers(0, 2**32 - 1), st.sampled_from(bfp.BLOCKS), st.integers(2, 8), st.integers(4, 8))
def test_quantization_error_is_half_an_lsb(seed, block, mantissa, e_bits):
    rng = np.random.default_rng(seed)
    p = P(block, mantissa, e_bits)
    w = rng.normal(size=(3, int(rng.integers(1, 300)))) * 2.0 ** rng.integers(-5, 3)
    exps, mant = bfp.quantize(w, p)
    deq = bfp.dequantize(exps, mant, p)
    lsb = np.repeat(np.ldexp(1.0, exps.astype(int) - p.bias - (mantissa - 2)), block, axis=1)[:, : w.shape[1]]
    err = np.abs(deq - w)
    clamped = np.abs(mant) == p.q_max
    # Rounding error is at most half an LSB; only the clamped top code may be
    # off by up to one LSB (the block max rounds up past 2^(m-1) - 1).
    assert (err[~clamped] <= lsb[~clamped] / 2).all()
    assert (err[clamped] <= lsb[clamped]).all()
    assert (np.abs(mant) <= p.q_max).all()


def test_quantizer_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        bfp.quantize(np.array([[1.0, np.nan]]), P())
    with pytest.raises(ValueError, match="must be 2-D"):
        bfp.quantize(np.ones(4), P())
    with pytest.raises(ValueError, match="non-empty"):
        bfp.quantize(np.ones((2, 0)), P())
    with pytest.raises(TypeError, match="numeric"):
        bfp.quantize(np.array([["a"]]), P())


# --------------------------------------------------------------------------- packing


def test_packed_layout_by_hand():
    # block 4, m = 3, e = 5, K = 6: fields E0 q0 q1 q2 q3 E1 q4 q5, LSB first.
    p = P(4, 3, 5)
    exps = np.array([[0b10110, 0b00001]], np.uint8)
    mant = np.array([[1, -1, 3, -4, 2, 0]], np.int8)
    bits = ""
    for v, w in [(0b10110, 5), (1, 3), (0b111, 3), (3, 3), (0b100, 3), (0b00001, 5), (2, 3), (0, 3)]:
        bits += format(v, f"0{w}b")[::-1]
    bits += "0" * (-len(bits) % 8)
    want = [int(bits[i:i + 8][::-1], 2) for i in range(0, len(bits), 8)]
    assert bfp.pack(exps, mant, p)[0].tolist() == want
    assert p.row_bytes(6) == len(want) == 4


@given(st.integers(0, 2**32 - 1), st.sampled_from(bfp.BLOCKS), st.integers(2, 8), st.integers(4, 8))
def test_pack_unpack_roundtrip(seed, block, mantissa, e_bits):
    rng = np.random.default_rng(seed)
    p = P(block, mantissa, e_bits)
    n, k = int(rng.integers(1, 5)), int(rng.integers(1, 400))
    exps = rng.integers(0, 2**e_bits, (n, p.n_blocks(k))).astype(np.uint8)
    half = 2 ** (mantissa - 1)
    mant = rng.integers(-half, half, (n, k)).astype(np.int8)
    packed = bfp.pack(exps, mant, p)
    assert packed.shape == (n, p.row_bytes(k))
    e2, m2 = bfp.unpack(packed, k, p)
    assert_array_equal(e2, exps)
    assert_array_equal(m2, mant)


def test_pack_rejects_codes_out_of_range():
    p = P(4, 3, 5)
    with pytest.raises(ValueError, match=r"mantissas must be in \[-4, 3\]"):
        bfp.pack(np.zeros((1, 1), np.uint8), np.array([[4, 0, 0, 0]], np.int8), p)
    with pytest.raises(ValueError, match="does not fit e_bits=5"):
        bfp.pack(np.array([[32]], np.uint8), np.zeros((1, 4), np.int8), p)
    with pytest.raises(ValueError, match=r"exps must have shape \(1, 2\)"):
        bfp.pack(np.zeros((1, 1), np.uint8), np.zeros((1, 5), np.int8), p)


# --------------------------------------------------------------------------- GEMM


def python_model(a, exps, mant, eref, p, bias, rq):
    """Arbitrary-precision ints straight from the spec: per block the integer
    dot, floor(P * 2^(16 - d)) (Python >> floors), round half up, bias, requant."""
    m, k = a.shape
    n = mant.shape[0]
    out = np.zeros((m, n), np.int64)
    for i in range(m):
        for j in range(n):
            acc = 0
            for b in range(p.n_blocks(k)):
                ks = range(b * p.block, min(k, (b + 1) * p.block))
                dot = sum(int(a[i, t]) * int(mant[j, t]) for t in ks)
                d = min(int(eref[j]) - int(exps[j, b]), 47)
                acc += (dot << 16) >> d
            total = ((acc + 2**15) >> 16) + int(bias[j])
            if rq is not None:
                y = (total * int(rq.multiplier[j]) + ((1 << (rq.shift - 1)) if rq.shift else 0)) >> rq.shift
                total = min(max(y, rq.lo), rq.hi)
            out[i, j] = total
    return out


@st.composite
def bfp_operands(draw):
    p = P(draw(st.sampled_from(bfp.BLOCKS)), draw(st.integers(2, 8)), draw(st.integers(4, 8)))
    m, n, k = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    unsigned = draw(st.booleans())
    a = rng.integers(0, 256, (m, k)).astype(np.uint8) if unsigned else rng.integers(-128, 128, (m, k)).astype(np.int8)
    half = 2 ** (p.mantissa - 1)
    mant = rng.integers(-half, half, (n, k)).astype(np.int8)
    exps = rng.integers(0, 2**p.e_bits, (n, p.n_blocks(k))).astype(np.uint8)
    eref = np.minimum(exps.max(axis=1).astype(int) + rng.integers(0, 2, n), 2**p.e_bits - 1).astype(np.uint8)
    bias = rng.integers(-(2**24), 2**24, n).astype(np.int32)
    rq = None
    if draw(st.booleans()):
        lo = draw(st.integers(-(2**31), 2**31 - 1))
        rq = Requant(rng.integers(0, 2**31 - 1, n).astype(np.int32), draw(st.integers(0, 62)), lo,
                     draw(st.integers(lo, 2**31 - 1)))
    return a, exps, mant, eref, p, bias, rq


@given(bfp_operands())
def test_reference_matches_python_ints(ops):
    a, exps, mant, eref, p, bias, rq = ops
    got = bfp.gemm(a, bfp.pack(exps, mant, p), eref, p.block, p.mantissa, p.e_bits, bias, rq)
    assert_array_equal(got, python_model(a, exps, mant, eref, p, bias, rq))


def test_output_is_the_dot_product_in_anchor_units():
    rng = np.random.default_rng(3)
    wf = rng.normal(size=(6, 300)) * 0.05
    x = np.maximum(rng.normal(size=(9, 300)), 0)
    s_in = x.max() / 255
    a = np.clip(np.floor(x / s_in + 0.5), 0, 255).astype(np.uint8)
    for p in (P(32, 8, 8), P(16, 4, 8), P(128, 2, 6)):
        payload = bfp.encode(wf, p)
        s_w = bfp.row_scale(payload["eref"], p)
        out = bfp.gemm(a, payload["w"], payload["eref"], p.block, p.mantissa, p.e_bits)
        exps, mant = bfp.unpack(payload["w"], 300, p)
        exact = a.astype(np.float64) @ bfp.dequantize(exps, mant, p).T / s_w
        # Only the drain rounding (1/2 unit) and the floor of far-below blocks differ.
        assert np.abs(out - exact).max() <= 0.5 + 300 / p.block * 2.0**-16
        # The GemmFormat contract: out * s_in * s_w[n] is the dot product.
        contract = np.abs(out * s_in * s_w - (a * s_in) @ bfp.dequantize(exps, mant, p).T)
        assert (contract <= s_in * s_w * (0.5 + 2.0**-10)).all()
    # At MXINT8 the whole path stays within 1 % of the float product.
    assert np.abs(out_mx8(a, wf) * s_in - x @ wf.T).max() < 0.01 * np.abs(x @ wf.T).max()


def out_mx8(a, wf):
    p = P(32, 8, 8)
    payload = bfp.encode(wf, p)
    return bfp.gemm(a, payload["w"], payload["eref"], 32, 8, 8) * bfp.row_scale(payload["eref"], p)


def test_accumulator_limits():
    p8 = P(32, 8, 8)
    assert bfp.max_reduction_length(True, p8) == (2**31 - 2) // (255 * 128) == 65793
    assert bfp.max_reduction_length(False, P(32, 4, 8)) == (2**31 - 2) // (128 * 8)
    bfp.check_accumulator(65793, True, p8)
    with pytest.raises(ValueError, match=r"K=65794 can overflow the BFP engine's 32-bit output.*largest K here is 65793"):
        bfp.check_accumulator(65794, True, p8)
    k = 65793
    a = np.zeros((1, k), np.uint8)
    w = bfp.pack(np.zeros((1, p8.n_blocks(k)), np.uint8), np.zeros((1, k), np.int8), p8)
    with pytest.raises(ValueError, match=r"\|bias\| 1000"):
        bfp.gemm(a, w, np.zeros(1, np.uint8), 32, 8, 8, np.array([1000], np.int32))


def _ok_operands():
    p = P(4, 3, 5)
    exps = np.array([[3, 5], [1, 1]], np.uint8)
    mant = np.zeros((2, 6), np.int8)
    return np.ones((2, 6), np.int8), bfp.pack(exps, mant, p), np.array([5, 1], np.uint8), p


@pytest.mark.parametrize("change, error, message", [
    (lambda a, w, e: (a.astype(np.int16), w, e), TypeError, r"a \(activations\) must have dtype int8 or uint8"),
    (lambda a, w, e: (a, w.astype(np.int8), e), TypeError, r"packed BFP weights\) must have dtype uint8"),
    (lambda a, w, e: (a, w[:, :3], e), ValueError, "w rows must be 4 bytes for K=6"),
    (lambda a, w, e: (a, w, e.astype(np.int32)), TypeError, r"eref \(row anchors\) must have dtype uint8"),
    (lambda a, w, e: (a, w, e[:1]), ValueError, r"eref must have shape \(2,\)"),
    (lambda a, w, e: (a, w, np.array([4, 1], np.uint8)), ValueError, r"eref\[0\]=4 is below that row's largest exponent code 5"),
    (lambda a, w, e: (a, w, np.array([32, 1], np.uint8)), ValueError, "eref 32 does not fit e_bits=5"),
    (lambda a, w, e: (a[:, :0], w, e), ValueError, "K=0"),
])
def test_bad_operands_are_named(change, error, message):
    a, w, e, p = _ok_operands()
    a, w, e = change(a, w, e)
    with pytest.raises(error, match=message):
        bfp.gemm(a, w, e, p.block, p.mantissa, p.e_bits)


def test_bad_encoding_registers_are_named():
    a, w, e, p = _ok_operands()
    with pytest.raises(ValueError, match="block=12 must be one of"):
        bfp.gemm(a, w, e, 12, 3, 5)
    with pytest.raises(ValueError, match=r"mantissa=9 is out of range \[2, 8\]"):
        bfp.gemm(a, w, e, 4, 9, 5)
    with pytest.raises(TypeError, match="requant must be"):
        bfp.gemm(a, w, e, 4, 3, 5, None, (1, 0, 0, 1))
