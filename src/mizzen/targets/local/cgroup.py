"""The memory cgroup this process runs in: its limit, and how many of its processes the
kernel's OOM killer took. A step's processes share it (locally and in a pod), so a child
that died of SIGKILL while the count went up ran out of memory.

cgroup v2: `memory.events` (`oom_kill N`), `memory.max` (`max` or bytes; the nearest
limited ancestor counts). cgroup v1: `memory.oom_control` (`oom_kill N`, kernel 4.13+;
else `memory.failcnt`, the times usage hit the limit), `memory.stat`'s
`hierarchical_memory_limit` or `memory.limit_in_bytes` (a huge number means none).

The parsing functions are pure (text in, numbers out); `read_memory` finds the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

UNLIMITED = 1 << 62  # v1 writes "no limit" as the largest page-aligned 64-bit number


@dataclass(frozen=True)
class Mount:
    point: str  # where it is mounted
    root: str  # the cgroup of the hierarchy shown at `point`
    version: int  # 1 or 2


@dataclass(frozen=True)
class MemoryState:
    oom_kills: int | None  # None: this kernel does not count them
    failcnt: int | None  # v1 only: times the usage hit the limit
    limit: int | None  # bytes; None: no limit


def parse_mountinfo(text: str) -> tuple[Mount | None, Mount | None]:
    """`/proc/self/mountinfo` -> (the cgroup2 mount, the v1 mount with the memory controller)."""
    v2 = v1 = None
    for line in text.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not sep or len(fields) < 5 or len(rest) < 3:
            continue
        fstype, options = rest[0], rest[2].split(",")
        if fstype == "cgroup2" and v2 is None:
            v2 = Mount(_unescape(fields[4]), fields[3], 2)
        elif fstype == "cgroup" and "memory" in options and v1 is None:
            v1 = Mount(_unescape(fields[4]), fields[3], 1)
    return v2, v1


def _unescape(path: str) -> str:
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")


def parse_proc_cgroup(text: str) -> tuple[str | None, str | None]:
    """`/proc/self/cgroup` -> (the v2 path, the v1 memory controller's path)."""
    v2 = v1 = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "" and v2 is None:
            v2 = path
        elif "memory" in controllers.split(","):
            v1 = path
    return v2, v1


def parse_counter(text: str, key: str) -> int | None:
    """The value of `key` in `key value` lines (memory.events, memory.oom_control, memory.stat)."""
    for line in text.splitlines():
        name, _, value = line.strip().partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return None


def parse_limit(text: str) -> int | None:
    """memory.max / memory.limit_in_bytes -> bytes, None for no limit."""
    value = text.strip()
    if not value.isdigit():
        return None  # "max"
    number = int(value)
    return None if number >= UNLIMITED else number


def cgroup_dir(mount: Mount, path: str) -> Path:
    """Where the cgroup `path` (from /proc/self/cgroup) is under `mount`."""
    root = mount.root.rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root) :]
    elif root:  # a namespaced or bind mount that shows only this cgroup
        path = ""
    return Path(mount.point) / path.lstrip("/")


def state_of(directory: Path, version: int, top: Path) -> MemoryState | None:
    """The counters and limit of the cgroup at `directory` (`top`: its mount point)."""
    if version == 2:
        events = _read(directory / "memory.events")
        if events is None:
            return None  # the memory controller is not enabled here
        limits = []
        here = directory
        while True:
            limit = parse_limit(_read(here / "memory.max") or "max")
            if limit is not None:
                limits.append(limit)
            if here == top or top not in here.parents:
                break
            here = here.parent
        return MemoryState(parse_counter(events, "oom_kill"), None, min(limits, default=None))
    control = _read(directory / "memory.oom_control")
    if control is None:
        return None
    stat = _read(directory / "memory.stat") or ""
    limit = parse_counter(stat, "hierarchical_memory_limit")
    failcnt = (_read(directory / "memory.failcnt") or "").strip()
    return MemoryState(
        parse_counter(control, "oom_kill"),
        int(failcnt) if failcnt.isdigit() else None,
        parse_limit(
            str(limit) if limit is not None else _read(directory / "memory.limit_in_bytes") or ""
        ),
    )


def read_memory(pid: int | str = "self") -> MemoryState | None:
    """The memory cgroup of `pid` (this process by default); None where there is none."""
    mountinfo, cgroups = _read(Path("/proc/self/mountinfo")), _read(Path(f"/proc/{pid}/cgroup"))
    if mountinfo is None or cgroups is None:
        return None
    v2_mount, v1_mount = parse_mountinfo(mountinfo)
    v2_path, v1_path = parse_proc_cgroup(cgroups)
    if v2_mount is not None and v2_path is not None:
        found = state_of(cgroup_dir(v2_mount, v2_path), 2, Path(v2_mount.point))
        if found is not None:
            return found
    if v1_mount is not None and v1_path is not None:
        return state_of(cgroup_dir(v1_mount, v1_path), 1, Path(v1_mount.point))
    return None


def _read(path: Path) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return None


def quantity(size: int) -> str:
    """Bytes as Kubernetes writes memory: 256Mi, 1.5Gi, 100000."""
    for unit, power in (("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)):
        scale = 1 << power
        if size >= scale:
            value = size / scale
            return f"{value:.0f}{unit}" if size % scale == 0 else f"{value:.1f}{unit}"
    return str(size)


def oom_reason(before: MemoryState | None, after: MemoryState | None) -> str | None:
    """Why a child that died of SIGKILL died, when the OOM killer did it (else None)."""
    if before is None or after is None:
        return None
    if before.oom_kills is not None and after.oom_kills is not None:
        killed = after.oom_kills > before.oom_kills
    else:
        killed = (after.failcnt or 0) > (before.failcnt or 0)
    if not killed:
        return None
    if after.limit is None:
        return "ran out of memory (OOMKilled: this machine's memory ran out)"
    return f"ran out of memory (OOMKilled) at its limit of {quantity(after.limit)}; raise resources.memory"
