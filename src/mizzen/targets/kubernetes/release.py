"""Release: pre-flight, server-side dry-run gate, apply, prune, a numbered revision;
rollback; delete.

Everything talks to the cluster through `cluster.Cluster`. Secret values come from local
sources, live only in memory, and are never part of a revision record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mizzen.errors import UsageError
from mizzen.plan.model import Plan
from mizzen.targets.kubernetes import naming
from mizzen.targets.kubernetes.apply import (
    KEEP,
    applied_set,
    for_server,
    optional_objects,
    owned_objects,
    prune_set,
    render_diff,
    server_dry_run,
)
from mizzen.targets.kubernetes.cluster import (
    SUPPORT_KINDS,
    Cluster,
    ClusterError,
    Obj,
    ReleaseError,
    describe,
    key_of,
)
from mizzen.targets.kubernetes.preflight import Preflight, SecretLookup, preflight
from mizzen.targets.kubernetes.revisions import (
    Revision,
    parse_records,
    record,
    revisions,
    rollback_target,
)


@dataclass
class Result:
    revision: int | None
    applied: list[str]
    pruned: list[str]
    warnings: list[str]
    diff: str = ""


def _record(
    cluster: Cluster,
    plan: Plan,
    number: int,
    objects: list[Obj],
    check: Preflight,
    git_sha: str | None,
    image: str | None,
    status: str,
    note: str,
    when: float,
) -> None:
    secrets = sorted({o["metadata"]["name"] for o in [*check.secrets, *check.keep]})
    rev = Revision(number, when, git_sha, image, status, note, plan.env, objects, secrets)
    record(cluster, plan.project, rev)


def release(
    cluster: Cluster,
    plan: Plan,
    objects: list[Obj],
    *,
    local: SecretLookup | None,
    git_sha: str | None,
    image: str | None,
    dry_run: bool = False,
    diff: bool = False,
    note: str = "",
    keep_secrets: Iterable[str] = (),
    now: Callable[[], float] = time.time,
    before_apply: Callable[[], None] | None = None,
) -> Result:
    """`before_apply` runs once every check passed, just before the first object is applied
    (the CLI readies hostPath folders there)."""
    objects, left_out = optional_objects(cluster, objects)
    check = preflight(cluster, plan, objects, local, secret_names=keep_secrets)
    check.warnings += left_out
    if check.problems:
        raise ReleaseError("pre-flight failed, nothing was applied", check.problems, check.warnings)
    objects, adapted = for_server(cluster.version(), objects)
    check.warnings += adapted
    history = revisions(cluster, plan.project)
    number = (history[0].number + 1) if history else 1
    provided = {key_of(o) for o in check.provided}  # an admin's: not ours to apply
    apply = [o for o in applied_set(objects, check.secrets, number) if key_of(o) not in provided]
    if check.create_namespace and not dry_run:
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": cluster.namespace, "labels": {naming.MANAGED_BY: "mizzen"}},
            }
        )
    previews = server_dry_run(cluster, apply, skip=check.create_namespace and dry_run)
    keep = {key_of(o) for o in check.keep} | provided
    recorded = [o for rev in history for o in rev.objects]
    doomed = prune_set(cluster, plan.project, apply, keep, recorded)
    check.warnings += doomed.warnings
    text = render_diff(cluster, apply, previews, doomed.objects) if diff else ""
    if dry_run:
        return Result(
            None,
            [describe(o) for o in apply],
            [describe(o) for o in doomed.objects],
            check.warnings,
            text,
        )
    if before_apply is not None:
        before_apply()
    done: list[str] = []
    try:
        for obj in apply:
            cluster.apply(obj)
            done.append(describe(obj))
    except ClusterError as exc:
        failed = f"apply failed at {len(done) + 1}/{len(apply)}: {exc.message}"
        _record(
            cluster,
            plan,
            number,
            objects,
            check,
            git_sha,
            image,
            "failed",
            f"{note} {failed}".strip(),
            now(),
        )
        raise ReleaseError(
            f"apply failed after {len(done)} of {len(apply)} objects (revision {number} recorded as failed; nothing was pruned)",
            [f"{describe(apply[len(done)])}: {exc.message}"],
        ) from None
    pruned = []
    for obj in doomed.objects:
        meta = obj["metadata"]
        cluster.delete(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        pruned.append(describe(obj))
    _record(cluster, plan, number, objects, check, git_sha, image, "deployed", note, now())
    return Result(number, done, pruned, check.warnings, text)


def rollback(
    cluster: Cluster,
    plan: Plan,
    target: int | None = None,
    *,
    dry_run: bool = False,
    diff: bool = False,
    now: Callable[[], float] = time.time,
) -> Result:
    """Apply the objects of an earlier revision (default: the newest good one before the
    current) as a new revision; Secrets are reused from the cluster, never recreated."""
    history = revisions(cluster, plan.project)
    if not history:
        raise UsageError(
            f"no release of {plan.project} in namespace {cluster.namespace} yet",
            hint="run `mizzen release` first",
        )
    chosen = rollback_target(history, target)
    return release(
        cluster,
        plan,
        chosen.objects,
        local=None,
        keep_secrets=chosen.secrets,
        git_sha=chosen.git_sha,
        image=chosen.image,
        dry_run=dry_run,
        diff=diff,
        note=f"rollback to {chosen.number}",
        now=now,
    )


# --- delete -------------------------------------------------------------------------------------


def project_objects(cluster: Cluster, project: str) -> tuple[list[Obj], list[Obj], list[str]]:
    """(objects `mizzen delete` removes, claims it keeps because they hold data, warnings):
    of the kinds a release makes, the kinds' own (one-off runs too), and what any recorded
    revision holds."""
    from mizzen.kinds import workload_kinds

    kinds = [*SUPPORT_KINDS, *(c for k in workload_kinds() for c in k.controllers)]
    found = owned_objects(cluster, project, kinds)  # the revision records too (Secrets)
    recorded = [
        (o["apiVersion"], o["kind"]) for r in parse_records(found.objects) for o in r.objects
    ]
    more = [k for k in dict.fromkeys(recorded) if k not in kinds]
    if more:
        extra = owned_objects(cluster, project, more)
        found.objects += extra.objects
        found.warnings += extra.warnings
    objects = list({key_of(o): o for o in found.objects}.values())
    kept = [o for o in objects if o["metadata"].get("annotations", {}).get(KEEP) == "true"]
    return [o for o in objects if o not in kept], kept, found.warnings


def delete_all(cluster: Cluster, objects: list[Obj]) -> list[str]:
    """Workloads first, then what they use, revision records last."""
    order = {kind: i for i, (_, kind) in enumerate(reversed(SUPPORT_KINDS), start=1)}

    def rank(obj: Obj) -> tuple[int, int]:
        is_record = obj["metadata"].get("labels", {}).get(naming.ROLE) == "release"
        return (1 if is_record else 0, order.get(obj["kind"], 0))

    done = []
    for obj in sorted(objects, key=rank):
        meta = obj["metadata"]
        cluster.delete(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        done.append(describe(obj))
    return done
