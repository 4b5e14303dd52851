"""A large, valid spec (150 jobs, 25 pipelines, 25 services, 2 environments).

.venv/bin/python tests/spec/big_spec.py /tmp/big/mizzen.yaml
time .venv/bin/mizzen validate -f /tmp/big/mizzen.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path


def big_spec(jobs: int = 150, pipelines: int = 25, services: int = 25) -> str:
    lines = [
        "apiVersion: mizzen.io/v1alpha1",
        "kind: Project",
        "name: big",
        "stores: {lake: s3://lake}",
        "volumes:",
        "  raw: {blob: lake/raw, readOnly: true, cache: 10m}",
        "  out: {blob: lake/out}",
        "config: {HOST: dw}",
        "secrets: {db: [user, password]}",
        "jobs:",
    ]
    for i in range(jobs):
        lines += [
            f"  job-{i}:",
            f'    command: [python, -m, pkg.job{i}, --in, "${{volumes.raw}}", --out, "${{volumes.out}}/{i}", --host, "${{config.HOST}}"]',
            "    resources: {cpu: 2, memory: 4Gi}",
            "    secrets: [db]",
            "    retries: 2",
            "    timeout: 2h",
            f'    schedule: "{i % 60} 3 * * *"',
        ]
    lines.append("pipelines:")
    for i in range(pipelines):
        lines += [f"  pipe-{i}:", "    steps:"]
        for k in range(6):
            job = (i * 6 + k) % jobs
            after = f", after: [job-{(i * 6 + k - 1) % jobs}]" if k else ""
            lines.append(f"      - {{job: job-{job}{after}}}")
    lines.append("services:")
    for i in range(services):
        lines += [f"  svc-{i}:", f"    command: [python, -m, app{i}]", "    port: 8080"]
    lines += [
        "environments:",
        "  dev: {kubernetes: {namespace: big-dev}}",
        "  prod:",
        "    stores: {lake: s3://prod-lake}",
        "    jobs: {job-1: {resources: {gpu: 1}}}",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(big_spec())
