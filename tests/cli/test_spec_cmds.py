"""`mizzen validate`, `config`, `schema`, `plan` as a user runs them (the real command)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mizzen.spec.source import parse_text

MIZZEN = str(Path(sys.executable).parent / "mizzen")
DESIGN = Path(__file__).parents[1] / "spec" / "good" / "design.yaml"


BAD = Path(__file__).parents[1] / "spec" / "bad"


def mizzen(
    *args: str, cwd: Path, env: dict[str, str] | None = None, memory: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real command; `memory` caps its address space (bytes), so a run that needs
    more fails instead of finishing slowly."""
    environ = {k: v for k, v in os.environ.items() if k != "MIZZEN_ENV"}
    environ.update(env or {})

    def cap() -> None:
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run(
        [MIZZEN, *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=cap,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "mizzen.yaml").write_text(DESIGN.read_text())
    return tmp_path


BROKEN = """apiVersion: mizzen.io/v1alpha1
kind: Project
name: drives
jobs:
  train:
    command: [python, train.py, "${volumes.raw}"]
    resources: {memory: 4GB}
"""


def test_validate_ok(project: Path) -> None:
    out = mizzen("validate", cwd=project)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith(
        "valid (3 jobs, 1 pipelines, 3 services, environments: dev, prod)"
    )


def test_validate_reports_every_problem_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "mizzen.yaml").write_text(BROKEN)
    out = mizzen("validate", cwd=tmp_path)
    assert out.returncode == 2
    spec_file = tmp_path.resolve() / "mizzen.yaml"
    assert out.stderr.splitlines() == [
        "error: 2 problems in the spec:",
        f"  {spec_file}:6:33: jobs.train.command[2]: ${{volumes.raw}}: unknown volume 'raw' (declare it under `volumes:`)",
        f"  {spec_file}:7:17: jobs.train.resources.memory: '4GB' is not a quantity like 500m, 2, 512Mi or 4Gi; did you mean 4Gi?",
    ]


def test_validate_json(tmp_path: Path, project: Path) -> None:
    good = mizzen("validate", "-o", "json", cwd=project)
    assert good.returncode == 0
    data = json.loads(good.stdout)
    assert data["ok"] is True and data["problems"] == [] and data["digest"].startswith("sha256:")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "mizzen.yaml").write_text(BROKEN)
    bad = mizzen("validate", "--output", "json", cwd=tmp_path / "bad")
    assert bad.returncode == 2
    problems = json.loads(bad.stdout)["problems"]
    assert [(p["line"], p["column"], p["field"]) for p in problems] == [
        (6, 33, "jobs.train.command[2]"),
        (7, 17, "jobs.train.resources.memory"),
    ]
    assert problems[1]["message"].endswith("did you mean 4Gi?")


def test_validate_unknown_env_suggests(project: Path) -> None:
    out = mizzen("validate", "--env", "prdo", cwd=project)
    assert out.returncode == 2
    assert "no environment 'prdo'; known: dev, prod (did you mean 'prod'?)" in out.stderr


def test_config_says_which_overlay_applied(project: Path) -> None:
    base = mizzen("config", cwd=project)
    assert base.returncode == 0
    assert "# environment: none (base spec)" in base.stdout
    prod = mizzen("config", "--env", "prod", cwd=project)
    assert "# environment: prod (overlay environments.prod applied)" in prod.stdout
    assert "abfs://lake@acct.dfs.core.windows.net" in prod.stdout
    from_var = mizzen("config", cwd=project, env={"MIZZEN_ENV": "dev"})
    assert (
        "# environment: dev (overlay environments.dev applied from $MIZZEN_ENV)" in from_var.stdout
    )
    data = json.loads(mizzen("config", "-o", "json", "--env", "prod", cwd=project).stdout)
    assert data["env"] == "prod"
    assert data["spec"]["jobs"]["train"]["resources"]["gpu"] == 4
    assert data["spec"]["alerts"][0]["on"] == ["failed", "late"]
    assert "environments" not in data["spec"]


def test_explicit_env_wins_over_mizzen_env(project: Path) -> None:
    out = mizzen("config", "-o", "json", "--env", "prod", cwd=project, env={"MIZZEN_ENV": "dev"})
    data = json.loads(out.stdout)
    assert data["env"] == "prod"
    assert data["spec"]["kubernetes"]["namespace"] == "drives"


