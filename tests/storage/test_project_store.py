"""project_store(): MIZZEN_STORE first, then the spec's store (credentials from its secret)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mizzen.errors import SecretMissingError
from mizzen.storage.project import project_store
from mizzen.storage.registry import ModelRegistry

SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: drives
store: lake
stores:
  lake:
    url: {url}
    options: {{endpoint_url: "{endpoint}"}}
    secret: lake-creds
secrets:
  lake-creds: [access_key_id, secret_access_key]
environments:
  dev: {{}}
"""


def test_default_is_a_folder_in_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MIZZEN_STORE", raising=False)
    assert project_store().url == (tmp_path / ".mizzen" / "store").as_uri()


def test_env_var_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIZZEN_STORE", (tmp_path / "elsewhere").as_uri())
    monkeypatch.setenv("MIZZEN_STORE_OPTIONS", json.dumps({}))
    assert project_store().url == (tmp_path / "elsewhere").as_uri()


@pytest.mark.s3
def test_spec_store_with_secret_credentials(
    seaweedfs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    bucket = seaweedfs.new_bucket()
    (tmp_path / "mizzen.yaml").write_text(SPEC.format(url=bucket, endpoint=seaweedfs.endpoint))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MIZZEN_STORE", raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    # no environment chosen: a laptop sandbox folder, no cloud access needed
    assert project_store().url.startswith("file://")
    with pytest.raises(SecretMissingError, match="lake-creds"):
        project_store(env="dev")
    secrets = tmp_path / ".mizzen" / "secrets"
    secrets.mkdir(parents=True)
    (secrets / "dev.env").write_text(
        f"MIZZEN_SECRET_LAKE_CREDS_ACCESS_KEY_ID={seaweedfs.access_key}\n"
    )
    monkeypatch.setenv("MIZZEN_SECRET_LAKE_CREDS_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    store = project_store(env="dev")
    assert store.url == f"{bucket}/mizzen/drives"
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    assert ModelRegistry(store).publish("clf", model, {}).version == 1
    assert store.exists("models/clf/1/_complete")
