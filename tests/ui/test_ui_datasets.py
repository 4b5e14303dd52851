"""The datasets pages, served by `mizzen ui` itself over real Delta tables: the list, one
dataset (schema, versions, lineage both ways, audit), escaping, and a dashboard without the
`datasets` extra."""

from __future__ import annotations

import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pa = pytest.importorskip("pyarrow")
pytest.importorskip("deltalake")

SUBJECT = "driver-5517-erased"
TODAY = datetime.now(UTC).date()
SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: rides
stores: {lake: data/lake}
store: lake
datasets:
  trips:
    location: lake/tables/trips
    description: "<script>alert('x')</script> trips & more"
    schema:
      driver_id: {type: string, nullable: false, description: "who <b>drove</b>"}
      day: date
      km: double
      email: string
    subject: driver_id
    personal: [email]
    partitionBy: [day]
    retain: {column: day, duration: 30d}
    owner: data-team@example.com
  features:
    location: lake/tables/features
    schema: {driver_id: {type: string, nullable: false}, trips: long}
    subject: driver_id
  raw:
    location: lake/tables/raw
    schema: {line: string}
"""


def trips(drivers: list[str], days: list[Any]) -> Any:
    return pa.table(
        {
            "driver_id": drivers,
            "day": pa.array(days, pa.date32()),
            "km": [float(i) for i in range(len(drivers))],
            "email": [f"{d}@example.com" for d in drivers],
        }
    )


@pytest.fixture(scope="module")
def rides(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """trips v0 (by run r-ingest) and v1, features v0 written by r-feat from trips@1, model
    drive-clf@1 trained on features@0, SUBJECT erased (trips v2, features v1), then the rows
    past retention (trips v3)."""
    from mizzen import spec
    from mizzen.datasets.jobs import catalog_for
    from mizzen.datasets.maintenance import apply_retention, forget
    from mizzen.plan import compile_plan
    from mizzen.storage.registry import ModelRegistry

    root = tmp_path_factory.mktemp("rides")
    (root / "mizzen.yaml").write_text(SPEC)
    catalog = catalog_for(compile_plan(spec.load(root / "mizzen.yaml"), "local"))
    old = TODAY - timedelta(days=60)
    ingest = catalog.handle("trips", run_id="r-ingest", workload="ingest")
    ingest.write(trips([SUBJECT, "d2", "d3"], [TODAY, TODAY, old]))
    catalog.lineage.finish_run("r-ingest")
    catalog.table("trips").write(trips(["d4", SUBJECT], [TODAY, TODAY]))
    read = catalog.handle("trips", run_id="r-feat", workload="features").to_table()
    counts = read.group_by("driver_id").aggregate([("km", "count")])
    catalog.handle("features", run_id="r-feat", workload="features").write(
        pa.table({"driver_id": counts["driver_id"], "trips": counts["km_count"]})
    )
    catalog.lineage.finish_run("r-feat")
    catalog.handle("features", run_id="r-train", workload="train").to_table()
    catalog.lineage.finish_run("r-train")
    catalog.lineage.record_model("drive-clf", 1, run_id="r-train")
    model = root / "model.onnx"
    model.write_bytes(b"not really onnx")
    ModelRegistry(catalog.project).publish(
        "drive-clf", model, {"run_id": "r-train", "workload": "train"}
    )
    forget(catalog, SUBJECT, apply=True, reason="ticket <12>")
    apply_retention(catalog)
    return root


@pytest.fixture(scope="module")
def site(rides: Path, ui_process: Any) -> Iterator[str]:
    with ui_process(rides) as url:
        yield url


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def rows_of(body: str, marker: str) -> list[str]:
    """The `data-…` values of the rows marked `marker="…"`, in page order."""
    return [part.split('"', 1)[0] for part in body.split(f'{marker}="')[1:]]


def test_the_datasets_page_lists_every_dataset_and_the_audit_log(site: str) -> None:
    status, body = get(site + "/datasets")
    assert status == 200
    assert '<a href="/datasets" class="active">Datasets</a>' in body
    assert rows_of(body, 'tr class="dataset" data-dataset') == ["trips", "features", "raw"]
    trips_row = body.split('data-dataset="trips"')[1].split("</tr>")[0]
    assert '<td class="num">3</td>' in trips_row and '<td class="num">2</td>' in trips_row
    assert "day older than 30d" in trips_row and "data-team@example.com" in trips_row
    raw_row = body.split('data-dataset="raw"')[1].split("</tr>")[0]
    assert '<td class="num">\u2013</td>' in raw_row  # declared, never written
    assert rows_of(body, "data-kind") == ["retention", "forget"]
    assert "ticket &lt;12&gt;" in body and "<script>alert" not in body
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; trips &amp; more" in body
    assert SUBJECT not in body


def test_a_dataset_page_shows_schema_versions_lineage_and_audit(site: str) -> None:
    status, body = get(site + "/datasets/trips")
    assert status == 200 and SUBJECT not in body
    columns = {
        name: body.split(f'data-column="{name}"')[1].split("</tr>")[0]
        for name in ("driver_id", "day", "km", "email")
    }
    assert 'mark-subject">subject<' in columns["driver_id"]
    assert "who &lt;b&gt;drove&lt;/b&gt;" in columns["driver_id"]
    assert 'mark-personal">personal<' in columns["email"]
    assert 'mark-partition">partition<' in columns["day"]
    assert 'mark-retention">retention<' in columns["day"]
    assert "mark-" not in columns["km"]
    assert rows_of(body, 'tr class="version" data-version') == ["3", "2", "1", "0"]
    counts = {
        v: body.split(f'data-version="{v}"')[1].split("</tr>")[0] for v in ("0", "1", "2", "3")
    }
    assert '<td class="num">3</td>' in counts["0"] and "/runs/ingest/r-ingest" in counts["0"]
    assert '<td class="num">5</td>' in counts["1"]
    assert "akind-forget" in counts["2"] and '<td class="num">3</td>' in counts["2"]
    assert "akind-retention" in counts["3"] and '<td class="num">2</td>' in counts["3"]
    graph = body.split('id="lineage-graph"')[1].split("</svg>")[0]
    assert set(rows_of(graph, "data-node")) == {
        "dataset:trips@0",
        "dataset:trips@1",
        "run:r-ingest",
        "run:r-feat",
        "dataset:features@0",
        "run:r-train",
        "model:drive-clf@1",
    }
    assert 'href="/datasets/features?version=0"' in graph
    assert 'href="/models#model-drive-clf"' in graph
    fed = body.split('id="fed"')[1].split('id="came-from"')[0]
    assert "read by</span> <span" in fed and "model drive-clf@1" in fed
    came = body.split('id="came-from"')[1].split("</section>")[0]
    assert 'written by</span> <span class="lk lk-run">run r-ingest (ingest)' in came
    audit = body.split('id="audit"')[1]
    assert rows_of(audit, "data-kind") == ["retention", "forget"]
    assert "old versions pending until" in audit and "ticket &lt;12&gt;" in audit


def test_one_version_and_what_is_not_there(site: str) -> None:
    status, body = get(site + "/datasets/trips?version=0")
    assert status == 200 and "version 0 (current: 3)" in body
    assert 'class="version selected" data-version="0"' in body
    assert "Lineage of version 0" in body
    assert "dataset:trips@1" not in body.split('id="lineage"')[1].split('id="audit"')[0]
    status, body = get(site + "/datasets/features?version=0")
    assert status == 200 and "model drive-clf@1" in body
    for path, why in (
        ("/datasets/trips?version=99", "has no version 99"),
        ("/datasets/trips?version=one", "is not a version number"),
        ("/datasets/nope", "no dataset &#39;nope&#39; is declared"),
    ):
        status, body = get(site + path)
        assert status == 404 and why in body, path
    status, body = get(site + "/datasets/raw")
    assert status == 200 and "No version yet" in body
    status, body = get(site + "/models")
    assert 'href="/datasets/features?version=0">features@0</a>' in body


BLOCKER = """\
import sys

