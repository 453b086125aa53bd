"""The backward passes derived by hand, in numpy, one model per file: ``lstm.hand.forward`` and
``lstm.hand.backward`` are the LSTM's (`lstm.hand.lstm`); `lstm.hand.gru` is the GRU's, `lstm.hand.rnn` the plain
RNN's."""

from lstm.hand import gru, rnn
from lstm.hand.lstm import Cache, LayerCache, backward, forward, init_params

__all__ = ["Cache", "LayerCache", "backward", "forward", "gru", "init_params", "rnn"]
