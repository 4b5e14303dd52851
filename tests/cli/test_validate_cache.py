"""The `mizzen validate` result cache, as a user meets it (the real command): a spec that
validated before, exactly as it is now, is answered without click, pydantic or yaml; any
change to what validation depends on runs the full validation, errors and all."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mizzen.cli.validate_cache import parse

MIZZEN = str(Path(sys.executable).parent / "mizzen")
SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: cached
volumes:
  raw: {files: {claim: raw}}
jobs:
  train: {command: [python, train.py, "${volumes.raw}"]}
  daily:
    sql: {file: sql/daily.sql, parameters: {days: "7"}}
pipelines:
  nightly: {steps: [train], schedule: {cron: "0 3 * * *", timeZone: Europe/Paris}}
environments:
  prod: {jobs: {train: {resources: {memory: 4Gi}}}}
"""
SQL = "SELECT * FROM read_parquet('${volumes.raw}/x.parquet') WHERE d < ${parameters.days}\n"
HEAVY = {"click", "pydantic", "pydantic_core", "yaml", "rich"}


@dataclass
class Validated:
    code: int
    stdout: str
    stderr: str  # without the import-time profile
    imported: set[str]

    @property
    def cached(self) -> bool:
        """Answered before click was imported: from the cache."""
        return "click" not in self.imported


def validate(project: Path, *args: str, env: dict[str, str] | None = None) -> Validated:
    return run([MIZZEN, "validate", *args], project, env)


def run(argv: list[str], project: Path, env: dict[str, str] | None = None) -> Validated:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MIZZEN_", "PYTHONTZ"))}
    environ.update({"PYTHONPROFILEIMPORTTIME": "1", **(env or {})})
    out = subprocess.run(argv, cwd=project, env=environ, capture_output=True, text=True, timeout=60)
    profile = re.compile(r"^import time:.*\|\s*(\S+)$")
    imported, stderr = set(), []
    for line in out.stderr.splitlines():
        m = profile.match(line)
        if m:
            imported.add(m.group(1).split(".")[0])
        elif not line.startswith("import time:"):
            stderr.append(line)
    return Validated(out.returncode, out.stdout, "\n".join(stderr), imported)


def entries(project: Path) -> list[Path]:
    folder = project / ".mizzen" / "cache" / "validate"
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "daily.sql").write_text(SQL)
    (tmp_path / "mizzen.yaml").write_text(SPEC)
    return tmp_path


def test_a_spec_that_validated_before_is_answered_without_click_pydantic_or_yaml(
    project: Path,
) -> None:
    for args in ([], ["-o", "json"], ["--env", "prod"], ["-f", "mizzen.yaml", "--output=json"]):
        first = validate(project, *args)
        assert first.code == 0 and not first.cached, first.stderr
        again = validate(project, *args)
        assert again.code == 0 and again.cached, args
        assert again.stdout == first.stdout and again.stderr == first.stderr == ""
        assert not again.imported & HEAVY, again.imported & HEAVY
    assert first.stdout.startswith('{\n  "ok": true,\n  "file": "mizzen.yaml"')
    assert len(entries(project)) == 4


def test_the_environment_is_part_of_the_key(project: Path) -> None:
    base = validate(project)
    assert base.stdout.endswith("valid (2 jobs, 1 pipelines, 0 services, environments: prod)\n")
    prod = validate(project, "-e", "prod")
    assert not prod.cached and prod.stdout.endswith(" [env prod]\n")
    from_var = validate(
        project, env={"MIZZEN_ENV": "prod"}
    )  # the same command, as the CLI reads it
    assert from_var.cached and from_var.stdout == prod.stdout
    explicit_wins = validate(project, "-e", "prod", env={"MIZZEN_ENV": "nope"})
    assert explicit_wins.cached and explicit_wins.stdout == prod.stdout
    wrong = validate(project, env={"MIZZEN_ENV": "prdo"})
    assert wrong.code == 2 and not wrong.cached
    assert "no environment 'prdo'; known: prod (did you mean 'prod'?)" in wrong.stderr
    assert validate(project).cached  # every environment again, from its own entry


