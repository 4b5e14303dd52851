"""`mizzen init`: the scaffolded project validates, runs its starter job, and is safe to re-run."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from tests.build.build_helpers import GIT_ENV, git, mizzen

from mizzen import __version__

FILES = [
    "mizzen.yaml",
    "Dockerfile",
    ".dockerignore",
    "requirements.txt",
    "jobs/hello.py",
    "notebooks/explore.ipynb",
    ".github/workflows/mizzen.yml",
    "wheels/README.md",
    ".gitignore",
    ".mizzen/secrets/local.env",
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    out = mizzen(tmp_path, "init", "demo-proj")
    assert "created project 'demo-proj'" in out.stdout
    return tmp_path / "demo-proj"


def test_writes_every_file(project: Path) -> None:
    for name in FILES:
        assert (project / name).is_file(), name
    assert "__NAME__" not in "".join((project / f).read_text() for f in FILES)


def test_validates_and_runs_the_starter_job(project: Path) -> None:
    out = mizzen(project, "validate", "-o", "json")
    assert json.loads(out.stdout)["ok"] is True
    # no python with mizzen on PATH (none at all, here): the job's `python` is still one that
    # imports mizzen (docs/spec.md, Run-time environment)
    env = {"PATH": str(project / "no-such-bin"), "VIRTUAL_ENV": "", "CONDA_PREFIX": ""}
    run = mizzen(project, "run", "hello", env=env)
    assert "hello from demo-proj (3/3)" in run.stdout
    run_id = re.search(r"run (\S+) succeeded", run.stdout + run.stderr)
    assert run_id, run.stdout + run.stderr
    shown = json.loads(
        mizzen(project, "runs", "show", run_id.group(1), "-o", "json", env=env).stdout
    )
    assert shown["params"] == {"times": 3}
    assert shown["metrics"]["greetings"] == 3.0


def test_notebook_is_valid_nbformat4_with_papermill_parameters(project: Path) -> None:
    import nbformat

    nb = nbformat.read(project / "notebooks/explore.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "rows" in tagged[0].source


def test_dockerfile_shape(project: Path) -> None:
    text = (project / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "ARG BASE_IMAGE=python:3.11-slim" and lines[1] == "FROM ${BASE_IMAGE}"
    deps = next(i for i, line in enumerate(lines) if line.startswith("COPY requirements.txt"))
    pip = next(i for i, line in enumerate(lines) if line.startswith("RUN pip install"))
    code = next(
        i for i, line in enumerate(lines) if line.startswith("COPY --chown=1000:1000 . /app")
    )
    assert deps < pip < code
    assert f"ARG MIZZEN_PACKAGE=mizzen=={__version__}" in lines
    assert "COPY wheels/ /tmp/wheels/" in lines[deps + 1 : pip]
    assert lines[pip].startswith('RUN pip install --find-links /tmp/wheels "${MIZZEN_PACKAGE}"')
    assert "WORKDIR /app" in lines and "USER 1000" in lines
    assert "latest" not in text


def test_ignores(project: Path) -> None:
    docker_ignore = (project / ".dockerignore").read_text().splitlines()
    assert ".mizzen/" in docker_ignore and ".git" in docker_ignore
    git(project, "init", "-q")
    ignored = subprocess.run(
        ["git", "check-ignore", ".mizzen/secrets/local.env"],
        cwd=project,
        env={**os.environ, **GIT_ENV},
        check=False,
    )
    assert ignored.returncode == 0


def test_ci_workflow(project: Path) -> None:
    flow = yaml.safe_load((project / ".github/workflows/mizzen.yml").read_text())
    steps = {
        name: " ".join(str(s.get("run", "")) for s in job["steps"])
        for name, job in flow["jobs"].items()
    }
    assert "mizzen validate" in steps["validate"]
    assert (
        "mizzen build --push" in steps["build"]
        and flow["jobs"]["build"]["if"] == "github.ref == 'refs/heads/main'"
    )
    assert (
        "mizzen release --env prod" in steps["release"]
        and "refs/tags/" in flow["jobs"]["release"]["if"]
    )
    assert flow[True]["push"]["branches"] == ["main"]  # YAML 1.1 reads `on:` as True
    installs = [
        s["run"]
        for job in flow["jobs"].values()
        for s in job["steps"]
        if "pip install" in s.get("run", "")
    ]
    assert installs == [
        f"pip install --find-links wheels 'mizzen=={__version__}'",
        f"pip install --find-links wheels 'mizzen=={__version__}'",
        f"pip install --find-links wheels 'mizzen[kubernetes]=={__version__}'",
    ]


def test_refuses_to_overwrite_unless_forced(project: Path) -> None:
    (project / "Dockerfile").write_text("FROM mine\n")
    (project / ".mizzen/secrets/local.env").write_text("MIZZEN_SECRET_DB_PASSWORD=kept\n")
    again = mizzen(project.parent, "init", "demo-proj", check=False)
    assert again.returncode == 2
    assert (
        "would overwrite" in again.stderr
        and "Dockerfile" in again.stderr
        and "mizzen.yaml" in again.stderr
    )
    assert "--force" in again.stderr
    assert (project / "Dockerfile").read_text() == "FROM mine\n"
    forced = mizzen(project.parent, "init", "demo-proj", "--force")
    assert "kept  .mizzen/secrets/local.env" in forced.stdout
    assert (project / "Dockerfile").read_text().startswith("# The project image")
    assert (project / ".mizzen/secrets/local.env").read_text() == "MIZZEN_SECRET_DB_PASSWORD=kept\n"
    assert (project / ".gitignore").read_text().count(".mizzen/") == 1


def test_existing_gitignore_is_merged_not_refused(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("node_modules/")
    mizzen(tmp_path, "init", "--name", "merged")
    text = (tmp_path / ".gitignore").read_text()
    assert text.startswith("node_modules/\n") and ".mizzen/" in text.splitlines()
    assert "name: merged" in (tmp_path / "mizzen.yaml").read_text()


def test_names(tmp_path: Path) -> None:
    odd = tmp_path / "My Project_1"
    mizzen(tmp_path, "init", str(odd))
    assert "name: my-project-1\n" in (odd / "mizzen.yaml").read_text()
    bad = mizzen(tmp_path, "init", "x", "--name", "Not_Valid", check=False)
    assert (
        bad.returncode == 2
        and "DNS-1123" in bad.stderr
        and not (tmp_path / "x" / "mizzen.yaml").exists()
    )


def test_the_wheel_mizzen_came_from_is_copied_into_wheels(tmp_path: Path) -> None:
    from mizzen.scaffold import scaffold
    from mizzen.scaffold.wheel import Origin

    wheel = tmp_path / f"mizzen-{__version__}-py3-none-any.whl"
    wheel.write_bytes(b"the build this mizzen was installed from")
    done = scaffold(tmp_path / "p", origin=Origin(wheel, f"copied {wheel.name}"))
    assert (tmp_path / "p/wheels" / wheel.name).read_bytes() == wheel.read_bytes()
    assert f"wheels/{wheel.name}" in done.written and done.wheel == f"copied {wheel.name}"


def test_init_from_a_checkout_says_how_to_get_a_wheel(tmp_path: Path) -> None:
    """This test run's mizzen is the checkout itself (editable): no wheel to copy, and init
    says how to make one and where it goes."""
    out = mizzen(tmp_path, "init", "x").stdout
    checkout = Path(__file__).resolve().parents[2]
    assert f"wheels/: mizzen was installed from the checkout {checkout}" in out
    assert (
        f"make -C {checkout} wheel && cp {checkout}/dist/mizzen-{__version__}-py3-none-any.whl wheels/"
        in out
    )
    assert sorted(p.name for p in (tmp_path / "x" / "wheels").iterdir()) == ["README.md"]
