"""Engine discovery: which HLS engines the tree has and how each is sized.

An engine `<e>` exists when `hls/top/gemm_<e>.cpp` exists; its synthesized
array size comes from the `GEMM_<E>_ROWS`, `GEMM_<E>_COLS` and
`GEMM_<E>_TILE_K` macros in `hls/top/gemm_<e>.h`. The build scripts, the
resource model and the overlay manifest all read the tree through this module
so a new engine needs no edits here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_NAME_RE = re.compile(r"^gemm_([a-z][a-z0-9_]*)\.cpp$")
# Object-like macro with a plain integer value, optionally parenthesized and
# with an unsigned/long suffix: what a config header is allowed to use.
_DEFINE_RE = re.compile(r"^\s*#\s*define\s+(\w+)\s+\(?\s*(\d+)[uUlL]*\s*\)?\s*(?://.*|/\*.*)?$")


@dataclass(frozen=True)
class EngineConfig:
    name: str
    top: str
    rows: int
    cols: int
    tile_k: int


def find_root(start: Path | None = None) -> Path:
    """The repository root: the nearest ancestor of `start` holding hls/top."""
    here = (start or Path.cwd()).resolve()
    for cand in (here, *here.parents):
        if (cand / "hls" / "top").is_dir():
            return cand
    raise ValueError(f"no termshift tree (a directory with hls/top) at or above {here}")


def discover(root: Path) -> list[str]:
    """Engine names, sorted, from hls/top/gemm_<name>.cpp."""
    top_dir = Path(root) / "hls" / "top"
    names = []
    for path in sorted(top_dir.glob("gemm_*.cpp")):
        m = _NAME_RE.match(path.name)
        if m:
            names.append(m.group(1))
    return names


def header_macros(path: Path) -> dict[str, int]:
    macros: dict[str, int] = {}
    for line in Path(path).read_text().splitlines():
        m = _DEFINE_RE.match(line)
        if m:
            macros[m.group(1)] = int(m.group(2))
    return macros


def read_config(root: Path, engine: str) -> EngineConfig:
    """The synthesized size of `engine`, read from hls/top/gemm_<engine>.h."""
    header = Path(root) / "hls" / "top" / f"gemm_{engine}.h"
    if not header.is_file():
        raise ValueError(f"engine '{engine}': {header} not found")
    macros = header_macros(header)
    prefix = f"GEMM_{engine.upper()}_"
    values = {}
    for key in ("ROWS", "COLS", "TILE_K"):
        name = prefix + key
        if name not in macros:
            raise ValueError(f"engine '{engine}': {header} does not #define {name} as an integer")
        if macros[name] < 1:
            raise ValueError(f"engine '{engine}': {name} must be >= 1, got {macros[name]}")
        values[key.lower()] = macros[name]
    return EngineConfig(name=engine, top=f"gemm_{engine}", **values)
