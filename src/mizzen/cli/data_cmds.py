"""`mizzen data`: the project's datasets — versions, schema, lineage, retention and erasure.

Every command builds its datasets from the compiled local plan (`--file`, `--env`), their
stores opened with their credentials. Inside a workload mizzen started (the run-time
contract's `MIZZEN_DATASETS` is set, as in the maintenance and erasure Jobs of a cluster)
they come from the contract instead, unless `--file` or `--env` is given on the command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from mizzen.cli.common import (
    fmt_time,
    output_option,
    pod_options,
    print_json,
    print_table,
    spec_options,
    target_option,
)

SUBJECT_HELP = (
    "Read the subject id from this environment variable (e.g. set from a Secret), so it "
    "never appears on a command line."
)


@dataclass
class Source:
    catalog: Any  # mizzen.datasets.catalog.Catalog
    where: str  # what the datasets were read from, for people


@click.group()
def data() -> None:
    """Datasets: list, show, lineage, forget (erasure), retention, maintain, audit."""


# --- where the datasets come from -----------------------------------------------------------
def _explicit(ctx: click.Context) -> bool:
    from click.core import ParameterSource

    return any(
        ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.PROMPT)
        for name in ("spec_file", "env")
    )


def _from_contract(ctx: click.Context) -> bool:
    from mizzen import contract

    return bool(os.environ.get(contract.DATASETS)) and not _explicit(ctx)


def _source(
    ctx: click.Context, spec_file: Path | None, env: str | None, *, every: bool = False
) -> Source:
    """Where the datasets come from: the run-time contract in a pod (or any run), else the
    spec. `every`: the command must see all the project's datasets (erasure, retention,
    maintenance), which a job naming only some of them in its contract does not give."""
    from mizzen import contract
    from mizzen.datasets.jobs import catalog_for, contract_catalog
    from mizzen.errors import UsageError

    if _from_contract(ctx):
        catalog = contract_catalog()
        if (
            catalog is not None
            and every
            and not (contract.read(os.environ).datasets or {}).get("all")
        ):
            raise UsageError(
                f"mizzen data {ctx.command.name} must see every dataset of the project, and "
                f"this run was given only {', '.join(catalog.names())} ({contract.DATASETS})",
                hint="run it as mizzen's own job (`mizzen run mizzen-maintenance`, `mizzen data "
                "forget --target kubernetes`) or outside a run, with --file",
            )
        if catalog is not None:
            return Source(catalog, f"the run-time contract ({contract.DATASETS})")
    from mizzen.cli.common import load_plan

    plan = load_plan(spec_file, env)
    where = Path(plan.spec_file).name + (f" (env {plan.env})" if plan.env else "")
    return Source(catalog_for(plan), where)


def _declared(ctx: click.Context, spec_file: Path | None, env: str | None) -> list[str]:
    """Dataset names, without opening any store (for commands that read only lineage)."""
    from mizzen import contract

    if _from_contract(ctx):
        given = contract.read(os.environ).datasets or {}
        return list(given.get("datasets", {}))
    from mizzen.cli.common import load_plan

    return list(load_plan(spec_file, env).datasets)


def _project(spec_file: Path | None, env: str | None) -> Any:
    from mizzen.storage.project import project_store

    return project_store(spec_file, env)


def _ref(text: str) -> Any:
    from mizzen.datasets.model import parse_ref
    from mizzen.errors import UsageError

    try:
        return parse_ref(text)
    except ValueError as exc:
        raise UsageError(
            str(exc), hint="e.g. trips, trips@12 or trips@2026-11-01T10:00:00Z"
        ) from None


def _subject(given: str | None, variable: str | None) -> str | None:
    from mizzen.errors import UsageError

    if given is not None and variable:
        raise UsageError(
            "give the subject either as an argument or with --subject-from-env, not both"
        )
    if not variable:
        return given
    value = os.environ.get(variable, "").strip()
    if not value:
        raise UsageError(
            f"--subject-from-env {variable}: the variable is not set or empty",
            hint=f"set {variable} to the subject id (in a cluster, from a Secret)",
        )
    return value


def _rows(count: int) -> str:
    return f"{count:,} row" + ("" if count == 1 else "s")


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _number(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _short(digest: str | None) -> str:
    return f"{digest[:16]}…" if digest else ""


# --- list -------------------------------------------------------------------------------------
@data.command(name="list")
@spec_options
@output_option
@click.pass_context
def list_(ctx: click.Context, spec_file: Path | None, env: str | None, output: str) -> None:
    """Each dataset: location, current version, rows, size, subject, retention, owner."""
    from mizzen.datasets.summary import fmt_bytes, overview, require_extra, retention_text

    require_extra("mizzen data list")
    source = _source(ctx, spec_file, env)
    catalog = source.catalog
    rows = [overview(catalog, name) for name in catalog.names()]
    if output == "json":
        print_json(rows)
    elif not rows:
        click.echo(f"no datasets declared in {source.where}", err=True)
    else:
        print_table(
            ["name", "location", "version", "rows", "size", "subject", "retain", "owner"],
            [
                [
                    r["name"],
                    r["location"],
                    "error" if r["error"] else ("-" if r["version"] is None else r["version"]),
                    _number(r["rows"]),
                    fmt_bytes(r["bytes"]),
                    r["subject"] or "",
                    retention_text(catalog.spec(r["name"])),
                    r["owner"] or "",
                ]
                for r in rows
            ],
        )
    failed = [r for r in rows if r["error"]]
    for r in failed:
        click.echo(f"error: {r['name']}: {r['error']}", err=True)
    if failed:
        ctx.exit(1)


# --- show -------------------------------------------------------------------------------------
def _operation(v: dict[str, Any]) -> str:
    op = str(v.get("operation") or "")
    return f"{op} ({v['mizzen_operation']})" if v.get("mizzen_operation") else op


def _run(v: dict[str, Any]) -> str:
    if not v.get("run_id"):
        return ""
    return str(v["run_id"]) + (f" ({v['workload']})" if v.get("workload") else "")


@data.command()
@click.argument("ref", metavar="NAME[@VERSION|@TIME]")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Versions to list (newest first; 0: every version in the log).",
)
@spec_options
@output_option
@click.pass_context
def show(
    ctx: click.Context,
    ref: str,
    limit: int,
    spec_file: Path | None,
    env: str | None,
    output: str,
) -> None:
    """A dataset's schema (types, nullability, personal data), partitioning, retention,
    time travel and versions (time, operation, run, rows, bytes, schema changes)."""
    from mizzen.datasets.summary import detail, fmt_bytes, marks, require_extra

    require_extra("mizzen data show")
    parsed = _ref(ref)
    source = _source(ctx, spec_file, env)
    info = detail(source.catalog, parsed, limit=limit or None)
    if output == "json":
        print_json(info)
        return
    current = info["version"] == info["current"]
    head = f"{info['name']} @ version {info['version']}"
    click.echo(head + (" (current)" if current else f" (current: {info['current']})"))
    if info["description"]:
        click.echo(info["description"])
    facts = [
        ("location", f"{info['location']} ({info['format']})"),
        ("uri", info["uri"]),
        ("owner", info["owner"] or ""),
        ("subject", info["subject"] or "none (forget does not cover this dataset)"),
        ("personal", ", ".join(info["personal"])),
        ("partitioned", ", ".join(info["partition_by"]) or "no"),
        (
            "retention",
            f"rows with {info['retain']['column']} older than {info['retain']['duration']} "
            "are deleted by the maintenance job"
            if info["retain"]
            else "none (rows are kept until deleted)",
        ),
        (
            "time travel",
            f"{info['time_travel']}: a replaced version stays readable that long, then "
            "maintenance removes its files",
        ),
    ]
    at = info["at"]
    if at:
        facts.append(
            (
                "this version",
                " · ".join(
                    x
                    for x in (
                        fmt_time(at["timestamp"]),
                        _operation(at),
                        f"run {_run(at)}" if at["run_id"] else "",
                        f"{_number(at['rows'])} rows" if at["rows"] is not None else "",
                        f"{fmt_bytes(at['bytes'])} in {at['files']} files"
                        if at["bytes"] is not None
                        else "",
                    )
                    if x
                ),
            )
        )
    for label, value in facts:
        if value:
            click.echo(f"  {label:<13}{value}")
    click.echo("\nschema")
    print_table(
        ["column", "type", "nullable", "marks"],
        [
            [c["name"], c["type"], "yes" if c["nullable"] else "no", ", ".join(marks(c))]
            for c in info["columns"]
        ],
    )
    click.echo("\nversions")
    print_table(
        ["version", "time", "operation", "run", "rows", "size", "schema changes"],
        [
            [
                v["version"],
                fmt_time(v["timestamp"]),
                _operation(v),
                _run(v),
                _number(v["rows"]),
                fmt_bytes(v["bytes"]),
                "; ".join(v["changes"]),
            ]
            for v in info["versions"]
        ],
    )
    if info["more_versions"]:
        click.echo(
            f"(older versions not listed: --limit 0 lists all; versions before "
            f"{info['versions'][-1]['version']} may be gone with the time-travel window)"
        )


# --- lineage ----------------------------------------------------------------------------------
def _tree_lines(branches: list[Any], indent: str = "  ") -> list[str]:
    """Box-drawn lines of a lineage tree (iterative: a long chain does not recurse)."""
    lines: list[str] = []
    stack: list[tuple[Any, str, bool]] = [
        (b, indent, i == len(branches) - 1) for i, b in reversed(list(enumerate(branches)))
    ]
    while stack:
        branch, prefix, last = stack.pop()
        tail = []
        if not branch.complete and branch.kind == "run":
            tail.append("lineage incomplete: still running, or it died")
        if branch.repeated:
            tail.append("shown above")
        if branch.truncated:
            tail.append("…")
        text = f"{branch.relation} {branch.label}".strip()
        lines.append(
            f"{prefix}{'└─ ' if last else '├─ '}{text}" + (f"  ({'; '.join(tail)})" if tail else "")
        )
        child_prefix = prefix + ("   " if last else "│  ")
        kids = branch.children
        stack.extend(
            (c, child_prefix, i == len(kids) - 1) for i, c in reversed(list(enumerate(kids)))
        )
    return lines


@data.command()
@click.argument("ref", metavar="NAME[@VERSION] | model:NAME[@VERSION] | run:ID")
@spec_options
@output_option
@click.pass_context
def lineage(
    ctx: click.Context, ref: str, spec_file: Path | None, env: str | None, output: str
) -> None:
    """Both ways: what this data fed (runs, datasets, models) and what it came from (what a
    model was trained on, what a run read)."""
    from mizzen.datasets.lineage import Lineage
    from mizzen.datasets.summary import lineage as walk
    from mizzen.errors import UsageError

    text = ref.strip()
    if text.startswith("model:"):
        name, _, version = text.removeprefix("model:").partition("@")
        if not name or (version and not version.isdigit()):
            raise UsageError(f"{ref!r}: expected model:NAME or model:NAME@VERSION (a number)")
    elif text.startswith("run:"):
        if not text.removeprefix("run:"):
            raise UsageError(f"{ref!r}: expected run:<run id>")
    else:
        parsed = _ref(text.removeprefix("dataset:"))
        if parsed.as_of is not None:
            raise UsageError(f"{ref!r}: lineage is by version number (trips@3), not by time")
        text = str(parsed)
    graph = Lineage(_project(spec_file, env)).graph()
    result = walk(graph, text)
    if not result["start"] and not text.startswith(("model:", "run:")):
        name = text.partition("@")[0]
        declared = _declared(ctx, spec_file, env)
        if name not in declared and not any(n.name == name for n in graph.datasets()):
            from mizzen.datasets.catalog import unknown_dataset

            raise unknown_dataset(name, declared)
    if output == "json":
        print_json(
            {
                "ref": text,
                "start": result["start"],
                "downstream": result["downstream"].to_dict(),
                "upstream": result["upstream"].to_dict(),
            }
        )
        return
    if not result["start"]:
        click.echo(
            f"no lineage recorded for {text}: runs record what they read and write through "
            "mizzen.dataset(), and models what they were trained on"
        )
        return
    for top_fed, top_from in zip(result["fed"], result["came_from"], strict=True):
        click.echo(top_fed.label)
        click.echo("  fed:" if top_fed.children else "  fed: nothing recorded")
        for line in _tree_lines(top_fed.children, "  "):
            click.echo(line)
        click.echo("  came from:" if top_from.children else "  came from: nothing recorded")
        for line in _tree_lines(top_from.children, "  "):
            click.echo(line)


# --- forget -----------------------------------------------------------------------------------
def _forget_rows(report: Any, catalog: Any) -> list[dict[str, Any]]:
    """Per dataset: rows, versions, and when the old versions that hold the subject go."""

    rows = []
    for d in report.datasets:
        spec = catalog.spec(d.dataset)
        entry = {
            "dataset": d.dataset,
            "column": d.column,
            "rows": d.rows,
            "version_before": d.version_before,
            "version_after": d.version_after,
            "time_travel": spec.time_travel,
            "compaction": d.compaction,
            "compact_after": d.compact_after,
        }
        rows.append(entry)
    return rows


def _forget_in_cluster(
    target: str,
    spec_file: Path | None,
    env: str | None,
    subject: str,
    options: Any,
    *,
    apply: bool,
    now: bool,
    reason: str,
) -> int:
    """`mizzen data forget` as a one-off job of the project on the cluster: the maintenance
    job's pod (every dataset, its store's credentials) running the same command, the subject
    in a Secret made for the run and deleted after it."""
    import secrets
    from dataclasses import replace

    from mizzen.cli.common import load_plan
    from mizzen.datasets.builtin import FORGET, forget_job
    from mizzen.targets.base import get_target
    from mizzen.targets.kubernetes import naming

    chosen = get_target(target)
    chosen.check("run", options, "data forget")
    plan = load_plan(spec_file, env, target)
    secret = naming.object_name(plan.project, f"forget-{secrets.token_hex(4)}", limit=253)
    plan = forget_job(plan, secret, apply=apply, now=now, reason=reason)
    return chosen.run(plan, FORGET, replace(options, run_secrets={secret: {"subject": subject}}))


def _old_versions(entry: dict[str, Any], applied: bool) -> str:
    if entry["version_before"] is None:
        return "no table yet"
    if entry["compaction"] == "done":
        return "removed now" if applied else "removed at once"
    if entry["compaction"] == "pending":
        until = f"until {fmt_time(entry['compact_after'])}, then removed by maintenance"
        return f"readable {until}" if entry["rows"] else f"older versions may hold it: {until}"
    return "none hold it"


@data.command()
@click.argument("subject", required=False)
@click.option("--subject-from-env", "subject_env", metavar="VAR", help=SUBJECT_HELP)
@click.option("--apply", "apply_", is_flag=True, help="Erase (default: a dry run that counts).")
@click.option(
    "--now",
    is_flag=True,
    help="Also remove the old versions that hold the subject at once, instead of after "
    "each dataset's timeTravel window (ends time travel to earlier versions).",
)
@click.option("--reason", default="", help="Why (a request id, ...): kept in the audit record.")
@spec_options
@output_option
@target_option(
    "local",
    help="kubernetes: erase in a pod next to the data, the subject passed in a one-off Secret "
    "deleted after the run",
)
@pod_options
@click.pass_context
def forget(
    ctx: click.Context,
    subject: str | None,
    subject_env: str | None,
    apply_: bool,
    now: bool,
    reason: str,
    spec_file: Path | None,
    env: str | None,
    output: str,
    target: str,
    image: str | None,
    namespace: str | None,
    context: str | None,
    pending_timeout: float | None,
) -> int | None:
    """Remove one person (SUBJECT) from every dataset that declares a subject: column.

    A dry run by default: rows per dataset, the models trained on data that held them, and
    what --apply would do. The id is never printed or stored: the audit record keeps a keyed
    hash of it.
    """
    from mizzen.datasets.maintenance import forget as erase
    from mizzen.datasets.summary import require_extra
    from mizzen.errors import UsageError
    from mizzen.targets.base import Options, get_target

    value = _subject(subject, subject_env)
    if value is None or not value.strip():
        raise UsageError(
            "forget needs the subject id",
            hint="mizzen data forget SUBJECT, or --subject-from-env VAR",
        )
    options = Options(
        image=image, namespace=namespace, context=context, pending_timeout=pending_timeout
    )
    if target != "local":
        if output == "json":
            raise UsageError(
                f"-o json does not apply with --target {target}: the pod's report is its log",
                hint="read the record afterwards: mizzen data audit -o json",
            )
        return _forget_in_cluster(
            target, spec_file, env, value, options, apply=apply_, now=now, reason=reason
        )
    get_target(target).check("run", options, "data forget")
    require_extra("mizzen data forget")
    source = _source(ctx, spec_file, env, every=True)
    catalog = source.catalog
    report = erase(catalog, value, apply=apply_, now=now, reason=reason)
    rows = _forget_rows(report, catalog)
    if output == "json":
        print_json(
            {
                "dry_run": not apply_,
                "source": source.where,
                **report.to_dict(),
                "datasets": rows,
                "reason": reason,
            }
        )
        return None
    hit = [r for r in rows if r["rows"]]
    if apply_:
        click.echo(
            f"erased {_rows(report.rows)} of subject {_short(report.subject)} from "
            f"{len(hit)} dataset(s)"
        )
    else:
        click.echo(f"dry run: nothing was changed (--apply erases); datasets from {source.where}")
        click.echo(
            f"subject {_short(report.subject)} (its keyed hash: the id is never printed or stored)"
        )
    click.echo("")
    version_head = "version" if not apply_ else "versions"
    print_table(
        ["dataset", "column", "rows", version_head, "time travel", "old versions holding it"],
        [
            [
                r["dataset"],
                r["column"],
                _number(r["rows"]),
                "-"
                if r["version_before"] is None
                else (
                    f"{r['version_before']} → {r['version_after']}"
                    if r["version_after"] is not None
                    else r["version_before"]
                ),
                r["time_travel"],
                _old_versions(r, apply_),
            ]
            for r in rows
        ],
    )
    noun = "removed" if apply_ else "to remove"
    click.echo(f"total: {_rows(report.rows)} {noun} in {len(hit)} of {len(rows)} dataset(s)")
    if report.without_subject:
        click.echo(f"not covered (no subject: column): {', '.join(report.without_subject)}")
    if report.models:
        click.echo("")
        click.echo("models trained on data that held this subject (retrain or withdraw them):")
        for m in report.models:
            held = (
                "held the subject"
                if m.contained
                else "cannot tell: that version's files are already gone"
            )
            click.echo(
                f"  {m.model}@{m.version}  trained on {m.dataset}@{m.dataset_version}: {held}"
            )
    click.echo("")
    if apply_:
        pending = [r for r in rows if r["compaction"] == "pending"]
        if pending:
            click.echo(
                "the old versions go once their window has passed: the maintenance job "
                "(mizzen data maintain) does it and records the erasure complete"
            )
        click.echo(f"audit record {report.audit_id} (mizzen data audit)")
        return None
    if not report.rows:
        click.echo("--apply would remove nothing from the current versions" + _reason(reason))
        return None
    names = _names([r["dataset"] for r in hit])
    each = " each" if len(hit) > 1 else ""
    click.echo(
        f"--apply would delete these {_rows(report.rows)} as one new version{each} of {names}, "
        "and write an audit record" + _reason(reason) + "."
    )
    if now:
        click.echo(
            "with --now it also removes the old versions that hold them at once: "
            "time travel to earlier versions of these datasets ends"
        )
    else:
        click.echo(
            "the old versions that hold them stay readable for each dataset's time travel, "
            "then maintenance removes them (--now: at once)"
        )
    return None


def _reason(reason: str) -> str:
    return f" (reason: {reason})" if reason else ""


# --- retention --------------------------------------------------------------------------------
@data.command()
@click.option("--apply", "apply_", is_flag=True, help="Delete them (default: a dry run).")
@spec_options
@output_option
@click.pass_context
def retention(
    ctx: click.Context, apply_: bool, spec_file: Path | None, env: str | None, output: str
) -> None:
    """Rows older than each dataset's retain: (a dry run unless --apply)."""
    from dataclasses import asdict

    from mizzen.datasets.maintenance import apply_retention
    from mizzen.datasets.summary import require_extra

    require_extra("mizzen data retention")
    source = _source(ctx, spec_file, env, every=True)
    catalog = source.catalog
    results = apply_retention(catalog, dry_run=not apply_)
    ungoverned = [n for n in catalog.names() if catalog.spec(n).retain is None]
    if output == "json":
        print_json(
            {
                "dry_run": not apply_,
                "source": source.where,
                "datasets": [
                    {**asdict(r), "duration": _retain(catalog, r.dataset)} for r in results
                ],
                "without_retention": ungoverned,
                "ok": not any(r.error for r in results),
            }
        )
    else:
        if not apply_:
            click.echo(
                f"dry run: nothing was changed (--apply deletes); datasets from {source.where}"
            )
        head = ["dataset", "column", "retain", "cutoff", "rows removed" if apply_ else "rows older"]
        print_table(
            [*head, "version"] if apply_ else head,
            [
                [
                    r.dataset,
                    r.column,
                    _retain(catalog, r.dataset),
                    f"before {r.cutoff}",
                    f"error: {r.error}" if r.error else _number(r.rows_removed),
                    *([r.version if r.version is not None else "-"] if apply_ else []),
                ]
                for r in results
            ],
        )
        if ungoverned:
            click.echo(f"no retain: (kept until deleted): {', '.join(ungoverned)}")
        total = sum(r.rows_removed for r in results)
        if apply_:
            click.echo(
                f"removed {_rows(total)} (audited); they stay in older versions for each "
                "dataset's time travel, then maintenance removes them"
            )
        elif total:
            click.echo(f"--apply would delete {_rows(total)}, one new version per dataset")
    for r in results:
        if r.error:
            click.echo(f"error: {r.dataset}: retention: {r.error}", err=True)
    if any(r.error for r in results):
        ctx.exit(1)


