"""The `mizzen init` Dockerfile builds, on a local stand-in for python:3.11-slim.

No base image can be pulled here, so the stand-in is a busybox root file system with three
shell shims: `useradd` (appends to /etc/passwd), `pip` (records its arguments and installs a
fake `mizzen` script) and `python`. It exercises the Dockerfile's own steps (the ARG base,
the user, the dependency layer before the code layer, WORKDIR, USER, .dockerignore), not pip.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from tests.build.build_helpers import git, mizzen, need
from tests.build.test_build_registry import http, image_config, registry_digest

from mizzen import __version__

pytestmark = pytest.mark.registry

BASE = "localhost/mizzen-test/python:3.11-slim"
APPLETS = ["sh", "echo", "cat", "mkdir", "chmod", "chown", "printf", "ls", "env", "true"]
SHIMS = {
    "usr/sbin/useradd": '#!/bin/sh\nfor last; do :; done\necho "$last:x:1000:1000::/home/$last:/bin/sh" >> /etc/passwd\n'
    'echo "$last:x:1000:" >> /etc/group\nmkdir -p "/home/$last"\nchown 1000:1000 "/home/$last"\n',
    "usr/local/bin/pip": '#!/bin/sh\necho "$@" > /usr/local/lib/pip-args.txt\n'
    "printf '#!/bin/sh\\necho mizzen-shim \"$@\"\\n' > /usr/local/bin/mizzen\nchmod 755 /usr/local/bin/mizzen\n",
    "usr/local/bin/python": '#!/bin/sh\necho "python-shim $@"\n',
}


@pytest.fixture(scope="module")
def stand_in_base(containers_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    podman = need("podman")
    root = tmp_path_factory.mktemp("rootfs")
    for folder in ("bin", "etc", "tmp", "usr/sbin", "usr/local/bin", "usr/local/lib", "home"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "bin" / "busybox").write_bytes(Path(need("/bin/busybox")).read_bytes())
    (root / "bin" / "busybox").chmod(0o755)
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    for rel, text in SHIMS.items():
        (root / rel).write_text(text)
        (root / rel).chmod(0o755)
    archive = subprocess.run(
        ["tar", "-C", str(root), "-c", "."], capture_output=True, check=True
    ).stdout
    subprocess.run(
        [
            podman,
            "import",
            "--change",
            "ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/bin",
            "-",
            BASE,
        ],
        input=archive,
        capture_output=True,
        check=True,
    )
    return BASE


def layers(registry: str, name: str, tag: str) -> list[tuple[str, dict[str, bytes]]]:
    """(digest, {path: content}) of each layer, base first."""
    _, body = http(f"http://{registry}/v2/{name}/manifests/{tag}")
    out = []
    for layer in json.loads(body)["layers"]:
        _, blob = http(f"http://{registry}/v2/{name}/blobs/{layer['digest']}", accept="*/*")
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
            files = {
                m.name.lstrip("./"): (tar.extractfile(m) or io.BytesIO()).read()
                if m.isfile()
                else b""
                for m in tar.getmembers()
            }
        out.append((layer["digest"], files))
    return out


def test_init_dockerfile_builds_on_a_local_base(
    stand_in_base: str, registry: str, tmp_path: Path
) -> None:
    need("buildah")
    root = tmp_path / "fresh"
    mizzen(tmp_path, "init", str(root))
    spec = root / "mizzen.yaml"
    spec.write_text(
        spec.read_text()
        .replace("registry.example.com/team/fresh", f"{registry}/team/fresh")
        .replace("# insecure: true", "insecure: true")
    )
    (root / ".mizzen/secrets/local.env").write_text(
        "MIZZEN_SECRET_DB_PASSWORD=never-in-the-image\n"
    )
    wheel = f"mizzen-{__version__}-py3-none-any.whl"  # what pip --find-links /tmp/wheels sees
    (root / "wheels" / wheel).write_bytes(b"a wheel")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-qm", "init")
    args = [
        "build",
        "--push",
        "--builder",
        "buildah",
        "--build-arg",
        f"BASE_IMAGE={stand_in_base}",
        "-o",
        "json",
    ]
    first = json.loads(mizzen(root, *args).stdout)
    tag = first["tags"][0]
    assert first["digest"] == registry_digest(registry, "team/fresh", tag)

    config = image_config(registry, "team/fresh", tag)
    assert config["User"] == "1000" and config["WorkingDir"] == "/app"
    assert config["Labels"]["org.opencontainers.image.revision"] == git(root, "rev-parse", "HEAD")

    found = layers(registry, "team/fresh", tag)
    files = [names for _, names in found]
    pip_layer = next(i for i, names in enumerate(files) if "usr/local/lib/pip-args.txt" in names)
    code_layer = next(i for i, names in enumerate(files) if "app/jobs/hello.py" in names)
    assert pip_layer < code_layer
    pip_args = files[pip_layer]["usr/local/lib/pip-args.txt"].decode().split()
    assert pip_args == [
        "install",
        "--find-links",
        "/tmp/wheels",
        f"mizzen=={__version__}",
        "-r",
        "/tmp/requirements.txt",
    ]
    wheel_layer = next(i for i, names in enumerate(files) if f"tmp/wheels/{wheel}" in names)
    assert wheel_layer < pip_layer
    assert "usr/local/bin/mizzen" in files[pip_layer]  # so `mizzen exec` exists in the image
    every = set().union(*files)
    assert not any(n.startswith(("app/.mizzen", "app/.git/")) for n in every), "dockerignore leaks"
    assert "app/notebooks/explore.ipynb" in every and "app/.github/workflows/mizzen.yml" in every

    # a code change rebuilds only the code layer: the dependency layer is reused
    (root / "jobs" / "hello.py").write_text(
        (root / "jobs" / "hello.py").read_text() + "\n# changed\n"
    )
    git(root, "commit", "-qam", "change code")
    second = json.loads(mizzen(root, *args).stdout)
    again = layers(registry, "team/fresh", second["tags"][0])
    assert [d for d, _ in again][: pip_layer + 1] == [d for d, _ in found][: pip_layer + 1]
    assert again[code_layer][0] != found[code_layer][0]
