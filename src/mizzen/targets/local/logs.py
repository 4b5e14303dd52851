"""Logs of local runs, from their records in the project store (`mizzen logs RUN|WORKLOAD`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import click

from mizzen.errors import UsageError


def find_run(runs: Any, ref: str) -> Any:
    """A run by id (prefix) or `workload/id`, or the latest run of a workload."""
    if "/" not in ref and ref in runs.workloads():
        latest = runs.list(ref, limit=5)  # ids sort by second; `started` orders within one
        if latest:
            return max(latest, key=lambda r: r.started)
    try:
        return runs.get(ref)
    except KeyError:
        raise UsageError(
            f"no run or workload {ref!r} in the run records", hint="list them with `mizzen runs`"
        ) from None
    except LookupError as exc:
        raise UsageError(str(exc), hint="give more of the run id, or WORKLOAD/RUN-ID") from None


def print_logs(
    runs: Any,
    ref: str,
    *,
    step: str | None = None,
    follow: bool = False,
    echo: Callable[[str], None] = click.echo,
    poll: float = 1.0,
) -> int:
    """Print a run's logs (following them while it runs); 0, or 1 when it did not succeed
    and was followed to its end."""
    record = find_run(runs, ref)
    names = [s.name for s in record.steps]
    if step is not None and step not in names:
        raise UsageError(f"run {record.id} has no step {step!r}", hint=f"steps: {', '.join(names)}")
    chosen = [step] if step else names
    prefix = len(chosen) > 1
    seen: dict[str, int] = dict.fromkeys(chosen, 0)
    while True:
        done = (
            runs.is_done(record) or runs.get(f"{record.workload}/{record.id}").status == "lost"
            if follow
            else True
        )
        for name in chosen:
            data = runs.log(record, name)
            new = data[seen[name] :]
            end = new.rfind(b"\n") + 1 if follow and not done else len(new)
            chunk, seen[name] = new[:end], seen[name] + end
            for line in chunk.decode("utf-8", "replace").splitlines():
                echo(f"{name} | {line}" if prefix else line)
        if done:
            break
        sys.stdout.flush()
        time.sleep(poll)
    if follow:
        final = runs.get(f"{record.workload}/{record.id}")
        click.echo(
            f"run {final.id} {final.status}{': ' + final.reason if final.reason else ''}", err=True
        )
    return 0
