"""The probe: the step-by-step unroll gives Keras's outputs, the cell's equations, and ∂L/∂h_t.

∂L/∂h_t is checked against Keras's own loop: L as a function of h_t is the
rest of the sequence run from the state (h_t, c_t), so its gradient with
respect to the initial state is ∂L/∂h_t.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard_events import Events

import rnnzoo
from rnnzoo.tensorboard import RecurrentTensorBoard
from rnnzoo.tensorboard.probe import probe, probe_loss, recording, recurrent_layers


def assert_same_outputs(model, inputs):
    expected = keras.ops.convert_to_numpy(model(inputs))
    with recording(model) as recorders:
        actual = keras.ops.convert_to_numpy(model(inputs))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    return recorders


def test_unroll_gives_the_same_outputs_in_a_sequential_stack(rng):
    model = keras.Sequential(
        [
            keras.Input((9,), dtype="int32"),
            keras.layers.Embedding(5, 4),
            # Named: Keras numbers default names by how many layers the process made.
            rnnzoo.layers.PeepholeLSTM(6, return_sequences=True, name="peephole_lstm"),
            rnnzoo.layers.CoupledLSTM(5, return_sequences=True, name="coupled_lstm"),
            rnnzoo.layers.GRU(4, reset_after=False, name="gru"),
            keras.layers.Dense(2),
        ]
    )
    recorders = assert_same_outputs(model, rng.integers(0, 5, (3, 9)))
    assert [(r.name, r.gate_names) for r in recorders] == [
        ("peephole_lstm", ("i", "f", "g", "o")),
        ("coupled_lstm", ("f", "g", "o")),
        ("gru", ("z", "r", "n")),
    ]
    assert "call" not in model.layers[1].__dict__  # the layer's own call is back


def test_unroll_handles_bidirectional_masks_states_and_go_backwards(rng):
    ids = keras.Input((7,), dtype="int32")
    embedded = keras.layers.Embedding(6, 4, mask_zero=True)(ids)
    both = keras.layers.Bidirectional(rnnzoo.layers.LSTM(3, return_sequences=True))(embedded)
    output, h = rnnzoo.layers.VanillaRNN(4, go_backwards=True, return_state=True)(both)
    model = keras.Model(ids, keras.layers.Concatenate()([output, h]))
    x = rng.integers(1, 6, (3, 7))
    x[0, 4:] = 0  # padded: masked steps keep the state
    recorders = assert_same_outputs(model, x)
    assert len(recorders) == 3
    traces, _ = probe(model, x)
    backward = traces[1]
    assert backward.states["h"].shape == (3, 7, 3)
    # Records are in input order: the backward layer's state at t=0 is its last step.
    assert np.allclose(
        backward.states["h"][1, 0],
        keras.ops.convert_to_numpy(keras.Model(ids, model.layers[2].output)(x))[1, 0, 3:],
        atol=1e-6,
    )


def test_states_and_gates_follow_the_lstm_equations(rng):
    layer = rnnzoo.layers.LSTM(5, return_sequences=True)
    model = keras.Sequential([keras.Input((6, 3)), layer])
    x = rng.normal(size=(2, 6, 3)).astype("float32")
    (trace,), _ = probe(model, x)
    h, c, g = trace.states["h"], trace.states["c"], trace.gates
    np.testing.assert_allclose(h, keras.ops.convert_to_numpy(model(x)), atol=1e-6)
    c_prev = np.concatenate([np.zeros((2, 1, 5)), c[:, :-1]], axis=1)
    np.testing.assert_allclose(c, g["f"] * c_prev + g["i"] * g["g"], atol=1e-6)
    np.testing.assert_allclose(h, g["o"] * np.tanh(c), atol=1e-6)


@pytest.mark.parametrize("cell", ["vanilla", "lstm", "gru"])
def test_gradient_norms_equal_backprop_through_keras_loop(rng, cell):
    """‖∂L/∂h_t‖ = ‖∂/∂h L(rest of the sequence from state (h_t, c_t))‖, with Keras's RNN loop."""
    steps, units = 8, 4
    keras.utils.set_random_seed(2)
    layer = rnnzoo.layers.get(cell)(units, return_state=True)
    dense = keras.layers.Dense(1)
    inputs = keras.Input((steps, 3))
    output, *_ = layer(inputs)
    model = keras.Model(inputs, dense(output))
    model.compile(loss="mse")
    x = rng.normal(size=(3, steps, 3)).astype("float32")
    y = rng.normal(size=(3, 1)).astype("float32")
    (trace,), loss = probe(model, x, y)
    assert loss == pytest.approx(
        float(keras.losses.mean_squared_error(y, model(x)).numpy().mean()), rel=1e-5
    )
    for t in (0, 3, steps - 2, steps - 1):
        _, *states = layer(x[:, : t + 1])
        states = [tf.constant(s) for s in states]
        with tf.GradientTape() as tape:
            tape.watch(states[0])
            rest = layer(x[:, t + 1 :], initial_state=states)[0] if t < steps - 1 else states[0]
            value = tf.reduce_mean(keras.losses.mean_squared_error(y, dense(rest)))
        expected = float(tf.norm(tape.gradient(value, states[0])))
        assert trace.gradient_norms[t] == pytest.approx(expected, rel=1e-4), t


