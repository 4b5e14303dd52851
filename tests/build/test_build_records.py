"""Build records, `resolve_image`, repository parsing, and the build command's input errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.build.build_helpers import git, mizzen

from mizzen.build.records import (
    BuildRecord,
    list_records,
    resolve_build,
    resolve_image,
    save_record,
)
from mizzen.build.registry import DOCKER_HUB, parse_repository

REPO = "registry.example.com/team/app"


def record(
    sha: str,
    digest: str | None,
    *,
    pushed: bool = True,
    dirty: bool = False,
    created: float = 0.0,
    repository: str = REPO,
) -> BuildRecord:
    return BuildRecord(
        repository=repository,
        tags=[sha[:12]],
        git_sha=sha,
        dirty=dirty,
        builder="buildah",
        spec_digest="sha256:x",
        created=created,
        digest=digest,
        pushed=pushed,
    )


def test_resolve_prefers_the_clean_head_then_the_newest_pushed(tmp_path: Path) -> None:
    assert resolve_image(tmp_path, REPO) is None
    git(tmp_path, "init", "-q")
    (tmp_path / "a").write_text("a")
    git(tmp_path, "add", "a")
    git(tmp_path, "commit", "-qm", "a")
    head = git(tmp_path, "rev-parse", "HEAD")
    save_record(tmp_path, record(head, "sha256:" + "1" * 64, created=100))
    save_record(tmp_path, record("f" * 40, "sha256:" + "2" * 64, created=200))
    save_record(tmp_path, record("e" * 40, None, pushed=False, created=300))
    save_record(tmp_path, record(head, "sha256:" + "3" * 64, created=400, repository="other/repo"))
    assert resolve_image(tmp_path, REPO) == f"{REPO}@sha256:{'1' * 64}"
    assert resolve_build(tmp_path, REPO)[1] == ""  # type: ignore[index]  # HEAD's own build
    (tmp_path / "a").write_text("dirty")
    assert resolve_image(tmp_path, REPO) == f"{REPO}@sha256:{'2' * 64}"
    _, note = resolve_build(tmp_path, REPO)  # type: ignore[misc]
    assert "built from ffffffffffff" in note and f"{head[:12]} with uncommitted changes" in note
    assert [r.created for r in list_records(tmp_path, REPO)] == [300, 200, 100]
    assert len(list_records(tmp_path)) == 4


def test_unreadable_records_are_skipped(tmp_path: Path) -> None:
    save_record(tmp_path, record("a" * 40, "sha256:" + "1" * 64))
    (tmp_path / ".mizzen/builds/broken.json").write_text("{not json")
    assert len(list_records(tmp_path)) == 1


@pytest.mark.parametrize(
    ("repository", "host", "name"),
    [
        ("registry.example.com/team/app", "registry.example.com", "team/app"),
        ("localhost:5000/app", "localhost:5000", "app"),
        ("127.0.0.1:5000/a/b/c", "127.0.0.1:5000", "a/b/c"),
        ("localhost/app", "localhost", "app"),
        ("team/app", DOCKER_HUB, "team/app"),
        ("app", DOCKER_HUB, "library/app"),
    ],
)
def test_parse_repository(repository: str, host: str, name: str) -> None:
    ref = parse_repository(repository)
    assert (ref.host, ref.name) == (host, name)


def test_build_without_an_image_section_or_dockerfile(tmp_path: Path) -> None:
    (tmp_path / "mizzen.yaml").write_text(
        "apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: bare\n"
    )
    out = mizzen(tmp_path, "build", check=False)
    assert out.returncode == 2 and "no `image:` section" in out.stderr
    (tmp_path / "mizzen.yaml").write_text(
        "apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: bare\nimage:\n  repository: r.example.com/bare\n  dockerfile: docker/Dockerfile\n"
    )
    out = mizzen(tmp_path, "build", check=False)
    assert (
        out.returncode == 2
        and "image.dockerfile" in out.stderr
        and "docker/Dockerfile" in out.stderr
    )
    out = mizzen(tmp_path, "build", "--build-arg", "NOEQUALS", check=False)
    assert out.returncode == 2 and "expected KEY=VALUE" in out.stderr


def test_images_lists_nothing_yet(tmp_path: Path) -> None:
    (tmp_path / "mizzen.yaml").write_text(
        "apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: bare\n"
    )
    assert mizzen(tmp_path, "images", "-o", "json").stdout.strip() == "[]"
