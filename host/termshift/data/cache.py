"""The on-disk cache for fetched data, and atomic file writes into it.

Owns where termshift keeps data it downloads or extracts itself
(``$TERMSHIFT_CACHE``, else ``$XDG_CACHE_HOME/termshift``, else
``~/.cache/termshift``) and how files get there: always through a temporary
file in the destination directory and ``os.replace`` (termshift.atomic), so
a reader never sees a half-written file, even if the writer is killed; and
the same for whole directory trees (:func:`atomic_replace_dir`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from ..atomic import write_bytes_atomic, write_text_atomic

# Re-exported under the names termshift.data uses.
atomic_write_bytes = write_bytes_atomic
atomic_write_text = write_text_atomic


def cache_dir(create: bool = False) -> Path:
    """The termshift cache directory; created (with parents) when ``create``."""
    env = os.environ.get("TERMSHIFT_CACHE")
    if env:
        path = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        # The XDG spec says relative values are invalid and must be ignored.
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
        path = base / "termshift"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_replace_dir(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Move the finished directory ``src`` to ``dst``, replacing any old ``dst``.

    ``src`` must be on the same filesystem as ``dst`` (build it in
    ``dst.parent``). A directory rename cannot overwrite a non-empty directory,
    so the old one is renamed aside first; there is a brief moment with no
    ``dst`` but never one with a partial ``dst``.
    """
    src, dst = Path(src), Path(dst)
    old = None
    if dst.exists():
        old = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.old."))
        os.replace(dst, old / dst.name)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return dst


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()

