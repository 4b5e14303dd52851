"""Seed a store with realistic run records (for the dashboard's tests, benchmark and demos)."""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict

from mizzen.storage.base import Store
from mizzen.storage.runs import (
    DONE_MARKER,
    Metric,
    RunRecord,
    RunStore,
    Status,
    StepRecord,
    new_run_id,
)


def job_run(
    workload: str,
    started: float,
    *,
    status: Status = "succeeded",
    seconds: float = 60.0,
    accuracy: float | None = None,
    seed: int = 0,
) -> tuple[RunRecord, list[Metric]]:
    rng = random.Random(seed)
    rid = new_run_id(started).rsplit("-", 1)[0] + f"-{seed % 65536:04x}"
    acc = accuracy if accuracy is not None else round(0.7 + 0.25 * rng.random(), 4)
    epochs = 8
    metrics = [
        Metric(
            "loss",
            round(1.2 * (0.6 ** (e + 1)) + 0.05 * rng.random(), 4),
            e,
            started + seconds * (e + 1) / epochs,
        )
        for e in range(epochs)
    ]
    metrics += [
        Metric(
            "accuracy",
            round(acc * (0.7 + 0.3 * (e + 1) / epochs), 4),
            e,
            started + seconds * (e + 1) / epochs,
        )
        for e in range(epochs)
    ]
    rec = RunRecord(
        id=rid,
        workload=workload,
        kind="job",
        status=status,
        started=started,
        ended=started + seconds if status != "running" else None,
        trigger=rng.choice(["manual", "schedule"]),
        git_sha=f"{rng.getrandbits(160):040x}",
        user="ada",
        host="laptop",
        reason="exit code 1: ValueError: bad input" if status == "failed" else "",
        params={"lr": round(0.001 * (1 + seed % 5), 4), "epochs": epochs, "model": "gbm"},
        metrics={"accuracy": metrics[-1].value, "loss": metrics[epochs - 1].value},
        steps=[
            StepRecord(
                workload,
                workload,
                status,
                started,
                started + seconds if status != "running" else None,
                1 if status == "failed" else 0,
                1,
            )
        ],
    )
    return rec, metrics


def write(
    store: Store, rec: RunRecord, metrics: list[Metric], log: str = "", done: bool = True
) -> None:
    runs = RunStore(store)
    store.write_bytes(f"{rec.prefix}/run.json", rec.to_json())
    if metrics:
        store.write_bytes(
            f"{rec.prefix}/metrics.jsonl",
            "".join(json.dumps(asdict(m)) + "\n" for m in metrics).encode(),
        )
    for step in rec.steps:
        runs.put_log(rec, step.name, (log or f"starting {step.name}\nepoch 1 ...\ndone\n").encode())
    if done:
        store.write_bytes(f"{rec.prefix}/{DONE_MARKER}", b"")


def seed_runs(
    store: Store,
    count: int,
    workloads: tuple[str, ...] = ("train", "features", "report"),
    now: float | None = None,
) -> list[RunRecord]:
    """`count` finished runs spread over the workloads, one every ten minutes back from now."""
    now = now if now is not None else time.time()
    out = []
    for i in range(count):
        status: Status = "failed" if i % 13 == 5 else "succeeded"
        rec, metrics = job_run(
            workloads[i % len(workloads)],
            now - 600 * (count - i),
            status=status,
            seconds=30 + (i * 7) % 300,
            seed=i,
        )
        write(store, rec, metrics)
        out.append(rec)
    return out


def pipeline_run(
    store: Store,
    name: str,
    started: float,
    states: dict[str, Status],
    after: dict[str, list[str]],
    *,
    done: bool = True,
) -> RunRecord:
    steps = []
    t = started
    for step, state in states.items():
        ended = t + 20 if state in ("succeeded", "failed") else None
        steps.append(
            StepRecord(
                step,
                step,
                state,
                t if state != "pending" and state != "skipped" else None,
                ended,
                0 if state == "succeeded" else None,
                1,
                after=after.get(step, []),
            )
        )
        t += 20
    final: Status = (
        "failed" if "failed" in states.values() else ("succeeded" if done else "running")
    )
    rec = RunRecord(
        id=new_run_id(started),
        workload=name,
        kind="pipeline",
        status=final,
        started=started,
        ended=t if done else None,
        steps=steps,
    )
    write(store, rec, [], done=done)
    return rec


def silent_run(
    store: Store, workload: str, heartbeat: float, seconds: float, *, pid: int = 4242
) -> RunRecord:
    """A job run left `running` by a runner that stopped `seconds` after it started."""
    rec = RunRecord(
        id=new_run_id(heartbeat - seconds),
        workload=workload,
        kind="job",
        started=heartbeat - seconds,
        host="laptop",
        pid=pid,
        heartbeat=heartbeat,
        steps=[StepRecord(workload, workload, "running", heartbeat - seconds)],
    )
    write(store, rec, [], log="first\n", done=False)
    return rec
