"""What every rnnzoo recipe shares: configs, run directories, checkpoints, the epoch loop.

- `config`: a dataclass of scalars filled from TOML files and flags, strictly typed;
- `rundir`: one directory per run, atomic file writes;
- `checkpoints`: single-file checkpoints (weights, optimizer, RNG and carried states);
- `optimizers`: optimizers by name with global-norm / elementwise clipping;
- `loop`: `Trainer`, `model.fit` per epoch with evaluation, checkpoints and exact resume;
- `summaries`: TensorBoard scalars and text;
- `errors`: `RecipeError` and `run_main`, which turns it into one `error:` line.
"""

from rnnzoo.training.errors import NonFiniteLossError, RecipeError, run_main
from rnnzoo.training.loop import Trainer, TrainerState
from rnnzoo.training.rundir import RunDirectory

__all__ = [
    "RecipeError",
    "NonFiniteLossError",
    "run_main",
    "Trainer",
    "TrainerState",
    "RunDirectory",
]
