"""`mizzen build` for real: buildah, podman and the docker CLI against a real registry."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from tests.build.build_helpers import git, mizzen, need

from mizzen.build.builders import BuilderUnavailable, NoEngineError, select_builder
from mizzen.build.records import list_records, resolve_image

pytestmark = pytest.mark.registry

MANIFESTS = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
COPY app.txt /app/app.txt
RUN ["/bin/busybox", "sh", "-c", "echo built > /built"]
"""


# --- reading the registry independently of mizzen's own client --------------------------------


def http(url: str, accept: str = MANIFESTS, method: str = "GET") -> tuple[dict[str, str], bytes]:
    req = urllib.request.Request(url, headers={"Accept": accept}, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return {k.lower(): v for k, v in resp.headers.items()}, resp.read()


def registry_tags(registry: str, name: str) -> set[str]:
    _, body = http(f"http://{registry}/v2/{name}/tags/list", accept="application/json")
    return set(json.loads(body)["tags"] or [])


def registry_digest(registry: str, name: str, tag: str) -> str:
    headers, _ = http(f"http://{registry}/v2/{name}/manifests/{tag}", method="HEAD")
    return headers["docker-content-digest"]


def image_config(registry: str, name: str, tag: str) -> dict[str, Any]:
    _, body = http(f"http://{registry}/v2/{name}/manifests/{tag}")
    config_digest = json.loads(body)["config"]["digest"]
    _, blob = http(f"http://{registry}/v2/{name}/blobs/{config_digest}", accept="*/*")
    return dict(json.loads(blob)["config"])


# --- a project -------------------------------------------------------------------------------


def make_project(root: Path, repository: str, dockerfile: str = DOCKERFILE) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mizzen.yaml").write_text(
        "apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: app\n"
        f"image:\n  repository: {repository}\n  insecure: true\n"
        "jobs:\n  hello:\n    command: [echo, hello]\n"
    )
    (root / "Dockerfile").write_text(dockerfile)
    shutil.copy("/bin/busybox", root / "busybox")
    (root / "app.txt").write_text("v1\n")
    (root / ".gitignore").write_text(".mizzen/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-qm", "first")
    return root


