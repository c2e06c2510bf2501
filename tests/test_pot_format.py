"""The `pot` format's numpy reference: spec strings, rounding (linear and log,
ties, flush to zero, clamp) against an exact brute-force oracle, scales,
level fitting, log-domain group pruning, the weight stream, and operand
validation."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from termshift.formats import parse, pot, uniform

# --------------------------------------------------------------------------- spec strings


def test_spec_defaults_and_roundtrip():
    spec = parse("pot")
    assert spec.params == {"bits": 4, "rounding": "linear", "granularity": "channel", "scale": "float",
                           "sparsity": 0.0, "round": "nearest"}
    spec = parse("pot:bits=3,rounding=log,granularity=tensor,scale=pow2,sparsity=0.5")
    assert (spec["bits"], spec["rounding"], spec["granularity"], spec["scale"], spec["sparsity"]) == (
        3, "log", "tensor", "pow2", 0.5)
    assert parse(str(spec)) == spec


@pytest.mark.parametrize("text, message", [
    ("pot:bits=7", "bits=7 is out of range (allowed: 2..6)"),
    ("pot:bits=1", "out of range"),
    ("pot:rounding=nearest", "rounding='nearest' is out of range"),
    ("pot:scale=fixed", "scale='fixed' is out of range"),
    ("pot:sparsity=1", "expected a fraction in [0, 1)"),
    ("pot:sparsity=-0.1", "expected a fraction in [0, 1)"),
    ("pot:sparsity=nan", "expected a fraction in [0, 1)"),
    ("pot:sparsity=half", "sparsity: expected a number"),
    ("pot:prune=0.5", "has no parameter 'prune'"),
])
def test_bad_specs(text, message):
    with pytest.raises(ValueError) as exc:
        parse(text)
    assert message in str(exc.value)


# --------------------------------------------------------------------------- rounding


def oracle(v: float, levels: int, rounding: str) -> int:
    """Exponent code magnitude of v >= 0 by the spec's words, in exact arithmetic:
    the nearest of {0, 2^-(levels-1), ..., 2^-1, 1} (values above 1 clamp to 1),
    linear: by |v - level|, ties to the larger; log: by |log2 v - log2 level| with 0
    standing for 2^-levels."""
    x = Fraction(v)
    if x == 0:
        return 0
    if x >= 1:
        return 1
    for i in range(levels):  # between 2^-(i+1) and 2^-i (2^-levels is zero at the bottom)
        hi, lo = Fraction(1, 2**i), Fraction(1, 2 ** (i + 1))
        if x >= lo:
            up = x >= (hi + lo) / 2 if rounding == "linear" else x * x > hi * lo
            if i == levels - 1 and rounding == "linear":
                up = up or x >= lo  # the lower neighbour is 0, the midpoint 2^-levels = lo
            return i + 1 if up else (i + 2 if i + 1 < levels else 0)
    return 0


# Mantissas crowd the two boundaries (1.5 and sqrt 2) and the flush points, where rules differ.
MANTISSAS = st.one_of(st.floats(1, 2, exclude_max=True),
                      st.sampled_from([1.0, 1.49, 1.4999999, float(np.nextafter(1.5, 0)), 1.5, 1.5000001,
                                       1.414, float(np.nextafter(pot.SQRT2, 0)), pot.SQRT2, 1.4143,
                                       float(np.nextafter(2.0, 0))]))
VALUES = st.one_of(st.floats(0, 4), st.builds(lambda m, e: float(np.ldexp(m, e)), MANTISSAS, st.integers(-33, 1)))


@given(v=VALUES, bits=st.integers(2, 6), rounding=st.sampled_from(["linear", "log"]), data=st.data())
def test_rounding_matches_exact_oracle(v, bits, rounding, data):
    levels = data.draw(st.integers(1, pot.max_levels(bits)))
    q = pot.quantize(np.array([v, -v]), 1.0, bits, rounding, levels)
    want = oracle(v, levels, rounding)
    assert q.tolist() == [want, -want]


BOUNDARY_MANTISSAS = [1.0, 1.49, float(np.nextafter(1.5, 0)), 1.5, float(np.nextafter(1.5, 2)), 1.414,
                      float(np.nextafter(pot.SQRT2, 0)), pot.SQRT2, float(np.nextafter(pot.SQRT2, 2)),
                      float(np.nextafter(2.0, 0))]


@pytest.mark.parametrize("bits", range(2, 7))
@pytest.mark.parametrize("rounding", ["linear", "log"])
def test_every_boundary_at_every_level_matches_oracle(bits, rounding):
    levels = pot.max_levels(bits)
    v = np.array([np.ldexp(m, e) for e in range(-levels - 2, 2) for m in BOUNDARY_MANTISSAS])
    want = [oracle(float(x), levels, rounding) for x in v]
    assert pot.quantize(v, 1.0, bits, rounding).tolist() == want


@pytest.mark.parametrize("k", [0, -1, -3])
def test_linear_boundary_is_1_5_times_2k_ties_up(k):
    lo = 2.0**k / 2  # levels 2^(k-1) and 2^k, codes |q| = 1 - k + 1 and 1 - k
    mid = 1.5 * lo
    q = pot.quantize(np.array([np.nextafter(mid, 0), mid, -mid]), 1.0, 5, "linear")
    assert q.tolist() == [2 - k, 1 - k, -(1 - k)]


def test_log_boundary_is_sqrt2_times_2k():
    # sqrt(2) * 2^-2 sits between 2^-2 (|q| 3) and 2^-1 (|q| 2).
    below, at = np.nextafter(pot.SQRT2, 0) / 4, pot.SQRT2 / 4
    assert pot.quantize(np.array([below, at]), 1.0, 4, "log").tolist() == [3, 2]
    # 1.45 * 2^-2: log rounds up (past sqrt 2), linear down (below 1.5).
    assert pot.quantize(np.array([1.45 / 4]), 1.0, 4, "log")[0] == 2
    assert pot.quantize(np.array([1.45 / 4]), 1.0, 4, "linear")[0] == 3


def test_flush_to_zero_rules():
    levels = pot.max_levels(4)  # 7: smallest level 2^-6
    t_lin = 2.0**-levels
    q = pot.quantize(np.array([np.nextafter(t_lin, 0), t_lin]), 1.0, 4, "linear")
    assert q.tolist() == [0, levels]  # 2^-7 exactly is the tie: away from zero
    t_log = pot.SQRT2 * 2.0**-levels
    q = pot.quantize(np.array([np.nextafter(t_log, 0), t_log]), 1.0, 4, "log")
    assert q.tolist() == [0, levels]


def test_clamp_zero_sign_and_levels_roundtrip():
    levels = np.ldexp(1.0, -np.arange(7))
    w = np.concatenate([levels, -levels, [0.0, -0.0, 5.0, -1e300, 1e-300]])
    q = pot.quantize(w, 1.0, 4)
    assert q.tolist() == list(range(1, 8)) + list(range(-1, -8, -1)) + [0, 0, 1, -1, 0]
    assert_array_equal(pot.dequantize(q[:14], 1.0), w[:14])
    assert q.dtype == np.int8


@given(st.lists(st.floats(-10, 10, allow_nan=False), min_size=2, max_size=40),
       st.sampled_from(["linear", "log"]))
def test_quantization_is_monotonic(ws, rounding):
    w = np.sort(np.abs(np.array(ws)))
    mags = pot.dequantize(pot.quantize(w, 1.0, 4, rounding), 1.0)
    assert (np.diff(mags) >= 0).all()


def test_per_channel_scale_and_errors():
    w = np.array([[0.5, -0.25], [8.0, 2.0]])
    s = pot.weight_scale(w)
    assert s.tolist() == [0.5, 8.0]
    assert pot.quantize(w, s, 4).tolist() == [[1, -2], [1, 3]]
    with pytest.raises(ValueError, match="non-finite"):
        pot.quantize(np.array([1.0, np.nan]), 1.0)
    with pytest.raises(TypeError, match="numeric"):
        pot.quantize(np.array(["a"]), 1.0)
    with pytest.raises(ValueError, match="scale must be positive"):
        pot.quantize(w, np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="per-channel scale has 3 entries"):
        pot.quantize(w, np.ones(3))
    with pytest.raises(ValueError, match="rounding must be"):
        pot.quantize(w, s, 4, "nearest")
    with pytest.raises(ValueError, match="levels=8 is out of range"):
        pot.quantize(w, s, 4, "linear", 8)
    with pytest.raises(TypeError, match="integer codes"):
        pot.dequantize(np.array([1.5]), 1.0)


def test_pow2_scale_is_the_rounded_max():
    w = np.array([[1.49, 0.1], [-1.5, 0.0], [0.0, 0.0], [1.41, 1.42]])
    assert pot.weight_scale(w, scale="pow2").tolist() == [1.0, 2.0, 1.0, 1.0]
    assert pot.weight_scale(w, scale="pow2", rounding="log").tolist() == [2.0, 2.0, 1.0, 2.0]
    assert pot.weight_scale(w, "tensor").tolist() == 1.5
    with pytest.raises(ValueError, match="scale must be 'float' or 'pow2'"):
        pot.weight_scale(w, scale="fixed")
    with pytest.raises(ValueError, match="granularity"):
        pot.weight_scale(w, "row")


def test_layer_emax_fits_the_accumulator():
    assert pot.layer_emax(4, 784) == 6
    assert pot.layer_emax(5, 784) == 12  # 784 * 255 * 2^12 <= 2^30 < ... * 2^13
    assert pot.layer_emax(6, 1) == 22  # 255 * 2^22 <= 2^30
    assert pot.layer_emax(2, 10**6) == 0
    for bits, k in [(5, 784), (6, 1), (6, 300), (4, 100000)]:
        e = pot.layer_emax(bits, k)
        assert k * 255 * 2**e <= 2**30 and (e == pot.max_levels(bits) - 1 or k * 255 * 2 ** (e + 1) > 2**30)
    with pytest.raises(ValueError, match="too long for the PoT engine"):
        pot.layer_emax(4, 2**30 // 255 + 1)


# --------------------------------------------------------------------------- pruning


def test_prune_removes_whole_groups_smallest_levels_first():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(20, 50))
    s = pot.weight_scale(w)
    codes = pot.quantize(w, s, 4)
    pruned = pot.prune(codes, pot.normalized(w, s), 0.5, 8)
    assert np.count_nonzero(pruned == 0) >= pot.prune_target(0.5, codes.size)
    changed = (pruned == 0) & (codes != 0)
    assert changed.any() and not ((pruned != 0) & (pruned != codes)).any()
    # Whole groups: rows 8t..8t+7 at one k are all kept or all zero.
    g = np.pad(pruned, ((0, 4), (0, 0))).reshape(3, 8, 50)
    kept = (g != 0).any(axis=1)
    assert (np.repeat(kept, 8, axis=0)[:20] | (pruned == 0)).all()
    dead_groups = ~kept & (np.pad(codes, ((0, 4), (0, 0))).reshape(3, 8, 50) != 0).any(axis=1)
    sizes = np.array([8, 8, 4])[:, None]
    score = pot.level_values(np.pad(codes, ((0, 4), (0, 0))).reshape(3, 8, 50)).sum(axis=1) / sizes
    # Every pruned group scores no higher than every surviving group.
    assert score[dead_groups].max() <= score[kept].min()


def test_prune_ranks_partial_tiles_by_their_mean():
    # Rows 8-9 (a 2-row last tile) sit on a higher level than rows 0-7: by
    # group means the full tile goes first, although its groups' sums are larger.
    codes = np.vstack([np.full((8, 30), 3, np.int8), np.full((2, 30), -2, np.int8)])
    out = pot.prune(codes, np.abs(pot.dequantize(codes, 1.0)), 0.5, 8)
    assert_array_equal(out[8:], codes[8:])
    assert (out[:8] == 0).all(axis=0).sum() == 19  # ceil(150 / 8) groups of 8 weights


def test_prune_stops_at_the_target_and_keeps_dense_tensors():
    codes = np.arange(1, 17, dtype=np.int8).reshape(16, 1).repeat(4, axis=1)
    v = np.ones(codes.shape)
    out = pot.prune(codes, v, 0.25, 8)  # 16 zeros: two of the 8 groups (8 rows at one k)
    assert np.count_nonzero(out == 0) == 16
    assert (out[8:] == 0).sum() == 16  # rows 9..16 carry the deepest levels
    assert_array_equal(pot.prune(codes, v, 0.0, 8), codes)
    zeros = np.zeros((3, 3), np.int8)
    assert_array_equal(pot.prune(zeros, np.zeros((3, 3)), 0.9, 8), zeros)
    with pytest.raises(ValueError, match="v has shape"):
        pot.prune(codes, np.ones((2, 2)), 0.5, 8)


def test_quantize_layer_and_acc_scale():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(10, 784))
    layer = pot.quantize_layer(w, 4, sparsity=0.5)
    assert layer.emax == 6
    assert np.count_nonzero(layer.codes == 0) >= 3920
    assert_array_equal(layer.acc_scale, layer.scale / 64)
    # The accumulator contract: integer weights times acc_scale are the dequantized weights.
    assert_array_equal(pot.integer_weights(layer.codes, layer.emax) * layer.acc_scale[:, None],
                       pot.dequantize(layer.codes, layer.scale))


# --------------------------------------------------------------------------- stream and GEMM validation


def decode_stream(words: np.ndarray, n: int, k: int, bits: int, cols: int = 8, tile_k: int = 256) -> np.ndarray:
    """An independent reader of docs/formats/pot.md section 5."""
    flat = np.unpackbits(words.astype("<u4").view(np.uint8), bitorder="little")
    pos = 0
    out = np.zeros((n, k), np.int8)

    def take(width):
        nonlocal pos
        v = int(sum(int(flat[pos + i]) << i for i in range(width)))
        pos += width
        return v

    for n0 in range(0, n, cols):
        for k0 in range(0, k, tile_k):
            kept = [k0 + i for i in range(min(tile_k, k - k0)) if take(1)]
            for kk in kept:
                for c in range(min(cols, n - n0)):
                    f = take(bits)
                    mag = f & ((1 << (bits - 1)) - 1)
                    out[n0 + c, kk] = -mag if f >> (bits - 1) else mag
    return out


@given(n=st.integers(1, 20), k=st.integers(1, 600), bits=st.integers(2, 6), zero=st.floats(0, 1),
       seed=st.integers(0, 2**32 - 1))
def test_stream_roundtrip(n, k, bits, zero, seed):
    rng = np.random.default_rng(seed)
    top = pot.max_levels(bits)
    codes = rng.integers(-top, top + 1, (n, k)).astype(np.int8)
    codes[rng.random((n, k)) < zero] = 0
    words, total = pot.pack_stream(codes, bits, 8, 256)
    assert total == pot.stream_bits(codes, bits, 8, 256) and words.size == max(1, -(-total // 32))
    assert_array_equal(decode_stream(words, n, k, bits), codes)


def test_stream_is_compressed():
    codes = np.zeros((16, 512), np.int8)
    codes[:, :64] = 3
    # 2 tiles x 512 mask bits + 2 tiles x 64 kept k x 8 columns x 4 bits
    assert pot.stream_bits(codes, 4, 8, 256) == 2 * 512 + 2 * 64 * 8 * 4
    assert pot.group_counts(codes, 8, 256).tolist() == [[64, 0], [64, 0]]


def test_gemm_validation_names_the_problem():
    a = np.ones((2, 3), np.uint8)
    w = np.ones((4, 3), np.int8)
    with pytest.raises(TypeError, match="int8 or uint8"):
        pot.gemm(a.astype(np.float32), w, 4, 6)
    with pytest.raises(TypeError, match=r"w \(weight codes\) must have dtype int8"):
        pot.gemm(a, w.astype(np.int16), 4, 6)
    with pytest.raises(ValueError, match="above the 3-bit maximum 3"):
        pot.gemm(a, w * 4, 3, 2)
    with pytest.raises(ValueError, match="deeper than emax=1"):
        pot.gemm(a, w * 3, 4, 1)
    with pytest.raises(ValueError, match="emax=24 is out of range"):
        pot.gemm(a, w, 4, 24)
    with pytest.raises(ValueError, match="bits=7 is out of range"):
        pot.gemm(a, w, 7, 6)
    with pytest.raises(ValueError, match="both need K=3"):
        pot.gemm(a, np.ones((4, 2), np.int8), 4, 6)
    with pytest.raises(ValueError, match="bias must have shape"):
        pot.gemm(a, w, 4, 6, np.zeros(3, np.int32))
    k = pot.max_reduction_length(6, True) + 1
    with pytest.raises(ValueError, match=f"largest K at emax=6 is {k - 1}"):
        pot.gemm(np.ones((1, k), np.uint8), np.ones((1, k), np.int8), 4, 6)
    with pytest.raises(TypeError, match="requant must be"):
        pot.gemm(a, w, 4, 6, None, "relu")


def test_gemm_by_hand():
    a = np.array([[3, 200]], np.uint8)
    w = np.array([[1, -3], [0, 7], [-7, 2]], np.int8)  # emax 6: 2^6, -2^4 | 0, 2^0 | -2^0, 2^5
    bias = np.array([1, -1, 0], np.int32)
    assert pot.gemm(a, w, 4, 6, bias).tolist() == [[3 * 64 - 200 * 16 + 1, 200 - 1, -3 + 200 * 32]]
    rq = uniform.Requant(np.array([1, 1, 1], np.int32), 4, 0, 255)
    assert pot.gemm(a, w, 4, 6, bias, rq).tolist() == [[0, 12, 255]]


def test_gptq_rounding_keeps_the_grid_and_lowers_the_output_error():
    # round=gptq: same per-channel scales and levels, codes chosen with error
    # feedback; on correlated inputs the layer's output error drops, and with
    # uncorrelated ones (diagonal second moments) the codes are nearest rounding.
    from termshift.formats import gptq

    rng = np.random.default_rng(4)
    k = 64
    x = rng.laplace(size=(3000, k)) @ (np.eye(k) + 0.3 * rng.normal(size=(k, k)))
    w = rng.normal(0, 0.1, (24, k))
    near = pot.quantize_layer(w, 4)
    fed = pot.quantize_layer(w, 4, gram=gptq.input_gram(x))
    np.testing.assert_array_equal(near.scale, fed.scale)
    assert fed.emax == near.emax and np.abs(fed.codes).max() <= pot.max_levels(4)

    def out_err(layer):
        return np.linalg.norm(x @ (w - pot.dequantize(layer.codes, layer.scale)).T)

    assert out_err(fed) < 0.9 * out_err(near)
    diag = pot.quantize_layer(w, 4, gram=np.diag(rng.uniform(0.5, 2.0, k)))
    np.testing.assert_array_equal(diag.codes, near.codes)
    with pytest.raises(ValueError, match="sparsity"):
        pot.quantize_layer(w, 4, sparsity=0.5, gram=gptq.input_gram(x))


def test_gptq_spec_needs_calibration_inputs():
    from termshift.nn.gemm_formats import gemm_format
    from termshift.nn.graph import quantize_gemm

    rng = np.random.default_rng(5)
    w, x = rng.normal(0, 0.1, (6, 20)), rng.normal(size=(200, 20))
    spec = parse("pot:bits=4,round=gptq")
    gf = gemm_format(spec)
    assert gf.needs_calibration(spec) and not gf.needs_calibration(parse("pot:bits=4"))
    with pytest.raises(ValueError, match="round=gptq needs the layer's calibration inputs"):
        gf.quantize_weights(w, spec)
    with pytest.raises(ValueError, match="pass x_calib"):
        quantize_gemm("fc", w, None, 0.02, spec)
    node = quantize_gemm("fc", w, None, 0.02, spec, x_calib=x)
    plain = quantize_gemm("fc", w, None, 0.02, "pot:bits=4", x_calib=x)  # nearest: the inputs are not needed
    np.testing.assert_array_equal(plain.payload["w"], quantize_gemm("fc", w, None, 0.02, "pot:bits=4").payload["w"])
    np.testing.assert_array_equal(node.s_w, plain.s_w)
    assert not np.array_equal(node.payload["w"], plain.payload["w"])
