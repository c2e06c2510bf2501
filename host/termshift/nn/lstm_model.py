"""The torch side of the LSTM language model: architecture (embedding ->
stacked nn.LSTM -> Linear decoder), the training recipe, seeded CPU training
with truncated BPTT and a progress bar, the weight cache, float scoring, and
export of the weights to numpy (termshift.nn.lstm_quant.LSTMParams).

The cache key hashes everything that determines the weights: the recipe
(sizes, optimizer, schedule, seed), the corpus name, a digest of the training
ids and the vocabulary, and the torch version. Weights are written atomically
under the user's cache dir (termshift.data.cache.cache_dir).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import sys
import time

import numpy as np
import torch
from torch import nn

from termshift.atomic import write_bytes_atomic
from termshift.data.cache import cache_dir
from termshift.nn.lstm_quant import LSTMLayerParams, LSTMParams, check_ids

# Sized for the < 10 min target on a 2-core CPU (docs/models/lstm.md has the
# measured time): 32 streams x 100-step truncated BPTT windows, cosine decay
# (32 streams beat 64 over the same 3 epochs, ~10 % more time: 1.70 vs 1.79
# bits/char on valid).
# One intra-op thread: a BPTT step is a chain of small GEMMs (32 x 256 by
# 256 x 1024) that a second thread speeds up only ~1.6x on an idle machine but
# slows down ~10x when another process holds a core (measured: 3.5 s vs 0.38 s
# per step), and a fixed thread count fixes the summation order, so the
# weights do not depend on the machine's core count.
RECIPE = {
    "embed": 64, "hidden": 256, "layers": 2,
    "batch": 32, "seq": 100, "epochs": 3,
    "lr": 3e-3, "lr_final": 1e-4, "clip": 1.0, "seed": 0, "threads": 1,
}


class CharLSTM(nn.Module):
    def __init__(self, vocab: int, embed: int, hidden: int, layers: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, layers, batch_first=True)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, ids: torch.Tensor, state=None):
        out, state = self.lstm(self.embed(ids), state)
        return self.decoder(out), state


def build_model(vocab: int, recipe: dict) -> CharLSTM:
    torch.manual_seed(recipe["seed"])  # the initial weights are part of what the seed fixes
    return CharLSTM(vocab, recipe["embed"], recipe["hidden"], recipe["layers"])


def data_digest(train_ids: np.ndarray, vocab: list[str]) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(train_ids, dtype=np.int64).tobytes())
    h.update("\x00".join(vocab).encode("utf-8"))
    return h.hexdigest()[:16]


def cache_key(corpus: str, train_ids: np.ndarray, vocab: list[str], recipe: dict) -> str:
    cfg = {"model": "lstm", "recipe": recipe, "corpus": corpus, "data": data_digest(train_ids, vocab),
           "torch": torch.__version__.split("+")[0], "format": 2}
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def stream_matrix(ids: np.ndarray, streams: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut one id sequence into `streams` contiguous rows: inputs and next-token targets."""
    n = (len(ids) - 1) // streams
    if n < 1:
        raise ValueError(f"{len(ids)} tokens are too few for {streams} training streams")
    return ids[:n * streams].reshape(streams, n), ids[1:n * streams + 1].reshape(streams, n)


def _progress(done: int, total: int, bpc: float, t0: float) -> None:
    tty = sys.stderr.isatty()
    if not tty and done != total and done % 100:
        return  # a line every 100 steps in logs, a live bar on a terminal
    width = 30
    fill = int(width * done / total)
    el = time.time() - t0
    eta = el / done * (total - done)
    start = "\r" if tty else ""
    end = "" if tty and done != total else "\n"
    sys.stderr.write(f"{start}lstm [{'#' * fill}{'.' * (width - fill)}] {done}/{total} {bpc:.3f} bits/char "
                     f"{el:.0f}s eta {eta:.0f}s{end}")
    sys.stderr.flush()


def fit(model: CharLSTM, train_ids: np.ndarray, recipe: dict, quiet: bool = False) -> CharLSTM:
    """Adam over truncated-BPTT windows; state carried across windows, reset each epoch."""
    threads = torch.get_num_threads()
    torch.set_num_threads(recipe["threads"])
    try:
        return _fit(model, train_ids, recipe, quiet)
    finally:
        torch.set_num_threads(threads)


