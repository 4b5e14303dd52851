"""What the cluster shows people: `history` with what each revision changed, and the
dashboard's releases page (revisions and workload status with reasons)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fake_cluster import FakeCluster, install_everything
from test_k8s_release import DESIGN, do_release, plan_of

from mizzen.storage.base import open_store
from mizzen.targets.kubernetes import target as target_mod
from mizzen.targets.kubernetes.revisions import summary
from mizzen.ui.app import UI
from mizzen.ui.asgi import Request


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    c = FakeCluster("drives-dev")
    install_everything(c)

    def connect(plan: Any, context: str | None = None, namespace: str | None = None) -> Any:
        return c, replace(plan, kubernetes=replace(plan.kubernetes, namespace=c.namespace))

    monkeypatch.setattr(target_mod, "connect", connect)
    return c


def test_each_revision_says_what_it_changed(cluster: FakeCluster) -> None:
    do_release(cluster)
    plan = plan_of()
    bigger = replace(
        plan,
        services={
            **plan.services,
            "dashboard": replace(plan.services["dashboard"], replicas=3),
        },
    )
    do_release(cluster, bigger)
    do_release(cluster, bigger)
    newest, middle, first = summary(cluster, plan.project)
    assert first["changes"].startswith("first release (")
    assert middle["changes"] == "~1 (~Deployment/drives-dashboard)"
    assert newest["changes"] == "no object changed"


def test_the_releases_page_shows_revisions_and_reasons(
    cluster: FakeCluster, tmp_path: Path
) -> None:
    do_release(cluster)
    cluster.put(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "drives-ingest-x",
                "namespace": "drives-dev",
                "labels": {
                    "app.kubernetes.io/managed-by": "mizzen",
                    "mizzen.io/project": "drives",
                    "mizzen.io/workload": "ingest",
                },
            },
            "spec": {"containers": [{"name": "main", "image": "r.example/x:1"}]},
            "status": {
                "phase": "Pending",
                "containerStatuses": [
                    {
                        "name": "main",
                        "restartCount": 0,
                        "state": {
                            "waiting": {"reason": "ImagePullBackOff", "message": "not found"}
                        },
                    }
                ],
            },
        }
    )
    ui = UI(open_store((tmp_path / "store").as_uri()), plan_of(DESIGN, "dev"))
    body = ui.router.dispatch(Request("GET", "/releases", {})).body.decode()
    assert "first release (" in body
    text = re.sub(r"<[^>]+>", " ", body)
    assert re.search(r"ingest\s+service\s+\S+.*cannot pull the image r.example/x:1", text), text
