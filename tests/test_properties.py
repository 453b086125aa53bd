"""Property tests: random graphs with forks (shared subexpressions, repeated parents), on Values and on
Tensors of random shapes, whose reverse-mode gradients must match central differences of an independent
evaluation of the same program in plain floats (math) or numpy."""

from __future__ import annotations

import math

import numpy as np
from conftest import numeric_gradient, reduce_to_shape
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import autograd
from autograd import Tensor, Value

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


# --- scalar programs ----------------------------------------------------------------------------------------
# Each op: (arity, on graph nodes, on floats). Every op is smooth on its whole domain, so finite differences
# are accurate wherever the program is evaluated.

SCALAR_OPS = {
    "add": (2, lambda a, b: a + b, lambda a, b: a + b),
    "sub": (2, lambda a, b: a - b, lambda a, b: a - b),
    "mul": (2, lambda a, b: a * b, lambda a, b: a * b),
    "div": (2, lambda a, b: a / (1 + b * b), lambda a, b: a / (1 + b * b)),
    "pow": (2, lambda a, b: (1 + a * a) ** b.tanh(), lambda a, b: (1 + a * a) ** math.tanh(b)),
    "rsub": (1, lambda a: 1.5 - a, lambda a: 1.5 - a),
    "rdiv": (1, lambda a: 2 / (1 + a * a), lambda a: 2 / (1 + a * a)),
    "neg": (1, lambda a: -a, lambda a: -a),
    "square": (1, lambda a: a**2, lambda a: a**2),
    "tanh": (1, lambda a: a.tanh(), math.tanh),
    "sigmoid": (1, lambda a: a.sigmoid(), _sigmoid),
    "exp": (1, lambda a: a.tanh().exp(), lambda a: math.exp(math.tanh(a))),
    "log": (1, lambda a: (1 + a * a).log(), lambda a: math.log(1 + a * a)),
    "sqrt": (1, lambda a: (a * a + 0.5).sqrt(), lambda a: math.sqrt(a * a + 0.5)),
}

instruction = st.tuples(st.sampled_from(sorted(SCALAR_OPS)), st.integers(0, 10_000), st.integers(0, 10_000))
scalar_programs = st.tuples(
    st.lists(st.floats(-2.0, 2.0, allow_nan=False).map(lambda v: round(v, 3)), min_size=1, max_size=3),
    st.lists(instruction, min_size=1, max_size=12),
)


def run_scalar(program, leaves, pick):
    """Evaluate a program; ``pick(op)`` gives the implementation. Operands index earlier nodes (forks)."""
    nodes = list(leaves)
    for name, i, j in program:
        arity, on_nodes, on_floats = SCALAR_OPS[name]
        f = pick(on_nodes, on_floats)
        # bias towards recent nodes, but allow any earlier one, and the same one twice
        a = nodes[-1 - i % len(nodes)] if i % 3 else nodes[i % len(nodes)]
        b = nodes[-1 - j % len(nodes)]
        nodes.append(f(a, b) if arity == 2 else f(a))
    return nodes


def float_program(program, values):
    return run_scalar(program, values, lambda on_nodes, on_floats: on_floats)


@SETTINGS
@given(scalar_programs)
def test_value_graph_gradients_match_finite_differences(case):
    values, program = case
    floats = float_program(program, values)
    assume(all(math.isfinite(v) and abs(v) < 1e4 for v in floats))
    leaves = [Value(v, label=f"x{k}") for k, v in enumerate(values)]
    nodes = run_scalar(program, leaves, lambda on_nodes, on_floats: on_nodes)
    out = nodes[-1]
    assert math.isclose(out.data, floats[-1], rel_tol=1e-12, abs_tol=1e-12)
    out.backward()
    eps = 1e-6
    for k, leaf in enumerate(leaves):
        plus, minus = list(values), list(values)
        plus[k] += eps
        minus[k] -= eps
        numeric = (float_program(program, plus)[-1] - float_program(program, minus)[-1]) / (2 * eps)
        tolerance = 1e-5 * (1 + abs(out.data))
        assert math.isclose(leaf.grad, numeric, rel_tol=1e-4, abs_tol=tolerance), (k, program)
    # the functional gradient agrees with backward() and leaves .grad alone
    functional = autograd.grad(out, leaves)
    assert [leaf.grad for leaf in leaves] == functional
    # at every fork the branch terms add up to the adjoint
    result = autograd.backpropagate(out, record_branches=True)
    edges = autograd.consumers(out)
    for node, adjoint in result.adjoints.items():
        if node is out:
            continue
        terms = result.terms(node)
        assert len(terms) == len(edges[node])
        assert math.isclose(sum(t.term for t in terms), adjoint, rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=30, deadline=None)
