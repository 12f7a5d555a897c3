"""Helpers shared by the sweep / store / plot tests: tiny specs and a file digest for exact comparisons."""
from __future__ import annotations

import os
import subprocess
import sys

import h5py
import numpy as np

TINY_TOML = """\
name = "tiny"
seed = 7
figures = ["convergence-vs-asymmetry"]

[task]
n_samples = 20
in_size = 8
out_size = 2

[device]
model = "SoftBoundsReference"
dw_min = 1e-3
dw_min_dtod = 0.0
up_down_dtod = 0.0
w_max_dtod = 0.0
w_min_dtod = 0.0

[train]
steps = 30
record_every = 5
snapshot_every = 10

[train.transfer]
fast_lr = 0.01

[axes]
tau = [0.6, 2.0]
seed = [0, 1]

[[cases]]
algorithm = ["analog_sgd", "tiki_taka", "digital_sgd"]
"""

# runs of about a second each (warm Numba cache), so that a sweep can be killed half-way before it ends
SLOW_TOML = TINY_TOML.replace("n_samples = 20\nin_size = 8", 'n_samples = 50\nin_size = 20\ngradient = "per_sample"').replace(
    "steps = 30", "steps = 3000").replace('algorithm = ["analog_sgd", "tiki_taka", "digital_sgd"]',
                                         'algorithm = ["analog_sgd", "tiki_taka"]')


def write_spec(tmp_path, text=TINY_TOML, name="tiny.toml") -> str:
    p = os.path.join(str(tmp_path), name)
    with open(p, "w") as fh:
        fh.write(text)
    return p


#: attributes that are HDF5 object references (dimension scales): their values are file addresses
REFERENCE_ATTRS = ("DIMENSION_LIST", "REFERENCE_LIST")


def digest(path: str) -> dict:
    """Everything stored for each run (datasets and attributes), except its wall-clock measurements (the
    ``wall_time_s`` attribute and the ``timing/`` group) and HDF5's reference attributes."""
    out = {}
    with h5py.File(path, "r") as f:
        for rid, g in f["runs"].items():
            d = {}

            def visit(name, obj, d=d):
                key = obj.name[len(g.name):]
                if key.startswith("/timing"):
                    return
                if isinstance(obj, h5py.Dataset):
                    d[key] = obj[()]
                for k, v in obj.attrs.items():
                    if k != "wall_time_s" and k not in REFERENCE_ATTRS:
                        d[f"{key}@{k}"] = v

            for k, v in g.attrs.items():
                if k != "wall_time_s":
                    d[f"@{k}"] = v
            g.visititems(visit)
            out[rid] = d
    return out


def assert_same_runs(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for rid in a:
        assert sorted(a[rid]) == sorted(b[rid]), rid
        for k in a[rid]:
            x, y = a[rid][k], b[rid][k]
            if isinstance(x, np.ndarray):
                assert x.dtype == y.dtype and x.shape == y.shape, (rid, k)
                assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), (rid, k)
            else:
                assert x == y or (x != x and y != y), (rid, k, x, y)


def cli(*args, timeout=300, **kw) -> subprocess.CompletedProcess:
    """Run ``python -m crossbar_sim ARGS`` as a user would."""
    return subprocess.run([sys.executable, "-m", "crossbar_sim", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kw)