def _retain(catalog: Any, name: str) -> str:
    retain = catalog.spec(name).retain
    return str(retain.duration) if retain else ""


# --- maintain ---------------------------------------------------------------------------------
@data.command()
@spec_options
@output_option
@click.pass_context
def maintain(ctx: click.Context, spec_file: Path | None, env: str | None, output: str) -> None:
    """What the scheduled maintenance job runs: retention, vacuum of versions past their
    time-travel window, log expiry, erasures completed once their window has passed."""
    from mizzen.datasets.maintenance import maintain as run_maintenance
    from mizzen.datasets.summary import require_extra

    require_extra("mizzen data maintain")
    source = _source(ctx, spec_file, env, every=True)
    catalog = source.catalog
    report = run_maintenance(catalog)
    pending = report.pending_erasures
    if output == "json":
        print_json({"source": source.where, **report.to_dict()})
    else:
        click.echo(f"maintained {len(catalog.names())} dataset(s) from {source.where}")
        for r in report.retention:
            if r.error:
                continue
            what = (
                f"{_rows(r.rows_removed)} with {r.column} before {r.cutoff} removed (version {r.version})"
                if r.rows_removed
                else f"nothing with {r.column} before {r.cutoff}"
            )
            click.echo(f"  retention  {r.dataset}: {what}")
        for name, files in report.vacuumed.items():
            what = f"{files} old file(s) removed" if files else "no file past its window"
            click.echo(f"  vacuum     {name}: {what}; log expired past the window")
        for record_id in report.completed_erasures:
            click.echo(f"  erasure    {record_id}: complete, no version holds the subject")
        if pending:
            first = min(p["compact_after"] or 0 for p in pending)
            click.echo(
                f"  erasures   {len(pending)} still pending (the next window ends "
                f"{fmt_time(first)})"
            )
    for failure in report.failures:
        click.echo(f"error: {failure}", err=True)
    if report.failures:
        ctx.exit(1)


