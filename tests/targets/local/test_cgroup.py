"""A step killed by the kernel's OOM killer is recorded as out of memory, with its limit."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mizzen.targets.local.cgroup import (
    MemoryState,
    Mount,
    cgroup_dir,
    oom_reason,
    parse_counter,
    parse_limit,
    parse_mountinfo,
    parse_proc_cgroup,
    quantity,
    read_memory,
    state_of,
)

V2_MOUNTINFO = """\
22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""
V2_CGROUP = "0::/kubepods.slice/kubepods-burstable.slice/cri-containerd-3f2a.scope\n"
V2_EVENTS = "low 0\nhigh 0\nmax 41\noom 2\noom_kill 1\noom_group_kill 0\n"

V1_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 /docker/ab12 /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V1_CGROUP = "9:name=systemd:/\n4:memory:/docker/ab12\n1:cpu,cpuacct:/docker/ab12\n0::/\n"
V1_OOM_CONTROL = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"


def test_v2_files_are_parsed() -> None:
    v2, v1 = parse_mountinfo(V2_MOUNTINFO)
    assert v2 == Mount("/sys/fs/cgroup", "/", 2) and v1 is None
    path, memory = parse_proc_cgroup(V2_CGROUP)
    assert memory is None
    assert cgroup_dir(v2, path) == Path(
        "/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/cri-containerd-3f2a.scope"
    )
    assert parse_counter(V2_EVENTS, "oom_kill") == 1 and parse_counter(V2_EVENTS, "oom") == 2
    assert parse_limit("268435456\n") == 268435456 and parse_limit("max\n") is None


def test_v1_files_are_parsed() -> None:
    v2, v1 = parse_mountinfo(V1_MOUNTINFO)
    assert v1 == Mount("/sys/fs/cgroup/memory", "/docker/ab12", 1)
    assert v2 == Mount("/sys/fs/cgroup/unified", "/", 2)
    unified, memory = parse_proc_cgroup(V1_CGROUP)
    assert (unified, memory) == ("/", "/docker/ab12")
    assert cgroup_dir(v1, memory) == Path("/sys/fs/cgroup/memory")  # the mount shows only it
    assert parse_counter(V1_OOM_CONTROL, "oom_kill") == 3
    assert parse_counter("oom_kill_disable 0\nunder_oom 0\n", "oom_kill") is None  # < 4.13
    assert parse_limit("9223372036854771712\n") is None  # v1's "no limit"


def test_state_of_fixture_trees(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    pod = v2 / "kubepods" / "pod1"
    pod.mkdir(parents=True)
    (v2 / "kubepods" / "memory.max").write_text("1073741824\n")
    (pod / "memory.max").write_text("max\n")  # limited by its parent
    (pod / "memory.events").write_text(V2_EVENTS)
    assert state_of(pod, 2, v2) == MemoryState(1, None, 1 << 30)
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "memory.oom_control").write_text(V1_OOM_CONTROL)
    (v1 / "memory.failcnt").write_text("17\n")
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (v1 / "memory.stat").write_text("cache 0\nhierarchical_memory_limit 268435456\n")
    assert state_of(v1, 1, v1) == MemoryState(3, 17, 256 << 20)
    assert state_of(tmp_path / "none", 1, tmp_path) is None


def test_the_reason_names_the_limit() -> None:
    before, after = MemoryState(0, 0, 256 << 20), MemoryState(1, 9, 256 << 20)
    assert oom_reason(before, after) == (
        "ran out of memory (OOMKilled) at its limit of 256Mi; raise resources.memory"
    )
    assert oom_reason(before, before) is None  # a plain SIGKILL
    assert oom_reason(MemoryState(None, 3, None), MemoryState(None, 4, None)) == (
        "ran out of memory (OOMKilled: this machine's memory ran out)"
    )
    assert oom_reason(None, after) is None
    assert [quantity(n) for n in (512, 2048, 256 << 20, 3 << 29, 4 << 30)] == [
        "512",
        "2Ki",
        "256Mi",
        "1.5Gi",
        "4Gi",
    ]


# --- the kernel's OOM killer, for real ------------------------------------------------------
HOG = "import time\nblock = bytearray(400 * 1024 * 1024)\nblock[::4096] = b'x' * len(block[::4096])\ntime.sleep(30)\n"
LIMIT = 160 << 20


@pytest.fixture
def memory_cgroup() -> Iterator[Path]:
    """A v1 or v2 memory cgroup of 160Mi (no swap) under this process's own; root only."""
    v2_mount, v1_mount = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    v2_path, v1_path = parse_proc_cgroup(Path("/proc/self/cgroup").read_text())
    mine = None
    if v2_mount and v2_path is not None:
        here = cgroup_dir(v2_mount, v2_path)
        if "memory" in (here / "cgroup.subtree_control").read_text(errors="ignore").split():
            mine = (here, 2)
    if mine is None and v1_mount and v1_path is not None:
        mine = (cgroup_dir(v1_mount, v1_path), 1)
    if mine is None or read_memory() is None:
        pytest.skip("no memory cgroup controller here")
    parent, version = mine
    group = parent / f"mizzen-test-{secrets.token_hex(3)}"
    try:
        group.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a memory cgroup here: {exc}")
    try:
        if version == 2:
            (group / "memory.max").write_text(str(LIMIT))
            (group / "memory.swap.max").write_text("0")
        else:
            (group / "memory.limit_in_bytes").write_text(str(LIMIT))
            swap = group / "memory.memsw.limit_in_bytes"
            if swap.exists():
                swap.write_text(str(LIMIT))
        yield group
    finally:
        for _ in range(100):  # the killed processes leave the cgroup as they are reaped
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def _in_cgroup(group: Path) -> Callable[[], None]:
    procs = str(group / "cgroup.procs")

    def enter() -> None:
        with open(procs, "w") as fh:
            fh.write(str(os.getpid()))

    return enter


@pytest.mark.parametrize("how", ["exec", "run"])
def test_a_step_the_oom_killer_took_is_recorded_as_out_of_memory(
    memory_cgroup: Path, tmp_path: Path, how: str
) -> None:
    (tmp_path / "hog.py").write_text(HOG)
    store = tmp_path / ".mizzen" / "store"
    (tmp_path / "mizzen.yaml").write_text(
        "apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: demo\n"
        f"jobs:\n  hog: {{command: [{json.dumps(sys.executable)}, hog.py]}}\n"
    )
    env = {**os.environ, "MIZZEN_STORE": store.as_uri(), "MIZZEN_WORKLOAD": "hog"}
    argv = ["exec", "--", sys.executable, "hog.py"] if how == "exec" else ["run", "hog"]
    if how == "run":
        env.pop("MIZZEN_STORE")
    done = subprocess.run(
        [sys.executable, "-m", "mizzen.cli.main", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_in_cgroup(memory_cgroup),
    )
    from mizzen.storage.base import open_store
    from mizzen.storage.runs import RunStore

    (rec,) = RunStore(open_store(store.as_uri())).list("hog")
    assert done.returncode == (137 if how == "exec" else 1), done.stderr
    want = "ran out of memory (OOMKilled) at its limit of 160Mi; raise resources.memory"
    assert rec.steps[0].reason == want and rec.reason == f"hog {want}"
    assert "killed by SIGKILL" not in done.stderr and want in done.stderr
