"""Model registry on every store: races, crashes, aliases, names, the SDK and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mizzen.errors import UsageError
from mizzen.storage import Store, open_store
from mizzen.storage.registry import ModelNotFound, ModelRegistry

PUBLISHER = """
import os, sys
from pathlib import Path
from mizzen.storage.project import project_store
from mizzen.storage.registry import ModelRegistry
store = project_store()
if os.environ.get("DIE_AFTER_META"):
    real = store.write_bytes
    def write(key, data):
        real(key, data)
        if key.endswith("/model.json"):
            os.kill(os.getpid(), 9)
    store.write_bytes = write
mv = ModelRegistry(store).publish("racer", sys.argv[1], {"tags": {"who": sys.argv[2]}})
print(mv.version)
"""


def _model_file(tmp_path: Path, content: bytes = b"onnx-bytes") -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    return path


def _env(store_spec: tuple[str, dict[str, Any]], **extra: str) -> dict[str, str]:
    url, options = store_spec
    return {**os.environ, "MIZZEN_STORE": url, "MIZZEN_STORE_OPTIONS": json.dumps(options), **extra}


def test_publish_resolve_get_fetch(store: Store, tmp_path: Path) -> None:
    reg = ModelRegistry(store)
    first = reg.publish("clf", _model_file(tmp_path, b"v1"), {"metrics": {"acc": 0.8}})
    second = reg.publish("clf", _model_file(tmp_path, b"v2"), {"metrics": {"acc": 0.9}})
    assert (first.version, second.version) == (1, 2)
    assert reg.versions("clf") == [1, 2]
    assert reg.resolve("clf") == 2 and reg.resolve("clf", "1") == 1 and reg.resolve("clf", 1) == 1
    mv = reg.get("clf", 1)
    assert (
        mv.meta["metrics"] == {"acc": 0.8}
        and mv.files == ["model.onnx"]
        and mv.meta["version"] == 1
    )
    folder = reg.fetch("clf", 1, tmp_path / "cache")
    assert (folder / "model.onnx").read_bytes() == b"v1"
    moved = reg.stats["downloaded"]
    assert reg.fetch("clf", 1, tmp_path / "cache") == folder
    assert reg.stats["downloaded"] == moved  # cached by version: nothing downloaded again
    assert reg.names() == ["clf"]


def test_concurrent_publishers_get_distinct_versions(
    store_spec: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    url, _ = store_spec
    if url.startswith("memory://"):
        pytest.skip(
            "a memory store lives in one process (threads are covered by the contract suite)"
        )
    model = _model_file(tmp_path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, str(model), str(i)],
            env=_env(store_spec),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    versions = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        versions.append(int(out.strip()))
    assert sorted(versions) == list(range(1, 9))
    reg = ModelRegistry(open_store(url, **store_spec[1]))
    assert reg.versions("racer") == list(range(1, 9))
    assert sorted(reg.get("racer", v).tags["who"] for v in range(1, 9)) == [
        str(i) for i in range(8)
    ]


def test_killed_publisher_leaves_nothing_visible(
    store_spec: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    url, options = store_spec
    if url.startswith("memory://"):
        pytest.skip("a memory store lives in one process")
    reg = ModelRegistry(open_store(url, **options))
    reg.publish("racer", _model_file(tmp_path), {})
    dead = subprocess.run(
        [sys.executable, "-c", PUBLISHER, str(_model_file(tmp_path)), "x"],
        env=_env(store_spec, DIE_AFTER_META="1"),
        capture_output=True,
        timeout=120,
    )
    assert dead.returncode == -9
    assert reg.versions("racer") == [1]
    assert reg.resolve("racer", "latest") == 1
    with pytest.raises(ModelNotFound):
        reg.get("racer", 2)
    assert (
        reg.publish("racer", _model_file(tmp_path), {}).version == 3
    )  # the dead claim is not reused


def test_aliases_move_and_guard_deletes(store: Store, tmp_path: Path) -> None:
    reg = ModelRegistry(store)
    for _ in range(3):
        reg.publish("clf", _model_file(tmp_path), {})
    reg.set_alias("clf", "production", 1)
    reg.set_alias("clf", "staging", "latest")
    assert reg.aliases("clf") == {"production": 1, "staging": 3}
    reg.set_alias("clf", "production", 2)
    assert reg.resolve("clf", "production") == 2
    with pytest.raises(UsageError, match="aliased as production"):
        reg.delete("clf", 2)
    reg.delete("clf", 1)
    assert reg.versions("clf") == [2, 3]
    reg.delete("clf", 2, force=True)
    assert reg.aliases("clf") == {"staging": 3}
    assert reg.publish("clf", _model_file(tmp_path), {}).version == 4  # numbers never reused
    with pytest.raises(ModelNotFound, match="no alias 'canary'"):
        reg.resolve("clf", "canary")


@pytest.mark.parametrize("bad", ["../etc", "a/b", "Upper", "dots.in.name", "", "-lead", "x" * 64])
def test_bad_names_are_refused(tmp_path: Path, bad: str) -> None:
    reg = ModelRegistry(open_store((tmp_path / "s").as_uri()))
    with pytest.raises(UsageError, match="DNS-1123"):
        reg.publish(bad, _model_file(tmp_path), {})


def test_bad_aliases_are_refused(tmp_path: Path) -> None:
    reg = ModelRegistry(open_store((tmp_path / "s").as_uri()))
    reg.publish("clf", _model_file(tmp_path), {})
    for bad in ("7", "latest", "Prod", "a/b"):
        with pytest.raises(UsageError):
            reg.set_alias("clf", bad, 1)


def test_latest_with_no_versions(tmp_path: Path) -> None:
    reg = ModelRegistry(open_store((tmp_path / "s").as_uri()))
    with pytest.raises(ModelNotFound, match="no published version"):
        reg.resolve("nothing")


def test_sdk_publish_sklearn_and_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    np = pytest.importorskip("numpy")
    pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LogisticRegression

    from mizzen.storage.registry import load_model, publish_model

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MIZZEN_STORE", raising=False)
    monkeypatch.setenv("MIZZEN_RUN_ID", "20260101-000000-abcd")
    X = np.random.default_rng(0).random((40, 3)).astype("float32")
    y = (X[:, 0] > 0.5).astype(int)
    mv = publish_model(
        "drive-classifier",
        LogisticRegression().fit(X, y),
        metrics={"acc": 1.0},
        tags={"team": "x"},
        example=X[:2],
    )
    assert (
        mv.version == 1
        and mv.meta["format"] == "onnx"
        and mv.meta["run_id"] == "20260101-000000-abcd"
    )
    assert mv.signature["inputs"] == [{"name": "input", "dtype": "float32", "shape": [None, 3]}]
    assert [o["name"] for o in mv.signature["outputs"]] == ["label", "probabilities"]
    assert np.asarray(mv.meta["example"]["input"]).shape == (2, 3)
    assert (
        tmp_path / ".mizzen" / "store" / "models" / "drive-classifier" / "1" / "_complete"
    ).exists()
    session = load_model("drive-classifier", "latest")
    labels, probs = session.run(None, {"input": X[:4]})
    assert list(labels) == list(y[:4]) or probs.shape == (4, 2)


def test_sdk_refuses_unknown_objects_and_needs_torch_extra(tmp_path: Path) -> None:
    from mizzen.storage.registry import publish_model

    store = open_store((tmp_path / "s").as_uri())
    with pytest.raises(UsageError, match="format='python'"):
        publish_model("thing", object(), store=store)
    with pytest.raises(UsageError, match="needs `example=`"):  # the server validates with it
        publish_model("thing", {"weights": [1, 2]}, format="python", store=store)
    mv = publish_model(
        "thing", {"weights": [1, 2]}, format="python", example=[[1.0, 2.0]], store=store
    )
    assert mv.format == "python" and mv.files == ["model.pkl"]
    assert mv.meta["signature"]["inputs"] == [
        {"name": "input", "dtype": "float64", "shape": [None, 2]}
    ]

    class Local:  # defined where the publishing script runs: no server could unpickle it
        pass

    Local.__module__ = "__main__"
    with pytest.raises(UsageError, match="could not unpickle"):
        publish_model("thing", Local(), format="python", example=[[1.0]], store=store)


def test_cli_models(tmp_path: Path) -> None:
    store = open_store((tmp_path / ".mizzen" / "store").as_uri())
    reg = ModelRegistry(store)
    reg.publish("clf", _model_file(tmp_path), {"metrics": {"acc": 0.5}})
    reg.publish("clf", _model_file(tmp_path), {})

    def mizzen(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "MIZZEN_STORE"}
        return subprocess.run(
            [sys.executable, "-m", "mizzen.cli.main", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    listed = json.loads(mizzen("models", "-o", "json").stdout)
    assert listed == [{"name": "clf", "latest": 2, "versions": 2, "aliases": {}}]
    assert mizzen("models", "alias", "clf", "1", "production").returncode == 0
    shown = json.loads(mizzen("models", "show", "clf@production", "-o", "json").stdout)
    assert (
        shown["version"] == 1
        and shown["metrics"] == {"acc": 0.5}
        and shown["aliases"] == ["production"]
    )
    refused = mizzen("models", "rm", "clf@1")
    assert refused.returncode == 2 and "aliased as production" in refused.stderr
    forced = json.loads(mizzen("models", "rm", "clf@1", "--force", "-o", "json").stdout)
    assert forced["aliases_removed"] == ["production"]
    assert "clf version 2" in mizzen("models", "show", "clf").stdout
