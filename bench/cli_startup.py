"""CLI start-up: `mizzen --help` and `mizzen validate` (a small spec, and the drives example
with its two environments) against `python -c pass`.

    .venv/bin/python bench/cli_startup.py [--runs 15]

Each validate is measured cold (its `.mizzen/cache/validate/` removed before every run: the
full validation, which also stores the result) and warm (the result cache answers). Prints
the median wall and CPU time of each and its ratio to the baseline, all measured in the same
run on the same machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from _timing import compile_sources, median_seconds

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


DRIVES = Path(__file__).resolve().parents[1] / "examples" / "drives" / "mizzen.yaml"


def clear(project: Path) -> None:
    shutil.rmtree(project / ".mizzen" / "cache" / "validate", ignore_errors=True)


def main() -> None:
    compile_sources()
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    mizzen = str(Path(sys.executable).parent / "mizzen")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "mizzen.yaml").write_text(SPEC)
        small = [mizzen, "validate"]
        drives = [mizzen, "validate", "-f", str(DRIVES)]
        cases = {
            "python -c pass": ([sys.executable, "-c", "pass"], None),
            "mizzen --help": ([mizzen, "--help"], None),
            "validate, cold": (small, lambda: clear(root)),
            "validate, warm": (small, None),
            "drives, cold": (drives, lambda: clear(DRIVES.parent)),
            "drives, warm": (drives, None),
        }
        results = {
            name: median_seconds(argv, args.runs, root, before)
            for name, (argv, before) in cases.items()
        }
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
