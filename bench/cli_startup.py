"""CLI start-up: `mizzen --help` and `mizzen validate` against `python -c pass`.

    .venv/bin/python bench/cli_startup.py [--runs 15]

Prints the median wall time of each (absolute) and its ratio to the baseline, all measured
in the same run on the same machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = """apiVersion: mizzen.io/v1alpha1
kind: Project
name: bench
config: {SIZE: small}
volumes:
  data: {files: {claim: data}}
jobs:
  prepare: {command: [python, prep.py, "${volumes.data}"]}
  train: {command: [python, train.py], retries: 1, resources: {cpu: "2", memory: 2Gi}}
pipelines:
  nightly: {steps: [prepare, {job: train, after: [prepare]}], schedule: "0 3 * * *"}
"""


def median_seconds(argv: list[str], runs: int, cwd: Path) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of `argv`."""
    subprocess.run(argv, cwd=cwd, capture_output=True, check=True)  # warm the file cache
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, capture_output=True, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    # Measure an installed package, not recompilation: an editable install under
    # PYTHONDONTWRITEBYTECODE=1 would otherwise recompile mizzen's sources at every start.
    src = Path(__file__).resolve().parent.parent / "src"
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(src)], check=True, capture_output=True
    )
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    mizzen = str(Path(sys.executable).parent / "mizzen")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "mizzen.yaml").write_text(SPEC)
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "mizzen --help": [mizzen, "--help"],
            "mizzen validate": [mizzen, "validate"],
        }
        results = {name: median_seconds(argv, args.runs, root) for name, argv in cases.items()}
    base, base_cpu = results["python -c pass"]
    print(
        f"median of {args.runs} runs, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(f"{'':<18} {'wall':>10} {'ratio':>7} {'added':>9}   {'cpu':>9} {'added':>9}")
    for name, (wall, cpu) in results.items():
        print(
            f"{name:<18} {wall * 1000:7.1f} ms {wall / base:6.2f}x {(wall - base) * 1000:+6.0f} ms   {cpu * 1000:6.1f} ms {(cpu - base_cpu) * 1000:+6.0f} ms"
        )


if __name__ == "__main__":
    main()
