"""The models, each from autograd primitives with PyTorch's parameter names and layout: `LSTM` and `ScalarLSTM`
(`lstm.models.lstm`), `GRU` (`lstm.models.gru`), `RNN` (`lstm.models.rnn`); `params` holds the facts they share
(gate order, shapes, initialisation, node names), once."""

from lstm.models import params
from lstm.models.gru import GRU
from lstm.models.lstm import LSTM, ScalarLSTM
from lstm.models.rnn import RNN

__all__ = ["GRU", "LSTM", "RNN", "ScalarLSTM", "params"]
