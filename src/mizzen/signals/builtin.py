"""The jobs mizzen adds for signals (an entry of `mizzen.plan.builtin`): one per signal,
`mizzen-signal-<name>`, a `sql` kind job whose runner is the signal computation
(`mizzen.signals.runner`), scheduled by the signal's `schedule` on both targets: `mizzen up`
here, a CronJob (or a ScheduledSparkApplication with `engine: spark`) in a cluster."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from mizzen.kinds.sql import SqlSpec
from mizzen.signals.definition import JOB_PREFIX, compile_signal

RUNNER = "mizzen.signals.runner"


class SignalSql(SqlSpec):
    """A signal's computation as a `sql` job section: run by the signals' runner, given the
    signal's definition as a parameter (and its SQL file, when it has one)."""

    runner: ClassVar[str] = RUNNER
    file: str | None = Field(None, description="The signal's SQL file (aggregate: sql)")  # type: ignore[assignment]


def computations(project: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, spec in project.signals.items():
        if spec.dataset not in project.datasets:
            continue  # refused by validation; never compiled
        signal = compile_signal(project, name, spec)
        # the definition goes through the plan's reference resolution untouched
        text = signal.to_json().replace("${", "$${")
        section = SignalSql(
            file=spec.sql, engine=spec.engine, spark=spec.spark, parameters={"signal": text}
        )
        secrets = [
            *(s for a in spec.alerts for s in _secrets(a.webhook)),
            *(a.email.secret for a in spec.alerts if a.email and a.email.secret),
        ]
        job: dict[str, Any] = {
            "sql": section,
            "inputs": [spec.dataset],
            "secrets": list(dict.fromkeys(secrets)),
            "resources": spec.resources.model_dump(
                mode="json", by_alias=True, exclude_defaults=True
            ),
            "labels": {"mizzen.io/signal": name},
        }
        if spec.schedule is not None:
            job["schedule"] = spec.schedule.model_dump(
                mode="json", by_alias=True, exclude_defaults=True
            )
        out[JOB_PREFIX + name] = job
    return out


EXPORTER = "mizzen-signals"
EXPORTER_PORT = 9464


def exporter(project: Any) -> dict[str, dict[str, Any]]:
    """The service serving the watched signals' latest values to Prometheus (only when a
    signal has alerts: the PrometheusRule reads them)."""
    import json
    from dataclasses import asdict

    watched = [
        asdict(compile_signal(project, name, spec))
        for name, spec in project.signals.items()
        if spec.alerts and spec.dataset in project.datasets
    ]
    if not watched:
        return {}
    text = json.dumps(watched, sort_keys=True, separators=(",", ":")).replace("${", "$${")
    return {
        EXPORTER: {
            "command": ["mizzen", "signals", "exporter", "--port", str(EXPORTER_PORT)],
            "args": ["--signals", text],
            "port": EXPORTER_PORT,
            "health": {"path": "/healthz"},
            "resources": {"cpu": "100m", "memory": "384Mi"},
            "labels": {"mizzen.io/signals": "exporter"},
        }
    }


def with_params(plan: Any, job: str, params: dict[str, str]) -> Any:
    """`plan` with signal job `job` given more runner parameters (a backfill's from/to),
    so any target runs it as the schedule would, only for that range."""
    from dataclasses import replace

    from mizzen.kinds.sql import runner_argv

    if not params:
        return plan
    found = plan.jobs[job]
    spec = replace(found.spec, parameters={**found.spec.parameters, **params})
    process = replace(found.process, command=tuple(runner_argv(spec)))
    return replace(plan, jobs={**plan.jobs, job: replace(found, spec=spec, process=process)})


def _secrets(webhook: str | None) -> list[str]:
    from mizzen.spec.interpolate import refs

    return [r.parts[0] for r in refs(webhook or "") if r.root == "secrets"]
