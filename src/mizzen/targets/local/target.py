"""The local target: jobs and pipelines as child processes of this command, recorded in the
project store."""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mizzen import contract
from mizzen.errors import EXIT_FAILED, EXIT_OK, UsageError
from mizzen.secrets import SecretValues
from mizzen.targets.base import ACCEPTS, Options, Target, WorkloadStatus
from mizzen.targets.local import env as envs
from mizzen.targets.local.console import Console
from mizzen.targets.local.procs import DEFAULT_GRACE, Stop
from mizzen.targets.local.recorder import Recorder, sweep_staging
from mizzen.targets.local.runner import Run, Task, execute, human_seconds

if TYPE_CHECKING:
    from mizzen.plan.model import Job, Plan, Process
    from mizzen.storage.runs import Metric, RunRecord, RunStore

EXIT_CANCELLED = 130
STAGING = ".mizzen/runs-staging"


@dataclass(frozen=True)
class StepPlan:
    name: str
    job: Job
    after: tuple[str, ...]
    process: Process | None = None  # a pipeline step's own argv (step `args:`), else the job's

    @property
    def effective(self) -> Process:
        return self.process or self.job.process


class LocalTarget(Target):
    """Processes of this command, recorded in the project store; services and schedules
    supervised in the foreground (`mizzen up`)."""

    name = "local"
    accepts = ACCEPTS["local"]

    def __init__(self, *, console: Console | None = None, grace: float = DEFAULT_GRACE) -> None:
        self.console = console
        self.grace = grace

    def instead(self, operation: str) -> str:
        return {
            "delete": "nothing is deployed on this machine; `mizzen delete` removes a release from a cluster"
        }.get(operation, "")

    def run(
        self,
        plan: Plan,
        workload: str,
        options: Options | None = None,
        *,
        trigger: str = "manual",
        stop: Stop | None = None,
    ) -> int:
        options = options or Options()
        self.check("run", options)
        parallel, sets = options.parallel, dict(options.sets)
        if plan.target != "local":
            raise UsageError(f"this plan was compiled for the {plan.target} target, not local")
        steps, kind, bound = steps_of(plan, workload)
        store_secrets = SecretValues(plan.root, plan.env)
        values = store_secrets.require(ref for s in steps for ref in _refs(s.effective))
        values.update(store_credentials(plan, store_secrets))
        for s in steps:
            envs.check_gpus(f"job {s.job.name!r}", s.effective.resources)

        from mizzen.storage.runs import RunRecord, StepRecord, new_run_id

        now = time.time()
        run_id, run_date = new_run_id(now), today(now)
        staging = Path(plan.root) / STAGING / run_id
        sha = git_sha(plan.root)
        tasks = [self._task(plan, s, values, run_id, run_date, staging, sha) for s in steps]
        wait = None
        if any(m.kind == "blob" for t in tasks for m in t.mounts):
            from mizzen.storage.volumes import volume_wait

            wait = volume_wait()  # a bad MIZZEN_VOLUME_WAIT stops the run before it starts
        console = self.console or Console()
        console.redact.add(values.values())
        console.labels(t.name for t in tasks)

        record = RunRecord(
            id=run_id,
            workload=workload,
            kind=kind,
            trigger=trigger,
            target="local",
            env=plan.env,
            git_sha=sha,
            spec_digest=plan.spec_digest,
            project=plan.project,
            user=_user(),
            host=socket.gethostname(),
            pid=os.getpid(),
            labels={k: v for s in steps for k, v in s.effective.placement.labels.items()},
            steps=[StepRecord(name=s.name, job=s.job.name, after=list(s.after)) for s in steps],
        )
        runs = open_runs(plan)
        for lost, written in sweep_staging(staging.parent, runs):
            console.note(f"run {lost} had lost its runner: recorded as lost, its staging removed")
            if written is not None:  # its `failed` alerts were never sent
                _alerts(plan, written, [], store_secrets)
        recorder = Recorder(runs, record, staging, console)
        run = Run(
            id=run_id,
            date=run_date,
            recorder=recorder,
            console=console,
            stop=stop or Stop(),
            grace=self.grace,
            root=plan.root,
            env=plan.env,
            volume_wait=wait,
        )
        given = [x for x in (parallel, bound) if x]
        limit = min(given) if given else max(2, os.cpu_count() or 2)
        console.note(
            f"run {run_id}: {kind} {workload} ({len(tasks)} step{'s' if len(tasks) != 1 else ''})"
        )
        recorder.start()
        timer = None
        pipeline_timeout = plan.pipelines[workload].timeout_seconds if kind == "pipeline" else None
        if pipeline_timeout:
            timer = threading.Timer(
                pipeline_timeout,
                run.stop.set,
                (f"the pipeline timed out after {human_seconds(pipeline_timeout)}", "failed"),
            )
            timer.daemon = True
            timer.start()
        try:
            with cancel_on_signals(run):
                execute(run, tasks, parallel=limit)
        finally:
            if timer is not None:
                timer.cancel()
        code, metrics = conclude(run, sets)
        with_datasets = next((t.env for t in tasks if contract.DATASETS in t.env), None)
        if with_datasets is not None:
            from mizzen.datasets.jobs import finish

            finish(with_datasets, run_id)
        _alerts(plan, record, metrics, store_secrets)
        recorder.remove_staging()
        return code

    def up(self, plan: Plan, names: list[str], options: Options) -> int:
        """Services (restarted, health-checked) and due schedules, until Ctrl-C."""
        self.check("up", options)
        from mizzen.targets.local.services import up

        return up(plan, tuple(names))

    def logs(self, plan: Plan, ref: str, options: Options) -> int:
        self.check("logs", options)
        from mizzen.targets.local.logs import print_logs

        return print_logs(require_runs(plan), ref, step=options.step, follow=options.follow)

    def status(self, plan: Plan, workloads: list[str], options: Options) -> list[WorkloadStatus]:
        """Each workload's latest local run: its status, when, and why it failed."""
        self.check("status", options)
        from mizzen.kinds import kind

        runs = require_runs(plan)
        recorded = set(runs.workloads())
        out = []
        for name in workloads or [w.name for w in plan.workloads]:
            w = plan.workload(name)
            latest = runs.list(name, limit=5) if name in recorded else []
            last = max(latest, key=lambda r: r.started) if latest else None
            out.append(
                WorkloadStatus(
                    workload=name,
                    kind=kind(w.kind).describe(w),
                    phase=last.status.capitalize() if last else "Never run",
                    age=None,
                    restarts=0,
                    last_run=last.started if last else None,
                    reason=(last.reason or "") if last else "",
                )
            )
        return out

    def _task(
        self,
        plan: Plan,
        step: StepPlan,
        secrets: dict[tuple[str, str], str],
        run_id: str,
        run_date: str,
        staging: Path,
        sha: str | None = None,
    ) -> Task:
        from mizzen.kinds import launches

        job = step.job
        process = step.effective
        run_dir = staging / step.name
        outputs = str(run_dir / "outputs")
        env = envs.process_env(process, secrets)
        for var in process.env:
            if var.value is not None:
                env[var.name] = envs.fill(var.value, run_id, run_date, outputs)
        env.update(
            envs.run_vars(run_id, run_date, run_dir, plan.store, env_name=plan.env, git_sha=sha)
        )
        keys = {s.name: s.keys for s in plan.secrets.values()}
        env.update(envs.store_secret_vars(plan.store, keys, secrets))
        argv = envs.resolve_mizzen(
            [envs.fill(a, run_id, run_date, outputs) for a in process.command]
        )

        def expand(argv: list[str], env: dict[str, str], run_dir: Path) -> list[Any]:
            out = launches(job, argv, env, run_dir)
            for item in out:
                if step.name != job.name and item.label.startswith(job.name):
                    item.label = step.name + item.label[len(job.name) :]
            return out

        expand(
            list(argv), dict(env), run_dir
        )  # refuses what this target cannot run, before anything starts
        on_success = None
        if job.outputs:
            from mizzen.datasets.jobs import commit

            def on_success() -> tuple[str | None, list[str]]:
                return commit(env, run_id, job.name)

        return Task(
            name=step.name,
            job=job.name,
            on_success=on_success,
            argv=argv,
            env=env,
            cwd=envs.working_dir(plan.root, process, f"job {job.name!r}"),
            expand=expand,
            mounts=process.mounts,
            after=step.after,
            retries=job.retries,
            retry_delay=job.retry_delay_seconds,
            timeout=job.timeout_seconds,
            memory=envs.memory_limit(process.resources),
        )


