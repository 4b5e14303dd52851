"""Tag computation: pure functions, then the git reader against real repositories."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.build.build_helpers import git

from mizzen.build.tags import (
    GitState,
    compute_tags,
    dirty_hash,
    read_git_state,
    sanitize_tag,
    source_url,
)
from mizzen.errors import UsageError

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_clean_tree_gets_short_sha_git_tags_and_branch() -> None:
    tags = compute_tags(GitState(SHA, branch="main", tags=("v1.2.0",)))
    assert tags.primary == "0123456789ab"
    assert tags.all == ["0123456789ab", "v1.2.0", "main"]


def test_dirty_tree_gets_only_the_dirty_tag() -> None:
    tags = compute_tags(GitState(SHA, branch="main", tags=("v1",), dirty_hash="abc123abc123"))
    assert tags.all == ["0123456789ab-dirty.abc123abc123"]


def test_detached_head_has_no_branch_tag() -> None:
    assert compute_tags(GitState(SHA, branch=None)).all == ["0123456789ab"]


@pytest.mark.parametrize(
    ("name", "tag"),
    [
        ("feature/x", "feature-x"),
        ("Feature//Weird  name!", "Feature-Weird-name"),
        ("-leading.dots", "leading.dots"),
        (".hidden", "hidden"),
        ("ünïcode/ß", "n-code"),
        ("x" * 300, "x" * 128),
        ("latest", None),
        ("///", None),
    ],
)
def test_branch_names_are_sanitised(name: str, tag: str | None) -> None:
    assert sanitize_tag(name) == tag


def test_never_latest() -> None:
    tags = compute_tags(GitState(SHA, branch="latest", tags=("latest", "v2")))
    assert "latest" not in tags.all
    with pytest.raises(UsageError, match="moving tag"):
        compute_tags(None, ["latest"])


def test_no_git_needs_an_explicit_tag() -> None:
    with pytest.raises(UsageError, match="no git repository") as err:
        compute_tags(None)
    assert "--tag" in err.value.hint
    assert compute_tags(None, ["v1", "v1", "candidate"]).all == ["v1", "candidate"]
    with pytest.raises(UsageError, match="not a valid image tag"):
        compute_tags(None, ["bad/tag"])


def test_dirty_hash_depends_on_diff_and_untracked_content() -> None:
    assert dirty_hash(b"", []) is None
    a = dirty_hash(b"diff", [])
    assert a != dirty_hash(b"diff2", [])
    assert dirty_hash(b"", [("new.txt", b"1")]) != dirty_hash(b"", [("new.txt", b"2")])
    assert dirty_hash(b"", [("a", b"1"), ("b", b"2")]) == dirty_hash(
        b"", [("b", b"2"), ("a", b"1")]
    )


def test_source_url_strips_credentials(tmp_path: Path) -> None:
    assert (
        source_url("https://user:tok@github.com/o/r.git", tmp_path) == "https://github.com/o/r.git"
    )
    assert source_url(None, tmp_path).startswith("file://")


# --- real git --------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "feature/odd")
    (tmp_path / "a.txt").write_text("one\n")
    (tmp_path / ".gitignore").write_text("ignored.txt\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "first")
    return tmp_path


def test_no_git_or_no_commit_reads_as_none(tmp_path: Path) -> None:
    assert read_git_state(tmp_path) is None
    git(tmp_path, "init", "-q")
    assert read_git_state(tmp_path) is None


def test_clean_repo(repo: Path) -> None:
    state = read_git_state(repo)
    assert state is not None and not state.dirty
    assert state.sha == git(repo, "rev-parse", "HEAD")
    assert compute_tags(state).all == [state.short, "feature-odd"]


def test_ignored_files_and_mizzen_state_keep_the_tree_clean(repo: Path) -> None:
    (repo / "ignored.txt").write_text("x")
    (repo / ".mizzen" / "builds").mkdir(parents=True)
    (repo / ".mizzen" / "builds" / "r.json").write_text("{}")
    state = read_git_state(repo)
    assert state is not None and not state.dirty


def test_dirty_trees_get_distinct_tags(repo: Path) -> None:
    (repo / "a.txt").write_text("two\n")
    first = read_git_state(repo)
    (repo / "a.txt").write_text("three\n")
    second = read_git_state(repo)
    (repo / "a.txt").write_text("one\n")
    (repo / "new.txt").write_text("untracked\n")
    third = read_git_state(repo)
    (repo / "new.txt").write_text("untracked, changed\n")
    fourth = read_git_state(repo)
    hashes = [s.dirty_hash for s in (first, second, third, fourth) if s is not None]
    assert len(hashes) == 4 and None not in hashes and len(set(hashes)) == 4
    assert compute_tags(first).primary.endswith(f"-dirty.{hashes[0]}")
    (repo / "a.txt").write_text("two\n")
    (repo / "new.txt").unlink()
    assert read_git_state(repo).dirty_hash == hashes[0]  # type: ignore[union-attr]


def test_staged_changes_count_as_dirty(repo: Path) -> None:
    (repo / "a.txt").write_text("staged\n")
    git(repo, "add", "a.txt")
    state = read_git_state(repo)
    assert state is not None and state.dirty


def test_git_tag_and_detached_head(repo: Path) -> None:
    git(repo, "tag", "v1.0.0")
    git(repo, "tag", "-a", "release/2024", "-m", "annotated")
    git(repo, "checkout", "-q", "--detach")
    state = read_git_state(repo)
    assert state is not None and state.branch is None
    assert compute_tags(state).all == [state.short, "release-2024", "v1.0.0"]


def test_project_in_a_subfolder_sees_the_whole_repository(repo: Path) -> None:
    sub = repo / "project"
    sub.mkdir()
    (sub / "mizzen.yaml").write_text("x")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "sub")
    assert not read_git_state(sub).dirty  # type: ignore[union-attr]
    (repo / "a.txt").write_text("changed outside the project\n")
    assert read_git_state(sub).dirty  # type: ignore[union-attr]
