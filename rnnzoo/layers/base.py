"""`RecurrentLayer`: a `keras.layers.RNN` built on one rnnzoo cell, with Keras's conventions.

Like `keras.layers.LSTM`, a layer takes the cell's arguments and the RNN's
arguments side by side (`rnnzoo.layers.LSTM(64, dropout=0.1,
return_sequences=True)`), its config is flat (the cell's arguments plus the
RNN's, no nested "cell"), and the cell's arguments read back as attributes
(`layer.units`, `layer.dropout`). It takes every argument Keras's LSTM, GRU
and SimpleRNN take, with their meaning (`implementation` is accepted and
ignored, as in Keras 3), so a Keras layer's config loads into it.

Which loop runs a call is a visible choice, as Keras's `use_cudnn`:

- "cudnn": Keras's own cuDNN routines (`use_cudnn`), for the cells whose
  equations and weights are Keras's (`LSTMCell`, `GRUCell`), exactly where
  `keras.layers.LSTM` / `GRU` would use them;
- "fast": `rnnzoo.layers.fast_loop`, the zoo's own sequence loop (`fast`);
- "keras": `keras.layers.RNN`'s loop over the cell.

`fast` and `use_cudnn` are each "auto" (use it where it applies), True (use
it, and raise naming the reason where it can't apply) or False.
`layer.loop_choice(training=..., mask=...)` says which loop a call would run
and why not the faster ones.
"""

import dataclasses

import keras
from keras.src import backend as keras_backend

from rnnzoo.cells.base import cell_arguments
from rnnzoo.layers import parallel_scan

CHOICES = ("auto", True, False)

# Arguments of `keras.layers.RNN` itself, which stay with the layer.
_RNN_ARGUMENTS = (
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "unroll",
    "zero_output_for_mask",
)


def _cell_argument_names(cell_class):
    """Every keyword argument of `cell_class.__init__`s up its class chain: the arguments the
    cell takes and those it sets itself (`fixed_arguments`), which go to the cell too."""
    return frozenset(cell_arguments(cell_class)) | frozenset(cell_class.fixed_arguments)


def _traced_by_jax(tensor):
    if keras.backend.backend() != "jax":
        return False
    import jax

    return isinstance(tensor, jax.core.Tracer)


@dataclasses.dataclass(frozen=True)
class LoopChoice:
    """The loop a call runs ("cudnn", "fast" or "keras"), and why not each faster one."""

    loop: str
    reasons: dict  # loop name -> why it does not run this call