# --- audit ------------------------------------------------------------------------------------
@data.command()
@click.option(
    "--kind",
    type=click.Choice(["forget", "forget-compacted", "retention"]),
    default=None,
    help="Only records of this kind.",
)
@click.option("--dataset", default=None, help="Only records touching this dataset.")
@click.option(
    "--subject",
    "subject",
    default=None,
    help="Only records about this person (matched by its keyed hash; never printed).",
)
@click.option("--subject-from-env", "subject_env", metavar="VAR", help=SUBJECT_HELP)
@spec_options
@output_option
def audit(
    kind: str | None,
    dataset: str | None,
    subject: str | None,
    subject_env: str | None,
    spec_file: Path | None,
    env: str | None,
    output: str,
) -> None:
    """The erasure and retention audit log, newest first. A subject appears only as its
    keyed hash (HMAC-SHA256 with the project's erasure key)."""
    from mizzen.datasets.maintenance import KEY, AuditLog, subject_hash
    from mizzen.datasets.summary import audit_rows

    store = _project(spec_file, env)
    records = AuditLog(store).list(kind)
    value = _subject(subject, subject_env)
    if value is not None:
        digest = subject_hash(store, value.strip()) if store.exists(KEY) else None
        records = [r for r in records if digest is not None and r.get("subject") == digest]
    rows = audit_rows(records, dataset)
    if output == "json":
        wanted = {r["id"] for r in rows}
        print_json([r for r in records if r.get("id") in wanted])
        return
    if not rows:
        click.echo("no audit records" + (" match" if (kind or dataset or value) else " yet"))
        return
    print_table(
        ["time", "kind", "record", "subject", "datasets", "detail", "by"],
        [
            [
                fmt_time(r["time"]),
                r["kind"],
                r["id"],
                _short(r["subject"]),
                ", ".join(f"{n}: {v:,}" if v is not None else n for n, v in r["datasets"].items()),
                "; ".join(
                    x
                    for x in (
                        r["detail"],
                        f"reason: {r['reason']}" if r["reason"] else "",
                        f"FAILED: {'; '.join(r['failures'])}" if r["failures"] else "",
                    )
                    if x
                ),
                r["actor"],
            ]
            for r in rows
        ],
    )
