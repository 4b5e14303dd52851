"""render, release, status, history, rollback, delete: the Kubernetes target's commands."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

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

F = TypeVar("F", bound=Callable[..., Any])


def cluster_options(func: F) -> F:
    func = click.option(
        "--namespace",
        "-n",
        default=None,
        help="Namespace (default: KUBECONFIG's, then the spec's kubernetes.namespace).",
    )(func)
    func = click.option(
        "--context",
        default=None,
        help="kubeconfig context (default: KUBECONFIG's current, then the spec's kubernetes.context).",
    )(func)
    return func


def image_option(func: F) -> F:
    return click.option(
        "--image",
        default=None,
        metavar="REF",
        help="Image to run (REPO:TAG or REPO@sha256:...); default: the pushed build of git HEAD.",
    )(func)


def warn(message: str) -> None:
    label = click.style("warning:", fg="yellow", bold=True) if sys.stderr.isatty() else "warning:"
    click.echo(f"{label} {message}", err=True)


def _plan(spec_file: Path | None, env: str | None) -> Any:
    return load_plan(spec_file, env, "kubernetes")


def _connect(plan: Any, context: str | None, namespace: str | None) -> tuple[Any, Any]:
    from mizzen.targets.kubernetes import target

    return target.connect(plan, context, namespace)


def _local_secrets(plan: Any) -> Callable[[str, str], str | None]:
    from mizzen.secrets import SecretValues

    return SecretValues(plan.root, plan.env).get


def _git_sha(root: str) -> str | None:
    from mizzen.build.tags import read_git_state

    state = read_git_state(Path(root))
    return state.short if state else None


@click.command()
@spec_options
@image_option
@click.option(
    "--namespace",
    "-n",
    default=None,
    help="Namespace to render for (default: the spec's kubernetes.namespace).",
)
@click.option(
    "-o",
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write one file per object into DIR instead of printing.",
)
@click.option(
    "--cluster-objects",
    is_flag=True,
    help="Only the cluster-scoped objects (with the claims they bind), for a cluster admin "
    "to create once when the deployers are admins of their namespace only.",
)
def render(
    spec_file: Path | None,
    env: str | None,
    image: str | None,
    namespace: str | None,
    out: Path | None,
    cluster_objects: bool,
) -> None:
    """Render the Kubernetes objects of the project (no cluster needed)."""
    from mizzen.targets.kubernetes.render import render as render_plan
    from mizzen.targets.kubernetes.render import render_warnings, to_yaml
    from mizzen.targets.kubernetes.target import resolve_image

    plan = _plan(spec_file, env)
    ref, warnings = resolve_image(plan, image, strict=False)
    plan = replace(plan, image=ref)
    if namespace:
        plan = replace(plan, kubernetes=replace(plan.kubernetes, namespace=namespace))
    objects = render_plan(plan)
    for message in [*warnings, *render_warnings(plan)]:
        warn(message)
    if cluster_objects:
        objects = _cluster_scoped(objects)
        if not objects:
            warn("the project needs no cluster-scoped object: a namespace admin can release it")
    if out is None:
        click.echo(to_yaml(objects), nl=False)
        return
    out.mkdir(parents=True, exist_ok=True)
    for i, obj in enumerate(objects, 1):
        name = f"{i:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        (out / name).write_text(to_yaml([obj]))
    click.echo(f"wrote {len(objects)} objects to {out}", err=True)


def _cluster_scoped(objects: list[Any]) -> list[Any]:
    from mizzen.targets.kubernetes.cluster import namespaced

    scoped = [o for o in objects if not namespaced(o["kind"])]
    claims = {
        (o["spec"]["claimRef"]["namespace"], o["spec"]["claimRef"]["name"])
        for o in scoped
        if o["kind"] == "PersistentVolume" and o["spec"].get("claimRef")
    }
    bound = [
        o
        for o in objects
        if o["kind"] == "PersistentVolumeClaim"
        and (o["metadata"].get("namespace"), o["metadata"]["name"]) in claims
    ]
    return scoped + bound


def _finish(
    cluster: Any, plan: Any, result: Any, objects: list[Any], wait: bool | None, timeout: float
) -> int:
    from mizzen.targets.kubernetes.volumes import kubelet_names
    from mizzen.targets.kubernetes.wait import wait_for_deployments

    for message in result.warnings:
        warn(message)
    if result.diff:
        click.echo(result.diff)
    if result.revision is None:
        click.echo(
            f"dry run: would apply {len(result.applied)} objects"
            + (f", delete {', '.join(result.pruned)}" if result.pruned else "")
        )
        return 0
    click.echo(
        f"revision {result.revision}: applied {len(result.applied)} objects to namespace {cluster.namespace}"
        + (f"; pruned {', '.join(result.pruned)}" if result.pruned else "")
    )
    if wait is None:
        wait = sys.stdout.isatty()
    if not wait:
        return 0
    late = wait_for_deployments(
        cluster,
        objects,
        timeout=timeout,
        report=lambda line: click.echo(f"  {line}"),
        volumes=kubelet_names(plan, cluster.namespace),
    )
    for item in late:
        if item.stuck:
            click.echo(f"  {item.name}: gave up waiting: {item.reason}")
        else:
            click.echo(
                f"  {item.name}: not available after {fmt_duration(timeout)}"
                + (f": {item.reason}" if item.reason else " (no reason reported by its pods)")
            )
    return 1 if late else 0


@click.command()
@spec_options
@cluster_options
@image_option
@click.option(
    "--dry-run", is_flag=True, help="Pre-flight and server-side dry-run only; apply nothing."
)
@click.option("--diff", is_flag=True, help="Show what would change against the live objects.")
@click.option(
    "--wait/--no-wait",
    default=None,
    help="Follow Deployments until available (default: on a terminal).",
)
@click.option("--timeout", default=300.0, show_default=True, help="Seconds --wait waits.")
@click.option("--note", default="", help="A note kept with the revision.")
def release(
    spec_file: Path | None,
    env: str | None,
    context: str | None,
    namespace: str | None,
    image: str | None,
    dry_run: bool,
    diff: bool,
    wait: bool | None,
    timeout: float,
    note: str,
) -> int:
    """Apply the project to the cluster: pre-flight, dry-run, apply, prune, record a revision."""
    from mizzen.targets.kubernetes import release as rel
    from mizzen.targets.kubernetes.render import render as render_plan
    from mizzen.targets.kubernetes.render import render_warnings
    from mizzen.targets.kubernetes.target import prepare_host_paths, resolve_image

    plan = _plan(spec_file, env)
    ref, image_notes = resolve_image(plan, image, strict=True)
    cluster, plan = _connect(replace(plan, image=ref), context, namespace)
    for message in [*image_notes, *render_warnings(plan)]:
        warn(message)
    objects = render_plan(plan)
    result = rel.release(
        cluster,
        plan,
        objects,
        local=_local_secrets(plan),
        git_sha=_git_sha(plan.root),
        image=ref,
        dry_run=dry_run,
        diff=diff,
        note=note,
        before_apply=lambda: prepare_host_paths(plan, warn),
    )
    return _finish(cluster, plan, result, objects, wait, timeout)


@click.command()
@spec_options
@target_option("kubernetes", "local: the latest run of each workload on this machine.")
@cluster_options
@output_option
@click.argument("workloads", nargs=-1)
def status(
    spec_file: Path | None,
    env: str | None,
    target: str,
    context: str | None,
    namespace: str | None,
    output: str,
    workloads: tuple[str, ...],
) -> None:
    """Workloads in the cluster: kind, phase, age, restarts, last run and why, in one sentence."""
    from mizzen.targets.base import Options, get_target

    options = Options(context=context, namespace=namespace)
    chosen = get_target(target)
    chosen.check("status", options)
    plan = load_plan(spec_file, env, target)
    rows = chosen.status(plan, list(workloads), options)
    if output == "json":
        print_json([r.to_dict() for r in rows])
        return
    print_table(
        ["workload", "kind", "phase", "age", "restarts", "last run", "reason"],
        [
            [
                r.workload,
                r.kind,
                r.phase,
                fmt_duration(r.age),
                r.restarts,
                fmt_time(r.last_run),
                r.reason,
            ]
            for r in rows
        ],
        title=f"{plan.project} {chosen.place(plan, options)}",
    )


@click.command()
@spec_options
@cluster_options
@output_option
def history(
    spec_file: Path | None, env: str | None, context: str | None, namespace: str | None, output: str
) -> None:
    """Release revisions kept in the cluster, newest first, with what each changed."""
    from mizzen.targets.kubernetes.revisions import summary

    plan = _plan(spec_file, env)
    cluster, plan = _connect(plan, context, namespace)
    revs = summary(cluster, plan.project)
    if output == "json":
        print_json(revs)
        return
    print_table(
        ["revision", "time", "status", "git", "image", "changes", "note"],
        [
            [
                r["revision"],
                fmt_time(r["time"]),
                r["status"],
                r["gitSha"],
                r["image"],
                r["changes"],
                r["note"],
            ]
            for r in revs
        ],
    )


@click.command()
@spec_options
@cluster_options
@click.option("--dry-run", is_flag=True)
@click.option("--diff", is_flag=True)
@click.option("--wait/--no-wait", default=None)
@click.option("--timeout", default=300.0, show_default=True)
@click.argument("revision", type=int, required=False)
def rollback(
    spec_file: Path | None,
    env: str | None,
    context: str | None,
    namespace: str | None,
    dry_run: bool,
    diff: bool,
    wait: bool | None,
    timeout: float,
    revision: int | None,
) -> int:
    """Re-apply an earlier revision (default: the one before the current) as a new revision."""
    from mizzen.targets.kubernetes import release as rel
    from mizzen.targets.kubernetes.revisions import revisions

    plan = _plan(spec_file, env)
    cluster, plan = _connect(plan, context, namespace)
    result = rel.rollback(cluster, plan, revision, dry_run=dry_run, diff=diff)
    objects = revisions(cluster, plan.project)[0].objects if result.revision else []
    return _finish(cluster, plan, result, objects, wait, timeout)


@click.command()
@spec_options
@target_option("kubernetes")
@cluster_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask (required when not on a terminal).")
def delete(
    spec_file: Path | None,
    env: str | None,
    target: str,
    context: str | None,
    namespace: str | None,
    yes: bool,
) -> int:
    """Delete everything of the project from the namespace (claims holding data are kept)."""
    from mizzen.errors import UsageError
    from mizzen.targets.base import Options, get_target

    options = Options(context=context, namespace=namespace)
    chosen = get_target(target)
    chosen.check("delete", options)

    def confirm(question: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise UsageError(question.replace("?", ": not confirmed"), hint="pass --yes to confirm")
        return click.confirm(question, abort=True)

    return chosen.delete(load_plan(spec_file, env, target), options, confirm)
