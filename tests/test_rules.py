"""Every op's gradient, checked the ways other engines check theirs.

- HIPS autograd's ``check_grads``: for a random upstream gradient v (never all-ones: all-ones hid a scrambled
  transpose gradient) and a random direction u, the reverse pass must satisfy <u, vjp(v)> = <v, J u>, with J u
  from central differences of the forward pass; and again one order up, for the vector-Jacobian product itself
  recorded with ``create_graph`` (a function of the inputs and of v), so second derivatives are checked too.
  Every Tensor op and every Value op, including composites.
- Each primitive of the table against its derivative written out by hand in numpy.
- tinygrad's ``helper_test_op`` habits: the forward against numpy's (shape, dtype, numbers), float32 staying
  float32 through forward and backward, 0-d and empty arrays.
- micrograd's test_engine: its "more ops" program, against numbers derived independently here by dual numbers
  (forward-mode derivatives, exact to rounding), and against the figures PyTorch gives in micrograd's README.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest

import autograd
import autograd.primitives as primitives
from autograd import Tensor, Value
from autograd.core import Node, topological_order

EVERY_PRIMITIVE = {v.name for v in vars(primitives).values() if isinstance(v, primitives.Primitive)}
SCALAR_PRIMITIVES = {p.name for p in primitives.SCALAR_PRIMITIVES}


# --- HIPS-style check_grads ------------------------------------------------------------------------------------

def tensor_leaf(array: np.ndarray) -> Tensor:
    return Tensor(np.array(array, dtype=np.float64), requires_grad=True)


def value_leaf(array: np.ndarray) -> Value:
    return Value(float(array))


def total(node: Node) -> Node:
    return node.sum() if isinstance(node, Tensor) else node


def check_vjp(f: Callable[..., Node], arrays: Sequence[np.ndarray], leaf: Callable[[np.ndarray], Node],
              rng: np.random.Generator, eps: float = 1e-6) -> None:
    """<u, vjp(v)> against <v, (f(x + eps u) - f(x - eps u)) / 2 eps>, for a random v and u."""
    nodes = [leaf(a) for a in arrays]
    out = f(*nodes)
    v = rng.standard_normal(np.shape(out.data))
    grads = autograd.grad(out, nodes, v)
    for node, g in zip(nodes, grads):
        assert np.shape(g) == np.shape(node.data) and not isinstance(g, Node)
    directions = [rng.standard_normal(np.shape(a)) for a in arrays]

    def along(t: float) -> np.ndarray:
        return np.asarray(f(*[leaf(a + t * u) for a, u in zip(arrays, directions)]).data, dtype=np.float64)

    numeric = float(np.sum(v * (along(eps) - along(-eps)))) / (2 * eps)
    analytic = sum(float(np.sum(u * np.asarray(g, dtype=np.float64))) for u, g in zip(directions, grads))
    scale = sum(float(np.sum(np.abs(u * np.asarray(g)))) for u, g in zip(directions, grads)) + abs(numeric)
    assert abs(analytic - numeric) <= 1e-6 * scale + 1e-8, (analytic, numeric)


def check_grads(f: Callable[..., Node], arrays: Sequence[np.ndarray], leaf: Callable[[np.ndarray], Node],
                rng: np.random.Generator) -> None:
    """First order, then second: the vector-Jacobian product recorded with create_graph, weighted by random w,
    is itself a function of the inputs and of v whose gradient must pass the same check."""
    check_vjp(f, arrays, leaf, rng)
    out_shape = np.shape(f(*[leaf(a) for a in arrays]).data)
    weights = [rng.standard_normal(np.shape(a)) for a in arrays]

    def weighted_vjp(*inputs: Node) -> Node:
        *xs, v = inputs
        grads = autograd.grad(f(*xs), xs, v, create_graph=True)
        return sum((total(g * w) for g, w in zip(grads, weights)), total(v * 0.0))

    check_vjp(weighted_vjp, [*arrays, rng.standard_normal(out_shape)], leaf, rng)


def inputs_for(shapes: Sequence[tuple[int, ...]], positive: bool, rng: np.random.Generator) -> list[np.ndarray]:
    arrays = [rng.standard_normal(s) for s in shapes]
    return [np.abs(a) + 0.5 for a in arrays] if positive else arrays


MASK = np.array([True, False, True])
CONDITION = np.array([[True, False, True, False], [False, False, True, True], [True, True, False, False]])

# (name, input shapes, function of Tensors, inputs positive)
TENSOR_OPS = [
    ("add", [(3, 4), (4,)], lambda a, b: a + b, False),
    ("add broadcasting both ways", [(3, 1), (1, 4)], lambda a, b: a + b, False),
    ("add a number", [(3,)], lambda a: 2.5 + a, False),
    ("sub", [(2, 3), (2, 1)], lambda a, b: a - b, False),
    ("sub from a number", [(3,)], lambda a: 1.5 - a, False),
    ("mul", [(2, 3), (3,)], lambda a, b: a * b, False),
    ("mul fork", [(3,)], lambda a: a * a, False),
    ("mul by an array", [(2, 3)], lambda a: np.linspace(-1, 1, 3, dtype=np.float32) * a, False),
    ("div", [(2, 3), (3,)], lambda a, b: a / b, True),
    ("div into a number", [(3,)], lambda a: 2.0 / a, True),
    ("pow", [(2, 3), (3,)], lambda a, b: a**b, True),
    ("pow by a number", [(3,)], lambda a: a**3, False),
    ("number to a power", [(3,)], lambda a: 1.7**a, False),
    ("neg", [(3,)], lambda a: -a, False),
    ("exp", [(2, 3)], lambda a: a.exp(), False),
    ("log", [(2, 3)], lambda a: a.log(), True),
    ("sqrt", [(2, 3)], lambda a: a.sqrt(), True),
    ("tanh", [(2, 3)], lambda a: a.tanh(), False),
    ("sigmoid", [(2, 3)], lambda a: a.sigmoid(), False),
    ("relu", [(2, 3)], lambda a: a.relu() * a, False),
    ("abs", [(2, 3)], lambda a: abs(a) * a, False),
    ("clip", [(3, 4)], lambda a: a.clip(-0.5, 0.5) * a, False),
    ("clip below", [(3, 4)], lambda a: a.clip(low=0.0) * a, False),
    ("matmul", [(3, 4), (4, 2)], lambda a, b: a @ b, False),
    ("matmul batch", [(2, 3, 4), (4, 2)], lambda a, b: a @ b, False),
    ("matrix @ vector", [(3, 4), (4,)], lambda a, b: a @ b, False),
    ("vector @ batch", [(4,), (2, 4, 3)], lambda a, b: a @ b, False),
    ("vector @ vector", [(4,), (4,)], lambda a, b: a @ b, False),
    ("sum", [(2, 3, 4)], lambda a: a.sum() * a, False),
    ("sum axis -1", [(2, 3, 4)], lambda a: a.sum(axis=-1), False),
    ("sum axes (0, -1) keepdims", [(2, 3, 4)], lambda a: a.sum(axis=(0, -1), keepdims=True) * a, False),
    ("mean axis -2", [(2, 3, 4)], lambda a: a.mean(axis=-2), False),
    ("max axis -1", [(3, 4)], lambda a: a.max(axis=-1) * a.sum(axis=1), False),
    ("min axes (-1, 0)", [(2, 3, 4)], lambda a: a.min(axis=(-1, 0)), False),
    ("max of all", [(3, 4)], lambda a: a.max() * a, False),
    ("reshape", [(2, 3, 4)], lambda a: a.reshape(4, -1) * np.arange(6, dtype=np.float32), False),
    ("transpose reversed", [(2, 3, 4)], lambda a: a.transpose(), False),
    ("transpose negative axes", [(2, 3, 4)], lambda a: a.transpose((1, -1, 0)), False),
    ("T", [(3, 4)], lambda a: a.T @ a, False),
    ("swapaxes negative", [(2, 3, 4)], lambda a: a.swapaxes(-1, 0), False),
    ("broadcast_to", [(3, 1)], lambda a: a.broadcast_to((2, 3, 4)), False),
    ("getitem basic negative", [(3, 4)], lambda a: a[-1, ::-2], False),
    ("getitem repeated negative", [(3, 4)], lambda a: a[[0, -1, 0, 2]], False),
    ("getitem pairs", [(3, 4)], lambda a: a[[0, 1, 1], [-1, 0, 0]], False),
    ("getitem mask", [(3, 4)], lambda a: a[MASK, 1:], False),
    ("getitem boolean tensor", [(3, 4)], lambda a: a[Tensor(MASK)], False),
    ("getitem 2-d mask", [(3, 4)], lambda a: a[CONDITION], False),
    ("scatter", [(3, 2)], lambda a: a.scatter([0, 2, 0], (4, 2)), False),
    ("concatenate axis -1", [(2, 3), (2, 1)], lambda a, b: autograd.concatenate([a, b, a], axis=-1), False),
    ("stack axis -1", [(2, 3), (2, 3)], lambda a, b: autograd.stack([a, b, a * b], axis=-1), False),
    ("split axis -1", [(2, 4)], lambda a: autograd.split(a, 2, axis=-1)[1] * a[:, :2], False),
    ("where", [(3, 4), (4,)], lambda a, b: autograd.where(CONDITION, a, b), False),
    ("softmax axis -2", [(3, 4)], lambda a: a.softmax(axis=-2), False),
    ("log_softmax axis 0", [(3, 4)], lambda a: autograd.log_softmax(a, axis=0), False),
    ("mse", [(3, 2), (3, 2)], lambda a, b: autograd.mse(a, b), False),
    ("cross_entropy", [(4, 3)], lambda a: autograd.cross_entropy(a, [0, 2, 1, 1]), False),
    ("0-d reductions", [()], lambda a: a.sum(axis=-1) * a.max(axis=0) + a.mean(axis=(0,)), False),
    ("0-d arithmetic", [(), ()], lambda a, b: (a * b).exp() / (a * a + 1.0) - b**2, False),
    ("0-d softmax", [()], lambda a: a.softmax() * a + a.log_softmax(), False),
    ("conv2d strided padded", [(2, 3, 5, 4), (2, 3, 3, 2), (2,)],
     lambda a, b, c: autograd.conv2d(a, b, c, stride=(2, 1), padding=(1, 0)), False),
    ("conv1d", [(2, 3, 7), (4, 3, 3)], lambda a, b: autograd.conv1d(a, b, stride=2, padding=1), False),
    ("conv_input_grad", [(2, 2, 3, 3), (2, 3, 3, 2)],
     lambda a, b: a.apply(primitives.CONV_INPUT_GRAD, b, size=(5, 4), stride=(2, 1), padding=(1, 0)), False),
    ("conv_weight_grad", [(2, 3, 5, 4), (2, 2, 3, 3)],
     lambda a, b: a.apply(primitives.CONV_WEIGHT_GRAD, b, kernel=(3, 2), stride=(2, 1), padding=(1, 0)), False),
    ("max_pool2d overlapping", [(2, 3, 5, 4)], lambda a: autograd.max_pool2d(a, (2, 3), stride=1), False),
    ("avg_pool2d", [(2, 3, 5, 4)], lambda a: autograd.avg_pool2d(a, 2), False),
    ("avg_pool_grad", [(2, 3, 2, 2)],
     lambda a: a.apply(primitives.AVG_POOL_GRAD, size=(5, 4), kernel=(2, 2), stride=(2, 2)), False),
    ("softmax_cross_entropy", [(4, 3)], lambda a: autograd.softmax_cross_entropy(a, [0, 2, 1, 1]) * a, False),
    ("maximum, minimum", [(3, 4), (4,)], lambda a, b: autograd.maximum(a, b) * autograd.minimum(b, a), False),
    ("0-d with a matrix", [(), (2, 3)], lambda a, b: a * b + b / (a * a + 1.0), False),
]

VALUE_OPS = [
    ("add", 2, lambda a, b: a + b, False),
    ("add a number", 1, lambda a: 2.5 + a, False),
    ("sub", 2, lambda a, b: a - b, False),
    ("sub from a number", 1, lambda a: 1.5 - a, False),
    ("mul", 2, lambda a, b: a * b, False),
    ("mul fork", 1, lambda a: a * a, False),
    ("mul by a 0-d array", 1, lambda a: a * np.array(1.5), False),
    ("div", 2, lambda a, b: a / b, True),
    ("div into a number", 1, lambda a: 2.0 / a, True),
    ("pow", 2, lambda a, b: a**b, True),
    ("pow by a number", 1, lambda a: a**3, False),
    ("number to a power", 1, lambda a: 1.7**a, False),
    ("neg", 1, lambda a: -a, False),
    ("exp", 1, lambda a: a.exp(), False),
    ("log", 1, lambda a: a.log(), True),
    ("sqrt", 1, lambda a: a.sqrt(), True),
    ("tanh", 1, lambda a: a.tanh(), False),
    ("sigmoid", 1, lambda a: a.sigmoid(), False),
    ("relu", 1, lambda a: a.relu() * a, False),
    ("abs", 1, lambda a: abs(a) * a + a.abs(), False),
    ("max", 2, lambda a, b: a.max(b) * a, False),
    ("min", 2, lambda a, b: a.min(b) * b, False),
    ("a graph with forks", 2, lambda a, b: (a * b + a).tanh() * (b - a * a).sigmoid() + (a * a + 1).log(), False),
]


@pytest.mark.parametrize("name, shapes, f, positive", TENSOR_OPS, ids=[c[0] for c in TENSOR_OPS])
def test_tensor_op_gradients_first_and_second_order(name, shapes, f, positive, rng):
    check_grads(f, inputs_for(shapes, positive, rng), tensor_leaf, rng)


@pytest.mark.parametrize("name, arity, f, positive", VALUE_OPS, ids=[c[0] for c in VALUE_OPS])
def test_value_op_gradients_first_and_second_order(name, arity, f, positive, rng):
    check_grads(f, inputs_for([()] * arity, positive, rng), value_leaf, rng)


def ops_used(cases: list, leaf: Callable[[np.ndarray], Node], shapes_of: Callable, rng) -> set[str]:
    used = set()
    for _, spec, f, positive in cases:
        out = f(*[leaf(a) for a in inputs_for(shapes_of(spec), positive, rng)])
        used |= {node.op.name for node in topological_order(out) if node.op is not None}
    return used


def test_the_checks_reach_every_primitive(rng):
    assert ops_used(TENSOR_OPS, tensor_leaf, lambda shapes: shapes, rng) == EVERY_PRIMITIVE
    assert ops_used(VALUE_OPS, value_leaf, lambda arity: [()] * arity, rng) == SCALAR_PRIMITIVES


def test_check_grads_catches_a_wrong_rule_that_all_ones_would_miss(rng):
    # transpose's old rule, which inverted a permutation without normalising its negative axes, on a cube (so
    # the scrambled gradient even has the right shape): an all-ones upstream gradient permuted is all-ones
    import dataclasses

    from autograd import tensor as tensor_module

    old = dataclasses.replace(primitives.TRANSPOSE, rules=(lambda g, out, x, axes: g.transpose(np.argsort(axes)),))

    def f(a: Tensor) -> Tensor:
        return tensor_module._apply(old, a, axes=(1, -1, 0))

    x = tensor_leaf(rng.standard_normal((3, 3, 3)))
    np.testing.assert_array_equal(autograd.grad(f(x), x, np.ones((3, 3, 3))), np.ones((3, 3, 3)))  # looks right
    with pytest.raises(AssertionError):
        check_vjp(f, [rng.standard_normal((3, 3, 3))], tensor_leaf, rng)
    check_vjp(lambda a: a.transpose((1, -1, 0)), [rng.standard_normal((3, 3, 3))], tensor_leaf, rng)


# --- each primitive against its derivative written out by hand ----------------------------------------------------

def _unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    return g.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


def _scatter_add(g: np.ndarray, index, shape) -> np.ndarray:
    out = np.zeros(shape)
    np.add.at(out, index, g)
    return out


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


INDEX = (slice(None), [2, 0, 2])


# Convolution and pooling written out position by position (loops: these are the references, not the engine).
STRIDE, PADDING = (2, 1), (1, 0)


def _naive_conv(x, w, stride=STRIDE, padding=PADDING):
    xp = np.pad(x, [(0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2])
    (kh, kw), (sh, sw) = w.shape[2:], stride
    out = np.zeros((x.shape[0], w.shape[0], (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1))
    for n, f, i, j in np.ndindex(out.shape):
        out[n, f, i, j] = (xp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw] * w[f]).sum()
    return out


def _naive_conv_grads(g, x_shape, x, w, stride=STRIDE, padding=PADDING):
    """dL/dx (from w) and dL/dw (from x), each window's term added where it came from."""
    (ph, pw), (kh, kw), (sh, sw) = padding, w.shape[2:], stride
    dxp = np.zeros((x_shape[0], x_shape[1], x_shape[2] + 2 * ph, x_shape[3] + 2 * pw))
    xp = None if x is None else np.pad(x, [(0, 0), (0, 0), (ph, ph), (pw, pw)])
    dw = np.zeros(w.shape)
    for n, f, i, j in np.ndindex(g.shape):
        dxp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += g[n, f, i, j] * w[f]
        if xp is not None:
            dw[f] += g[n, f, i, j] * xp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
    return dxp[:, :, ph:ph + x_shape[2], pw:pw + x_shape[3]], dw


