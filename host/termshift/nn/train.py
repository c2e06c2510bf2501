"""Deterministic CPU training with a progress bar, cached by configuration.

The cache key is a hash of everything that determines the weights (model,
recipe, dataset name and a digest of its data, seed, torch version), so a
changed recipe or dataset trains anew and an unchanged one loads in
milliseconds. Weights are written atomically under the user's cache dir.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import time

import numpy as np
import torch
from torch import nn

from termshift.atomic import write_bytes_atomic
from termshift.data.cache import cache_dir
from termshift.nn.datasets import ImageData
from termshift.nn.models import build, recipe_for


def data_digest(data: ImageData) -> str:
    h = hashlib.sha256()
    for a in (data.x_train, data.y_train, data.x_test, data.y_test):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def cache_key(model: str, data: ImageData, recipe: dict, seed: int) -> str:
    cfg = {"model": model, "recipe": recipe, "dataset": data.name, "data": data_digest(data),
           "seed": seed, "torch": torch.__version__.split("+")[0], "format": 1}
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def _progress(prefix: str, done: int, total: int, loss: float, t0: float) -> None:
    if not sys.stderr.isatty() and done != total:
        return  # one line per epoch in logs, a live bar on a terminal
    width = 30
    fill = int(width * done / total)
    sys.stderr.write(f"\r{prefix} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} loss {loss:.4f} {time.time() - t0:.0f}s")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def fit(model: nn.Module, data: ImageData, recipe: dict, seed: int = 0, quiet: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(data.x_train)
    y = torch.from_numpy(data.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    loss_fn = nn.CrossEntropyLoss()
    bs = recipe["batch_size"]
    n_batches = (len(x) + bs - 1) // bs
    model.train()
    for epoch in range(recipe["epochs"]):
        perm = torch.randperm(len(x), generator=g)
        t0 = time.time()
        for i in range(n_batches):
            idx = perm[i * bs:(i + 1) * bs]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            if not quiet and (i % 20 == 0 or i == n_batches - 1):
                _progress(f"epoch {epoch + 1}/{recipe['epochs']}", i + 1, n_batches, loss.item(), t0)
    model.eval()
    return model


def trained_model(name: str, data: ImageData, seed: int = 0, recipe: dict | None = None,
                  quiet: bool = False, use_cache: bool = True) -> nn.Module:
    """Load the cached weights for this configuration, or train and cache them."""
    recipe = dict(recipe or recipe_for(name, data.name))
    model = build(name, data.input_shape, int(data.y_train.max()) + 1)
    path = cache_dir(create=True) / "models" / f"{name}-{data.name}-{cache_key(name, data, recipe, seed)}.pt"
    if use_cache and path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        model.eval()
        return model
    if not quiet:
        print(f"training {name} on {data.name} ({recipe['epochs']} epochs, seed {seed}); cached at {path}", file=sys.stderr)
    fit(model, data, recipe, seed, quiet)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    write_bytes_atomic(path, buf.getvalue())
    return model


def float_accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 2048) -> tuple[float, np.ndarray]:
    """Top-1 accuracy and logits of the float model."""
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            outs.append(model(torch.from_numpy(x[i:i + batch_size])).numpy())
    logits = np.concatenate(outs)
    return float((logits.argmax(1) == y).mean()), logits
