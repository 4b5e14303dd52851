"""What a validated spec depends on besides its own bytes, so a cached result cannot go stale.

While a `Recording` is active, every project file read through `read_text` (a sql job's SQL
file, the time zone a schedule names) and every variable read through `environ` is noted
with its content hash or value. `fingerprint()` adds the code that ran: every loaded module's
file by inode, size and mtime in ns (Python's own bytecode cache trusts mtime in seconds and
size; not ctime, which any new hard link to a file bumps, as installers sharing a cache
make), and the importable names of every folder imports search. `fresh()` tells whether a fingerprint still holds.

Only the interpreter's core is imported here, so checking a cache entry costs a few stats.
"""

from __future__ import annotations

import _imp
import io
import os
import sys
import time

try:  # the hash without hashlib's import (3.12 renamed the module)
    from _sha2 import sha256  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the Python version
    try:
        from _sha256 import sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
    except ImportError:
        from hashlib import sha256  # type: ignore[assignment,unused-ignore]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    Stat = tuple[int, int, int] | None
    Pairs = tuple[tuple[str, str | None], ...]
    Fingerprint = tuple[tuple[tuple[str, Stat], ...], Pairs, Pairs, Pairs]

FORMAT = 1  # bump when an entry's shape or the key changes
_active: list[Recording] = []
_CHANGED = "changed while read"  # a file that differed between two reads: matches nothing
# what an import picks up, and the installed distributions (their versions are in the name)
_SUFFIXES = (".py", ".pyc", ".pth", ".dist-info", ".egg-info", *_imp.extension_suffixes())
# A file's timestamps come from a coarse clock (a few ms), whole seconds on some filesystems.
_TICK = 20 * 10**6
_COARSE = 10**9
_IMPORTED = time.time_ns()


class Recording:
    """The files and variables read while it is active (nested recordings all see them)."""

    def __init__(self) -> None:
        self.files: dict[str, str | None] = {}
        self.env: dict[str, str | None] = {}

    def __enter__(self) -> Recording:
        _active.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _active.remove(self)


def digest(data: bytes) -> str:
    return str(sha256(data).hexdigest())


def read_text(path: str | os.PathLike[str], encoding: str | None = None) -> str:
    """A file's text, as `Path.read_text` gives it, recorded with its hash (or its absence:
    a file that appears later is a change too). Raises OSError as `read_text` does."""
    name = os.path.abspath(path)
    try:
        with open(name, "rb") as fh:
            data = fh.read()
    except OSError:
        _note_file(name, None)
        raise
    _note_file(name, digest(data))
    return io.TextIOWrapper(io.BytesIO(data), encoding=encoding).read()


def environ(name: str) -> str | None:
    """An environment variable, recorded with its value."""
    value = os.environ.get(name)
    for rec in _active:
        rec.env[name] = value
    return value


def note_zone(key: str) -> None:
    """Record the file `zoneinfo.ZoneInfo(key)` reads: the first in its search path, else the
    `tzdata` package's (the places searched before it are recorded as absent)."""
    environ("PYTHONTZPATH")
    import zoneinfo

    for folder in zoneinfo.TZPATH:
        name = os.path.join(folder, key)
        if os.path.isfile(name):
            _note_file(name, _hash_file(name))
            return
        _note_file(name, None)
    from importlib.util import find_spec

    try:
        found = find_spec("tzdata")
    except (ImportError, ValueError):
        found = None
    for folder in (found.submodule_search_locations or []) if found else []:
        name = os.path.join(folder, "zoneinfo", *key.split("/"))
        _note_file(name, _hash_file(name))


def _note_file(name: str, hashed: str | None) -> None:
    for rec in _active:
        seen = rec.files.setdefault(name, hashed)
        if seen != hashed:
            rec.files[name] = _CHANGED


def _hash_file(name: str) -> str | None:
    try:
        with open(name, "rb") as fh:
            return digest(fh.read())
    except OSError:
        return None