def _naive_max_pool_grad(g, x, kernel, stride):
    dx = np.zeros(x.shape)
    for n, c, i, j in np.ndindex(g.shape):
        window = x[n, c, i * stride:i * stride + kernel[0], j * stride:j * stride + kernel[1]]
        p, q = np.unravel_index(np.argmax(window), window.shape)  # the first maximum
        dx[n, c, i * stride + p, j * stride + q] += g[n, c, i, j]
    return dx


def _naive_spread(g, size, k=2):  # average pooling's backward with non-overlapping k x k windows
    dx = np.zeros(g.shape[:2] + size)
    for n, c, i, j in np.ndindex(g.shape):
        dx[n, c, i * k:i * k + k, j * k:j * k + k] += g[n, c, i, j] / k**2
    return dx


def _naive_avg_pool(x, k=2):
    ho, wo = x.shape[2] // k, x.shape[3] // k
    return x[:, :, :ho * k, :wo * k].reshape(*x.shape[:2], ho, k, wo, k).mean(axis=(3, 5))


def _p_minus_y(g, a):
    targets = np.array([0, 2, 1, 1])
    p = np.exp(a) / np.exp(a).sum(axis=1, keepdims=True)
    return g * (p - np.eye(a.shape[1])[targets]) / len(targets)


