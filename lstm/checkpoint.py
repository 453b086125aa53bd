"""Training checkpoints: plain numpy arrays in one ``.npz`` file, readable without pickle, written atomically.

A checkpoint holds everything a run needs to go on exactly where it stopped: the model's and the optimizer's
arrays, the vocabulary, the step reached, the loss history and the run's configuration (which includes the
seed). There is no random-number state to store, because the trainer draws step k's batch from a generator
seeded with (seed, k): the step number *is* the RNG state.

The file is a zip of ``.npy`` arrays, one per entry, grouped by a prefix (``model/lstm.weight_ih_l0``,
``optimizer/mean.0``, ...), plus ``meta``: a string array holding JSON (format, version, step, config).
It is first written under a temporary name in the same directory, flushed and fsync'ed, and then renamed over
the old one, so at every instant the path holds either the old checkpoint or the new one, complete.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autograd.files import write_atomically
from lstm.data import CharVocab

__all__ = ["Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint"]

FORMAT = "backprop-lens checkpoint"
VERSION = 1
GROUPS = ("model", "optimizer", "vocab", "history")


class CheckpointError(Exception):
    """A checkpoint that is missing, unreadable, or does not belong to the run that tries to use it."""


@dataclass
class Checkpoint:
    """One saved moment of a training run; every field is plain data (numbers, strings, numpy arrays)."""

    step: int
    config: dict[str, Any]
    model: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    vocab: CharVocab
    history: dict[str, np.ndarray] = field(default_factory=dict)

    def to_arrays(self) -> dict[str, np.ndarray]:
        meta = {"format": FORMAT, "version": VERSION, "step": int(self.step), "config": self.config}
        arrays = {"meta": np.array(json.dumps(meta))}
        groups = {"model": self.model, "optimizer": self.optimizer, "vocab": self.vocab.to_dict(),
                  "history": self.history}
        for group, members in groups.items():
            arrays.update({f"{group}/{name}": np.asarray(array) for name, array in members.items()})
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], source: str = "checkpoint") -> Checkpoint:
        """Rebuild a checkpoint from ``to_arrays()``'s output; CheckpointError if it is not one."""
        if "meta" not in arrays:
            raise CheckpointError(f"{source} is not a backprop-lens checkpoint (it has no 'meta' entry)")
        try:
            meta = json.loads(str(arrays["meta"]))
        except (json.JSONDecodeError, UnicodeError) as error:
            raise CheckpointError(f"{source} has an unreadable 'meta' entry ({error})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CheckpointError(f"{source} is not a backprop-lens checkpoint")
        if meta.get("version") != VERSION:
            raise CheckpointError(f"{source} has checkpoint version {meta.get('version')}; this version of "
                                  f"backprop-lens reads version {VERSION}")
        groups: dict[str, dict[str, np.ndarray]] = {group: {} for group in GROUPS}
        for key, array in arrays.items():
            group, _, name = key.partition("/")
            if group in groups:
                groups[group][name] = array
        try:
            vocab = CharVocab.from_dict(groups["vocab"])
        except (KeyError, ValueError) as error:
            raise CheckpointError(f"{source} holds no valid vocabulary ({error})") from None
        step, config = meta.get("step"), meta.get("config")
        if not isinstance(step, int) or step < 0 or not isinstance(config, dict):
            raise CheckpointError(f"{source} has a damaged 'meta' entry (no valid step or configuration)")
        return cls(step, config, groups["model"], groups["optimizer"], vocab, groups["history"])


def save_checkpoint(path: str | os.PathLike, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (parent directories are created); returns the path."""
    arrays = checkpoint.to_arrays()
    return write_atomically(path, lambda file: np.savez(file, **arrays))


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`; CheckpointError says what is wrong if it cannot."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file, so it cannot be a checkpoint")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{path} holds a single numpy array, not a checkpoint")
        with archive:
            # Reading every array here, inside the try, is what checks each entry's CRC.
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{path} is not a readable checkpoint: it is damaged, truncated or of another "
                              f"kind ({error})") from None
    return Checkpoint.from_arrays(arrays, source=str(path))
