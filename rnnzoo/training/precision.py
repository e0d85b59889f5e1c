"""Mixed precision for the recipes: their `dtype_policy` option, Keras's own dtype policies.

Under "mixed_bfloat16" (or "mixed_float16") the layers keep float32 weights and
compute in 16 bits; the model builders keep the logits in float32, as Keras's
mixed-precision guide advises, and `Model.compile` scales the loss where
float16 needs it. On a CPU with bfloat16 matrix units (Intel AMX, AVX512-BF16)
"mixed_bfloat16" trains the zoo's layers faster on TensorFlow (measured: 1.5x; on
Keras's JAX backend it was slower there; `benchmarks/mixed_precision.py`).

    with precision.dtype_policy(config.dtype_policy):
        model = build_char_lm(...)  # its layers take the policy when made
"""

import contextlib

import keras

from rnnzoo.training import checks

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
HELP = (
    "Keras dtype policy: float32, mixed_bfloat16 (weights float32, maths in bfloat16; faster "
    "on CPUs with AMX for the char LMs and sequence classifiers) or mixed_float16"
)


def check(config):
    """`config.dtype_policy` must be one of `POLICIES`."""
    checks.one_of(config, "dtype_policy", POLICIES)


@contextlib.contextmanager
def dtype_policy(name):
    """Keras's global dtype policy is `name` inside the block, the previous one after it.

    A layer takes the global policy when it is made, so building a model inside
    the block is enough: it keeps the policy after the block."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