@given(scalar_programs, st.lists(st.floats(-1.0, 1.0), min_size=3, max_size=3))
def test_value_hessian_vector_products_match_finite_differences(case, direction):
    values, program = case
    assume(all(math.isfinite(v) and abs(v) < 1e3 for v in float_program(program, values)))
    v = direction[: len(values)]

    def gradient(at):
        xs = [Value(a) for a in at]
        return autograd.grad(run_scalar(program, xs, lambda n, f: n)[-1], xs)

    xs = [Value(a) for a in values]
    first = autograd.grad(run_scalar(program, xs, lambda n, f: n)[-1], xs, create_graph=True)
    directional = sum((g * vi for g, vi in zip(first, v)), Value(0.0))
    hv = autograd.grad(directional, xs)
    eps = 1e-5
    plus = gradient([a + eps * vi for a, vi in zip(values, v)])
    minus = gradient([a - eps * vi for a, vi in zip(values, v)])
    scale = 1 + max(abs(h) for h in hv)
    for h, p, m in zip(hv, plus, minus):
        assert math.isclose(h, (p - m) / (2 * eps), rel_tol=1e-4, abs_tol=1e-5 * scale)


@settings(max_examples=30, deadline=None)
@given(scalar_programs)
def test_values_and_zero_dim_tensors_agree(case):
    values, program = case
    assume(all(math.isfinite(v) and abs(v) < 1e4 for v in float_program(program, values)))
    vs = [Value(v) for v in values]
    ts = [Tensor(v, requires_grad=True) for v in values]
    out_v = run_scalar(program, vs, lambda n, f: n)[-1]
    out_t = run_scalar(program, ts, lambda n, f: n)[-1]
    assert math.isclose(out_v.data, float(out_t.data), rel_tol=1e-12, abs_tol=1e-12)
    gv = autograd.grad(out_v, vs)
    gt = autograd.grad(out_t, ts)
    for a, b in zip(gv, gt):
        assert math.isclose(a, float(b), rel_tol=1e-9, abs_tol=1e-12)


# --- tensor programs ----------------------------------------------------------------------------------------

