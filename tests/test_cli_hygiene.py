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
