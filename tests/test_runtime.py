"""The runtime SDK (`import mizzen` inside a job): reads only what the target set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import mizzen
from mizzen import contract, runtime
from mizzen.errors import UsageError
from mizzen.plan import secret_env_name


@pytest.fixture
def in_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in [k for k in __import__("os").environ if k.startswith("MIZZEN_")]:
        monkeypatch.delenv(key)
    run_dir = tmp_path / "run"
    monkeypatch.setenv("MIZZEN_WORKLOAD", "train")
    monkeypatch.setenv("MIZZEN_RUN_ID", "20260101-000000-abcd")
    monkeypatch.setenv("MIZZEN_RUN_DATE", "2026-01-01")
    monkeypatch.setenv("MIZZEN_RUN_DIR", str(run_dir))
    monkeypatch.setenv("MIZZEN_VOLUME_RAW_DATA", str(tmp_path / "raw"))
    monkeypatch.setenv("MIZZEN_CONFIG_KEYS", "HOST,PORT")
    monkeypatch.setenv("HOST", "dw.internal")
    monkeypatch.setenv("PORT", "5432")
    monkeypatch.setenv("MIZZEN_SECRET_DB_PASSWORD", "pw")
    return run_dir


def test_volume_config_secret_and_run_id(in_run: Path, tmp_path: Path) -> None:
    assert mizzen.volume("raw-data") == tmp_path / "raw"
    assert mizzen.config("HOST") == "dw.internal"
    assert mizzen.config("MISSING", "fallback") == "fallback"
    assert mizzen.secret("db", "password") == "pw"
    assert mizzen.run_id() == "20260101-000000-abcd"
    assert mizzen.run_date() == "2026-01-01"
    assert mizzen.outputs_dir() == in_run / "outputs" and (in_run / "outputs").is_dir()


def test_errors_name_the_job_and_the_fix(in_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError) as info:
        mizzen.volume("features")
    assert "job 'train'" in str(info.value) and "volumes: [features]" in str(info.value)
    with pytest.raises(UsageError, match="secrets: \\[api\\]"):
        mizzen.secret("api", "token")
    with pytest.raises(UsageError, match="config keys: HOST, PORT"):
        mizzen.config("USER")
    monkeypatch.setenv("USER_NOT_CONFIG", "x")
    with pytest.raises(UsageError):
        mizzen.config("USER_NOT_CONFIG")  # only keys the spec declared


def test_metrics_and_params_go_to_the_run_folder(in_run: Path) -> None:
    mizzen.log_metric("loss", 0.5, step=1)
    mizzen.log_metric("loss", 1)
    mizzen.log_param("lr", 0.01)
    mizzen.log_param("layers", [64, 32])
    mizzen.log_param("path", Path("/x"))
    lines = [json.loads(x) for x in (in_run / "metrics.jsonl").read_text().splitlines()]
    assert [(m["name"], m["value"], m["step"]) for m in lines] == [
        ("loss", 0.5, 1),
        ("loss", 1.0, None),
    ]
    assert json.loads((in_run / "params.json").read_text()) == {
        "layers": [64, 32],
        "lr": 0.01,
        "path": "/x",
    }
    with pytest.raises(UsageError, match="not a number"):
        mizzen.log_metric("bad", "high")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="finite"):
        mizzen.log_metric("bad", float("nan"))


def test_outside_a_run_logging_warns_once_and_does_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in ("MIZZEN_RUN_DIR", "MIZZEN_WORKLOAD", "MIZZEN_RUN_ID"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(runtime, "_warned", False)
    mizzen.log_metric("x", 1.0)
    mizzen.log_param("y", 2)
    assert capsys.readouterr().err.count("not inside a mizzen run") == 1
    assert mizzen.run_id() is None
    with pytest.raises(UsageError, match="mizzen run"):
        mizzen.volume("raw")


def test_secret_names_match_the_plan() -> None:
    from mizzen.secrets import secret_env_name as local_name

    for name, key in [("db", "password"), ("api-keys", "read.only"), ("s3", "ACCESS_KEY")]:
        assert local_name(name, key) == secret_env_name(name, key)
        assert contract.token(name) in secret_env_name(name, key)


def test_import_mizzen_stays_light() -> None:
    code = "import sys, mizzen; mizzen.run_id; print(sorted(m for m in ('pydantic', 'yaml', 'click', 'rich', 'mizzen.plan', 'mizzen.storage') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError):
        mizzen.no_such_thing  # noqa: B018