def _np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _gather_index(n, seed):
    return np.array([(seed * (i + 1) + i // 2) % n for i in range(n)])  # length n, usually with repeats


def _permutation(ndim, k):
    """A permutation of ndim axes picked by k, some written as negative axes (k's bits say which), and its
    inverse written the same way: the two transposes undo each other."""
    order = list(range(ndim))
    np.random.default_rng(k).shuffle(order)
    inverse = np.argsort(order).tolist()
    negative = [(k >> bit) & 1 for bit in range(ndim)]
    return ([a - ndim * n for a, n in zip(order, negative)], [a - ndim * n for a, n in zip(inverse, negative[::-1])])


# Each op: (arity, on Tensors, on numpy arrays); ``k`` is a per-instruction integer (an axis or a seed).
TENSOR_OPS = {
    "add": (2, lambda a, b, k: a + b, lambda a, b, k: a + b),
    "sub": (2, lambda a, b, k: a - b, lambda a, b, k: a - b),
    "mul": (2, lambda a, b, k: a * b, lambda a, b, k: a * b),
    "div": (2, lambda a, b, k: a / (b * b + 1.0), lambda a, b, k: a / (b * b + 1.0)),
    "tanh": (1, lambda a, k: a.tanh(), lambda a, k: np.tanh(a)),
    "sigmoid": (1, lambda a, k: a.sigmoid(), lambda a, k: 1 / (1 + np.exp(-a))),
    "exp": (1, lambda a, k: a.tanh().exp(), lambda a, k: np.exp(np.tanh(a))),
    "log": (1, lambda a, k: (a * a + 1.0).log(), lambda a, k: np.log(a * a + 1.0)),
    "sqrt": (1, lambda a, k: (a * a + 0.5).sqrt(), lambda a, k: np.sqrt(a * a + 0.5)),
    "square": (1, lambda a, k: a**2, lambda a, k: a**2),
    "sum": (1, lambda a, k: a.sum(axis=k % max(a.ndim, 1), keepdims=True) if a.ndim else a.sum(),
            lambda a, k: a.sum(axis=k % max(a.ndim, 1), keepdims=True) if a.ndim else a.sum()),
    "mean": (1, lambda a, k: a.mean(axis=k % a.ndim, keepdims=True) if a.ndim else a.mean(),
             lambda a, k: a.mean(axis=k % a.ndim, keepdims=True) if a.ndim else a.mean()),
    "softmax": (1, lambda a, k: a.softmax(axis=k % a.ndim) if a.ndim else a,
                lambda a, k: _np_softmax(a, k % a.ndim) if a.ndim else a),
    "reverse": (1, lambda a, k: a[::-1] if a.ndim else a, lambda a, k: a[::-1] if a.ndim else a),
    "gather": (1, lambda a, k: a[_gather_index(a.shape[0], k)] if a.ndim else a,
               lambda a, k: a[_gather_index(a.shape[0], k)] if a.ndim else a),
    "reshape": (1, lambda a, k: a.reshape(-1).reshape(a.shape), lambda a, k: a.reshape(-1).reshape(a.shape)),
    "stack_sum": (2, lambda a, b, k: autograd.stack([a + b, a * b]).sum(axis=0),
                  lambda a, b, k: np.stack([a + b, a * b]).sum(axis=0)),
    "transpose_back": (1, lambda a, k: a.transpose(_permutation(a.ndim, k)[0]).transpose(_permutation(a.ndim, k)[1]),
                       lambda a, k: a.transpose(_permutation(a.ndim, k)[0]).transpose(_permutation(a.ndim, k)[1])),
    "swapaxes_back": (1, lambda a, k: a.swapaxes(-1, 0).swapaxes(0, -1) if a.ndim else a,
                      lambda a, k: a.swapaxes(-1, 0).swapaxes(0, -1) if a.ndim else a),
    "max_negative_axis": (1, lambda a, k: a.max(axis=-1 - k % max(a.ndim, 1), keepdims=True),
                          lambda a, k: a.max(axis=-1 - k % a.ndim, keepdims=True) if a.ndim else a),
    "mask": (1, lambda a, k: a * (a.data > 0.2), lambda a, k: a * (a > 0.2)),
}


@st.composite
def tensor_programs(draw):
    base = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=3)))
    leaf_shapes = []
    for _ in range(draw(st.integers(1, 3))):
        drop = draw(st.integers(0, len(base)))
        shape = tuple(1 if draw(st.booleans()) and draw(st.booleans()) else n for n in base[drop:])
        leaf_shapes.append(shape)
    leaf_shapes[0] = base  # one leaf has the full shape, so every op result broadcasts to it
    seed = draw(st.integers(0, 2**31 - 1))
    ops = draw(st.lists(st.tuples(st.sampled_from(sorted(TENSOR_OPS)), st.integers(0, 10_000),
                                  st.integers(0, 10_000), st.integers(0, 50)), min_size=1, max_size=8))
    return leaf_shapes, seed, ops


def run_tensor(ops, leaves, numpy_side):
    nodes = list(leaves)
    for name, i, j, k in ops:
        arity, on_tensors, on_arrays = TENSOR_OPS[name]
        f = on_arrays if numpy_side else on_tensors
        a = nodes[-1 - i % len(nodes)] if i % 3 else nodes[i % len(nodes)]
        b = nodes[-1 - j % len(nodes)]
        nodes.append(f(a, b, k) if arity == 2 else f(a, k))
    return nodes


def _leaf_arrays(shapes, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1.5, 1.5, size=s).astype(dtype) for s in shapes]


