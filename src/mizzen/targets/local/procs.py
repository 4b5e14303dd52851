"""Child processes on this machine: one process group each, stopped as a whole.

Every process starts in its own session (so a Ctrl-C in the terminal reaches only mizzen,
which then stops the children in order), its output is read line by line, and whatever it
spawned goes down with it: SIGTERM to the group, SIGKILL after a grace period.

They also die with mizzen when it cannot stop them itself (`kill -9`, a crash): on Linux
each child gets SIGTERM the moment its parent dies (PR_SET_PDEATHSIG), and on every POSIX
system a keeper process (`keeper.py`), which learns each group as it starts, stops the
groups that are still there when mizzen's end of its pipe closes, grandchildren included.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from mizzen.targets.local.cgroup import MemoryState, oom_reason, read_memory

DEFAULT_GRACE = 10.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class LaunchLike(Protocol):
    argv: list[str]
    label: str
    env: dict[str, str]


@dataclass
class Command:
    """A process to start (what `launch.Launch` is for a plan job)."""

    argv: list[str]
    label: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Stop:
    """Asks running processes to stop: a cancel (Ctrl-C) or a deadline of the whole run."""

    status: Literal["cancelled", "failed"] = "cancelled"
    reason: str = ""
    event: threading.Event = field(default_factory=threading.Event)
    _wakes: list[threading.Event] = field(default_factory=list)
    _children: list[Stop] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, reason: str, status: Literal["cancelled", "failed"] = "cancelled") -> None:
        with self._lock:
            if not self.event.is_set():
                self.reason, self.status = reason, status
                self.event.set()
            wakes = list(self._wakes)
            children = list(self._children)
        for wake in wakes:
            wake.set()
        for child in children:
            child.set(self.reason, self.status)

    def child(self) -> Stop:
        """A Stop set whenever this one is, that can also be set on its own."""
        kid = Stop()
        with self._lock:
            self._children.append(kid)
            if self.event.is_set():
                kid.set(self.reason, self.status)
        return kid

    def is_set(self) -> bool:
        return self.event.is_set()

    def wait(self, seconds: float) -> bool:
        return self.event.wait(seconds)

    def subscribe(self, wake: threading.Event) -> None:
        with self._lock:
            self._wakes.append(wake)
            if self.event.is_set():
                wake.set()

    def unsubscribe(self, wake: threading.Event) -> None:
        with self._lock:
            if wake in self._wakes:
                self._wakes.remove(wake)


@dataclass
class Outcome:
    status: Literal["succeeded", "failed", "cancelled"]
    code: int | None = 0
    reason: str = ""
    retryable: bool = True

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


@dataclass
class Limits:
    deadline: float | None = None  # time.monotonic() value
    timeout_text: str = ""
    memory_bytes: int | None = None
    memory_text: str = ""


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    return [pid for pid, group, _ in _proc_table() if group == pgid]


def group_rss(pgid: int) -> int:
    """Resident memory of a whole process group, in bytes."""
    return sum(rss for _, group, rss in _proc_table() if group == pgid)


def _proc_table() -> list[tuple[int, int, int]]:
    """(pid, pgid, rss bytes) of every live process."""
    proc = Path("/proc")
    if not proc.is_dir():
        return _ps_table()
    out = []
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2 :].split()
        if fields[0] in (b"Z", b"X"):
            continue
        out.append((int(entry.name), int(fields[2]), int(fields[21]) * _PAGE))
    return out


def _ps_table() -> list[tuple[int, int, int]]:
    text = subprocess.run(
        ["ps", "-axo", "pid=,pgid=,stat=,rss="], capture_output=True, text=True, check=False
    ).stdout
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and not parts[2].startswith("Z"):
            out.append((int(parts[0]), int(parts[1]), int(parts[3]) * 1024))
    return out


class Keeper:
    """The keeper process of this mizzen process (one, started with the first group)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._groups: dict[int, float] = {}

    def watch(self, pgid: int, grace: float) -> None:
        with self._lock:
            self._groups[pgid] = grace
            self._send(f"+{pgid} {grace:g}\n")

    def forget(self, pgid: int) -> None:
        with self._lock:
            if self._groups.pop(pgid, None) is not None:
                self._send(f"-{pgid}\n")

    def _send(self, line: str) -> None:
        for _ in range(2):
            if self._proc is None or self._proc.poll() is not None:
                if not self._start():
                    return
                line = "".join(f"+{g} {t:g}\n" for g, t in self._groups.items())
            assert self._proc is not None and self._proc.stdin is not None
            try:
                self._proc.stdin.write(line.encode())
                self._proc.stdin.flush()
                return
            except OSError:  # it died: start another, tell it every group
                self._proc = None

    def _start(self) -> bool:
        script = Path(__file__).with_name("keeper.py")
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(script)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError:
            self._proc = None
            return False
        return True


