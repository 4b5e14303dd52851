"""Image tags from git: pure functions over a `GitState`, plus one reader that fills it.

A clean tree gets the short sha, every git tag at HEAD and the sanitised branch name. A dirty
tree gets only `<short sha>-dirty.<hash of the uncommitted changes>`: it never borrows the
branch or release tags, and two different dirty trees never share a tag. `latest` is never
produced.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mizzen.errors import UsageError

SHORT_SHA = 12
DIRTY_HASH = 12
MAX_TAG = 128
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
RESERVED = frozenset({"latest"})
# Local state never makes a tree dirty (records are written there by the build itself).
IGNORED_PATHS = (".mizzen",)


@dataclass(frozen=True)
class GitState:
    sha: str
    branch: str | None = None  # None on a detached HEAD
    tags: tuple[str, ...] = ()
    dirty_hash: str | None = None  # None when the tree is clean
    remote: str | None = None

    @property
    def dirty(self) -> bool:
        return self.dirty_hash is not None

    @property
    def short(self) -> str:
        return self.sha[:SHORT_SHA]


@dataclass(frozen=True)
class TagSet:
    """The tags of one build; `primary` is the one looked up in the registry and recorded."""

    primary: str
    extra: tuple[str, ...] = field(default_factory=tuple)

    @property
    def all(self) -> list[str]:
        return [self.primary, *self.extra]


def sanitize_tag(name: str) -> str | None:
    """A valid OCI tag made from a branch or git tag name (`feature/x` -> `feature-x`)."""
    out = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    out = re.sub(r"-{2,}", "-", out)
    tag = out.lstrip(".-")[:MAX_TAG].rstrip(".-")
    if not tag or tag.lower() in RESERVED:
        return None
    return tag


def check_tag(tag: str) -> str:
    if not _TAG_RE.match(tag):
        raise UsageError(
            f"--tag {tag!r} is not a valid image tag",
            hint="letters, digits, '_', '.', '-'; at most 128 characters; not starting with '.' or '-'",
        )
    if tag.lower() in RESERVED:
        raise UsageError(
            f"--tag {tag!r} is refused: a moving tag cannot be pinned by a release",
            hint="use a version or the git sha",
        )
    return tag


def compute_tags(state: GitState | None, explicit: Sequence[str] = ()) -> TagSet:
    """Tags for a build. Explicit tags replace the git-derived ones; without git they are required."""
    if explicit:
        tags = _unique(check_tag(t) for t in explicit)
        return TagSet(tags[0], tuple(tags[1:]))
    if state is None:
        raise UsageError(
            "no git repository here: mizzen tags images from git",
            hint="run `git init && git commit`, or give a tag with --tag",
        )
    if state.dirty:
        return TagSet(f"{state.short}-dirty.{state.dirty_hash}")
    derived = [sanitize_tag(t) for t in state.tags]
    if state.branch:
        derived.append(sanitize_tag(state.branch))
    extra = [t for t in _unique(t for t in derived if t) if t != state.short]
    return TagSet(state.short, tuple(extra))


def dirty_hash(diff: bytes, untracked: Sequence[tuple[str, bytes]]) -> str | None:
    """Hash of the uncommitted changes: the diff against HEAD plus each untracked file's content."""
    if not diff and not untracked:
        return None
    h = hashlib.sha256(diff)
    for path, content in sorted(untracked):
        h.update(b"\0untracked\0" + path.encode() + b"\0" + hashlib.sha256(content).digest())
    return h.hexdigest()[:DIRTY_HASH]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- reading git ---------------------------------------------------------------------------


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, check=False)


def read_git_state(root: Path) -> GitState | None:
    """The git facts of the repository holding `root`; None when there is no git or no commit."""
    try:
        head = _git(root, "rev-parse", "--verify", "-q", "HEAD")
    except FileNotFoundError:
        return None
    if head.returncode != 0:
        return None
    sha = head.stdout.decode().strip()
    branch = _git(root, "symbolic-ref", "--short", "-q", "HEAD").stdout.decode().strip() or None
    tags = tuple(_git(root, "tag", "--points-at", "HEAD").stdout.decode().split())
    remote = _git(root, "remote", "get-url", "origin").stdout.decode().strip() or None
    return GitState(sha=sha, branch=branch, tags=tags, dirty_hash=_read_dirty(root), remote=remote)


def _read_dirty(root: Path) -> str | None:
    spec = [":/", *(f":(exclude){p}" for p in IGNORED_PATHS)]
    diff = _git(root, "diff", "HEAD", "--binary", "--no-ext-diff", "--", *spec).stdout
    listed = _git(
        root, "ls-files", "--others", "--exclude-standard", "-z", "--full-name", "--", *spec
    ).stdout
    top = Path(_git(root, "rev-parse", "--show-toplevel").stdout.decode().strip())
    untracked: list[tuple[str, bytes]] = []
    for raw in filter(None, listed.split(b"\0")):
        rel = raw.decode(errors="surrogateescape")
        path = top / rel
        content = (
            path.read_bytes()
            if path.is_file() and not path.is_symlink()
            else str(path.readlink() if path.is_symlink() else "").encode()
        )
        untracked.append((rel, content))
    return dirty_hash(diff, untracked)


def source_url(remote: str | None, root: Path) -> str:
    """The `org.opencontainers.image.source` value: the origin URL without credentials."""
    if not remote:
        return root.resolve().as_uri()
    return re.sub(r"^(\w+://)[^/@]+@", r"\1", remote)
