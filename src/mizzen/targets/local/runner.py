"""Run steps on this machine: attempts with retries and backoff, volumes around each attempt,
and a DAG executor that runs independent steps in parallel and skips the dependants of a
failed step while the others finish.

A job run is a graph of one step; `mizzen exec` in a pod is the same with no retries (the
cluster retries). Nothing here knows the spec: a `Task` carries everything resolved.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mizzen.targets.local.console import Console
from mizzen.targets.local.procs import DEFAULT_GRACE, LaunchLike, Limits, Outcome, ProcessSet, Stop
from mizzen.targets.local.recorder import Recorder

if TYPE_CHECKING:
    from mizzen.storage.runs import StepRecord

Expand = Callable[[list[str], dict[str, str], Path], Sequence[LaunchLike]]


@dataclass
class Task:
    """One step, resolved: argv and env already hold the run's id, date and folders."""

    name: str
    job: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    expand: Expand  # the processes of one attempt (launch.launches for a plan job)
    mounts: tuple[Any, ...] = ()
    after: tuple[str, ...] = ()
    retries: int = 0
    retry_delay: float = 10.0
    timeout: float | None = None
    memory: tuple[int, str] | None = None  # (bytes, as written)
    # once an attempt succeeded (and its volumes were written back): None, or why the step
    # fails after all (its dataset outputs broke their contract)
    on_success: Callable[[], tuple[str | None, list[str]]] | None = None


@dataclass
class Run:
    id: str
    date: str
    recorder: Recorder
    console: Console
    stop: Stop = field(default_factory=Stop)
    grace: float = DEFAULT_GRACE
    active: set[ProcessSet] = field(default_factory=set)
    root: str | None = None  # the project: where `.mizzen/secrets/<env>.env` lives
    env: str | None = None
    volume_wait: tuple[float, str] | None = None  # (seconds, as set); None: MIZZEN_VOLUME_WAIT

    def kill_now(self) -> None:
        import signal

        for procs in list(self.active):
            procs.signal_all(signal.SIGKILL)


def human_seconds(seconds: float) -> str:
    if 0 < seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def run_task(run: Run, task: Task, rec: StepRecord) -> None:
    """All attempts of one step; leaves the outcome in `rec`."""
    deadline = time.monotonic() + task.timeout if task.timeout else None
    delay = task.retry_delay
    total = task.retries + 1
    outcome = Outcome("failed", None, "did not start")
    for attempt in range(1, total + 1):
        with run.recorder.lock:
            rec.attempts = attempt
            rec.status = "running"
            rec.started = rec.started or time.time()
        outcome = _attempt(run, task, deadline)
        if outcome.ok or not outcome.retryable or attempt == total or run.stop.is_set():
            break
        run.console.note(
            f"{task.name}: attempt {attempt}/{total} {outcome.reason}; retrying in {human_seconds(delay)}",
            level="warn",
        )
        if run.stop.wait(delay):
            outcome = Outcome(run.stop.status, outcome.code, run.stop.reason, retryable=False)
            break
        delay *= 2
    with run.recorder.lock:
        rec.status = outcome.status
        rec.exit_code = outcome.code
        rec.reason = (
            outcome.reason
            if total == 1 or outcome.ok
            else f"{outcome.reason} (attempt {rec.attempts} of {total})"
        )
        rec.ended = time.time()


