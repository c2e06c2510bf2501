"""The overlay manifest: what a built `termshift.bit` contains, in a form the
board driver can check before it trusts a register offset.

Owns the schema (version 1, described in docs/hls_flow.md), `validate()`,
`check_files()` for the bitstream/hwh checksums, `load()`, and the writer that
scripts/build_overlay.sh runs after Vivado:

    python -m termshift.hls.manifest write --root . --build-info build/overlay/build_info.json \
        --out overlays/zcu104/manifest.json
    python -m termshift.hls.manifest check overlays/zcu104/manifest.json

Only the standard library is used: this runs on the board (numpy + pynq) and
on a build host with nothing but Vivado and Python.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"

_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(?:[-+.][0-9A-Za-z.+-]+)?$")
_ENGINE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_FILE_RE = re.compile(r"^[A-Za-z0-9_.-]+$")

REQUIRED = ("manifest_version", "version", "board", "part", "clock_mhz", "bitstream", "hwh", "sha256", "engines")
ENGINE_REQUIRED = ("name", "top", "cell", "rows", "cols", "tile_k", "control_base", "control_range")
# Anything the PL can hold: a sanity bound, not a timing claim.
MAX_CLOCK_MHZ = 1000.0


def _fail(field: str, problem: str) -> None:
    raise ValueError(f"manifest field '{field}': {problem}")


def _int(value: Any, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(field, f"expected an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        _fail(field, f"must be >= {minimum}, got {value}")
    return value


def _str(value: Any, field: str, pattern: re.Pattern | None = None, what: str = "") -> str:
    if not isinstance(value, str) or not value:
        _fail(field, f"expected a non-empty string, got {value!r}")
    if pattern is not None and not pattern.match(value):
        _fail(field, f"{value!r} is not {what}")
    return value


def validate(manifest: Any) -> dict:
    """Check `manifest` against schema version 1; return it unchanged.

    Raises ValueError naming the first bad field (dotted path, e.g.
    'engines[0].rows'). Unknown keys are allowed so later versions can add
    fields an older driver ignores; a different manifest_version is not.
    """
    if not isinstance(manifest, dict):
        raise ValueError(f"manifest must be a JSON object, got {type(manifest).__name__}")
    for key in REQUIRED:
        if key not in manifest:
            _fail(key, "missing")
    mv = manifest["manifest_version"]
    _int(mv, "manifest_version", 1)
    if mv != MANIFEST_VERSION:
        _fail("manifest_version", f"this termshift reads version {MANIFEST_VERSION}, got {mv}")
    _str(manifest["version"], "version", _VERSION_RE, "a version like 0.1.0")
    _str(manifest["board"], "board", _IDENT_RE, "a board name like zcu104")
    _str(manifest["part"], "part")
    clock = manifest["clock_mhz"]
    if isinstance(clock, bool) or not isinstance(clock, (int, float)) or not math.isfinite(clock):
        _fail("clock_mhz", f"expected a number, got {clock!r}")
    if not 0 < clock <= MAX_CLOCK_MHZ:
        _fail("clock_mhz", f"must be in (0, {MAX_CLOCK_MHZ:g}], got {clock}")
    bit = _str(manifest["bitstream"], "bitstream", _FILE_RE, "a plain file name")
    hwh = _str(manifest["hwh"], "hwh", _FILE_RE, "a plain file name")
    if not bit.endswith(".bit"):
        _fail("bitstream", f"{bit!r} does not end in .bit")
    if not hwh.endswith(".hwh"):
        _fail("hwh", f"{hwh!r} does not end in .hwh")
    # PYNQ finds the .hwh by the bitstream's name.
    if bit[: -len(".bit")] != hwh[: -len(".hwh")]:
        _fail("hwh", f"{hwh!r} must have the same name as the bitstream {bit!r}")
    sums = manifest["sha256"]
    if not isinstance(sums, dict):
        _fail("sha256", f"expected an object mapping file name to digest, got {type(sums).__name__}")
    for name in (bit, hwh):
        if name not in sums:
            _fail(f"sha256.{name}", "missing")
        _str(sums[name], f"sha256.{name}", _SHA_RE, "64 lowercase hex digits")
    engines = manifest["engines"]
    if not isinstance(engines, list) or not engines:
        _fail("engines", "expected a non-empty list")
    seen: dict[str, set] = {"name": set(), "cell": set()}
    spans: list[tuple[int, int, str]] = []
    for i, eng in enumerate(engines):
        where = f"engines[{i}]"
        if not isinstance(eng, dict):
            _fail(where, f"expected an object, got {type(eng).__name__}")
        for key in ENGINE_REQUIRED:
            if key not in eng:
                _fail(f"{where}.{key}", "missing")
        name = _str(eng["name"], f"{where}.name", _ENGINE_RE, "an engine name (lowercase, e.g. int)")
        top = _str(eng["top"], f"{where}.top", _IDENT_RE, "a C identifier")
        if top != f"gemm_{name}":
            _fail(f"{where}.top", f"expected 'gemm_{name}' for engine '{name}', got {top!r}")
        _str(eng["cell"], f"{where}.cell", _IDENT_RE, "a block-design cell name")
        for key in ("rows", "cols", "tile_k"):
            _int(eng[key], f"{where}.{key}", 1)
        base = _int(eng["control_base"], f"{where}.control_base", 0)
        size = _int(eng["control_range"], f"{where}.control_range", 4096)
        if size & (size - 1):
            _fail(f"{where}.control_range", f"must be a power of two, got {size}")
        if base % size:
            _fail(f"{where}.control_base", f"0x{base:X} is not aligned to its range 0x{size:X}")
        for key in ("name", "cell"):
            if eng[key] in seen[key]:
                _fail(f"{where}.{key}", f"{eng[key]!r} appears twice")
            seen[key].add(eng[key])
        for lo, hi, other in spans:
            if base < hi and lo < base + size:
                _fail(f"{where}.control_base", f"0x{base:X} overlaps {other}'s registers")
        spans.append((base, base + size, where))
    if "build" in manifest and not isinstance(manifest["build"], dict):
        _fail("build", f"expected an object, got {type(manifest['build']).__name__}")
    return manifest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_files(manifest: dict, directory: Path) -> None:
    """Check that the bitstream and hwh next to the manifest are the ones it
    describes; raises ValueError naming the file's sha256 field."""
    for key in ("bitstream", "hwh"):
        name = manifest[key]
        path = Path(directory) / name
        if not path.is_file():
            _fail(key, f"{path} does not exist")
        digest = sha256_file(path)
        if digest != manifest["sha256"][name]:
            _fail(f"sha256.{name}", f"{path} has digest {digest}, the manifest says {manifest['sha256'][name]}")


