"""Benchmark: start-up and run time of ``optfilters response adam --beta1 0.9`` against ``import scipy.signal``.

Both run as fresh subprocesses, interleaved in the same run (so machine load
affects both alike), many times; the medians and their ratio are printed.
The goal (issue 3) is a ratio at or under 1.2: the command's own cost (click,
the optfilters core, the analysis) stays small next to SciPy's import, which
the analysis needs anyway.

Usage::

    python bench/bench_cli_startup.py [--repeat 21] [--warmup 2]

Children run with bytecode caching on, as an installed package does (SciPy's
``.pyc`` files are written at install): ``PYTHONDONTWRITEBYTECODE`` is removed
from their environment so that the warm-up runs write optfilters' ``.pyc``
files into the git-ignored ``__pycache__`` folders.  Without them every run
recompiles the optfilters sources (about 40 ms more).

Also printed, for context: a bare interpreter, ``optfilters --help`` (the
import path of every command module, no SciPy) and ``optfilters describe adam``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _console_script() -> list[str]:
    """The installed ``optfilters`` entry point next to this interpreter (else on PATH)."""
    beside = Path(sys.executable).with_name("optfilters")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("optfilters")
    if found:
        return [found]
    # Last resort: the same entry point through the interpreter.
    return [sys.executable, "-c", "import sys; from optfilters.cli import main; sys.exit(main())"]


def _time(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=21, help="timed runs of each command (default 21)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    # As installed packages do, run from cached bytecode: SciPy's .pyc files exist (compiled at install),
    # so let the warm-up runs write optfilters' too (into the git-ignored __pycache__ folders).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    script = _console_script()
    commands = {
        "python -c 'import scipy.signal'": [sys.executable, "-c", "import scipy.signal"],
        "optfilters response adam --beta1 0.9": [*script, "response", "adam", "--beta1", "0.9"],
        "python -c pass": [sys.executable, "-c", "pass"],
        "optfilters --help": [*script, "--help"],
        "optfilters describe adam": [*script, "describe", "adam"],
    }
    for _ in range(args.warmup):
        for cmd in commands.values():
            _time(cmd, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, cmd in commands.items():  # interleaved: load drifts hit every command alike
            times[name].append(_time(cmd, env))

    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"{args.repeat} runs each (after {args.warmup} warm-up), bytecode cached; median wall time in seconds:")
    for name, value in medians.items():
        spread = statistics.quantiles(times[name], n=4) if len(times[name]) >= 4 else [value, value, value]
        print(f"  {name:40s} {value:7.3f}   (quartiles {spread[0]:.3f} .. {spread[2]:.3f})")
    ratio = medians["optfilters response adam --beta1 0.9"] / medians["python -c 'import scipy.signal'"]
    verdict = "OK" if ratio <= 1.2 else "ABOVE GOAL"
    print(f"ratio response / import scipy.signal = {ratio:.3f}  (goal <= 1.2: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
