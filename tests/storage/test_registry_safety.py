"""A model in the store cannot make the machine that loads it write outside the model's
folder: model.json `files` with an absolute path, `..`, a Windows path or a symbolic link
out of the version's folder are refused, naming the model, version and path, and nothing is
written. On every store (local folder, memory, SeaweedFS, Azurite), through
`ModelRegistry.fetch`, `mizzen.load_model` and `mizzen serve`."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mizzen.storage import Store, open_store
from mizzen.storage.registry import META, ModelRegistry, UnsafeModel, load_model


def _tamper(store: Store, name: str, files: list[str], objects: dict[str, bytes]) -> int:
    """A published version whose model.json now lists `files`; `objects` written beside."""
    reg = ModelRegistry(store)
    version = reg.publish(name, _onnx_file(Path(os.environ["TMP_MODEL_DIR"])), {}).version
    prefix = f"models/{name}/{version}"
    meta = json.loads(store.read_bytes(f"{prefix}/{META}"))
    meta["files"] = files
    store.write_bytes(f"{prefix}/{META}", json.dumps(meta).encode())
    for rel, data in objects.items():
        store.write_bytes(f"{prefix}/{rel}", data)
    return version


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _onnx_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    path.write_bytes(b"onnx")
    return path


@pytest.fixture(autouse=True)
def _model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMP_MODEL_DIR", str(tmp_path / "src"))


def test_an_absolute_path_in_files_is_refused_and_nothing_is_written(
    store: Store, tmp_path: Path
) -> None:
    victim = tmp_path / "outside" / "cron.d" / "job"
    version = _tamper(
        store, "evil", ["model.onnx", str(victim)], {str(victim).lstrip("/"): b"* * * * * root x"}
    )
    cache = tmp_path / "cache"
    with pytest.raises(UnsafeModel) as info:
        ModelRegistry(store).fetch("evil", version, cache)
    message = str(info.value)
    assert f"model 'evil' version {version}" in message
    assert repr(str(victim)) in message and "absolute path" in message
    assert not victim.exists() and not (tmp_path / "outside").exists()
    assert not any(p.is_file() for p in cache.rglob("*"))  # no half-fetched copy either


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("../../escaped.txt", "'..'"),
        ("sub/../../escaped.txt", "'..'"),
        ("C:/Windows/escaped.txt", "absolute path"),
        ("..\\..\\escaped.txt", "backslash"),
        ("sub//x", "empty or '.' part"),
    ],
)
def test_climbing_or_odd_paths_in_files_are_refused(
    store: Store, tmp_path: Path, bad: str, why: str
) -> None:
    version = _tamper(store, "climber", [bad], {})
    with pytest.raises(UnsafeModel, match=re.escape(why)):
        ModelRegistry(store).fetch("climber", version, tmp_path / "cache" / "a" / "b")
    assert not list(tmp_path.rglob("escaped.txt"))


def test_a_symbolic_link_out_of_a_local_store_is_refused(tmp_path: Path) -> None:
    store = open_store((tmp_path / "store").as_uri())
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the model")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.onnx").write_text("neither")
    version = _tamper(store, "linked", ["model.onnx"], {})
    folder = tmp_path / "store" / "models" / "linked" / str(version)
    (folder / "model.onnx").unlink()
    (folder / "model.onnx").symlink_to(secret)
    with pytest.raises(UnsafeModel, match="symbolic link out of the version's folder"):
        ModelRegistry(store).fetch("linked", version, tmp_path / "cache")
    meta = json.loads((folder / META).read_text())
    meta["files"] = ["sub/x.onnx"]
    (folder / META).write_text(json.dumps(meta))
    (folder / "sub").symlink_to(elsewhere)
    with pytest.raises(UnsafeModel, match=re.escape("'sub/x.onnx'")):
        ModelRegistry(store).fetch("linked", version, tmp_path / "cache")
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


def test_load_model_refuses_it_too(tmp_path: Path) -> None:
    store = open_store((tmp_path / "store").as_uri())
    victim = tmp_path / "victim.txt"
    version = _tamper(store, "evil", [str(victim)], {str(victim).lstrip("/"): b"owned"})
    os.chdir(tmp_path)
    with pytest.raises(UnsafeModel, match=f"model 'evil' version {version}"):
        load_model("evil", store=store)
    assert not victim.exists()


def test_mizzen_serve_refuses_to_start_on_it(tmp_path: Path) -> None:
    store = open_store((tmp_path / "store").as_uri())
    victim = tmp_path / "victim.txt"
    _tamper(store, "evil", ["model.onnx", str(victim)], {str(victim).lstrip("/"): b"owned"})
    env = {**os.environ, "MIZZEN_STORE": store.url}
    env.pop("MIZZEN_STORE_OPTIONS", None)
    for workers in ("1", "2"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mizzen.cli.main",
                "serve",
                "evil",
                *("--workers", workers),
                "--port",
                str(_free_port()),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        assert done.returncode != 0
        assert "model 'evil' version 1" in done.stderr and "absolute path" in done.stderr
        assert not victim.exists()
