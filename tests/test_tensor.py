"""The tensor engine (`Tensor`): construction and dtypes, every op with broadcasting against numpy closed
forms and finite differences, reductions with ties, shapes, indexing, joins, composites and losses, the shared
core features (forks, branch terms, second derivatives, gradcheck, anomaly detection, no_grad), bad input."""

from __future__ import annotations

import operator

import numpy as np
import pytest
from conftest import np_softmax, numeric_gradient, reduce_to_shape

import autograd
from autograd import AnomalyError, Tensor, Value

RNG = np.random.default_rng(2024)


def randn(*shape, positive=False, dtype=np.float64):
    x = RNG.standard_normal(shape)
    if positive:
        x = np.abs(x) + 0.5
    return x.astype(dtype)


def weighted(out: Tensor, w: np.ndarray) -> Tensor:
    """A scalar loss with a non-trivial upstream gradient: sum(w * out)."""
    return (out * w).sum()


def assert_close(actual, expected, rtol=1e-7, atol=1e-9):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               rtol=rtol, atol=atol)


def assert_matches_numeric(f, arrays, grads, w=None, rtol=1e-5, atol=1e-6):
    """Compare engine gradients with central differences of sum(w * f(*tensors)) (forward by the engine)."""

    def loss(arrs):
        out = f(*[Tensor(a) for a in arrs]).data
        return float(np.sum(out * (1.0 if w is None else w)))

    for g, numeric in zip(grads, numeric_gradient(loss, arrays)):
        assert_close(g, numeric, rtol=rtol, atol=atol)


# --- construction -------------------------------------------------------------------------------------------

def test_construction_defaults():
    t = Tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t.dtype == np.float64 and t.shape == (2, 2)
    assert isinstance(t.data, np.ndarray)
    assert t.grad is None and t.requires_grad is False and t.label is None
    assert t.op is None and t.parents == ()
    named = Tensor(1.5, requires_grad=True, label="w")
    assert named.shape == () and named.label == "w" and named.requires_grad


@pytest.mark.parametrize("data", [[1, 2, 3], np.arange(3, dtype=np.int32), np.arange(4, dtype=np.uint8), 7])
def test_integer_input_becomes_float64(data):
    t = Tensor(data)
    assert t.dtype == np.float64
    assert_close(t.data, np.asarray(data, dtype=np.float64))


@pytest.mark.parametrize("data", [[True, False], np.array([1, 0], bool), True])
def test_boolean_input_stays_boolean_a_mask(data):
    t = Tensor(data)
    assert t.dtype == np.bool_
    np.testing.assert_array_equal(t.data, np.asarray(data))
    assert (Tensor(np.ones(np.shape(data)), requires_grad=True) * t).dtype == np.float64


def test_float32_is_kept():
    assert Tensor([1.0, 2.0], dtype=np.float32).dtype == np.float32
    assert Tensor(np.ones(3, dtype=np.float32)).dtype == np.float32
    assert Tensor([1, 2], dtype="float32").dtype == np.float32
    assert Tensor(np.ones(3, dtype=np.float32), dtype=np.float64).dtype == np.float64


FLOAT32_OPS = [
    ("t + 1", lambda t: t + 1), ("1 + t", lambda t: 1 + t), ("t - 2.5", lambda t: t - 2.5),
    ("2.5 - t", lambda t: 2.5 - t), ("t * 3", lambda t: t * 3), ("3.0 * t", lambda t: 3.0 * t),
    ("t / 3", lambda t: t / 3), ("3 / t", lambda t: 3 / t), ("t ** 2", lambda t: t**2),
    ("2 ** t", lambda t: 2**t), ("t * np.float64", lambda t: t * np.float64(2.0)), ("-t", lambda t: -t),
    ("t + t", lambda t: t + t), ("t @ t.T", lambda t: t @ t.T), ("exp", lambda t: t.exp()),
    ("log", lambda t: t.log()), ("tanh", lambda t: t.tanh()), ("sigmoid", lambda t: t.sigmoid()),
    ("relu", lambda t: t.relu()), ("sqrt", lambda t: t.sqrt()), ("abs", lambda t: abs(t)),
    ("sum", lambda t: t.sum(0)), ("mean", lambda t: t.mean()), ("max", lambda t: t.max(1)),
    ("min", lambda t: t.min()), ("reshape", lambda t: t.reshape(-1)), ("T", lambda t: t.T),
    ("getitem", lambda t: t[[0, 0, 1]]), ("softmax", lambda t: t.softmax()),
    ("log_softmax", lambda t: t.log_softmax(0)), ("clip", lambda t: t.clip(0.5, 1.5)),
    ("where number", lambda t: autograd.where(t.data > 1, t, 0.0)),
    ("where number first", lambda t: autograd.where(t.data > 1, 0, t)),
    ("concatenate", lambda t: autograd.concatenate([t, t], axis=1)),
    ("stack", lambda t: autograd.stack([t, t])),
    ("split", lambda t: autograd.split(t, 2, axis=0)[1]),
    ("mse", lambda t: autograd.mse(t, np.zeros((2, 3), np.float32))),
    ("cross_entropy", lambda t: autograd.cross_entropy(t, [0, 2])),
]


@pytest.mark.parametrize("name, f", FLOAT32_OPS, ids=[r[0] for r in FLOAT32_OPS])
def test_float32_results_and_gradients_stay_float32(name, f):
    t = Tensor(np.array([[0.6, 1.2, 2.0], [1.4, 0.8, 1.7]], dtype=np.float32), requires_grad=True)
    out = f(t)
    assert out.dtype == np.float32, name
    out.sum().backward()
    assert t.grad.dtype == np.float32


# --- binary ops with broadcasting ---------------------------------------------------------------------------

BINARY = {
    "add": (operator.add, lambda a, b: np.ones_like(a * b), lambda a, b: np.ones_like(a * b)),
    "sub": (operator.sub, lambda a, b: np.ones_like(a * b), lambda a, b: -np.ones_like(a * b)),
    "mul": (operator.mul, lambda a, b: b + 0 * a, lambda a, b: a + 0 * b),
    "div": (operator.truediv, lambda a, b: 1 / b + 0 * a, lambda a, b: -a / b**2),
    "pow": (operator.pow, lambda a, b: b * a ** (b - 1), lambda a, b: a**b * np.log(a)),
}
SHAPE_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)), ((), (2, 3)),
               ((1,), (2, 3)), ((2, 1, 4), (3, 1))]
