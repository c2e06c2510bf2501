"""PoT quantization-aware training, log-domain pruning with a short
fine-tune, and the results of docs/results/pot.md.

QAT: every Linear/Conv2d weight gets a torch parametrization whose forward
is the deployed quantizer itself (formats.pot.quantize_layer, run in numpy
on the detached weight, then dequantized), with a straight-through
estimator: forward sees exactly the weights the engine will run, backward
passes the gradient to the latent float weight unchanged. Scales follow the
weights at every step, as they will at deployment.

Pruning (gradual): before each epoch the format's rule (formats.pot.prune)
picks the k-groups to drop at that epoch's share of the target, ramping
linearly to the spec's sparsity; dropped groups are held at zero (a mask
inside the same parametrization; masks only grow) while the rest fine-tune
with QAT. After training the parametrizations are removed and the masked latent
weights zeroed, so lowering the returned float model with the same spec
reproduces the trained forward bit for bit (the zero groups already meet
the target, so deployment prunes nothing more).

`python -m termshift.nn.pot_train` trains what it needs (cached under the
user's cache dir like nn/train.py) and prints the PTQ / QAT / pruning table
side by side with INT8, float, and a control: the float model fine-tuned
for the same epochs without a quantizer, then INT8 (what the extra epochs
alone are worth).
"""

from __future__ import annotations

import argparse
import copy
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from termshift.atomic import write_bytes_atomic, write_json_atomic
from termshift.backends.engine_pot import POT_ENGINE
from termshift.data.cache import cache_dir
from termshift.formats import FormatSpec, parse, pot
from termshift.nn.datasets import ImageData
from termshift.nn.gemm_formats import gemm_format
from termshift.nn.train import cache_key, fit

# Short fine-tunes from the trained float model (QAT) or from the QAT model
# (pruning, `prune_epochs` long: the share pruned ramps up over all but the last).
QAT_RECIPES = {
    ("mlp", "fashion-mnist"): {"epochs": 3, "prune_epochs": 4, "lr": 2e-4, "batch_size": 128, "weight_decay": 0.0},
    ("cnn", "fashion-mnist"): {"epochs": 3, "prune_epochs": 12, "lr": 5e-4, "batch_size": 128, "weight_decay": 0.0},
    ("mlp", "digits"): {"epochs": 10, "prune_epochs": 10, "lr": 3e-4, "batch_size": 64, "weight_decay": 0.0},
    ("cnn", "digits"): {"epochs": 20, "prune_epochs": 20, "lr": 1e-3, "batch_size": 64, "weight_decay": 0.0},
}


def qat_recipe(model: str, dataset: str) -> dict:
    try:
        return dict(QAT_RECIPES[(model, dataset)])
    except KeyError:
        raise ValueError(f"no PoT fine-tune recipe for model {model!r} on dataset {dataset!r}") from None


def _pot_spec(fmt: str | FormatSpec) -> FormatSpec:
    spec = parse(fmt) if isinstance(fmt, str) else fmt
    if spec.name != "pot":
        raise ValueError(f"PoT training needs a pot:... format, got {str(spec)!r}")
    return spec


class PotFakeQuant(nn.Module):
    """Parametrization: weight -> its deployed PoT value (STE), optionally masked."""

    def __init__(self, spec: FormatSpec, mask: torch.Tensor | None = None):
        super().__init__()
        self.spec = spec
        self.register_buffer("mask", mask if mask is not None else torch.empty(0))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.mask.numel():
            w = w * self.mask
        w2 = w.detach().reshape(w.shape[0], -1).double().numpy()
        layer = gemm_format("pot").layer(w2, _dense(self.spec))
        wq = torch.from_numpy(pot.dequantize(layer.codes, layer.scale)).to(w.dtype).reshape(w.shape)
        # Straight-through: the value is exactly wq (w - w.detach() is 0), the gradient reaches w unchanged.
        return wq + (w - w.detach())


def _dense(spec: FormatSpec) -> FormatSpec:
    return FormatSpec(spec.name, {**spec.params, "sparsity": 0.0})