@SETTINGS
@given(tensor_programs())
def test_tensor_graph_gradients_match_finite_differences(case):
    shapes, seed, ops = case
    arrays = _leaf_arrays(shapes, seed)
    reference = run_tensor(ops, arrays, numpy_side=True)
    assume(all(np.all(np.abs(r) < 1e4) for r in reference))
    weights = np.random.default_rng(seed + 1).standard_normal(np.shape(reference[-1]))

    def loss(arrs):
        return float(np.sum(weights * run_tensor(ops, arrs, numpy_side=True)[-1]))

    leaves = [Tensor(a, requires_grad=True) for a in arrays]
    out = run_tensor(ops, leaves, numpy_side=False)[-1]
    np.testing.assert_allclose(out.data, reference[-1], rtol=1e-10, atol=1e-12)
    total = (out * weights).sum()
    grads = autograd.grad(total, leaves)
    eps = 1e-6
    for n, (leaf, g) in enumerate(zip(leaves, grads)):
        assert g.shape == leaf.shape
        numeric = np.zeros_like(arrays[n])
        for idx in np.ndindex(arrays[n].shape):
            work = [a.copy() for a in arrays]
            work[n][idx] += eps
            plus = loss(work)
            work[n][idx] -= 2 * eps
            numeric[idx] = (plus - loss(work)) / (2 * eps)
        np.testing.assert_allclose(g, numeric, rtol=1e-4, atol=1e-5 * (1 + np.abs(numeric).max(initial=0)))
    # backward() agrees with the functional gradient, and branch terms add up at every fork
    total.backward()
    for leaf, g in zip(leaves, grads):
        if leaf.grad is not None:
            np.testing.assert_allclose(leaf.grad, g, rtol=1e-12, atol=1e-14)
        else:
            assert not np.any(g)
    result = autograd.backpropagate(total, record_branches=True)
    for node, adjoint in result.adjoints.items():
        if node is not total:
            terms = result.terms(node)
            assert all(np.shape(t.term) == node.shape for t in terms)
            np.testing.assert_allclose(sum(t.term for t in terms), adjoint, rtol=1e-9, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(tensor_programs())
def test_tensor_programs_keep_float32(case):
    shapes, seed, ops = case
    leaves = [Tensor(a, requires_grad=True) for a in _leaf_arrays(shapes, seed, np.float32)]
    out = run_tensor(ops, leaves, numpy_side=False)[-1]
    assert out.dtype == np.float32
    for g in autograd.grad(out.sum() * 0.5, leaves):
        assert g.dtype == np.float32


shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)


@st.composite
def broadcastable_pairs(draw):
    out = draw(shapes)

    def part():
        drop = draw(st.integers(0, len(out)))
        return tuple(1 if draw(st.booleans()) else n for n in out[drop:])

    return part(), part()


@settings(max_examples=60, deadline=None)
@given(broadcastable_pairs(), st.sampled_from(["add", "sub", "mul", "div"]))
def test_broadcast_gradients_return_to_input_shapes(pair, op):
    shape_a, shape_b = pair
    rng = np.random.default_rng(len(shape_a) * 7 + len(shape_b))
    a0 = rng.uniform(0.5, 2.0, shape_a)
    b0 = rng.uniform(0.5, 2.0, shape_b)
    a, b = Tensor(a0, requires_grad=True), Tensor(b0, requires_grad=True)
    out = {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b}[op]
    out_shape = np.broadcast_shapes(shape_a, shape_b)
    assert out.shape == out_shape
    out.sum().backward()
    assert a.grad.shape == shape_a and b.grad.shape == shape_b
    ones = np.ones(out_shape)
    da = {"add": ones, "sub": ones, "mul": b0 * ones, "div": 1 / b0 * ones}[op]
    db = {"add": ones, "sub": -ones, "mul": a0 * ones, "div": -a0 / b0**2 * ones}[op]
    np.testing.assert_allclose(a.grad, reduce_to_shape(da, shape_a), rtol=1e-12)
    np.testing.assert_allclose(b.grad, reduce_to_shape(db, shape_b), rtol=1e-12)
    if op == "add":  # each element is counted once per copy the broadcast made of it
        np.testing.assert_array_equal(a.grad, np.full(shape_a, np.prod(out_shape) / max(np.prod(shape_a), 1)))


# --- permutations, axes and index expressions: numpy's forward, a finite-difference backward ------------------

def _check_against_numpy(shape, seed, on_tensor, on_array):
    """The op's forward equals numpy's, and its gradient (under a random upstream gradient) equals central
    differences of sum(w * numpy's forward)."""
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal(shape)
    expected = np.asarray(on_array(x0))
    x = Tensor(x0, requires_grad=True)
    out = on_tensor(x)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    np.testing.assert_array_equal(out.data, expected)
    w = rng.standard_normal(expected.shape)
    gradient = autograd.grad(out, x, w)
    numeric = numeric_gradient(lambda arrays: float(np.sum(w * on_array(arrays[0]))), [x0])[0]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-8)


