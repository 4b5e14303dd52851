"""Test images for the real cluster in ../shared/k8s, built without a daemon or a registry.

An image is three layers, each a plain tar, written as a docker-archive that containerd
imports (`ctr images import`):

- base: Debian bookworm minbase with python3 (debootstrap), a user 1000, `python` -> python3;
- deps: the locked third-party packages the example needs, installed with uv `--target` for
  Debian's CPython 3.11 (`PYTHONPATH=/opt/mizzen/lib`);
- app: this checkout's own wheel (`--no-deps`), the `mizzen` entry point, and the project
  under `/app`.

base and deps are cached under $MIZZEN_TEST_CACHE (default ~/.cache/mizzen-test), keyed by
what they are made of (the debootstrap line; uv.lock and the package list), so only the app
layer is rebuilt when the code changes.

    python tests/cluster/image.py examples/drives      # build, import, print the reference
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("MIZZEN_K8S_STATE", "/tmp/mizzen-k8s"))
CACHE = Path(os.environ.get("MIZZEN_TEST_CACHE", Path.home() / ".cache" / "mizzen-test"))
SITE = "/opt/mizzen/lib"
MIRROR_FALLBACK = "http://deb.debian.org/debian"
BASE_PACKAGES = "python3,python-is-python3,ca-certificates"
# What the example's steps import in a pod (the notebook step runs papermill + ipykernel).
DEPS = [".[models,demo,serve,datasets]", "papermill", "ipykernel", "nbconvert"]
DEPS_EXTRAS = ["models", "demo", "serve", "notebook", "datasets"]


def log(message: str) -> None:
    print(f"[image] {message}", file=sys.stderr, flush=True)


def _mirror() -> str:
    for source in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in source.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    return MIRROR_FALLBACK


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()[:16]


def _tar_dir(root: Path, out: Path) -> None:
    """A layer tar of `root`'s contents, root-owned unless uid/gid were set on purpose."""
    tmp = out.with_suffix(".partial")
    subprocess.run(
        ["tar", "--numeric-owner", "-C", str(root), "-cf", str(tmp), "."],
        check=True,
    )
    tmp.replace(out)


def base_layer() -> Path:
    mirror = _mirror()
    key = _digest(f"bookworm minbase {BASE_PACKAGES} {mirror} v2".encode())
    out = CACHE / f"base-{key}.tar"
    if out.exists():
        return out
    if shutil.which("debootstrap") is None:
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "debootstrap"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mizzen-base-", dir=CACHE) as tmp:
        root = Path(tmp) / "root"
        log(f"debootstrap bookworm ({BASE_PACKAGES}) from {mirror}")
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={BASE_PACKAGES}",
                "bookworm",
                str(root),
                mirror,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with open(root / "etc/passwd", "a") as f:
            f.write("app:x:1000:1000:app:/home/app:/bin/sh\n")
        with open(root / "etc/group", "a") as f:
            f.write("app:x:1000:\n")
        home = root / "home/app"
        home.mkdir(parents=True, exist_ok=True)
        os.chown(home, 1000, 1000)
        for junk in (
            "var/cache/apt/archives",
            "var/lib/apt/lists",
            "usr/share/doc",
            "usr/share/man",
        ):
            shutil.rmtree(root / junk, ignore_errors=True)
        for node in (root / "dev").iterdir():  # the runtime mounts its own /dev
            if node.is_dir() and not node.is_symlink():
                shutil.rmtree(node)
            else:
                node.unlink()
        _tar_dir(root, out)
    return out


