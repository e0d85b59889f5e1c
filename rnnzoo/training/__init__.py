"""What every rnnzoo recipe shares: one runner, configs, run directories, checkpoints, the loop.

- `runner`: `Recipe` (what a recipe adds: config, data, model, `Plan`) and `train`, which
  does the rest for every recipe: seed, run directory, resume, epochs, test, results, export;
- `cli`: the command line of every recipe (`train`, `export` and a recipe's own commands);
- `compare`: `--compare`, one run per cell on the same data, and the results table;
- `config`: a dataclass of scalars filled from TOML files and flags, strictly typed, and
  where the recipe config files are (`configs_folder`);
- `rundir`: one directory per run, its layout, lock and atomic file writes;
- `checkpoints`: single-file checkpoints (weights, optimizer, RNG and carried states);
- `loop`: `Trainer`, `model.fit` per epoch with evaluation, checkpoints and exact resume;
- `resume`: the checks between a run's config, vocabulary, data and its checkpoint;
- `precision`: the `dtype_policy` option (mixed precision) a run's models are built under;
- `optimizers`, `checks`, `batches`, `callbacks`, `summaries`: the smaller parts;
- `errors`: `RecipeError` and `run_main`, which turns it (or an OS error) into one line.
"""

from rnnzoo.training.errors import NonFiniteLossError, RecipeError, run_main
from rnnzoo.training.loop import Trainer, TrainerState
from rnnzoo.training.rundir import RunDirectory
from rnnzoo.training.runner import Plan, Recipe, train

__all__ = [
    "RecipeError",
    "NonFiniteLossError",
    "run_main",
    "Trainer",
    "TrainerState",
    "RunDirectory",
    "Recipe",
    "Plan",
    "train",
]
