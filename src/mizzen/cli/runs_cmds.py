"""runs, runs show, logs."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from mizzen.cli.common import (
    fmt_duration,
    fmt_time,
    load_plan,
    output_option,
    print_json,
    print_table,
    spec_options,
    target_option,
)


def _runs(spec_file: Path | None, env: str | None) -> Any:
    from mizzen.targets.local.target import require_runs

    return require_runs(load_plan(spec_file, env, "local"))


def _find(runs: Any, ref: str) -> Any:
    """A run by id (prefix) or `workload/id`, or the latest run of a workload."""
    from mizzen.targets.local.logs import find_run

    return find_run(runs, ref)


class _RunsGroup(click.Group):
    """`mizzen runs [WORKLOAD]` lists; `mizzen runs show RUN` shows one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_RunsGroup)
def runs() -> None:
    """List and inspect runs: `mizzen runs [WORKLOAD]`, `mizzen runs show RUN`."""


@runs.command(name="list")
@spec_options
@output_option
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--status",
    type=click.Choice(["running", "succeeded", "failed", "cancelled", "lost"]),
    default=None,
    help="Only runs with this status.",
)
@click.argument("workload", required=False)
def list_runs(
    spec_file: Path | None,
    env: str | None,
    output: str,
    limit: int,
    status: str | None,
    workload: str | None,
) -> None:
    """List runs, newest first."""
    store = _runs(spec_file, env)
    records = sorted(
        store.list(workload, limit=None if status else limit), key=lambda r: r.started, reverse=True
    )
    if status:
        records = [r for r in records if r.status == status][:limit]
    if output == "json":
        print_json([{**asdict(r), "duration": r.duration} for r in records])
        return
    if not records:
        click.echo(
            "no runs yet"
            + (f" of {workload}" if workload else "")
            + (f" with status {status}" if status else ""),
            err=True,
        )
        return
    print_table(
        ["run", "workload", "status", "started", "duration", "trigger", "reason"],
        [
            (
                r.id,
                r.workload,
                r.status,
                fmt_time(r.started),
                fmt_duration(r.duration),
                r.trigger,
                _short(r.reason),
            )
            for r in records
        ],
    )


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@runs.command()
@spec_options
@output_option
@click.argument("run")
def show(spec_file: Path | None, env: str | None, output: str, run: str) -> None:
    """Show one run: steps, params, metrics, outputs."""
    store = _runs(spec_file, env)
    record = _find(store, run)
    base = store.store.url.rstrip("/") + f"/{record.prefix}/outputs/"
    outputs = {name: base + name for name in record.outputs}
    if output == "json":
        data = asdict(record)
        data.update(
            duration=record.duration,
            output_urls=outputs,
            metric_history=[asdict(m) for m in store.metrics(record)],
        )
        print_json(data)
        return
    click.echo(f"run       {record.id}")
    click.echo(
        f"workload  {record.workload} ({record.kind}, {record.trigger}, target {record.target}{', env ' + record.env if record.env else ''})"
    )
    click.echo(f"status    {record.status}{': ' + record.reason if record.reason else ''}")
    ended = f"   ended {fmt_time(record.ended)}" if record.ended else ""
    click.echo(
        f"started   {fmt_time(record.started)}{ended}   duration {fmt_duration(record.duration)}"
    )
    click.echo(
        f"by        {record.user}@{record.host}   git {record.git_sha[:12] if record.git_sha else '-'}"
    )
    click.echo("")
    print_table(
        ["step", "job", "status", "duration", "attempts", "exit", "reason"],
        [
            (
                s.name,
                s.job,
                s.status,
                fmt_duration(s.duration) if s.started else "",
                s.attempts,
                s.exit_code,
                s.reason,
            )
            for s in record.steps
        ],
    )
    if record.params:
        click.echo("\nparams")
        for key, value in record.params.items():
            click.echo(f"  {key} = {value}")
    if record.metrics:
        click.echo("\nmetrics")
        for key, value in record.metrics.items():
            click.echo(f"  {key} = {value:g}")
    if outputs:
        click.echo("\noutputs")
        for name, url in outputs.items():
            click.echo(f"  {name}  {url}")


@click.command()
@spec_options(short_file=False)
@click.option("--step", default=None, help="Only this step of a pipeline run.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the run ends.")
@target_option(
    "local",
    "kubernetes: stream the workload's pods (all containers, prefixed); archived run logs once the pods are gone.",
)
@click.option("--context", default=None, help="kubeconfig context (with --target kubernetes).")
@click.option("--namespace", "-n", default=None, help="Namespace (with --target kubernetes).")
@click.argument("ref", metavar="RUN|WORKLOAD")
def logs(
    spec_file: Path | None,
    env: str | None,
    step: str | None,
    follow: bool,
    target: str,
    context: str | None,
    namespace: str | None,
    ref: str,
) -> int:
    """Print the logs of a run (or of the latest run of a workload)."""
    from mizzen.targets.base import Options, get_target

    options = Options(step=step, follow=follow, context=context, namespace=namespace)
    chosen = get_target(target)
    chosen.check("logs", options)
    return chosen.logs(load_plan(spec_file, env, target), ref, options)


try:
    from mizzen.cli.compare_cmd import compare

    runs.add_command(compare)
except ImportError:
    pass
