"""Corpus loading, the character vocabulary, batching and the unigram baseline.

Every array of character ids is a 1-D int64 array. Batches are sequence-first, shaped
``(seq_len, batch_size)``, to match an LSTM that steps over the leading axis.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

__all__ = [
    "DEFAULT_CORPUS",
    "CharVocab",
    "UnknownCharacterError",
    "available_corpora",
    "load_text",
    "random_batches",
    "sequential_batches",
    "train_val_split",
    "unigram_cross_entropy",
]

DEFAULT_CORPUS: str = "devils_dictionary"

_CORPUS_SUFFIX = ".txt"
_MAX_CODEPOINT = 0x10FFFF
_VOCAB_KEY = "vocab_codepoints"


def _corpus_dir() -> Traversable:
    # Resolved through the `lstm` package, not `lstm.corpus`: the corpus folder is package data with
    # no __init__.py, and importlib.resources (unlike a path built from __file__) also finds it when
    # the package is installed as a zip.
    return resources.files("lstm").joinpath("corpus")


def available_corpora() -> list[str]:
    """Names of the texts shipped in ``lstm/corpus``, sorted."""
    return sorted(
        entry.name[: -len(_CORPUS_SUFFIX)]
        for entry in _corpus_dir().iterdir()
        if entry.is_file() and entry.name.endswith(_CORPUS_SUFFIX)
    )


def load_text(name: str = DEFAULT_CORPUS) -> str:
    """Return the packaged corpus ``name`` as a string with ``\\n`` line endings.

    Raises ValueError, listing the available names, if there is no such corpus.
    """
    names = available_corpora()
    # Checking against the listing (not just trying to open the file) also keeps a name such as
    # "../x" from reaching outside the corpus folder.
    if name not in names:
        raise ValueError(f"unknown corpus {name!r}; available corpora: {', '.join(names) or '(none)'}")
    text = _corpus_dir().joinpath(name + _CORPUS_SUFFIX).read_text(encoding="utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n")


class UnknownCharacterError(KeyError, ValueError):
    """A character that is not in the vocabulary.

    It is both a KeyError (a failed lookup) and a ValueError (bad input text), so callers can catch
    whichever they think of it as.
    """

    def __str__(self) -> str:
        # KeyError's own __str__ would show the message in quotes, like a dict key.
        return str(self.args[0]) if self.args else ""


def _describe_char(char: str) -> str:
    return f"{char!r} (U+{ord(char):04X})"


class CharVocab:
    """A bijection between characters and the ids ``0 .. size - 1``.

    ``CharVocab.from_text`` sorts the characters, so one text always gives the same ids. The
    constructor keeps the order it is given, so that a vocabulary restored from a checkpoint keeps
    the ids the model was trained with.
    """

    def __init__(self, chars: Iterable[str]) -> None:
        chars = tuple(chars)
        for char in chars:
            if not isinstance(char, str) or len(char) != 1:
                raise ValueError(f"vocabulary entries must be single characters, got {char!r}")
        if len(set(chars)) != len(chars):
            duplicates = sorted({char for char in chars if chars.count(char) > 1})
            raise ValueError(
                "vocabulary characters must be distinct; repeated: "
                + ", ".join(_describe_char(char) for char in duplicates)
            )
        self.chars: tuple[str, ...] = chars
        self._id_of_char = {char: index for index, char in enumerate(chars)}
        codepoints = np.array([ord(char) for char in chars], dtype=np.int64)
        self._codepoints = codepoints
        # encode() maps code points to ids with a binary search over the sorted code points, which is
        # much faster than a Python dict lookup per character on a corpus of a few hundred KB.
        self._order_by_codepoint = np.argsort(codepoints, kind="stable")
        self._sorted_codepoints = codepoints[self._order_by_codepoint]

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        """The vocabulary of every distinct character in ``text``, in sorted (code point) order."""
        return cls(sorted(set(text)))

    @property
    def size(self) -> int:
        """Number of distinct characters, i.e. one more than the largest id."""
        return len(self.chars)

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: object) -> bool:
        return char in self._id_of_char

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CharVocab):
            return NotImplemented
        return self.chars == other.chars

    def __hash__(self) -> int:
        return hash(self.chars)

    def __repr__(self) -> str:
        return f"CharVocab(size={self.size}, chars={''.join(self.chars)!r})"

    def id_of(self, char: str) -> int:
        """The id of one character; UnknownCharacterError if it is not in the vocabulary."""
        try:
            return self._id_of_char[char]
        except KeyError:
            raise UnknownCharacterError(
                f"character {_describe_char(char) if len(char) == 1 else repr(char)} "
                f"is not in the vocabulary of {self.size} characters"
            ) from None

    def encode(self, text: str) -> np.ndarray:
        """The ids of the characters of ``text`` as a 1-D int64 array.

        Raises UnknownCharacterError naming the first character (and its position) that is not in
        the vocabulary.
        """
        if not text:
            return np.zeros(0, dtype=np.int64)
        # surrogatepass lets a lone surrogate through as its own code point, so it is reported as
        # an unknown character instead of failing inside the codec.
        codepoints = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.int64)
        if self.size == 0:
            positions = np.zeros(len(codepoints), dtype=np.int64)
            known = np.zeros(len(codepoints), dtype=bool)
        else:
            positions = np.searchsorted(self._sorted_codepoints, codepoints)
            np.minimum(positions, self.size - 1, out=positions)
            known = self._sorted_codepoints[positions] == codepoints
        if not known.all():
            index = int(np.argmin(known))
            raise UnknownCharacterError(
                f"character {_describe_char(text[index])} at position {index} "
                f"is not in the vocabulary of {self.size} characters"
            )
        return self._order_by_codepoint[positions].astype(np.int64, copy=False)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """The text for a 1-D sequence of ids; ValueError for an id outside ``0 .. size - 1``."""
        id_array = np.asarray(ids)
        if id_array.size == 0:
            return ""
        if id_array.ndim != 1:
            raise ValueError(f"decode expects a 1-D sequence of ids, got shape {id_array.shape}")
        if not np.issubdtype(id_array.dtype, np.integer):
            raise ValueError(f"ids must be integers, got dtype {id_array.dtype}")
        out_of_range = (id_array < 0) | (id_array >= self.size)
        if out_of_range.any():
            index = int(np.argmax(out_of_range))
            raise ValueError(
                f"id {int(id_array[index])} at position {index} is outside the vocabulary "
                f"(valid ids are 0 .. {self.size - 1})"
            )
        # Going through code points rather than a numpy unicode array, because numpy strips "\x00"
        # from the end of its strings and would silently drop NUL characters.
        return self._codepoints[id_array].astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")

    def to_dict(self) -> dict[str, np.ndarray]:
        """The vocabulary as plain numpy arrays, for an ``.npz`` checkpoint read without pickle.

        The characters are stored as their Unicode code points, in id order.
        """
        return {_VOCAB_KEY: self._codepoints.copy()}

    @classmethod
    def from_dict(cls, arrays: Mapping[str, np.ndarray]) -> CharVocab:
        """Rebuild a vocabulary from ``to_dict()``'s output, or from a loaded ``.npz`` that holds it."""
        if _VOCAB_KEY not in arrays:
            raise KeyError(f"no {_VOCAB_KEY!r} array; keys present: {sorted(arrays)}")
        codepoints = np.asarray(arrays[_VOCAB_KEY])
        if codepoints.ndim != 1 or not (codepoints.size == 0 or np.issubdtype(codepoints.dtype, np.integer)):
            found = f"shape {codepoints.shape} and dtype {codepoints.dtype}"
            raise ValueError(f"{_VOCAB_KEY!r} must be a 1-D integer array, got {found}")
        if codepoints.size and (codepoints.min() < 0 or codepoints.max() > _MAX_CODEPOINT):
            raise ValueError(f"{_VOCAB_KEY!r} holds values that are not Unicode code points")
        return cls(chr(int(codepoint)) for codepoint in codepoints)


    @staticmethod
    def size_from_shapes(shapes: Mapping[str, tuple[int, ...]]) -> int:
        """The size of the vocabulary that ``to_dict()`` arrays of these shapes hold, known before reading them
        (a checkpoint's sizes are checked before its data is read); ValueError if they cannot hold one."""
        if set(shapes) != {_VOCAB_KEY}:
            raise ValueError(f"expected exactly one array, {_VOCAB_KEY!r}; found {sorted(shapes)}")
        shape = tuple(shapes[_VOCAB_KEY])
        if len(shape) != 1 or shape[0] > _MAX_CODEPOINT + 1:
            raise ValueError(f"{_VOCAB_KEY!r} has shape {shape}; a vocabulary is 1-D, of at most "
                             f"{_MAX_CODEPOINT + 1:,} characters")
        return shape[0]


