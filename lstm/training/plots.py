"""The loss curve as a figure (matplotlib, an optional dependency) and as a PNG file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from autograd.files import write_atomically

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lstm.training.history import History

__all__ = ["loss_figure", "plot_losses"]


def plot_losses(history: History, path: str | Path, baseline: float | None = None) -> Path:
    """Draw the loss curve to a PNG, written atomically (see `write_atomically`); parent directories are
    created."""
    figure = loss_figure(history, baseline)
    return write_atomically(path, lambda file: figure.savefig(file, format="png"))


def loss_figure(history: History, baseline: float | None = None) -> Figure:
    """The loss curve: training batches, their moving average, validation, and the baseline (a notebook shows
    the figure itself)."""
    from matplotlib.figure import Figure  # lazily: matplotlib is optional, and no pyplot, no global backend

    figure = Figure(figsize=(7.5, 4.2), dpi=120, layout="constrained")
    axes = figure.add_subplot()
    steps = np.arange(1, history.step + 1)
    axes.plot(steps, history.train_loss, color="#9ec3e6", linewidth=0.7, label="training batch")
    window = min(50, max(history.step // 10, 1))
    if history.step >= 2 * window > 2:
        smooth = np.convolve(history.train_loss, np.ones(window) / window, mode="valid")
        axes.plot(steps[window - 1:], smooth, color="#1f5fa8", linewidth=1.6,
                  label=f"training, mean of {window} steps")
    if history.val_loss:
        axes.plot(history.val_steps, history.val_loss, "o-", color="#c2410c", markersize=3.5,
                  label="validation")
    if baseline is not None:
        axes.axhline(baseline, color="#57606a", linestyle="--", linewidth=1,
                     label=f"unigram baseline ({baseline:.3f})")
    axes.set_xlabel("step")
    axes.set_ylabel("cross entropy (nats per character)")
    axes.set_title("Character-level LSTM on the shipped text")
    axes.grid(alpha=0.3)
    axes.legend(frameon=False)
    return figure
