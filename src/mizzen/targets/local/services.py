"""`mizzen up`: services supervised in the foreground (restarted with backoff), plus the
foreground scheduler for scheduled jobs and pipelines, until Ctrl-C."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mizzen import contract
from mizzen.errors import UsageError
from mizzen.secrets import SecretValues
from mizzen.targets.local import env as envs
from mizzen.targets.local.console import Console
from mizzen.targets.local.procs import DEFAULT_GRACE, Command, Limits, ProcessSet, Stop
from mizzen.targets.local.runner import Run, human_seconds
from mizzen.targets.local.target import cancel_on_signals, store_credentials, today

if TYPE_CHECKING:
    from mizzen.plan.model import Job, Pipeline, Plan, Service

MAX_RESTART_DELAY = 60.0
HEALTHY_AFTER = 60.0


@dataclass
class Supervisor:
    """Keeps one service process running: restarts it after it exits, waiting
    `delay`, doubling up to `max_delay`, back to `delay` after `healthy_after` seconds of running."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    console: Console
    stop: Stop
    delay: float = 1.0
    max_delay: float = MAX_RESTART_DELAY
    healthy_after: float = HEALTHY_AFTER
    memory: tuple[int, str] | None = None
    grace: float = DEFAULT_GRACE
    restarts: int = 0
    waits: list[float] = field(default_factory=list)
    probe: HealthProbe | None = None

    def run(self) -> None:
        wait = self.delay
        while not self.stop.is_set():
            started = time.monotonic()
            limits = Limits()
            if self.memory is not None:
                limits.memory_bytes, limits.memory_text = self.memory
            procs = ProcessSet(
                [Command(self.argv, self.name)],
                env=self.env,
                cwd=self.cwd,
                on_line=self.console.line,
                stop=self.stop,
                limits=limits,
                grace=self.grace,
            )
            ended = threading.Event()
            if self.probe is not None:
                threading.Thread(
                    target=self.probe.watch,
                    args=(self.name, procs, ended, self.console),
                    name=f"probe-{self.name}",
                    daemon=True,
                ).start()
            try:
                outcome = procs.run()
            finally:
                ended.set()
            if self.stop.is_set():
                return
            if time.monotonic() - started >= self.healthy_after:
                wait = self.delay
            why = outcome.reason or "exited with code 0"
            self.console.note(
                f"{self.name} {why}; restarting in {human_seconds(round(wait, 2))}", level="warn"
            )
            self.waits.append(wait)
            if self.stop.wait(wait):
                return
            self.restarts += 1
            wait = min(wait * 2, self.max_delay)


@dataclass
class HealthProbe:
    """The service's `health:` probe, as a kubelet runs it: after `initial_delay`, GET the URL
    every `period`; the first answer marks it ready, `failures` misses in a row restart it.
    Until it is first ready, misses count only after `startup_timeout` (a slow start)."""

    url: str
    initial_delay: float
    startup_timeout: float = 600.0
    period: float = 5.0
    failures: int = 3
    timeout: float = 2.0

    def check(self) -> str | None:
        """None when healthy, else why not."""
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as answer:
                return None if answer.status < 400 else f"HTTP {answer.status}"
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except OSError as exc:
            return str(getattr(exc, "reason", exc))

    def watch(self, name: str, procs: ProcessSet, ended: threading.Event, console: Console) -> None:
        import signal

        if ended.wait(self.initial_delay):
            return
        ready, misses = False, 0
        starting_until = time.monotonic() + self.startup_timeout
        while not ended.is_set():
            why = self.check()
            if why is None:
                if not ready:
                    console.note(f"{name}: ready ({self.url})", level="ok")
                ready, misses = True, 0
            elif ready or time.monotonic() >= starting_until:
                misses += 1
                if misses >= self.failures:
                    said = "" if ready else f" and was not ready within {self.startup_timeout:g}s"
                    console.note(
                        f"{name}: health check failed {misses} times ({self.url}: {why}){said}; restarting it",
                        level="warn",
                    )
                    procs.signal_all(signal.SIGTERM)
                    return
            if ended.wait(self.period):
                return


def select(plan: Plan, names: Sequence[str]) -> tuple[list[Service], list[str]]:
    """The services to supervise and the scheduled jobs/pipelines to run."""
    workloads: list[Job | Pipeline] = [*plan.jobs.values(), *plan.pipelines.values()]
    scheduled = [w.name for w in workloads if w.schedule is not None]
    if not names:
        return list(plan.services.values()), scheduled
    services, schedules = [], []
    for name in names:
        if name in plan.services:
            services.append(plan.services[name])
        elif name in scheduled:
            schedules.append(name)
        elif name in plan.jobs or name in plan.pipelines:
            raise UsageError(
                f"{name!r} has no schedule, so `up` has nothing to do for it",
                hint=f"run it once with `mizzen run {name}`",
            )
        else:
            raise UsageError(
                f"no service named {name!r}",
                hint=f"services: {', '.join(plan.services) or '(none)'}",
            )
    return services, schedules