SHAPE_PAIRS += [(b, a) for a, b in SHAPE_PAIRS if a != b]


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("shape_a, shape_b", SHAPE_PAIRS)
def test_binary_ops_broadcast_between_tensors(op, shape_a, shape_b):
    f, da, db = BINARY[op]
    a0, b0 = randn(*shape_a, positive=True), randn(*shape_b, positive=op in ("pow", "div"))
    a, b = Tensor(a0, requires_grad=True), Tensor(b0, requires_grad=True)
    out = f(a, b)
    expected = f(a0, b0)
    assert out.shape == np.shape(expected)
    assert_close(out.data, expected)
    w = randn(*np.shape(expected))
    weighted(out, w).backward()
    assert a.grad.shape == shape_a and b.grad.shape == shape_b
    assert_close(a.grad, reduce_to_shape(w * da(a0, b0), shape_a))
    assert_close(b.grad, reduce_to_shape(w * db(a0, b0), shape_b))
    assert_matches_numeric(f, [a0, b0], [a.grad, b.grad], w)


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("kind", ["ndarray", "number", "numpy scalar"])
def test_binary_ops_with_arrays_and_numbers_in_both_orders(op, kind):
    f, da, db = BINARY[op]
    x0 = randn(3, 4, positive=True)
    other = {"ndarray": randn(4, positive=True), "number": 1.7, "numpy scalar": np.float64(0.6)}[kind]
    for tensor_first in (True, False):
        x = Tensor(x0, requires_grad=True)
        out = f(x, other) if tensor_first else f(other, x)
        assert isinstance(out, Tensor)
        expected = f(x0, other) if tensor_first else f(other, x0)
        assert_close(out.data, expected)
        w = randn(3, 4)
        weighted(out, w).backward()
        local = da(x0, other) if tensor_first else db(other, x0)
        assert_close(x.grad, w * local)
        fn = (lambda t: f(t, other)) if tensor_first else (lambda t: f(other, t))
        assert_matches_numeric(fn, [x0], [x.grad], w)


def test_unary_minus():
    x0 = randn(2, 3)
    x = Tensor(x0, requires_grad=True)
    w = randn(2, 3)
    weighted(-x, w).backward()
    assert_close(x.grad, -w)


# --- matmul -------------------------------------------------------------------------------------------------

MATMUL_SHAPES = [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)), ((4, 5), (2, 5, 3)),
                 ((1, 3, 4), (2, 4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4,)),
                 ((4,), (2, 4, 5)), ((2, 1, 3, 4), (3, 4, 2))]


def _matmul_closed_form(a, b, w):
    """dL/da and dL/db for L = sum(w * (a @ b)), by promoting vectors to matrices and summing batch copies."""
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    w2 = np.asarray(w)
    if b.ndim == 1:
        w2 = w2[..., None]
    if a.ndim == 1:
        w2 = w2[..., None, :]
    ga = np.einsum("...ij,...kj->...ik", w2, np.broadcast_to(b2, w2.shape[:-2] + b2.shape[-2:]))
    gb = np.einsum("...ki,...kj->...ij", np.broadcast_to(a2, w2.shape[:-2] + a2.shape[-2:]), w2)
    ga = reduce_to_shape(ga, a2.shape).reshape(a.shape)
    gb = reduce_to_shape(gb, b2.shape).reshape(b.shape)
    return ga, gb


@pytest.mark.parametrize("shape_a, shape_b", MATMUL_SHAPES)
def test_matmul(shape_a, shape_b):
    a0, b0 = randn(*shape_a), randn(*shape_b)
    a, b = Tensor(a0, requires_grad=True), Tensor(b0, requires_grad=True)
    out = a @ b
    expected = np.matmul(a0, b0)
    assert out.shape == expected.shape
    assert_close(out.data, expected)
    w = randn(*expected.shape)
    weighted(out, w).backward()
    ga, gb = _matmul_closed_form(a0, b0, w)
    assert_close(a.grad, ga)
    assert_close(b.grad, gb)
    assert_matches_numeric(operator.matmul, [a0, b0], [a.grad, b.grad], w)


def test_matmul_explicit_closed_forms_and_reflected():
    a0, b0, v0 = randn(3, 4), randn(4, 5), randn(4)
    w = randn(3, 5)
    a, b = Tensor(a0, requires_grad=True), Tensor(b0, requires_grad=True)
    weighted(a @ b, w).backward()
    assert_close(a.grad, w @ b0.T)
    assert_close(b.grad, a0.T @ w)
    # vector-vector: a dot product
    u, v = Tensor(v0, requires_grad=True), Tensor(v0[::-1].copy(), requires_grad=True)
    (u @ v).backward()
    assert_close(u.grad, v0[::-1])
    assert_close(v.grad, v0)
    # ndarray @ Tensor goes through __rmatmul__
    b = Tensor(b0, requires_grad=True)
    out = a0 @ b
    assert isinstance(out, Tensor)
    weighted(out, w).backward()
    assert_close(b.grad, a0.T @ w)


# --- reductions ---------------------------------------------------------------------------------------------

AXES = [None, 0, 1, -1, (0, 2), (2, 0, 1)]


def _expand(g, shape, axis, keepdims):
    axes = tuple(range(len(shape)) if axis is None else (a % len(shape) for a in np.atleast_1d(axis)))
    if not keepdims:
        g = np.expand_dims(g, tuple(sorted(axes)))
    return np.broadcast_to(g, shape), axes


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
def test_reductions(name, axis, keepdims):
    x0 = randn(2, 3, 4)
    x = Tensor(x0, requires_grad=True)
    out = getattr(x, name)(axis=axis, keepdims=keepdims)
    np_axis = axis if axis is None or isinstance(axis, int) else tuple(axis)
    expected = getattr(np, name)(x0, axis=np_axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    assert_close(out.data, expected)
    w = randn(*np.shape(expected))
    weighted(out, w).backward()
    wb, axes = _expand(w, x0.shape, axis, keepdims)
    if name == "sum":
        closed = wb
    elif name == "mean":
        closed = wb / np.prod([x0.shape[a] for a in axes])
    else:
        extreme = getattr(np, name)(x0, axis=tuple(axes), keepdims=True)
        closed = wb * (x0 == extreme)
    assert_close(x.grad, closed)
    assert_matches_numeric(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), [x0], [x.grad], w)