def _fit(model: CharLSTM, train_ids: np.ndarray, recipe: dict, quiet: bool) -> CharLSTM:
    torch.manual_seed(recipe["seed"])
    gen = torch.Generator().manual_seed(recipe["seed"])
    x_all, y_all = (torch.from_numpy(a) for a in stream_matrix(train_ids, recipe["batch"]))
    seq, n = recipe["seq"], x_all.shape[1]
    # A random start offset per epoch moves the window boundaries, so no
    # character is always at the start of a window (where it gets least context).
    offsets = [int(torch.randint(0, seq, (1,), generator=gen)) for _ in range(recipe["epochs"])]
    # (start, end, first window of its epoch)
    windows = [(s, min(s + seq, n), s == o) for o in offsets for s in range(o, n, seq)]
    total = len(windows)
    if total == 0:
        raise ValueError(f"{n} steps per stream are too few for seq={seq} windows; use fewer streams or more data")
    opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
    floor = recipe["lr_final"] / recipe["lr"]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(i, total) / total)))
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    state = None
    t0 = time.time()
    ema = None
    for i, (a, b, first) in enumerate(windows):
        if first:
            state = None
        opt.zero_grad()
        logits, state = model(x_all[:, a:b], state)
        state = tuple(s.detach() for s in state)
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y_all[:, a:b].reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), recipe["clip"])
        opt.step()
        sched.step()
        bpc = loss.item() / math.log(2)
        ema = bpc if ema is None else 0.98 * ema + 0.02 * bpc
        if not quiet and ((i + 1) % 10 == 0 or i + 1 == total):
            _progress(i + 1, total, ema, t0)
    model.eval()
    return model


def trained_lstm(corpus: str, train_ids: np.ndarray, vocab: list[str], recipe: dict | None = None,
                 quiet: bool = False, use_cache: bool = True) -> CharLSTM:
    """Load the cached weights for this configuration, or train and cache them."""
    recipe = {**RECIPE, **(recipe or {})}
    unknown = set(recipe) - set(RECIPE)
    if unknown:
        raise ValueError(f"unknown LSTM recipe key(s) {sorted(unknown)}; known: {sorted(RECIPE)}")
    model = build_model(len(vocab), recipe)
    path = cache_dir(create=True) / "models" / f"lstm-{corpus}-{cache_key(corpus, train_ids, vocab, recipe)}.pt"
    if use_cache and path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        model.eval()
        return model
    if not quiet:
        print(f"training lstm on {corpus} ({len(train_ids):,} tokens, {recipe['epochs']} epochs, "
              f"seed {recipe['seed']}); cached at {path}", file=sys.stderr)
    t0 = time.time()
    fit(model, train_ids, recipe, quiet)
    if not quiet:
        print(f"trained in {time.time() - t0:.0f}s", file=sys.stderr)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    write_bytes_atomic(path, buf.getvalue())
    return model


def export_params(model: CharLSTM) -> LSTMParams:
    """The model's weights as float64 numpy (checked for shape and NaN/Inf)."""
    def a(t):
        return t.detach().cpu().double().numpy().copy()

    lstm = model.lstm
    if lstm.bidirectional or lstm.proj_size or not lstm.bias or not lstm.batch_first:
        raise ValueError("only unidirectional, batch-first nn.LSTM with biases and no projection is supported")
    layers = [LSTMLayerParams(a(getattr(lstm, f"weight_ih_l{k}")), a(getattr(lstm, f"weight_hh_l{k}")),
                              a(getattr(lstm, f"bias_ih_l{k}")), a(getattr(lstm, f"bias_hh_l{k}")))
              for k in range(lstm.num_layers)]
    return LSTMParams(a(model.embed.weight), layers, a(model.decoder.weight), a(model.decoder.bias))


def torch_logits(model: CharLSTM, ids, state=None) -> tuple[np.ndarray, tuple]:
    """Float32 torch logits (B, T, V) as float64 numpy, and the state to carry on."""
    ids = check_ids(ids, model.embed.num_embeddings)
    with torch.no_grad():
        logits, state = model(torch.from_numpy(ids), state)
    return logits.double().numpy(), state