def deps_layer() -> Path:
    lock = (REPO / "uv.lock").read_bytes()
    key = _digest(lock, json.dumps([DEPS, DEPS_EXTRAS]).encode())
    out = CACHE / f"deps-{key}.tar"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    uv = shutil.which("uv") or "uv"
    with tempfile.TemporaryDirectory(prefix="mizzen-deps-", dir=CACHE) as tmp:
        stage = Path(tmp) / "root"
        pins = Path(tmp) / "pins.txt"
        extras = [a for e in DEPS_EXTRAS for a in ("--extra", e)]
        subprocess.run(
            [
                uv,
                "export",
                "--frozen",
                "--no-dev",
                "--no-hashes",
                "--no-emit-project",
                "-q",
                *extras,
                "-o",
                str(pins),
            ],
            cwd=REPO,
            check=True,
        )
        log("installing the locked dependencies for Debian's python 3.11")
        subprocess.run(
            [
                uv,
                "pip",
                "install",
                "-q",
                "--target",
                str(stage) + SITE,
                "--python-version",
                "3.11",
                "--python-platform",
                "x86_64-manylinux_2_36",
                "--compile-bytecode",
                "-c",
                str(pins),
                *DEPS,
            ],
            cwd=REPO,
            check=True,
        )
        # mizzen itself goes in the app layer (it changes with every commit)
        for path in (stage / SITE.lstrip("/")).glob("mizzen*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        _tar_dir(stage, out)
    return out


def wheel() -> Path:
    out = Path(tempfile.mkdtemp(prefix="mizzen-wheel-"))
    uv = shutil.which("uv") or "uv"
    subprocess.run([uv, "build", "--wheel", "-q", "--out-dir", str(out)], cwd=REPO, check=True)
    (found,) = out.glob("mizzen-*.whl")
    return found


ENTRY = f"""#!/usr/bin/python3
import sys
sys.path.insert(0, "{SITE}")
from mizzen.cli.main import main
sys.exit(main())
"""


def app_layer(project: Path, dest: Path) -> Path:
    uv = shutil.which("uv") or "uv"
    with tempfile.TemporaryDirectory(prefix="mizzen-app-") as tmp:
        stage = Path(tmp) / "root"
        whl = wheel()
        subprocess.run(
            [
                uv,
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--target",
                str(stage) + SITE,
                "--python-version",
                "3.11",
                "--python-platform",
                "x86_64-manylinux_2_36",
                "--compile-bytecode",
                str(whl),
            ],
            check=True,
        )
        shutil.rmtree(whl.parent, ignore_errors=True)
        for junk in (stage / SITE.lstrip("/") / "bin",):
            shutil.rmtree(junk, ignore_errors=True)
        bin_dir = stage / "usr/local/bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "mizzen").write_text(ENTRY)
        (bin_dir / "mizzen").chmod(0o755)
        shutil.copytree(
            project,
            stage / "app",
            ignore=shutil.ignore_patterns(".mizzen", "__pycache__", ".git", "*.pyc"),
        )
        _tar_dir(stage, dest)
    return dest


def _sha256_file(path: Path) -> str:
    if path.parent == CACHE:  # cached layers never change under their name: hash them once
        known = path.with_suffix(".sha256")
        if known.exists() and known.stat().st_mtime >= path.stat().st_mtime:
            return known.read_text()
        digest = _sha256_stream(path)
        known.write_text(digest)
        return digest
    return _sha256_stream(path)


def _sha256_stream(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def archive(name: str, layers: list[Path], out: Path) -> str:
    """A docker-archive of `layers` tagged `localhost/NAME:<digest of the layers>`."""
    diff_ids = ["sha256:" + _sha256_file(p) for p in layers]
    tag = f"localhost/{name}:{_digest(''.join(diff_ids).encode())}"
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": "1000",
            "WorkingDir": "/app",
            "Env": [
                "PATH=/usr/local/bin:/usr/bin:/bin",
                f"PYTHONPATH={SITE}",
                "HOME=/home/app",
                "PYTHONUNBUFFERED=1",
                "LANG=C.UTF-8",
            ],
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    config_bytes = json.dumps(config).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [
        {
            "Config": config_name,
            "RepoTags": [tag],
            "Layers": [f"{i}/layer.tar" for i in range(len(layers))],
        }
    ]
    with tarfile.open(out, "w") as t:
        for i, layer in enumerate(layers):
            t.add(layer, f"{i}/layer.tar")
        for arcname, data in (
            (config_name, config_bytes),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return tag


def ctr() -> list[str]:
    return ["ctr", "-a", str(STATE / "containerd" / "containerd.sock"), "-n", "k8s.io"]


def imported(tag: str) -> bool:
    out = subprocess.run([*ctr(), "images", "ls", "-q"], capture_output=True, text=True)
    return tag in out.stdout.split()


def build_and_import(project: Path, name: str | None = None) -> str:
    """Build the image of `project` (cached layers reused) and import it into the cluster's
    containerd; returns its reference."""
    project = project.resolve()
    name = name or f"mizzen-test-{project.name}"
    base, deps = base_layer(), deps_layer()
    with tempfile.TemporaryDirectory(prefix="mizzen-image-") as tmp:
        app = app_layer(project, Path(tmp) / "app.tar")
        out = Path(tmp) / "image.tar"
        tag = archive(name, [base, deps, app], out)
        if not imported(tag):
            log(f"importing {tag}")
            subprocess.run(
                [*ctr(), "images", "import", str(out)], check=True, stdout=subprocess.DEVNULL
            )
    return tag


if __name__ == "__main__":
    print(
        build_and_import(Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "examples" / "drives"))
    )