def test_max_and_min_share_gradient_equally_between_ties():
    x0 = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, -1.0, 5.0]])
    x = Tensor(x0, requires_grad=True)
    x.max(axis=1).sum().backward()
    assert_close(x.grad, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3], [0, 0, 1]])
    x = Tensor(x0, requires_grad=True)
    x.min(axis=0, keepdims=True).sum().backward()
    assert_close(x.grad, [[0, 0, 0], [0, 0, 1], [1, 1, 0]])
    x = Tensor(x0, requires_grad=True)
    x.min(axis=1).sum().backward()
    assert_close(x.grad, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0, 1, 0]])
    x = Tensor([4.0, 1.0, 4.0, 4.0], requires_grad=True)
    (x.max() * 6.0).backward()
    assert_close(x.grad, [2, 0, 2, 2])
    total = Tensor(x0, requires_grad=True)
    total.max().backward()
    assert_close(total.grad, (x0 == 5.0).astype(float))


def test_reduction_axis_out_of_range():
    x = Tensor(np.ones((2, 3)))
    for name in ("sum", "mean", "max", "min"):
        with pytest.raises(ValueError, match=name) as info:
            getattr(x, name)(axis=2)
        assert "(2, 3)" in str(info.value)


# --- shapes -------------------------------------------------------------------------------------------------

SHAPE_OPS = [
    ("reshape tuple", lambda t: t.reshape((4, 6)), lambda a: a.reshape(4, 6)),
    ("reshape args", lambda t: t.reshape(6, -1), lambda a: a.reshape(6, -1)),
    ("reshape flat", lambda t: t.reshape(-1), lambda a: a.reshape(-1)),
    ("transpose", lambda t: t.transpose(), lambda a: a.transpose()),
    ("transpose axes", lambda t: t.transpose(1, 0, 2), lambda a: a.transpose(1, 0, 2)),
    ("transpose cyclic", lambda t: t.transpose((2, 0, 1)), lambda a: a.transpose(2, 0, 1)),
    (".T", lambda t: t.T, lambda a: a.T),
    ("swapaxes", lambda t: t.swapaxes(0, 2), lambda a: a.swapaxes(0, 2)),
    ("broadcast_to", lambda t: t[:, :1].broadcast_to((5, 2, 3, 4)),
     lambda a: np.broadcast_to(a[:, :1], (5, 2, 3, 4))),
]


@pytest.mark.parametrize("name, f, np_f", SHAPE_OPS, ids=[r[0] for r in SHAPE_OPS])
def test_shape_ops(name, f, np_f):
    x0 = randn(2, 3, 4)
    x = Tensor(x0, requires_grad=True)
    out = f(x)
    expected = np_f(x0)
    assert out.shape == expected.shape
    assert_close(out.data, expected)
    w = randn(*expected.shape)
    weighted(out, w).backward()
    # closed form: each input element gets the weights of the output positions it was moved to
    positions = np_f(np.arange(x0.size, dtype=float).reshape(x0.shape))
    closed = np.zeros(x0.size)
    for p, wi in zip(positions.reshape(-1), w.reshape(-1)):
        closed[int(p)] += wi
    assert_close(x.grad, closed.reshape(x0.shape))
    assert_matches_numeric(f, [x0], [x.grad], w)


# --- indexing -----------------------------------------------------------------------------------------------

INDICES = [
    ("int", 1), ("negative int", -1), ("slice", slice(1, 3)), ("step", (slice(None), slice(None, None, 2))),
    ("reverse", slice(None, None, -1)), ("ellipsis", (Ellipsis, 1)), ("newaxis", (None, slice(1, None))),
    ("two ints", (2, 3)), ("int array repeats", [0, 0, 2]), ("pairs repeated", ([0, 2, 0], [1, 1, 1])),
    ("2d index array", np.array([[0, 1], [1, 0], [3, 3]])), ("mixed", (1, [0, 0, 4])),
    ("slice and array", (slice(1, None), [4, 4, 0])), ("bool mask", "mask"), ("bool row mask", "rowmask"),
    ("tensor index", "tensor"),
]


def _resolve(index, x0):
    if isinstance(index, str):
        return {"mask": x0 > 0, "rowmask": np.array([True, False, True, True]),
                "tensor": Tensor(np.array([3, 1, 3]))}[index]
    return index


@pytest.mark.parametrize("name, index", INDICES, ids=[r[0] for r in INDICES])
def test_indexing(name, index):
    x0 = randn(4, 5)
    index = _resolve(index, x0)
    np_index = index.data.astype(int) if isinstance(index, Tensor) else index
    x = Tensor(x0, requires_grad=True)
    out = x[index]
    expected = x0[np_index]
    assert out.shape == np.shape(expected)
    assert_close(out.data, expected)
    w = randn(*np.shape(expected))
    weighted(out, w).backward()
    # closed form: count each selection of each element (repeated indices accumulate), by explicit loop
    picked = np.arange(x0.size).reshape(x0.shape)[np_index]
    closed = np.zeros(x0.size)
    for p, wi in zip(np.reshape(picked, -1), np.reshape(w, -1)):
        closed[p] += wi
    assert_close(x.grad, closed.reshape(x0.shape))
    assert_matches_numeric(lambda t: t[index], [x0], [x.grad], w)


def test_repeated_index_gradient_counts():
    x = Tensor(np.arange(5.0), requires_grad=True)
    x[[0, 0, 0, 3, 3]].sum().backward()
    assert_close(x.grad, [3, 0, 0, 2, 0])
    x = Tensor(np.zeros((3, 2)), requires_grad=True)
    (x[[2, 2, 1]] * np.array([[1.0, 2.0], [10.0, 20.0], [100.0, 200.0]])).sum().backward()
    assert_close(x.grad, [[0, 0], [100, 200], [11, 22]])


def test_float_index_refused():
    with pytest.raises(IndexError):
        Tensor(np.ones(3))[np.array([0.0, 1.0])]


