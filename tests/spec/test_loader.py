"""Loading mizzen.yaml: the example spec, overlays, and how problems are reported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mizzen import spec
from mizzen.errors import SpecError
from mizzen.spec.loader import find_spec
from mizzen.spec.overlay import deep_merge

WriteSpec = Callable[..., Path]


def problems(path: Path, env: str | None = None) -> list[str]:
    with pytest.raises(SpecError) as caught:
        spec.load(path, env)
    return [str(p).replace(str(path), "mizzen.yaml") for p in caught.value.problems]


def test_design_example_validates(design_spec: Path) -> None:
    loaded = spec.load(design_spec)
    project = loaded.project
    assert project.name == "drives"
    assert list(project.jobs) == ["features", "train", "report"]
    assert project.alerts[0].on == ["failed", "late"]  # `on:` stays the string "on"
    assert project.stores["lake"].url == "s3://analytics-lake"  # short form
    assert project.secrets["warehouse"].keys == ["user", "password"]
    assert [s.step_name for s in project.pipelines["nightly"].steps] == [
        "features",
        "train",
        "report",
    ]
    assert project.pipelines["nightly"].schedule is not None
    assert project.pipelines["nightly"].schedule.cron == "0 3 * * *"
    assert project.services["classifier"].versions == {"3": 90, "4": 10}
    assert loaded.env is None


def test_overlay_dicts_merge_lists_and_scalars_replace(design_spec: Path) -> None:
    base = spec.load(design_spec).project
    prod = spec.load(design_spec, "prod")
    p = prod.project
    assert prod.env == "prod"
    assert p.stores["lake"].url == "abfs://lake@acct.dfs.core.windows.net"
    train = p.jobs["train"]
    assert train.resources.gpu == 4  # from the overlay
    assert train.resources.cpu == "2" and train.resources.memory == "4Gi"  # kept from the base
    assert train.command == base.jobs["train"].command
    assert p.kubernetes.namespace == "drives"
    assert base.kubernetes.namespace is None
    assert prod.digest != spec.load(design_spec).digest


def test_overlay_list_replaces_whole_list(write_spec: WriteSpec) -> None:
    path = write_spec(
        """
        jobs:
          train: {command: [python, train.py], args: [--epochs, "10"]}
        environments:
          prod:
            jobs: {train: {args: [--epochs, "50", --full]}}
        """
    )
    assert spec.load(path, "prod").project.jobs["train"].args == ["--epochs", "50", "--full"]


def test_overlay_null_deletes_a_key(write_spec: WriteSpec) -> None:
    path = write_spec(
        """
        image: {repository: registry.example.com/drives}
        config: {HOST: dev.internal, DEBUG: "1"}
        jobs:
          train: {command: [python, train.py], timeout: 1h}
        environments:
          prod:
            image: null
            config: {DEBUG: null}
            jobs: {train: {timeout: null}}
        """
    )
    prod = spec.load(path, "prod").project
    assert prod.image is None
    assert prod.config == {"HOST": "dev.internal"}
    assert prod.jobs["train"].timeout is None
    assert spec.load(path).project.jobs["train"].timeout == "1h"


def test_overlay_deleting_what_is_referenced_is_reported_on_validate(write_spec: WriteSpec) -> None:
    path = write_spec(
        """
        jobs:
          train: {command: [python, train.py]}
          report: {command: [python, report.py]}
        pipelines:
          nightly: {steps: [train, {job: report, after: [train]}]}
        environments:
          lite:
            jobs: {report: null}
        """
    )
    assert problems(path) == [
        "mizzen.yaml:8:29: pipelines.nightly.steps[1].job: with environment 'lite': unknown job 'report' (known: train)"
    ]
    assert problems(path, "lite") == [
        "mizzen.yaml:8:29: pipelines.nightly.steps[1].job: unknown job 'report' (known: train)"
    ]


def test_overlay_problem_points_at_the_overlay_line_with_and_without_env(
    write_spec: WriteSpec,
) -> None:
    path = write_spec(
        """
        jobs:
          train: {command: [python, train.py]}
        environments:
          prod:
            jobs:
              train:
                resources: {memory: 4GB}
        """
    )
    expected = "mizzen.yaml:10:21: environments.prod.jobs.train.resources.memory: '4GB' is not a quantity like 500m, 2, 512Mi or 4Gi; did you mean 4Gi?"
    assert problems(path) == [expected]
    assert problems(path, "prod") == [expected]


def test_base_problem_is_not_repeated_per_environment(write_spec: WriteSpec) -> None:
    path = write_spec(
        """
        jobs:
          train: {command: [python, train.py], retries: lots}
        environments:
          dev: {}
          prod: {kubernetes: {namespace: drives}}
        """
    )
    assert problems(path) == [
        "mizzen.yaml:5:40: jobs.train.retries: expected an integer, got a string 'lots'"
    ]


def test_empty_environment_is_the_base(write_spec: WriteSpec) -> None:
    path = write_spec(
        """
        jobs:
          train: {command: [python, train.py]}
        environments:
          dev:
        """
    )
    assert spec.load(path, "dev").project.jobs["train"].command == ["python", "train.py"]


def test_environment_must_be_a_mapping(write_spec: WriteSpec) -> None:
    path = write_spec(
        """
        environments:
          dev: [a, b]
        """
    )
    assert problems(path) == [
        "mizzen.yaml:5:3: environments.dev: expected a mapping (key: value), got a list"
    ]


def test_spec_without_environments_names_the_missing_section(write_spec: WriteSpec) -> None:
    path = write_spec("jobs: {}\n")
    assert problems(path, "prod") == [
        "mizzen.yaml:1:1: environments: no environment 'prod'; the spec has no `environments:` (add it under `environments:`)"
    ]


def test_top_level_must_be_a_mapping(write_spec: WriteSpec) -> None:
    path = write_spec("- a\n- b\n", head=False)
    assert problems(path) == [
        "mizzen.yaml:1:1: the spec must be a mapping (key: value) at the top level"
    ]


def test_empty_file_reports_the_required_fields(write_spec: WriteSpec) -> None:
    path = write_spec("", head=False)
    assert problems(path) == [
        "mizzen.yaml:1:1: apiVersion: required field is missing (add `apiVersion:`)",
        "mizzen.yaml:1:1: kind: required field is missing (add `kind:`)",
        "mizzen.yaml:1:1: name: required field is missing (add `name:`)",
    ]


def test_yaml_merge_keys_are_refused(write_spec: WriteSpec) -> None:
    path = write_spec(
        """
        jobs:
          base: &base {command: [python, a.py]}
          other:
            <<: *base
        """
    )
    assert problems(path) == [
        "mizzen.yaml:7:5: YAML merge keys (<<) are not supported (use an environment overlay or repeat the fields)"
    ]


def test_wrong_api_version_and_kind(write_spec: WriteSpec) -> None:
    path = write_spec("apiVersion: mizzen.io/v1\nkind: Projet\nname: x\n", head=False)
    assert problems(path) == [
        "mizzen.yaml:1:1: apiVersion: got 'mizzen.io/v1'; expected 'mizzen.io/v1alpha1' (did you mean 'mizzen.io/v1alpha1'?)",
        "mizzen.yaml:2:1: kind: got 'Projet'; expected 'Project' (did you mean 'Project'?)",
    ]


def test_missing_file(tmp_path: Path) -> None:
    assert problems(tmp_path / "mizzen.yaml") == [
        "mizzen.yaml: file not found (run `mizzen init` to create one, or pass --file)"
    ]


def test_find_spec_walks_up(design_spec: Path) -> None:
    deep = design_spec.parent / "a" / "b"
    deep.mkdir(parents=True)
    assert find_spec(deep) == design_spec.resolve()


def test_load_from_text(tmp_path: Path) -> None:
    text = "apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: x\njobs: {a: {command: echo hi}}\n"
    loaded = spec.load(tmp_path / "mizzen.yaml", text=text)
    assert loaded.project.jobs["a"].command == ["echo", "hi"]


def test_scalars_become_strings_where_strings_are_expected(write_spec: WriteSpec) -> None:
    path = write_spec(
        """
        config: {PORT: 5432, DEBUG: true, RATIO: 0.5}
        jobs:
          a: {command: [python, a.py], args: [--n, 3, --flag, false], env: {N: 3}}
        services:
          m: {model: m, version: 3}
        """
    )
    p = spec.load(path).project
    assert p.config == {"PORT": "5432", "DEBUG": "true", "RATIO": "0.5"}
    assert p.jobs["a"].args == ["--n", "3", "--flag", "false"]
    assert p.jobs["a"].env == {"N": "3"}
    assert p.services["m"].version == "3"


def test_deep_merge_rules() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1, "c": {"k": 1}}
    over = {"a": {"y": [3], "z": 2}, "b": {"now": "a map"}, "c": None}
    assert deep_merge(base, over) == {"a": {"x": 1, "y": [3], "z": 2}, "b": {"now": "a map"}}
    assert base["a"] == {"x": 1, "y": [1, 2]}  # inputs untouched


def test_workload_names_are_unique_across_sections(write_spec: WriteSpec) -> None:
    path = write_spec(
        """
        jobs:
          train: {command: [python, train.py]}
        services:
          train: {command: [python, serve.py]}
        """
    )
    assert problems(path) == [
        "mizzen.yaml:7:3: services.train: 'train' is also a job; workload names must be unique across jobs, pipelines and services"
    ]


def test_image_short_form(write_spec: WriteSpec) -> None:
    path = write_spec("image: registry.example.com/team/drives\n")
    image = spec.load(path).project.image
    assert image is not None and image.repository == "registry.example.com/team/drives"
    assert image.dockerfile == "Dockerfile"


def test_image_with_a_tag_is_refused(write_spec: WriteSpec) -> None:
    path = write_spec("image: registry.example.com/team/drives:1.0\n")
    assert problems(path) == [
        "mizzen.yaml:4:1: image.repository: 'registry.example.com/team/drives:1.0' carries a tag or digest; "
        "give the repository only (tags come from git, see `mizzen build`)"
    ]