KEEPER = Keeper()
PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None = None


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child get SIGTERM when its parent dies (Linux only)."""
    global _prctl
    if not sys.platform.startswith("linux"):
        return None
    if _prctl is None:
        import ctypes

        try:
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            return None
    prctl, parent = _prctl, os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died while this child was being forked
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_group(pgid: int, grace: float) -> None:
    """SIGTERM the group, SIGKILL whatever is left after `grace` seconds."""
    signal_group(pgid, signal.SIGTERM)
    end = time.monotonic() + grace
    while time.monotonic() < end:
        if not group_members(pgid):
            return
        time.sleep(0.05)
    signal_group(pgid, signal.SIGKILL)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


class ProcessSet:
    """Processes started together (one step attempt); if one fails, all are stopped."""

    def __init__(
        self,
        launches: Sequence[LaunchLike],
        *,
        env: dict[str, str],
        cwd: str | Path,
        on_line: Callable[[str, str], object],  # return value ignored
        stop: Stop | None = None,
        limits: Limits | None = None,
        grace: float = DEFAULT_GRACE,
        forward: bool = False,
    ) -> None:
        self.launches = list(launches)
        self.env = env
        self.cwd = str(cwd)
        self.on_line = on_line
        self.stop = stop or Stop()
        self.limits = limits or Limits()
        self.grace = grace
        self.procs: list[subprocess.Popen[bytes]] = []
        self._readers: list[threading.Thread] = []
        self._wake = threading.Event()
        self._memory: MemoryState | None = None

    def run(self) -> Outcome:
        self.stop.subscribe(self._wake)
        self._memory = read_memory()  # the OOM killer's count before: see `_why`
        try:
            started = self._start()
            if started is not None:
                return started
            return self._watch()
        finally:
            self.stop.unsubscribe(self._wake)
            for proc in self.procs:
                stop_group(proc.pid, min(self.grace, 2.0))
                proc.wait()
                KEEPER.forget(proc.pid)
            for reader in self._readers:
                reader.join(timeout=2.0)

    def _start(self) -> Outcome | None:
        for launch in self.launches:
            try:
                proc = subprocess.Popen(
                    launch.argv,
                    cwd=self.cwd,
                    env={**self.env, **launch.env},
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=die_with_parent(),  # one prctl call in the child: no locks taken
                )
            except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
                self._stop_all(0.0)
                what = (
                    f"command not found: {launch.argv[0]}"
                    if isinstance(exc, FileNotFoundError)
                    else f"cannot start {launch.argv[0]}: {exc.strerror}"
                )
                return Outcome("failed", 127, what, retryable=False)
            self.procs.append(proc)
            KEEPER.watch(proc.pid, self.grace)
            for target in (self._read, self._reap):
                thread = threading.Thread(target=target, args=(proc, launch.label), daemon=True)
                thread.start()
                if target == self._read:
                    self._readers.append(thread)
        return None

    def _read(self, proc: subprocess.Popen[bytes], label: str) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            self.on_line(label, raw.decode("utf-8", "replace").rstrip("\r\n"))
        proc.stdout.close()

    def _reap(self, proc: subprocess.Popen[bytes], label: str) -> None:
        proc.wait()
        self._wake.set()

    def _watch(self) -> Outcome:
        limits = self.limits
        while True:
            codes = [p.poll() for p in self.procs]
            failed = next((c for c in codes if c not in (None, 0)), None)
            if failed is not None:
                self._stop_all(self.grace)
                return Outcome("failed", failed, self._why(failed))
            if all(c == 0 for c in codes):
                return Outcome("succeeded", 0)
            if self.stop.is_set():
                self._stop_all(self.grace)
                code = next((p.returncode for p in self.procs if p.returncode), None)
                return Outcome(self.stop.status, code, self.stop.reason, retryable=False)
            if limits.deadline is not None and time.monotonic() >= limits.deadline:
                self._stop_all(self.grace)
                return Outcome(
                    "failed", None, f"timed out after {limits.timeout_text}", retryable=False
                )
            if limits.memory_bytes is not None and self._rss() > limits.memory_bytes:
                self._stop_all(0.0)
                return Outcome(
                    "failed",
                    None,
                    f"ran out of memory at its limit of {limits.memory_text} (stopped by "
                    "mizzen's memory watchdog); raise resources.memory",
                )
            wait = 0.5 if limits.memory_bytes is not None else 5.0
            if limits.deadline is not None:
                wait = max(0.0, min(wait, limits.deadline - time.monotonic()))
            self._wake.wait(wait)
            self._wake.clear()

    def _why(self, code: int) -> str:
        """How a process ended; a SIGKILL (or a shell's 137) while the cgroup's OOM kills
        went up was the kernel's OOM killer."""
        if code in (-signal.SIGKILL, 128 + signal.SIGKILL):
            oom = oom_reason(self._memory, read_memory())
            if oom is not None:
                return oom
        return describe_exit(code)

    def _rss(self) -> int:
        return sum(group_rss(p.pid) for p in self.procs)

    def _stop_all(self, grace: float) -> None:
        running = [p for p in self.procs if p.poll() is None or group_members(p.pid)]
        for proc in running:
            signal_group(proc.pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        end = time.monotonic() + grace
        while grace > 0 and time.monotonic() < end:
            if all(p.poll() is not None and not group_members(p.pid) for p in running):
                return
            time.sleep(0.05)
        for proc in running:
            signal_group(proc.pid, signal.SIGKILL)

    def signal_all(self, sig: int) -> None:
        for proc in self.procs:
            signal_group(proc.pid, sig)
