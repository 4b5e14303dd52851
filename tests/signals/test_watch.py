"""Alerts on signals: judged on the latest complete bucket, sent once through the notifiers
(a real HTTP receiver), however often the bucket is recomputed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from tests.notify.conftest import Receiver

from mizzen.notify import Origin
from mizzen.signals.definition import AlertDef, Signal
from mizzen.signals.watch import Point, evaluate, judge, notify
from mizzen.storage import open_store

T0 = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)


def points(values: list[float]) -> list[Point]:
    return [Point(T0 + dt.timedelta(days=i), v) for i, v in enumerate(values)]


def table(values: list[float], segments: dict[str, list[float]] | None = None) -> pa.Table:
    rows = []
    for i, v in enumerate(values):
        rows.append(
            {
                "bucket": T0 + dt.timedelta(days=i),
                "dimension": "",
                "segment": "",
                "arm": "",
                "value": v,
            }
        )
    for seg, vals in (segments or {}).items():
        for i, v in enumerate(vals):
            rows.append(
                {
                    "bucket": T0 + dt.timedelta(days=i),
                    "dimension": "vehicle",
                    "segment": seg,
                    "arm": "",
                    "value": v,
                }
            )
    return pa.Table.from_pylist(rows)


def signal(*alerts: AlertDef) -> Signal:
    return Signal(
        name="share",
        dataset="d",
        time="t",
        time_type="timestamp",
        grain="day",
        aggregate="mean",
        x="v",
        y="1",
        dimensions=("vehicle",),
        alerts=alerts,
    )


BELOW = AlertDef("below-0.5", "threshold", below=0.5)
CHANGE = AlertDef("change-3", "change", trailing=3, percent=20, direction="down")
ANOMALY = AlertDef("anomaly-7", "anomaly", trailing=7, k=3)


def test_threshold_change_and_anomaly() -> None:
    assert judge(BELOW, points([0.6, 0.4]))[0] is True
    assert judge(BELOW, points([0.4, 0.6]))[0] is False
    assert judge(CHANGE, points([1.0, 1.0, 1.0, 0.79]))[0] is True  # -21% vs the mean of 3
    assert judge(CHANGE, points([1.0, 1.0, 1.0, 1.5]))[0] is False  # up, and only down is watched
    up = AlertDef("c", "change", trailing=3, percent=20, direction="both")
    assert judge(up, points([1.0, 1.0, 1.0, 1.5]))[0] is True
    assert judge(CHANGE, points([1.0, 0.5]))[0] is False  # too little history to judge
    calm = [0.50, 0.52, 0.49, 0.51, 0.50, 0.48, 0.51]
    assert judge(ANOMALY, points([*calm, 0.53]))[0] is False
    fires, median, mad, used, why = judge(ANOMALY, points([*calm, 0.70]))
    assert mad is not None and mad > 0
    assert fires and median == pytest.approx(0.50) and used == 7 and "scaled MADs" in why
    # a single outlier in the history does not hide the next one (the median and MAD are robust)
    assert judge(ANOMALY, points([0.5, 0.51, 5.0, 0.49, 0.5, 0.52, 0.5, 0.7]))[0] is True
    assert judge(ANOMALY, points([0.5] * 4 + [0.9]))[0] is False  # fewer than 5 earlier buckets


def test_only_complete_buckets_are_judged_and_segments_each_on_their_own() -> None:
    per_segment = AlertDef("below-0.5", "threshold", below=0.5, dimension="vehicle")
    rows = table([0.6, 0.7, 0.1], {"car": [0.6, 0.7, 0.1], "van": [0.6, 0.4, 0.9]})
    now = T0 + dt.timedelta(days=2, hours=12)  # the third bucket is not over
    overall = evaluate(signal(BELOW), rows, now)
    assert [(v.firing, v.value) for v in overall] == [(False, 0.7)]
    seg = {v.segment: v for v in evaluate(signal(per_segment), rows, now)}
    assert (seg["car"].firing, seg["van"].firing) == (False, True)
    later = evaluate(signal(BELOW), rows, T0 + dt.timedelta(days=3))
    assert later[0].firing and later[0].bucket == T0 + dt.timedelta(days=2)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_a_firing_alert_is_sent_once_through_the_webhook(
    tmp_path: Path, receiver: Receiver
) -> None:
    hooked = AlertDef(
        "below-0.5", "threshold", below=0.5, webhook="${secrets.hooks.url}", format="slack"
    )
    quiet = AlertDef("anomaly-7", "anomaly", trailing=7, k=3)  # no webhook: shown, not sent
    s = signal(hooked, quiet)
    store = open_store(tmp_path.as_uri())
    origin = Origin("drives", None, "local")
    secrets = {("hooks", "url"): receiver.url + "/hook"}
    rows = table([0.6, 0.7, 0.1])
    now = T0 + dt.timedelta(days=3)
    for _ in range(2):  # a second run (a recomputed bucket) does not send it again
        sent = notify(
            s, evaluate(s, rows, now), store, origin, lambda n, k: secrets.get((n, k)), run_id="r1"
        )
    assert len(receiver.requests) == 1 and sent == []
    body = receiver.requests[0]["json"]
    assert body["text"].startswith("[drives] signal: share: signal share is below 0.5: 0.1 < 0.5")
    # the next bucket firing again is news
    rows = table([0.6, 0.7, 0.1, 0.2])
    notify(
        s,
        evaluate(s, rows, now + dt.timedelta(days=1)),
        store,
        origin,
        lambda n, k: secrets.get((n, k)),
    )
    assert len(receiver.requests) == 2


def test_a_failing_receiver_never_fails_the_computation(
    tmp_path: Path, receiver: Receiver, caplog: Any
) -> None:
    receiver.status = 500
    s = signal(AlertDef("below-0.5", "threshold", below=0.5, webhook=receiver.url))
    store = open_store(tmp_path.as_uri())
    sent = notify(
        s,
        evaluate(s, table([0.1]), T0 + dt.timedelta(days=1)),
        store,
        Origin("p", None, "local"),
        lambda n, k: None,
    )
    assert len(receiver.requests) == 3  # retried, then logged
    assert sent == [] and "failed (attempt 3/3)" in caplog.text
    receiver.status = 200  # the next run tries again
    sent = notify(
        s,
        evaluate(s, table([0.1]), T0 + dt.timedelta(days=1)),
        store,
        Origin("p", None, "local"),
        lambda n, k: None,
    )
    assert len(receiver.requests) == 4 and len(sent) == 1