# --- joins --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate(axis):
    shapes = {0: [(2, 3), (1, 3), (4, 3)], 1: [(2, 1), (2, 4), (2, 2)], -1: [(2, 2), (2, 3), (2, 1)]}[axis]
    arrays = [randn(*s) for s in shapes]
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = autograd.concatenate(tensors, axis=axis)
    expected = np.concatenate(arrays, axis=axis)
    assert_close(out.data, expected)
    w = randn(*expected.shape)
    weighted(out, w).backward()
    bounds = np.cumsum([0] + [a.shape[axis] for a in arrays])
    for t, start, stop in zip(tensors, bounds, bounds[1:]):
        assert_close(t.grad, np.take(w, np.arange(start, stop), axis=axis))
    grads = [t.grad for t in tensors]
    assert_matches_numeric(lambda *ts: autograd.concatenate(ts, axis=axis), arrays, grads, w)


def test_concatenate_mixes_constants():
    a = Tensor(randn(2, 2), requires_grad=True)
    out = autograd.concatenate([a, np.zeros((1, 2)), [[5.0, 6.0]]])
    assert out.shape == (4, 2)
    out.sum().backward()
    assert_close(a.grad, np.ones((2, 2)))


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_stack(axis):
    arrays = [randn(2, 3) for _ in range(3)]
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = autograd.stack(tensors, axis=axis)
    expected = np.stack(arrays, axis=axis)
    assert out.shape == expected.shape
    assert_close(out.data, expected)
    w = randn(*expected.shape)
    weighted(out, w).backward()
    for i, t in enumerate(tensors):
        assert_close(t.grad, np.take(w, i, axis=axis))
    assert_matches_numeric(lambda *ts: autograd.stack(ts, axis=axis), arrays, [t.grad for t in tensors], w)


@pytest.mark.parametrize("sections, axis", [(3, 0), (2, 1), ([1, 4], 1), ([2], 0), (2, -1)])
def test_split(sections, axis):
    x0 = randn(6, 6)
    x = Tensor(x0, requires_grad=True)
    pieces = autograd.split(x, sections, axis=axis)
    expected = np.split(x0, sections, axis=axis)
    assert len(pieces) == len(expected)
    weights = [randn(*e.shape) for e in expected]
    for p, e in zip(pieces, expected):
        assert_close(p.data, e)
    loss = weighted(pieces[0], weights[0])
    for p, w in zip(pieces[1:], weights[1:]):
        loss = loss + weighted(p, w)
    loss.backward()
    assert_close(x.grad, np.concatenate(weights, axis=axis))


def test_join_errors():
    with pytest.raises(ValueError, match="stack"):
        autograd.stack([Tensor(np.ones(2)), Tensor(np.ones(3))])
    with pytest.raises(ValueError, match="split"):
        autograd.split(Tensor(np.ones(5)), 2)
    with pytest.raises(ValueError, match="concatenate") as info:
        autograd.concatenate([Tensor(np.ones((2, 3))), Tensor(np.ones((2, 4)))], axis=0)
    assert "(2, 3)" in str(info.value) and "(2, 4)" in str(info.value)
    with pytest.raises(ValueError):
        autograd.concatenate([])
    with pytest.raises(ValueError):
        autograd.stack([])


# --- elementwise functions ----------------------------------------------------------------------------------

def _sig(x):
    return 1 / (1 + np.exp(-x))


UNARY = [
    ("exp", lambda t: t.exp(), np.exp, np.exp, False),
    ("log", lambda t: t.log(), np.log, lambda x: 1 / x, True),
    ("tanh", lambda t: t.tanh(), np.tanh, lambda x: 1 - np.tanh(x) ** 2, False),
    ("sigmoid", lambda t: t.sigmoid(), _sig, lambda x: _sig(x) * (1 - _sig(x)), False),
    ("relu", lambda t: t.relu(), lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(float), False),
    ("sqrt", lambda t: t.sqrt(), np.sqrt, lambda x: 0.5 / np.sqrt(x), True),
    ("abs", lambda t: abs(t), np.abs, np.sign, False),
    ("abs method", lambda t: t.abs(), np.abs, np.sign, False),
    ("square", lambda t: t**2, np.square, lambda x: 2 * x, False),
]


@pytest.mark.parametrize("name, f, np_f, derivative, positive", UNARY, ids=[r[0] for r in UNARY])
def test_unary(name, f, np_f, derivative, positive):
    x0 = randn(3, 4, positive=positive)
    x = Tensor(x0, requires_grad=True)
    out = f(x)
    assert_close(out.data, np_f(x0), rtol=1e-12)
    w = randn(3, 4)
    weighted(out, w).backward()
    assert_close(x.grad, w * derivative(x0), rtol=1e-10)
    assert_matches_numeric(f, [x0], [x.grad], w)


def test_sigmoid_is_stable_for_large_inputs():
    x = Tensor([-800.0, 0.0, 800.0], requires_grad=True)
    out = x.sigmoid()
    assert_close(out.data, [0.0, 0.5, 1.0])
    out.sum().backward()
    assert_close(x.grad, [0.0, 0.25, 0.0])


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_and_log_softmax(axis):
    x0 = randn(3, 4)
    w = randn(3, 4)
    s = np_softmax(x0, axis)
    x = Tensor(x0, requires_grad=True)
    out = x.softmax(axis)
    assert_close(out.data, s)
    assert_close(out.data.sum(axis=axis), 1.0)
    weighted(out, w).backward()
    assert_close(x.grad, s * (w - (w * s).sum(axis=axis, keepdims=True)))
    x = Tensor(x0, requires_grad=True)
    out = autograd.log_softmax(x, axis)
    assert_close(out.data, np.log(s))
    weighted(out, w).backward()
    assert_close(x.grad, w - s * w.sum(axis=axis, keepdims=True))
    closed = s * (w - (w * s).sum(axis, keepdims=True))
    assert_matches_numeric(lambda t: autograd.softmax(t, axis), [x0], [closed], w)


