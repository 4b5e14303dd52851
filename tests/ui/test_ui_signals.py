"""The dashboard's signals pages, served by `mizzen ui`: over HTTP, and in real headless
Chromium (screenshots under test-artifacts/ui/)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.signals.conftest import DRIVES, ingest

from mizzen import spec as spec_mod
from mizzen.datasets.model import DatasetSpec
from mizzen.datasets.table import DatasetTable
from mizzen.plan import compile_plan
from mizzen.signals import report
from mizzen.signals.compute import Where, compute
from mizzen.storage import open_store

SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: quality
stores: {lake: data/lake}
datasets:
  drives:
    location: lake/tables/drives
    schema:
      drive_id: {type: long, nullable: false}
      started_at: timestamp
      day: date
      predicted: string
      confidence: double
      corrected: string
      vehicle: string
      variant: string
      driver_id: string
signals:
  business-share:
    dataset: drives
    time: started_at
    ratio: {numerator: "predicted = 'business' AND confidence >= 0.9"}
    dimensions: [vehicle]
    arm: variant
    description: Daily share of drives auto-classified business with confidence >= 0.9
    owner: quality@example.com
    alerts: [{change: {trailing: 7, percent: 40}}]
  accuracy:
    dataset: drives
    time: started_at
    mean: "coalesce(corrected, predicted) = predicted"
    dimensions: [vehicle]
    description: Classification accuracy against user corrections
    alerts: [{below: 0.9}, {anomaly: {trailing: 14, k: 3}}]
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, ui_process: Any) -> Iterator[str]:
    root = tmp_path_factory.mktemp("quality")
    (root / "mizzen.yaml").write_text(SPEC)
    lake = open_store((root / "data" / "lake").as_uri())
    table = DatasetTable.open("drives", DatasetSpec.model_validate(DRIVES), lake)
    ingest(table, range(28))
    plan = compile_plan(spec_mod.load(root / "mizzen.yaml"), "local")
    store = open_store((root / ".mizzen" / "store").as_uri())
    for signal in report.definitions(plan).values():
        compute(signal, Where(table, store, run_id="20250330-000000-aaaa"))
    with ui_process(root) as url:
        yield url


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as r:
        return str(r.read().decode())


def test_the_list_and_a_signal_over_http(site: str) -> None:
    listing = get(site + "/signals")
    assert 'data-signal="business-share"' in listing and 'data-signal="accuracy"' in listing
    assert "firing" in listing  # accuracy is below 0.9
    page_ = get(site + "/signals/business-share?arm=*")
    assert 'data-arm="A"' in page_ and 'data-arm="B"' in page_ and "wilson" in page_
    assert "GROUPING SETS" in page_  # the SQL it runs
    seg = get(site + "/signals/accuracy?segment=vehicle%3Dvan")
    assert "<span>vehicle = van</span>" in seg  # the chart is of that segment
    assert "<span>vehicle = van</span>" not in get(site + "/signals/accuracy")
    for bad in (
        "/signals/nope",
        "/signals/accuracy?segment=vehicle%3Dbus",
        "/signals/accuracy?arm=A",
    ):
        try:
            get(site + bad)
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
        else:
            raise AssertionError(f"{bad} answered")


@pytest.mark.browser
def test_the_signals_pages_in_a_browser(site: str, page: Any, shots: Path, chart_lib: Any) -> None:
    page.goto(site + "/signals")
    assert page.locator("tr[data-signal]").count() == 2
    assert page.locator("tr[data-signal=accuracy] .status-failed").count() == 1
    page.screenshot(path=str(shots / "signals.png"), full_page=True)

    page.click("a[href='/signals/business-share']")
    page.wait_for_selector("figure[data-chart=signal] canvas")
    assert page.get_attribute("figure[data-chart=signal]", "data-buckets") == "28"
    page.select_option("select[name=arm]", "*")
    page.click("button[type=submit]")
    page.wait_for_url("**arm=*")
    page.wait_for_selector("figure[data-chart=signal][data-drawn='2'] canvas")
    assert page.locator("table.arms tr[data-arm]").count() == 2
    assert "control" in page.locator("table.arms tr[data-arm=A]").inner_text()
    legend = page.locator(".u-legend").inner_text().lower()
    assert "variant=a" in legend and "variant=b" in legend and "high" not in legend
    page.screenshot(path=str(shots / "signal.png"), full_page=True)

    page.select_option("select[name=segment]", "vehicle=van")
    page.click("button[type=submit]")
    page.wait_for_url("**segment=vehicle%3Dvan**")
    assert "vehicle = van" in page.locator("figcaption").inner_text()
