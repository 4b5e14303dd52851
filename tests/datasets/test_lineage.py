"""The lineage graph, both ways, from plain objects in the project store."""

from __future__ import annotations

import pytest

from mizzen.datasets.lineage import Lineage
from mizzen.errors import UsageError
from mizzen.storage import open_store


def make(tmp_path) -> Lineage:  # type: ignore[no-untyped-def]
    lineage = Lineage(open_store(tmp_path.as_uri()))
    lineage.record_read("etl-1", "raw", 4, "etl")
    lineage.record_write("etl-1", "trips", 7, "etl")
    lineage.finish_run("etl-1")
    lineage.record_read("train-1", "trips", 7, "train")
    lineage.record_read("train-1", "trips", 7, "train")  # read twice: one edge
    lineage.record_model("clf", 3, run_id="train-1")
    lineage.record_read("report-1", "trips", 6, "report")  # running: no marker yet
    return lineage


def test_upstream_of_a_model_reaches_the_raw_data(tmp_path) -> None:  # type: ignore[no-untyped-def]
    up = make(tmp_path).upstream("model:clf@3")
    assert set(up.nodes) == {
        "model:clf@3",
        "dataset:trips@7",
        "run:train-1",
        "run:etl-1",
        "dataset:raw@4",
    }
    assert len([e for e in up.edges if e.relation == "read"]) == 2


def test_downstream_of_a_dataset_and_of_all_its_versions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lineage = make(tmp_path)
    down = lineage.downstream("trips@7")
    assert set(down.nodes) == {"dataset:trips@7", "run:train-1", "model:clf@3"}
    every = lineage.downstream("trips")
    assert "run:report-1" in every.nodes and not every.nodes["run:report-1"].complete
    assert lineage.downstream("raw@4").models()[0].id == "model:clf@3"


def test_model_lineage_is_written_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lineage = make(tmp_path)
    assert lineage.models()[0].trained_on == [("trips", 7)]
    with pytest.raises(UsageError, match="already recorded"):
        lineage.record_model("clf", 3, trained_on=["trips@7"])
    with pytest.raises(UsageError, match="name the version"):
        lineage.record_model("clf", 4, trained_on=["trips"])
