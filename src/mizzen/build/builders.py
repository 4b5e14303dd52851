"""Image builders: one `Builder` base, docker / podman / buildah behind a name-keyed registry.

Auto-detection tries docker, podman, buildah in that order and takes the first that works.
Builders run as child processes that inherit the environment, so `DOCKER_HOST`,
`CONTAINERS_CONF`, `CONTAINERS_STORAGE_CONF`, `BUILDAH_ISOLATION`, `REGISTRY_AUTH_FILE` and the
like apply as the user set them.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import tempfile
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from mizzen.errors import EXIT_FAILED, MizzenError, UsageError

LineSink = Callable[[str], None]
TAIL_LINES = 20
STEP_RE = re.compile(r"^(STEP \d+/\d+: .*|Step \d+/\d+ : .*|#\d+ \[[^\]]*\d+/\d+\] .*)$")
INSTALL_HINT = "install Docker (https://docs.docker.com/get-docker/), or podman or buildah (e.g. `apt-get install podman buildah`)"


class BuilderUnavailable(MizzenError):
    """No usable builder (or the one asked for does not work here)."""


class NoEngineError(BuilderUnavailable):
    """The docker CLI is installed but no engine answers it."""


class BuildFailed(MizzenError):
    """The image build (or push) failed; carries the failing step and the last lines."""

    exit_code = EXIT_FAILED

    def __init__(self, what: str, step: str | None, tail: list[str], returncode: int) -> None:
        lines = "\n".join(f"  | {line}" for line in tail)
        where = f" at {step}" if step else ""
        super().__init__(f"{what} failed{where} (exit {returncode}); last lines:\n{lines}")
        self.step = step
        self.tail = tail
        self.returncode = returncode


@dataclass
class BuildRequest:
    context: Path
    dockerfile: Path
    refs: list[str]
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    platform: str | None = None


class Builder(ABC):
    name: ClassVar[str]
    binary: ClassVar[str]

    def check(self) -> None:
        """Raise `BuilderUnavailable` (with the reason) unless this builder can build here."""
        if shutil.which(self.binary) is None:
            raise BuilderUnavailable(f"{self.binary} is not installed", hint=INSTALL_HINT)
        self._probe()

    def _probe(self) -> None:
        return None

    @abstractmethod
    def build_argv(self, req: BuildRequest) -> list[str]: ...

    @abstractmethod
    def push_argv(self, ref: str, insecure: bool, digest_file: Path) -> list[str]: ...

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def build(self, req: BuildRequest, on_line: LineSink) -> None:
        run_streamed(self.build_argv(req), on_line, what=f"{self.name} build", env=self.env())

    def push(self, ref: str, insecure: bool, on_line: LineSink) -> str | None:
        """Push `ref`; return the digest the builder reports, when it reports one."""
        with tempfile.TemporaryDirectory(prefix="mizzen-push-") as tmp:
            digest_file = Path(tmp) / "digest"
            output = run_streamed(
                self.push_argv(ref, insecure, digest_file),
                on_line,
                what=f"{self.name} push {ref}",
                env=self.env(),
            )
            if digest_file.is_file():
                return digest_file.read_text().strip() or None
        found = re.findall(r"digest: (sha256:[0-9a-f]{64})", "\n".join(output))
        return found[-1] if found else None


def _common_flags(req: BuildRequest) -> list[str]:
    argv = ["-f", str(req.dockerfile)]
    for ref in req.refs:
        argv += ["-t", ref]
    for key, value in req.build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in req.labels.items():
        argv += ["--label", f"{key}={value}"]
    if req.target:
        argv += ["--target", req.target]
    if req.platform:
        argv += ["--platform", req.platform]
    return argv


class DockerBuilder(Builder):
    name = "docker"
    binary = "docker"

    def _probe(self) -> None:
        out = _quick([self.binary, "version", "--format", "{{.Server.Version}}"])
        if out.returncode != 0 or not out.stdout.strip():
            reason = _last_line(out.stderr) or "no answer"
            raise NoEngineError(
                f"docker CLI found but no engine answers it ({reason})",
                hint="start Docker Desktop or dockerd, point DOCKER_HOST at an engine, or use --builder podman|buildah",
            )

    def env(self) -> dict[str, str]:
        return {**os.environ, "BUILDKIT_PROGRESS": os.environ.get("BUILDKIT_PROGRESS", "plain")}

    def build_argv(self, req: BuildRequest) -> list[str]:
        return [self.binary, "build", *_common_flags(req), str(req.context)]

    def push_argv(self, ref: str, insecure: bool, digest_file: Path) -> list[str]:
        # docker decides about plain-HTTP registries in the engine (insecure-registries);
        # 127.0.0.1 and localhost are allowed there by default.
        return [self.binary, "push", ref]


class _ContainersBuilder(Builder):
    """podman and buildah share flags, storage and login (containers-storage, auth.json)."""

    def _isolation(self) -> list[str]:
        # chroot isolation needs no container runtime, cgroups or systemd: it builds in CI
        # containers and on hosts where runc/crun cannot start; BUILDAH_ISOLATION overrides.
        return [] if os.environ.get("BUILDAH_ISOLATION") else ["--isolation", "chroot"]

    def build_argv(self, req: BuildRequest) -> list[str]:
        return [
            self.binary,
            "build",
            *self._isolation(),
            "--layers",
            *_common_flags(req),
            str(req.context),
        ]

    def push_argv(self, ref: str, insecure: bool, digest_file: Path) -> list[str]:
        tls = ["--tls-verify=false"] if insecure else []
        return [self.binary, "push", *tls, "--digestfile", str(digest_file), ref]


class PodmanBuilder(_ContainersBuilder):
    name = "podman"
    binary = "podman"

    def _probe(self) -> None:
        out = _quick([self.binary, "info", "--format", "{{.Store.GraphRoot}}"])
        if out.returncode != 0:
            raise BuilderUnavailable(
                f"podman does not work here ({_last_line(out.stderr)})",
                hint="`podman info` shows the problem; on macOS/Windows run `podman machine start`",
            )


class BuildahBuilder(_ContainersBuilder):
    name = "buildah"
    binary = "buildah"

    def _probe(self) -> None:
        out = _quick([self.binary, "version"])
        if out.returncode != 0:
            raise BuilderUnavailable(f"buildah does not work here ({_last_line(out.stderr)})")


# name -> "module:class", in auto-detection order
BUILDERS: dict[str, str] = {
    "docker": "mizzen.build.builders:DockerBuilder",
    "podman": "mizzen.build.builders:PodmanBuilder",
    "buildah": "mizzen.build.builders:BuildahBuilder",
}


def get_builder(name: str) -> Builder:
    if name not in BUILDERS:
        raise UsageError(f"unknown builder {name!r}", hint=f"builders: {', '.join(BUILDERS)}")
    module, cls = BUILDERS[name].split(":")
    builder: Builder = getattr(importlib.import_module(module), cls)()
    return builder


def select_builder(name: str | None = None) -> Builder:
    """The builder asked for (checked), or the first of docker, podman, buildah that works."""
    if name:
        builder = get_builder(name)
        builder.check()
        return builder
    reasons: list[str] = []
    no_engine: NoEngineError | None = None
    for candidate in BUILDERS:
        builder = get_builder(candidate)
        try:
            builder.check()
        except NoEngineError as exc:
            no_engine = exc
            reasons.append(f"{candidate}: {exc.message}")
        except BuilderUnavailable as exc:
            reasons.append(f"{candidate}: {exc.message}")
        else:
            return builder
    if no_engine is not None:
        others = "; ".join(r for r in reasons if not r.startswith("docker:"))
        raise NoEngineError(
            f"{no_engine.message}, and no other builder works ({others})", hint=no_engine.hint
        )
    raise BuilderUnavailable(
        "no image builder works here: " + "; ".join(reasons), hint=INSTALL_HINT
    )


# --- processes --------------------------------------------------------------------------


def run_streamed(
    argv: list[str], on_line: LineSink, *, what: str, env: dict[str, str] | None = None
) -> list[str]:
    """Run `argv`, hand every output line to `on_line`; raise `BuildFailed` on a non-zero exit."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    step: str | None = None
    lines: list[str] = []
    try:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    except FileNotFoundError:
        raise BuilderUnavailable(f"{argv[0]} is not installed", hint=INSTALL_HINT) from None
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n")
            if STEP_RE.match(line):
                step = line
            tail.append(line)
            lines.append(line)
            on_line(line)
    finally:
        if proc.poll() is None and proc.stdout.closed is False:
            proc.stdout.close()
        code = proc.wait()
    if code != 0:
        raise BuildFailed(what, step, list(tail), code)
    return lines


def _quick(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"{argv[0]} did not answer within 30s")
    except OSError as exc:
        return subprocess.CompletedProcess(argv, 127, "", str(exc))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
