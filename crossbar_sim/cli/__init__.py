"""The ``crossbar-sim`` command line.

Each subcommand lives in its own module of this package with two functions::

    def add_parser(subparsers) -> argparse.ArgumentParser   # registers the subcommand and its --help
    def run(args) -> int                                     # does the work, returns the exit code

and is listed in :data:`SUBCOMMANDS`. Errors a user can cause (:class:`~crossbar_sim.errors.SimulatorError`)
print one line ``crossbar-sim <cmd>: error: ...`` and exit with code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from crossbar_sim import __version__
from crossbar_sim.errors import SimulatorError

#: module names (in this package) of the subcommands, in the order ``--help`` lists them
SUBCOMMANDS = ("bench", "sweep", "inspect", "plot", "devices", "fit_device", "data", "train", "evaluate", "lowrank")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crossbar-sim",
        description="Cycle-level simulation of neural-network training on analog crossbar tiles.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"crossbar-sim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        mod = importlib.import_module(f"crossbar_sim.cli.{name}")
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args._argv = list(sys.argv[1:] if argv is None else argv)  # stored in result files
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except SimulatorError as exc:
        print(f"crossbar-sim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"crossbar-sim {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