def _as_id_array(ids: Sequence[int] | np.ndarray, name: str = "ids") -> np.ndarray:
    array = np.asarray(ids)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _check_positive_int(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def train_val_split(
    ids: Sequence[int] | np.ndarray, val_fraction: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Split ids into a leading training part and a trailing validation part.

    The split is contiguous rather than random: random windows of a character stream overlap their
    neighbours, so a random split would leak validation text into training. Both parts hold at
    least one id; they are views of the input when it is already int64.
    """
    id_array = _as_id_array(ids)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be strictly between 0 and 1, got {val_fraction!r}")
    if len(id_array) < 2:
        raise ValueError(f"need at least 2 ids to split into train and validation, got {len(id_array)}")
    val_count = min(max(round(len(id_array) * val_fraction), 1), len(id_array) - 1)
    split_at = len(id_array) - val_count
    return id_array[:split_at], id_array[split_at:]


def random_batches(
    ids: Sequence[int] | np.ndarray,
    seq_len: int,
    batch_size: int,
    rng: np.random.Generator,
    num_batches: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(inputs, targets)`` windows drawn uniformly at random from ``ids``.

    Both arrays are int64 shaped ``(seq_len, batch_size)``, and ``targets[t, b]`` is the id that
    follows ``inputs[t, b]`` in the stream, i.e. ``targets[:-1] == inputs[1:]``. Every window of
    ``seq_len + 1`` consecutive ids is equally likely. The generator is endless unless
    ``num_batches`` is given; the same ``rng`` state gives the same batches.
    """
    id_array = _as_id_array(ids)
    _check_positive_int(seq_len, "seq_len")
    _check_positive_int(batch_size, "batch_size")
    if num_batches is not None and (isinstance(num_batches, bool) or num_batches < 0):
        raise ValueError(f"num_batches must be None or a non-negative integer, got {num_batches!r}")
    window_count = len(id_array) - seq_len
    if window_count < 1:
        raise ValueError(f"need more than seq_len={seq_len} ids to make one window, got {len(id_array)}")
    offsets = np.arange(seq_len + 1)[:, None]
    drawn = 0
    while num_batches is None or drawn < num_batches:
        starts = rng.integers(0, window_count, size=batch_size)
        windows = id_array[offsets + starts[None, :]]
        yield np.ascontiguousarray(windows[:-1]), np.ascontiguousarray(windows[1:])
        drawn += 1


def sequential_batches(
    ids: Sequence[int] | np.ndarray, seq_len: int, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(inputs, targets)`` covering ``ids`` in order, for evaluation; no randomness.

    The stream is cut into ``batch_size`` equal contiguous lanes, one per batch column, and each
    batch holds the next ``seq_len`` steps of every lane. Column ``b`` of one batch therefore
    continues column ``b`` of the previous one, so a caller may carry the LSTM state across batches,
    or reset it every batch. Shapes and the one-step shift are as in ``random_batches``. Every
    target is predicted once; the few ids at the end that do not fill a whole
    ``(seq_len, batch_size)`` batch are left out, so that all batches have the same shape.
    """
    id_array = _as_id_array(ids)
    _check_positive_int(seq_len, "seq_len")
    _check_positive_int(batch_size, "batch_size")
    # Each lane needs one id more than the targets it yields, because its first id is only an input.
    lane_len = (len(id_array) - 1) // batch_size
    batch_count = lane_len // seq_len
    if batch_count < 1:
        raise ValueError(
            f"{len(id_array)} ids are too few for one batch of seq_len={seq_len} and "
            f"batch_size={batch_size} (need at least {seq_len * batch_size + 1})"
        )
    lane_starts = np.arange(batch_size) * lane_len
    for batch_index in range(batch_count):
        positions = lane_starts[None, :] + (batch_index * seq_len + np.arange(seq_len + 1))[:, None]
        windows = id_array[positions]
        yield np.ascontiguousarray(windows[:-1]), np.ascontiguousarray(windows[1:])


def unigram_cross_entropy(
    train_ids: Sequence[int] | np.ndarray, eval_ids: Sequence[int] | np.ndarray, vocab_size: int
) -> float:
    """Cross-entropy in nats per character of a model that ignores context.

    Each id gets probability ``(count_in_train + 1) / (len(train_ids) + vocab_size)``; the add-one
    smoothing keeps characters unseen in training from costing infinitely much. This is the
    baseline a character model must beat to show that it has learned anything from context.
    """
    _check_positive_int(vocab_size, "vocab_size")
    train_array = _as_id_array(train_ids, "train_ids")
    eval_array = _as_id_array(eval_ids, "eval_ids")
    if len(eval_array) == 0:
        raise ValueError("eval_ids is empty: the cross-entropy of no characters is undefined")
    for name, array in (("train_ids", train_array), ("eval_ids", eval_array)):
        if len(array) and (array.min() < 0 or array.max() >= vocab_size):
            raise ValueError(f"{name} holds ids outside 0 .. {vocab_size - 1}")
    counts = np.bincount(train_array, minlength=vocab_size)
    log_probs = np.log(counts + 1.0) - math.log(len(train_array) + vocab_size)
    return float(-log_probs[eval_array].mean())