CONV_CLOSED_FORMS = {
    "conv2d": ([(2, 3, 5, 4), (2, 3, 3, 2)], False,
               lambda a, b: autograd.conv2d(a, b, stride=STRIDE, padding=PADDING),
               lambda g, a, b: _naive_conv_grads(g, a.shape, a, b)),
    "conv1d": ([(2, 3, 7), (4, 3, 3)], False, lambda a, b: autograd.conv1d(a, b, stride=2, padding=1),
               lambda g, a, b: [d[:, :, 0] for d in _naive_conv_grads(g[:, :, None], (2, 3, 1, 7), a[:, :, None],
                                                                        b[:, :, None], (1, 2), (0, 1))]),
    # dL/dX = T(g, W): its input g's gradient is the convolution of the upstream h with W, its W's the
    # correlation of h with g
    "conv_input_grad": ([(2, 2, 3, 3), (2, 3, 3, 2)], False,
                        lambda a, b: a.apply(primitives.CONV_INPUT_GRAD, b, size=(5, 4), stride=STRIDE,
                                             padding=PADDING),
                        lambda h, a, b: (_naive_conv(h, b), _naive_conv_grads(a, h.shape, h, b)[1])),
    "conv_weight_grad": ([(2, 3, 5, 4), (2, 2, 3, 3)], False,
                         lambda a, b: a.apply(primitives.CONV_WEIGHT_GRAD, b, kernel=(3, 2), stride=STRIDE,
                                              padding=PADDING),
                         lambda h, a, b: (_naive_conv_grads(b, a.shape, None, h)[0], _naive_conv(a, h))),
    "max_pool2d": ([(2, 3, 5, 4)], False, lambda a: autograd.max_pool2d(a, (2, 3), stride=1),
                   lambda g, a: (_naive_max_pool_grad(g, a, (2, 3), 1),)),
    "avg_pool2d": ([(2, 3, 5, 4)], False, lambda a: autograd.avg_pool2d(a, 2),
                   lambda g, a: (_naive_spread(g, (5, 4)),)),
    "avg_pool_grad": ([(2, 3, 2, 2)], False,
                      lambda a: a.apply(primitives.AVG_POOL_GRAD, size=(5, 4), kernel=(2, 2), stride=(2, 2)),
                      lambda h, a: (_naive_avg_pool(h),)),
    "softmax_cross_entropy": ([(4, 3)], False, lambda a: autograd.softmax_cross_entropy(a, [0, 2, 1, 1]),
                              lambda g, a: (_p_minus_y(g, a),)),
    "maximum": ([(3, 4), (4,)], False, lambda a, b: autograd.maximum(a, b),
                lambda g, a, b: (np.where(a > b, g, 0.0), _unbroadcast(np.where(b > a, g, 0.0), b.shape))),
    "minimum": ([(3, 4), (4,)], False, lambda a, b: autograd.minimum(a, b),
                lambda g, a, b: (np.where(a < b, g, 0.0), _unbroadcast(np.where(b < a, g, 0.0), b.shape))),
}