def test_config_never_prints_secret_values(project: Path) -> None:
    secrets = project / ".mizzen" / "secrets"
    secrets.mkdir(parents=True)
    (secrets / "prod.env").write_text("MIZZEN_SECRET_WAREHOUSE_PASSWORD=file-s3cr3t-value\n")
    (project / "mizzen.yaml").write_text(
        (project / "mizzen.yaml")
        .read_text()
        .replace("  WAREHOUSE_HOST: dw.internal\n", "  WAREHOUSE_HOST: ${env.DW_HOST}\n")
    )
    environ = {
        "MIZZEN_SECRET_WAREHOUSE_USER": "env-s3cr3t-user",
        "MIZZEN_SECRET_ALERTS_URL": "https://hook/s3cr3t",
        "DW_HOST": "dw-s3cr3t",
    }
    for output in ("yaml", "json"):
        out = mizzen("config", "--env", "prod", "-o", output, cwd=project, env=environ)
        assert out.returncode == 0, out.stderr
        assert "s3cr3t" not in out.stdout + out.stderr
        assert "***" not in out.stdout  # nothing to mask: no values at all
        assert "${env.DW_HOST}" in out.stdout
        assert "password" in out.stdout  # the key name is shown, never a value


def test_schema_accepts_design_example_and_rejects_unknown_key(project: Path) -> None:
    import jsonschema

    out = mizzen("schema", cwd=project)
    assert out.returncode == 0
    schema = json.loads(out.stdout)
    validator = jsonschema.Draft202012Validator(schema)
    data = parse_text(DESIGN.read_text(), "mizzen.yaml").data
    assert list(validator.iter_errors(data)) == []
    data["jobs"]["train"]["resurces"] = {"gpu": 1}
    errors = list(validator.iter_errors(data))
    assert errors and "resurces" in errors[0].message
    assert list(validator.iter_errors({**parse_text(DESIGN.read_text(), "x").data, "jbos": {}}))


def test_plan_of_one_workload_and_set_errors(project: Path) -> None:
    out = mizzen("plan", "train", "--target", "kubernetes", cwd=project)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["process"]["command"] == [
        "python",
        "-m",
        "drives.train",
        "--data",
        "/mnt/mizzen/features",
    ]
    missing = mizzen("plan", "nope", cwd=project)
    assert missing.returncode == 2 and "no workload 'nope'" in missing.stderr


VALIDATE_MEMORY = 512 << 20  # ample for validating a spec; the alias bomb wants gigabytes


@pytest.mark.parametrize(
    "name", ["yaml_alias_bomb", "yaml_recursive_alias", "yaml_unknown_tag", "yaml_deep_nesting"]
)
def test_hostile_yaml_is_a_spec_error_in_bounded_memory(tmp_path: Path, name: str) -> None:
    shutil.copy(BAD / f"{name}.yaml", tmp_path / "mizzen.yaml")
    out = mizzen("validate", cwd=tmp_path, memory=VALIDATE_MEMORY)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    expected = (BAD / f"{name}.expected").read_text().splitlines()
    spec_file = tmp_path.resolve() / "mizzen.yaml"
    assert out.stderr.splitlines()[1:] == [
        "  " + line.replace(f"{name}.yaml", str(spec_file)) for line in expected
    ]


def test_the_memory_cap_leaves_room_for_a_real_spec(project: Path) -> None:
    out = mizzen("validate", cwd=project, memory=VALIDATE_MEMORY)
    assert out.returncode == 0, out.stderr


def test_nesting_that_crashed_the_yaml_composer_is_refused(tmp_path: Path) -> None:
    # 100,000 levels overflowed libyaml's C composer (a segmentation fault).
    (tmp_path / "mizzen.yaml").write_text(
        "apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: x\nconfig: "
        + "[" * 100_000
        + "]" * 100_000
        + "\n"
    )
    out = mizzen("validate", cwd=tmp_path, memory=VALIDATE_MEMORY)
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines()[1].endswith(
        "mizzen.yaml:4:72: nested more than 64 levels deep "
        "(a spec needs a dozen levels at most; flatten this value)"
    )


PROBE = """
import sys
from mizzen.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    print("exit", exc.code, "importlib.metadata" in sys.modules)
"""


def test_validate_skips_pydantic_plugin_discovery_and_exits_in_process(project: Path) -> None:
    # The plugin lookup imports importlib.metadata and reads every installed package's entry
    # points; `validate` runs no user code and skips it. Called in-process it must still
    # return through SystemExit (never os._exit), for tests and embedding.
    for args, code in ((["validate"], 0), (["validate", "--env", "nope"], 2)):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, *args],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.stdout.splitlines()[-1] == f"exit {code} False", out.stderr


def test_loading_a_spec_as_a_library_keeps_pydantic_plugins(project: Path) -> None:
    probe = "import sys; from mizzen import spec; spec.load(); print('importlib.metadata' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=project, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "True", out.stderr


def test_validate_output_survives_the_quick_exit(project: Path) -> None:
    # Through a pipe, stdout is block-buffered: the quick exit flushes it first.
    out = mizzen("validate", "-o", "json", cwd=project)
    assert out.returncode == 0 and json.loads(out.stdout)["ok"] is True
    bad = mizzen("validate", "-o", "json", "--env", "nope", cwd=project)
    assert bad.returncode == 2 and json.loads(bad.stdout)["ok"] is False
