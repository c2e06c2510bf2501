"""Unpacking a Debian package's files into the cache without installing it.

Owns ``apt-get download`` + ``dpkg -x`` into ``<cache>/debian/<package>``:
no root, no dependencies pulled in (r-cran-janeaustenr would otherwise bring
all of R), nothing registered with dpkg. The extracted tree replaces any old
one atomically, so an interrupted fetch leaves either the previous tree or none.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from .cache import atomic_replace_dir, cache_dir
from .errors import DatasetMissingError


def extracted_root(package: str) -> Path:
    """Where :func:`fetch_deb` puts ``package``'s file tree (it may not exist yet)."""
    return cache_dir() / "debian" / package


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def fetch_deb(package: str, dataset: str) -> Path:
    """Download ``package``'s .deb and extract it under the cache; returns the tree root.

    ``dataset`` is the name used in error messages and in the get_data.sh command.
    """
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise DatasetMissingError(
                dataset,
                f"`{tool}` is not available, and {package} is a Debian package "
                "(this path needs a Debian or Ubuntu system with Debian's archive in its sources)",
            )
    dest = extracted_root(package)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{package}.tmp."))
    try:
        dl = _run(["apt-get", "download", package], cwd=work)
        debs = sorted(work.glob(f"{package}_*.deb"))
        if dl.returncode != 0 or not debs:
            err = (dl.stderr or dl.stdout).strip().splitlines()
            reason = err[-1] if err else f"exit status {dl.returncode}"
            raise DatasetMissingError(
                dataset,
                f"`apt-get download {package}` failed: {reason}. If apt cannot locate the "
                "package, its lists are stale or missing: run `sudo apt-get update` once, then retry",
            )
        tree = work / "root"
        ex = _run(["dpkg", "-x", str(debs[-1]), str(tree)], cwd=work)
        if ex.returncode != 0:
            raise DatasetMissingError(
                dataset, f"`dpkg -x {debs[-1].name}` failed: {ex.stderr.strip() or ex.returncode}"
            )
        (tree / ".termshift-source").write_text(debs[-1].name + "\n")
        atomic_replace_dir(tree, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest
