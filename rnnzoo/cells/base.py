"""What every rnnzoo cell shares: the Keras cell contract, done once.

A cell computes one time step. `keras.layers.RNN` (or an rnnzoo layer) runs the
loop. The contract, as written in the docstring of `keras.layers.RNN`:

- `state_size`: an int, or a list of ints (one per state tensor);
- `output_size`: an int;
- `call(inputs, states, training=False)` -> `(output, new_states)`;
- `get_initial_state(batch_size)` -> list of zero tensors.

`RecurrentCell` adds two things the zoo's tools rely on:

- `gate_names`: the names of the cell's gates, in the order of its fused
  weights (for example `("i", "f", "g", "o")` for the LSTM);
- `step(inputs, states, training=False)` -> `(output, new_states, gates)`:
  the same step as `call`, plus a dict of gate activations by name, so
  TensorBoard code can look inside any cell without knowing its class.

A cell is declared once, in its class: everything else is derived from it.

- `names`: the `rnnzoo.cells.get` names of the class. Declaring them
  registers the class (`rnnzoo.cells.names()`), and `rnnzoo.layers` derives
  its layer (`LSTMCell` -> `rnnzoo.layers.LSTM`).
- `gate_names`, `state_names`, `num_gates` (blocks of `units` in the fused
  weights), and `build` for any weights beyond `kernel`, `recurrent_kernel`
  and `bias`.
- `pointwise(z, states, parameters)`: the step after its matmuls, written as
  the equations read. `step` is then always the same three lines: dropout,
  the projection z_t = x_t W + h_{t-1} U + b (`project`), `pointwise`.
- `step_derivative` (optional): a hand-written derivative of `pointwise`
  (see `rnnzoo.cells.derivatives`), which the layers' fast loop uses instead
  of differentiating `pointwise` automatically.
- `seeded_initializers`: the initializer arguments a model's seed seeds
  (`rnnzoo.models`), and `forms`: other argument sets that change the
  equations (the tests run every form).
"""

import inspect
import itertools
import numbers

import keras
from keras import activations, constraints, initializers, ops, regularizers

# `keras.layers.RNN` builds the per-sequence dropout masks before its loop only
# for cells that derive from this mixin (see `RNN._maybe_config_dropout_masks`),
# and it is not exported publicly. Deriving from it is what makes dropout
# masks "one per sequence" under every backend.
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell


def at_least_float32(dtype):
    """float32 for a half-precision dtype (float16, bfloat16), else the dtype itself: what
    statistics and long products are computed in under mixed precision."""
    dtype = keras.backend.standardize_dtype(dtype)
    return "float32" if dtype in ("float16", "bfloat16") else dtype


def check_units(units, name="units"):
    """Return `units` as an int if it is a positive integer (numpy's too); raise otherwise."""
    if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units <= 0:
        raise ValueError(f"Expected `{name}` to be a positive integer, received {name}={units!r}.")
    return int(units)


def check_rate(name, rate):
    """Return a dropout rate as a float if it lies in [0, 1); raise a ValueError otherwise."""
    try:
        value = float(rate)
    except (TypeError, ValueError):
        value = float("nan")  # not a number: fails the range check below
    if not 0.0 <= value < 1.0:
        raise ValueError(f"Expected `{name}` to be a fraction in [0, 1), received {name}={rate!r}.")
    return value


def cell_arguments(cell_class):
    """The keyword arguments `cell_class` takes besides `units`, name -> keyword-only Parameter.

    The base cell's first, then each subclass's own; a subclass's default replaces its
    base's, in the base's place; `fixed_arguments` (set by the cell itself) left out.
    """
    arguments = {}
    for owner in reversed(cell_class.__mro__):
        if not (issubclass(owner, RecurrentCell) and "__init__" in vars(owner)):
            continue
        for parameter in inspect.signature(owner.__init__).parameters.values():
            if parameter.name in ("self", "units", *cell_class.fixed_arguments) or (
                parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
            ):
                continue
            arguments[parameter.name] = parameter.replace(kind=parameter.KEYWORD_ONLY)
    return arguments


# Keras's cells, whose positional arguments the zoo's cells take in the same order.
KERAS_CELLS = (keras.layers.LSTMCell, keras.layers.GRUCell, keras.layers.SimpleRNNCell)


def keras_order(arguments, counterparts):
    """`arguments` (name -> Parameter) in Keras's order: the longest leading run of one of the
    Keras classes `counterparts`' arguments after `units` that all are in `arguments`, in
    Keras's order and positional-or-keyword, then the others keyword-only, in their order.

    So a zoo class takes by position what its Keras counterpart does, with Keras's meaning:
    `LSTMCell(4, "relu", "hard_sigmoid", False)` sets `use_bias=False` as Keras's does.
    """
    run = []
    for counterpart in counterparts:
        names = list(inspect.signature(counterpart).parameters)[1:]  # after units
        leading = list(itertools.takewhile(lambda name: name in arguments, names))
        run = leading if len(leading) > len(run) else run
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    ordered = {name: arguments[name].replace(kind=positional) for name in run}
    rest = {name: parameter for name, parameter in arguments.items() if name not in ordered}
    return {**ordered, **rest}