# primitive name -> (input shapes, inputs positive, forward on Tensors, d/d each input given g, in numpy)
CLOSED_FORMS = {
    "add": ([(3, 4), (4,)], False, lambda a, b: a + b, lambda g, a, b: (g, _unbroadcast(g, b.shape))),
    "sub": ([(3, 4), (3, 1)], False, lambda a, b: a - b, lambda g, a, b: (g, -_unbroadcast(g, b.shape))),
    "mul": ([(3, 4), (4,)], False, lambda a, b: a * b, lambda g, a, b: (g * b, _unbroadcast(g * a, b.shape))),
    "div": ([(3, 4), (4,)], True, lambda a, b: a / b,
            lambda g, a, b: (g / b, _unbroadcast(-g * a / b**2, b.shape))),
    "pow": ([(3, 4), (4,)], True, lambda a, b: a**b,
            lambda g, a, b: (g * b * a ** (b - 1), _unbroadcast(g * a**b * np.log(a), b.shape))),
    "neg": ([(3, 4)], False, lambda a: -a, lambda g, a: (-g,)),
    "exp": ([(3, 4)], False, lambda a: a.exp(), lambda g, a: (g * np.exp(a),)),
    "log": ([(3, 4)], True, lambda a: a.log(), lambda g, a: (g / a,)),
    "sqrt": ([(3, 4)], True, lambda a: a.sqrt(), lambda g, a: (g / (2 * np.sqrt(a)),)),
    "tanh": ([(3, 4)], False, lambda a: a.tanh(), lambda g, a: (g / np.cosh(a) ** 2,)),
    "sigmoid": ([(3, 4)], False, lambda a: a.sigmoid(), lambda g, a: (g * _sigmoid(a) * _sigmoid(-a),)),
    "relu": ([(3, 4)], False, lambda a: a.relu(), lambda g, a: (np.where(a > 0, g, 0.0),)),
    "abs": ([(3, 4)], False, lambda a: abs(a), lambda g, a: (np.where(a > 0, g, -g),)),
    "matmul": ([(3, 4), (4, 2)], False, lambda a, b: a @ b, lambda g, a, b: (g @ b.T, a.T @ g)),
    "sum": ([(2, 3, 4)], False, lambda a: a.sum(axis=-2), lambda g, a: (np.repeat(g[:, None, :], 3, axis=1),)),
    "max": ([(3, 4)], False, lambda a: a.max(axis=0),
            lambda g, a: (np.where(a == a.max(axis=0), g, 0.0),)),
    "min": ([(3, 4)], False, lambda a: a.min(axis=-1),
            lambda g, a: (np.where(a == a.min(axis=-1, keepdims=True), g[:, None], 0.0),)),
    "reshape": ([(3, 4)], False, lambda a: a.reshape(2, 6), lambda g, a: (g.reshape(3, 4),)),
    "transpose": ([(2, 3, 4)], False, lambda a: a.transpose((-1, 0, 1)), lambda g, a: (g.transpose(1, 2, 0),)),
    "broadcast_to": ([(3, 1)], False, lambda a: a.broadcast_to((2, 3, 4)),
                     lambda g, a: (g.sum(axis=(0, 2))[:, None],)),
    "getitem": ([(3, 4)], False, lambda a: a[INDEX], lambda g, a: (_scatter_add(g, INDEX, (3, 4)),)),
    "scatter": ([(3, 3)], False, lambda a: a.scatter(INDEX, (3, 4)), lambda g, a: (g[INDEX],)),
    "concatenate": ([(2, 3), (2, 1)], False, lambda a, b: autograd.concatenate([a, b], axis=-1),
                    lambda g, a, b: (g[:, :3], g[:, 3:])),
    "where": ([(3, 4), (4,)], False, lambda a, b: autograd.where(CONDITION, a, b),
              lambda g, a, b: (np.where(CONDITION, g, 0.0), np.where(CONDITION, 0.0, g).sum(axis=0))),
    "clip": ([(3, 4)], False, lambda a: a.clip(-0.5, 0.5),
             lambda g, a: (np.where(np.abs(a) <= 0.5, g, 0.0),)),
    **{name: row for name, row in CONV_CLOSED_FORMS.items()},
}


