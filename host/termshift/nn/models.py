"""The torch models termshift evaluates, and their training configurations.

- `mlp`: 784-512-512-10 with ReLU (the Term Revealing paper's MNIST MLP),
  input size taken from the dataset (64 for 8x8 digits).
- `cnn`: LeNet-5 class: conv5x5(6, pad 2) - ReLU - maxpool2 - conv5x5(16) -
  ReLU - maxpool2 - 120 - 84 - 10. On 8x8 digits it uses 3x3 kernels.
All are plain nn.Sequential chains of Linear/Conv2d/ReLU/MaxPool2d/Flatten,
which is exactly what lower.py knows how to quantize.
"""

from __future__ import annotations

import torch
from torch import nn


def mlp(input_shape: tuple, n_classes: int = 10, hidden: int = 512) -> nn.Sequential:
    n_in = 1
    for d in input_shape:
        n_in *= d
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(n_in, hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, n_classes),
    )


def cnn(input_shape: tuple, n_classes: int = 10) -> nn.Sequential:
    c, h, w = input_shape
    k1, k2 = (5, 5) if h >= 28 else (3, 3)
    pad = k1 // 2
    h2 = (h // 2 - k2 + 1) // 2
    w2 = (w // 2 - k2 + 1) // 2
    return nn.Sequential(
        nn.Conv2d(c, 6, k1, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, k2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * h2 * w2, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, n_classes),
    )


BUILDERS = {"mlp": mlp, "cnn": cnn}

# Training recipes: seeded Adam; epochs sized for the time targets on a 2-core
# CPU (Fashion-MNIST: 60k images). The 1.4k-image digits set needs more epochs
# to converge and they cost seconds.
RECIPES = {
    ("mlp", "fashion-mnist"): {"epochs": 8, "lr": 1e-3, "batch_size": 128, "weight_decay": 0.0},
    ("cnn", "fashion-mnist"): {"epochs": 8, "lr": 2e-3, "batch_size": 128, "weight_decay": 0.0},
    ("mlp", "digits"): {"epochs": 30, "lr": 1e-3, "batch_size": 64, "weight_decay": 0.0},
    ("cnn", "digits"): {"epochs": 60, "lr": 3e-3, "batch_size": 64, "weight_decay": 0.0},
}


def recipe_for(model: str, dataset: str) -> dict:
    try:
        return dict(RECIPES[(model, dataset)])
    except KeyError:
        raise ValueError(f"no training recipe for model {model!r} on dataset {dataset!r}") from None


def build(name: str, input_shape: tuple, n_classes: int = 10) -> nn.Module:
    if name not in BUILDERS:
        raise ValueError(f"unknown image model {name!r}; choose one of {', '.join(BUILDERS)}")
    torch.manual_seed(0)
    return BUILDERS[name](tuple(input_shape), n_classes)
