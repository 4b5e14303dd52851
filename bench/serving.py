"""Serving benchmark: mizzen vs `mlflow models serve` vs BentoML vs ONNX Runtime in-process.

One run, this machine, the same load generator (wrk with a Lua script POSTing a single-row
JSON body), the same 4-feature logistic regression. Throughput and p50/p99 at concurrency 1,
8 and 32, then the ratios. Load only on 127.0.0.1, each point bounded by --duration.
`mizzen-uvicorn` is the same server with `--http uvicorn` (the ASGI app behind uvicorn), to
show what the built-in HTTP layer is worth.

Two more sections put mizzen under pressure, each against a baseline of the same run:
`overload` (`--max-batch-size 8 --max-queue 16`): goodput, the 2xx answers per second, at
256 connections against 32, when the excess must be refused with 503; `fairness` (one
worker): a light client's p50 alone and beside four clients sending --heavy-rows rows per
request, with batching and without.

MLflow and BentoML are installed by this script into bench/.venv-baselines/{mlflow,bentoml}
(their dependencies conflict with each other and would weigh on the project's); a baseline
that cannot be installed or started is reported as such, never estimated.

    .venv/bin/python bench/serving.py [--duration 5] [--workers 2] [--json out.json]
    .venv/bin/python bench/serving.py --only overload,fairness [--rounds 3] [--heavy-rows 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HELPERS = HERE / "serving"
VENVS = HERE / ".venv-baselines"
LUA = HELPERS / "post.lua"
ROW = [0.5, -1.25, 2.0, 0.75]
CONCURRENCY = (1, 8, 32)


@dataclass
class Point:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    ok_rps: float = 0.0  # goodput: answers with a 2xx status per second


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_uv() -> str | None:
    for candidate in (
        shutil.which("uv"),
        str(Path(sys.executable).parent / "uv"),
        "/root/.pyenv/versions/3.11.7/bin/uv",
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def ensure_venv(name: str, packages: list[str]) -> tuple[Path | None, str]:
    """bench/.venv-baselines/<name> with `packages`; (python, "") or (None, why not)."""
    python = VENVS / name / "bin" / "python"
    check = (
        subprocess.run([str(python), "-c", f"import {name}"], capture_output=True)
        if python.exists()
        else None
    )
    if check is not None and check.returncode == 0:
        return python, ""
    uv = find_uv()
    try:
        if uv:
            subprocess.run(
                [uv, "venv", "-q", str(VENVS / name), "--python", sys.executable],
                check=True,
                capture_output=True,
                text=True,
            )
            subprocess.run(
                [uv, "pip", "install", "-q", "--python", str(python), *packages],
                check=True,
                capture_output=True,
                text=True,
                timeout=900,
            )
        else:
            subprocess.run(
                [sys.executable, "-m", "venv", str(VENVS / name)],
                check=True,
                capture_output=True,
                text=True,
            )
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", *packages],
                check=True,
                capture_output=True,
                text=True,
                timeout=1800,
            )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        tail = (getattr(exc, "stderr", "") or "").strip().splitlines()[-3:]
        return None, f"install failed: {' | '.join(tail) or exc}"
    return python, ""


class Proc:
    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        log: Path,
    ) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )

    def wait_http(self, url: str, body: bytes, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"exited with {self.proc.returncode}: {self.log.read_text()[-600:]}"
            try:
                req = urllib.request.Request(
                    url, data=body, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(req, timeout=5) as r:
                    if r.status == 200:
                        return ""
            except Exception as exc:
                last = str(exc)
            time.sleep(0.3)
        return f"not answering within {timeout:.0f}s ({last})"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def wrk(
    url: str,
    body: bytes,
    concurrency: int,
    duration: float,
    *,
    threads: int | None = None,
    warm: bool = True,
) -> Point:
    threads = threads or (1 if concurrency == 1 else 2)
    with tempfile.NamedTemporaryFile(prefix="mizzen-bench-body-", suffix=".json") as file:
        file.write(body)
        file.flush()
        env = {**os.environ, "WRK_BODY_FILE": file.name}
        if warm:
            subprocess.run(
                ["wrk", "-t1", "-c1", "-d1s", "-s", str(LUA), url], env=env, capture_output=True
            )
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{concurrency}",
                f"-d{max(1, round(duration))}s",
                "--timeout",
                "5s",
                "-s",
                str(LUA),
                url,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=duration + 60,
        )
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result: {out.stdout[-500:]} {out.stderr[-500:]}")
    r = json.loads(line[len("WRK_RESULT ") :])
    return Point(
        r["requests"] / r["seconds"],
        r["p50_us"] / 1000,
        r["p99_us"] / 1000,
        r["errors"] + r["non2xx"],
        (r["requests"] - r["non2xx"]) / r["seconds"],
    )


def measure(name: str, url: str, body: bytes, duration: float, results: dict[str, Any]) -> None:
    points = {}
    for c in CONCURRENCY:
        points[c] = wrk(url, body, c, duration)
        p = points[c]
        print(
            f"  {name:<10} c={c:<3} {p.rps:>9.0f} req/s  p50 {p.p50_ms:7.2f} ms  p99 {p.p99_ms:7.2f} ms  errors {p.errors}",
            flush=True,
        )
    results[name] = points


def publish(work: Path) -> str:
    sys.path.insert(0, str(HELPERS))
    from baseline_model import fit

    from mizzen.storage.base import open_store
    from mizzen.storage.registry import publish_model

    store = (work / "store").as_uri()
    publish_model("classifier", fit(), example=[ROW], store=open_store(store))
    return store


def start_mizzen(work: Path, name: str, workers: int, extra: list[str]) -> tuple[Proc, str, str]:
    """`mizzen serve classifier` on a free port: (process, /predict URL, why it did not start)."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "mizzen.cli.main",
        "serve",
        "classifier",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        *extra,
    ]
    store = (work / "store").as_uri()
    proc = Proc(argv, env={"MIZZEN_STORE": store}, cwd=work, log=work / f"{name}.log")
    url = f"http://127.0.0.1:{port}/predict"
    return proc, url, proc.wait_http(url, json.dumps({"instances": [ROW]}).encode())


