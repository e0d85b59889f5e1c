"""The LSTM with a recurrent projection layer (LSTMP; Sak, Senior & Beaufays 2014)."""

import keras
from keras import constraints, initializers, ops, regularizers

from rnnzoo.cells.base import check_units
from rnnzoo.cells.derivatives import LSTMDerivative, StepDerivative
from rnnzoo.cells.lstm import LSTMCell


class LSTMPDerivative(StepDerivative):
    """`LSTMPCell`'s step: the LSTM's derivative (`LSTMDerivative`) behind the projection
    h_t = m_t P, with m_t = o_t * tanh(c_t):

        dm = dh P^T,  dP = m^T dh   (summed over the batch: P is a matrix)

    It saves the LSTM's tensors and m_t.
    """

    per_row_parameter_gradients = False  # a (units, projection_units) share per row is too big

    def __init__(self, cell):
        super().__init__(cell)
        self.lstm = LSTMDerivative(cell)
        self.saved_names = (*self.lstm.saved_names, "m")

    @property
    def supported(self):
        return self.lstm.supported

    def saved_widths(self):
        return [*self.lstm.saved_widths(), self.cell.units]

    def forward(self, z, states, parameters):
        # The cell's `pointwise`, op for op, keeping m_t.
        (m, c), gates = LSTMCell.pointwise(self.cell, z, states, [])
        saved = self.lstm.save(z, states, [m, c], gates, [])
        return [ops.matmul(m, parameters[0]), c], [*saved, m]

    def backward(self, saved, d_states, parameters, side_by_side=None):
        (projection_kernel,), m = parameters, saved[-1]
        d_h, d_c = d_states
        d_m = ops.matmul(d_h, ops.transpose(projection_kernel))
        d_z, d_prev, _ = self.lstm.backward(saved[:-1], [d_m, d_c], [], side_by_side)
        return d_z, d_prev, [ops.matmul(ops.transpose(m), d_h)]


@keras.saving.register_keras_serializable(package="rnnzoo")
class LSTMPCell(LSTMCell):
    r"""LSTM whose output is projected to fewer units (Sak et al. 2014; PyTorch's `proj_size`).

    Equations, with c_t of `units` and h_t of `projection_units`:

        [z_i, z_f, z_g, z_o] = x_t W + h_{t-1} U + b
        i_t = sigmoid(z_i),  f_t = sigmoid(z_f),  g_t = tanh(z_g),  o_t = sigmoid(z_o)
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = (o_t * tanh(c_t)) P

    The recurrence runs through the projected h_t, so U reads projection_units
    features: a 4 units x units recurrent matrix becomes 4 units x
    projection_units plus P's units x projection_units, fewer weights when
    projection_units < units / 2 (Sak et al.'s reason for it), and the output
    is projection_units wide.

    Weights: `kernel` W (input_dim, 4 units), `recurrent_kernel` U
    (projection_units, 4 units), `bias` b (4 units,), gate blocks i, f, g, o
    as Keras's LSTM, and `projection_kernel` P (units, projection_units).
    From `torch.nn.LSTM(input_size, units, proj_size=projection_units)`:
    W = weight_ih.T, U = weight_hh.T, b = bias_ih + bias_hh, P = weight_hr.T.
    States: h (projection_units,) and c (units,). The step is projection then
    pointwise (the product by P is part of `pointwise`), so the layer runs it
    on the fast loop.

    Args:
        units: Positive int, size of the cell c_t.
        projection_units: Positive int, size of h_t and of the output (default
            None: `units`, a square projection).
        projection_initializer: Initializer of P (default glorot_uniform).
        projection_regularizer, projection_constraint: For P.
        See `LSTMCell` for the other arguments.
    """

    names = ("lstmp",)
    step_derivative = LSTMPDerivative
    seeded_initializers = LSTMCell.seeded_initializers + ("projection_initializer",)

    def __init__(
        self,
        units,
        projection_units=None,
        projection_initializer="glorot_uniform",
        projection_regularizer=None,
        projection_constraint=None,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.projection_units = (
            self.units
            if projection_units is None
            else check_units(projection_units, "projection_units")
        )
        self.projection_initializer = initializers.get(projection_initializer)
        self.projection_regularizer = regularizers.get(projection_regularizer)
        self.projection_constraint = constraints.get(projection_constraint)

    def state_widths(self):
        return [self.projection_units, self.units]

    def build(self, input_shape):
        super().build(input_shape)  # U reads h: (projection_units, 4 units)
        self.projection_kernel = self.add_weight(
            shape=(self.units, self.projection_units),
            name="projection_kernel",
            initializer=self.projection_initializer,
            regularizer=self.projection_regularizer,
            constraint=self.projection_constraint,
        )

    def pointwise_parameters(self):
        return [self.projection_kernel]

    def pointwise(self, z, states, parameters):
        (projection_kernel,) = parameters
        (h, c), gates = super().pointwise(z, states, [])  # the LSTM's step, h = o * tanh(c)
        return [ops.matmul(h, projection_kernel), c], gates

    def get_config(self):
        config = super().get_config()
        config["projection_units"] = self.projection_units
        config["projection_initializer"] = initializers.serialize(self.projection_initializer)
        config["projection_regularizer"] = regularizers.serialize(self.projection_regularizer)
        config["projection_constraint"] = constraints.serialize(self.projection_constraint)
        return config