def test_loss_at_last_uses_only_the_last_step(rng):
    model = keras.Sequential(
        [keras.Input((5, 2)), rnnzoo.layers.GRU(3, return_sequences=True), keras.layers.Dense(4)]
    )
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = rng.normal(size=(2, 5, 2)).astype("float32")
    y = rng.integers(0, 4, (2, 5))
    predictions = model(x)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    (last,), last_loss = probe(model, x, y, loss_at="last")
    (every,), every_loss = probe(model, x, y, loss_at="every")
    assert last_loss == pytest.approx(float(loss_fn(y[:, -1], predictions[:, -1])), rel=1e-5)
    assert every_loss == pytest.approx(float(loss_fn(y, predictions)), rel=1e-5)
    # With the loss at the last step only, the last step's state gets the largest gradient;
    # with a loss at every step, every step has its own.
    assert last.gradient_norms.argmax() == 4
    assert np.all(every.gradient_norms > 0.1 * every.gradient_norms.max())
    with pytest.raises(ValueError, match="loss_at"):
        probe_loss(loss_fn, y, predictions, loss_at="first")


def test_graph_loop_and_eager_loop_record_the_same_steps(rng):
    """Out of training the probe runs its loop as one graph; in training (dropout masks) eagerly."""
    ids = keras.Input((12,), dtype="int32")
    embedded = keras.layers.Embedding(7, 4, mask_zero=True)(ids)
    hidden = rnnzoo.layers.PeepholeLSTM(5, return_sequences=True)(embedded)
    hidden = keras.layers.Bidirectional(rnnzoo.layers.GRU(3, return_sequences=True))(hidden)
    model = keras.Model(ids, keras.layers.Dense(7)(hidden))
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = rng.integers(1, 7, (3, 12))
    x[1, 8:] = 0
    graph, graph_loss = probe(model, x, x, loss_at="every")
    eager, eager_loss = probe(model, x, x, loss_at="every", training=True)  # no dropout here
    assert graph_loss == pytest.approx(eager_loss, rel=1e-6)
    for g, e in zip(graph, eager, strict=True):
        assert g.name == e.name and set(g.gates) == set(e.gates) == set(g.gate_names)
        for name in g.states:
            np.testing.assert_allclose(g.states[name], e.states[name], atol=1e-6)
        for name in g.gates:
            np.testing.assert_allclose(g.gates[name], e.gates[name], atol=1e-6)
        np.testing.assert_allclose(g.gradient_norms, e.gradient_norms, rtol=1e-5, atol=1e-9)
    # Sequence 1's masked steps carry its state through (forwards) or leave it at zero (backwards).
    h = graph[0].states["h"][1]
    np.testing.assert_array_equal(h[8:], h[7:8].repeat(4, 0))
    assert graph[2].name.startswith("backward") and not graph[2].states["h"][1, 8:].any()


def test_training_probe_draws_one_dropout_mask_per_sequence():
    layer = rnnzoo.layers.VanillaRNN(6, dropout=0.5, return_sequences=True)
    model = keras.Sequential([keras.Input((5, 4)), layer])
    # No recurrence: h_t = tanh(dropout(x_t) W + b), so with the same x at every
    # step, one mask for the sequence gives the same h at every step.
    layer.cell.recurrent_kernel.assign(np.zeros((6, 6), "float32"))
    x = np.ones((2, 5, 4), "float32")
    (off,), _ = probe(model, x)
    (on,), _ = probe(model, x, training=True)
    (again,), _ = probe(model, x, training=True)
    assert not np.allclose(off.states["h"], on.states["h"])  # dropout is on
    np.testing.assert_allclose(on.states["h"], on.states["h"][:, :1].repeat(5, 1), atol=1e-6)
    assert not np.allclose(on.states["h"], again.states["h"])  # a new mask per call


