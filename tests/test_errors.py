"""What a missing extra's hint tells a user to run: the command for the environment mizzen
runs in (pipx, a uv tool, a venv with or without pip), not a `pip` that may be another one."""

from __future__ import annotations

import sys

import pytest

from mizzen.errors import MissingExtraError, install_hint


@pytest.mark.parametrize(
    ("prefix", "wanted"),
    [
        ("/home/ann/.local/share/pipx/venvs/mizzen", "pipx runpip mizzen install 'mizzen[s3]'"),
        ("/home/ann/.local/share/uv/tools/mizzen", "uv tool install --force 'mizzen[s3]'"),
    ],
)
def test_tool_environments_get_their_own_command(
    prefix: str, wanted: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "prefix", prefix)
    assert install_hint("mizzen[s3]").startswith(wanted)


def test_a_venv_installs_into_this_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "prefix", "/work/proj/.venv")
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    hint = MissingExtraError("mizzen data", "datasets", "deltalake").hint
    assert sys.executable in hint and "'mizzen[datasets]'" in hint


def test_outside_a_venv_it_is_plain_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "prefix", "/usr")
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    assert install_hint("mizzen[gcs]") == "pip install 'mizzen[gcs]'"
