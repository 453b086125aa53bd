"""One training step, and the validation loss: what a run does again and again."""

from __future__ import annotations

import numpy as np

from autograd import cross_entropy, no_grad
from autograd.nn.optim import Adam, clip_grad_norm
from lstm.training.config import TrainConfig
from lstm.training.data import random_batches, sequential_batches
from lstm.training.environment import one_blas_thread
from lstm.training.model import CharModel

__all__ = ["batch_at", "evaluate", "train_step"]

EVAL_LANES = 64  # validation text is read as this many parallel lanes (sequential_batches' batch size)


def batch_at(train_ids: np.ndarray, config: TrainConfig, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Step ``step``'s (inputs, targets): a function of (seed, step) alone, so resuming needs no RNG state."""
    rng = np.random.default_rng((config.seed, step))
    return next(random_batches(train_ids, config.seq_len, config.batch_size, rng))


def train_step(model: CharModel, optimizer: Adam, inputs: np.ndarray, targets: np.ndarray,
               clip_norm: float) -> float:
    """One forward and backward pass and one clipped Adam update; returns the batch's loss."""
    logits, _ = model(inputs)
    loss = cross_entropy(logits, targets)
    optimizer.zero_grad()
    loss.backward()
    clip_grad_norm(model.parameters(), clip_norm)
    optimizer.step()
    return loss.item()


def evaluate(model: CharModel, ids: np.ndarray, seq_len: int) -> float:
    """Mean cross entropy in nats per character over ``ids``, read in order in windows of ``seq_len``.

    The state starts from zero in every window, as in training, so the number is comparable with the
    training loss.
    """
    lanes = min(EVAL_LANES, (len(ids) - 1) // seq_len)
    if lanes < 1:
        raise ValueError(f"the validation text ({len(ids)} characters) is shorter than one window of "
                         f"seq_len={seq_len}; use a shorter seq_len or a larger val_fraction")
    total, count = 0.0, 0
    with no_grad(), one_blas_thread():
        for inputs, targets in sequential_batches(ids, seq_len, lanes):
            logits, _ = model(inputs)
            total += cross_entropy(logits, targets).item() * targets.size
            count += targets.size
    return total / count
