"""What the computation's process does (`mizzen.signals.runner`): compute, record, alert."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mizzen.errors import UsageError
from mizzen.signals.definition import Signal


def run(
    definition: str,
    engine: str,
    file: str | None,
    start: str | None,
    end: str | None,
    environ: Mapping[str, str] | None = None,
) -> int:
    from mizzen import contract
    from mizzen.notify import Origin
    from mizzen.plan.model import secret_env_name
    from mizzen.signals import buckets, values, watch
    from mizzen.signals.compute import Where, compute, log

    environ = os.environ if environ is None else environ
    signal = Signal.from_json(definition)
    values.need(f"signal {signal.name}'s computation", engine)
    sql_text = ""
    if file:
        try:
            sql_text = Path(file).read_text()
        except OSError as exc:
            raise UsageError(f"cannot read the signal's SQL file {file}: {exc.strerror}") from None
    try:
        begin, finish = buckets.span(start, end, signal.grain, signal.time_zone)
    except ValueError as exc:
        raise UsageError(f"signal {signal.name}: {exc}") from None
    where = Where.from_contract(signal, environ)
    outcome = compute(signal, where, engine=engine, sql_text=sql_text, start=begin, end=finish)
    print(outcome.summary(), flush=True)
    if contract.read(environ).run_dir:
        log(outcome)
    if signal.alerts:
        rows = values.read(values.table(where.project), signal.name)
        verdicts = watch.evaluate(signal, rows)
        told = contract.read(environ)
        origin = Origin(told.project or "", told.env, told.target or "local")
        sent = watch.notify(
            signal,
            verdicts,
            where.project,
            origin,
            lambda s, k: environ.get(secret_env_name(s, k)),
            run_id=where.run_id,
        )
        by_name = {a.name: a for a in signal.alerts}
        for v in verdicts:
            state = "FIRING" if v.firing else "ok"
            note = ", notified" if v in sent else ""
            seg = f" {v.dimension}={v.segment}" if v.dimension else ""
            rule = by_name[v.alert].describe()
            print(f"  alert {v.alert}{seg} (value {rule}): {state}{note}: {v.detail}", flush=True)
    return 0
