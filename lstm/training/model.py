"""The character model a run trains: an embedding, a recurrent layer (LSTM, GRU or RNN) and a linear head."""

from __future__ import annotations

from typing import Any

import numpy as np

from autograd import Tensor
from autograd.nn import Embedding, Linear, Module
from lstm.models.gru import GRU
from lstm.models.lstm import LSTM, parameter_shapes
from lstm.models.rnn import RNN
from lstm.training.config import MODELS, ConfigError, TrainConfig

__all__ = ["CharModel", "State"]

State = Any  # the recurrent layer's state: (h, c) for the LSTM, h for the GRU and the RNN


class CharModel(Module):
    """Characters in, next-character logits out: an embedding, a recurrent layer over time (an `LSTM` by default,
    or a `GRU` or an `RNN`: ``kind``, one of MODELS), and a linear head. The recurrent layer's parameters are
    named after its kind: ``lstm.weight_ih_l0``, ``gru.weight_ih_l0``, ``rnn.weight_ih_l0``."""

    def __init__(self, vocab_size: int, embedding_size: int = 32, hidden_size: int = 128, num_layers: int = 1,
                 *, dtype: Any = np.float32, seed: int = 0, kind: str = "lstm") -> None:
        if kind not in MODELS:
            raise ConfigError(f"model must be one of {', '.join(MODELS)}, got {kind!r}")
        self.kind = kind
        # One seed per layer: the same seed would start every layer's generator at the same draws.
        self.embedding = Embedding(vocab_size, embedding_size, seed=seed, dtype=dtype)
        setattr(self, kind, MODELS[kind](embedding_size, hidden_size, num_layers, dtype=dtype, seed=seed + 1))
        self.head = Linear(hidden_size, vocab_size, seed=seed + 2, dtype=dtype)

    @property
    def recurrent(self) -> LSTM | GRU | RNN:
        return getattr(self, self.kind)

    @classmethod
    def for_config(cls, config: TrainConfig, vocab_size: int) -> CharModel:
        return cls(vocab_size, config.embedding_size, config.hidden_size, config.num_layers,
                   dtype=np.dtype(config.dtype), seed=config.seed, kind=config.model)

    @staticmethod
    def parameter_shapes(config: TrainConfig, vocab_size: int) -> dict[str, tuple[int, ...]]:
        """The name and shape of every parameter of ``for_config(config, vocab_size)``, without building it."""
        recurrent = parameter_shapes(config.embedding_size, config.hidden_size, config.num_layers,
                                     MODELS[config.model].blocks)
        return {"embedding.weight": (vocab_size, config.embedding_size),
                **{f"{config.model}.{name}": shape for name, shape in recurrent.items()},
                "head.weight": (vocab_size, config.hidden_size), "head.bias": (vocab_size,)}

    def forward(self, ids: np.ndarray, state: State | None = None) -> tuple[Tensor, State]:
        """``ids`` (T, B) integers -> logits (T, B, vocab_size) and the recurrent layer's final state."""
        out, state = self.recurrent(self.embedding(ids), state)
        return self.head(out), state

    @property
    def parameter_count(self) -> int:
        return sum(p.size for p in self.parameters())