def test_every_primitive_has_a_closed_form_here():
    assert set(CLOSED_FORMS) == EVERY_PRIMITIVE


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_each_primitive_against_its_closed_form(name, rng):
    shapes, positive, f, closed = CLOSED_FORMS[name]
    arrays = inputs_for(shapes, positive, rng)
    leaves = [tensor_leaf(a) for a in arrays]
    out = f(*leaves)
    assert out.op.name == name
    g = rng.standard_normal(out.shape)
    for got, expected in zip(autograd.grad(out, leaves, g), closed(g, *arrays)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    if name in SCALAR_PRIMITIVES:  # the same rule on floats, through Values
        values = [Value(float(a.flat[0])) for a in arrays]
        out = f(*values)
        g = float(rng.standard_normal())
        scalars = [np.array(float(a.flat[0])) for a in arrays]
        expected = [float(np.asarray(e).flat[0]) for e in closed(np.array(g), *scalars)]
        assert autograd.grad(out, values, g) == pytest.approx(expected, rel=1e-12, abs=1e-14)


# --- tinygrad-style: forward against numpy, dtypes, 0-d and empty arrays -----------------------------------------

@pytest.mark.parametrize("name, shapes, f, positive", TENSOR_OPS, ids=[c[0] for c in TENSOR_OPS])
def test_float32_stays_float32_forward_and_backward(name, shapes, f, positive, rng):
    arrays = [a.astype(np.float32) for a in inputs_for(shapes, positive, rng)]
    leaves = [Tensor(a, requires_grad=True) for a in arrays]
    out = f(*leaves)
    assert out.dtype == np.float32
    reference = f(*[tensor_leaf(a) for a in arrays])  # the same inputs in float64
    np.testing.assert_allclose(out.data, reference.data, rtol=1e-5, atol=1e-5)
    for leaf, g in zip(leaves, autograd.grad(out, leaves, rng.standard_normal(out.shape).astype(np.float32))):
        assert g.dtype == np.float32 and g.shape == leaf.shape


# (name, input shapes, function of Tensors, the same in numpy)
EMPTY = [
    ("add", [(0, 3), (3,)], lambda a, b: a + b, lambda a, b: a + b),
    ("mul broadcast", [(2, 0), (2, 1)], lambda a, b: a * b, lambda a, b: a * b),
    ("exp", [(0,)], lambda a: a.exp(), np.exp),
    ("log", [(0, 2)], lambda a: a.log(), np.log),
    ("sum", [(0, 3)], lambda a: a.sum(axis=0), lambda a: a.sum(axis=0)),
    ("sum all", [(0,)], lambda a: a.sum(), lambda a: a.sum()),
    ("mean", [(2, 0)], lambda a: a.mean(axis=-1), lambda a: np.full(2, np.nan)),  # numpy: nan, with a warning
    ("max over a kept axis", [(0, 3)], lambda a: a.max(axis=1), lambda a: a.max(axis=1)),
    ("matmul, empty inner axis", [(2, 0), (0, 3)], lambda a, b: a @ b, lambda a, b: a @ b),
    ("matmul, empty rows", [(0, 4), (4, 3)], lambda a, b: a @ b, lambda a, b: a @ b),
    ("reshape", [(0, 3)], lambda a: a.reshape(3, 0), lambda a: a.reshape(3, 0)),
    ("transpose", [(2, 0, 3)], lambda a: a.transpose((-1, 0, 1)), lambda a: a.transpose((2, 0, 1))),
    ("getitem", [(3, 2)], lambda a: a[[]], lambda a: a[np.array([], dtype=int)]),
    ("getitem empty mask", [(3, 2)], lambda a: a[np.zeros(3, bool)], lambda a: a[np.zeros(3, bool)]),
    ("concatenate", [(0, 2), (3, 2)], lambda a, b: autograd.concatenate([a, b]), lambda a, b: np.concatenate([a, b])),
    ("softmax", [(0, 4)], lambda a: a.softmax(), lambda a: a),
]


@pytest.mark.parametrize("name, shapes, f, np_f", EMPTY, ids=[c[0] for c in EMPTY])
def test_empty_arrays(name, shapes, f, np_f, rng):
    arrays = [rng.standard_normal(s) for s in shapes]
    leaves = [tensor_leaf(a) for a in arrays]
    out = f(*leaves)
    expected = np.asarray(np_f(*arrays))
    assert out.shape == expected.shape and out.dtype == np.float64
    np.testing.assert_array_equal(out.data, expected)
    grads = autograd.grad(out, leaves, rng.standard_normal(out.shape))
    for leaf, g in zip(leaves, grads):
        assert g.shape == leaf.shape and g.dtype == np.float64
        if leaf.size and not out.size:
            np.testing.assert_array_equal(g, 0.0)  # nothing came out: nothing comes back
    if name.startswith("matmul, empty inner"):
        np.testing.assert_array_equal(out.data, np.zeros((2, 3)))


ELEMENTWISE = [
    ("neg", lambda a: -a, np.negative), ("exp", lambda a: a.exp(), np.exp), ("log", lambda a: a.log(), np.log),
    ("sqrt", lambda a: a.sqrt(), np.sqrt), ("tanh", lambda a: a.tanh(), np.tanh),
    ("sigmoid", lambda a: a.sigmoid(), _sigmoid), ("relu", lambda a: a.relu(), lambda a: np.maximum(a, 0)),
    ("abs", lambda a: abs(a), np.abs), ("clip", lambda a: a.clip(0.6, 1.2), lambda a: np.clip(a, 0.6, 1.2)),
    ("add", lambda a: a + a * 2.0, lambda a: a + a * 2.0), ("sub", lambda a: 1.0 - a, lambda a: 1.0 - a),
    ("div", lambda a: a / (a + 1.0), lambda a: a / (a + 1.0)), ("pow", lambda a: a**a, lambda a: a**a),
    ("sum", lambda a: a.sum(axis=-1, keepdims=True) * a, lambda a: a.sum(axis=-1, keepdims=True) * a),
    ("max", lambda a: a.max(axis=0) if a.ndim == 0 else a, lambda a: a),
    ("softmax", lambda a: a.softmax(axis=-1), lambda a: np.exp(a) / np.exp(a).sum(axis=-1, keepdims=True)),
]


@pytest.mark.parametrize("shape", [(), (0,), (2, 0)], ids=["0-d", "empty", "2x0"])
@pytest.mark.parametrize("name, f, np_f", ELEMENTWISE, ids=[c[0] for c in ELEMENTWISE])
def test_elementwise_ops_on_zero_dimensional_and_empty_tensors(name, f, np_f, shape, rng):
    x0 = np.abs(rng.standard_normal(shape)) + 0.5
    out = f(tensor_leaf(x0))
    expected = np.asarray(np_f(x0))
    assert out.shape == expected.shape and out.dtype == np.float64
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)
    check_vjp(f, [x0], tensor_leaf, rng)