def require_runs(plan: Plan) -> RunStore:
    runs = open_runs(plan)
    if runs is None:
        raise UsageError(
            "this project has no store for run records", hint="set `store:` in mizzen.yaml"
        )
    return runs


def steps_of(plan: Plan, workload: str) -> tuple[list[StepPlan], str, int | None]:
    """The steps of a job or pipeline, its kind, and the pipeline's own parallelism."""
    if workload in plan.jobs:
        return [StepPlan(workload, plan.jobs[workload], ())], "job", None
    if workload in plan.pipelines:
        pipe = plan.pipelines[workload]
        steps = [StepPlan(s.name, plan.jobs[s.job], s.after, s.process) for s in pipe.steps]
        return steps, "pipeline", pipe.parallelism
    if workload in plan.services:
        raise UsageError(
            f"{workload!r} is a service, not a job or pipeline",
            hint=f"run services with `mizzen up {workload}`",
        )
    import difflib

    names = [*plan.jobs, *plan.pipelines]
    close = difflib.get_close_matches(workload, names, n=1)
    hint = (
        f"did you mean {close[0]!r}?"
        if close
        else f"jobs and pipelines: {', '.join(names) or '(none)'}"
    )
    raise UsageError(f"no job or pipeline named {workload!r}", hint=hint)