def _gemm_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def _latent(m: nn.Module) -> torch.Tensor:
    """The float weight under a PotFakeQuant parametrization (masked), or the plain weight."""
    if not parametrize.is_parametrized(m, "weight"):
        return m.weight.detach()
    fq = m.parametrizations.weight[0]
    w = m.parametrizations.weight.original.detach()
    return w * fq.mask if fq.mask.numel() else w


def prune_masks(model: nn.Module, spec: FormatSpec) -> list[torch.Tensor]:
    """Per layer, 1 where the pruning rule keeps the weight's k-group, 0 where it drops it.

    Computed from the float weights with any current mask applied, so a group
    pruned once is all zero and sorts first: masks only ever grow.
    """
    gf = gemm_format("pot")
    masks = []
    for m in _gemm_modules(model):
        w = _latent(m)
        codes = gf.layer(w.reshape(w.shape[0], -1).double().numpy(), spec).codes
        keep = pot.group_mask(codes, POT_ENGINE.cols)
        rows = np.repeat(keep, POT_ENGINE.cols, axis=0)[: codes.shape[0]]
        masks.append(torch.from_numpy(rows.astype(np.float32)).reshape(w.shape))
    return masks


def attach(model: nn.Module, spec: FormatSpec, masks: list[torch.Tensor] | None = None) -> nn.Module:
    for i, m in enumerate(_gemm_modules(model)):
        parametrize.register_parametrization(m, "weight", PotFakeQuant(spec, None if masks is None else masks[i]))
    return model


def detach(model: nn.Module, masks: list[torch.Tensor] | None = None) -> nn.Module:
    """Back to a plain float model (latent weights), pruned groups zeroed."""
    for i, m in enumerate(_gemm_modules(model)):
        parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
        if masks is not None:
            with torch.no_grad():
                m.weight.mul_(masks[i])
    return model


def sparsity_schedule(target: float, epochs: int) -> list[float]:
    """Pruned share at the start of each epoch: a linear ramp to `target` over
    all but the last epoch, which fine-tunes at the target."""
    ramp = max(1, epochs - 1)
    return [target * min(e + 1, ramp) / ramp for e in range(epochs)]


def finetune(model: nn.Module, data: ImageData, spec: FormatSpec, recipe: dict, seed: int = 0,
             quiet: bool = False) -> nn.Module:
    """QAT (sparsity 0), or gradual pruning with QAT (sparsity > 0), of a copy of `model`.

    Pruning: before each epoch the rule picks the groups to drop at that
    epoch's share of the target (sparsity_schedule) and they are masked; the
    last epoch trains at the full target with the final masks.
    """
    spec = _pot_spec(spec)
    model = copy.deepcopy(model)
    if spec["sparsity"] == 0:
        attach(model, spec)
        fit(model, data, recipe, seed, quiet)
        return detach(model).eval()
    attach(model, spec, [torch.ones_like(m.weight) for m in _gemm_modules(model)])
    masks = None
    for e, share in enumerate(sparsity_schedule(spec["sparsity"], recipe["epochs"])):
        masks = prune_masks(model, FormatSpec(spec.name, {**spec.params, "sparsity": share}))
        for m, mask in zip(_gemm_modules(model), masks):
            m.parametrizations.weight[0].mask.copy_(mask)
        fit(model, data, {**recipe, "epochs": 1}, seed + e, quiet)
    return detach(model, masks).eval()


def _cached(name: str, data: ImageData, recipe: dict, base: nn.Module, train, seed: int, quiet: bool,
            use_cache: bool, what: str) -> tuple[nn.Module, float]:
    path = cache_dir(create=True) / "models" / f"{name}-{data.name}-pot-{cache_key(name, data, recipe, seed)}.pt"
    model = copy.deepcopy(base)
    if use_cache and path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval(), 0.0
    if not quiet:
        print(f"fine-tuning {name} on {data.name} {what}; cached at {path}", file=sys.stderr)
    t0 = time.perf_counter()
    model = train()
    seconds = time.perf_counter() - t0
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    write_bytes_atomic(path, buf.getvalue())
    return model, seconds