class ScaledTanhCell(keras.layers.Layer):
    """Not an rnnzoo cell: h_t = a_t * tanh(x_t W + h_{t-1}), with a gate a_t = sigmoid(x_t V)."""

    gate_names = ("a",)
    state_size = 2
    output_size = 2

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], 2))
        self.v = self.add_weight(shape=(input_shape[-1], 2))

    def step(self, inputs, states, training=False):
        a = keras.ops.sigmoid(inputs @ self.v)
        h = a * keras.ops.tanh(inputs @ self.w + states[0])
        return h, [h], {"a": a}

    def call(self, inputs, states, training=False):
        output, new_states, _ = self.step(inputs, states)
        return output, new_states


def test_layers_are_found_by_asking_the_cell_not_by_class(rng):
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    custom = keras.Sequential(
        [keras.Input((4, 3)), keras.layers.RNN(ScaledTanhCell(), return_sequences=True)]
    )
    recorders = assert_same_outputs(custom, x)
    assert recorders[0].gate_names == ("a",)
    plain = keras.Sequential([keras.Input((4, 3)), keras.layers.SimpleRNN(2)])
    assert recurrent_layers(plain) == []
    with pytest.raises(ValueError, match="rnnzoo.layers"):
        probe(plain, x)


def test_stateful_layers_keep_their_carried_states(rng):
    model = rnnzoo.models.build_char_lm(11, units=6, num_layers=1, stateful=True, batch_size=3)
    x = rng.integers(0, 11, (3, 5))
    model(x)  # carries a state
    carried = [s.numpy().copy() for s in model.get_layer("rnn_1").states]
    traces, _ = probe(model, x[:2])
    assert traces[0].states["h"].shape == (2, 5, 6)
    for before, after in zip(carried, model.get_layer("rnn_1").states):
        np.testing.assert_array_equal(before, after.numpy())


def test_tanh_rnn_gradient_vanishes_and_lstm_holds_in_tensorboard(tmp_path, rng):
    """The lecture's picture, read back from the event files: 100 steps, loss at the last.

    A tanh RNN with recurrent matrix of spectral norm 0.8: each step multiplies
    ∂L/∂h by diag(1 - h²) Uᵀ, so ‖∂L/∂h_0‖ / ‖∂L/∂h_99‖ <= 0.8^99. An LSTM whose
    forget gates are open (bias 5, f ≈ 0.99) carries it along c.
    """
    steps, units = 100, 16
    x = rng.uniform(0, 1, (4, steps, 2)).astype("float32")
    y = np.zeros((4, 1), "float32")
    ratios, curves = {}, {}
    layers = {
        "vanilla": lambda: rnnzoo.layers.VanillaRNN(
            units, recurrent_initializer=keras.initializers.Orthogonal(gain=0.8), name="rnn"
        ),
        "lstm": lambda: rnnzoo.layers.LSTM(units, name="rnn"),
    }
    for name, make_layer in layers.items():
        # Seeded before the layer is made: its initializers draw their seeds when made,
        # so the weights (and the LSTM's ratio) would otherwise depend on the tests before.
        keras.utils.set_random_seed(0)
        layer = make_layer()
        model = keras.Sequential([keras.Input((steps, 2)), layer, keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(0.0), "mse")
        if name == "lstm":
            bias = layer.cell.bias.numpy()
            bias[units : 2 * units] = 5.0
            layer.cell.bias.assign(bias)
        callback = RecurrentTensorBoard(
            tmp_path / name,
            probe_data=(x, y),
            scalars_every=0,
            histograms_every=0,
            gradient_over_time_every=1,
            gates_every=0,
            activations_every=0,
        )
        model.fit(x, y, epochs=1, batch_size=4, callbacks=[callback], verbose=0)
        callback.close()
        events = Events(tmp_path / name)
        ((_, ratios[name]),) = events.scalars("gradient_over_time/rnn/log10_first_over_last")
        ((_, curves[name]),) = events.images("gradient_over_time/rnn/curve")
    assert ratios["vanilla"] <= 99 * np.log10(0.8) + 1e-3  # provable bound
    assert ratios["lstm"] > -2.0
    assert ratios["lstm"] - ratios["vanilla"] > 7  # orders of magnitude apart
    assert curves["vanilla"].shape == curves["lstm"].shape
    assert np.mean(curves["vanilla"] != curves["lstm"]) > 0.005  # the pictures differ