def positional_as_keywords(klass, args, kwargs):
    """`kwargs` with `args`, the positional arguments after `units`, named as
    `klass.__signature__` orders them (see `keras_order`)."""
    names = [
        name
        for name, parameter in inspect.signature(klass).parameters.items()
        if parameter.kind is parameter.POSITIONAL_OR_KEYWORD
    ][1:]
    if len(args) > len(names):
        taken = "only units by position"
        if names:
            taken = (
                f"units and at most {len(names)} more arguments by position, in Keras's order "
                f"({', '.join(names[:3])}, ...)"
            )
        raise TypeError(
            f"{klass.__name__}() takes {taken}; received {len(args)} more: pass the rest by "
            "keyword."
        )
    for name, value in zip(names, args):
        if name in kwargs:
            raise TypeError(f"{klass.__name__}() got multiple values for argument {name!r}.")
        kwargs[name] = value
    return kwargs


def _keras_positionals(init, signature):
    """`init`, taking the positional arguments after `units` as `signature` (the class's
    shown one) orders them, and showing it (Keras's `Operation.__new__` binds by it)."""

    def __init__(self, units, *args, **kwargs):
        if args:
            kwargs = positional_as_keywords(type(self), args, kwargs)
        init(self, units, **kwargs)

    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(__init__, attribute, getattr(init, attribute))
    self = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    __init__.__signature__ = signature.replace(parameters=[self, *signature.parameters.values()])
    return __init__


