"""The compiled-plan cache: reused only while everything compilation reads is unchanged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mizzen.plan.cache import cached_plan

SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: cached
config: {WHO: "${env.MIZZEN_TEST_WHO}"}
jobs:
  hello: {command: [echo, "${config.WHO}"]}
"""


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "mizzen.yaml"
    path.write_text(SPEC)
    monkeypatch.setenv("MIZZEN_TEST_WHO", "ada")
    monkeypatch.chdir(tmp_path)
    return path


def _entries(spec: Path) -> list[Path]:
    return sorted((spec.parent / ".mizzen" / "cache" / "plans").glob("*.pickle"))


def test_a_second_load_reuses_the_compiled_plan(spec: Path) -> None:
    first = cached_plan(None, None, "local")
    assert len(_entries(spec)) == 1
    second = cached_plan(None, None, "local")
    assert second == first
    assert second.jobs["hello"].process.command == ("echo", "ada")
    assert len(_entries(spec)) == 1


def test_an_edited_spec_is_compiled_again(spec: Path) -> None:
    cached_plan(spec, None, "local")
    spec.write_text(SPEC.replace("[echo,", "[printf,"))
    assert cached_plan(spec, None, "local").jobs["hello"].process.command[0] == "printf"


def test_referenced_environment_variables_are_part_of_the_key(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cached_plan(spec, None, "local").config["WHO"] == "ada"
    monkeypatch.setenv("MIZZEN_TEST_WHO", "grace")
    assert cached_plan(spec, None, "local").config["WHO"] == "grace"
    monkeypatch.delenv("MIZZEN_TEST_WHO")
    assert cached_plan(spec, None, "local").config["WHO"] == ""


def test_sets_targets_and_images_get_their_own_entries(spec: Path) -> None:
    plain = cached_plan(spec, None, "local")
    overridden = cached_plan(spec, None, "local", sets={"WHO": "bob"})
    assert plain.config["WHO"] == "ada" and overridden.config["WHO"] == "bob"
    k8s = cached_plan(spec, None, "kubernetes", image="r.example/x@sha256:" + "0" * 64)
    assert k8s.target == "kubernetes" and k8s.image.endswith("0" * 64)
    assert len(_entries(spec)) == 3


def test_a_corrupt_entry_is_ignored_and_replaced(spec: Path) -> None:
    cached_plan(spec, None, "local")
    (entry,) = _entries(spec)
    entry.write_bytes(b"not a pickle")
    assert cached_plan(spec, None, "local").jobs["hello"].process.command == ("echo", "ada")
    assert entry.read_bytes() != b"not a pickle"


def test_errors_are_never_cached(spec: Path) -> None:
    from mizzen.errors import SpecError, UsageError

    with pytest.raises(UsageError, match="is not a config key"):
        cached_plan(spec, None, "local", sets={"NOPE": "1"})
    spec.write_text(SPEC.replace("jobs:", "jbos:"))
    for _ in range(2):
        with pytest.raises(SpecError, match="did you mean 'jobs'"):
            cached_plan(spec, None, "local")


def test_a_cached_run_does_not_import_pydantic(spec: Path) -> None:
    code = (
        "import sys; from mizzen.plan.cache import cached_plan; cached_plan(None, None, 'local');"
        "print('pydantic' in sys.modules)"
    )

    def imports_pydantic() -> str:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()

    assert imports_pydantic() == "True"  # the first load compiles (and validates)
    assert imports_pydantic() == "False"  # the second one only unpickles the plan


SQL_SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: cached
volumes:
  raw: {files: {claim: raw}}
  other: {files: {claim: other}}
jobs:
  daily: {sql: {file: daily.sql}}
"""


def test_the_sql_file_a_job_reads_is_checked_before_a_plan_is_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mizzen.errors import SpecError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mizzen.yaml").write_text(SQL_SPEC)
    sql = tmp_path / "daily.sql"
    sql.write_text("SELECT * FROM '${volumes.raw}/a.parquet'\n")
    first = cached_plan(None, None, "local")
    assert cached_plan(None, None, "local") == first
    sql.write_text("SELECT * FROM '${volumes.other}/a.parquet'\n")  # mounts another volume
    assert cached_plan(None, None, "local") != first
    sql.write_text("SELECT * FROM '${volumes.nope}/a.parquet'\n")
    with pytest.raises(SpecError, match="unknown volume 'nope'"):
        cached_plan(None, None, "local")


def test_no_cache_turns_it_off(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIZZEN_NO_CACHE", "1")
    cached_plan(None, None, "local")
    assert _entries(spec) == []
