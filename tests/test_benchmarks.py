"""The benchmark scripts' arguments: a bad value is argparse's one error line, exit 2, before
any model is built (they were tracebacks: `--points 1/2/3`, `--rounds 0`, `--chunk 0`)."""

import pytest
from processes import REPO_ROOT, run_benchmark

BENCHMARKS = REPO_ROOT / "benchmarks"

# (script, bad arguments, what its error line says)
BAD_ARGUMENTS = [
    ("layer_grid.py", ["--points", "256/100/64"], "four whole numbers of at least 1"),
    ("layer_grid.py", ["--points", "a/b/c/d"], "received 'a/b/c/d'"),
    ("layer_grid.py", ["--layers", "LSTM,Nope"], "--layers: unknown 'Nope'"),
    ("layer_speed.py", ["--rounds", "0"], "argument --rounds: expected at least 1, received 0"),
    ("layer_speed.py", ["--only", "keras LSTM,nope"], "--only: unknown 'nope'"),
    ("inference_speed.py", ["--batch", "x"], "expected a whole number, received 'x'"),
    ("mixed_precision.py", ["--policies", "float64"], "--policies: unknown 'float64'"),
    ("charlm_generation.py", ["--rounds", "0"], "expected at least 1"),
    ("tensorboard_overhead.py", ["--chunk", "0"], "argument --chunk: expected at least 1"),
    ("distributed_scaling.py", ["--steps", "-5"], "expected at least 1, received -5"),
    ("odyssey.py", ["--seeds", "1,two"], "--seeds: expected comma-separated whole numbers"),
    ("odyssey.py", ["--variants", "peephole,nope"], "--variants: unknown 'nope'"),
    ("reproduction.py", ["--run-dir", "x", "--last", "-1"], "expected at least 0"),
    ("allocators.py", ["--repeats", "0"], "argument --repeats: expected at least 1"),
    ("allocators.py", ["--tcmalloc", "/no/libtcmalloc.so"], "--tcmalloc: no file"),
    ("allocators.py", ["--only", "keras LSTM,nope", "--repeats", "1"], "--only: unknown 'nope'"),
    ("scan_or_loop.py", ["--lengths", "100,0"], "argument --lengths: expected at least 1"),
    ("scan_or_loop.py", ["--layers", "MinGRU,GRU"], "--layers: unknown 'GRU'"),
]


@pytest.mark.parametrize(
    "script, arguments, message",
    BAD_ARGUMENTS,
    ids=[f"{c[0]} {' '.join(c[1])}" for c in BAD_ARGUMENTS],
)
def test_a_bad_argument_is_one_error_line(script, arguments, message):
    result = run_benchmark(script, *arguments, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if f"{script}: error:" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "built" not in result.stderr + result.stdout  # stopped before any model


def test_the_parsed_values_are_those_given(monkeypatch):
    """What the scripts receive when the arguments are good: whole numbers, names in the order
    given (each once), points as 4-tuples."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import layer_grid

    args = layer_grid.parse_arguments(
        ["--points", "32/28/16/1,1024/100/64/64", "--layers", "GRU, LSTM,GRU", "--warmup", "0"]
    )
    assert args.points == [(32, 28, 16, 1), (1024, 100, 64, 64)]
    assert args.layers == ["GRU", "LSTM"] and args.warmup == 0
    assert layer_grid.parse_arguments([]).points == layer_grid.POINTS


def test_scan_or_loop_prints_both_loops_and_the_choice_of_auto():
    """A small run on TensorFlow: a row a layer and length, Keras's loop's time over the scan's
    for training and inference, and the loop fast="auto" runs there (the scan)."""
    result = run_benchmark(
        "scan_or_loop.py",
        *("--lengths", "5,9", "--units", "4", "--batch", "2", "--rounds", "1", "--calls", "1"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split(" | ") for line in result.stdout.splitlines() if line.startswith("| Min")]
    assert [(row[0], row[1]) for row in rows] == [
        ("| MinGRU", "5"),
        ("| MinGRU", "9"),
        ("| MinLSTM", "5"),
        ("| MinLSTM", "9"),
    ]
    for row in rows:
        train, infer = float(row[4].rstrip("x")), float(row[7].rstrip("x"))
        scan, keras_loop = float(row[2].split()[0]), float(row[3].split()[0])
        assert train > 0 and infer > 0 and abs(keras_loop / scan - train) < 0.02 + 0.1 * train
        assert row[8] == "scan |"