class RecurrentLayer(keras.layers.RNN):
    """A `keras.layers.RNN` whose cell is `cell_class`; subclasses set `cell_class`.

    Args:
        units: Positive int, size of the hidden state.
        fast: "auto" (default): run the sequence through
            `rnnzoo.layers.fast_loop` where it applies (the parallel scan
            for minGRU and minLSTM, except on JAX's CPU backend, where
            Keras's loop is faster), Keras's loop otherwise; True: the fast
            loop (or scan) or an error saying why it can't run; False:
            Keras's loop.
        use_cudnn: As `keras.layers.LSTM`'s: "auto" (default) uses cuDNN
            exactly where Keras's LSTM or GRU would (a GPU, Keras's
            activations, no recurrent dropout, ...) for the cells that are
            Keras's; True raises where it can't; False never uses it.
        **kwargs: The cell's arguments (see the cell's docstring), the RNN's
            (`return_sequences`, `return_state`, `go_backwards`, `stateful`,
            `unroll`, `zero_output_for_mask`), the base layer's (`name`,
            `dtype`, `trainable`, `activity_regularizer`), and Keras's
            `implementation`, accepted and ignored.
    """

    cell_class = None

    def __init__(self, units, fast="auto", use_cudnn="auto", **kwargs):
        for name, value in (("fast", fast), ("use_cudnn", use_cudnn)):
            if not (value is True or value is False or value == "auto"):
                raise ValueError(
                    f"Expected `{name}` to be 'auto', True or False; received {name}={value!r}."
                )
        # Keras 3's LSTM and GRU take `implementation` (1 or 2) and compute the same either way.
        kwargs.pop("implementation", None)
        cell_names = _cell_argument_names(self.cell_class)
        cell_kwargs = {name: kwargs.pop(name) for name in list(kwargs) if name in cell_names}
        cell = self.cell_class(
            units,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name=f"{_snake_case(self.cell_class.__name__)}",
            **cell_kwargs,
        )
        super().__init__(cell, **kwargs)
        self.fast = fast
        self.use_cudnn = use_cudnn
        self._dropping = True  # whether a call draws dropout masks (`call` sets it)
        self.input_spec = keras.layers.InputSpec(ndim=3)
        # Neither cuDNN nor the TensorFlow loop compiles with XLA: as Keras's LSTM does where
        # it runs cuDNN, the layer tells `compile` to leave XLA off (it warns under an explicit
        # jit_compile=True). Inside XLA-compiled code of one's own it runs Keras's loop.
        cudnn_reason = self._cudnn_reason()
        if keras.backend.backend() == "tensorflow" and (
            cudnn_reason is None or (fast is not False and self._fast_static_reason() is None)
        ):
            self.supports_jit = False
        # What can be known before any call is refused now.
        if use_cudnn is True and cudnn_reason is not None and not cudnn_reason.startswith("no GPU"):
            raise ValueError(f"use_cudnn=True, but {cudnn_reason}. Pass use_cudnn='auto'.")
        if fast is True and self._has_scan() is False:
            reason = self._fast_static_reason()
            if reason is not None:
                raise ValueError(f"fast=True, but {reason}. Pass fast='auto' or False.")

    def __getattr__(self, name):
        # Read the cell's arguments through the layer, as keras.layers.LSTM does.
        if (
            not name.startswith("_")
            and name != "cell"
            and name in _cell_argument_names(self.cell_class)
        ):
            return getattr(self.cell, name)
        # On the torch backend a layer is a torch Module, which keeps its sub-layers (the cell)
        # in its own tables and finds them in its `__getattr__`.
        parent = getattr(super(), "__getattr__", None)
        if parent is not None:
            return parent(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def units(self):
        return self.cell.units

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if initial_state is not None:
            self.cell.check_states(initial_state)
        self._dropping = not (training is None or training is False)
        return super().call(sequences, initial_state=initial_state, mask=mask, training=training)

    def _maybe_config_dropout_masks(self, cell, input_sequence, input_state):
        # Keras's RNN draws the cell's dropout masks before every call, but only training
        # reads them. Inference here draws none (no random op in `predict`, in sampling or
        # in an export: Keras's ONNX export on JAX can't trace one for a batch of unknown
        # size) and spends the seeds the draws would, so the masks of later training steps
        # stay those of `keras.layers.RNN` over the same cell.
        if self._dropping:
            super()._maybe_config_dropout_masks(cell, input_sequence, input_state)
            return
        if _traced_by_jax(input_sequence) and not keras_backend.in_stateless_scope():
            return  # a trace of the call alone (an export): its seeds can't change
        for rate in (cell.dropout, cell.recurrent_dropout):
            if 0 < rate < 1:  # a rate of 0 or 1 draws no seed in Keras either
                cell.seed_generator.next()

    # --------------------------------------------------------------- the loops
    def loop_choice(self, training=False, mask=None):
        """Which loop a call with this `training` flag and `mask` (or None) runs.

        Returns a `LoopChoice`: `.loop` is "cudnn", "scan" (the parallel scan
        over time of the cells that have one), "fast" or "keras", and
        `.reasons` says why each faster loop does not run the call. cuDNN is
        chosen when nothing known before the call rules it out; Keras's
        backend may still decline at run time (a mask that is not
        right-padded), and the call then runs the next loop, as Keras's
        layers do. No loop depends on `training` any more (recurrent dropout
        runs the fast loop too, and rules cuDNN out in inference as well, as
        in Keras); it stays an argument so that a call's question reads as the
        call.
        """
        reasons = {}
        cudnn = self._cudnn_reason()
        if cudnn is None:
            return LoopChoice("cudnn", reasons)
        reasons["cudnn"] = cudnn
        if self._has_scan():
            scan = parallel_scan.reason(self, mask)
            if scan is None:
                return LoopChoice("scan", reasons)
            reasons["scan"] = scan
        fast = "fast=False" if self.fast is False else self._fast_reason()
        if fast is None:
            return LoopChoice("fast", reasons)
        reasons["fast"] = fast
        return LoopChoice("keras", reasons)

    def _fast_static_reason(self):
        """Why the fast loop can never run this layer (its backend, its arguments), or None."""
        backend = keras.backend.backend()
        if backend not in ("tensorflow", "jax"):
            return f"the fast loop runs on the TensorFlow and JAX backends, not {backend}"
        if self.unroll:
            return "unroll=True asks for Keras's unrolled loop"
        return self.cell.pointwise_step_reason()

    def _fast_reason(self):
        """Why the fast loop can't stand in for Keras's loop on this call (where it is
        traced), or None."""
        reason = self._fast_static_reason()
        if reason is None and keras.backend.backend() == "tensorflow":
            from rnnzoo.layers import fast_loop  # TensorFlow's: imported where it runs

            reason = fast_loop.xla_reason()
        return reason

    def _has_scan(self):
        return callable(getattr(self.cell, "scan", None))

    def _cudnn_reason(self):
        """Why Keras's cuDNN routine can't run this call, or None (as `keras.layers.LSTM` sees it).

        The reasons known from the layer's arguments come first, a missing
        GPU last (a config made with use_cudnn=True loads on any machine).
        """
        cell = self.cell
        if self.use_cudnn is False:
            return "use_cudnn=False"
        routine = cell.cudnn_routine()
        if routine is None:
            return f"cuDNN has no {type(cell).__name__} (it has Keras's LSTM and GRU cells only)"
        if cell.recurrent_dropout:
            return "cuDNN has no recurrent dropout"
        backend = keras.backend.backend()
        if backend not in ("tensorflow", "jax"):
            return f"Keras has no cuDNN routine on the {backend} backend"
        tanh, sigmoid = keras.activations.tanh, keras.activations.sigmoid
        if (
            cell.activation is not tanh
            or cell.recurrent_activation is not sigmoid
            or self.unroll
            or not cell.use_bias
        ):
            return (
                "cuDNN needs activation='tanh', recurrent_activation='sigmoid', "
                "use_bias=True and unroll=False"
            )
        if routine == "gru" and not cell.reset_after:
            return "cuDNN's GRU is the reset_after=True form"
        if not keras_backend.cudnn_ok(tanh, sigmoid, False, use_bias=True):
            return f"no GPU is visible to {backend}"
        return None

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        choice = self.loop_choice(training, mask)
        if choice.loop == "scan":
            return parallel_scan.run(self, sequences, initial_state, mask=mask, training=training)
        if choice.loop == "cudnn":
            try:
                return self._cudnn_loop(sequences, initial_state, mask, training)
            except NotImplementedError:
                # Keras's backend declined at run time (a mask that is not right-padded, ...).
                if self.use_cudnn is True:
                    raise ValueError(
                        "use_cudnn=True, but Keras's cuDNN routine declined this call (a mask "
                        "that is not right-padded, or no GPU). Pass use_cudnn='auto'."
                    ) from None
                reasons = {"cudnn": "Keras's cuDNN routine declined this call"}
                fast = self._fast_reason() if self.fast is not False else "fast=False"
                choice = LoopChoice("fast" if fast is None else "keras", {**reasons, "fast": fast})
        if self.use_cudnn is True and "cudnn" in choice.reasons:
            raise ValueError(
                f"use_cudnn=True, but {choice.reasons['cudnn']}. Pass use_cudnn='auto'."
            )
        if choice.loop == "fast":
            # Each backend's loop is imported where it runs: the layers need no TensorFlow on JAX.
            if keras.backend.backend() == "jax":
                from rnnzoo.layers import jax_loop as loop
            else:
                from rnnzoo.layers import fast_loop as loop
            return loop.run(self, sequences, initial_state, mask=mask, training=training)
        if self.fast is True:
            raise ValueError(
                f"fast=True, but the fast loop can't run this call: {choice.reasons['fast']}. "
                "Pass fast='auto' to fall back to Keras's loop."
            )
        return super().inner_loop(sequences, initial_state, mask, training=training)

    def _cudnn_loop(self, sequences, initial_state, mask, training):
        """Keras's own cuDNN routine (`keras.layers.LSTM.inner_loop`'s), or NotImplementedError."""
        cell = self.cell
        if training and cell.dropout:
            sequences = sequences * keras.ops.expand_dims(
                cell.get_dropout_mask(sequences[:, 0, :]), 1
            )
        options = dict(
            kernel=cell.kernel,
            recurrent_kernel=cell.recurrent_kernel,
            bias=cell.bias,
            activation=cell.activation,
            recurrent_activation=cell.recurrent_activation,
            return_sequences=self.return_sequences,
            go_backwards=self.go_backwards,
            unroll=self.unroll,
        )
        if cell.cudnn_routine() == "lstm":
            out = keras_backend.lstm(sequences, initial_state[0], initial_state[1], mask, **options)
        else:
            out = keras_backend.gru(
                sequences, initial_state[0], mask, reset_after=cell.reset_after, **options
            )
        if keras.backend.backend() == "tensorflow":
            self.supports_jit = False  # cuDNN ops don't compile with XLA (as Keras's layers)
        return out

    # ------------------------------------------------------------------ config
    def get_config(self):
        config = super().get_config()
        del config["cell"]
        config["fast"] = self.fast
        config["use_cudnn"] = self.use_cudnn
        config["activity_regularizer"] = keras.regularizers.serialize(self.activity_regularizer)
        cell_config = self.cell.get_config()
        for key in ("name", "dtype", "trainable"):
            cell_config.pop(key, None)
        return {**config, **cell_config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("activity_regularizer") is not None:
            config["activity_regularizer"] = keras.regularizers.deserialize(
                config["activity_regularizer"]
            )
        return cls(**config)


def _snake_case(name):
    out = []
    for index, char in enumerate(name):
        if char.isupper() and index and not name[index - 1].isupper():
            out.append("_")
        out.append(char.lower())
    return "".join(out)
