"""Lowering: a trained torch module -> a calibrated QuantGraph.

Supported: chains (as traced by torch.fx) of Linear, Conv2d, ReLU,
MaxPool2d/AvgPool2d, Flatten/torch.flatten and Dropout/Identity (no-ops at
inference). A ReLU right after a Linear/Conv2d is fused into the requant clamp
(lo = 0). Activation scales are calibrated post-training: the max |value| at
each quantization point over a calibration batch of float activations. The last
GEMM dequantizes its int32 result to float (logits); every other GEMM
requantizes to B-bit codes (unsigned after ReLU, symmetric signed otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.fx
from torch import nn

from termshift.checks import as_float_array
from termshift.formats import FormatSpec, parse, uniform
from termshift.nn.gemm_formats import gemm_format
from termshift.nn.graph import Flatten, Pool2d, QConv2d, QLinear, QuantGraph, QuantizeInput, ReLU, quantize_gemm
from termshift.nn.im2col import conv_patches


@dataclass
class FloatOp:
    kind: str  # linear | conv2d | relu | pool | flatten
    module: nn.Module | None
    name: str
    relu: bool = False  # fused ReLU after a GEMM


def _pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def float_ops(model: nn.Module) -> list[FloatOp]:
    """The model as a chain of supported ops, or a clear error naming the first unsupported node."""
    try:
        traced = torch.fx.symbolic_trace(model)
    except Exception as exc:  # fx raises many types for untraceable code
        raise ValueError(f"cannot trace {type(model).__name__} with torch.fx: {exc}") from exc
    ops: list[FloatOp] = []
    prev = None
    for node in traced.graph.nodes:
        if node.op in ("placeholder", "output"):
            if node.op == "output" and node.args[0] is not prev:
                raise ValueError("the model's output is not the last op of a chain")
            prev = node if node.op == "placeholder" else prev
            continue
        inputs = [a for a in node.all_input_nodes]
        if inputs != [prev]:
            raise ValueError(f"node {node.name!r} is not a chain step (inputs {[a.name for a in inputs]}): "
                             "only sequential models are supported")
        if node.op == "call_module":
            mod = traced.get_submodule(node.target)
            if isinstance(mod, nn.Linear):
                ops.append(FloatOp("linear", mod, node.target))
            elif isinstance(mod, nn.Conv2d):
                if mod.groups != 1 or _pair(mod.dilation) != (1, 1) or mod.padding_mode != "zeros":
                    raise ValueError(f"{node.target}: only groups=1, dilation=1, zero-padded Conv2d is supported")
                ops.append(FloatOp("conv2d", mod, node.target))
            elif isinstance(mod, nn.ReLU):
                ops.append(FloatOp("relu", mod, node.target))
            elif isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
                if _pair(mod.padding) != (0, 0) or getattr(mod, "ceil_mode", False) or _pair(getattr(mod, "dilation", 1)) != (1, 1):
                    raise ValueError(f"{node.target}: pooling must have padding 0, dilation 1, ceil_mode False")
                ops.append(FloatOp("pool", mod, node.target))
            elif isinstance(mod, nn.Flatten):
                if mod.start_dim != 1 or mod.end_dim != -1:
                    raise ValueError(f"{node.target}: only Flatten(start_dim=1) is supported")
                ops.append(FloatOp("flatten", mod, node.target))
            elif isinstance(mod, (nn.Dropout, nn.Identity)):
                pass
            else:
                raise ValueError(f"unsupported module {node.target!r} ({type(mod).__name__}); supported: "
                                 "Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, Flatten, Dropout, Identity")
        elif node.op == "call_function" and node.target in (torch.relu, nn.functional.relu):
            ops.append(FloatOp("relu", None, node.name))
        elif node.op == "call_function" and node.target is torch.flatten and node.args[1:2] == (1,):
            ops.append(FloatOp("flatten", None, node.name))
        else:
            raise ValueError(f"unsupported operation {node.name!r} ({node.op} {node.target})")
        prev = node
    # Fuse GEMM + ReLU.
    fused: list[FloatOp] = []
    for op in ops:
        if op.kind == "relu" and fused and fused[-1].kind in ("linear", "conv2d") and not fused[-1].relu:
            fused[-1].relu = True
        else:
            fused.append(op)
    # Readable layer names (fc1, conv2, pool1, ...) in place of fx's module paths.
    counts: dict[str, int] = {}
    short = {"linear": "fc", "conv2d": "conv", "relu": "relu", "pool": "pool", "flatten": "flatten"}
    for op in fused:
        counts[op.kind] = counts.get(op.kind, 0) + 1
        op.name = f"{short[op.kind]}{counts[op.kind]}"
    gemms = [i for i, op in enumerate(fused) if op.kind in ("linear", "conv2d")]
    if not gemms:
        raise ValueError("the model has no Linear or Conv2d layer to run on an engine")
    if gemms[-1] != len(fused) - 1:
        raise ValueError(f"the last op must be a Linear or Conv2d (it dequantizes to float), got {fused[-1].kind} {fused[-1].name!r}")
    return fused


def _apply(op: FloatOp, x: torch.Tensor) -> torch.Tensor:
    if op.kind == "flatten":
        y = torch.flatten(x, 1)
    elif op.kind == "relu":
        y = torch.relu(x)
    else:
        y = op.module(x)
    return torch.relu(y) if op.relu else y


# Activations between engines are uniform codes of this width for every
# weight format (the papers keep INT8 activations), except `int:bits=B`, whose
# activations are B bits too.
ACT_BITS = 8


def lower(model: nn.Module, calibration: np.ndarray, fmt: str | FormatSpec = "int:bits=8") -> QuantGraph:
    """Quantize `model` to a QuantGraph in format `fmt` (any format in nn/gemm_formats.py)."""
    spec = parse(fmt) if isinstance(fmt, str) else fmt
    gemm_format(spec)  # unknown formats fail before any work
    bits = spec["bits"] if spec.name == "int" else ACT_BITS
    calib = np.asarray(calibration, np.float32)
    if calib.ndim < 2 or len(calib) == 0:
        raise ValueError(f"calibration data must be a non-empty batch, got shape {calib.shape}")
    as_float_array(calib, "calibration")  # NaN/Inf check
    ops = float_ops(model)
    model.eval()

    x = torch.from_numpy(calib)
    in_signed = bool(calib.min() < 0)
    s_act = uniform.activation_scale(calib, bits, signed=in_signed)
    nodes = [QuantizeInput("input", s_act, bits, in_signed)]
    act_signed = in_signed
    last = len(ops) - 1
    with torch.no_grad():
        for i, op in enumerate(ops):
            y = _apply(op, x)
            if op.kind in ("linear", "conv2d"):
                w = op.module.weight.detach().double().numpy()
                w2 = w.reshape(w.shape[0], -1)
                b = op.module.bias.detach().double().numpy() if op.module.bias is not None else None
                index = sum(isinstance(n, (QLinear, QConv2d)) for n in nodes)
                # patches only when a format asks for them (round=gptq): a callable
                rows = partial(conv_patches, op.module, x.numpy()) if op.kind == "conv2d" else None
                gemm = quantize_gemm(op.name, w2, b, s_act, spec, x_calib=x.numpy(), in_signed=act_signed,
                                     index=index, a_bits=bits, x_rows=rows)
                if i == last:
                    rq, s_out = None, 1.0
                else:
                    out_signed = bool(y.min() < 0)
                    s_out = uniform.activation_scale(y.numpy(), bits, signed=out_signed)
                    rq = uniform.requant_params(s_act * gemm.s_w / s_out, bits, out_signed=out_signed, relu=op.relu)
                    act_signed = out_signed
                common = dict(name=op.name, fmt=gemm.fmt, payload=gemm.payload, bias=gemm.bias, k=gemm.k,
                              s_in=gemm.s_in, s_w=gemm.s_w, w_bits=gemm.w_bits, a_bits=bits)
                if op.kind == "linear":
                    nodes.append(QLinear(**common, requant=rq, s_out=s_out))
                else:
                    m = op.module
                    nodes.append(QConv2d(**common, requant=rq, s_out=s_out, in_channels=m.in_channels,
                                         kernel=_pair(m.kernel_size), stride=_pair(m.stride), padding=_pair(m.padding)))
                s_act = s_out
            elif op.kind == "relu":
                nodes.append(ReLU(op.name))
            elif op.kind == "flatten":
                nodes.append(Flatten(op.name))
            elif op.kind == "pool":
                m = op.module
                kernel = _pair(m.kernel_size)
                stride = _pair(m.stride if m.stride is not None else m.kernel_size)
                mode = "max" if isinstance(m, nn.MaxPool2d) else "avg"
                nodes.append(Pool2d(op.name, mode, kernel, stride))
            x = y
    return QuantGraph(nodes, tuple(calib.shape[1:]), str(spec))