def test_softmax_is_stable():
    x = Tensor([[1000.0, 1000.0, -1000.0]], requires_grad=True)
    assert_close(x.softmax().data, [[0.5, 0.5, 0.0]])
    assert_close(x.log_softmax().data, [[np.log(0.5), np.log(0.5), -2000 + np.log(0.5)]])
    x.log_softmax()[0, 0].backward()
    assert np.all(np.isfinite(x.grad))
    assert_close(x.grad, [[0.5, -0.5, 0.0]])


@pytest.mark.parametrize("shape_c, shape_a, shape_b", [((3, 4), (3, 4), (3, 4)), ((3, 4), (3, 4), (4,)),
                                                       ((3, 4), (), (3, 1)), ((4,), (3, 4), (1, 4)),
                                                       ((3, 1), (4,), (3, 4))])
def test_where(shape_c, shape_a, shape_b):
    c = RNG.random(shape_c) > 0.5
    a0, b0 = randn(*shape_a), randn(*shape_b)
    a, b = Tensor(a0, requires_grad=True), Tensor(b0, requires_grad=True)
    out = autograd.where(c, a, b)
    expected = np.where(c, a0, b0)
    assert_close(out.data, expected)
    w = randn(*expected.shape)
    weighted(out, w).backward()
    cb = np.broadcast_to(c, expected.shape)
    assert_close(a.grad, reduce_to_shape(w * cb, shape_a))
    assert_close(b.grad, reduce_to_shape(w * ~cb, shape_b))
    assert_matches_numeric(lambda a, b: autograd.where(c, a, b), [a0, b0], [a.grad, b.grad], w)


def test_where_with_number_and_tensor_condition():
    x = Tensor([-1.0, 2.0, -3.0], requires_grad=True)
    out = autograd.where(x > 0, x, 0.0)
    assert_close(out.data, [0, 2, 0])
    out.sum().backward()
    assert_close(x.grad, [0, 1, 0])
    cond = Tensor([1.0, 0.0, 1.0])
    y = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    autograd.where(cond, 10.0, y).sum().backward()
    assert_close(y.grad, [0, 1, 0])


@pytest.mark.parametrize("low, high", [(-0.5, 0.5), (None, 0.3), (-0.2, None)])
def test_clip(low, high):
    x0 = randn(4, 5)
    x = Tensor(x0, requires_grad=True)
    out = x.clip(low, high)
    lo = -np.inf if low is None else low
    hi = np.inf if high is None else high
    assert_close(out.data, np.clip(x0, lo, hi))
    w = randn(4, 5)
    weighted(out, w).backward()
    assert_close(x.grad, w * ((x0 >= lo) & (x0 <= hi)))
    assert_matches_numeric(lambda t: t.clip(low, high), [x0], [x.grad], w)
    with pytest.raises(ValueError, match="clip"):
        x.clip()


# --- losses -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("target_kind", ["ndarray", "list", "tensor"])
def test_mse(target_kind):
    p0, t0 = randn(4, 3), randn(4, 3)
    p = Tensor(p0, requires_grad=True)
    target = {"ndarray": t0, "list": t0.tolist(), "tensor": Tensor(t0, requires_grad=True)}[target_kind]
    loss = autograd.mse(p, target)
    assert loss.shape == ()
    assert_close(loss.data, np.mean((p0 - t0) ** 2))
    loss.backward()
    assert_close(p.grad, 2 * (p0 - t0) / p0.size)
    if target_kind == "tensor":
        assert_close(target.grad, -2 * (p0 - t0) / p0.size)
    assert_matches_numeric(lambda p: autograd.mse(p, t0), [p0], [p.grad])


def test_mse_shape_mismatch():
    with pytest.raises(ValueError, match=r"mse.*\(4, 3\).*\(3, 4\)"):
        autograd.mse(Tensor(np.ones((4, 3))), np.ones((3, 4)))


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4), (1, 7)])
def test_cross_entropy(shape):
    z0 = randn(*shape) * 3
    targets = RNG.integers(0, shape[-1], size=shape[:-1])
    z = Tensor(z0, requires_grad=True)
    loss = autograd.cross_entropy(z, targets)
    p = np_softmax(z0, -1)
    onehot = np.eye(shape[-1])[targets]
    n = targets.size
    assert_close(loss.data, -np.sum(onehot * np.log(p)) / n)
    loss.backward()
    assert_close(z.grad, (p - onehot) / n)
    assert_matches_numeric(lambda z: autograd.cross_entropy(z, targets), [z0], [z.grad])


