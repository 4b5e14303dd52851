"""`mizzen signals`: list, show, compute, backfill, the SQL, the Prometheus exporter."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from mizzen.cli.common import (
    load_plan,
    output_option,
    pod_options,
    print_json,
    print_table,
    spec_options,
    target_option,
)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _p(value: float | None) -> str:
    if value is None:
        return ""
    return "p<0.0001" if value < 1e-4 else f"p={value:.3g}"


def _ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    from datetime import UTC

    from mizzen.cli.common import fmt_duration

    return fmt_duration((datetime.now(UTC) - value).total_seconds()) + " ago"


def _views(spec_file: Path | None, env: str | None, names: list[str] | None = None) -> list[Any]:
    from mizzen.signals.report import View, definitions, find
    from mizzen.signals.values import need
    from mizzen.storage.project import project_store

    need("mizzen signals")

    plan = load_plan(spec_file, env, "local")
    store = project_store(plan.spec_file, plan.env)
    chosen = [find(plan, n) for n in names] if names else list(definitions(plan).values())
    return [View.load(s, store) for s in chosen]


@click.group()
def signals() -> None:
    """The project's signals: metrics over its datasets, computed per time bucket."""


@signals.command("list")
@spec_options
@output_option
def list_(spec_file: Path | None, env: str | None, output: str) -> None:
    """Every signal: its latest value, freshness and alerts."""
    views = _views(spec_file, env)
    rows = []
    for v in views:
        series = v.series()
        done = [r for r in series if r["complete"]]
        latest = done[-1] if done else (series[-1] if series else None)
        fresh = v.freshness()
        firing = [a.alert for a in v.verdicts() if a.firing]
        rows.append(
            {
                "name": v.signal.name,
                "dataset": v.signal.dataset,
                "grain": v.signal.grain,
                "aggregate": v.signal.aggregate,
                "bucket": latest["bucket"].isoformat() if latest else None,
                "value": latest["value"] if latest else None,
                "buckets": fresh["buckets"],
                "computed_at": fresh["computed_at"].isoformat() if fresh["computed_at"] else None,
                "alerts": len(v.signal.alerts),
                "firing": firing,
            }
        )
    if output == "json":
        print_json(rows)
        return
    print_table(
        ["signal", "dataset", "grain", "latest", "bucket", "buckets", "computed", "alerts"],
        [
            [
                r["name"],
                r["dataset"],
                r["grain"],
                _fmt(r["value"]),
                (r["bucket"] or "")[:16].replace("T", " "),
                r["buckets"],
                _ago(v.freshness()["computed_at"]),
                (
                    f"{len(r['firing'])} firing: {', '.join(r['firing'])}"
                    if r["firing"]
                    else f"{r['alerts']} ok"
                )
                if r["alerts"]
                else "",
            ]
            for r, v in zip(rows, views, strict=True)
        ],
    )


@signals.command()
@spec_options
@output_option
@click.option(
    "--last", type=click.IntRange(min=1), default=30, show_default=True, help="Buckets shown."
)
@click.option(
    "--segment", default=None, metavar="DIMENSION", help="One row per segment of this dimension."
)
@click.argument("name")
def show(
    spec_file: Path | None, env: str | None, output: str, last: int, segment: str | None, name: str
) -> None:
    """One signal: its definition, freshness, values (sparklines), arms and alerts."""
    from mizzen.errors import UsageError
    from mizzen.signals.report import definition_text, sparkline

    (view,) = _views(spec_file, env, [name])
    s = view.signal
    if segment is not None and segment not in s.dimensions:
        raise UsageError(
            f"signal {name} has no dimension {segment!r}",
            hint=f"its dimensions: {', '.join(s.dimensions) or 'none'}",
        )
    if output == "json":
        print_json(view.to_dict(last))
        return
    fresh = view.freshness()
    click.echo(f"signal {s.name}: {s.description}" if s.description else f"signal {s.name}")
    click.echo(f"  {definition_text(s)} over {s.dataset} per {s.grain} of {s.time} ({s.time_zone})")
    if s.filters:
        click.echo(f"  where {' AND '.join(s.filters)}")
    if s.owner:
        click.echo(f"  owner {s.owner}")
    click.echo(
        f"  computed {_ago(fresh['computed_at'])} from {s.dataset}@{fresh['source_version']}, "
        f"{fresh['buckets']} bucket(s), the last {_when(fresh['last_bucket'])}"
        if fresh["computed_at"]
        else f"  not computed yet: mizzen signals compute {s.name}"
    )
    lines: list[tuple[str, list[dict[str, Any]]]] = [("all", view.series())]
    dims = [segment] if segment else list(s.dimensions)
    for d in dims:
        lines += [(f"{d}={seg}", view.series(d, seg)) for seg in view.segments().get(d, [])]
    lines += [(f"{s.arm}={a}", view.series(arm=a)) for a in view.arms()]
    rows = []
    for label, series in lines:
        shown = series[-last:]
        done = [r for r in shown if r["complete"]]
        latest = done[-1] if done else None
        before = done[-2] if len(done) > 1 else None
        change = (
            f"{(latest['value'] - before['value']) / abs(before['value']) * 100:+.1f}%"
            if latest and before and before["value"] and latest["value"] is not None
            else ""
        )
        partial = shown[-1] if shown and not shown[-1]["complete"] else None
        rows.append(
            [
                label,
                sparkline([r["value"] for r in shown]),
                _fmt(latest["value"]) if latest else "",
                change,
                f"{latest['n']:,}" if latest else "",
                _fmt(partial["value"]) + " (so far)" if partial else "",
            ]
        )
    print_table(["series", f"last {last} {s.grain}s", "latest", "change", "n", "current"], rows)
    exp = view.experiment()
    if exp and exp["arms"]:
        count = len({r["bucket"] for r in view.series()})
        click.echo(
            f"\narms ({s.arm}, over all {count} buckets, control {exp['control']}, "
            f"{exp['confidence']:.0%} intervals):"
        )
        arm_rows = []
        diffs = {d["arm"]: d for d in exp["differences"]}
        for arm, e in exp["arms"].items():
            ci = f"[{_fmt(e['low'])}, {_fmt(e['high'])}]" if e["low"] is not None else ""
            d = diffs.get(arm)
            vs = (
                f"{d['difference']:+.4g} [{d['low']:+.4g}, {d['high']:+.4g}] {_p(d['p_value'])}"
                if d and d["difference"] is not None
                else ("control" if arm == exp["control"] else "")
            )
            arm_rows.append([arm, _fmt(e["value"]), ci, f"{e['n']:,}", vs])
        print_table(["arm", "value", "interval", "n", "vs control"], arm_rows)
    verdicts = view.verdicts()
    if verdicts:
        click.echo("\nalerts:")
        for v in verdicts:
            where = f" {v.dimension}={v.segment}" if v.dimension else ""
            click.echo(f"  {'FIRING' if v.firing else 'ok    '} {v.alert}{where}: {v.detail}")