def load(path: Path, verify_files: bool = True) -> dict:
    """Read, validate and (by default) checksum-check an overlay manifest."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    validate(data)
    if verify_files:
        check_files(data, path.parent)
    return data


def build(root: Path, build_info: dict, out_dir: Path, version: str | None = None) -> dict:
    """The manifest for a finished Vivado run: engine sizes from the headers in
    `root`, addresses and clock from `build_info` (written by
    build_overlay.tcl), digests of the files in `out_dir`."""
    from termshift.hls.engines import read_config

    if version is None:
        from termshift import __version__ as version
    engines = []
    for placed in build_info["engines"]:
        cfg = read_config(root, placed["name"])
        engines.append(
            {
                "name": cfg.name,
                "top": cfg.top,
                "cell": placed["cell"],
                "vlnv": placed.get("vlnv", ""),
                "rows": cfg.rows,
                "cols": cfg.cols,
                "tile_k": cfg.tile_k,
                "control_base": int(placed["control_base"]),
                "control_range": int(placed["control_range"]),
            }
        )
    bit, hwh = build_info.get("bitstream", "termshift.bit"), build_info.get("hwh", "termshift.hwh")
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "version": version,
        "board": build_info.get("board", "zcu104"),
        "part": build_info["part"],
        "clock_mhz": float(build_info["clock_mhz"]),
        "bitstream": bit,
        "hwh": hwh,
        "sha256": {bit: sha256_file(Path(out_dir) / bit), hwh: sha256_file(Path(out_dir) / hwh)},
        "engines": engines,
        "build": {
            "vivado": str(build_info.get("vivado_version", "")),
            "clock_mhz_requested": build_info.get("clock_mhz_requested"),
            "wns_ns": build_info.get("wns_ns"),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    }
    return validate(manifest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m termshift.hls.manifest", description="Write or check an overlay manifest.json."
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="write manifest.json after build_overlay.tcl")
    w.add_argument("--root", type=Path, required=True, help="repository root (engine headers)")
    w.add_argument("--build-info", type=Path, required=True, help="build_info.json from build_overlay.tcl")
    w.add_argument("--out", type=Path, required=True, help="manifest path; the .bit/.hwh must be next to it")
    c = sub.add_parser("check", help="validate a manifest and the checksums of the files next to it")
    c.add_argument("manifest", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "write":
            info = json.loads(args.build_info.read_text())
            manifest = build(args.root, info, args.out.parent)
            tmp = args.out.with_name(args.out.name + ".tmp")
            tmp.write_text(json.dumps(manifest, indent=2) + "\n")
            tmp.replace(args.out)
            print(f"wrote {args.out}")
        else:
            m = load(args.manifest)
            names = ", ".join(f"{e['name']} {e['rows']}x{e['cols']}x{e['tile_k']}" for e in m["engines"])
            print(f"{args.manifest}: ok (termshift {m['version']}, {m['clock_mhz']:g} MHz, engines: {names})")
    except (OSError, ValueError, KeyError) as exc:
        msg = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        print(f"manifest: error: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