def test_cross_entropy_bad_targets():
    z = Tensor(np.zeros((3, 4)))
    with pytest.raises(TypeError, match="integer"):
        autograd.cross_entropy(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        autograd.cross_entropy(z, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        autograd.cross_entropy(z, np.array([0, 1]))


def test_cross_entropy_of_uniform_logits_is_log_classes():
    loss = autograd.cross_entropy(Tensor(np.zeros((6, 10))), np.arange(6))
    assert_close(loss.data, np.log(10.0))


# --- backward -----------------------------------------------------------------------------------------------

def test_backward_requires_grad_for_non_scalars():
    x = Tensor(randn(2, 3), requires_grad=True)
    y = x * 3.0
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        y.backward()
    assert x.grad is None
    g = randn(2, 3)
    y.backward(g)
    assert_close(x.grad, 3 * g)
    with pytest.raises(ValueError, match="shape"):
        y.backward(np.ones((3, 2)))
    # a size-1 tensor of any rank needs no grad
    z = Tensor(randn(1, 1), requires_grad=True)
    (z * 2).backward()
    assert_close(z.grad, [[2.0]])


def test_backward_accumulates_and_zero_grad():
    x0 = randn(3)
    x = Tensor(x0, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    assert_close(x.grad, 2 * x0)
    y.backward()
    assert_close(x.grad, 4 * x0)
    x.exp().sum().backward()
    assert_close(x.grad, 4 * x0 + np.exp(x0))
    y.zero_grad()
    assert x.grad is None


def test_only_leaves_that_require_grad_get_grad():
    x = Tensor(randn(3), requires_grad=True)
    c = Tensor(randn(3))
    h = x * c
    h.tanh().sum().backward()
    assert x.grad is not None and c.grad is None and h.grad is None
    assert not c.requires_grad and h.requires_grad


def test_no_grad():
    x = Tensor(randn(2, 2), requires_grad=True)
    with autograd.no_grad():
        y = (x @ x).tanh().sum()
        z = autograd.stack([x, x])
    for r in (y, z):
        assert r.op is None and r.parents == () and not r.requires_grad
    assert_close(y.data, np.tanh(x.data @ x.data).sum())
    w = x * 2
    assert w.parents[0] is x and len(w.parents) == 2 and w.op.name == "mul"  # recording resumes


def test_constant_only_graphs_are_not_recorded():
    a, b = Tensor(randn(2)), Tensor(randn(2))
    out = a * b
    assert out.op is None and out.parents == () and not out.requires_grad


# --- forks and branch terms ---------------------------------------------------------------------------------

def test_fork_with_broadcasting_branch_terms():
    x0, b0, c0 = randn(3, 1), randn(1, 4), randn(3, 1)
    x = Tensor(x0, requires_grad=True, label="x")
    square = x * x
    shifted = x + Tensor(b0)
    root = (square * c0).sum() + shifted.sum()
    result = autograd.backpropagate(root, record_branches=True)
    terms = result.terms(x)
    assert len(terms) == 3
    by_edge = {(id(t.consumer), t.position): t.term for t in terms}
    assert_close(by_edge[(id(square), 0)], c0 * x0)
    assert_close(by_edge[(id(square), 1)], c0 * x0)
    assert_close(by_edge[(id(shifted), 0)], np.full((3, 1), 4.0))  # summed over the 4 broadcast copies
    assert all(np.shape(t.term) == (3, 1) for t in terms)
    assert_close(sum(t.term for t in terms), result.adjoints[x])
    root.backward()
    assert_close(x.grad, 2 * c0 * x0 + 4)
    edges = autograd.consumers(root)[x]
    expected = [(id(square), 0), (id(square), 1), (id(shifted), 0)]
    assert sorted((id(c), p) for c, p in edges) == sorted(expected)


def test_functional_grad_on_tensors():
    x0 = randn(3)
    x, unused = Tensor(x0, requires_grad=True), Tensor(randn(2, 2), requires_grad=True)
    y = (x.exp() * x).sum()
    gx, gu = autograd.grad(y, [x, unused])
    assert_close(gx, np.exp(x0) * (1 + x0))
    assert_close(gu, np.zeros((2, 2)))
    assert x.grad is None and unused.grad is None


# --- second derivatives -------------------------------------------------------------------------------------

def test_second_derivative_closed_forms():
    x0 = randn(4)
    x = Tensor(x0, requires_grad=True)
    g = autograd.grad(x.tanh().sum(), x, create_graph=True)
    assert isinstance(g, Tensor) and g.op is not None
    assert_close(g.data, 1 - np.tanh(x0) ** 2)
    # the Hessian of sum(tanh) is diagonal: summing g picks the diagonal
    h = autograd.grad(g.sum(), x)
    assert_close(h, -2 * np.tanh(x0) * (1 - np.tanh(x0) ** 2))
    x = Tensor(x0, requires_grad=True)
    g = autograd.grad((x**3).sum(), x, create_graph=True)
    assert_close(autograd.grad(g.sum(), x), 6 * x0)


def test_hessian_vector_product_through_matmul():
    a0, x0, v0 = randn(5, 3), randn(3), randn(3)
    x = Tensor(x0, requires_grad=True)
    f = (Tensor(a0) @ x).tanh().sum()
    g = autograd.grad(f, x, create_graph=True)
    hv = autograd.grad((g * v0).sum(), x)
    t = np.tanh(a0 @ x0)
    hessian = a0.T @ np.diag(-2 * t * (1 - t**2)) @ a0
    assert_close(hv, hessian @ v0)


SECOND_ORDER_OPS = [
    ("mul fork", lambda x: x * x), ("div", lambda x: 1.0 / (x * x + 1.0)), ("pow", lambda x: x**3),
    ("rpow", lambda x: 1.5**x), ("pow tensor", lambda x: (x * x + 1.0) ** x), ("exp", lambda x: x.exp()),
    ("log", lambda x: (x * x + 1.0).log()), ("sqrt", lambda x: (x * x + 1.0).sqrt()),
    ("tanh", lambda x: x.tanh()), ("sigmoid", lambda x: x.sigmoid()),
    ("relu", lambda x: x.relu() * x), ("abs", lambda x: abs(x) * x),
    ("sum axis", lambda x: x.sum(axis=0).tanh()),
    ("sum keepdims", lambda x: x.sum(axis=1, keepdims=True) * x),
    ("mean", lambda x: x.mean(axis=1) ** 2), ("max", lambda x: x.max(axis=1) * x.sum(axis=1)),
    ("min", lambda x: x.min(axis=0, keepdims=True) * x), ("reshape", lambda x: x.reshape(-1).tanh()),
    ("transpose", lambda x: (x.T @ x).tanh()), ("matmul vector", lambda x: (x @ x[0]).tanh()),
    ("vector matmul", lambda x: (x[0] @ x.T).exp()), ("getitem basic", lambda x: x[1:, ::2].tanh()),
    ("getitem repeats", lambda x: x[[0, 0, 2], [1, 1, 0]].exp()),
    ("broadcast add", lambda x: (x + x[0]).tanh()),
    ("concatenate", lambda x: autograd.concatenate([x, x * x], axis=1).tanh()),
    ("stack", lambda x: autograd.stack([x, x.exp()]).tanh()),
    ("split", lambda x: autograd.split(x, 3, axis=0)[1].exp()),
    ("where", lambda x: autograd.where(x.data > 0, x * x, x.exp())),
    ("clip", lambda x: x.clip(-0.5, 0.5) * x), ("softmax", lambda x: x.softmax(axis=1)),
    ("log_softmax", lambda x: autograd.log_softmax(x, axis=0)),
    ("mse", lambda x: autograd.mse(x.tanh(), np.ones((3, 4)))),
    ("cross_entropy", lambda x: autograd.cross_entropy(x, [0, 3, 1])),
]


@pytest.mark.parametrize("name, f", SECOND_ORDER_OPS, ids=[r[0] for r in SECOND_ORDER_OPS])
def test_hessian_vector_products_match_finite_differences(name, f):
    """grad(grad(L) . v) against central differences of the first-order gradient along v, for every op."""
    x0 = randn(3, 4)
    v = randn(3, 4)
    out_shape = f(Tensor(x0)).shape
    w = randn(*out_shape)

    def first_grad(x_data):
        t = Tensor(x_data, requires_grad=True)
        return autograd.grad(weighted(f(t), w), t)

    x = Tensor(x0, requires_grad=True)
    g = autograd.grad(weighted(f(x), w), x, create_graph=True)
    assert isinstance(g, Tensor)
    assert_close(g.data, first_grad(x0))
    hv = autograd.grad((g * v).sum(), x)
    eps = 1e-6
    numeric = (first_grad(x0 + eps * v) - first_grad(x0 - eps * v)) / (2 * eps)
    assert_close(hv, numeric, rtol=1e-5, atol=1e-6)


# --- gradcheck ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("shape_a, shape_b", SHAPE_PAIRS)
def test_gradcheck_binary_ops_broadcasting_in_every_position(op, shape_a, shape_b):
    f = BINARY[op][0]
    a = Tensor(randn(*shape_a, positive=True), requires_grad=True, label="a")
    b = Tensor(randn(*shape_b, positive=True), requires_grad=True, label="b")
    w = randn(*np.broadcast_shapes(shape_a, shape_b))
    result = autograd.gradcheck(lambda a, b: weighted(f(a, b), w), [a, b])
    assert result.passed, str(result)
    assert [c.label for c in result.inputs] == ["a", "b"]
    assert result.inputs[0].analytic.shape == shape_a and result.inputs[1].analytic.shape == shape_b


GRADCHECK_OPS = [
    ("matmul batch broadcast", [(2, 3, 4), (4, 2)], lambda a, b: a @ b),
    ("matmul vector", [(4,), (3, 4, 2)], lambda a, b: a @ b),
    ("matmul mv", [(3, 4), (4,)], lambda a, b: a @ b),
    ("where broadcast", [(3, 1), (4,)],
     lambda a, b: autograd.where(np.arange(12).reshape(3, 4) % 3 == 0, a, b)),
    ("concatenate", [(2, 3), (2, 1)], lambda a, b: autograd.concatenate([a, b, a], axis=1)),
    ("stack", [(2, 3), (2, 3)], lambda a, b: autograd.stack([a, b, a * b], axis=1)),
    ("gather repeats", [(4, 3)], lambda a: a[[0, 3, 3, 0, 0]]),
    ("gather pairs", [(4, 3)], lambda a: a[[1, 1, 2], [0, 0, 2]] * a[1:3, 0].sum()),
    ("sum", [(2, 3, 4)], lambda a: a.sum(axis=(0, 2)) ** 2),
    ("mean", [(2, 3, 4)], lambda a: a.mean(axis=1, keepdims=True) * a),
    ("max", [(3, 4)], lambda a: a.max(axis=0) * a.min(axis=1).sum()),
    ("reshape transpose", [(2, 3, 4)], lambda a: a.reshape(6, 4).T @ a.reshape(6, 4)),
    ("softmax", [(3, 4)], lambda a: a.softmax(0)),
    ("log_softmax", [(3, 4)], lambda a: a.log_softmax()),
    ("cross_entropy", [(5, 3)], lambda a: autograd.cross_entropy(a, [0, 2, 1, 1, 0])),
    ("mse", [(3, 2), (3, 2)], lambda a, b: autograd.mse(a, b)),
    ("unary chain", [(3, 4)],
     lambda a: (a.sigmoid() + a.tanh().exp() + abs(a) + a.relu()) * (a * a + 1).sqrt().log()),
    ("clip", [(3, 4)], lambda a: a.clip(-0.4, 0.6) * a),
    ("split", [(4, 4)], lambda a: autograd.split(a, [1, 3], axis=1)[1] * autograd.split(a, 2)[0].sum()),
]


@pytest.mark.parametrize("name, shapes, f", GRADCHECK_OPS, ids=[r[0] for r in GRADCHECK_OPS])
def test_gradcheck_ops(name, shapes, f):
    inputs = [Tensor(randn(*s), requires_grad=True) for s in shapes]
    w = randn(*f(*inputs).shape)
    result = autograd.gradcheck(lambda *xs: weighted(f(*xs), w), inputs)
    assert result.passed, str(result)


@pytest.mark.parametrize("name, shapes, f", GRADCHECK_OPS[:8] + GRADCHECK_OPS[12:], ids=[
    r[0] for r in GRADCHECK_OPS[:8] + GRADCHECK_OPS[12:]])
def test_gradcheck_float32(name, shapes, f):
    inputs = [Tensor(randn(*s), requires_grad=True, dtype=np.float32) for s in shapes]
    w = randn(*f(*inputs).shape, dtype=np.float32)
    assert weighted(f(*inputs), w).dtype == np.float32
    result = autograd.gradcheck(lambda *xs: weighted(f(*xs), w), inputs, eps=1e-2, atol=1e-2, rtol=1e-2)
    assert result.passed, str(result)
    assert all(c.analytic.dtype == np.float64 for c in result.inputs)  # compared in float64
    for x, g in zip(inputs, autograd.grad(weighted(f(*inputs), w), inputs)):
        assert g.dtype == np.float32 and g.shape == x.shape


def test_gradcheck_float32_detects_a_wrong_rule():
    import dataclasses

    from autograd import tensor as tensor_module
    from autograd.primitives import SIGMOID

    wrong = dataclasses.replace(SIGMOID, rules=(lambda g, out, x: g * out,))  # forgot the (1 - out) factor
    x = Tensor(randn(3, 4, dtype=np.float32), requires_grad=True, dtype=np.float32)
    result = autograd.gradcheck(lambda x: tensor_module._apply(wrong, x).sum(), [x], eps=1e-2, atol=1e-2,
                                rtol=1e-2)
    assert not result.passed
    assert result.inputs[0].max_abs_error > 0.05


def test_gradcheck_needs_a_scalar():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="scalar"):
        autograd.gradcheck(lambda x: x * 2, [x])


def test_gradcheck_perturbs_a_transposed_view_in_place_and_restores_it():
    base = np.arange(12.0).reshape(3, 4) / 10
    x = Tensor(np.zeros((4, 3)), requires_grad=True)
    x.data = base.T  # not contiguous: its data is a view of base
    result = autograd.gradcheck(lambda x: (x * x).sum(), [x])
    assert result.passed
    np.testing.assert_allclose(result.inputs[0].numeric, 2 * base.T, atol=1e-8)
    np.testing.assert_array_equal(x.data, np.arange(12.0).reshape(3, 4).T / 10)


# --- anomaly detection --------------------------------------------------------------------------------------

def test_detect_anomaly_on_tensors():
    x = Tensor(np.array([1.0, 0.0, 2.0]), requires_grad=True, label="x")
    with autograd.detect_anomaly(), autograd.stage("loss"):
        ok = x * 2.0
        with pytest.raises(AnomalyError) as info, np.errstate(divide="ignore"):
            ok.log()
    message = str(info.value)
    assert "log" in message and "-inf" in message and "loss" in message
    assert np.isneginf(x.log().data[1])  # a value outside detect_anomaly (computed without numpy's warning)


def test_detect_anomaly_on_tensor_gradient():
    x = Tensor(np.array([1.0, 0.0]), requires_grad=True)
    y = x.sqrt()
    y.label = "root"
    with autograd.detect_anomaly(), pytest.raises(AnomalyError) as info:
        y.sum().backward()
    assert "sqrt" in str(info.value) and "root" in str(info.value)
    assert x.grad is None  # nothing was written


# --- bad input ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, op, shapes", [
    (lambda: Tensor(np.ones((2, 3))) + Tensor(np.ones(4)), "add", ["(2, 3)", "(4,)"]),
    (lambda: Tensor(np.ones((2, 3))) * np.ones((3, 2)), "mul", ["(2, 3)", "(3, 2)"]),
    (lambda: np.ones(5) - Tensor(np.ones((2, 3))), "sub", ["(5,)", "(2, 3)"]),
    (lambda: Tensor(np.ones((2, 3))) @ Tensor(np.ones((2, 3))), "matmul", ["(2, 3)", "(2, 3)"]),
    (lambda: Tensor(np.ones((2, 3))).reshape(4, 2), "reshape", ["(2, 3)"]),
    (lambda: autograd.where(np.ones(3, bool), Tensor(np.ones(2)), 0.0), "where", ["(2,)"]),
])
def test_shape_mismatch_names_op_and_shapes(make, op, shapes):
    with pytest.raises(ValueError) as info:
        make()
    message = str(info.value)
    assert op in message
    for s in shapes:
        assert s in message