def _attempt(run: Run, task: Task, deadline: float | None) -> Outcome:
    run_dir = run.recorder.step_dir(task.name)
    session = None
    if task.mounts:
        from mizzen.storage.volumes import VolumeSession

        session = VolumeSession(
            tuple(task.mounts),
            run.id,
            run.date,
            root=run.root,
            env=run.env,
            progress=run.console.interactive,
            hold=_lock_wait(run, task, deadline),
        )
    try:
        if session is not None:
            from mizzen.storage.volumes import VolumeBusyError, VolumeWaitCancelled

            try:
                session.prepare()
            except VolumeWaitCancelled:
                return Outcome(run.stop.status, None, run.stop.reason, retryable=False)
            except VolumeBusyError as exc:
                return Outcome("failed", None, exc.message, retryable=False)
            except Exception as exc:
                return Outcome("failed", None, f"could not prepare its volumes: {exc}")
        launches = list(task.expand(list(task.argv), dict(task.env), run_dir))
        several = len(launches) > 1

        def on_line(label: str, text: str) -> None:
            masked = run.console.line(label, text)
            run.recorder.log(task.name, f"[{label}] {masked}" if several else masked)

        limits = Limits(deadline=deadline, timeout_text=human_seconds(task.timeout or 0))
        if task.memory is not None:
            limits.memory_bytes, limits.memory_text = task.memory
        procs = ProcessSet(
            launches,
            env=task.env,
            cwd=task.cwd,
            on_line=on_line,
            stop=run.stop,
            limits=limits,
            grace=run.grace,
        )
        run.active.add(procs)
        try:
            outcome = procs.run()
        finally:
            run.active.discard(procs)
        if session is not None:
            if outcome.ok:
                try:
                    session.commit()
                except Exception as exc:
                    return Outcome("failed", 0, f"could not write back its volumes: {exc}")
            else:
                session.abort()
        if outcome.ok and task.on_success is not None:
            reason, notes = task.on_success()
            for note in notes:
                run.console.note(f"{task.name}: {note}")
                run.recorder.log(task.name, note)
            if reason:
                run.console.note(f"{task.name}: {reason}", level="error")
                return Outcome("failed", 0, reason, retryable=False)
        return outcome
    finally:
        if session is not None:
            session.cleanup()


def _lock_wait(run: Run, task: Task, deadline: float | None) -> Any:
    """How long the step may wait for volumes other runs hold: its timeout, if that comes
    first, else MIZZEN_VOLUME_WAIT (1h)."""
    from mizzen.storage.volumes import LockWait, volume_wait

    seconds, text = run.volume_wait or volume_wait()
    until, why = time.monotonic() + seconds, f"MIZZEN_VOLUME_WAIT={text}"
    if deadline is not None and deadline <= until:
        until, why = deadline, f"its timeout of {human_seconds(task.timeout or 0)}"
    return LockWait(
        step=task.name,
        deadline=until,
        limit=why,
        stopped=run.stop.is_set,
        note=lambda text: run.console.note(f"{task.name}: {text}", level="warn"),
    )


def execute(run: Run, tasks: list[Task], *, parallel: int) -> None:
    """Run `tasks` in dependency order, at most `parallel` at once."""
    recs = {s.name: s for s in run.recorder.record.steps}
    state: dict[str, str] = {}
    pending = list(tasks)
    running: dict[str, threading.Thread] = {}
    done: queue.Queue[str] = queue.Queue()

    def worker(task: Task) -> None:
        try:
            run_task(run, task, recs[task.name])
        except Exception as exc:  # a bug must not hang the graph
            with run.recorder.lock:
                recs[task.name].status = "failed"
                recs[task.name].reason = f"could not run: {exc!r}"
                recs[task.name].ended = time.time()
        finally:
            done.put(task.name)

    def skip(task: Task, reason: str) -> None:
        with run.recorder.lock:
            recs[task.name].status = "skipped"
            recs[task.name].reason = reason
        state[task.name] = "skipped"
        pending.remove(task)

    while pending or running:
        changed = True
        while changed:
            changed = False
            for task in list(pending):
                bad = next(
                    (d for d in task.after if state.get(d) in ("failed", "skipped", "cancelled")),
                    None,
                )
                if bad is not None:
                    skip(
                        task,
                        f"not run because step {bad!r} {'was ' if state[bad] != 'failed' else ''}{state[bad]}",
                    )
                    changed = True
        if run.stop.is_set():
            for task in list(pending):
                skip(task, f"not run: {run.stop.reason}")
        for task in list(pending):
            if len(running) >= parallel:
                break
            if all(state.get(d) == "succeeded" for d in task.after):
                pending.remove(task)
                thread = threading.Thread(
                    target=worker, args=(task,), name=f"step-{task.name}", daemon=True
                )
                running[task.name] = thread
                thread.start()
        if not running:
            for task in list(pending):
                skip(task, "not run: its dependencies never finished")
            break
        try:
            name = done.get(timeout=0.5)
        except queue.Empty:
            continue
        running.pop(name).join()
        state[name] = recs[name].status
