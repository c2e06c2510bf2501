"""Lowering torch models to quantized graphs, and running them bit-exactly on
every backend."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from torch import nn

from termshift.backends.cycle_model import INT_ENGINE, gemm_cycles
from termshift.nn.graph import QConv2d, QLinear
from termshift.nn.im2col import im2col
from termshift.nn.lower import float_ops, lower


def tiny_cnn():
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(2, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(5, 4, 3, stride=2), nn.AvgPool2d(2, stride=1), nn.ReLU(), nn.Dropout(0.5),
        nn.Flatten(), nn.Linear(4 * 1 * 1, 7), nn.Linear(7, 3),
    ).eval()


def tiny_mlp(n_in=20):
    torch.manual_seed(4)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, 33), nn.ReLU(), nn.Linear(33, 17), nn.ReLU(), nn.Linear(17, 5)).eval()


@pytest.mark.parametrize("stride, padding", [((1, 1), (0, 0)), ((2, 1), (1, 2)), ((3, 3), (1, 1))])
def test_im2col_gemm_equals_torch_conv(stride, padding):
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (2, 3, 9, 11)).astype(np.int8)
    w = rng.integers(-128, 128, (4, 3, 3, 2)).astype(np.int8)
    cols = im2col(x, (3, 2), stride, padding)
    y = cols.astype(np.int64) @ w.reshape(4, -1).T.astype(np.int64)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x.astype(np.float64)), torch.from_numpy(w.astype(np.float64)),
                                     stride=stride, padding=padding).numpy()
    ho, wo = ref.shape[2:]
    assert_array_equal(y.reshape(2, ho, wo, 4).transpose(0, 3, 1, 2), ref.astype(np.int64))


@pytest.mark.parametrize("build", ["fast", "exact"])
@pytest.mark.parametrize("make, shape", [(tiny_mlp, (20,)), (tiny_cnn, (2, 12, 12))])
def test_reference_and_csim_identical(make, shape, build, reference):
    from termshift.backends import get_backend

    rng = np.random.default_rng(1)
    model = make()
    calib = rng.normal(size=(64,) + shape).astype(np.float32)
    x = rng.normal(size=(37,) + shape).astype(np.float32)
    graph = lower(model, calib, "int:bits=8")
    r = graph.run(x, reference, keep_raw=True, batch_size=16)
    s = graph.run(x, get_backend("csim", build=build), keep_raw=True, batch_size=16)
    assert set(r.raw) == {n.name for n in graph.gemm_nodes()}
    for name in r.raw:
        assert_array_equal(s.raw[name], r.raw[name])
    assert_array_equal(s.output, r.output)
    assert r.cycles == s.cycles
    # And the quantized graph tracks the float model.
    with torch.no_grad():
        f = model(torch.from_numpy(x)).numpy()
    assert np.abs(r.output - f).max() < 0.08 * np.abs(f).max()


def test_fusion_and_names():
    ops = float_ops(tiny_cnn())
    assert [(o.kind, o.relu) for o in ops] == [
        ("conv2d", True), ("pool", False), ("conv2d", False), ("pool", False), ("relu", False),
        ("flatten", False), ("linear", False), ("linear", False)]
    assert [o.name for o in ops][:3] == ["conv1", "pool1", "conv2"]


def test_requant_outputs_follow_the_activation():
    graph = lower(tiny_cnn(), np.random.default_rng(2).normal(size=(32, 2, 12, 12)).astype(np.float32))
    conv1, conv2 = [n for n in graph.nodes if isinstance(n, QConv2d)]
    assert conv1.requant.lo == 0 and conv1.requant.hi == 255  # fused ReLU: uint8
    assert conv2.requant.lo == -127 and conv2.requant.hi == 127  # no ReLU: symmetric int8
    fc = [n for n in graph.nodes if isinstance(n, QLinear)]
    assert fc[-1].requant is None  # logits leave as float


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return x + self.fc(x)


@pytest.mark.parametrize("model, message", [
    (nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 2)), "unsupported module.*Sigmoid"),
    (nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)), "unsupported module.*BatchNorm1d"),
    (Residual(), "not a chain step"),
    (nn.Sequential(nn.Linear(4, 2), nn.Flatten()), "last op must be a Linear or Conv2d"),
    (nn.Sequential(nn.ReLU()), "no Linear or Conv2d"),
    (nn.Sequential(nn.Conv2d(2, 2, 3, groups=2), nn.Flatten(), nn.Linear(2, 2)), "groups=1"),
])
def test_unsupported_models_are_named(model, message):
    conv_first = isinstance(model, nn.Sequential) and isinstance(model[0], nn.Conv2d)
    calib = np.zeros((2, 2, 3, 3) if conv_first else (2, 4), np.float32)
    with pytest.raises(ValueError, match=message):
        lower(model, calib)


def test_bad_calibration_and_format():
    with pytest.raises(ValueError, match="non-finite"):
        lower(tiny_mlp(), np.full((4, 20), np.nan, np.float32))
    with pytest.raises(ValueError, match="no engine lowering yet"):
        lower(tiny_mlp(), np.zeros((4, 20), np.float32), _fake_spec())
    with pytest.raises(ValueError, match="unknown format"):
        lower(tiny_mlp(), np.zeros((4, 20), np.float32), "posit:bits=8")


def _fake_spec():
    from termshift.formats.spec import FormatSpec

    return FormatSpec("posit", {"bits": 4})  # a format with no GemmFormat registered


def test_run_rejects_wrong_input_shape(reference):
    graph = lower(tiny_mlp(), np.random.default_rng(0).normal(size=(8, 20)).astype(np.float32))
    with pytest.raises(ValueError, match=r"input must have shape \(batch, 20\)"):
        graph.run(np.zeros((3, 21)), reference)
    with pytest.raises(ValueError, match="non-finite"):
        graph.run(np.full((3, 20), np.inf), reference)


def test_costs_follow_the_shapes(csim_fast):
    graph = lower(tiny_cnn(), np.random.default_rng(2).normal(size=(32, 2, 12, 12)).astype(np.float32))
    costs = {c.name: c for c in graph.costs()}
    # conv1: 12x12 output positions, 5 channels, K = 2*3*3.
    assert costs["conv1"].ops == {"macs": 144 * 5 * 18, "requants": 144 * 5}
    assert costs["conv1"].cycles == gemm_cycles(INT_ENGINE, 144, 5, 18)
    assert costs["pool1"].ops == {"compares": 5 * 6 * 6 * 4}
    assert costs["conv2"].ops == {"macs": 4 * 4 * 45, "requants": 4 * 4}
    assert costs["fc2"].ops == {"macs": 7 * 3}  # last layer: no requant
    assert costs["fc2"].act_out_bits == 3 * 32 and costs["fc1"].act_out_bits == 7 * 8
    assert costs["conv1"].weight_bits == 5 * 18 * 8 + 5 * 32
    # The modeled per-inference cycles are what the engine counts at batch 1.
    run = graph.run(np.zeros((1, 2, 12, 12), np.float32), csim_fast)
    assert run.cycles == {name: c.cycles for name, c in costs.items() if c.cycles}
