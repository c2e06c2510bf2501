"""`pot` in the model pipeline: lowering (the GemmFormat accumulator
contract, costs, pruning), reference == C-sim on whole graphs, artifacts,
and the QAT / prune-and-fine-tune machinery (its forward is the deployed
quantizer; after training, lowering reproduces it)."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from torch import nn

from termshift.backends import get_backend
from termshift.backends.engine_pot import POT_ENGINE, pot_gemm_cycles
from termshift.energy.table import OPS_PJ
from termshift.formats import parse, pot
from termshift.nn import pot_train
from termshift.nn.artifact import load_artifact, save_artifact
from termshift.nn.datasets import ImageData
from termshift.nn.gemm_formats import gemm_format
from termshift.nn.lower import lower


def tiny_cnn():
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(2, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(5 * 6 * 6, 19), nn.ReLU(), nn.Linear(19, 3)).eval()


def tiny_mlp():
    torch.manual_seed(4)
    return nn.Sequential(nn.Flatten(), nn.Linear(40, 33), nn.ReLU(), nn.Linear(33, 17), nn.ReLU(),
                         nn.Linear(17, 5)).eval()


SPECS = ["pot:bits=4", "pot:bits=3,rounding=log,scale=pow2", "pot:bits=5,granularity=tensor,sparsity=0.5",
         "pot:bits=3,round=gptq"]


@pytest.mark.parametrize("fmt", SPECS)
@pytest.mark.parametrize("make, shape", [(tiny_mlp, (40,)), (tiny_cnn, (2, 12, 12))])
def test_graph_reference_equals_csim(make, shape, fmt, reference, csim_exact):
    rng = np.random.default_rng(1)
    graph = lower(make(), rng.normal(size=(64,) + shape).astype(np.float32), fmt)
    x = rng.normal(size=(21,) + shape).astype(np.float32)
    r = graph.run(x, reference, keep_raw=True, batch_size=8)
    for sim in (get_backend("csim", build="fast"), csim_exact):
        s = graph.run(x, sim, keep_raw=True, batch_size=8)
        for name in r.raw:
            assert_array_equal(s.raw[name], r.raw[name])
        assert_array_equal(s.output, r.output)
        assert s.cycles == r.cycles


def test_accumulator_units_are_s_in_times_s_times_2_to_minus_emax(reference):
    """The GemmFormat contract: raw acc * s_in * s_w[n] is the dequantized GEMM."""
    rng = np.random.default_rng(2)
    w = rng.normal(size=(6, 30))
    spec = parse("pot:bits=4")
    payload, s_w = gemm_format(spec).quantize_weights(w, spec)
    layer = pot.quantize_layer(w)
    assert_array_equal(payload["w"], layer.codes)
    assert_array_equal(s_w, layer.scale * 2.0**-layer.emax)
    a = rng.integers(0, 256, (4, 30)).astype(np.uint8)
    s_in = 0.01
    acc = reference.run("pot", a=a, w=payload["w"], bits=4, emax=layer.emax).out
    want = (a * s_in) @ pot.dequantize(layer.codes, layer.scale).T
    np.testing.assert_allclose(acc * s_in * s_w, want, rtol=1e-12)


def test_costs_and_pruning_skip_cycles():
    rng = np.random.default_rng(3)
    calib = rng.normal(size=(32, 40)).astype(np.float32)
    dense = lower(tiny_mlp(), calib, "pot:bits=4")
    sparse = lower(tiny_mlp(), calib, "pot:bits=4,sparsity=0.5")
    for g in (dense, sparse):
        for node, cost in zip(g.gemm_nodes(), g.costs()):
            codes = node.payload["w"]
            assert cost.ops["shift_adds"] == np.count_nonzero(codes)
            assert cost.cycles == pot_gemm_cycles(POT_ENGINE, 1, pot.group_counts(codes, 8, 256))
            assert cost.weight_bits == pot.stream_bits(codes, 4, 8, 256) + 32 * codes.shape[0]
            assert "macs" not in cost.ops
    zeros = [np.mean(n.payload["w"] == 0) for n in sparse.gemm_nodes()]
    assert min(zeros) >= 0.5 - 1e-9
    assert sum(c.cycles for c in sparse.costs()) < sum(c.cycles for c in dense.costs())
    assert OPS_PJ["shift_adds"] < OPS_PJ["macs"]


def test_artifact_roundtrip(tmp_path, reference):
    rng = np.random.default_rng(4)
    graph = lower(tiny_cnn(), rng.normal(size=(16, 2, 12, 12)).astype(np.float32), "pot:bits=3,sparsity=0.3")
    path = save_artifact(graph, tmp_path / "cnn-pot.tsm")
    back, _ = load_artifact(path)
    x = rng.normal(size=(5, 2, 12, 12)).astype(np.float32)
    assert_array_equal(back.run(x, reference).output, graph.run(x, reference).output)


def test_lowering_rejects_an_overlong_reduction():
    k = pot.LEVEL_FIT_BUDGET // 255 + 1
    with pytest.raises(ValueError, match=f"K={k} is too long for the PoT engine"):
        gemm_format("pot").quantize_weights(np.ones((1, k), np.float32), parse("pot:bits=4"))


# --------------------------------------------------------------------------- QAT


def tiny_data(n=256, n_test=64):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(n + n_test, 40)).astype(np.float32)
    y = (x[:, :5].argmax(1)).astype(np.int64)
    return ImageData("tiny", x[:n], y[:n], x[n:], y[n:])


def test_fake_quant_forward_is_the_deployed_weight():
    model = tiny_mlp()
    spec = parse("pot:bits=3,scale=pow2")
    pot_train.attach(model, spec)
    for m in pot_train._gemm_modules(model):
        latent = m.parametrizations.weight.original.detach().double().numpy()
        layer = pot.quantize_layer(latent, 3, scale="pow2")
        assert_array_equal(m.weight.detach().numpy(), pot.dequantize(layer.codes, layer.scale).astype(np.float32))
    # Straight-through: the latent weight gets the gradient unchanged.
    x = torch.randn(3, 40)
    model(x).sum().backward()
    assert all(m.parametrizations.weight.original.grad.abs().sum() > 0 for m in pot_train._gemm_modules(model))


def test_prune_finetune_keeps_groups_dead_and_lowering_reproduces_it(reference):
    data = tiny_data()
    base = tiny_mlp()
    spec = parse("pot:bits=4,sparsity=0.6")
    recipe = {"epochs": 2, "lr": 1e-3, "batch_size": 64, "weight_decay": 0.0}  # masks at 0.6 and 0.6
    tuned = pot_train.finetune(base, data, spec, recipe, quiet=True)
    assert not any(parametrize_left(m) for m in tuned.modules())
    graph = lower(tuned, data.calibration(64), spec)
    for node, m in zip(graph.gemm_nodes(), pot_train._gemm_modules(tuned)):
        w = m.weight.detach().double().numpy().reshape(m.weight.shape[0], -1)
        # The pruned groups are exactly zero in float, so deployment prunes nothing more.
        assert_array_equal(node.payload["w"], pot.quantize_layer(w, 4).codes)
        assert np.mean(node.payload["w"] == 0) >= 0.6 - 1e-9
    # Base weights untouched (fine-tuning works on a copy).
    assert_array_equal(base[1].weight.detach().numpy(), tiny_mlp()[1].weight.detach().numpy())


def test_sparsity_schedule_ramps_to_the_target_and_masks_only_grow():
    assert pot_train.sparsity_schedule(0.6, 4) == pytest.approx([0.2, 0.4, 0.6, 0.6])
    assert pot_train.sparsity_schedule(0.5, 1) == [0.5]
    model = pot_train.attach(tiny_mlp(), parse("pot:bits=4"),
                             [torch.ones_like(m.weight) for m in pot_train._gemm_modules(tiny_mlp())])
    first = pot_train.prune_masks(model, parse("pot:bits=4,sparsity=0.3"))
    for m, mask in zip(pot_train._gemm_modules(model), first):
        m.parametrizations.weight[0].mask.copy_(mask)
    second = pot_train.prune_masks(model, parse("pot:bits=4,sparsity=0.6"))
    for a, b in zip(first, second):
        assert (b <= a).all() and b.sum() < a.sum()


def parametrize_left(m):
    return hasattr(m, "parametrizations")


def test_training_rejects_other_formats():
    with pytest.raises(ValueError, match="needs a pot"):
        pot_train.finetune(tiny_mlp(), tiny_data(), parse("int:bits=8"), pot_train.qat_recipe("mlp", "digits"))
    with pytest.raises(ValueError, match="no PoT fine-tune recipe"):
        pot_train.qat_recipe("lstm", "austen")