def build(root: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    out = mizzen(root, "build", "-o", "json", *args, env=env)
    result: dict[str, Any] = json.loads(out.stdout)
    result["stderr"] = out.stderr
    return result


# --- tests -----------------------------------------------------------------------------------


def test_buildah_build_push_skip_dirty_force(
    containers_env: dict[str, str], registry: str, tmp_path: Path
) -> None:
    need("buildah")
    repository = f"{registry}/team/flow"
    root = make_project(tmp_path / "flow", repository)
    sha = git(root, "rev-parse", "HEAD")
    spec_digest = json.loads(mizzen(root, "validate", "-o", "json").stdout)["digest"]

    first = build(root, "--push", "--builder", "buildah")
    assert first["tags"] == [sha[:12], "main"] and first["pushed"] and not first["skipped"]
    assert {sha[:12], "main"} <= registry_tags(registry, "team/flow")
    assert first["digest"] == registry_digest(registry, "team/flow", sha[:12])
    assert registry_digest(registry, "team/flow", "main") == first["digest"]
    labels = image_config(registry, "team/flow", sha[:12])["Labels"]
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["org.opencontainers.image.source"] == root.resolve().as_uri()
    assert labels["org.opencontainers.image.created"].endswith("Z")
    assert labels["io.mizzen.spec-digest"] == spec_digest
    assert "latest" not in registry_tags(registry, "team/flow")
    assert resolve_image(root, repository) == f"{repository}@{first['digest']}"

    again = build(root, "--push")
    assert again["skipped"] and again["digest"] == first["digest"]
    assert (
        "already in the registry" in again["stderr"]
        and "not rebuilt, not pushed" in again["stderr"]
    )
    assert registry_digest(registry, "team/flow", sha[:12]) == first["digest"]

    (root / "app.txt").write_text("v2, uncommitted\n")
    dirty = build(root, "--push", "--builder", "buildah")
    assert len(dirty["tags"]) == 1 and dirty["tags"][0].startswith(f"{sha[:12]}-dirty.")
    assert dirty["digest"] == registry_digest(registry, "team/flow", dirty["tags"][0])
    assert dirty["digest"] != first["digest"]
    assert resolve_image(root, repository) == f"{repository}@{dirty['digest']}"

    (root / "app.txt").write_text("v3, another change\n")
    other = build(root, "--builder", "buildah")
    assert other["tags"][0] != dirty["tags"][0] and not other["pushed"] and other["digest"] is None

    (root / "app.txt").write_text("v1\n")
    assert resolve_image(root, repository) == f"{repository}@{first['digest']}"
    forced = build(root, "--push", "--force", "--builder", "buildah")
    assert not forced["skipped"] and forced["digest"] != first["digest"]
    assert registry_digest(registry, "team/flow", sha[:12]) == forced["digest"]

    listed = json.loads(mizzen(root, "images", "-o", "json").stdout)
    assert len(listed) == len(list_records(root, repository)) == 5
    table = mizzen(root, "images").stdout
    assert "TAG\tDIGEST\tGIT SHA\tWHEN\tPUSHED\tBUILDER" in table and "reused" in table


def test_new_branch_tag_is_added_without_rebuild(
    containers_env: dict[str, str], registry: str, tmp_path: Path
) -> None:
    need("buildah")
    root = make_project(tmp_path / "branch", f"{registry}/team/branch")
    first = build(root, "--push", "--builder", "buildah")
    git(root, "checkout", "-q", "-b", "feature/Odd_name")
    git(root, "tag", "v1.0.0")
    again = build(root, "--push")
    assert again["skipped"]
    assert {"feature-Odd_name", "v1.0.0"} <= registry_tags(registry, "team/branch")
    assert registry_digest(registry, "team/branch", "v1.0.0") == first["digest"]


def test_podman_build_and_push(
    containers_env: dict[str, str], registry: str, tmp_path: Path
) -> None:
    need("podman")
    root = make_project(tmp_path / "pod", f"{registry}/team/pod")
    sha = git(root, "rev-parse", "HEAD")
    out = build(root, "--push", "--builder", "podman", "--tag", "v9", "--tag", "candidate")
    assert out["tags"] == ["v9", "candidate"] and out["builder"] == "podman"
    assert {"v9", "candidate"} <= registry_tags(registry, "team/pod")
    assert out["digest"] == registry_digest(registry, "team/pod", "v9")
    assert (
        image_config(registry, "team/pod", "v9")["Labels"]["org.opencontainers.image.revision"]
        == sha
    )


def test_docker_cli_build_and_push(docker_host: str, registry: str, tmp_path: Path) -> None:
    root = make_project(tmp_path / "dock", f"{registry}/team/dock")
    # podman's Docker API has no BuildKit: the CLI's classic builder talks to it
    out = build(
        root,
        "--push",
        "--builder",
        "docker",
        "-v",
        env={"DOCKER_HOST": docker_host, "DOCKER_BUILDKIT": "0"},
    )
    assert out["builder"] == "docker"
    assert out["digest"] == registry_digest(registry, "team/dock", out["tags"][0])
    labels = image_config(registry, "team/dock", out["tags"][0])["Labels"]
    assert labels["org.opencontainers.image.revision"] == git(root, "rev-parse", "HEAD")
    assert (
        "STEP 4/" in out["stderr"] and "echo built" in out["stderr"]
    )  # -v streams the builder's output


def test_failed_build_shows_the_step_and_its_last_lines(
    containers_env: dict[str, str], tmp_path: Path
) -> None:
    need("buildah")
    broken = DOCKERFILE + 'RUN ["/bin/busybox", "sh", "-c", "echo the-last-words; exit 3"]\n'
    root = make_project(tmp_path / "broken", "127.0.0.1:9/team/broken", broken)
    out = mizzen(root, "build", "--builder", "buildah", check=False)
    assert out.returncode == 1
    assert (
        "buildah build failed at STEP 5/" in out.stderr and "the-last-words; exit 3" in out.stderr
    )
    assert "| the-last-words" in out.stderr
    assert not list_records(root)


def test_auto_detection_order_and_errors(
    containers_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need("podman")
    docker = need("docker")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    assert select_builder().name == "podman"  # docker CLI without an engine is passed over
    with pytest.raises(NoEngineError, match="docker CLI found but no engine"):
        select_builder("docker")
    only_docker = tmp_path / "bin"
    only_docker.mkdir()
    (only_docker / "docker").symlink_to(docker)
    monkeypatch.setenv("PATH", str(only_docker))
    with pytest.raises(
        NoEngineError, match=r"docker CLI found but no engine .* no other builder works"
    ):
        select_builder()
    (only_docker / "docker").unlink()
    with pytest.raises(BuilderUnavailable, match="no image builder works here") as err:
        select_builder()
    assert not isinstance(err.value, NoEngineError) and "install Docker" in err.value.hint


def test_no_git_needs_a_tag(containers_env: dict[str, str], tmp_path: Path) -> None:
    root = tmp_path / "nogit"
    root.mkdir()
    (root / "mizzen.yaml").write_text(
        "apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: nogit\nimage:\n  repository: 127.0.0.1:9/x\n"
    )
    (root / "Dockerfile").write_text("FROM scratch\n")
    out = mizzen(root, "build", check=False)
    assert out.returncode == 2 and "no git repository" in out.stderr and "--tag" in out.stderr
