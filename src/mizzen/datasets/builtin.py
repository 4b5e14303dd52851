"""The datasets' maintenance job: retention, vacuum of versions past their time-travel
window, erasures completed once their window passed (`mizzen data maintain`), scheduled by
mizzen itself (`maintenance.schedule`, daily by default) on both targets."""

from __future__ import annotations

from typing import Any

NAME = "mizzen-maintenance"


def maintenance(project: Any) -> dict[str, dict[str, Any]]:
    if not project.datasets:
        return {}
    m = project.maintenance
    job: dict[str, Any] = {
        "command": ["mizzen", "data", "maintain"],
        "inputs": list(project.datasets),  # every dataset reaches it through the contract
        "resources": m.resources.model_dump(mode="json", by_alias=True, exclude_defaults=True),
    }
    if m.schedule is not None:
        job["schedule"] = m.schedule.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return {NAME: job}


FORGET = "mizzen-forget"
SUBJECT_VAR = "MIZZEN_FORGET_SUBJECT"


def forget_job(
    plan: Any, secret: str, *, apply: bool = False, now: bool = False, reason: str = ""
) -> Any:
    """The plan with a one-off job running `mizzen data forget` where the datasets' workloads
    run: the maintenance job's process (every dataset, its store's secret), the subject read
    from Secret `secret` (key `subject`), never written in the job's spec, command or logs."""
    from dataclasses import replace

    from mizzen.errors import UsageError
    from mizzen.plan.model import EnvVar, SecretDecl, SecretRef

    base = plan.jobs.get(NAME)
    if base is None:
        raise UsageError("this project declares no datasets: there is nothing to forget")
    command = ["mizzen", "data", "forget", "--subject-from-env", SUBJECT_VAR]
    command += ["--apply"] if apply else []
    command += ["--now"] if now else []
    command += ["--reason", reason] if reason else []
    decl = SecretDecl(FORGET, ("subject",), existing_secret=secret)
    env = (*base.process.env, EnvVar(SUBJECT_VAR, secret=SecretRef(FORGET, "subject")))
    process = replace(base.process, command=tuple(command), env=env)
    job = replace(base, name=FORGET, process=process, schedule=None, retries=0)
    return replace(
        plan,
        jobs={**plan.jobs, FORGET: job},
        secrets={**plan.secrets, FORGET: decl},
    )
