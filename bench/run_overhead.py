"""What `mizzen run` adds to a trivial job: `mizzen run noop` vs the same command directly.

    .venv/bin/python bench/run_overhead.py [--runs 15]

Target: under 0.3 s added. Three figures, each against a baseline measured in the same run:
end to end (`mizzen run noop` vs the command), the part spent loading the spec
(`mizzen validate`), and the runner alone (in-process `LocalTarget.run` of a compiled plan:
process group, log streaming, run record, staging, vs `subprocess.run` of the command).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import compile_sources, median_seconds

TARGET_SECONDS = 0.3


def in_process(root: Path, runs: int) -> tuple[float, float]:
    """Median of LocalTarget.run on an already compiled plan, and of running the command."""
    import io

    from mizzen.plan import compile_plan
    from mizzen.spec import load
    from mizzen.targets.local.console import Console
    from mizzen.targets.local.target import LocalTarget

    plan = compile_plan(load(root / "mizzen.yaml"), "local")
    command = list(plan.jobs["noop"].process.command)
    walls, bases = [], []
    for _ in range(runs):
        start = time.perf_counter()
        LocalTarget(console=Console(io.StringIO(), io.StringIO())).run(plan, "noop")
        walls.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run(command, cwd=root, capture_output=True, check=True)
        bases.append(time.perf_counter() - start)
    return statistics.median(walls), statistics.median(bases)


def main() -> None:
    compile_sources()
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    command = [sys.executable, "-c", "pass"]
    mizzen = str(Path(sys.executable).parent / "mizzen")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = f"apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: bench\njobs:\n  noop: {{command: {json.dumps(command)}}}\n"
        (root / "mizzen.yaml").write_text(spec)
        direct = median_seconds(command, args.runs, root)
        via = median_seconds([mizzen, "run", "noop"], args.runs, root)
        validate = median_seconds([mizzen, "validate"], args.runs, root)
        runner, runner_base = in_process(root, args.runs)
    (wall, cpu), (wall0, cpu0) = via, direct
    added = wall - wall0
    print(
        f"median of {args.runs} runs, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(f"direct            wall {wall0 * 1000:7.1f} ms   cpu {cpu0 * 1000:7.1f} ms")
    print(
        f"mizzen run noop   wall {wall * 1000:7.1f} ms   cpu {cpu * 1000:7.1f} ms   {wall / wall0:5.2f}x direct"
    )
    print(
        f"mizzen validate   wall {validate[0] * 1000:7.1f} ms   cpu {validate[1] * 1000:7.1f} ms   (spec loading)"
    )
    print(
        f"runner alone      wall {runner * 1000:7.1f} ms   vs subprocess.run {runner_base * 1000:.1f} ms"
    )
    print(
        f"added             wall {added * 1000:7.1f} ms   cpu {(cpu - cpu0) * 1000:7.1f} ms   (target < {TARGET_SECONDS * 1000:.0f} ms wall: {'met' if added < TARGET_SECONDS else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