def test_an_empty_reduction_without_identity_is_refused_naming_the_op():
    with pytest.raises(ValueError, match=r"max of a tensor of shape \(0, 3\)"):
        Tensor(np.ones((0, 3))).max(axis=0)


# --- micrograd's test_engine, without torch ------------------------------------------------------------------------

class Dual:
    """A number and its derivative along one input: forward-mode differentiation, independent of the engine."""

    def __init__(self, value: float, slope: float = 0.0) -> None:
        self.value, self.slope = value, slope

    @staticmethod
    def of(x: Dual | float) -> Dual:
        return x if isinstance(x, Dual) else Dual(float(x))

    def __add__(self, other):
        other = Dual.of(other)
        return Dual(self.value + other.value, self.slope + other.slope)

    __radd__ = __add__

    def __sub__(self, other):
        return self + -Dual.of(other)

    def __rsub__(self, other):
        return Dual.of(other) - self

    def __neg__(self):
        return Dual(-self.value, -self.slope)

    def __mul__(self, other):
        other = Dual.of(other)
        return Dual(self.value * other.value, self.slope * other.value + self.value * other.slope)

    __rmul__ = __mul__

    def __truediv__(self, other):
        other = Dual.of(other)
        return Dual(self.value / other.value,
                    (self.slope * other.value - self.value * other.slope) / other.value**2)

    def __rtruediv__(self, other):
        return Dual.of(other) / self

    def __pow__(self, exponent: float):
        return Dual(self.value**exponent, exponent * self.value ** (exponent - 1) * self.slope)

    def relu(self):
        return Dual(max(self.value, 0.0), self.slope if self.value > 0 else 0.0)


