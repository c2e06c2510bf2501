"""The bias/requant checks every format shares (uniform.validate_bias_requant):
each engine's validator must reject the same bad output stages with the same
messages, and accept what the helper accepts."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from termshift.backends import engine_bfp, engine_int, engine_pot, engine_teq, engine_tr
from termshift.formats.uniform import Requant, validate_bias_requant

ENGINES = {"int": engine_int, "pot": engine_pot, "bfp": engine_bfp, "teq": engine_teq, "tr": engine_tr}


def _first_case(mod):
    name, ops = next(iter(mod.ENGINE.cases(0, 1)))
    n = mod.ENGINE.validate(**ops).bias.shape[0]
    return dict(ops), n


def test_none_bias_is_zeros_and_none_requant_is_raw():
    bias, rq = validate_bias_requant(None, None, 5)
    assert bias.dtype == np.int32
    assert_array_equal(bias, np.zeros(5, np.int32))
    assert rq is None


def test_scalar_multiplier_is_broadcast_per_channel():
    _, rq = validate_bias_requant(np.arange(3, dtype=np.int32), Requant(np.int32(7), 4, -8, 7), 3)
    assert_array_equal(rq.multiplier, np.full(3, 7, np.int32))


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_wrong_bias_shape_rejected_by_every_engine(engine):
    ops, n = _first_case(ENGINES[engine])
    ops["bias"] = np.zeros(n + 1, np.int32)
    with pytest.raises(ValueError, match=rf"bias must have shape \({n},\), one per output channel"):
        ENGINES[engine].ENGINE.validate(**ops)


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_wrong_bias_dtype_rejected_by_every_engine(engine):
    ops, n = _first_case(ENGINES[engine])
    ops["bias"] = np.zeros(n, np.float32)
    with pytest.raises((TypeError, ValueError), match="bias"):
        ENGINES[engine].ENGINE.validate(**ops)


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_requant_of_wrong_type_rejected_by_every_engine(engine):
    ops, _ = _first_case(ENGINES[engine])
    ops["requant"] = (1, 2, 3, 4)
    with pytest.raises(TypeError, match="requant must be a termshift.formats.uniform.Requant or None, got tuple"):
        ENGINES[engine].ENGINE.validate(**ops)


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_requant_with_wrong_channel_count_rejected_by_every_engine(engine):
    ops, n = _first_case(ENGINES[engine])
    ops["requant"] = Requant(np.ones(n + 2, np.int32), 3, -128, 127)
    with pytest.raises(ValueError, match=rf"requant multiplier must have {n} entries"):
        ENGINES[engine].ENGINE.validate(**ops)


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_valid_output_stage_passes_through_every_engine(engine):
    ops, n = _first_case(ENGINES[engine])
    bias = np.arange(n, dtype=np.int32) - n // 2
    ops["bias"], ops["requant"] = bias, Requant(np.full(n, 3, np.int32), 2, -100, 100)
    args = ENGINES[engine].ENGINE.validate(**ops)
    assert_array_equal(args.bias, bias)
    assert_array_equal(args.requant.multiplier, np.full(n, 3, np.int32))
    assert (args.requant.shift, args.requant.lo, args.requant.hi) == (2, -100, 100)
