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

class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` that appends ``(default: X)`` to an option's help once: not when the help already names its
    default (``"mini-batch size (default 10 FCN, 8 CNN)"``) and not for a default of None (no value); a list
    default is shown as it is typed (``256 512 1024``)."""

    def _get_help_string(self, action):
        help_text = action.help or ""
        if action.default is None or "default" in help_text.lower():
            return help_text
        if isinstance(action.default, (list, tuple)) and action.option_strings:
            shown = " ".join(map(str, action.default)).replace("%", "%%")
            return f"{help_text} (default: {shown})"
        return super()._get_help_string(action)


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
    except BrokenPipeError:  # `crossbar-sim ... | head`: the reader went away; nothing is wrong
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