class RecurrentCell(keras.layers.Layer, DropoutRNNCell):
    """Base class of the zoo's cells: arguments, weights and dropout plumbing.

    Subclasses set `names`, `gate_names`, `num_gates` (how many blocks of
    `units` the fused `kernel` holds) and `state_names`, and implement
    `pointwise` (see the module docstring).

    Args:
        units: Positive int, dimensionality of the hidden state.
        activation: Activation of the candidate / hidden state.
        use_bias: Whether the cell has a bias vector.
        kernel_initializer, recurrent_initializer, bias_initializer:
            Initializers of the input weights `kernel`, the recurrent weights
            `recurrent_kernel` and `bias`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer:
            Regularizers of the same three weights.
        kernel_constraint, recurrent_constraint, bias_constraint:
            Constraints of the same three weights.
        dropout: Fraction of the inputs dropped, one mask per sequence.
        recurrent_dropout: Fraction of the previous hidden state dropped, one
            mask per sequence.
        seed: Seed of the dropout masks.
        **kwargs: Base layer arguments (`name`, `dtype`, `trainable`).
    """

    # The names `rnnzoo.cells.get` knows this class by; declaring them registers it.
    names = ()
    gate_names = ()
    num_gates = 1
    state_names = ("h",)
    # How `pointwise` reads the projections: "sum", z_t = x_t W + h_{t-1} U + b; or
    # "pair", (x_t W + b_x, h_{t-1} U + b_h) (the GRU's reset gate scales the second).
    projection = "sum"
    # A hand-written derivative of `pointwise` for the fast loop (a
    # `rnnzoo.cells.derivatives.StepDerivative` subclass), or None: the loop
    # then differentiates `pointwise` itself.
    step_derivative = None
    # The initializer arguments a model's seed seeds, in the order seeds are drawn.
    seeded_initializers = ("kernel_initializer", "recurrent_initializer")
    # Other argument sets that change the cell's equations, by name; the tests run each.
    forms = {}
    # Arguments of a base class that this cell sets itself, so does not take.
    fixed_arguments = ()
    # The Keras backend routine (`keras.src.backend.lstm` or `gru`) that computes this
    # class's `pointwise` with its weights, on cuDNN: "lstm", "gru" or None.
    cudnn = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # What help(), IDEs and `inspect.signature(cls)` show: every argument the cell takes
        # (a subclass's `__init__` names only its own and passes the rest on in **kwargs),
        # by position as far as Keras's cells take them. A cell of the zoo's takes them so;
        # a user's class with its own `__init__` binds positional arguments as it says.
        arguments = cell_arguments(cls)
        own_init = cls.__dict__.get("__init__")
        keras_like = own_init is None or cls.__module__.startswith("rnnzoo.")
        if keras_like:
            arguments = keras_order(arguments, KERAS_CELLS)
        cls.__signature__ = inspect.Signature(
            [
                inspect.Parameter("units", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                *arguments.values(),
                inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
            ]
        )
        if keras_like and own_init is not None:
            cls.__init__ = _keras_positionals(own_init, cls.__signature__)
        if cls.__dict__.get("names"):
            from rnnzoo.cells import registry

            registry.register(cls)

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        units = check_units(units)
        super().__init__(**kwargs)
        self.units = units
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = check_rate("dropout", dropout)
        self.recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)

    # ----------------------------------------------------------------- contract
    @property
    def state_size(self):
        widths = self.state_widths()
        return widths[0] if len(widths) == 1 else widths

    def state_widths(self):
        """The width of each state, in the order of `state_names` (default: `units` each)."""
        return [self.units] * len(self.state_names)

    @property
    def output_size(self):
        return self.state_widths()[0]  # the output is the new h

    def get_initial_state(self, batch_size=None):
        return [
            ops.zeros((batch_size, width), dtype=self.compute_dtype)
            for width in self.state_widths()
        ]

    def call(self, inputs, states, training=False):
        output, new_states, _ = self.step(inputs, states, training=training)
        if not isinstance(states, (list, tuple)):
            new_states = new_states[0]  # a single tensor in, a single tensor out (Keras)
        return output, new_states

    def step(self, inputs, states, training=False):
        """One time step: returns `(output, new_states, gates)`.

        Dropout, the projection z_t = x_t W + h_{t-1} U + b, then `pointwise`.
        Only h_{t-1} is dropped where it enters the matmul: a state carried
        into `pointwise` (an LSTM's c, the GRU's h in its last line) is whole.
        """
        states = self.check_states(states)
        x, h_prev = self.dropped(inputs, states[0], training)
        z = self.project(x, h_prev)
        parameters = self.pointwise_parameters()
        if training and self.recurrent_dropout > 0:  # the mask `dropped` applied
            mask = self.get_recurrent_dropout_mask(states[0])
            parameters = [*parameters, *self.recurrent_dropout_parameters(mask)]
        new_states, gates = self.pointwise(z, states, parameters)
        return new_states[0], new_states, gates

    def pointwise(self, z, states, parameters):
        """The step after its matmuls: `(z, states, parameters)` -> `(new_states, gates)`.

        `z` is what `project` returns, `states` the previous states (h first),
        `parameters` what `pointwise_parameters` returns; `gates` maps each of
        `gate_names` to its activation. The output is the new h, `new_states[0]`.
        """
        raise NotImplementedError

    def pointwise_parameters(self):
        """Weights `pointwise` reads besides z (peepholes, ...): a list, passed in as tensors."""
        return []

    def derivative(self):
        """The `StepDerivative` of this cell's `pointwise`: the hand-written one where
        the class declares it, `pointwise` is the one it differentiates and it is used on
        this Keras backend (its `backends`), else one that differentiates `pointwise`
        automatically."""
        from rnnzoo.cells import derivatives

        # The class that declared the derivative: a subclass that rewrites
        # `pointwise` no longer matches it.
        declaring = next(
            (k for k in type(self).__mro__ if k.__dict__.get("step_derivative") is not None),
            None,
        )
        if declaring is not None and type(self).pointwise is declaring.pointwise:
            derivative = declaring.step_derivative(self)
            backends = derivative.backends
            if derivative.supported and (backends is None or keras.backend.backend() in backends):
                return derivative
        return derivatives.AutomaticDerivative(self)

    def cudnn_routine(self):
        """`cudnn` of the class that declared it, if this cell's `pointwise` is still that
        class's (a subclass that rewrites its equations can't run on cuDNN); else None."""
        declaring = next(
            (k for k in type(self).__mro__ if k.__dict__.get("cudnn") is not None), None
        )
        if declaring is not None and type(self).pointwise is declaring.pointwise:
            return declaring.cudnn
        return None

    def recurrent_dropout_parameters(self, mask):
        """What `pointwise` reads besides `pointwise_parameters` under recurrent dropout in
        training, given the sequence's mask of h_{t-1} (batch, units): a list, default none
        (h_{t-1} is dropped where it enters h_{t-1} U, before `pointwise`). A cell whose
        pointwise maths reads h_{t-1} in a matmul of its own takes the mask here."""
        return []

    def pointwise_step_reason(self):
        """Why this cell's step is not `project` then `pointwise` (so no fast loop), or None."""
        klass = type(self)
        for method in ("step", "project"):
            if getattr(klass, method) is not getattr(RecurrentCell, method):
                return f"{klass.__name__} rewrites `{method}`, which the fast loop would skip"
        return None

    # ------------------------------------------------------------------ weights
    def build(self, input_shape):
        input_dim = self._input_features(input_shape)
        self._build_fused_weights(input_dim, bias_shape=(self.num_gates * self.units,))

    def _input_features(self, input_shape):
        """The number of features of one time step's inputs, shaped (batch_size, features).

        `keras.layers.RNN` builds its cell with the shape of one step, so any
        other rank means the sequences were not (batch_size, time, features).
        """
        if len(input_shape) != 2:
            raise ValueError(
                f"{type(self).__name__} expects sequences of shape (batch_size, time, "
                f"features), i.e. steps of shape (batch_size, features); received steps "
                f"of shape {tuple(input_shape)}, i.e. sequences of rank {len(input_shape) + 1}. "
                "Reshape the sequences to 3 dimensions."
            )
        if input_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} needs the last dimension of its inputs "
                "(the number of features) to be known; received None."
            )
        return input_shape[-1]

    def _build_fused_weights(self, input_dim, bias_shape):
        """`kernel` (I, n*H), `recurrent_kernel` (width of h, n*H) and `bias`, as Keras lays
        them out."""
        width = self.num_gates * self.units
        self.kernel = self._kernel_weight((input_dim, width))
        self.recurrent_kernel = self._recurrent_weight((self.state_widths()[0], width))
        self.bias = self._bias_weight(bias_shape) if self.use_bias else None

    def _kernel_weight(self, shape, name="kernel"):
        """An input weight, with the `kernel_*` initializer, regularizer and constraint."""
        return self.add_weight(
            shape=shape,
            name=name,
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )

    def _recurrent_weight(self, shape, constraint=None):
        """`recurrent_kernel`, with the `recurrent_*` arguments (or `constraint` instead)."""
        return self.add_weight(
            shape=shape,
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=constraint or self.recurrent_constraint,
        )

    def _bias_weight(self, shape, name="bias", initializer=None):
        """A bias, with the `bias_*` arguments (and the cell's build-time initializer)."""
        return self.add_weight(
            shape=shape,
            name=name,
            initializer=initializer or self._bias_initializer_for_build(),
            regularizer=self.bias_regularizer,
            constraint=self.bias_constraint,
        )

    def _bias_initializer_for_build(self):
        return self.bias_initializer

    def forget_bias_initializer(self, forget_index):
        """The bias initializer with ones in gate block `forget_index` (unit forget bias)."""

        def initializer(shape, dtype=None):
            blocks = [
                initializers.get("ones")((self.units,), dtype=dtype)
                if index == forget_index
                else self.bias_initializer((self.units,), dtype=dtype)
                for index in range(self.num_gates)
            ]
            return ops.concatenate(blocks)

        return initializer

    # ------------------------------------------------------------------ helpers
    def dropped(self, inputs, h_prev, training):
        """Inputs and previous hidden state with this sequence's dropout masks applied."""
        if training and self.dropout > 0:
            inputs = inputs * self.get_dropout_mask(inputs)
        if training and self.recurrent_dropout > 0:
            h_prev = h_prev * self.get_recurrent_dropout_mask(h_prev)
        return inputs, h_prev

    def recurrent_projection_kernel(self):
        """The matrix U of the projection h_{t-1} U (default: all of `recurrent_kernel`)."""
        return self.recurrent_kernel

    def input_bias(self):
        """The bias added to x_t W (b_x for a "pair" projection), or None."""
        return self.bias if self.use_bias else None

    def recurrent_bias(self):
        """The bias added to h_{t-1} U in a "pair" projection, or None."""
        return None

    def project(self, inputs, h_prev):
        """The fused pre-activations: x_t W + h_{t-1} U + b (`projection` "sum"),
        or the pair (x_t W + b_x, h_{t-1} U + b_h) ("pair")."""
        xw = ops.matmul(inputs, self.kernel)
        hu = ops.matmul(h_prev, self.recurrent_projection_kernel())
        if self.projection == "pair":
            return _add_bias(xw, self.input_bias()), _add_bias(hu, self.recurrent_bias())
        return _add_bias(xw + hu, self.input_bias())  # Keras's order of the sums

    def check_states(self, states):
        """Raise a ValueError when `states` do not match `state_size`."""
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        if len(states) != len(self.state_names):
            raise ValueError(
                f"{type(self).__name__} expects {len(self.state_names)} state "
                f"tensor(s) {list(self.state_names)}, received {len(states)}."
            )
        for name, state, expected in zip(self.state_names, states, self.state_widths()):
            width = state.shape[-1]
            if len(state.shape) != 2 or (width is not None and width != expected):
                raise ValueError(
                    f"{type(self).__name__} expects state `{name}` of shape "
                    f"(batch_size, {expected}), received shape {tuple(state.shape)}."
                )
        return states

    # ------------------------------------------------------------------- config
    def get_config(self):
        config = {
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


def _add_bias(value, bias):
    # ops.add, not "+": on TensorFlow it is a BiasAdd, whose gradient is one op
    # (BiasAddGrad) per step instead of a broadcast-and-sum.
    return value if bias is None else ops.add(value, bias)