def _range(required: bool) -> Any:
    def add(func: Any) -> Any:
        first = "First bucket (a date or ISO time)" + ("." if required else "; default: unbounded.")
        func = click.option(
            "--to", "end", required=required, metavar="DATE", help="Last bucket, included."
        )(func)
        return click.option("--from", "start", required=required, metavar="DATE", help=first)(func)

    return add


@signals.command()
@spec_options
@click.option(
    "--engine", type=click.Choice(["duckdb", "spark"]), default=None, help="Default: the signal's."
)
@_range(required=False)
@click.argument("name")
def sql(
    spec_file: Path | None,
    env: str | None,
    engine: str | None,
    start: str | None,
    end: str | None,
    name: str,
) -> None:
    """Print the SQL a signal is computed with (over `source`, the dataset's files)."""
    from mizzen.signals.report import find
    from mizzen.signals.sql import query

    plan = load_plan(spec_file, env, "local")
    signal = find(plan, name)
    window = _window(signal, start, end)
    text = (Path(plan.root) / signal.sql_file).read_text() if signal.sql_file else ""
    click.echo(query(signal, window, engine or signal.engine, text))


def _window(signal: Any, start: str | None, end: str | None) -> Any:
    from mizzen.errors import UsageError
    from mizzen.signals import buckets
    from mizzen.signals.sql import Window

    try:
        return Window(*buckets.span(start, end, signal.grain, signal.time_zone))
    except ValueError as exc:
        raise UsageError(f"signal {signal.name}: {exc}") from None


def _run(
    spec_file: Path | None,
    env: str | None,
    target: str,
    name: str,
    params: dict[str, str],
    pod: dict[str, Any],
) -> int:
    from mizzen.signals.builtin import with_params
    from mizzen.signals.report import find
    from mizzen.targets.base import Options, get_target

    options = Options(**pod)
    chosen = get_target(target)
    chosen.check("run", options, f"signals {'backfill' if params else 'compute'}")
    plan = load_plan(spec_file, env, target, image=options.image)
    signal = find(plan, name)
    if params:  # a bad range stops before anything starts
        _window(signal, params["from"], params["to"])
    return chosen.run(with_params(plan, signal.job, params), signal.job, options)


@signals.command()
@spec_options
@target_option("local")
@pod_options
@click.argument("name")
def compute(spec_file: Path | None, env: str | None, target: str, name: str, **pod: Any) -> int:
    """Compute what is due now (as the schedule would): the same as `mizzen run mizzen-signal-NAME`."""
    return _run(spec_file, env, target, name, {}, pod)


@signals.command()
@spec_options
@target_option("local")
@pod_options
@_range(required=True)
@click.argument("name")
def backfill(
    spec_file: Path | None,
    env: str | None,
    target: str,
    start: str,
    end: str,
    name: str,
    **pod: Any,
) -> int:
    """Recompute the buckets from --from to --to (both included), as one recorded run (on
    Kubernetes: a one-off Job, or a SparkApplication with engine: spark)."""
    return _run(spec_file, env, target, name, {"from": start, "to": end}, pod)


@signals.command()
@click.option("--host", default=None, help="Default 127.0.0.1 (0.0.0.0 in a cluster's pod).")
@click.option("--port", type=int, default=9464, show_default=True)
@click.option(
    "--signals",
    "definitions",
    default=None,
    help="The signals (JSON), as mizzen's own service passes them.",
)
@spec_options
def exporter(
    host: str | None, port: int, definitions: str | None, spec_file: Path | None, env: str | None
) -> None:
    """Serve the signals' latest values as Prometheus metrics (/metrics)."""
    from mizzen.signals.exporter import serve

    serve(host, port, definitions, spec_file, env)
