"""`kill -9` during a publish: the next publish of the model removes what the dead publisher
left (its `mizzen-publish-*` temporary folder, the partial `.tmp-` object in a local store,
the files and unfinished multipart upload of its version on S3), and never touches what a
publisher that is still running, or one on another machine, is writing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from mizzen.storage import open_store
from mizzen.storage.registry import CLAIM, COMPLETE, ModelRegistry, owner_record, publish_model

SIG = {
    "inputs": [{"name": "input", "dtype": "float32", "shape": [None, 4]}],
    "outputs": [{"name": "output", "dtype": "float32", "shape": [None]}],
}

# Publishes 8 MB with the SDK; its copy into the store stops halfway, then either kills the
# process (SIGKILL) or, with HOLD, waits for a line on stdin and finishes.
SDK_PUBLISHER = """
import json, os, shutil, signal, sys
from mizzen.storage.base import open_store
from mizzen.storage.registry import publish_model

real = shutil.copyfile
def copy(src, dst, *args, **kwargs):
    if not os.path.basename(dst).startswith(".tmp-"):
        return real(src, dst, *args, **kwargs)
    data = open(src, "rb").read()
    with open(dst, "wb") as out:
        out.write(data[: len(data) // 2])
        out.flush()
        print("halfway", flush=True)
        if not os.environ.get("HOLD"):
            os.kill(os.getpid(), signal.SIGKILL)
        sys.stdin.readline()
        out.write(data[len(data) // 2 :])
    return dst
shutil.copyfile = copy
sig = json.loads(sys.argv[2])
mv = publish_model("big", b"\\1" * 8_000_000, signature=sig, store=open_store(sys.argv[1]))
print("published", mv.version, flush=True)
"""


def _run(tmp: Path, store_url: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SDK_PUBLISHER, store_url, json.dumps(SIG)],
        env={**os.environ, "TMPDIR": str(tmp), **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary folder of this test's own, for this process and its children."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def _publish_folders(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("mizzen-publish-*"))


def test_the_next_publish_removes_what_a_killed_publisher_left(
    tmp_path: Path, private_tmp: Path
) -> None:
    store_url = (tmp_path / "store").as_uri()
    dead = _run(private_tmp, store_url)
    out, err = dead.communicate(timeout=120)
    assert dead.returncode == -signal.SIGKILL, err
    assert "halfway" in out
    [left] = _publish_folders(private_tmp)
    assert sum(f.stat().st_size for f in left.rglob("*") if f.is_file()) >= 8_000_000
    version_dir = tmp_path / "store" / "models" / "big" / "1"
    [partial] = version_dir.glob(".tmp-*")
    assert partial.stat().st_size == 4_000_000
    assert (version_dir / CLAIM).exists() and not (version_dir / COMPLETE).exists()

    mv = publish_model("big", b"\2" * 1000, signature=SIG, store=open_store(store_url))
    assert mv.version == 2
    assert _publish_folders(private_tmp) == []
    assert sorted(p.name for p in version_dir.iterdir()) == [CLAIM]  # the number stays taken
    assert ModelRegistry(open_store(store_url)).versions("big") == [2]


def test_a_publisher_still_running_is_left_alone(tmp_path: Path, private_tmp: Path) -> None:
    store_url = (tmp_path / "store").as_uri()
    live = _run(private_tmp, store_url, HOLD="1")
    try:
        assert live.stdout is not None and live.stdout.readline().strip() == "halfway"
        version_dir = tmp_path / "store" / "models" / "big" / "1"
        [partial] = version_dir.glob(".tmp-*")
        [folder] = _publish_folders(private_tmp)
        mv = publish_model("big", b"\2" * 1000, signature=SIG, store=open_store(store_url))
        assert mv.version == 2
        assert partial.exists() and folder.exists()  # not the sweep's to take
        assert live.stdin is not None
        live.stdin.write("go on\n")
        live.stdin.flush()
        out, err = live.communicate(timeout=120)
    finally:
        if live.poll() is None:
            live.kill()
    assert live.returncode == 0, err
    assert "published 1" in out
    reg = ModelRegistry(open_store(store_url))
    assert reg.versions("big") == [1, 2]
    folder1 = reg.fetch("big", 1, tmp_path / "cache")
    assert (folder1 / "model.onnx").read_bytes() == b"\1" * 8_000_000


def _claim_from(store: Any, version: int, **owner: Any) -> None:
    store.write_bytes(f"models/other/{version}/{CLAIM}", json.dumps(owner).encode())
    store.write_bytes(f"models/other/{version}/model.onnx", b"half a model")


def test_leftovers_of_another_machine_go_only_once_a_day_old(tmp_path: Path) -> None:
    store = open_store((tmp_path / "store").as_uri())
    now = time.time()
    _claim_from(store, 1, host="elsewhere", pid=1, time=now - 25 * 3600)
    _claim_from(store, 2, host="elsewhere", pid=1, time=now - 3600)
    mine = owner_record()
    _claim_from(store, 3, **{**mine, "pid": _dead_pid()})
    _claim_from(store, 4, **{**mine, "started": (mine["started"] or 0) + 1})  # pid reused
    _claim_from(store, 5, **mine)  # this very process: alive
    reg = ModelRegistry(store)
    assert reg.sweep("other") == [1, 3, 4]
    left = {
        v: sorted(i.key.rsplit("/", 1)[1] for i in store.list(f"models/other/{v}"))
        for v in range(1, 6)
    }
    assert left == {
        1: [CLAIM],
        2: [CLAIM, "model.onnx"],
        3: [CLAIM],
        4: [CLAIM],
        5: [CLAIM, "model.onnx"],
    }


def test_a_publish_that_completes_while_the_sweep_looks_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep's listing showed version 1 unfinished; by the time it found the owner gone,
    the owner had written its last file and exited (8 concurrent publishers lost a model.json
    this way)."""
    store = open_store((tmp_path / "store").as_uri())
    _claim_from(store, 1, **{**owner_record(), "pid": _dead_pid()})
    store.write_bytes("models/other/1/model.json", b"{}")
    reg = ModelRegistry(store)
    abandoned = reg._abandoned

    def finishes_first(claim_key: str) -> bool:
        store.write_bytes("models/other/1/" + COMPLETE, b"")
        return abandoned(claim_key)

    monkeypatch.setattr(reg, "_abandoned", finishes_first)
    assert reg.sweep("other") == []
    assert store.exists("models/other/1/model.json") and store.exists("models/other/1/model.onnx")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


S3_PUBLISHER = """
import os, signal, sys
import s3fs
from mizzen.storage.project import project_store
from mizzen.storage.registry import ModelRegistry

real = s3fs.S3FileSystem._call_s3
async def call(self, method, *args, **kwargs):
    out = await real(self, method, *args, **kwargs)
    if method == "upload_part":
        os.kill(os.getpid(), signal.SIGKILL)
    return out
s3fs.S3FileSystem._call_s3 = call
ModelRegistry(project_store()).publish("big", sys.argv[1], {})
"""


@pytest.mark.s3
def test_on_s3_the_files_and_unfinished_upload_of_a_killed_publish_go(
    seaweedfs: Any, tmp_path: Path
) -> None:
    url = seaweedfs.new_bucket() + "/proj"
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a.txt").write_text("uploaded before the kill")
    with (folder / "b.onnx").open("wb") as f:
        f.truncate(101 * 2**20)  # s3fs uploads this in 50 MiB parts
    env = {
        **os.environ,
        "MIZZEN_STORE": url,
        "MIZZEN_STORE_OPTIONS": json.dumps(seaweedfs.options),
    }
    dead = subprocess.run(
        [sys.executable, "-c", S3_PUBLISHER, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert dead.returncode == -signal.SIGKILL, dead.stderr
    store = open_store(url, **seaweedfs.options)
    bucket = url.split("://", 1)[1].split("/", 1)[0]
    uploads = [u["Key"] for u in store.fs.list_multipart_uploads(bucket)]  # type: ignore[attr-defined]
    assert uploads == ["proj/models/big/1/b.onnx"]
    assert {i.key for i in store.list("models/big/1")} == {
        f"models/big/1/{CLAIM}",
        "models/big/1/a.txt",
    }
    (folder / "b.onnx").unlink()
    assert ModelRegistry(store).publish("big", folder, {}).version == 2
    assert store.fs.list_multipart_uploads(bucket) == []  # type: ignore[attr-defined]
    assert {i.key for i in store.list("models/big/1")} == {f"models/big/1/{CLAIM}"}