CHANGES = {
    "one byte of the spec": lambda p: (p / "mizzen.yaml").write_text(
        SPEC.replace("${volumes.raw}", "${volumes.raX}")
    ),
    "the SQL file it reads": lambda p: (p / "sql" / "daily.sql").write_text(
        SQL.replace("parameters.days", "parameters.dayz")
    ),
    "the SQL file removed": lambda p: (p / "sql" / "daily.sql").unlink(),
    "an environment overlay": lambda p: (p / "mizzen.yaml").write_text(
        SPEC.replace("memory: 4Gi", "memory: 4GB")
    ),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_runs_the_full_validation_with_its_errors(project: Path, change: str) -> None:
    assert validate(project).code == 0
    assert validate(project).cached
    CHANGES[change](project)
    after = validate(project)
    assert after.code == 2 and not after.cached
    uncached = validate(project, env={"MIZZEN_NO_CACHE": "1"})
    assert (after.stdout, after.stderr) == (uncached.stdout, uncached.stderr)
    assert after.stderr.startswith("error:")
    again = validate(project)  # errors are never stored
    assert again.code == 2 and not again.cached


# `python -c` running the real entry point, with one file made to look changed through the
# stat the cache compares (as an edit or an upgrade would change it).
PROBE = """
import os, sys
from mizzen.spec import deps
changed = os.environ.get("PROBE_CHANGED")
if changed:
    real = deps._stat
    deps._stat = lambda name: (0, 0, 0) if name == changed else real(name)
for name in filter(None, os.environ.get("PROBE_IMPORT", "").split(",")):
    __import__(name)
from mizzen.cli.main import main
main(sys.argv[1:])
"""


def probe(project: Path, env: dict[str, str] | None = None) -> Validated:
    return run([sys.executable, "-c", PROBE, "validate"], project, env)


def _module_file(name: str) -> str:
    import importlib

    module = importlib.import_module(name)
    return os.path.abspath(module.__file__ or "")


@pytest.mark.parametrize(
    "module",
    [
        "mizzen.spec.models",  # mizzen's own source
        "mizzen.kinds.sql",
        "pydantic",  # the versions of what validation runs
        "pydantic_core._pydantic_core",
        "yaml",
        "cronsim",
        "zoneinfo",
    ],
)
def test_a_changed_module_is_a_miss(project: Path, module: str) -> None:
    assert probe(project).code == 0
    assert probe(project).cached
    after = probe(project, {"PROBE_CHANGED": _module_file(module)})
    assert after.code == 0 and not after.cached


def test_a_module_edited_on_disk_is_a_miss(project: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "plugin_probe.py").write_text("X = 1\n")
    env = {"PYTHONPATH": str(extra), "PROBE_IMPORT": "plugin_probe"}
    assert probe(project, env).code == 0
    assert probe(project, env).code == 0  # stored at the latest here (the file is older)
    assert probe(project, env).cached
    (extra / "plugin_probe.py").write_text("X = 2\n")
    assert not probe(project, env).cached


def test_a_module_that_would_now_be_imported_instead_is_a_miss(
    project: Path, tmp_path: Path
) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    env = {"PYTHONPATH": str(extra)}
    assert validate(project, env=env).code == 0
    assert validate(project, env=env).cached
    (extra / "anything.py").write_text("")
    assert not validate(project, env=env).cached
    assert not validate(project, env={}).cached  # another import path: another key


def test_the_time_zone_file_is_a_dependency(project: Path, tmp_path: Path) -> None:
    import tzdata

    zones = tmp_path / "zones"
    (zones / "Europe").mkdir(parents=True)
    shutil.copy(Path(tzdata.__file__).parent / "zoneinfo" / "Europe" / "Paris", zones / "Europe")
    env = {"PYTHONTZPATH": str(zones)}
    assert validate(project, env=env).code == 0
    assert validate(project, env=env).cached
    (zones / "Europe" / "Paris").write_bytes(b"not a zone")
    broken = validate(project, env=env)
    assert broken.code == 2 and not broken.cached
    assert "'Europe/Paris' is not a known IANA time zone" in broken.stderr
    assert validate(project).code == 0  # the system's zone, stored
    assert validate(project).cached
    assert not validate(project, env={"PYTHONTZPATH": str(tmp_path)}).cached


def test_no_cache_turns_it_off(project: Path) -> None:
    off = {"MIZZEN_NO_CACHE": "1"}
    assert validate(project, env=off).code == 0
    assert entries(project) == []
    assert validate(project).code == 0
    assert not validate(project, env=off).cached


def test_a_cache_that_cannot_be_written_only_means_no_fast_path(project: Path) -> None:
    (project / ".mizzen").write_text("a file where the cache folder would go")
    for _ in range(2):
        out = validate(project)
        assert out.code == 0 and not out.cached and out.stderr == ""


def test_a_corrupt_entry_is_ignored_and_replaced(project: Path) -> None:
    first = validate(project)
    (entry,) = entries(project)
    entry.write_bytes(b"\x00garbage")
    again = validate(project)
    assert again.code == 0 and not again.cached and again.stdout == first.stdout
    assert validate(project).cached


def test_other_command_lines_take_the_full_path(project: Path) -> None:
    assert validate(project).code == 0
    helped = validate(project, "--help")
    assert helped.code == 0 and "Usage: mizzen validate" in helped.stdout
    extra = validate(project, "extra")
    assert extra.code == 2 and "unexpected extra argument" in extra.stderr.lower()
    refused = validate(project, "-o", "yaml")
    assert refused.code == 2 and not refused.cached and "'yaml' is not one of" in refused.stderr
    version = run([MIZZEN, "--version"], project)
    assert version.code == 0 and "mizzen" in version.stdout


@pytest.mark.parametrize(
    ("args", "parsed"),
    [
        (["validate"], (None, None, "table")),
        (["validate", "-f", "a.yaml", "-e", "prod"], ("a.yaml", "prod", "table")),
        (["validate", "--file=a.yaml", "--env=prod", "--output=json"], ("a.yaml", "prod", "json")),
        (["validate", "--output", "json"], (None, None, "json")),
        (["validate", "-o", "yaml"], None),  # click refuses it: the full path says so
        (["validate", "-fa.yaml"], None),
        (["validate", "-f", "a", "-f", "b"], None),
        (["validate", "-e", "--help"], None),
        (["validate", "-e", ""], None),
        (["validate", "-e"], None),
        (["validate", "--help"], None),
        (["validate", "a.yaml"], None),
        (["validate", "--fi", "a.yaml"], None),
        (["config"], None),
        ([], None),
    ],
)
def test_the_command_lines_the_cache_answers(
    args: list[str], parsed: tuple[str | None, str | None, str] | None
) -> None:
    assert parse(args) == parsed


def test_mizzen_env_as_the_cli_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIZZEN_ENV", "prod")
    assert parse(["validate"]) == (None, "prod", "table")
    assert parse(["validate", "-e", "dev"]) == (None, "dev", "table")
    monkeypatch.setenv("MIZZEN_ENV", "")  # empty is unset, for click too
    assert parse(["validate"]) == (None, None, "table")
