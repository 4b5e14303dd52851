"""`mizzen runs compare RUN RUN…`: params and metrics side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mizzen.cli.common import (
    fmt_duration,
    fmt_time,
    output_option,
    print_json,
    print_table,
    spec_options,
)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def comparison(records: list[Any]) -> dict[str, Any]:
    """Rows of a side-by-side comparison: (section, name) -> one value per run."""
    params = sorted({k for r in records for k in r.params})
    metrics = sorted({k for r in records for k in r.metrics})
    return {
        "runs": [f"{r.workload}/{r.id}" for r in records],
        "summary": {
            "status": [r.status for r in records],
            "started": [fmt_time(r.started) for r in records],
            "duration": [fmt_duration(r.duration) for r in records],
            "git": [(r.git_sha or "")[:10] or None for r in records],
        },
        "params": {k: [r.params.get(k) for r in records] for k in params},
        "metrics": {k: [r.metrics.get(k) for r in records] for k in metrics},
    }


def _load(spec_file: Path | None, env: str | None, ids: tuple[str, ...]) -> list[Any]:
    from mizzen.errors import UsageError
    from mizzen.storage.project import project_store
    from mizzen.storage.runs import RunStore

    runs = RunStore(project_store(spec_file, env))
    out = []
    for rid in ids:
        try:
            out.append(runs.get(rid))
        except KeyError:
            raise UsageError(
                f"no run {rid!r} in the project store",
                hint="`mizzen runs` lists run ids; WORKLOAD/RUN-ID or a unique id prefix work",
            ) from None
        except LookupError as exc:
            raise UsageError(str(exc), hint="give more of the id, or WORKLOAD/RUN-ID") from None
    return out


@click.command("compare")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN RUN...")
@click.option(
    "--diff", "only_diff", is_flag=True, help="Show only the params and metrics that differ."
)
@spec_options
@output_option
def compare(
    run_ids: tuple[str, ...], only_diff: bool, spec_file: Path | None, env: str | None, output: str
) -> None:
    """Compare runs: params and metrics side by side (ids, unique prefixes or WORKLOAD/ID)."""
    from mizzen.errors import UsageError

    if len(run_ids) < 2:
        raise UsageError(
            "compare needs at least two runs", hint="mizzen runs compare RUN RUN [RUN...]"
        )
    data = comparison(_load(spec_file, env, run_ids))
    if only_diff:
        for section in ("params", "metrics"):
            data[section] = {
                k: v for k, v in data[section].items() if len({repr(x) for x in v}) > 1
            }
    if output == "json":
        print_json(data)
        return
    rows: list[list[str]] = [[name, *map(_fmt, values)] for name, values in data["summary"].items()]
    for section in ("params", "metrics"):
        for name, values in data[section].items():
            mark = "" if len({repr(x) for x in values}) == 1 else " *"
            rows.append([f"{section[:-1]}.{name}{mark}", *map(_fmt, values)])
    print_table(["", *data["runs"]], rows, upper=False)