def up(
    plan: Plan,
    names: Sequence[str] = (),
    *,
    console: Console | None = None,
    stop: Stop | None = None,
    grace: float = DEFAULT_GRACE,
) -> int:
    services, scheduled = select(plan, names)
    if not services and not scheduled:
        raise UsageError(
            "nothing to run: the spec has no services and no scheduled jobs or pipelines",
            hint="add a `services:` entry with a command, or a `schedule:` to a job",
        )
    console = console or Console()
    stop = stop or Stop()
    secrets = SecretValues(plan.root, plan.env)
    values = secrets.require((r.secret, r.key) for s in services for r in s.process.secret_refs)
    values.update(store_credentials(plan, secrets))
    for svc in services:
        envs.check_gpus(f"service {svc.name!r}", svc.process.resources)
    console.redact.add(values.values())
    console.labels(s.name for s in services)

    sessions = []
    supervisors = []
    from mizzen.storage.runs import new_run_id

    up_id = "up-" + new_run_id()
    for svc in services:
        proc = svc.process
        if svc.replicas > 1:
            console.note(
                f"{svc.name}: replicas {svc.replicas} -> 1 on the local target (one process per service)",
                level="warn",
            )
        if svc.autoscale is not None:
            console.note(
                f"{svc.name}: autoscale (min {svc.autoscale.min}, max {svc.autoscale.max}) applies in the cluster only; one process on the local target",
                level="warn",
            )
        if proc.mounts:
            from mizzen.storage.volumes import VolumeSession

            session = VolumeSession(proc.mounts, up_id, today(), root=plan.root, env=plan.env)
            session.prepare()
            sessions.append(session)
        env = envs.process_env(proc, values)
        env[contract.TARGET] = "local"
        if plan.env:
            env[contract.ENV] = plan.env
        env.update(envs.store_vars(plan.store))
        # a model server reads the registry with these
        keys = {s.name: s.keys for s in plan.secrets.values()}
        env.update(envs.store_secret_vars(plan.store, keys, values))
        argv = envs.resolve_mizzen(list(proc.command))
        supervisors.append(
            Supervisor(
                name=svc.name,
                argv=argv,
                env=env,
                cwd=envs.working_dir(plan.root, proc, f"service {svc.name!r}"),
                console=console,
                stop=stop,
                delay=svc.restart_delay_seconds,
                memory=envs.memory_limit(proc.resources),
                grace=grace,
                probe=HealthProbe(
                    f"http://127.0.0.1:{svc.health.port}{svc.health.path}",
                    svc.health.initial_delay_seconds,
                    svc.health.startup_timeout_seconds,
                )
                if svc.health is not None
                else None,
            )
        )
    threads = [
        threading.Thread(target=s.run, name=f"service-{s.name}", daemon=True) for s in supervisors
    ]
    threads += _scheduler(plan, scheduled, console, stop)
    for thread in threads:
        thread.start()
    what = [*(s.name for s in services), *(f"{n} (scheduled)" for n in scheduled)]
    console.note(f"up: {', '.join(what)}; Ctrl-C to stop")
    holder = Run(id=up_id, date="", recorder=None, console=console, stop=stop, grace=grace)  # type: ignore[arg-type]
    try:
        with cancel_on_signals(holder):
            while not stop.wait(0.5):
                if not any(t.is_alive() for t in threads):
                    break
    finally:
        stop.set("stopped")
        for thread in threads:
            thread.join()
        for session in sessions:
            try:  # what the services wrote in read-write blob volumes goes back to the store
                session.commit()
            except Exception as exc:
                console.note(f"up: volumes not written back: {exc}", level="warn")
            session.cleanup()
    console.note("up: stopped")
    return 0


def _scheduler(
    plan: Plan, scheduled: list[str], console: Console, stop: Stop
) -> list[threading.Thread]:
    if not scheduled:
        return []
    from mizzen.targets.local.scheduler import Scheduler
    from mizzen.targets.local.target import LocalTarget, open_runs

    def run(name: str, trigger: Any) -> int:
        if name not in scheduled:
            return 0
        own = stop.child()
        done = threading.Event()
        cancel = getattr(trigger, "cancel", None)

        def watch() -> None:
            while cancel is not None and not done.is_set():
                if cancel.wait(0.5):
                    own.set("cancelled by the scheduler")
                    return

        threading.Thread(target=watch, daemon=True).start()
        try:
            return LocalTarget(console=console).run(plan, name, trigger=str(trigger), stop=own)
        finally:
            done.set()

    scheduler = Scheduler(plan, run=run, clock=time.time)
    scheduler.claim()  # a second `mizzen up` of this project is refused here, not in a thread
    threads = [
        threading.Thread(
            target=scheduler.run_forever, args=(stop.event,), name="scheduler", daemon=True
        )
    ]
    runs = open_runs(plan)
    if runs is not None:
        from mizzen.targets.local.late import RECENT_RUNS, LateWatch

        watch = LateWatch(
            plan,
            lambda name: runs.list(name, limit=RECENT_RUNS),
            SecretValues(plan.root, plan.env).get,
            only=scheduled,
        )

        if watch.active:
            threads.append(
                threading.Thread(
                    target=watch.run_forever, args=(stop.event,), name="late-alerts", daemon=True
                )
            )
    return threads
