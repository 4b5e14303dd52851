"""In the cluster, `mizzen exec` sends run-level alerts from the pod, with exactly the env the
renderer gives the container (secret references filled in as the kubelet would)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mizzen.plan import compile_plan
from mizzen.spec import load
from mizzen.targets.kubernetes.render import render

if TYPE_CHECKING:
    from conftest import Receiver

SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: podalerts
image: registry.example.com/team/podalerts
stores: {lake: "file:///lake"}
store: lake
secrets:
  hooks: [url]
jobs:
  train: {command: [python, -c, "import sys; sys.exit(3)"]}
alerts:
  - on: [failed]
    jobs: [train]
    webhook: ${secrets.hooks.url}
"""


def _container_env(tmp_path: Path, secret_values: dict[str, str]) -> dict[str, str]:
    (tmp_path / "mizzen.yaml").write_text(SPEC)
    plan = compile_plan(
        load(tmp_path / "mizzen.yaml"), "kubernetes", image="r.example/x@sha256:" + "2" * 64
    )
    job = next(o for o in render(plan) if o["kind"] == "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {}
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "secretKeyRef" in var.get("valueFrom", {}):
            env[var["name"]] = secret_values[var["valueFrom"]["secretKeyRef"]["key"]]
    assert container["command"][:2] == ["mizzen", "exec"]
    return env


def test_a_failed_run_in_a_pod_sends_its_alert(tmp_path: Path, receiver: Receiver) -> None:
    url = receiver.url + "/hook-secret-path"
    env = _container_env(tmp_path, {"url": url})
    assert url not in str({k: v for k, v in env.items() if k != "MIZZEN_SECRET_HOOKS_URL"})
    env["MIZZEN_STORE"] = (tmp_path / "store").as_uri()  # the pod's store, here a folder
    base = {k: v for k, v in os.environ.items() if not k.startswith("MIZZEN_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mizzen.cli.main",
            "exec",
            "--workload",
            "train",
            "--",
            sys.executable,
            "-c",
            "import sys; sys.exit(3)",
        ],
        env={**base, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr
    (request,) = receiver.requests
    assert request["path"] == "/hook-secret-path"
    assert request["json"]["workload"] == "train" and "failed" in str(request["json"])
    assert "hook-secret-path" not in done.stdout + done.stderr  # the URL is a secret


def test_a_failed_pipeline_step_in_a_pod_fires_the_pipelines_alert(
    tmp_path: Path, receiver: Receiver
) -> None:
    spec = SPEC.replace("    jobs: [train]\n", "    jobs: [nightly]\n").replace(
        "alerts:", "pipelines:\n  nightly: {steps: [train]}\nalerts:"
    )
    (tmp_path / "mizzen.yaml").write_text(spec)
    plan = compile_plan(
        load(tmp_path / "mizzen.yaml"), "kubernetes", image="r.example/x@sha256:" + "2" * 64
    )
    job = next(o for o in render(plan) if o["kind"] == "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {v["name"]: v.get("value", "") for v in container["env"]}
    env["MIZZEN_SECRET_HOOKS_URL"] = receiver.url + "/nightly"
    env.update(  # what the Argo step's container adds
        {
            "MIZZEN_STORE": (tmp_path / "store").as_uri(),
            "MIZZEN_PIPELINE": "nightly",
            "MIZZEN_STEP": "train",
        }
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("MIZZEN_")}
    done = subprocess.run(
        [sys.executable, "-m", "mizzen.cli.main", "exec", "--workload", "train", "--",
         sys.executable, "-c", "import sys; sys.exit(4)"],
        env={**base, **env}, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 4, done.stderr
    (request,) = receiver.requests
    assert request["path"] == "/nightly"
