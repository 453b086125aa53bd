"""The LSTM built from primitives: `lstm.LSTM` (Tensor) and `lstm.ScalarLSTM` (Value) against `lstm.hand`.

Gradients of all four methods are compared in test_compare.py; here: weights and their layout, state dicts,
forward values, inputs and their errors, stages and labels on the graph, forks, and float32.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lstm.models.lstm
from autograd import Tensor, Value, consumers, draw, explain
from autograd.core import topological_order
from autograd.value import Constant
from lstm import LSTM, RNN, ScalarLSTM, hand, params
from lstm.models.lstm import GATES, data_of, grads_of, parameter_shapes


def random_case(rng, input_size=3, hidden_size=4, num_layers=2, steps=6, batch=3):
    x = rng.standard_normal((steps, batch, input_size))
    state_shape = (num_layers, batch, hidden_size)
    return x, (rng.standard_normal(state_shape), rng.standard_normal(state_shape))


def values(array):
    nodes = np.empty(array.shape, dtype=object)
    for index in np.ndindex(array.shape):
        nodes[index] = Value(float(array[index]))
    return nodes


# --- weights: one seed, one draw, three implementations -----------------------------------------------------

@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_equal_seeds_give_equal_weights_everywhere(num_layers):
    reference = hand.init_params(3, 5, num_layers, seed=7)
    tensor_model, scalar_model = LSTM(3, 5, num_layers, seed=7), ScalarLSTM(3, 5, num_layers, seed=7)
    for state in (tensor_model.state_dict(), scalar_model.state_dict()):
        assert list(state) == list(reference)
        for name in reference:
            np.testing.assert_array_equal(state[name], reference[name])


def test_float32_weights_are_the_float64_draw_rounded():
    single = LSTM(2, 3, dtype=np.float32, seed=1).state_dict()
    double = hand.init_params(2, 3, seed=1)
    for name, array in single.items():
        assert array.dtype == np.float32
        np.testing.assert_array_equal(array, double[name].astype(np.float32))


def test_different_seeds_give_different_weights():
    assert not np.array_equal(LSTM(2, 3, seed=0).weight_hh_l0.data, LSTM(2, 3, seed=1).weight_hh_l0.data)


def test_parameters_use_pytorch_names_shapes_and_init_bound():
    model = LSTM(input_size=5, hidden_size=4, num_layers=2)
    expected = {"weight_ih_l0": (16, 5), "weight_hh_l0": (16, 4), "bias_ih_l0": (16,), "bias_hh_l0": (16,),
                "weight_ih_l1": (16, 4), "weight_hh_l1": (16, 4), "bias_ih_l1": (16,), "bias_hh_l1": (16,)}
    assert parameter_shapes(5, 4, 2) == expected
    assert {name: p.shape for name, p in model.named_parameters()} == expected
    assert list(dict(model.named_parameters())) == list(expected)  # PyTorch's order
    assert all(np.abs(p.data).max() <= 1 / np.sqrt(4) for p in model.parameters())
    scalar = ScalarLSTM(5, 4, 2)
    assert {name: array.shape for name, array in scalar.named_parameters()} == expected
    assert len(scalar.parameters()) == sum(int(np.prod(shape)) for shape in expected.values())
    assert all(isinstance(p, Value) for p in scalar.parameters())


def test_scalar_leaves_are_labelled_by_gate_block():
    model = ScalarLSTM(2, 3)
    # rows 3..5 are the forget block; row 4 is its unit 1
    assert model.weight_ih_l0[4, 1].label == "W_if[1,1]"
    assert model.weight_hh_l0[6, 0].label == "W_hg[0,0]"
    assert model.bias_ih_l0[0].label == "b_ii[0]"
    assert model.bias_hh_l0[11].label == "b_ho[2]"
    assert ScalarLSTM(2, 3, num_layers=2).weight_hh_l1[0, 2].label == "W_hi_l1[0,2]"


# --- state dicts --------------------------------------------------------------------------------------------

def test_state_dicts_round_trip_between_lstm_scalar_lstm_and_hand():
    rng = np.random.default_rng(0)
    params = {name: rng.standard_normal(shape) for name, shape in parameter_shapes(2, 3, 2).items()}
    tensor_model, scalar_model = LSTM(2, 3, 2, seed=5), ScalarLSTM(2, 3, 2, seed=6)
    tensor_model.load_state_dict(params)
    scalar_model.load_state_dict(tensor_model.state_dict())
    back = LSTM(2, 3, 2, seed=9)
    back.load_state_dict(scalar_model.state_dict())
    for name in params:
        np.testing.assert_array_equal(back.state_dict()[name], params[name])
    x, state = random_case(rng, 2, 3, 2)
    out, (h, c), _ = hand.forward(scalar_model.state_dict(), x, state)
    tensor_out, (tensor_h, tensor_c) = back(x, state)
    np.testing.assert_allclose(tensor_out.data, out, rtol=0, atol=1e-14)
    np.testing.assert_allclose(tensor_h.data, h, rtol=0, atol=1e-14)
    np.testing.assert_allclose(tensor_c.data, c, rtol=0, atol=1e-14)


def test_state_dict_holds_copies():
    for model in (LSTM(2, 3), ScalarLSTM(2, 3)):
        state = model.state_dict()
        state["weight_hh_l0"][...] = 0.0
        assert np.abs(model.state_dict()["weight_hh_l0"]).max() > 0


def test_float32_model_loads_float64_weights_as_float32():
    model = LSTM(2, 3, dtype=np.float32)
    model.load_state_dict(hand.init_params(2, 3, seed=4))
    assert all(p.dtype == np.float32 for p in model.parameters())


@pytest.mark.parametrize("model_type", [LSTM, ScalarLSTM])
def test_bad_state_dicts_are_refused_before_anything_changes(model_type):
    model = model_type(2, 3)
    before = model.state_dict()
    good = hand.init_params(2, 3, seed=1)
    with pytest.raises(KeyError, match=r"missing \['bias_hh_l0'\]"):
        model.load_state_dict({k: v for k, v in good.items() if k != "bias_hh_l0"})
    with pytest.raises(KeyError, match=r"unexpected \['weight_hr_l0'\]"):
        model.load_state_dict({**good, "weight_hr_l0": np.zeros((12, 3))})
    with pytest.raises(ValueError, match=r"weight_ih_l0 has shape \(12, 4\), expected \(12, 2\)"):
        model.load_state_dict({**good, "weight_ih_l0": np.zeros((12, 4))})
    with pytest.raises(TypeError, match="bias_ih_l0 has dtype <U1"):
        model.load_state_dict({**good, "bias_ih_l0": np.array(["a"] * 12)})
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name])


def test_the_facts_live_in_lstm_params_and_everyone_reads_them_there():
    assert lstm.models.lstm.GATES is params.GATES and lstm.models.lstm.parameter_shapes is params.parameter_shapes
    assert hand.init_params is params.init_params
    assert [gate.letter for gate in params.GATES] == ["i", "f", "g", "o"]  # PyTorch's row blocks
    assert params.STEP_NODES == ("z_i", "i", "z_f", "f", "z_g", "g", "z_o", "o", "c", "tanh_c", "h")
    assert params.step_name("h", 2) == "h[t=2]" and params.step_name("h", 2, 1, 2) == "h[t=2, layer 1]"
    assert params.parameter_shapes(3, 4, blocks=1) == {"weight_ih_l0": (4, 3), "weight_hh_l0": (4, 4),
                                                       "bias_ih_l0": (4,), "bias_hh_l0": (4,)}


@pytest.mark.parametrize("model_type", [LSTM, ScalarLSTM])
def test_from_state_dict_builds_the_model_from_the_weights_without_drawing_any(model_type, monkeypatch):
    rng = np.random.default_rng(3)
    state = {name: rng.standard_normal(shape) for name, shape in parameter_shapes(2, 3, 2).items()}

    def no_draws(*args, **kwargs):
        raise AssertionError("from_state_dict drew random weights")

    monkeypatch.setattr(lstm.models.lstm, "init_params", no_draws)
    model = model_type.from_state_dict(state)
    assert (model.input_size, model.hidden_size, model.num_layers) == (2, 3, 2)
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, state[name])
    state["weight_hh_l0"][...] = 0.0  # the model holds its own copies
    assert np.abs(model.state_dict()["weight_hh_l0"]).max() > 0


def test_from_state_dict_keeps_the_weights_dtype_unless_told_and_refuses_bad_dicts():
    single = hand.init_params(2, 3, dtype=np.float32)
    assert LSTM.from_state_dict(single).dtype == np.float32
    assert LSTM.from_state_dict(single, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match=r"params\['bias_hh_l0'\] has shape \(11,\), expected \(12,\)"):
        LSTM.from_state_dict({**single, "bias_hh_l0": np.zeros(11, np.float32)})
    with pytest.raises(ValueError, match="missing 'weight_ih_l0'"):
        ScalarLSTM.from_state_dict({})
    with pytest.raises(ValueError, match=r"params\['weight_ih_l0'\] has shape \(12, 2\), expected \(3, 2\)"):
        RNN.from_state_dict(single)  # an LSTM's weights are not an RNN's


def test_forget_bias_sets_the_forget_gates_biases_and_leaves_every_other_number_alone():
    plain, opened = hand.init_params(2, 3, 2, seed=4), hand.init_params(2, 3, 2, seed=4, forget_bias=1.0)
    forget = slice(3, 6)
    for name in plain:
        if name.startswith("bias"):
            expected = 1.0 if name.startswith("bias_ih") else 0.0
            np.testing.assert_array_equal(opened[name][forget], expected)
            np.testing.assert_array_equal(np.delete(opened[name], forget), np.delete(plain[name], forget))
        else:
            np.testing.assert_array_equal(opened[name], plain[name])
    for model in (LSTM(2, 3, 2, seed=4, forget_bias=1.0), ScalarLSTM(2, 3, 2, seed=4, forget_bias=1.0)):
        for name, array in model.state_dict().items():
            np.testing.assert_array_equal(array, opened[name])
    with pytest.raises(ValueError, match="forget_bias is for an LSTM"):
        hand.init_params(2, 3, blocks=1, forget_bias=1.0)


# --- forward values -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("with_state", [False, True])
def test_forward_matches_the_hand_forward(num_layers, with_state):
    rng = np.random.default_rng(num_layers)
    x, state = random_case(rng, 3, 4, num_layers, steps=10, batch=3)
    state = state if with_state else None
    out, (h, c), _ = hand.forward(hand.init_params(3, 4, num_layers), x, state)
    for model in (LSTM(3, 4, num_layers), ScalarLSTM(3, 4, num_layers)):
        model_out, (model_h, model_c) = model(x, state)
        as_numbers = (lambda a: a.data) if isinstance(model, LSTM) else data_of
        assert as_numbers(model_out).shape == (10, 3, 4)
        assert as_numbers(model_h).shape == as_numbers(model_c).shape == (num_layers, 3, 4)
        np.testing.assert_allclose(as_numbers(model_out), out, rtol=0, atol=1e-14)
        np.testing.assert_allclose(as_numbers(model_h), h, rtol=0, atol=1e-14)
        np.testing.assert_allclose(as_numbers(model_c), c, rtol=0, atol=1e-14)


@settings(max_examples=25, deadline=None)
@given(input_size=st.integers(1, 4), hidden_size=st.integers(1, 5), num_layers=st.integers(1, 3),
       steps=st.integers(1, 12), batch=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_tensor_lstm_gradients_match_the_hand_derivation(input_size, hidden_size, num_layers, steps, batch,
                                                         seed):
    rng = np.random.default_rng(seed)
    x, (h0, c0) = random_case(rng, input_size, hidden_size, num_layers, steps, batch)
    d_out = rng.standard_normal((steps, batch, hidden_size))
    model = LSTM(input_size, hidden_size, num_layers, seed=seed)
    inputs = [Tensor(a, requires_grad=True) for a in (x, h0, c0)]
    out, _ = model(inputs[0], (inputs[1], inputs[2]))
    out.backward(d_out)
    _, _, cache = hand.forward(model.state_dict(), x, (h0, c0))
    expected = hand.backward(cache, d_out)
    got = {**model.gradients(), "x": inputs[0].grad, "h0": inputs[1].grad, "c0": inputs[2].grad}
    for name, gradient in expected.items():
        np.testing.assert_allclose(got[name], gradient, rtol=1e-9, atol=1e-12, err_msg=name)


def test_omitted_state_means_zeros():
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    zeros = (np.zeros((2, 2, 5)), np.zeros((2, 2, 5)))
    for model in (LSTM(3, 5, 2), ScalarLSTM(3, 5, 2)):
        implicit, explicit = model(x)[0], model(x, zeros)[0]
        numbers = (lambda a: a.data) if isinstance(model, LSTM) else data_of
        np.testing.assert_array_equal(numbers(implicit), numbers(explicit))


def test_tensor_inputs_and_numpy_inputs_give_the_same_forward():
    rng = np.random.default_rng(1)
    x, state = random_case(rng)
    model = LSTM(3, 4, 2)
    from_numpy = model(x, state)[0].data
    from_tensors = model(Tensor(x), (Tensor(state[0]), Tensor(state[1])))[0].data
    np.testing.assert_array_equal(from_numpy, from_tensors)


# --- gradients(), zero_grad() and the scalar LSTM's inputs --------------------------------------------------

def test_gradients_are_keyed_like_the_state_dict_and_zero_grad_clears_them():
    model = LSTM(2, 3, 2)
    assert all(not g.any() for g in model.gradients().values())
    out, (h, c) = model(np.ones((3, 2, 2)))
    (out.sum() + h.sum() + c.sum()).backward()
    gradients = model.gradients()
    assert {name: g.shape for name, g in gradients.items()} == parameter_shapes(2, 3, 2)
    assert all(g.any() for g in gradients.values())
    model.zero_grad()
    assert all(not g.any() for g in model.gradients().values())


def test_scalar_lstm_gradients_zero_grad_and_value_inputs():
    rng = np.random.default_rng(3)
    x, (h0, c0) = random_case(rng, 2, 2, 1, steps=3, batch=2)
    model = ScalarLSTM(2, 2)
    leaves = [values(a) for a in (x, h0, c0)]
    out, (h, c) = model(leaves[0], (leaves[1], leaves[2]))
    assert out.dtype == object and out.shape == (3, 2, 2) and h.shape == c.shape == (1, 2, 2)
    assert all(isinstance(v, Value) for v in out.flat)
    d_out = rng.standard_normal(out.shape)
    loss = sum((node * float(w) for node, w in zip(out.flat, d_out.flat)), Value(0.0))
    loss.backward()
    _, _, cache = hand.forward(model.state_dict(), x, (h0, c0))
    expected = hand.backward(cache, d_out)
    got = {**model.gradients(), **{name: grads_of(nodes) for name, nodes in zip(("x", "h0", "c0"), leaves)}}
    for name, gradient in expected.items():
        np.testing.assert_allclose(got[name], gradient, rtol=1e-9, atol=1e-12, err_msg=name)
    model.zero_grad()
    assert all(not g.any() for g in model.gradients().values())


def test_scalar_lstm_numbers_become_labelled_constants():
    model = ScalarLSTM(2, 2)
    out, _ = model(np.ones((2, 1, 2)))
    leaves = [node for node in topological_order(out[1, 0, 0]) if node.op is None]
    inputs = [node for node in leaves if isinstance(node, Constant) and node.label.startswith("x")]
    # x by step, from t=1, and element [b, i]
    assert {node.label for node in inputs} == {"x[t=1][0,0]", "x[t=1][0,1]", "x[t=2][0,0]", "x[t=2][0,1]"}
    assert {"h0[0,0,1]", "c0[0,0,1]"} <= {node.label for node in leaves}


# --- errors for bad inputs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("model", [LSTM(3, 4, 2), ScalarLSTM(3, 4, 2)], ids=["LSTM", "ScalarLSTM"])
def test_bad_inputs_raise_clear_errors(model):
    name = type(model).__name__
    good = np.zeros((5, 2, 3))
    with pytest.raises(ValueError, match=rf"{name}: x must have shape \(T, B, 3\), sequence first; got 2"):
        model(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="got 4 dimensions"):
        model(np.zeros((5, 2, 3, 1)))
    with pytest.raises(ValueError, match=r"x has 2 features per step \(shape \(5, 2, 2\)\), expected "
                                         r"input_size=3"):
        model(np.zeros((5, 2, 2)))
    with pytest.raises(ValueError, match="at least one time step"):
        model(np.zeros((0, 2, 3)))
    with pytest.raises(ValueError, match=r"h0 has shape \(2, 3, 4\), expected "
                                         r"\(num_layers, batch, hidden_size\) = \(2, 2, 4\)"):
        model(good, (np.zeros((2, 3, 4)), np.zeros((2, 2, 4))))
    with pytest.raises(ValueError, match=r"c0 has shape \(1, 2, 4\)"):
        model(good, (np.zeros((2, 2, 4)), np.zeros((1, 2, 4))))
    with pytest.raises(TypeError, match="state must be a pair"):
        model(good, np.zeros((2, 2, 4)))
    with pytest.raises(TypeError, match="x must"):
        model("not an array")


def test_inputs_of_the_wrong_kind_are_refused():
    with pytest.raises(TypeError, match="got Values \\(use ScalarLSTM\\)"):
        LSTM(1, 2)(values(np.zeros((2, 1, 1))))
    with pytest.raises(TypeError, match="got a Tensor"):
        ScalarLSTM(1, 2)(Tensor(np.zeros((2, 1, 1))))
    with pytest.raises(TypeError, match="must hold only Values"):
        ScalarLSTM(1, 2)(np.array([[[Value(1.0)]], [["a"]]], dtype=object))
    with pytest.raises(TypeError, match="float64 Tensor that requires grad, but the model is float32"):
        LSTM(1, 2, dtype=np.float32)(Tensor(np.zeros((2, 1, 1)), requires_grad=True))


@pytest.mark.parametrize("sizes", [(0, 2, 1), (2, -1, 1), (2, 2, 0), (2.5, 2, 1), (True, 2, 1)])
def test_bad_sizes_are_refused(sizes):
    for model_type in (LSTM, ScalarLSTM):
        with pytest.raises(ValueError, match="must be a positive integer"):
            model_type(*sizes)


def test_integer_dtype_is_refused():
    with pytest.raises(TypeError, match="dtype must be a float type"):
        LSTM(2, 3, dtype=np.int64)


# --- stages, labels and forks on the graph ------------------------------------------------------------------

STAGES = [gate.stage for gate in GATES] + ["cell state", "hidden state"]


@pytest.mark.parametrize("model", [LSTM(2, 3, 2), ScalarLSTM(2, 3, 2)], ids=["LSTM", "ScalarLSTM"])
def test_every_step_layer_and_stage_is_tagged(model):
    out, (h, c) = model(np.ones((3, 2, 2)))
    root = out.sum() if isinstance(out, Tensor) else sum(out.flat, Value(0.0))
    nodes = topological_order(root)
    stages = {node.stage for node in nodes}
    for t in (1, 2, 3):  # time steps count from 1, as in the equations; layers from 0, as in PyTorch's names
        for layer in range(2):
            for name in STAGES:
                assert (f"t={t}", f"layer {layer}", name) in stages
    if isinstance(model, ScalarLSTM):  # for one sequence, each unit in a stage of its own, so drawings can box them
        one, _ = model(np.ones((3, 1, 2)))
        single = {node.stage for node in topological_order(sum(one.flat, Value(0.0)))}
        assert {("t=3", "layer 1", f"unit {unit}", name) for unit in range(3) for name in STAGES} <= single
    assert not any(stage[:1] in {("t=0",), ("t=4",)} for stage in stages)
    # outside the steps: only making the gate weights, assembling the outputs, and this test's sum
    outside = {node.stage for node in nodes
               if node.op is not None and not (node.stage and node.stage[0].startswith("t="))}
    assert outside <= {("layer 0", "gate weights"), ("layer 1", "gate weights"), ("outputs",), ()}


def test_steps_count_from_one_so_the_cell_state_path_reads_c0_then_c_t1_then_c_t2():
    model = LSTM(2, 3)
    c0 = Tensor(np.ones((1, 2, 3)), requires_grad=True, label="c0")
    out, _ = model(np.ones((2, 2, 2)), (np.zeros((1, 2, 3)), c0))
    edges = consumers(out.sum())
    by_label = {node.label: node for node in edges if node.label}
    assert {"h[t=1]", "h[t=2]", "c[t=1]", "c[t=2]"} <= set(by_label) and "h[t=0]" not in by_label
    first_step_cell = by_label["c[t=1]"]
    # c0 -> (its layer's slice) -> f[t=1] * c_{t-1} in step 1's cell state -> c[t=1] -> f[t=2] * c[t=1] -> c[t=2]
    (piece, _), = edges[c0]
    (product, _), = edges[piece]
    assert product.stage == ("t=1", "layer 0", "cell state")
    assert {consumer.stage for consumer, _ in edges[first_step_cell]} >= {("t=2", "layer 0", "cell state")}


def gate_letter(node) -> str:
    return next(gate.letter for gate in GATES if gate.stage == node.stage[-1])


def test_tensor_lstm_labels_and_forks():
    model = LSTM(2, 3)
    out, _ = model(np.ones((4, 2, 2)), (np.ones((1, 2, 3)), np.ones((1, 2, 3))))
    edges = consumers(out.sum())
    by_label = {node.label: node for node in edges if node.label}
    assert {"h[t=2]", "c[t=2]", "[x, h, 1][t=2]", "z[t=2]", "W", "out"} <= set(by_label)
    gate_letters = {node.label for node in edges if node.stage[-1:] in {(gate.stage,) for gate in GATES}}
    assert {"i[t=2]", "f[t=2]", "g[t=2]", "o[t=2]"} <= gate_letters
    # [x_t, h_{t-1}, 1] goes into one product with the four gates' weights, z_t, which forks into the four
    # gate stages: each takes its own slice there and applies its activation
    gate_input, z = by_label["[x, h, 1][t=2]"], by_label["z[t=2]"]
    assert edges[gate_input] == [(z, 0)]
    assert sorted(consumer.stage for consumer, _ in edges[z]) == sorted(("t=2", "layer 0", gate.stage)
                                                                       for gate in GATES)
    for piece, _ in edges[z]:
        assert piece.op.name == "getitem"
        (activation, _), = edges[piece]
        assert activation.stage == piece.stage and activation.label == f"{gate_letter(piece)}[t=2]"
    # h_{t-1} feeds the next step's four gates (through [x_t, h_{t-1}, 1] and z_t) and the output
    assert {consumer for consumer, _ in edges[by_label["h[t=1]"]] if consumer.stage[0] == "t=2"} == {gate_input}
    # c_t feeds tanh(c_t) and the next step's cell update; h_t feeds the next step and the output
    assert sorted(consumer.stage[-1] for consumer, _ in edges[by_label["c[t=2]"]]) == ["cell state",
                                                                                       "hidden state"]
    assert {consumer.stage[0] for consumer, _ in edges[by_label["c[t=2]"]]} == {"t=2", "t=3"}
    assert {consumer.stage[0] for consumer, _ in edges[by_label["h[t=2]"]]} == {"t=3", "outputs"}


def test_tensor_lstm_gates_get_their_own_rows_of_the_pytorch_weights():
    model = LSTM(2, 3)
    model.load_state_dict({name: np.random.default_rng(1).standard_normal(shape)
                           for name, shape in parameter_shapes(2, 3).items()})
    x = np.random.default_rng(2).standard_normal((1, 4, 2))
    run = model.unroll(x)
    edges = consumers(run.out.sum())
    z = next(node for node in edges if node.label == "z[t=1]")
    p = model.state_dict()
    expected = x[0] @ p["weight_ih_l0"].T + p["bias_ih_l0"] + p["bias_hh_l0"]  # h0 = 0
    for k, gate in enumerate(GATES):  # PyTorch's row blocks, in the order i, f, g, o
        piece = next(node for node, _ in edges[z] if node.stage[-1] == gate.stage)
        np.testing.assert_allclose(piece.data, expected[:, 3 * k:3 * (k + 1)], rtol=1e-12)


def test_scalar_lstm_labels_and_forks():
    model = ScalarLSTM(2, 3, 2)
    out, _ = model(np.ones((3, 1, 2)))
    edges = consumers(sum(out.flat, Value(0.0)))
    labels = {node.label for node in edges if node.label}
    assert {"h[t=1, layer 0][0,2]", "c[t=1, layer 1][0,0]", "i[t=1, layer 0][0,1]", "f[t=2, layer 1][0,1]",
            "g[t=3, layer 0][0,1]", "o[t=2, layer 1][0,1]", "W_ii_l0[0,1]"} <= labels
    h = next(node for node in edges if node.label == "h[t=1, layer 0][0,2]")
    # h_{t-1} fans out into all 4 H gate units of the next step, and into the layer above
    next_step = [consumer for consumer, _ in edges[h] if consumer.stage[:2] == ("t=2", "layer 0")]
    assert {consumer.stage[-1] for consumer in next_step} == {gate.stage for gate in GATES}
    assert {consumer.stage[2] for consumer in next_step} == {"unit 0", "unit 1", "unit 2"}  # each unit a stage
    assert len(next_step) == 4 * 3
    c = next(node for node in edges if node.label == "c[t=1, layer 1][0,0]")
    assert sorted(consumer.stage for consumer, _ in edges[c]) == [("t=1", "layer 1", "unit 0", "hidden state"),
                                                                  ("t=2", "layer 1", "unit 0", "cell state")]


# --- float32 ------------------------------------------------------------------------------------------------

def test_float32_lstm_stays_float32_and_agrees_with_float64():
    rng = np.random.default_rng(2)
    x, state = random_case(rng, 3, 4, 2, steps=8, batch=2)
    single, double = LSTM(3, 4, 2, dtype=np.float32), LSTM(3, 4, 2)
    results = {}
    for model in (single, double):
        out, (h, c) = model(x, state)  # float64 numpy inputs are converted to the model's dtype
        (out.sum() + (h * h).sum() + c.sum()).backward()
        results[model.dtype] = (out, h, c, model.gradients())
    out, h, c, gradients = results[np.dtype(np.float32)]
    assert out.dtype == h.dtype == c.dtype == np.float32
    assert all(g.dtype == np.float32 for g in gradients.values())
    assert all(p.dtype == np.float32 for p in single.parameters())
    reference = results[np.dtype(np.float64)]
    for got, expected in zip((out.data, h.data, c.data), reference[:3]):
        np.testing.assert_allclose(got, expected.data, rtol=1e-5, atol=1e-6)
    for name, g in gradients.items():
        np.testing.assert_allclose(g, reference[3][name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_float32_differentiable_inputs_get_float32_gradients():
    model = LSTM(2, 3, dtype=np.float32)
    x = Tensor(np.ones((3, 2, 2)), requires_grad=True, dtype=np.float32)
    out, _ = model(x)
    out.sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.shape == (3, 2, 2)


def test_every_stage_has_its_stable_name_in_both_models_in_explain_and_in_drawings():
    x = np.random.default_rng(0).standard_normal((2, 1, 2))
    tensor_out, _ = LSTM(2, 2, num_layers=2)(x)
    tensor_labels = {node.label for node in consumers(tensor_out.sum()) if node.label}
    names = {params.step_name(kind, t, layer, 2) for kind in params.STEP_NODES for t in (1, 2) for layer in (0, 1)}
    assert names <= tensor_labels
    scalar_out, _ = ScalarLSTM(2, 2, num_layers=2)(x)
    scalar_root = sum(scalar_out.flat, Value(0.0))
    scalar_labels = {node.label for node in consumers(scalar_root) if node.label}
    assert {f"{name}[0,{j}]" for name in names for j in (0, 1)} <= scalar_labels
    assert {"x[t=1][0,1]", "x[t=2][0,0]"} <= scalar_labels

    tiny_out, _ = ScalarLSTM(1, 1)(np.array([[[0.5]], [[-1.0]]]))
    text = str(explain(tiny_out[-1, 0, 0], max_steps=None))
    assert "tanh_c[t=2][0,0] = tanh(c[t=2][0,0])" in text
    assert "f[t=1][0,0] = sigmoid(z_f[t=1][0,0])" in text and "/dz_f[t=1][0,0] = " in text
    source = draw(tensor_out[-1].sum(), view="backward", collapse=None).source
    assert "z_f[t=2, layer 1]" in source and "tanh_c[t=1, layer 0]" in source
