"""The dashboard in real headless Chromium, served by `mizzen ui` itself."""

from __future__ import annotations

import time

import pytest

from mizzen.storage.runs import DONE_MARKER, Metric
from mizzen.ui.seed import job_run, write

pytestmark = pytest.mark.browser


def test_runs_table_lists_the_seeded_runs_paginated_and_filtered(server, page, shots):
    page.goto(server + "/runs")
    rows = page.locator("#runs-rows tr[data-run]")
    assert rows.count() == 50
    assert (
        "page 1 of 3 · 121 runs" in page.locator(".pager").inner_text()
    )  # 120 jobs + 1 pipeline run
    first = rows.first.get_attribute("data-run")
    assert first is not None and first.startswith("nightly/")  # newest first
    page.screenshot(path=str(shots / "runs.png"), full_page=True)

    page.select_option("select[name=status]", "failed")
    page.click("button[type=submit]")
    page.wait_for_url("**status=failed**")
    statuses = page.locator("#runs-rows .status").all_inner_texts()
    assert statuses and set(statuses) == {"failed"}

    page.goto(server + "/runs?workload=train&page=2&size=15")
    assert "page 2 of 3 · 40 runs" in page.locator(".pager").inner_text()
    assert set(
        page.locator("#runs-rows tr[data-run]").evaluate_all(
            "rs => rs.map(r => r.dataset.run.split('/')[0])"
        )
    ) == {"train"}
    assert page.locator("a[rel=prev]").count() == 1


def test_run_page_shows_metric_charts_timeline_and_logs(server, page, shots, chart_lib):
    page.goto(server + "/runs?workload=train")
    page.locator("#runs-rows tr[data-run] a").first.click()
    page.wait_for_selector("figure[data-chart=within] canvas")
    loss = page.locator("figure[data-chart=within][data-name=loss]")
    assert int(loss.get_attribute("data-points") or 0) == 8
    assert loss.locator("canvas").count() >= 1
    across = page.locator("figure[data-chart=across][data-name=accuracy]")
    assert int(across.get_attribute("data-points") or 0) == 40  # every train run
    assert page.locator("svg.gantt rect.bar").count() == 1
    assert "epoch 1" in page.locator("#logs pre").first.inner_text()
    assert page.locator("table.kv th", has_text="lr").count() == 1
    page.screenshot(path=str(shots / "run.png"), full_page=True)


def test_a_live_run_updates_without_a_reload(server, project, page, shots):
    store = project["store"]
    rec, metrics = job_run("train", time.time() - 5, status="running", seconds=5, seed=9999)
    write(store, rec, metrics[:2], log="step 1\n", done=False)
    page.goto(f"{server}/runs/train/{rec.id}")
    assert page.inner_text("#run-status") == "running"
    page.evaluate("window.__sameDocument = true")

    write(store, rec, metrics[:5], log="step 1\nstep 2 of a live run\n", done=False)
    page.wait_for_function(
        "document.querySelector('#logs pre').textContent.includes('step 2 of a live run')"
    )

    rec.status, rec.ended = "succeeded", time.time()
    rec.steps[0].status, rec.steps[0].ended = "succeeded", rec.ended
    metrics.append(Metric("accuracy", 0.99, 8, time.time()))
    write(store, rec, metrics, log="step 1\nstep 2 of a live run\nall done\n")
    assert store.exists(f"{rec.prefix}/{DONE_MARKER}")
    page.wait_for_function("document.getElementById('run-status').textContent === 'succeeded'")
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    assert "all done" in page.inner_text("#logs pre")
    assert page.locator("svg.gantt rect.bar-succeeded").count() == 1
    page.screenshot(path=str(shots / "live-run.png"), full_page=True)


def test_models_page_shows_versions_aliases_signatures_and_metrics(server, page, shots):
    page.goto(server + "/models")
    model = page.locator("section[data-model=churn]")
    versions = model.locator("tr.version")
    assert versions.evaluate_all("rs => rs.map(r => r.dataset.version)") == ["2", "1"]
    assert "prod → v1" in model.locator(".aliases").inner_text()
    assert "features" in model.locator("td.sig").first.inner_text()
    best = model.locator("td.best").all_inner_texts()
    assert "0.87" in best and "0.35" in best  # higher accuracy, lower loss
    page.screenshot(path=str(shots / "models.png"), full_page=True)


def test_pipelines_page_draws_the_dag_with_step_states(server, page, shots):
    page.goto(server + "/pipelines")
    nodes = page.locator("section[data-pipeline=nightly] svg.dag g.node")
    assert nodes.evaluate_all("ns => ns.map(n => [n.dataset.step, n.dataset.status])") == [
        ["features", "succeeded"],
        ["train", "failed"],
        ["report", "skipped"],
    ]
    assert page.locator("section[data-pipeline=nightly] svg.dag path.edge").count() == 2
    page.screenshot(path=str(shots / "pipelines.png"), full_page=True)
