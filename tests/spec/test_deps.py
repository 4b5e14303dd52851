"""What validation depends on besides the spec's bytes: recorded while it runs, re-checked by
`fresh()` before a cached result is trusted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mizzen import spec
from mizzen.spec import deps

SQL_SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: deps
volumes:
  raw: {files: {claim: raw}}
jobs:
  daily:
    sql: {file: sql/daily.sql, parameters: {days: "7"}}
pipelines:
  nightly: {steps: [daily], schedule: {cron: "0 3 * * *", timeZone: Europe/Paris}}
"""
SQL = "SELECT * FROM read_parquet('${volumes.raw}/x.parquet') WHERE d < ${parameters.days}\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "daily.sql").write_text(SQL)
    (tmp_path / "mizzen.yaml").write_text(SQL_SPEC)
    return tmp_path


def test_read_text_records_what_it_read_and_what_was_missing(tmp_path: Path) -> None:
    there = tmp_path / "a.sql"
    there.write_bytes(b"SELECT 1;\r\n")
    with deps.Recording() as outer, deps.Recording() as inner:
        assert deps.read_text(there) == "SELECT 1;\n"  # as Path.read_text: newlines translated
        with pytest.raises(FileNotFoundError):
            deps.read_text(tmp_path / "missing.sql")
    for rec in (outer, inner):
        assert rec.files == {
            str(there): deps.digest(b"SELECT 1;\r\n"),
            str(tmp_path / "missing.sql"): None,
        }
    deps.read_text(there)  # no recording active: nothing noted, nothing fails


def test_a_file_that_changed_between_two_reads_matches_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.sql"
    path.write_text("one")
    with deps.Recording() as rec:
        deps.read_text(path)
        path.write_text("two")
        deps.read_text(path)
    fp = ((), (), tuple(rec.files.items()), ())
    assert not deps.fresh(fp)
    path.write_text("one")
    assert not deps.fresh(fp)


def test_loading_a_spec_collects_the_files_validation_read(project: Path) -> None:
    loaded = spec.load(project / "mizzen.yaml")
    files = loaded.reads.files
    assert files[str(project / "mizzen.yaml")] == deps.digest(SQL_SPEC.encode())
    assert files[str(project / "sql" / "daily.sql")] == deps.digest(SQL.encode())
    zone = [name for name in files if name.endswith(os.path.join("Europe", "Paris"))]
    assert zone and all(files[name] is not None for name in zone[-1:])
    assert loaded.reads.env.keys() >= {"PYTHONTZPATH"}


def test_the_time_zone_file_is_the_one_zoneinfo_reads(tmp_path: Path) -> None:
    # PYTHONTZPATH first; a folder searched before the one that has the zone is recorded as
    # absent (a file appearing there would be read instead).
    probe = (
        "import json; from mizzen.spec import deps\n"
        "with deps.Recording() as r: deps.note_zone('Europe/Paris')\n"
        "print(json.dumps([r.files, r.env]))"
    )
    empty, zones = tmp_path / "empty", tmp_path / "zones"
    (zones / "Europe").mkdir(parents=True)
    (zones / "Europe" / "Paris").write_bytes(b"TZif fake")
    empty.mkdir()
    env = {**os.environ, "PYTHONTZPATH": f"{empty}{os.pathsep}{zones}"}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    files, variables = json.loads(out.stdout)
    assert files == {
        str(empty / "Europe" / "Paris"): None,
        str(zones / "Europe" / "Paris"): deps.digest(b"TZif fake"),
    }
    assert variables == {"PYTHONTZPATH": env["PYTHONTZPATH"]}


SPY = """
import json, os, sys
from mizzen import spec
import mizzen.spec.loader, mizzen.kinds.sql, mizzen.spec.units, cronsim, zoneinfo

seen = set()


class Spy(type(os.environ)):
    def __getitem__(self, key):
        seen.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        seen.add(key)
        return super().__contains__(key)


os.environ.__class__ = Spy
recorded = set()
for path in sys.argv[1:]:
    recorded |= set(spec.load(path).reads.env)
print(json.dumps([sorted(seen), sorted(recorded)]))
"""