def micrograd_more_ops(a, b):
    """micrograd's test_more_ops program (its in-place += written out)."""
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + (b + a).relu()
    d = d + 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    return g + 10.0 / f


def test_micrograd_more_ops_against_dual_numbers_and_pytorch():
    a, b = Value(-4.0), Value(2.0)
    g = micrograd_more_ops(a, b)
    g.backward()
    by_a = micrograd_more_ops(Dual(-4.0, 1.0), Dual(2.0))
    by_b = micrograd_more_ops(Dual(-4.0), Dual(2.0, 1.0))
    assert g.data == pytest.approx(by_a.value, rel=1e-12)
    assert a.grad == pytest.approx(by_a.slope, rel=1e-12)
    assert b.grad == pytest.approx(by_b.slope, rel=1e-12)
    # the figures micrograd's README quotes from PyTorch for this program
    assert (g.data, a.grad, b.grad) == pytest.approx((24.7041, 138.8338, 645.5773), abs=1e-4)


def test_micrograd_sanity_check_against_dual_numbers():
    def program(x):
        z = 2 * x + 2 + x
        q = z.relu() + z * x
        h = (z * z).relu()
        return h + q + q * x

    x = Value(-4.0)
    y = program(x)
    y.backward()
    dual = program(Dual(-4.0, 1.0))
    assert (y.data, x.grad) == (dual.value, dual.slope)
    # by hand: z = -10, q = 40, dq/dx = -22, dh/dx = 2 z dz/dx = -60; dy/dx = -60 - 22 + (-22)(-4) + 40
    assert math.isclose(x.grad, 46.0)
