"""Pages and endpoints without a browser: the router called directly, real servers where met."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from mizzen.plan import compile_plan
from mizzen.spec import load
from mizzen.storage.runs import RunStore
from mizzen.ui.app import UI
from mizzen.ui.asgi import Request
from mizzen.ui.data import parse_prometheus
from mizzen.ui.seed import job_run, write


@pytest.fixture(scope="module")
def ui(project: dict[str, Any]) -> UI:
    plan = compile_plan(load(project["root"] / "mizzen.yaml"), "local")
    return UI(project["store"], plan)


def get(ui: UI, path: str, method: str = "GET", **query: str) -> Any:
    return ui.router.dispatch(Request(method, path, query))


def test_pages_answer_and_the_dashboard_is_read_only(ui):
    for path in ("/runs", "/pipelines", "/models", "/services", "/releases"):
        assert get(ui, path).status == 200, path
    assert get(ui, "/runs", "POST").status == 405
    missing = get(ui, "/runs/train/nope")
    assert missing.status == 404 and b"no run train/nope" in missing.body
    assert get(ui, "/static/../app.py").status == 404
    assert b"no cluster is configured" in get(ui, "/releases").body


def test_runs_filter_by_text_and_fragment(ui, project):
    rec = RunStore(project["store"]).list("features", limit=1)[0]
    body = get(ui, "/runs", q=rec.git_sha[:12]).body.decode()
    assert rec.id in body and body.count('data-run="') == 1
    assert get(ui, "/runs", fragment="1").body.lstrip().startswith(b"<tr")


def test_run_json_returns_only_new_log_text(ui, project):
    store = project["store"]
    rec, metrics = job_run("report", time.time(), status="running", seed=4242)
    write(store, rec, metrics, log="one\n", done=False)
    first = json.loads(get(ui, f"/api/runs/report/{rec.id}").body)
    assert first["logs"]["report"] == {"text": "one\n", "offset": 4} and not first["final"]
    write(store, rec, metrics, log="one\ntwo\n", done=False)
    second = json.loads(get(ui, f"/api/runs/report/{rec.id}", logs="report:4").body)
    assert second["logs"]["report"]["text"] == "two\n"
    assert second["metrics"]["loss"]["y"] == [m.value for m in metrics if m.name == "loss"]


@pytest.mark.slow  # nbconvert takes seconds to import
def test_outputs_download_and_notebook_rendered_without_scripts(ui, project, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbconvert")
    store = project["store"]
    rec, metrics = job_run("report", time.time() - 30, seed=777)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('hello')")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="rows kept: 1234\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("# Weekly report"), cell]
    (tmp_path / "report.ipynb").write_text(nbformat.writes(nb))
    (tmp_path / "summary.csv").write_text("a,b\n1,2\n")
    runs = RunStore(store)
    runs.put_output(rec, str(tmp_path / "report.ipynb"), "report.ipynb")
    runs.put_output(rec, str(tmp_path / "summary.csv"), "summary.csv")
    write(store, rec, metrics)

    page = get(ui, f"/runs/report/{rec.id}").body.decode()
    assert "?view=html" in page and "summary.csv" in page
    csv = get(ui, f"/runs/report/{rec.id}/outputs/summary.csv")
    assert csv.body == b"a,b\n1,2\n" and "attachment" in csv.headers["content-disposition"]
    html = get(ui, f"/runs/report/{rec.id}/outputs/report.ipynb", view="html")
    assert b"Weekly report" in html.body and b"rows kept: 1234" in html.body
    assert "default-src 'none'" in html.headers["content-security-policy"]
    assert get(ui, f"/runs/report/{rec.id}/outputs/other.txt").status == 404


class FakeModelServer:
    """A real HTTP server answering /metrics in the Prometheus text format."""

    def __init__(self, port: int) -> None:
        self.requests = {"1": 80.0, "2": 20.0}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                lines = []
                for v, n in outer.requests.items():
                    lines.append(
                        f'mizzen_requests_total{{model="churn",version="{v}",protocol="v2",code="200"}} {n}'
                    )
                    lines.append(
                        f'mizzen_request_duration_seconds_sum{{model="churn",version="{v}"}} {n * 0.004}'
                    )
                    lines.append(
                        f'mizzen_request_duration_seconds_count{{model="churn",version="{v}"}} {n}'
                    )
                body = ("# TYPE mizzen_requests_total counter\n" + "\n".join(lines) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_services_page_scrapes_health_share_rate_and_latency(ui, project):
    assert b"not reachable" in get(ui, "/services").body
    server = FakeModelServer(project["service_port"])
    try:
        (svc,) = ui.dash.services()
        assert svc["up"] is True
        assert svc["versions"]["1"]["share"] == pytest.approx(80)
        assert svc["versions"]["2"]["latency_ms"] == pytest.approx(4)
        server.requests["1"] += 50
        (svc,) = ui.dash.services()
        assert (
            svc["rate_known"]
            and svc["versions"]["1"]["rate"] > 0
            and svc["versions"]["2"]["rate"] == 0
        )
        page = get(ui, "/services").body.decode()
        assert "v1: 80%" in page and "4.0 ms" in page
    finally:
        server.close()


def test_parse_prometheus_text():
    text = '# HELP x y\nup 1\nreq_total{a="1",b="x y"} 3.5\nbad line\n'
    samples = parse_prometheus(text)
    assert samples[("up", ())] == 1
    assert samples[("req_total", (("a", "1"), ("b", "x y")))] == 3.5


def test_runs_compare_puts_params_and_metrics_side_by_side(project, monkeypatch):
    from mizzen.cli.compare_cmd import compare

    monkeypatch.chdir(project["root"])
    a, b = RunStore(project["store"]).list("train", limit=2)
    result = CliRunner().invoke(compare, [f"train/{a.id}", b.id, "-o", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["runs"] == [f"train/{a.id}", f"train/{b.id}"]
    assert data["params"]["lr"] == [a.params["lr"], b.params["lr"]]
    assert data["metrics"]["accuracy"] == [a.metrics["accuracy"], b.metrics["accuracy"]]
    text = CliRunner().invoke(compare, [a.id, b.id, "--diff"]).output
    assert "metric.accuracy *" in text and "param.model" not in text
    bad = CliRunner().invoke(compare, [a.id, "nope"])
    assert bad.exit_code != 0 and "no run 'nope'" in str(bad.exception or bad.output)


def test_a_run_whose_runner_died_is_lost_on_every_page_with_an_end_time(ui, project):
    from mizzen.ui.app import fmt_time
    from mizzen.ui.seed import silent_run

    beat = time.time() - 30 * 3600  # older than every seeded run: the last page
    rec = silent_run(project["store"], "train", beat, 90, pid=77)
    api = json.loads(get(ui, f"/api/runs/train/{rec.id}").body)
    assert (api["status"], api["final"], api["ended"]) == ("lost", True, fmt_time(beat))
    assert api["duration"] == "1m30s" and api["steps"] == [{"name": "train", "status": "lost"}]
    page = get(ui, f"/runs/train/{rec.id}").body.decode()
    assert 'id="run-status">lost<' in page and f'id="run-ended">{fmt_time(beat)}<' in page
    assert "its runner (pid 77 on laptop) stopped at" in page
    listed = get(ui, "/runs", status="lost").body.decode()
    assert f'data-run="train/{rec.id}"' in listed and "status-lost" in listed
    assert rec.id not in get(ui, "/runs", status="running").body.decode()