def _train_args(recipe: dict, epochs_key: str = "epochs") -> dict:
    return {"epochs": recipe[epochs_key], **{k: recipe[k] for k in ("lr", "batch_size", "weight_decay")}}


def trained_pot_model(name: str, data: ImageData, fmt: str | FormatSpec, base: nn.Module, base_tag: str,
                      seed: int = 0, quiet: bool = False, use_cache: bool = True) -> tuple[nn.Module, float]:
    """Fine-tuned weights for (model, data, spec, base), cached; returns (model, train seconds, 0 if cached)."""
    spec = _pot_spec(fmt)
    recipe = {**qat_recipe(name, data.name), "pot": str(spec), "base": base_tag}
    if spec["sparsity"] > 0:
        recipe["prune_rule"] = 4  # formats.pot.prune: mean scores, whole groups count; linear schedule
    train = _train_args(recipe, "prune_epochs" if spec["sparsity"] > 0 else "epochs")
    return _cached(name, data, recipe, base, lambda: finetune(base, data, spec, train, seed, quiet), seed, quiet,
                   use_cache, f"for {spec} ({train['epochs']} epochs)")


def float_control(name: str, data: ImageData, base: nn.Module, seed: int = 0, quiet: bool = False,
                  use_cache: bool = True) -> tuple[nn.Module, float]:
    """The float model fine-tuned with the QAT recipe and no quantizer: what the
    extra epochs alone buy, to read QAT's gain over INT8 PTQ against."""
    recipe = {**qat_recipe(name, data.name), "control": "float"}
    train = _train_args(recipe)

    def run():
        model = copy.deepcopy(base)
        return fit(model, data, train, seed, quiet).eval()

    return _cached(name, data, recipe, base, run, seed, quiet, use_cache, f"in float ({train['epochs']} epochs)")


# --------------------------------------------------------------------------- results


def evaluate(model: nn.Module, data: ImageData, fmt: str, backend: str = "reference") -> dict:
    """Accuracy and modeled cost of `model` lowered to `fmt` (PTQ of whatever weights it has)."""
    from termshift.backends import get_backend
    from termshift.energy.model import summarize
    from termshift.nn.lower import lower

    graph = lower(model, data.calibration(), fmt)
    run = graph.run(data.x_test, get_backend(backend))
    codes = [n.payload["w"] for n in graph.gemm_nodes()]
    zeros = sum(int(np.count_nonzero(c == 0)) for c in codes) / sum(c.size for c in codes)
    return {"format": str(graph.fmt), "accuracy": float((run.output.argmax(1) == data.y_test).mean()),
            "zero_weights": zeros, **summarize(graph.costs())}


def _row(model_name: str, method: str, r: dict, train_s: float = 0.0) -> dict:
    t = r["total"]
    return {"model": model_name, "method": method, "format": r["format"], "accuracy": r["accuracy"],
            "zero_weights": r.get("zero_weights", 0.0), "weight_kib": t["weight_bits"] / 8192,
            "cycles": t["cycles"], "compute_uj": t["compute_j"] * 1e6, "energy_uj": t["energy_j"] * 1e6,
            "ops": t["ops"], "train_seconds": train_s}


# (label, spec, how): how is "ptq", "qat" (from float) or "prune" (from the QAT model of the same bits)
EXPERIMENTS = (
    ("PTQ", "pot:bits=4", "ptq"),
    ("PTQ", "pot:bits=3", "ptq"),
    ("PTQ", "pot:bits=4,rounding=log", "ptq"),
    ("PTQ", "pot:bits=4,scale=pow2", "ptq"),
    ("QAT", "pot:bits=4", "qat"),
    ("QAT", "pot:bits=3", "qat"),
    ("QAT", "pot:bits=4,scale=pow2", "qat"),
    ("PTQ prune", "pot:bits=4,sparsity=0.5", "ptq-on-qat"),
    ("QAT prune+FT", "pot:bits=4,sparsity=0.5", "prune"),
    ("QAT prune+FT", "pot:bits=4,sparsity=0.75", "prune"),
)


