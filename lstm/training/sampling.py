"""Text written by a trained model, from a prompt."""

from __future__ import annotations

import math

import numpy as np

from autograd import no_grad
from lstm.training.config import ConfigError, TrainingDiverged
from lstm.training.data import CharVocab
from lstm.training.estimate import check_sample_size
from lstm.training.model import CharModel

__all__ = ["check_prompt", "sample"]


def sample(model: CharModel, vocab: CharVocab, prompt: str, length: int = 200, temperature: float = 1.0,
           rng: np.random.Generator | None = None) -> str:
    """``length`` characters that the model writes after ``prompt`` (not included in the result).

    ``temperature`` scales the logits before sampling: below 1 is more conservative, 0 always takes the
    likeliest character.
    """
    check_prompt(vocab, prompt)
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be a non-negative number, got {temperature!r}")
    check_sample_size(length)
    rng = np.random.default_rng() if rng is None else rng
    written = []
    with no_grad():
        logits, state = model(vocab.encode(prompt)[:, None])
        for _ in range(length):
            scores = logits.data[-1, 0].astype(np.float64)
            if not np.isfinite(scores).all():
                raise TrainingDiverged("the model's outputs are not finite numbers (its weights have grown out of "
                                       "range), so it cannot be sampled; a lower learning rate may help")
            if temperature == 0:
                next_id = int(np.argmax(scores))
            else:
                with np.errstate(over="ignore"):  # a tiny temperature: -inf, so exp gives 0, as it should
                    weights = np.exp((scores - scores.max()) / temperature)
                next_id = int(rng.choice(len(weights), p=weights / weights.sum()))
            written.append(next_id)
            logits, state = model(np.array([[next_id]]), state)
    return vocab.decode(np.array(written, dtype=np.int64))


def check_prompt(vocab: CharVocab, prompt: str) -> None:
    """ConfigError unless the model can go on from ``prompt``: at least one character, all in the vocabulary."""
    if not prompt:
        raise ConfigError("sampling needs a non-empty prompt (--prompt): the model has to be fed at least one "
                          "character")
    unknown = sorted(set(prompt) - set(vocab.chars))
    if unknown:
        raise ConfigError(f"the prompt (--prompt) has characters the corpus does not: {''.join(unknown)!r} are not "
                          "in the vocabulary")
