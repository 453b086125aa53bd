"""The backward passes derived by hand, in numpy: ``lstm.hand.forward`` and ``lstm.hand.backward`` are the LSTM's
(`lstm.hand.lstm`), ``lstm.hand.gru.forward`` and ``lstm.hand.gru.backward`` the GRU's."""

from lstm.hand import gru
from lstm.hand.lstm import Cache, LayerCache, backward, forward, init_params

__all__ = ["Cache", "gru", "LayerCache", "backward", "forward", "init_params"]
