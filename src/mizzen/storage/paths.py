"""Whether a path that came from a store may be joined to a local folder.

A store is input like any other: a `model.json` someone edited, or an object key, may hold
an absolute path, `..`, or a Windows drive or separator, any of which would make the join
land outside the folder it is meant for.
"""

from __future__ import annotations

from pathlib import Path, PureWindowsPath


def unsafe(rel: object) -> str:
    """Why `rel` cannot be a relative path inside a folder ('' when it can)."""
    if not isinstance(rel, str) or not rel:
        return "it is not a file name"
    if "\x00" in rel:
        return "it holds a NUL character"
    if rel.startswith("/") or PureWindowsPath(rel).drive:
        return "it is an absolute path"
    if "\\" in rel:
        return "it holds a backslash"
    parts = rel.split("/")
    if ".." in parts:
        return "it climbs out of the folder with '..'"
    if any(p in ("", ".") for p in parts):
        return "it has an empty or '.' part"
    return ""


def inside(root: Path, path: Path) -> bool:
    """`path` is `root` or below it once symbolic links are followed."""
    return path.resolve().is_relative_to(root.resolve())
