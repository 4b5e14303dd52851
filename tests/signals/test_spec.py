"""`signals:` in the spec: each entry checked on its own and against its dataset's declared
schema, every problem at its file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mizzen import spec as spec_mod
from mizzen.errors import SpecError

HEAD = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: sig
stores: {lake: data/lake}
secrets: {alerts: [url]}
datasets:
  drives:
    location: lake/tables/drives
    schema:
      started_at: timestamp
      day: date
      predicted: string
      confidence: double
      corrected: string
      vehicle: string
      variant: string
      tags: array<string>
signals:
"""


def problems(tmp_path: Path, signals: str, files: dict[str, str] | None = None) -> list[str]:
    (tmp_path / "mizzen.yaml").write_text(HEAD + signals)
    for name, text in (files or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    try:
        spec_mod.load(tmp_path / "mizzen.yaml")
    except SpecError as exc:
        return [str(p) for p in exc.problems]
    return []


def test_a_valid_signal_gets_its_defaults(tmp_path: Path) -> None:
    (tmp_path / "mizzen.yaml").write_text(
        HEAD
        + """\
  business-share:
    dataset: drives
    time: started_at
    ratio: {numerator: "predicted = 'business' AND confidence >= 0.9", denominator: 1}
    dimensions: [vehicle]
    filter: "predicted IS NOT NULL"
    arm: variant
    alerts:
      - {below: 0.3, webhook: "${secrets.alerts.url}"}
      - {change: {percent: 20}}
      - {anomaly: {k: 4}}
"""
    )
    signal = spec_mod.load(tmp_path / "mizzen.yaml").project.signals["business-share"]
    assert signal.grain == "day" and signal.aggregate == "ratio"
    assert signal.ratio is not None and signal.ratio.denominator == "1"
    assert signal.filter == ["predicted IS NOT NULL"]
    assert signal.schedule is not None and signal.schedule.cron == "30 0 * * *"
    assert [a.label for a in signal.alerts] == ["below-0.3", "change-7", "anomaly-28"]


def test_unknown_datasets_and_columns_are_errors_at_their_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
  a:
    dataset: drives
    time: started_att
    ratio: {numerator: "predicted = 'business' AND confidance >= 0.9"}
    dimensions: [vehicle, vehicl]
    arm: tags
  b:
    dataset: drivez
    time: day
    mean: "1"
""",
    )
    found = [p.split("/")[-1] for p in found]
    assert found == [
        "mizzen.yaml:21:5: signals.a.time: 'started_att' is not a column of dataset 'drives' (did you mean 'started_at'?)",
        "mizzen.yaml:22:13: signals.a.ratio.numerator: 'confidance' is not a column of dataset 'drives' (did you mean 'confidence'?)",
        "mizzen.yaml:23:27: signals.a.dimensions[1]: 'vehicl' is not a column of dataset 'drives' (did you mean 'vehicle'?)",
        "mizzen.yaml:24:5: signals.a.arm: 'tags' is array<string>, which cannot slice a signal",
        "mizzen.yaml:26:5: signals.b.dataset: unknown dataset 'drivez' (did you mean 'drives'?)",
    ], found


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "time: confidence\n    mean: confidence",
            "'confidence' is double; the time column is a date or a timestamp",
        ),
        (
            "time: day\n    grain: hour\n    mean: confidence",
            "'day' is a date: it has no hours for grain: hour",
        ),
        (
            "time: day\n    mean: confidence\n    sum: confidence",
            "exactly one aggregate: mean, ratio, sum, count, expression, sql (got mean, sum)",
        ),
        (
            "time: day\n    count: '*'\n    grain: month",
            "got 'month'; expected 'hour', 'day' or 'week'",
        ),
        ("time: day\n    sql: signals/x.sql", "signals/x.sql is not a file in the project"),
        ("time: day\n    count: '*'\n    control: B", "`control` names an arm"),
        ("time: day\n    count: '*'\n    timeZone: Europe/Pariss", "did you mean 'Europe/Paris'?"),
        ("time: day\n    count: '*'\n    alerts: [{below: 1, above: 2}]", "for a band use below"),
        (
            "time: day\n    count: '*'\n    alerts: [{change: {percent: 5}}]\n    dimensions: [vehicle]\n    arm: vehicle",
            "cannot also be a dimension",
        ),
        (
            "time: day\n    count: '*'\n    alerts: [{below: 1, dimension: variant}]",
            "alerts[0].dimension: 'variant' is not one of the signal's dimensions",
        ),
        (
            "time: day\n    count: '*'\n    alerts: [{below: 1, webhook: '${secrets.alert.url}'}]",
            "unknown secret 'alert' (did you mean 'alerts'?)",
        ),
        (
            "time: day\n    count: '*'\n    alerts: [{below: 1}, {below: 1}]",
            "two alerts are named 'below-1'",
        ),
        (
            "time: day\n    count: \"predicted = 'x' OR corected IS NULL\"",
            "'corected' is not a column",
        ),
    ],
)
def test_each_kind_of_mistake_is_named(tmp_path: Path, body: str, message: str) -> None:
    found = problems(tmp_path, f"  s:\n    dataset: drives\n    {body}\n")
    assert any(message in p for p in found), found


def test_a_signal_name_leaves_room_for_its_job(tmp_path: Path) -> None:
    found = problems(
        tmp_path, f"  {'x' * 50}:\n    dataset: drives\n    time: day\n    count: '*'\n"
    )
    assert any("at most 49" in p for p in found), found


def test_sql_words_functions_and_strings_are_not_taken_for_columns() -> None:
    from mizzen.signals.sqlcheck import unknown_columns

    cols = ["predicted", "confidence", "started_at", "vehicle"]
    fine = [
        "CAST(predicted = 'business' AS DOUBLE)",
        "extract(hour FROM started_at) < 9 -- morning, a comment naming nothing",
        "started_at > now() - INTERVAL 3 DAY",
        'confidence::DOUBLE * 1e-2 + "vehicle" IS NOT NULL',
        "vehicle IN (SELECT v FROM elsewhere)",  # not checked: a sub-query
        "CASE WHEN Predicted LIKE 'bus%' THEN 1 ELSE 0 END",
    ]
    assert [unknown_columns(t, cols) for t in fine] == [[]] * len(fine)
    assert unknown_columns("count(DISTINCT driver)", cols) == [(15, "driver")]
