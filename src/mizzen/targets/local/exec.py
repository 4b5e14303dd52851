"""`mizzen exec -- ARGV…`: one command as a recorded run, the container entry point.

It reads only the environment the target set, through the run-time contract
(`mizzen.contract`): the project store (where to record; unset: not recorded), the workload,
project and target, and optionally the run id and date, env, git sha, spec digest, image,
the pipeline step, the `--set` overrides of a one-off run (recorded as params) and the
alerts it sends. Secret values are masked in the logs.
The run goes through the same runner and recorder as a local job run.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mizzen import contract
from mizzen.errors import UsageError
from mizzen.spec.interpolate import RefError
from mizzen.targets.local import env as envs
from mizzen.targets.local.console import Console
from mizzen.targets.local.procs import DEFAULT_GRACE, Command
from mizzen.targets.local.recorder import Recorder
from mizzen.targets.local.runner import Run, Task, execute
from mizzen.targets.local.target import EXIT_CANCELLED, _user, cancel_on_signals, conclude, today

if TYPE_CHECKING:
    from mizzen.storage.runs import Metric, RunRecord


def exec_run(
    argv: list[str],
    *,
    workload: str | None = None,
    environ: Mapping[str, str] | None = None,
    console: Console | None = None,
    grace: float = DEFAULT_GRACE,
) -> int:
    """Run `argv` to completion as one recorded run; returns the child's exit code."""
    if not argv:
        raise UsageError(
            "nothing to run", hint="mizzen exec [--workload NAME] -- COMMAND [ARGS...]"
        )
    from mizzen.storage.runs import RunRecord, RunStore, StepRecord, new_run_id

    environ = dict(os.environ if environ is None else environ)
    console = console or Console()
    given = contract.read(environ)
    name = workload or given.workload or Path(argv[0]).name
    target = given.target or "kubernetes"
    from mizzen.storage.project import contract_store

    store = contract_store(environ)
    runs = RunStore(store) if store is not None else None
    if runs is None:
        console.note(
            f"warning: {contract.STORE} is not set, so this run is not recorded", level="warn"
        )
    now = time.time()
    run_id = given.run_id or new_run_id(now)
    run_date = given.run_date or today(now)
    staging = Path(tempfile.mkdtemp(prefix="mizzen-run-"))
    run_dir = staging / name
    outputs = str(run_dir / "outputs")

    def fill(text: str) -> str:
        try:
            return envs.fill(text, run_id, run_date, outputs)
        except RefError:
            return text

    env = {k: fill(v) for k, v in environ.items()}
    env.update(contract.run_vars(run_id, run_date, str(run_dir), target))
    env[contract.WORKLOAD] = name
    env.setdefault("PYTHONUNBUFFERED", "1")
    console.redact.add(contract.secret_values(environ))
    console.labels([name])
    record = RunRecord(
        id=run_id,
        workload=name,
        kind="job",
        trigger="cluster",
        target=target,
        env=given.env,
        git_sha=given.git_sha,
        spec_digest=given.spec_digest,
        project=given.project or "",
        user=_user(),
        host=socket.gethostname(),
        image=given.image,
        steps=[StepRecord(name=name, job=name)],
    )
    if given.pipeline:  # a step of an Argo pipeline: alerts on the pipeline apply
        record.labels.update(
            {"mizzen.io/pipeline": given.pipeline, "mizzen.io/step": given.step or name}
        )
    recorder = Recorder(runs, record, staging, console)
    on_success = None
    if given.datasets and given.datasets.get("outputs"):
        from mizzen.datasets.jobs import commit

        def on_success() -> tuple[str | None, list[str]]:
            return commit(env, run_id, name)

    task = Task(
        name=name,
        job=name,
        on_success=on_success,
        argv=envs.resolve_mizzen([fill(a) for a in argv]),
        env=env,
        cwd=Path.cwd(),
        expand=lambda argv, env, run_dir: [Command(argv, name)],
    )
    run = Run(id=run_id, date=run_date, recorder=recorder, console=console, grace=grace)
    try:
        recorder.start()
        with cancel_on_signals(run):
            execute(run, [task], parallel=1)
        code, metrics = conclude(run, given.sets)
        if given.datasets:
            from mizzen.datasets.jobs import finish

            finish(env, run_id)
        _send_alerts(given.alerts, environ, record, metrics)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    child = record.steps[0].exit_code
    if child is None:
        return code
    if child < 0:
        return 128 - child
    return child if child or code != EXIT_CANCELLED else EXIT_CANCELLED


def _send_alerts(
    text: str | None, environ: Mapping[str, str], record: RunRecord, metrics: list[Metric]
) -> None:
    """The run-level alerts the renderer handed the pod (`MIZZEN_ALERTS`); never raises."""
    if not text:
        return
    from mizzen.notify import Origin, alerts_from_json, send_run_alerts
    from mizzen.plan.model import secret_env_name

    try:
        alerts = alerts_from_json(text)
    except (ValueError, TypeError) as exc:
        Console().note(
            f"warning: MIZZEN_ALERTS is not readable, no alerts sent: {exc}", level="warn"
        )
        return
    origin = Origin(record.project, record.env, record.target)
    send_run_alerts(
        alerts, origin, record, metrics, lambda s, k: environ.get(secret_env_name(s, k))
    )