def _refs(process: Process) -> list[tuple[str, str]]:
    return [(r.secret, r.key) for r in process.secret_refs]


def store_credentials(plan: Plan, found: SecretValues) -> dict[tuple[str, str], str]:
    """The project store's own credentials (optional: the provider's usual places may do)."""
    store = plan.store
    if store is None or not store.secret:
        return {}
    keys = plan.secrets[store.secret].keys
    values = {(store.secret, k): found.get(store.secret, k) for k in keys}
    return {ref: v for ref, v in values.items() if v is not None}


def open_runs(plan: Plan) -> RunStore | None:
    if plan.store is None:
        return None
    from mizzen.storage.project import open_ref
    from mizzen.storage.runs import RunStore

    return RunStore(open_ref(plan.store, root=Path(plan.root), env=plan.env))


def git_sha(root: str) -> str | None:
    """The commit checked out in the project (None outside git)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--verify", "-q", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def today(now: float | None = None) -> str:
    return datetime.fromtimestamp(now if now is not None else time.time(), UTC).strftime("%Y-%m-%d")


@contextlib.contextmanager
def cancel_on_signals(run: Run) -> Iterator[None]:
    """Ctrl-C / SIGTERM: stop the children (SIGTERM, SIGKILL after the grace period); a second
    signal kills them at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if run.stop.is_set():
            run.console.note(f"{name} again: killing the processes now", level="warn")
            run.kill_now()
            return
        run.console.note(
            f"{name}: stopping (SIGTERM, then SIGKILL after {human_seconds(run.grace)}); {name} again to kill now",
            level="warn",
        )
        run.stop.set(f"cancelled by {name}")

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def conclude(run: Run, sets: dict[str, str] | None = None) -> tuple[int, list[Metric]]:
    """Decide the run's status, upload everything, print a summary; returns (exit code, metrics)."""
    record = run.recorder.record
    with run.recorder.lock:
        single = len(record.steps) == 1
        bad = [s for s in record.steps if s.status not in ("succeeded", "skipped")] or [
            s for s in record.steps if s.status != "succeeded"
        ]
        if run.stop.is_set() and run.stop.status == "cancelled":
            record.status, record.reason = "cancelled", run.stop.reason
        elif bad:
            first = bad[0]
            record.status = "failed"
            record.reason = (
                f"{first.name} {first.reason}" if single else f"step {first.name} {first.reason}"
            )
        else:
            record.status = "succeeded"
        record.ended = time.time()
    metrics = run.recorder.finish(sets)
    for s in record.steps:
        mark = {
            "succeeded": "ok",
            "failed": "FAILED",
            "cancelled": "cancelled",
            "skipped": "skipped",
        }.get(s.status, s.status)
        took = (
            f" in {human_seconds(round(s.duration, 1))}"
            if s.duration is not None and s.status != "skipped"
            else ""
        )
        why = f": {s.reason}" if s.reason and s.status != "succeeded" else ""
        run.console.note(
            f"  {s.name}: {mark}{took}{why}", level="ok" if s.status == "succeeded" else "error"
        )
    tail = f": {record.reason}" if record.reason else ""
    hint = f" (mizzen runs show {record.id})" if run.recorder.runs is not None else ""
    run.console.note(
        f"run {record.id} {record.status}{tail}{hint}",
        level="ok" if record.status == "succeeded" else "error",
    )
    code = {"succeeded": EXIT_OK, "cancelled": EXIT_CANCELLED}.get(record.status, EXIT_FAILED)
    return code, metrics


def _alerts(plan: Plan, record: RunRecord, metrics: list[Metric], secrets: SecretValues) -> None:
    from mizzen.notify import dispatch_run_alerts

    try:
        dispatch_run_alerts(plan, record, metrics, secrets.get)
    except Exception as exc:  # alerts never fail a run
        Console().note(f"warning: alerts not sent: {exc}", level="warn")