class _NoDatasetsExtra:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("deltalake", "pyarrow"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoDatasetsExtra())
"""


def test_the_dashboard_starts_and_says_what_to_install_without_the_datasets_extra(
    rides: Path, ui_process: Any, tmp_path: Path
) -> None:
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(BLOCKER))
    with ui_process(rides, env={"PYTHONPATH": str(tmp_path)}) as url:
        status, body = get(url + "/datasets")
        assert status == 200
        assert 'id="missing-extra"' in body and "pip install 'mizzen[datasets]'" in body
        assert rows_of(body, 'tr class="dataset" data-dataset') == ["trips", "features", "raw"]
        assert rows_of(body, "data-kind") == ["retention", "forget"]  # the audit needs no extra
        status, body = get(url + "/datasets/trips")
        assert (
            status == 200
            and 'id="missing-extra"' in body
            and "pip install 'mizzen[datasets]'" in body
        )
        assert 'data-column="driver_id"' in body and 'mark-subject">subject<' in body
        assert 'data-node="dataset:trips@1"' in body  # lineage is plain JSON
        assert get(url + "/runs")[0] == 200


@pytest.mark.browser
def test_the_dataset_pages_in_a_browser(site: str, page: Any, shots: Path) -> None:
    page.goto(site + "/datasets")
    page.screenshot(path=str(shots / "datasets.png"), full_page=True)
    page.click("tr[data-dataset=trips] a")
    page.wait_for_selector("svg.lineage")
    nodes = page.locator("svg.lineage g.lnode")
    assert nodes.count() == 7
    assert page.locator("svg.lineage g.lnode.focus").count() == 2  # trips@0 and trips@1
    assert page.locator("table.versions tr.version").count() == 4
    assert SUBJECT not in page.content()
    page.screenshot(path=str(shots / "dataset.png"), full_page=True)
    page.click("svg.lineage g[data-node='dataset:features@0']")
    page.wait_for_url("**/datasets/features?version=0")
    assert "version 0" in page.inner_text("#shown-version")


def test_without_datasets_or_without_a_spec_the_page_says_so(tmp_path: Path) -> None:
    from mizzen import spec
    from mizzen.plan import compile_plan
    from mizzen.storage.base import open_store
    from mizzen.ui.app import UI
    from mizzen.ui.asgi import Request

    (tmp_path / "mizzen.yaml").write_text(SPEC.split("datasets:")[0])
    plan = compile_plan(spec.load(tmp_path / "mizzen.yaml"), "local")
    store = open_store((tmp_path / "store").as_uri())
    for ui, says in (
        (UI(store, plan), "This project declares no datasets"),
        (UI(store, None), "No mizzen.yaml here"),
    ):
        page = ui.router.dispatch(Request("GET", "/datasets", {}))
        assert page.status == 200 and says in page.body.decode()
        missing = ui.router.dispatch(Request("GET", "/datasets/trips", {}))
        assert missing.status == 404


def test_a_catalog_that_failed_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing secret or a store that was down at the first page is not the answer for
    as long as `mizzen ui` runs."""
    from types import SimpleNamespace

    import mizzen.datasets.jobs as jobs
    from mizzen.errors import UsageError
    from mizzen.storage.base import open_store
    from mizzen.ui.data import Dashboard

    answers: list[Any] = [UsageError("secret lake is not set"), "the catalog"]

    def catalog_for(plan: Any, project: Any = None) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(jobs, "catalog_for", catalog_for)
    plan = SimpleNamespace(datasets={"trips": object()})
    board = Dashboard(open_store(tmp_path.as_uri()), plan)  # type: ignore[arg-type]
    assert board.catalog() == (None, "secret lake is not set")
    assert board.catalog() == ("the catalog", "")
    assert board.catalog() == ("the catalog", "")  # kept once it worked
