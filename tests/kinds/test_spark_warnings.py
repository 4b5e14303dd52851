"""What renders for a Spark job but would not work in the cluster is said at render time:
an image without Spark, and a read-write S3 Mountpoint volume Spark cannot commit through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mizzen import spec as spec_mod
from mizzen.plan import compile_plan
from mizzen.targets.kubernetes.render import render_warnings

IMAGE = "registry.example.com/team/spark@sha256:" + "0" * 64


def warnings_of(root: Path, dockerfile: str, **spark: Any) -> list[str]:
    (root / "Dockerfile").write_text(dockerfile)
    (root / "jobs").mkdir(exist_ok=True)
    (root / "jobs" / "count.py").write_text("print('counted')\n")
    read_only = spark.pop("read_only", False)
    spec = {
        "apiVersion": "mizzen.io/v1alpha1",
        "kind": "Project",
        "name": "sparks",
        "stores": {"lake": "s3://lake/sparks"},
        "volumes": {"out": {"blob": "lake/out", "readOnly": read_only}},
        "jobs": {
            "count": {"spark": {"mainFile": "jobs/count.py", **spark}, "args": ["${volumes.out}"]}
        },
    }
    (root / "mizzen.yaml").write_text(yaml.safe_dump(spec))
    plan = compile_plan(spec_mod.load(root / "mizzen.yaml"), "kubernetes", image=IMAGE, environ={})
    return render_warnings(plan)


def test_an_image_without_spark_and_a_read_write_s3_volume_are_said(tmp_path: Path) -> None:
    said = warnings_of(tmp_path, "FROM python:3.11-slim\n")
    (image,) = [w for w in said if "without Spark" in w]
    assert "job count (spark)" in image and "Set `spark.image`" in image
    (mount,) = [w for w in said if "Mountpoint" in w]
    assert "volume out read-write" in mount and "s3a://lake/sparks/out" in mount


@pytest.mark.parametrize(
    ("dockerfile", "spark"),
    [
        ("FROM spark:3.5.1-python3\n", {"read_only": True}),
        ("FROM python:3.11-slim\n", {"image": "spark:3.5.1-python3", "read_only": True}),
    ],
)
def test_nothing_is_said_when_it_will_work(
    tmp_path: Path, dockerfile: str, spark: dict[str, Any]
) -> None:
    said = warnings_of(tmp_path, dockerfile, **spark)
    assert not [w for w in said if "Spark" in w or "Mountpoint" in w], said