def run_results(models=("mlp", "cnn"), dataset: str = "auto", quiet: bool = False) -> dict:
    from termshift.nn.datasets import load_image_data
    from termshift.nn.train import float_accuracy, trained_model

    data = load_image_data(dataset)
    rows = []
    for name in models:
        base = trained_model(name, data, quiet=quiet)
        acc, _ = float_accuracy(base, data.x_test, data.y_test)
        rows.append({"model": name, "method": "float", "format": "float", "accuracy": acc})
        rows.append(_row(name, "PTQ", evaluate(base, data, "int:bits=8")))
        control, train_s = float_control(name, data, base, quiet=quiet)
        rows.append(_row(name, "float+FT, PTQ", evaluate(control, data, "int:bits=8"), train_s))
        qat: dict[int, nn.Module] = {}
        for label, fmt, how in EXPERIMENTS:
            spec = parse(fmt)
            train_s = 0.0
            if how == "ptq":
                model = base
            elif how == "qat":
                model, train_s = trained_pot_model(name, data, fmt, base, "float", quiet=quiet)
                if spec["scale"] == "float":
                    qat[spec["bits"]] = model
            else:
                dense = qat.get(spec["bits"])
                if dense is None:
                    dense, _ = trained_pot_model(name, data, f"pot:bits={spec['bits']}", base, "float", quiet=quiet)
                    qat[spec["bits"]] = dense
                if how == "ptq-on-qat":
                    model = dense
                else:
                    model, train_s = trained_pot_model(name, data, fmt, dense, f"qat{spec['bits']}", quiet=quiet)
            rows.append(_row(name, label, evaluate(model, data, fmt), train_s))
            if not quiet:
                print(format_row(rows[-1]), file=sys.stderr)
    return {"dataset": data.name, "rows": rows}


def format_row(r: dict) -> str:
    if r["method"] == "float":
        return f"{r['model']:<4} {'float':<13} {'float':<44} {100 * r['accuracy']:6.2f}%"
    return (f"{r['model']:<4} {r['method']:<13} {r['format']:<44} {100 * r['accuracy']:6.2f}% "
            f"{100 * r['zero_weights']:5.1f}% {r['weight_kib']:8.1f} {r['cycles']:>10,} "
            f"{r['compute_uj']:9.3f} {r['energy_uj']:9.2f}")


def format_results(report: dict) -> str:
    lines = [f"PoT results on {report['dataset']} (full test set, reference backend, batch-1 modeled costs)",
             f"{'':4} {'method':<13} {'format':<44} {'acc':>7} {'zeros':>6} {'W KiB':>8} {'cycles':>10} "
             f"{'comp uJ':>9} {'tot uJ':>9}  vs INT8: d-acc  compute  total  cycles"]
    int8 = {r["model"]: r for r in report["rows"] if r["format"].startswith("int:bits=8") and r["method"] == "PTQ"}
    for r in report["rows"]:
        line = format_row(r)
        base = int8.get(r["model"])
        if r["method"] != "float" and base is not None and r is not base:
            line += (f"  {100 * (r['accuracy'] - base['accuracy']):+6.2f} {base['compute_uj'] / r['compute_uj']:7.2f}x "
                     f"{base['energy_uj'] / r['energy_uj']:5.2f}x {base['cycles'] / r['cycles']:6.2f}x")
        lines.append(line)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="PoT PTQ / QAT / pruning results next to INT8 and float.")
    parser.add_argument("--models", default="mlp,cnn", help="comma-separated: mlp, cnn")
    parser.add_argument("--dataset", default="auto", help="fashion-mnist, digits or auto")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    report = run_results(tuple(m.strip() for m in args.models.split(",") if m.strip()), args.dataset, args.quiet)
    print(format_results(report))
    if args.json:
        write_json_atomic(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
