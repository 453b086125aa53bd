"""Training on Tensors: modules (`Linear`, `Embedding`) and optimizers (`SGD`, `Adam`, gradient clipping)."""

from autograd.nn.modules import Embedding, Linear, Module, checked_state, uniform
from autograd.nn.optim import SGD, Adam, Optimizer, clip_grad_norm

__all__ = ["SGD", "Adam", "Embedding", "Linear", "Module", "Optimizer", "checked_state", "clip_grad_norm",
           "uniform"]