def bench_mizzen(
    work: Path,
    args: argparse.Namespace,
    results: dict[str, Any],
    notes: dict[str, str],
    *,
    http: str = "builtin",
    name: str = "mizzen",
) -> None:
    proc, url, why = start_mizzen(work, name, args.workers, ["--http", http])
    try:
        if why:
            notes[name] = why
            return
        measure(name, url, json.dumps({"instances": [ROW]}).encode(), args.duration, results)
    finally:
        proc.stop()


OVERLOAD_FLAGS = ["--max-batch-size", "8", "--max-queue", "16"]


def bench_overload(work: Path, args: argparse.Namespace, out: dict[str, Any]) -> None:
    """Goodput (2xx/s) at 32 and 256 connections against --max-batch-size 8 --max-queue 16:
    past capacity the excess must be refused (503) cheaply, not drag the served rate down.
    The two loads alternate for --rounds rounds; each figure is the median round."""
    proc, url, why = start_mizzen(work, "overload", args.workers, OVERLOAD_FLAGS)
    try:
        if why:
            out["note"] = why
            return
        body = json.dumps({"instances": [ROW]}).encode()
        rounds: dict[int, list[Point]] = {32: [], 256: []}
        for _ in range(args.rounds):
            for c in rounds:
                rounds[c].append(wrk(url, body, c, args.duration))
        for c, points in rounds.items():
            p = sorted(points, key=lambda q: q.ok_rps)[len(points) // 2]
            refused = 1 - p.ok_rps / p.rps if p.rps else 0.0
            print(
                f"  overload   c={c:<3} goodput {p.ok_rps:>8.0f} 2xx/s  of {p.rps:>8.0f} answers/s "
                f"({refused:.0%} refused)  p50 {p.p50_ms:6.2f} ms  p99 {p.p99_ms:7.2f} ms"
                f"  [rounds: {', '.join(f'{q.ok_rps:.0f}' for q in points)}]",
                flush=True,
            )
            out[c] = p
    finally:
        proc.stop()


def bench_fairness(work: Path, args: argparse.Namespace, out: dict[str, Any]) -> None:
    """A light client (one row, one connection) alone, then beside four clients sending
    requests of --heavy-rows rows; one worker, so they all share it. p50 of the light client."""
    light = json.dumps({"instances": [ROW]}).encode()
    heavy = json.dumps({"instances": [ROW] * args.heavy_rows}).encode()
    for label, flags in (("batching", OVERLOAD_FLAGS), ("default", [])):
        proc, url, why = start_mizzen(work, f"fair-{label}", 1, flags)
        try:
            if why:
                out[label] = why
                continue
            alone = wrk(url, light, 1, args.duration)
            wrk(url, heavy, 4, 1, threads=1, warm=False)  # warm the heavy path
            with ThreadPoolExecutor(2) as pool:
                loaded = pool.submit(wrk, url, heavy, 4, args.duration + 2, threads=1, warm=False)
                time.sleep(1.0)
                beside = wrk(url, light, 1, args.duration, warm=False)
                heavy_point = loaded.result()
            print(
                f"  fairness   {label:<9} light p50 alone {alone.p50_ms:6.2f} ms, beside 4 heavy "
                f"clients {beside.p50_ms:7.2f} ms (p99 {beside.p99_ms:7.2f} ms, {beside.rps:.0f} req/s, "
                f"{beside.errors} errors); heavy: "
                f"{heavy_point.ok_rps * args.heavy_rows:>9.0f} rows/s, "
                f"{heavy_point.rps - heavy_point.ok_rps:.0f} refused/s",
                flush=True,
            )
            out[label] = (alone, beside, heavy_point)
        finally:
            proc.stop()


def bench_mlflow(
    work: Path, args: argparse.Namespace, results: dict[str, Any], notes: dict[str, str]
) -> None:
    python, why = ensure_venv("mlflow", ["mlflow", "scikit-learn"])
    if python is None:
        notes["mlflow"] = why
        return
    model_dir = work / "mlflow-model"
    done = subprocess.run(
        [str(python), str(HELPERS / "baseline_model.py"), "mlflow", str(model_dir)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        notes["mlflow"] = "could not save the model: " + done.stderr.strip()[-300:]
        return
    port = free_port()
    argv = [
        str(python.parent / "mlflow"),
        "models",
        "serve",
        "-m",
        str(model_dir),
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        str(args.workers),
    ]
    proc = Proc(
        argv,
        env={
            "MLFLOW_TRACKING_URI": (work / "mlruns").as_uri(),
            "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        cwd=work,
        log=work / "mlflow.log",
    )
    body = json.dumps({"inputs": [ROW]}).encode()
    url = f"http://127.0.0.1:{port}/invocations"
    try:
        why = proc.wait_http(url, body)
        if why:
            notes["mlflow"] = "did not start: " + why
            return
        measure("mlflow", url, body, args.duration, results)
    finally:
        proc.stop()


def bench_bentoml(
    work: Path, args: argparse.Namespace, results: dict[str, Any], notes: dict[str, str]
) -> None:
    python, why = ensure_venv("bentoml", ["bentoml", "scikit-learn"])
    if python is None:
        notes["bentoml"] = why
        return
    model_file = work / "bento-model.pkl"
    done = subprocess.run(
        [str(python), str(HELPERS / "baseline_model.py"), "pickle", str(model_file)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        notes["bentoml"] = "could not save the model: " + done.stderr.strip()[-300:]
        return
    port = free_port()
    argv = [
        str(python.parent / "bentoml"),
        "serve",
        "bento_service:Classifier",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--working-dir",
        str(HELPERS),
    ]
    env = {
        "BENCH_MODEL": str(model_file),
        "BENCH_WORKERS": str(args.workers),
        "BENTOML_DO_NOT_TRACK": "true",
        "BENTOML_HOME": str(work / "bentoml"),
    }
    proc = Proc(argv, env=env, cwd=work, log=work / "bentoml.log")
    body = json.dumps({"instances": [ROW]}).encode()
    url = f"http://127.0.0.1:{port}/predict"
    try:
        why = proc.wait_http(url, body)
        if why:
            notes["bentoml"] = "did not start: " + why
            return
        measure("bentoml", url, body, args.duration, results)
    finally:
        proc.stop()


def bench_inprocess(work: Path, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """ONNX Runtime called directly, single-row, no HTTP: the limit."""
    import numpy as np

    from mizzen.serve.model import load_model
    from mizzen.storage.base import open_store
    from mizzen.storage.registry import ModelRegistry

    registry = ModelRegistry(open_store((work / "store").as_uri()))
    model = load_model("classifier", 1, registry.fetch("classifier", 1, work / "fetched"))
    feeds = {"input": np.asarray([ROW], dtype=np.float32)}
    run = model.runner
    for _ in range(1000):
        run(feeds)
    times = []
    end = time.perf_counter() + min(args.duration, 3.0)
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        run(feeds)
        times.append(time.perf_counter() - t0)
    times.sort()
    total = sum(times)
    p = Point(
        len(times) / total, times[len(times) // 2] * 1000, times[int(len(times) * 0.99)] * 1000, 0
    )
    print(
        f"  {'onnx-inproc':<10} c=1   {p.rps:>9.0f} calls/s p50 {p.p50_ms:7.3f} ms  p99 {p.p99_ms:7.3f} ms",
        flush=True,
    )
    results["onnxruntime (in-process)"] = {1: p}


def report(results: dict[str, Any], notes: dict[str, str]) -> None:
    print("\n| server | c | req/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|")
    for name, points in results.items():
        for c, p in points.items():
            print(f"| {name} | {c} | {p.rps:.0f} | {p.p50_ms:.2f} | {p.p99_ms:.2f} | {p.errors} |")
    for name, why in notes.items():
        print(f"| {name} | - | not measured: {why} | | | |")
    m = results.get("mizzen")
    if not m:
        return
    print()
    for base in ("mizzen-uvicorn", "mlflow", "bentoml"):
        if base in results:
            ratios = ", ".join(
                f"c={c}: {m[c].rps / results[base][c].rps:.1f}x" for c in CONCURRENCY
            )
            print(f"mizzen / {base} throughput: {ratios}")
    limit = results.get("onnxruntime (in-process)")
    if limit:
        print(
            f"mizzen c=32 throughput is {m[32].rps / limit[1].rps:.1%} of single-thread in-process ONNX Runtime calls"
        )
    checks = [
        ("p50 <= 1 ms at c=1", m[1].p50_ms <= 1.0, f"{m[1].p50_ms:.2f} ms"),
        ("p99 <= 5 ms at c=8", m[8].p99_ms <= 5.0, f"{m[8].p99_ms:.2f} ms"),
    ]
    for base, factor in (("mlflow", 20), ("bentoml", 10)):
        if base in results:
            ratio = m[32].rps / results[base][32].rps
            checks.append((f">= {factor}x {base} at c=32", ratio >= factor, f"{ratio:.1f}x"))
    for label, ok, value in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {label}: {value}")


def report_overload(overload: dict[str, Any], fairness: dict[str, Any]) -> None:
    if 32 in overload and 256 in overload:
        low, high = overload[32], overload[256]
        ratio = high.ok_rps / low.ok_rps if low.ok_rps else 0.0
        print(
            f"\noverload: goodput at 256 connections is {ratio:.2f}x the goodput at 32 "
            f"({high.ok_rps:.0f} vs {low.ok_rps:.0f} 2xx/s)"
        )
        print(
            f"  [{'ok' if ratio >= 0.7 else 'MISSED'}] goodput at c=256 >= 0.7x c=32: {ratio:.2f}x"
        )
    elif "note" in overload:
        print(f"\noverload: not measured: {overload['note']}")
    for label, value in fairness.items():
        if isinstance(value, str):
            print(f"fairness ({label}): not measured: {value}")
            continue
        alone, beside, _ = value
        ratio = beside.p50_ms / alone.p50_ms if alone.p50_ms else 0.0
        print(
            f"fairness ({label}): light-client p50 beside heavy clients is {ratio:.1f}x its p50 "
            f"alone ({beside.p50_ms:.2f} vs {alone.p50_ms:.2f} ms)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load point")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="worker processes for every server"
    )
    parser.add_argument(
        "--only",
        default="mizzen,mizzen-uvicorn,mlflow,bentoml,onnx,overload,fairness",
        help="comma-separated subset (mizzen-uvicorn: the same app behind uvicorn; overload: "
        "goodput at 32 vs 256 connections; fairness: a light client beside heavy ones)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="overload: rounds of (32, 256) connections"
    )
    parser.add_argument(
        "--heavy-rows", type=int, default=10_000, help="rows per request of the heavy clients"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk, or bash scripts/setup.sh)")
    only = set(args.only.split(","))
    print(
        f"cpus={os.cpu_count()} workers={args.workers} duration={args.duration}s load-average-before={os.getloadavg()[0]:.2f}",
        flush=True,
    )
    results: dict[str, Any] = {}
    notes: dict[str, str] = {}
    overload: dict[str, Any] = {}
    fairness: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mizzen-bench-") as tmp:
        work = Path(tmp)
        publish(work)  # the model every server below reuses
        if "mizzen" in only:
            bench_mizzen(work, args, results, notes)
        if "mizzen-uvicorn" in only:
            bench_mizzen(work, args, results, notes, http="uvicorn", name="mizzen-uvicorn")
        if "onnx" in only:
            bench_inprocess(work, args, results)
        if "mlflow" in only:
            bench_mlflow(work, args, results, notes)
        if "bentoml" in only:
            bench_bentoml(work, args, results, notes)
        if "overload" in only:
            bench_overload(work, args, overload)
        if "fairness" in only:
            bench_fairness(work, args, fairness)
    print(f"load-average-after={os.getloadavg()[0]:.2f}")
    report(results, notes)
    report_overload(overload, fairness)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "results": {
                        k: {c: p.__dict__ for c, p in v.items()} for k, v in results.items()
                    },
                    "notes": notes,
                    "overload": {str(c): p.__dict__ for c, p in overload.items() if c != "note"},
                    "fairness": {
                        k: [p.__dict__ for p in v]
                        for k, v in fairness.items()
                        if not isinstance(v, str)
                    },
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
