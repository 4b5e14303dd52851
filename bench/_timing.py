"""What the start-up benchmarks share: timing a command, and measuring compiled sources."""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def median_seconds(
    argv: list[str], runs: int, cwd: Path, setup: Callable[[], None] | None = None
) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of `argv`; `setup` runs
    (untimed) ahead of each run."""
    subprocess.run(argv, cwd=cwd, capture_output=True, check=True)  # warm the file cache
    walls, cpus = [], []
    for _ in range(runs):
        if setup is not None:
            setup()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, capture_output=True, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def compile_sources() -> None:
    """Measure an installed package, not recompilation: an editable install under
    PYTHONDONTWRITEBYTECODE=1 would otherwise recompile mizzen's sources at every start."""
    src = Path(__file__).resolve().parent.parent / "src"
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(src)], check=True, capture_output=True
    )
