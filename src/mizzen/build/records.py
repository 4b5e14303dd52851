"""Build records in `.mizzen/builds/`: one JSON file per build, written atomically.

`resolve_image` is what `render` and `release` call to pin `repository@sha256:...` by default.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BUILDS_DIR = Path(".mizzen") / "builds"


@dataclass
class BuildRecord:
    repository: str
    tags: list[str]
    git_sha: str | None
    dirty: bool
    builder: str
    spec_digest: str
    created: float = field(default_factory=time.time)
    digest: str | None = None
    pushed: bool = False
    platform: str | None = None
    skipped: bool = False  # the registry already had the tag: nothing was built

    @property
    def tag(self) -> str:
        return self.tags[0]

    @property
    def pinned(self) -> str | None:
        return f"{self.repository}@{self.digest}" if self.digest else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def builds_dir(project_root: Path) -> Path:
    return project_root / BUILDS_DIR


def save_record(project_root: Path, record: BuildRecord) -> Path:
    folder = builds_dir(project_root)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(record.created))
    path = folder / f"{stamp}-{int(record.created * 1e6) % 1_000_000:06d}-{record.tag}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.to_dict(), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def list_records(project_root: Path, repository: str | None = None) -> list[BuildRecord]:
    """Recorded builds, newest first (unreadable files are skipped)."""
    out: list[BuildRecord] = []
    folder = builds_dir(project_root)
    for file in folder.glob("*.json") if folder.is_dir() else []:
        try:
            record = BuildRecord.from_dict(json.loads(file.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if repository is None or record.repository == repository:
            out.append(record)
    out.sort(key=lambda r: r.created, reverse=True)
    return out


def resolve_image(project_root: Path, repository: str) -> str | None:
    """`repository@sha256:...` of the pushed build of the clean git HEAD, else of the newest
    pushed build of `repository`, else None."""
    found = resolve_build(project_root, repository)
    return found[0].pinned if found else None


def resolve_build(project_root: Path, repository: str) -> tuple[BuildRecord, str] | None:
    """The pushed build `resolve_image` picks, and a note when it is not the build of the
    code checked out now ('' when it is)."""
    from mizzen.build.tags import read_git_state

    pushed = [r for r in list_records(project_root, repository) if r.pushed and r.digest]
    if not pushed:
        return None
    state = read_git_state(project_root)
    if state is not None and not state.dirty:
        for record in pushed:
            if record.git_sha == state.sha and not record.dirty:
                return record, ""
    newest = pushed[0]
    made_from = (newest.git_sha or "no commit")[:12] + (
        " with uncommitted changes" if newest.dirty else ""
    )
    now = (
        "no git commit"
        if state is None
        else state.sha[:12] + (" with uncommitted changes" if state.dirty else "")
    )
    return newest, (
        f"using the newest pushed image, built from {made_from}, while the code here is {now}; "
        "`mizzen build --push` to release this code"
    )
