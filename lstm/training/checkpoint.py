"""Training checkpoints: plain numpy arrays in one ``.npz`` file, readable without pickle, written atomically.

A checkpoint holds everything a run needs to go on exactly where it stopped: the model's and the optimizer's
arrays, the vocabulary, the step reached, the loss history and the run's configuration (which includes the
seed). There is no random-number state to store, because the trainer draws step k's batch from a generator
seeded with (seed, k): the step number *is* the RNG state.

The file is a zip of ``.npy`` arrays, one per entry, grouped by a prefix (``model/lstm.weight_ih_l0``,
``optimizer/mean.0``, ...), plus ``meta``: a string array holding JSON (format, version, step, config).
It is written with `write_atomically`, so the path holds the old checkpoint or the new one, complete.

A checkpoint may come from anyone, so reading one trusts nothing in it: no pickle is ever run, and no entry's
data is read before the sizes stated in the zip's directory and the ``.npy`` headers are found to agree and to
fit the run the checkpoint describes (a `Layout`). A file that fails any check raises CheckpointError,
``PATH is not a valid checkpoint: ...``, in one line.
"""

from __future__ import annotations

import json
import lzma
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from autograd.files import write_atomically
from lstm.training.data import CharVocab

__all__ = ["Checkpoint", "CheckpointError", "Layout", "load_checkpoint", "save_checkpoint"]

FORMAT = "backprop-lens checkpoint"
VERSION = 1
GROUPS = ("model", "optimizer", "vocab", "history")
META_LIMIT = 64 * 1024  # bytes of the meta entry; its JSON takes a few hundred characters
EXPANSION_LIMIT = 16  # without a layout: the arrays may not take more than this many times the file's size
KINDS = "biufU"  # booleans, integers, floats and the meta string: never objects, so never a pickle
CHUNK = 1 << 20  # bytes read at a time

Layout = Callable[[dict[str, Any], int, int], Mapping[str, tuple[int, ...]]]
"""``layout(config, step, vocab_size)``: the name and the largest shape of every entry of the groups model,
optimizer and history that a checkpoint of this run holds; ValueError if no run of ours looks like this."""


class CheckpointError(Exception):
    """A checkpoint that is missing, unreadable, or does not belong to the run that tries to use it."""


class _Invalid(ValueError):
    """Why a file is not a valid checkpoint; `load_checkpoint` names the file."""


@dataclass
class Checkpoint:
    """One saved moment of a training run; every field is plain data (numbers, strings, numpy arrays)."""

    step: int
    config: dict[str, Any]
    model: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    vocab: CharVocab
    history: dict[str, np.ndarray] = field(default_factory=dict)
    corpus: dict[str, Any] = field(default_factory=dict)  # the text's name, size and sha256 (empty: not recorded)

    def to_arrays(self) -> dict[str, np.ndarray]:
        meta = {"format": FORMAT, "version": VERSION, "step": int(self.step), "config": self.config}
        if self.corpus:
            meta["corpus"] = self.corpus
        arrays = {"meta": np.array(json.dumps(meta))}
        groups = {"model": self.model, "optimizer": self.optimizer, "vocab": self.vocab.to_dict(),
                  "history": self.history}
        for group, members in groups.items():
            arrays.update({f"{group}/{name}": np.asarray(array) for name, array in members.items()})
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], source: str = "checkpoint") -> Checkpoint:
        """Rebuild a checkpoint from ``to_arrays()``'s output; CheckpointError if it is not one."""
        try:
            if "meta" not in arrays:
                raise _Invalid("it has no 'meta' entry, so it is not a backprop-lens checkpoint")
            step, config, corpus = _read_meta(arrays["meta"], source)
            groups: dict[str, dict[str, np.ndarray]] = {group: {} for group in GROUPS}
            for key, array in arrays.items():
                group, _, name = key.partition("/")
                if group in groups:
                    groups[group][name] = array
            try:
                vocab = CharVocab.from_dict(groups["vocab"])
            except (KeyError, ValueError) as error:
                raise _Invalid(f"it holds no valid vocabulary ({error})") from None
        except _Invalid as error:
            raise CheckpointError(f"{source} is not a valid checkpoint: {error}") from None
        return cls(step, config, groups["model"], groups["optimizer"], vocab, groups["history"], corpus)