def _stat(name: str) -> Stat:
    try:
        st = os.stat(name)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def interpreter() -> str:
    """The interpreter, its flags and where it imports from (a key part)."""
    paths = [os.path.abspath(p) for p in sys.path]
    return "\0".join(
        [sys.version, sys.executable, repr(sys.flags), sys.implementation.cache_tag or "", *paths]
    )


def enabled() -> bool:
    """`MIZZEN_NO_CACHE` (any non-empty value) turns every spec and plan cache off."""
    return not os.environ.get("MIZZEN_NO_CACHE")


def fingerprint(reads: Recording, *, skip: Iterable[str] = ()) -> Fingerprint | None:
    """What a lookup re-checks: the code that ran (every loaded module's file), what imports
    could find instead (the importable names in each folder they searched or loaded from),
    and what the recording saw, less `skip` (files a key already holds). None when a module
    file changed after this process started: what ran may not be what is on disk."""
    files = {os.path.abspath(sys.executable)}
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if isinstance(name, str):
            files.add(os.path.abspath(name))
    since = _process_start_ns()
    stats: list[tuple[str, Stat]] = []
    for name in sorted(files):
        st = _stat(name)
        if st is None:
            return None  # a module not from a plain file (a zip): nothing to compare
        if st[2] >= since - (_COARSE if st[2] % 10**9 == 0 else _TICK):
            return None
        stats.append((name, st))
    folders = {os.path.dirname(f) for f in files} | {os.path.abspath(p) for p in sys.path}
    listed = tuple((folder, _importable(folder)) for folder in sorted(folders))
    skipped = set(skip)
    read = tuple(sorted((k, v) for k, v in reads.files.items() if k not in skipped))
    return tuple(stats), listed, read, tuple(sorted(reads.env.items()))


def fresh(fp: Fingerprint) -> bool:
    stats, listed, files, env = fp
    return (
        all(_stat(name) == st for name, st in stats)
        and all(_importable(folder) == names for folder, names in listed)
        and all(_hash_file(name) == hashed for name, hashed in files)
        and all(os.environ.get(name) == value for name, value in env)
    )


def _importable(folder: str) -> str | None:
    """A digest of the names in `folder` an import could pick up (packages, modules, .pth
    files) and of its distributions, so a module that would now shadow one that ran, or an
    installed, removed or upgraded distribution, is a change; other files are not."""
    try:
        entries = os.scandir(folder)
    except OSError:
        return None
    with entries:
        names = sorted(
            e.name
            for e in entries
            if not e.name.startswith(".")
            and (e.name.endswith(_SUFFIXES) or (e.name.isidentifier() and _is_dir(e)))
        )
    return digest("\0".join(names).encode(errors="surrogateescape"))


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _process_start_ns() -> int:
    """When this process started (wall clock), from /proc on Linux; elsewhere when this
    module was imported, less a margin."""
    try:
        with open("/proc/self/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        ticks = int(fields[19])
        boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        return time.time_ns() - (boot - ticks * 10**9 // os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return _IMPORTED - 5 * 10**9


def write_atomic(name: str, blob: bytes, *, keep: int = 32) -> None:
    """Write a cache entry atomically (a reader sees the old one or the new one) and keep the
    newest `keep` of its folder. A folder that cannot be written just means no cache."""
    from contextlib import suppress

    folder = os.path.dirname(name)
    tmp = f"{name}.tmp{os.getpid()}"
    try:
        os.makedirs(folder, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, name)
        prune(folder, keep=name, limit=keep)
    except OSError:
        with suppress(OSError):
            os.unlink(tmp)


def prune(folder: str, *, keep: str, limit: int) -> None:
    """The newest `limit` entries of `folder` stay (`keep` always)."""
    from contextlib import suppress

    entries = []
    for entry in os.scandir(folder):
        if ".tmp" not in entry.name:  # another process's entry, still being written
            with suppress(OSError):
                entries.append((entry.stat().st_mtime_ns, entry.path))
    for _, path in sorted(entries, reverse=True)[limit:]:
        if path != keep:
            with suppress(OSError):
                os.unlink(path)
