"""The backward passes derived by hand, in numpy; ``lstm.hand.forward`` and ``lstm.hand.backward`` are the LSTM's."""

from lstm.hand.lstm import Cache, LayerCache, backward, forward, init_params

__all__ = ["Cache", "LayerCache", "backward", "forward", "init_params"]
