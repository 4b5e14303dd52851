"""`mizzen run`, `mizzen exec`, `mizzen up` and `mizzen notebook` through the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mizzen.cli.main import main

HEAD = "apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: demo\n"


def _project(tmp_path: Path, body: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "mizzen.yaml").write_text(HEAD + body.replace("$PY", json.dumps(sys.executable)))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _mizzen(*args: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    return int(info.value.code or 0)


SPEC = """
config: {SIZE: small}
jobs:
  ok: {command: [$PY, -c, "import mizzen; print('size', mizzen.config('SIZE'))"]}
  bad: {command: [sh, -c, "echo failing; exit 5"]}
pipelines:
  both: {steps: [ok, {job: bad, after: [ok]}]}
services:
  web: {command: [sh, -c, "sleep 1"]}
"""


def test_run_exit_codes_prefixed_output_and_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _project(tmp_path, SPEC, monkeypatch)
    assert _mizzen("run", "ok", "--set", "SIZE=large") == 0
    out = capsys.readouterr()
    assert "ok | size large" in out.out
    assert "run " in out.err and "succeeded" in out.err
    assert _mizzen("run", "both", "--parallel", "1") == 1
    out = capsys.readouterr()
    assert "bad | failing" in out.out
    assert "step bad exited with code 5" in out.err


def test_run_refuses_bad_input_with_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _project(tmp_path, SPEC, monkeypatch)
    assert _mizzen("run", "okk") == 2
    assert "did you mean 'ok'" in capsys.readouterr().err
    assert _mizzen("run", "ok", "--set", "NOPE=1") == 2
    assert _mizzen("run", "web") == 2
    assert "mizzen up web" in capsys.readouterr().err


def test_exec_runs_argv_and_returns_its_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MIZZEN_STORE", (tmp_path / "store").as_uri())
    assert (
        _mizzen("exec", "--workload", "w", "--", "sh", "-c", "echo hi $MIZZEN_RUN_ID; exit 3") == 3
    )
    out = capsys.readouterr().out
    assert "w | hi 20" in out
    assert any((tmp_path / "store" / "runs" / "w").iterdir())
