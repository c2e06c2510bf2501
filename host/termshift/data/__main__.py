"""``python -m termshift.data``: check which datasets are installed, or fetch one.

Owns the command line that ``scripts/get_data.sh`` calls after installing:
``verify [NAME...]`` prints one line per dataset (``ok``, ``missing`` with
the command that installs it, or ``corrupt`` with what failed) and exits 1
unless every requested dataset is ok; ``fetch austen|fashion-mnist [--force]``
unpacks the Debian package into the cache without root.
"""

from __future__ import annotations

import argparse
import sys

from . import austen, digits, fashion_mnist, minilm
from .errors import DatasetMissingError, IntegrityError

DATASETS = ("fashion-mnist", "digits", "austen", "minilm")


def verify_rows(names) -> list[tuple[str, str, str]]:
    rows = []
    for name in names:
        if name == "fashion-mnist":
            rows.append((name, *fashion_mnist.verify()))
        elif name == "digits":
            rows.append((name, *digits.verify()))
        elif name == "austen":
            rows.append((name, *austen.verify()))
        elif name == "minilm":
            rows.extend(minilm.verify())
    return rows


def _fetch(name: str, force: bool) -> str:
    if name == "austen":
        return str(austen.fetch_austen(force=force))
    if name == "fashion-mnist":
        from .debian import fetch_deb

        found = fashion_mnist.find_fashion_mnist()
        if found is not None and found.is_dir() and not force:
            return str(found)
        return str(fetch_deb(fashion_mnist.DEBIAN_PACKAGE, fashion_mnist.NAME))
    raise AssertionError(name)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m termshift.data", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify", help="report ok / missing / corrupt per dataset")
    # No choices=: argparse checks an empty nargs="*" list against them and fails.
    v.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(DATASETS)}, all (default: all)")
    f = sub.add_parser("fetch", help="unpack a Debian data package into the cache (no root)")
    f.add_argument("name", choices=("austen", "fashion-mnist"))
    f.add_argument("--force", action="store_true", help="unpack again even if a copy is found (repairs a corrupt one)")
    args = ap.parse_args(argv)

    if args.cmd == "fetch":
        try:
            print(f"{args.name}: {_fetch(args.name, args.force)}")
        except (DatasetMissingError, IntegrityError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0

    unknown = [n for n in args.names if n not in DATASETS + ("all",)]
    if unknown:
        ap.error(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(DATASETS)}, all")
    names = [n for n in DATASETS if not args.names or "all" in args.names or n in args.names]
    rows = verify_rows(names)
    width = max(len(r[0]) for r in rows)
    for name, status, detail in rows:
        print(f"{name:<{width}}  {status:<7}  {detail}")
    return 0 if all(status == "ok" for _, status, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
