"""What a run keeps and returns: the loss curve (`History`) and the result (`TrainResult`)."""

from __future__ import annotations

import math
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lstm.training.config import TrainConfig
from lstm.training.data import CharVocab
from lstm.training.model import CharModel
from lstm.training.plots import loss_figure, plot_losses

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["History", "TrainResult"]


@dataclass
class History:
    """The loss curve: every step's training-batch loss, and the validation loss at the evaluated steps."""

    train_loss: list[float] = field(default_factory=list)  # train_loss[k - 1] is step k's
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)

    @property
    def step(self) -> int:
        return len(self.train_loss)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"train_loss": np.array(self.train_loss, dtype=np.float64),
                "val_steps": np.array(self.val_steps, dtype=np.int64),
                "val_loss": np.array(self.val_loss, dtype=np.float64)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> History:
        """The inverse of `to_arrays`; ValueError unless every entry is a 1-D array of numbers."""

        def column(name: str, dtype: type) -> list[Any]:
            array = np.asarray(arrays.get(name, np.zeros(0)))
            if array.ndim != 1 or array.dtype.kind not in "iuf":
                raise ValueError(f"{name} must be a 1-D array of numbers, got shape {array.shape} and dtype "
                                 f"{array.dtype}")
            return array.astype(dtype).tolist()

        return cls(column("train_loss", np.float64), column("val_steps", np.int64), column("val_loss", np.float64))


@dataclass
class TrainResult:
    """What a run produced; ``chars_per_second`` counts this run's training steps only (not evaluation).

    ``stopped_by`` is the signal (SIGINT or SIGTERM) that ended the run before ``config.steps``, if one did.
    """

    model: CharModel
    vocab: CharVocab
    config: TrainConfig
    history: History
    unigram_loss: float
    chars_per_second: float
    stopped_by: signal.Signals | None = None

    @property
    def interrupted(self) -> bool:
        return self.stopped_by is not None

    @property
    def step(self) -> int:
        return self.history.step

    @property
    def val_loss(self) -> float:
        """The latest validation loss (nats per character)."""
        return self.history.val_loss[-1] if self.history.val_loss else math.nan

    def plot(self, path: str | Path) -> Path:
        """Write the loss curve, with the unigram baseline, to a PNG."""
        return plot_losses(self.history, path, baseline=self.unigram_loss)

    def figure(self) -> Figure:
        """The loss curve as a matplotlib figure (what a notebook shows)."""
        return loss_figure(self.history, baseline=self.unigram_loss)
