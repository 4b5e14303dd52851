"""`mizzen release` of the example against `kubectl apply --server-side` of the same rendered
objects, on the real cluster of ../shared/k8s (started if it is not up, with the example's
image built and imported as the cluster tests do).

    .venv/bin/python bench/release_apply.py [--runs 5]

Both are timed from the command's start to its exit (every object applied), median of
`--runs`, in the same run: into a fresh namespace (a first release), and again into the same
namespace with nothing changed (the everyday release). `mizzen release` also does its
pre-flight (permissions, secrets, operators), a server-side dry-run of every object, prune
and the revision record; kubectl does none of them.
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

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "cluster"))
sys.path.insert(0, str(REPO))

from image import build_and_import  # noqa: E402

from mizzen.targets.kubernetes.apply import for_server  # noqa: E402

K8S = REPO.parent / "shared" / "k8s"
STATE = Path(os.environ.get("MIZZEN_K8S_STATE", "/tmp/mizzen-k8s"))
MIZZEN = str(Path(sys.executable).parent / "mizzen")
CRDS = REPO.parent / "shared" / "crds"


def sh(*argv: str, cwd: Path | None = None, stdin: str | None = None) -> str:
    env = {**os.environ, "KUBECONFIG": str(STATE / "admin.kubeconfig")}
    out = subprocess.run(argv, cwd=cwd, env=env, input=stdin, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def timed(*argv: str, cwd: Path | None = None) -> float:
    began = time.perf_counter()
    sh(*argv, cwd=cwd)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not (STATE / "apiserver.pid").exists():
        subprocess.run(["bash", str(K8S / "up")], check=True, capture_output=True)
    image = build_and_import(REPO / "examples" / "drives")
    sh("kubectl", "apply", "--server-side", "-f", str(CRDS / "argoproj.io_cronworkflows.yaml"))
    sh("kubectl", "apply", "--server-side", "-f", str(CRDS / "argoproj.io_workflows.yaml"))
    for crd in ("prometheusrules", "servicemonitors"):  # the signals' alert rules and scrape
        sh(
            "kubectl",
            "apply",
            "--server-side",
            "-f",
            str(CRDS / f"monitoring.coreos.com_{crd}.yaml"),
        )
    sh("kubectl", "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    server = json.loads(sh("kubectl", "version", "-o", "json"))["serverVersion"]["gitVersion"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "drives"
        subprocess.run(["cp", "-r", str(REPO / "examples" / "drives"), str(root)], check=True)
        spec = yaml.safe_load((root / "mizzen.yaml").read_text())
        spec["environments"]["bench"] = {"stores": {"lake": f"file://{tmp}/lake"}}
        (root / "mizzen.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        first: dict[str, list[float]] = {"mizzen release": [], "kubectl apply --server-side": []}
        again: dict[str, list[float]] = {"mizzen release": [], "kubectl apply --server-side": []}
        made = []
        try:
            for i in range(args.runs):
                for tool in first:
                    ns = f"bench-{i}-{'m' if tool.startswith('mizzen') else 'k'}"
                    sh("kubectl", "create", "namespace", ns)
                    made.append(ns)
                    if tool.startswith("mizzen"):
                        argv = [
                            MIZZEN,
                            "release",
                            "--env",
                            "bench",
                            "-n",
                            ns,
                            "--image",
                            image,
                            "--no-wait",
                        ]
                        first[tool].append(timed(*argv, cwd=root))
                        again[tool].append(timed(*argv, cwd=root))
                    else:
                        rendered = Path(tmp) / f"{ns}.yaml"
                        rendered.write_text(
                            sh(
                                MIZZEN,
                                "render",
                                "--env",
                                "bench",
                                "-n",
                                ns,
                                "--image",
                                image,
                                cwd=root,
                            )
                        )
                        # the objects a release applies: not the on-demand ones (run by `mizzen run`)
                        docs = [d for d in yaml.safe_load_all(rendered.read_text()) if d]
                        kept = [
                            d
                            for d in docs
                            if (d["metadata"].get("annotations") or {}).get("mizzen.io/on-demand")
                            != "true"
                        ]
                        # as a release adapts them to this server (CRON_TZ before 1.25)
                        kept, _ = for_server(server, kept)
                        rendered.write_text(yaml.safe_dump_all(kept))
                        argv = [
                            "kubectl",
                            "apply",
                            "--server-side",
                            "--field-manager",
                            "bench",
                            "-f",
                            str(rendered),
                        ]
                        first[tool].append(timed(*argv))
                        again[tool].append(timed(*argv))
        finally:
            for ns in made:
                subprocess.run(
                    ["kubectl", "delete", "namespace", ns, "--wait=false"],
                    env={**os.environ, "KUBECONFIG": str(STATE / "admin.kubeconfig")},
                    capture_output=True,
                )
    objects = len(kept)
    print(f"the example: {objects} objects applied per release; median of {args.runs} runs")
    base_first = statistics.median(first["kubectl apply --server-side"])
    base_again = statistics.median(again["kubectl apply --server-side"])
    print(f"{'':30} {'first release':>15} {'ratio':>7} {'unchanged':>12} {'ratio':>7}")
    for tool in first:
        f, a = statistics.median(first[tool]), statistics.median(again[tool])
        print(
            f"{tool:30} {f * 1000:12.0f} ms {f / base_first:6.2f}x {a * 1000:9.0f} ms {a / base_again:6.2f}x"
        )


if __name__ == "__main__":
    main()
