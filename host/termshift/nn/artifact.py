"""The compiled-model artifact: what the board loads (numpy only, no torch).

One ZIP file (`.tsm`) holding `manifest.json` and one `.npy` per array (never
pickles). The manifest carries a schema name and version, the termshift
version, the format spec, the input shape, every node's parameters, and for
every array its file, dtype, shape and SHA-256. Loading checks all of them and
names what is wrong. Files are written atomically.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from termshift import __version__
from termshift.atomic import write_bytes_atomic
from termshift.formats.uniform import Requant
from termshift.nn.graph import NODE_TYPES, Flatten, Pool2d, QConv2d, QLinear, QuantGraph, QuantizeInput, ReLU

SCHEMA = "termshift-artifact"
VERSION = 1


class ArtifactError(ValueError):
    """The artifact is unreadable, corrupted, or from an incompatible version."""


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def save_artifact(graph: QuantGraph, path, expected: dict | None = None) -> Path:
    """Write `graph` (and optional expected outputs for a board self-check)."""
    files: dict[str, bytes] = {}
    nodes = []
    for i, node in enumerate(graph.nodes):
        entry = {"kind": node.kind, "name": node.name, "params": node.params(), "arrays": {}}
        for key, arr in node.arrays().items():
            fname = f"arrays/{i:03d}_{key}.npy"
            data = _npy_bytes(arr)
            files[fname] = data
            entry["arrays"][key] = {"file": fname, "dtype": str(arr.dtype), "shape": list(arr.shape),
                                    "sha256": hashlib.sha256(data).hexdigest()}
        nodes.append(entry)
    expected_entry = {}
    for key, arr in (expected or {}).items():
        fname = f"expected/{key}.npy"
        data = _npy_bytes(np.asarray(arr))
        files[fname] = data
        expected_entry[key] = {"file": fname, "dtype": str(np.asarray(arr).dtype), "shape": list(np.shape(arr)),
                               "sha256": hashlib.sha256(data).hexdigest()}
    manifest = {"schema": SCHEMA, "version": VERSION, "termshift_version": __version__, "fmt": graph.fmt,
                "input_shape": list(graph.input_shape), "meta": graph.meta, "nodes": nodes, "expected": expected_entry}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
        for name, data in files.items():
            z.writestr(name, data)
    return write_bytes_atomic(path, buf.getvalue())


def _read_array(z: zipfile.ZipFile, where: str, spec: dict, path) -> np.ndarray:
    try:
        data = z.read(spec["file"])
    except KeyError:
        raise ArtifactError(f"{path}: {where} refers to {spec['file']}, which is not in the archive") from None
    if hashlib.sha256(data).hexdigest() != spec["sha256"]:
        raise ArtifactError(f"{path}: {where} ({spec['file']}) fails its SHA-256 check: the file is corrupted")
    arr = np.load(io.BytesIO(data), allow_pickle=False)
    if str(arr.dtype) != spec["dtype"] or list(arr.shape) != spec["shape"]:
        raise ArtifactError(f"{path}: {where} is {arr.dtype}{list(arr.shape)}, manifest says {spec['dtype']}{spec['shape']}")
    return arr


def _build_node(kind: str, name: str, p: dict, a: dict):
    if kind == "quantize_input":
        return QuantizeInput(name, float(p["scale"]), int(p["bits"]), bool(p["signed"]))
    if kind in ("linear", "conv2d"):
        rq = None
        if p["requant"] is not None:
            r = p["requant"]
            rq = Requant(a["multiplier"], int(r["shift"]), int(r["lo"]), int(r["hi"])).validated(a["bias"].shape[0])
        payload = {k: a[f"payload_{k}"] for k in p["payload"]}
        common = dict(name=name, fmt=p["fmt"], payload=payload, bias=a["bias"], k=int(p["k"]), s_in=float(p["s_in"]),
                      s_w=a["s_w"], requant=rq, s_out=float(p["s_out"]), w_bits=float(p["w_bits"]),
                      a_bits=int(p["a_bits"]))
        if kind == "linear":
            return QLinear(**common)
        return QConv2d(**common, in_channels=int(p["in_channels"]), kernel=tuple(p["kernel"]),
                       stride=tuple(p["stride"]), padding=tuple(p["padding"]))
    if kind == "relu":
        return ReLU(name)
    if kind == "flatten":
        return Flatten(name)
    if kind == "pool2d":
        return Pool2d(name, p["mode"], tuple(p["kernel"]), tuple(p["stride"]))
    raise ArtifactError(f"unknown node kind {kind!r}; this termshift knows {', '.join(NODE_TYPES)}")


def load_artifact(path) -> tuple[QuantGraph, dict]:
    """(graph, expected outputs) from a `.tsm` file, every checksum verified."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"artifact {path} does not exist")
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ArtifactError(f"{path} is not a termshift artifact (not a ZIP file: {exc})") from None
    with z:
        try:
            manifest = json.loads(z.read("manifest.json"))
        except KeyError:
            raise ArtifactError(f"{path}: no manifest.json in the archive") from None
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{path}: manifest.json is not valid JSON ({exc})") from None
        if manifest.get("schema") != SCHEMA:
            raise ArtifactError(f"{path}: schema is {manifest.get('schema')!r}, expected {SCHEMA!r}")
        if manifest.get("version") != VERSION:
            raise ArtifactError(f"{path}: artifact version {manifest.get('version')} but this termshift reads "
                                f"version {VERSION}; re-export the model with this termshift")
        nodes = []
        for i, entry in enumerate(manifest["nodes"]):
            arrays = {k: _read_array(z, f"nodes[{i}].{k}", spec, path) for k, spec in entry["arrays"].items()}
            try:
                nodes.append(_build_node(entry["kind"], entry["name"], entry["params"], arrays))
            except (KeyError, TypeError, ValueError) as exc:
                if isinstance(exc, ArtifactError):
                    raise
                raise ArtifactError(f"{path}: nodes[{i}] ({entry.get('kind')}) is malformed: {exc}") from None
        expected = {k: _read_array(z, f"expected.{k}", spec, path) for k, spec in manifest.get("expected", {}).items()}
    graph = QuantGraph(nodes, tuple(manifest["input_shape"]), manifest["fmt"], manifest.get("meta", {}))
    return graph, expected