def test_every_environment_variable_validation_reads_is_recorded(project: Path) -> None:
    # A cached result is keyed on nothing else from the environment: a kind that starts
    # reading a variable must do it through deps.environ (this test then still passes).
    drives = Path(__file__).parents[2] / "examples" / "drives" / "mizzen.yaml"
    out = subprocess.run(
        [sys.executable, "-c", SPY, str(project / "mizzen.yaml"), str(drives)],
        capture_output=True,
        text=True,
        check=True,
    )
    seen, recorded = json.loads(out.stdout)
    assert seen and set(seen) <= set(recorded), (seen, recorded)


def _fp(
    files: tuple[Path, ...] = (), folders: tuple[Path, ...] = (), reads: tuple[Path, ...] = ()
) -> deps.Fingerprint:
    return (
        tuple((str(f), deps._stat(str(f))) for f in files),
        tuple((str(f), deps._importable(str(f))) for f in folders),
        tuple((str(f), deps._hash_file(str(f))) for f in reads),
        (("MIZZEN_TEST_DEP", os.environ.get("MIZZEN_TEST_DEP")),),
    )


def test_a_module_file_that_changed_is_not_fresh(tmp_path: Path) -> None:
    module = tmp_path / "mod.py"
    module.write_text("X = 1\n")
    an_hour_ago = module.stat().st_mtime_ns - 3600 * 10**9
    os.utime(module, ns=(an_hour_ago, an_hour_ago))
    fp = _fp(files=(module,))
    assert deps.fresh(fp)
    module.write_text("X = 2\n")  # same file, same size: its mtime tells
    assert not deps.fresh(fp)


def test_a_module_that_could_now_be_imported_instead_is_not_fresh(tmp_path: Path) -> None:
    fp = _fp(folders=(tmp_path,))
    (tmp_path / "notes.txt").write_text("not importable")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "not-a-package").mkdir()
    assert deps.fresh(fp)  # nothing an import could pick up
    (tmp_path / "yaml.py").write_text("")
    assert not deps.fresh(fp)
    (tmp_path / "yaml.py").unlink()
    assert deps.fresh(fp)
    (tmp_path / "pydantic-9.9.dist-info").mkdir()  # a distribution installed
    assert not deps.fresh(fp)


def test_a_read_file_or_a_variable_that_changed_is_not_fresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = tmp_path / "daily.sql"
    read.write_text("SELECT 1")
    fp = _fp(reads=(read, tmp_path / "absent.sql"))
    assert deps.fresh(fp)
    read.write_text("SELECT 2")
    assert not deps.fresh(fp)
    read.write_text("SELECT 1")
    assert deps.fresh(fp)
    (tmp_path / "absent.sql").write_text("")  # a file that appeared
    assert not deps.fresh(fp)
    (tmp_path / "absent.sql").unlink()
    monkeypatch.setenv("MIZZEN_TEST_DEP", "set")
    assert not deps.fresh(fp)


FINGERPRINT = """
import json, sys
from mizzen import spec
from mizzen.spec import deps
loaded = spec.load(sys.argv[1])
fp = deps.fingerprint(loaded.reads)
sys.path.insert(0, sys.argv[2])
import fresh_module
print(json.dumps([fp, deps.fingerprint(loaded.reads)]))
"""


def test_a_fingerprint_holds_the_code_that_ran_and_what_validation_read(
    project: Path, tmp_path: Path
) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    out = subprocess.run(
        [sys.executable, "-c", FINGERPRINT, str(project / "mizzen.yaml"), str(extra)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        cwd=project,
        # the module is written after the process started: it may not be what ran
        preexec_fn=lambda: (extra / "fresh_module.py").write_text("X = 1\n"),
    )
    fp, after = json.loads(out.stdout)
    assert after is None
    stats, listed, reads, env = fp
    names = {name for name, _ in stats}
    import pydantic
    import yaml

    import mizzen.spec.models

    for module in (pydantic, yaml, mizzen.spec.models):
        assert os.path.abspath(module.__file__ or "") in names
    assert os.path.dirname(os.path.abspath(pydantic.__file__ or "")) in dict(listed)
    assert dict(reads)[str(project / "sql" / "daily.sql")] == deps.digest(SQL.encode())
    assert dict(env).keys() >= {"PYTHONTZPATH"}
