"""Issue 20, outside the engine: option values, --help texts, printed numbers, startup imports, packaging."""
import argparse

import pytest

from crossbar_sim.cli import main
from crossbar_sim.validation import arg_float, arg_int


def _usage_error(capsys, argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1]


@pytest.mark.parametrize("value", ["0", "-2", "1.5", "x", ""])
def test_bench_threads_must_be_positive(capsys, value):
    last = _usage_error(capsys, ["bench", "--threads", value])
    assert last == f"crossbar-sim bench: error: argument --threads: must be an int in [1, inf). Got {value!r}."


@pytest.mark.parametrize("text, ok", [("0.05", True), ("0", True), ("0.5", True), ("-1", False), ("nan", False),
                                      ("inf", False), ("0.6", False), ("1e400", False), ("x", False)])
def test_arg_float_for_fractions_like_inspect_near(text, ok):
    parse = arg_float(0.0, 0.5)
    if ok:
        assert parse(text) == float(text)
    else:
        with pytest.raises(argparse.ArgumentTypeError, match=r"must be a float in \[0, 0.5\]\. Got "):
            parse(text)


def test_arg_int_bounds():
    parse = arg_int(1, 8)
    assert parse("8") == 8
    for bad in ("0", "9", "2.0", "two"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"must be an int in \[1, 8\]"):
            parse(bad)


# ------------------------------------------------------------------ --help: each default once
#: subcommands whose parsers the engine rewrite (issue 14) replaces; they are checked there
ENGINE_SUBCOMMANDS: set = set()  # the engine has landed: every subcommand is checked


def _subparsers():
    from crossbar_sim.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_help_prints_each_default_once():
    bad = []
    for name, sp in _subparsers().items():
        if name in ENGINE_SUBCOMMANDS:
            continue
        fmt = sp.formatter_class(prog=name)
        for a in sp._actions:
            if not a.help or a.help == argparse.SUPPRESS:
                continue
            shown = fmt._expand_help(a)  # the help text as --help prints it
            if shown.lower().count("default") > 1 or "(default: None)" in shown:
                bad.append(f"{name} {'/'.join(a.option_strings)}: {shown}")
    assert not bad, "\n".join(bad)


def test_defaults_formatter():
    from crossbar_sim.cli import DefaultsHelpFormatter

    p = argparse.ArgumentParser(prog="x", formatter_class=DefaultsHelpFormatter)
    p.add_argument("--a", type=int, default=3, help="plain")
    p.add_argument("--b", type=int, default=None, help="no value")
    p.add_argument("--c", type=int, default=10, help="batch (default 10 FCN, 8 CNN)")
    p.add_argument("--d", type=int, nargs="+", default=[1, 64], help="sizes")
    text = " ".join(p.format_help().split())
    assert "plain (default: 3)" in text and "no value -h" not in text and "(default: None)" not in text
    assert "batch (default 10 FCN, 8 CNN) " in text + " " and text.count("default") == 3
    assert "sizes (default: 1 64)" in text


# ------------------------------------------------------------------ devices: clean numbers
def test_devices_prints_clean_numbers(capsys):
    import re

    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "np.float" not in out and "np.int" not in out
    assert not re.search(r"\d\.\d{9,}", out), re.search(r".{30}\d\.\d{9,}.{10}", out).group(0)
    assert "w_min_dtod=0.4 " in out  # ReRamSB sets 0.39999999999999997 (0.24 / 0.6)


def test_format_value():
    import numpy as np

    from crossbar_sim.cli.devices import format_value

    assert format_value(np.float64(0.014693781220434278)) == "0.0146938"
    assert format_value(0.39999999999999997) == "0.4"
    assert format_value(1.0) == "1.0" and format_value(1e-5) == "1e-05" and format_value(np.int64(3)) == "3"
    assert format_value((0.1 + 0.2, 1.0)) == "(0.3, 1.0)" and format_value((2.0,)) == "(2.0,)"
    assert format_value(True) == "True" and format_value("ENODe") == "'ENODe'" and format_value(None) == "None"


def test_devices_json_has_numbers_not_strings(capsys):
    import json

    assert main(["devices", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    lut = next(m for m in data["models"] if m["name"] == "LookupTable")
    assert isinstance(lut["parameters"]["dw_min"], float)


# ------------------------------------------------------------------ startup: --help loads no heavy module
HEAVY = ("numba", "scipy", "h5py", "matplotlib", "dask", "torch")


def _modules_after(code: str) -> set:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True, timeout=120)
    return set(out.stdout.split())


def test_import_crossbar_sim_is_cheap():
    mods = _modules_after("import crossbar_sim")
    assert not mods & {*HEAVY, "numpy"}, sorted(mods & {*HEAVY, "numpy"})


def test_building_the_cli_parser_imports_no_heavy_module():
    # what `crossbar-sim --help` and `crossbar-sim sweep --help` do before printing
    mods = _modules_after("import crossbar_sim.cli\ncrossbar_sim.cli.build_parser()")
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))


def test_public_names_resolve_lazily():
    import crossbar_sim
    from crossbar_sim.least_squares.training import train
    from crossbar_sim.tiles.analog import AnalogTile

    assert crossbar_sim.AnalogTile is AnalogTile and crossbar_sim.train is train
    assert set(crossbar_sim.__all__) <= set(dir(crossbar_sim))
    for name in crossbar_sim.__all__:
        assert getattr(crossbar_sim, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        crossbar_sim.nope  # noqa: B018


def test_fit_device_cli_lists_the_models_fit_knows():
    from crossbar_sim.cli import fit_device
    from crossbar_sim.device_models import fit

    assert fit_device.MODELS == fit.MODELS


# ------------------------------------------------------------------ packaging
ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_license_version_and_python_are_declared_once():
    import tomllib

    import crossbar_sim

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in meta and meta["dynamic"] == ["version"]  # single source: crossbar_sim.__version__
    assert crossbar_sim.__version__.count(".") == 2
    assert meta["requires-python"] == ">=3.11"  # tomllib
    assert meta["license"] == "Apache-2.0" and meta["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text


@pytest.mark.parametrize("path, ignored", [
    ("results.h5", True), ("lowrank.h5", True), ("convergence_vs_asymmetry.png", True),
    ("results.h5.journal/0001.h5", True), ("results.h5.tmp-123", True), ("r.h5.journal/checkpoints/0000.h5", True),
    ("tests/data/aihwkit_golden/fixtures.npz", False), ("docs/figure.png", False), ("README.md", False),
])
def test_gitignore_covers_what_the_commands_write(path, ignored):
    import shutil
    import subprocess

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    r = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "--no-index", path], timeout=30)
    assert (r.returncode == 0) == ignored


def test_evaluate_parser_constants_are_the_librarys():
    from crossbar_sim.cli import evaluate as E
    from crossbar_sim.inference.compensation import COMPENSATIONS
    from crossbar_sim.inference.evaluate import DEFAULT_TIMES
    from crossbar_sim.inference.noise import NOISE_MODELS

    assert E.NOISE_MODELS == tuple(NOISE_MODELS) and E.COMPENSATIONS == tuple(COMPENSATIONS)
    assert E.DEFAULT_TIMES == tuple(DEFAULT_TIMES)