@pytest.mark.parametrize("bad", ["abc", np.array(["a", "b"]), np.array([object(), 1.0], dtype=object),
                                 [1.0, "x"], 1 + 2j, np.array([1j]), None, {"a": 1}])
def test_non_numeric_input_refused(bad):
    with pytest.raises(TypeError) as info:
        Tensor(bad)
    assert "Tensor" in str(info.value)


def test_integer_dtype_refused_and_mixing_with_value_refused():
    with pytest.raises(TypeError, match="float"):
        Tensor([1, 2], dtype=np.int64)
    with pytest.raises(TypeError, match="Value"):
        Tensor([1.0]) + Value(1.0)


def test_repr_mentions_op_label_and_dtype():
    x = Tensor([1.0, 2.0], requires_grad=True, label="x", dtype=np.float32)
    assert "label='x'" in repr(x) and "float32" in repr(x) and "requires_grad=True" in repr(x)
    assert "op='tanh'" in repr(x.tanh())


# --- the reverse pass's shortcuts give the plain rules' numbers ---------------------------------------------

def test_indexing_gradients_added_in_place_match_the_plain_scatter_and_add():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((6, 3, 4)), requires_grad=True)
    pieces = [x[t] for t in range(6)] + [x[:, 1], x[[0, 0, 5]], x[2:4, :, 1:3], x[...], x[x.data > 0]]
    loss = sum(((piece * rng.standard_normal(piece.shape)).sum() for piece in pieces), Tensor(0.0))
    loss = loss + (x * x).sum()  # a dense contribution as well
    fast = autograd.backpropagate(loss).adjoints[x]
    plain = autograd.backpropagate(loss, record_branches=True).adjoints[x]  # branch records use the plain rule
    assert fast.dtype == plain.dtype
    assert_close(fast, plain)


