"""Running IBM aihwkit next to crossbar-sim for in-run comparisons (aihwkit is *not* a dependency).

The benchmarks can time aihwkit on the same workload in the same run: a standalone script (numpy, torch and aihwkit
only: ``crossbar_sim/bench/aihwkit_tile.py`` for one tile, ``crossbar_sim/bench/aihwkit_epoch.py`` for an MNIST epoch) is
run as a file by a separate interpreter that has aihwkit (``--aihwkit-python PATH``) and prints one JSON line.
This module checks such an interpreter, runs a script and parses its result; every failure is one line.
"""
from __future__ import annotations

import json
import os
import subprocess

from ..errors import ConfigError


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def check_aihwkit_python(python: str, runner=subprocess.run, timeout: float = 300.0) -> str:
    """The aihwkit version importable by interpreter ``python``; a one-line :class:`ConfigError` otherwise."""
    probe = "import aihwkit, torch; print('aihwkit', aihwkit.__version__)"
    try:
        cp = runner([str(python), "-c", probe], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"--aihwkit-python {python}: cannot run it ({type(exc).__name__}: {exc}).") from None
    words = (cp.stdout or "").split()
    if cp.returncode != 0 or len(words) < 2 or words[-2] != "aihwkit":
        why = last_line(cp.stderr) if cp.returncode != 0 else f"it printed {last_line(cp.stdout)!r}"
        raise ConfigError(f"--aihwkit-python {python} is not a python that imports aihwkit and torch: {why}")
    return words[-1]


def parse_result(stdout: str, keys) -> dict:
    """The last stdout line that is a JSON object with ``"tool": "aihwkit"`` and all of ``keys``."""
    for line in reversed((stdout or "").splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and obj.get("tool") == "aihwkit" and all(k in obj for k in keys):
            return obj
    raise ConfigError(f"the aihwkit reference run printed no result line (last line: {last_line(stdout)!r}).")


def run_script(cmd: list, keys, what: str, threads: int = 1, runner=subprocess.run, timeout: float | None = None):
    """Run ``cmd`` (``[python, script, args...]``) with ``threads`` BLAS/OpenMP threads and return its parsed
    result; ``what`` names the run in errors."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads))
    try:
        cp = runner(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"--aihwkit-python {cmd[0]}: cannot run it ({type(exc).__name__}: {exc}).") from None
    if cp.returncode != 0:
        raise ConfigError(f"the aihwkit reference run ({what}, {cmd[0]}) failed with exit code "
                          f"{cp.returncode}: {last_line(cp.stderr)}")
    return parse_result(cp.stdout, keys)
