"""What the memory allocator costs a training step: `layer_speed.py` under each malloc.

On Keras's JAX backend, XLA's CPU code takes all of a training step's temporaries
(the saved activations of the forward pass among them) in one block per step. The C
library's malloc keeps freed blocks of up to 32 MiB for reuse; a bigger one it maps
on each request and unmaps when freed, so the kernel faults it in again, page by
page, at every step. Two ways around it, neither a change to the program:

- `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` (glibc 2.35 and later): the C library asks
  for transparent huge pages for what it maps, 2 MiB a fault instead of 4 KiB;
- `LD_PRELOAD=` a malloc that keeps big blocks for reuse, such as tcmalloc (Debian:
  `apt-get install libtcmalloc-minimal4`).

This script runs `layer_speed.py` in a fresh process per setting, the settings
alternating (`--repeats` times, the order rotated), and prints for each contender its
median chars/s and page faults a step under each, and each contender's ratio over its
Keras baseline as measured inside each process. The allocator can't change inside a
process, so the speeds across settings come from different processes (run one after
the other); the ratios are each from one process, contenders alternating.

    python benchmarks/allocators.py                    # JAX, LSTM and GRU, 3 repeats
    python benchmarks/allocators.py --backend tensorflow --repeats 2
    python benchmarks/allocators.py --only "keras LSTM,rnnzoo LSTM,RNN(LSTM's matmuls alone)"
"""

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import arguments

LAYER_SPEED = Path(__file__).with_name("layer_speed.py")
TCMALLOC_PATHS = [
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4",
    "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib64/libtcmalloc_minimal.so.4",
]


def settings(tcmalloc):
    """(name, environment changes) of each allocator setting; None removes a variable."""
    found = tcmalloc or next((path for path in TCMALLOC_PATHS if Path(path).exists()), None)
    chosen = [
        ("glibc", {"LD_PRELOAD": None, "GLIBC_TUNABLES": None}),
        ("glibc, hugetlb=1", {"LD_PRELOAD": None, "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}),
    ]
    if found:
        chosen.append(("tcmalloc", {"LD_PRELOAD": found, "GLIBC_TUNABLES": None}))
    return chosen, found


def run_layer_speed(changes, args):
    """One `layer_speed.py` process -> {contender: (chars/s, ratio, faults)}."""
    environment = dict(os.environ)
    for name, value in changes.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    command = [sys.executable, str(LAYER_SPEED), "--backend", args.backend, "--only", args.only]
    command += ["--rounds", str(args.rounds), "--steps", str(args.steps)]
    result = subprocess.run(command, env=environment, capture_output=True, text=True)
    if result.returncode != 0:
        # Its own error line where it has one (a bad --only), else the last line it wrote.
        lines = result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
        said = next((line for line in lines if "layer_speed.py: error:" in line), lines[-1])
        print(f"allocators.py: error: layer_speed.py failed: {said.strip()}", file=sys.stderr)
        sys.exit(2)
    return parse_table(result.stdout)


def parse_table(text):
    """layer_speed.py's Markdown table -> {contender: (chars/s, ratio over its baseline or
    None, page faults a step)}."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 8 or not cells[1].endswith("k"):
            continue
        speed, ratio = float(cells[1][:-1]) * 1000, cells[3]
        rows[cells[0]] = (
            speed,
            float(ratio[:-1]) if ratio else None,
            float(cells[7].replace(",", "")),
        )
    return rows


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--backend",
        choices=("jax", "tensorflow", "torch"),
        default="jax",
        help="Keras backend of the runs (default jax)",
    )
    parser.add_argument(
        "--only",
        default="keras LSTM,rnnzoo LSTM,keras GRU,rnnzoo GRU",
        help="layer_speed.py's contenders (comma-separated; baselines are added)",
    )
    parser.add_argument(
        "--repeats",
        type=arguments.count,
        default=3,
        help="processes per setting (median taken)",
    )
    parser.add_argument(
        "--rounds", type=arguments.count, default=2, help="layer_speed.py's --rounds"
    )
    parser.add_argument("--steps", type=arguments.count, default=8, help="its --steps")
    parser.add_argument(
        "--tcmalloc",
        default=None,
        help="path of a tcmalloc library to preload (default: the first found of Debian's)",
    )
    args = parser.parse_args(argv)
    if args.tcmalloc and not Path(args.tcmalloc).is_file():
        parser.error(f"--tcmalloc: no file {args.tcmalloc!r}; expected a libtcmalloc*.so path")
    return args


def main(argv=None):
    args = parse_arguments(argv)
    chosen, tcmalloc = settings(args.tcmalloc)
    results = {name: [] for name, _ in chosen}
    for repeat in range(args.repeats):
        shift = repeat % len(chosen)
        for name, changes in chosen[shift:] + chosen[:shift]:
            results[name].append(run_layer_speed(changes, args))
            print(f"repeat {repeat + 1}/{args.repeats}: {name} done", file=sys.stderr, flush=True)

    contenders = list(results[chosen[0][0]][0])
    command = "python benchmarks/allocators.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    print(f"Command: `{command.strip()}`  ")
    print(
        f"Date: {datetime.date.today().isoformat()}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; backend {args.backend}; tcmalloc: {tcmalloc or 'not found'}; "
        f"median of {args.repeats} processes per setting; load average "
        f"{os.getloadavg()[0]:.1f} at the end.\n"
    )
    names = [name for name, _ in chosen]
    print(
        "| contender | "
        + " | ".join(f"{n}: chars/s | page faults a step | ratio" for n in names)
        + " | "
        + " | ".join(f"{n} / glibc" for n in names[1:])
        + " |"
    )
    print("|---|" + "---:|---:|---:|" * len(names) + "---:|" * (len(names) - 1))
    for contender in contenders:
        cells, speeds = [], {}
        for name in names:
            runs = [run[contender] for run in results[name]]
            speeds[name] = statistics.median(run[0] for run in runs)
            ratios = [run[1] for run in runs if run[1] is not None]
            ratio = f"{statistics.median(ratios):.2f}x" if ratios else ""
            faults = statistics.median(run[2] for run in runs)
            cells.append(f"{speeds[name] / 1000:.1f}k | {faults:,.0f} | {ratio}")
        gains = [f"{speeds[name] / speeds['glibc']:.2f}x" for name in names[1:]]
        print(f"| {contender} | " + " | ".join(cells) + " | " + " | ".join(gains) + " |")


if __name__ == "__main__":
    main()