def save_checkpoint(path: str | os.PathLike, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (parent directories are created); returns the path."""
    arrays = checkpoint.to_arrays()
    return write_atomically(path, lambda file: np.savez(file, **arrays))


def load_checkpoint(path: str | os.PathLike, layout: Layout | None = None) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`; CheckpointError says what is wrong if it cannot.

    Before any array is read, the ``meta`` entry (at most 64 KiB) is parsed and every entry's size is checked
    against its ``.npy`` header and the zip's directory. With a ``layout`` (`lstm.training.checkpoint_layout`
    describes our training runs) the entries must be exactly those of the run that ``meta`` describes, none
    larger; without one, all arrays together may take at most 16 times the file's size.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file, so it cannot be a checkpoint")
    try:
        with zipfile.ZipFile(path) as archive:
            entries = _entries(archive)
            headers = {name: _header(archive, info) for name, info in entries.items()}
            if "meta" not in headers:
                raise _Invalid("it has no 'meta' entry, so it is not a backprop-lens checkpoint")
            if headers["meta"].nbytes > META_LIMIT:
                raise _Invalid(f"its 'meta' entry takes {headers['meta'].nbytes:,} bytes (at most "
                               f"{META_LIMIT:,} expected)")
            step, config, _ = _read_meta(_read(archive, entries["meta"], headers["meta"]), str(path))
            if layout is None:
                _check_expansion(headers, path.stat().st_size)
            else:
                _check_layout(headers, layout, config, step)
            arrays = {name: _read(archive, entries[name], header) for name, header in headers.items()}
    except _Invalid as error:
        raise CheckpointError(f"{path} is not a valid checkpoint: {error}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError,
            zlib.error, lzma.LZMAError, struct.error, ValueError, OverflowError) as error:
        # RuntimeError: an encrypted entry; NotImplementedError: a compression zipfile cannot undo.
        raise CheckpointError(f"{path} is not a valid checkpoint: it is damaged, truncated or not a zip of "
                              f"arrays ({error})") from None
    return Checkpoint.from_arrays(arrays, source=str(path))


# --- reading a file that may be hostile ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Header:
    """What an entry's ``.npy`` header says, read without its data."""

    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype
    offset: int  # where the data starts

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.count * self.dtype.itemsize


def _entries(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The zip's entries by array name (``model/head.bias`` for ``model/head.bias.npy``), names checked."""
    infos = archive.infolist()
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise _Invalid("its zip directory lists an entry more than once")
    odd = [name for name in names if not name.endswith(".npy")]
    if odd:
        raise _Invalid(f"it holds {odd[0]!r}, which is not a .npy array")
    return {info.filename[:-len(".npy")]: info for info in infos}


def _header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Header:
    """Read an entry's ``.npy`` header (a few hundred bytes at most) and check it against the zip's sizes."""
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise _Invalid(f"entry {info.filename!r} is a .npy file of version {version}, which numpy's savez "
                           "never writes here")
        header = _Header(tuple(shape), bool(fortran_order), dtype, member.tell())
    if dtype.hasobject or dtype.kind not in KINDS or dtype.fields is not None or dtype.itemsize == 0:
        raise _Invalid(f"entry {info.filename!r} holds arrays of dtype {dtype}, which no checkpoint holds "
                       "(objects would need pickle, which is never run)")
    if info.file_size != header.offset + header.nbytes:
        raise _Invalid(f"entry {info.filename!r} declares shape {header.shape} of {dtype} "
                       f"({header.nbytes:,} bytes) but the zip stores {info.file_size - header.offset:,}")
    return header


def _check_expansion(headers: Mapping[str, _Header], file_size: int) -> None:
    """Without a layout: the arrays may not take much more memory than the file takes disk."""
    total = sum(header.nbytes for header in headers.values())
    if total > EXPANSION_LIMIT * file_size:
        raise _Invalid(f"its arrays would take {total:,} bytes, over {EXPANSION_LIMIT} times the file's "
                       f"{file_size:,}")


def _check_layout(headers: Mapping[str, _Header], layout: Layout, config: dict[str, Any], step: int) -> None:
    """Refuse, before reading any data, entries that the run the checkpoint describes would not have."""
    vocab_size = _vocab_size(headers)
    try:
        expected = dict(layout(config, step, vocab_size))
    except (TypeError, ValueError) as error:
        raise _Invalid(str(error)) from None
    expected.update({name: header.shape for name, header in headers.items()
                     if name == "meta" or name.startswith("vocab/")})  # checked by _read_meta and _vocab_size
    missing, unexpected = sorted(set(expected) - set(headers)), sorted(set(headers) - set(expected))
    if missing or unexpected:
        parts = [f"{label} {', '.join(names[:4])}{' ...' if len(names) > 4 else ''}"
                 for label, names in (("lacks", missing), ("has the unexpected entries", unexpected)) if names]
        raise _Invalid(f"it {' and '.join(parts)}")
    for name, header in headers.items():
        largest = expected[name]
        if len(header.shape) != len(largest) or any(n > m for n, m in zip(header.shape, largest)):
            raise _Invalid(f"entry {name!r} has shape {header.shape}, which does not fit the run it describes "
                           f"({largest} at most)")


def _vocab_size(headers: Mapping[str, _Header]) -> int:
    try:
        return CharVocab.size_from_shapes({name.partition("/")[2]: header.shape for name, header in headers.items()
                                           if name.startswith("vocab/")})
    except (KeyError, ValueError) as error:
        raise _Invalid(f"it holds no valid vocabulary ({error})") from None


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, header: _Header) -> np.ndarray:
    """An entry's array, read in chunks into an array of the header's size (checked before), CRC checked."""
    array = np.empty(header.count, dtype=header.dtype)
    raw = array.view(np.uint8) if header.nbytes else np.empty(0, np.uint8)
    with archive.open(info) as member:
        _read_exactly(member, header.offset)
        position = 0
        while position < header.nbytes:
            chunk = _read_exactly(member, min(CHUNK, header.nbytes - position))
            raw[position:position + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
            position += len(chunk)
        if member.read(1):  # reaching the end is also what checks the entry's CRC
            raise _Invalid(f"entry {info.filename!r} holds more bytes than its header says")
    order = "F" if header.fortran_order else "C"
    return array.reshape(header.shape, order=order)


def _read_exactly(member: IO[bytes], size: int) -> bytes:
    data = member.read(size)
    if len(data) != size:
        raise EOFError(f"entry {member.name!r} ends early")
    return data


def _read_meta(meta: np.ndarray, source: str) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """The step, the configuration and the corpus's identity (empty if not recorded: checkpoints written before
    it was) from the ``meta`` entry, after checking that it is one of ours."""
    meta = np.asarray(meta)
    if meta.shape != () or meta.dtype.kind != "U":
        raise _Invalid(f"its 'meta' entry is an array of shape {meta.shape} and dtype {meta.dtype}, not a "
                       "string")
    try:
        content = json.loads(str(meta))
    except RecursionError:
        raise _Invalid("its 'meta' entry is JSON nested too deeply to be ours") from None
    except ValueError as error:  # not JSON, or a number too long to convert
        raise _Invalid(f"its 'meta' entry is not readable JSON ({error})") from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise _Invalid("its 'meta' entry does not say it is a backprop-lens checkpoint")
    if content.get("version") != VERSION:
        raise CheckpointError(f"{source} has checkpoint version {content.get('version')!r}; this version of "
                              f"backprop-lens reads version {VERSION}")
    step, config = content.get("step"), content.get("config")
    if type(step) is not int or step < 0 or not isinstance(config, dict):
        raise _Invalid("its 'meta' entry is damaged (no valid step or configuration)")
    corpus = content.get("corpus", {})
    if not isinstance(corpus, dict) or (corpus and not (isinstance(corpus.get("name"), str)
                                                        and type(corpus.get("size")) is int
                                                        and isinstance(corpus.get("sha256"), str))):
        raise _Invalid("its 'meta' entry is damaged (the corpus it records has no valid name, size and sha256)")
    return step, config, corpus