small_shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)
nonempty_shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@st.composite
def permutations(draw):
    shape = draw(nonempty_shapes)
    order = draw(st.permutations(range(len(shape))))
    axes = [a - len(shape) if draw(st.booleans()) else a for a in order]  # negative axes count from the end
    return shape, axes, draw(st.sampled_from(["tuple", "arguments", "swapaxes"]))


@settings(max_examples=60, deadline=None)
@given(permutations(), st.integers(0, 2**31 - 1))
def test_random_permutations_with_negative_axes(case, seed):
    shape, axes, how = case
    if how == "tuple":
        _check_against_numpy(shape, seed, lambda t: t.transpose(tuple(axes)), lambda a: a.transpose(axes))
    elif how == "arguments":
        _check_against_numpy(shape, seed, lambda t: t.transpose(*axes), lambda a: a.transpose(*axes))
    else:
        _check_against_numpy(shape, seed, lambda t: t.swapaxes(axes[0], axes[-1]),
                             lambda a: a.swapaxes(axes[0], axes[-1]))


@st.composite
def reductions(draw):
    shape = draw(small_shapes)
    ndim = len(shape)
    if ndim == 0:  # a 0-d tensor's one pseudo-axis: 0 or -1, alone or in a tuple
        axis = draw(st.sampled_from([None, 0, -1, (0,), (-1,)]))
    else:
        chosen = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
        signed = tuple(a - ndim if draw(st.booleans()) else a for a in chosen)
        axis = draw(st.sampled_from([None, signed[0] if signed else None, signed]))
    return shape, axis, draw(st.booleans()), draw(st.sampled_from(["sum", "mean", "max", "min"]))


@settings(max_examples=80, deadline=None)
@given(reductions(), st.integers(0, 2**31 - 1))
def test_reductions_over_random_axes(case, seed):
    shape, axis, keepdims, name = case

    def on_array(a):
        if a.ndim == 0:  # reducing a 0-d array over its pseudo-axis leaves it as it is
            return a
        return getattr(np, name)(a, axis=axis, keepdims=keepdims)

    _check_against_numpy(shape, seed, lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), on_array)


@st.composite
def index_expressions(draw):
    """A shape and an index into it: integers and slices (negative ones too), and at most one advanced part: an
    integer array with repeats and negative entries (as an array, a list or a Tensor), a pair of them, or a
    boolean mask (as an array or a boolean Tensor); sometimes with None or a leading Ellipsis."""
    shape = draw(nonempty_shapes)
    ndim = len(shape)
    parts: list = []
    for n in shape:
        kind = draw(st.sampled_from(["int", "slice", "slice", "all"]))
        if kind == "int":
            parts.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            bound = st.none() | st.integers(-n - 1, n + 1)
            parts.append(slice(draw(bound), draw(bound), draw(st.none() | st.sampled_from([-3, -2, -1, 1, 2]))))
        else:
            parts.append(slice(None))
    advanced = draw(st.sampled_from(["none", "integers", "pair", "mask"]))
    where = draw(st.integers(0, ndim - 1))
    n = shape[where]
    picks = st.lists(st.integers(-n, n - 1), max_size=5)
    if advanced == "integers":
        chosen = draw(picks)
        parts[where] = draw(st.sampled_from([np.array(chosen, dtype=np.intp), chosen,
                                             Tensor(np.array(chosen, dtype=float))]))
    elif advanced == "pair" and ndim > 1:
        first = draw(picks)
        other = (where + 1) % ndim
        parts[where] = np.array(first, dtype=np.intp)
        parts[other] = np.array(draw(st.lists(st.integers(-shape[other], shape[other] - 1),
                                              min_size=len(first), max_size=len(first))), dtype=np.intp)
    elif advanced == "mask":
        mask = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        parts[where] = draw(st.sampled_from([mask, Tensor(mask)]))
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), None)
    if draw(st.booleans()):
        parts = [Ellipsis, *parts[draw(st.integers(1, len(parts))):]]
    return shape, tuple(parts)


def _numpy_index(index):
    return tuple(part.data.astype(np.intp) if isinstance(part, Tensor) and part.dtype.kind == "f" else
                 part.data if isinstance(part, Tensor) else part for part in index)


@settings(max_examples=150, deadline=None)
@given(index_expressions(), st.integers(0, 2**31 - 1))
def test_random_index_expressions(case, seed):
    shape, index = case
    _check_against_numpy(shape, seed, lambda t: t[index], lambda a: a[_numpy_index(index)])