@pytest.mark.parametrize("dtypes", [(np.float32, np.float64), (np.float64, np.float32)])
def test_indexing_gradients_added_in_place_keep_numpy_type_promotion(dtypes):
    x = Tensor(np.ones((3, 2)), requires_grad=True, dtype=dtypes[0])
    weights = Tensor(np.full(2, 0.1), dtype=dtypes[1])
    loss = sum(((x[t] * weights).sum() for t in range(3)), Tensor(0.0, dtype=np.float32))
    fast = autograd.backpropagate(loss).adjoints[x]
    plain = autograd.backpropagate(loss, record_branches=True).adjoints[x]
    assert fast.dtype == plain.dtype
    assert_close(fast, plain)


def test_zero_dimensional_tensor_indexed_and_used_whole():
    x = Tensor(2.0, requires_grad=True)
    (x[()] * 3.0 + x * x + x[()] * 5.0 + x[...] * 7.0).backward()
    assert_close(x.grad, 3.0 + 2 * 2.0 + 5.0 + 7.0)


def test_backward_keeps_only_the_leaves_adjoints_and_the_same_numbers():
    a, b = Tensor(randn(3, 4), requires_grad=True), Tensor(randn(4), requires_grad=True)
    loss = ((a * b).tanh() @ b).sum()
    every = autograd.backpropagate(loss).adjoints
    leaves = autograd.backpropagate(loss, keep_inner=False).adjoints
    assert set(leaves) == {node for node in every if node.op is None}
    for node, g in leaves.items():
        assert_close(g, every[node])


def test_a_parameter_owns_its_numbers_and_a_constant_shares_them():
    numbers = np.ones(3)
    weight = Tensor(numbers, requires_grad=True)
    weight.data -= 0.5  # what an optimizer step does
    np.testing.assert_array_equal(numbers, np.ones(3))  # the caller's array is untouched
    assert np.shares_memory(Tensor(numbers).data, numbers)  # a constant input is read, never written: no copy
