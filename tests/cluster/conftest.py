"""The cluster tier: a real single-node Kubernetes (../shared/k8s) and a real image of this
checkout, for everything that runs in a cluster.

The cluster is started once per test session (unless one is already up), in the background
as soon as the tests are collected, and stopped at the end if this session started it
(`MIZZEN_KEEP_CLUSTER=1` keeps it); the cluster tests run after all the others. Where no cluster can
start (no ../shared/k8s, not root) the tests skip with the reason; with `CI=true` that is
a failure. Tests are driven through the `mizzen` command, as a user would.

Tests marked `crds` need operator CRDs installed (objects accepted, no controller): they
run after every other cluster test, so the day-one tests see a cluster with no operator.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
K8S = SHARED / "k8s"
CRDS = SHARED / "crds"
STATE = Path(os.environ.get("MIZZEN_K8S_STATE", "/tmp/mizzen-k8s"))
MIZZEN = str(Path(sys.executable).parent / "mizzen")
EXAMPLE = REPO / "examples" / "drives"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The cluster tier runs after every other test (the cluster starts meanwhile), and the
    tests that install operator CRDs run last of all."""

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("cluster") is None:
            return 0
        return 2 if item.get_closest_marker("crds") else 1

    items.sort(key=rank)


class _Start:
    """`../shared/k8s/up`, started in the background when the session has cluster tests."""

    proc: subprocess.Popen[bytes] | None = None
    log = STATE.parent / "mizzen-k8s-up.log"
    began = 0.0


def _startable() -> bool:
    return (K8S / "up").exists() and os.geteuid() == 0 and not _alive()


def pytest_collection_finish(session: pytest.Session) -> None:
    wanted = any(item.get_closest_marker("cluster") for item in session.items)
    if wanted and _startable() and not session.config.option.collectonly:
        _Start.began = time.monotonic()
        with _Start.log.open("wb") as out:
            _Start.proc = subprocess.Popen(
                ["bash", str(K8S / "up")],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _Start.proc is None:
        return
    _Start.proc.wait(timeout=600)  # a session that ends early still stops what it started
    if os.environ.get("MIZZEN_KEEP_CLUSTER") != "1":
        subprocess.run(["bash", str(K8S / "down")], capture_output=True, timeout=300)


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the cluster tier must run in CI: {why}")
    pytest.skip(f"no cluster here: {why}")


def _alive() -> bool:
    pid = STATE / "apiserver.pid"
    if not pid.exists():
        return False
    try:
        os.kill(int(pid.read_text()), 0)
    except (OSError, ValueError):
        return False
    return (STATE / "admin.kubeconfig").exists()


@dataclass
class Kube:
    """The test cluster: kubeconfigs, kubectl, and namespaces made (and removed) per test."""

    admin: Path
    deployer: Path
    made: list[str] = field(default_factory=list)

    def kubectl(
        self, *args: str, user: str = "admin", check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        config = self.admin if user == "admin" else self.deployer
        proc = subprocess.run(
            ["kubectl", "--kubeconfig", str(config), *args],
            capture_output=True,
            text=True,
            input=stdin,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
        return proc

    def get(
        self,
        kind: str,
        name: str | None,
        ns: str | None,
        user: str = "admin",
        selector: str | None = None,
    ) -> Any:
        args = ["get", kind, *([name] if name else []), "-o", "json"]
        if ns:
            args += ["-n", ns]
        if selector:
            args += ["-l", selector]
        proc = self.kubectl(*args, user=user, check=False)
        if proc.returncode != 0:
            return None
        return json.loads(proc.stdout)

    def namespace(self, prefix: str = "t", *, deployer: bool = False) -> str:
        """A fresh namespace; with `deployer`, the user `deployer` is admin of it only."""
        name = f"{prefix}-{secrets.token_hex(3)}"
        self.kubectl("create", "namespace", name)
        self.made.append(name)
        if deployer:
            self.kubectl(
                "create",
                "rolebinding",
                "deployer",
                "--clusterrole=admin",
                "--user=deployer",
                "-n",
                name,
            )
        return name

    def cleanup(self) -> None:
        """Remove the namespaces made so far, their pods at once: a two-core node has room
        for few pods, and a terminating one still holds its CPU."""
        for ns in self.made:
            self.kubectl(
                "delete", "pods", "--all", "-n", ns, "--grace-period=0", "--force", check=False
            )
            self.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        self.made.clear()


@pytest.fixture(scope="session")
def kube() -> Iterator[Kube]:
    if not (K8S / "up").exists():
        _unavailable(f"{K8S}/up is missing")
    if os.geteuid() != 0:
        _unavailable("../shared/k8s/up runs as root")
    if shutil.which("kubectl") is None and (K8S / "up").exists() is False:
        _unavailable("kubectl is missing")
    if _Start.proc is not None:
        code = _Start.proc.wait(timeout=600)
        if code != 0:
            tail = _Start.log.read_text(errors="replace")[-3000:]
            _unavailable(f"../shared/k8s/up failed (exit {code}):\n{tail}")
        took = time.monotonic() - _Start.began
        print(f"\n[cluster] up, started {took:.0f}s before it was needed", file=sys.stderr)
    elif not _alive():
        _unavailable("no cluster is up and this session could not start one")
    cluster = Kube(STATE / "admin.kubeconfig", STATE / "deployer.kubeconfig")
    # day one means no operator: CRDs an earlier session installed go (objects with them)
    names = [yaml.safe_load(f.read_text())["metadata"]["name"] for f in sorted(CRDS.glob("*.yaml"))]
    cluster.kubectl("delete", "crd", "--ignore-not-found", "--wait=true", *names)
    try:
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture(autouse=True)
def _namespaces_go_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "kube" in request.fixturenames:
        request.getfixturevalue("kube").cleanup()


@pytest.fixture(scope="session")
def image(kube: Kube) -> str:
    """The example's image, built from this checkout's own wheel and imported."""
    sys.path.insert(0, str(Path(__file__).parent))
    from image import build_and_import

    began = time.monotonic()
    ref = build_and_import(EXAMPLE)
    print(f"\n[cluster] image {ref} in {time.monotonic() - began:.0f}s", file=sys.stderr)
    return ref


@pytest.fixture(scope="session")
def operator_crds(kube: Kube) -> Iterator[None]:
    """Argo Workflows', the Spark operator's and the Prometheus operator's CRDs (stored,
    never acted on)."""
    files = [
        CRDS / "argoproj.io_workflows.yaml",
        CRDS / "argoproj.io_cronworkflows.yaml",
        CRDS / "sparkoperator.k8s.io_sparkapplications.yaml",
        CRDS / "sparkoperator.k8s.io_scheduledsparkapplications.yaml",
        CRDS / "monitoring.coreos.com_prometheusrules.yaml",
        CRDS / "monitoring.coreos.com_servicemonitors.yaml",
    ]
    args = [a for f in files for a in ("-f", str(f))]
    kube.kubectl("apply", "--server-side", *args)
    # these CRDs only: a CRD made a moment ago has no conditions yet, which kubectl's wait
    # reports as an error instead of waiting
    deadline = time.monotonic() + 60
    while True:
        done = kube.kubectl(
            "wait", "--for=condition=Established", *args, "--timeout=20s", check=False
        )
        if done.returncode == 0:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"the operator CRDs were not established:\n{done.stderr}")
        time.sleep(1)
    yield


@dataclass
class Project:
    """A copy of a project, driven through the `mizzen` command."""

    root: Path
    kube: Kube
    image: str

    def mizzen(
        self, *args: str, user: str = "admin", check: bool | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kube.admin if user == "admin" else self.kube.deployer),
            "NO_COLOR": "1",
        }
        proc = subprocess.run(
            [MIZZEN, *args], cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"mizzen {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def spec(self) -> dict[str, Any]:
        return dict(yaml.safe_load((self.root / "mizzen.yaml").read_text()))

    def write(self, spec: dict[str, Any]) -> None:
        (self.root / "mizzen.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def single_node(spec: dict[str, Any], lake: Path, namespace: str) -> dict[str, Any]:
    """The environment `cluster` of a spec for this machine's cluster: its stores become a
    folder the node shares (`file://`), the namespace is the test's, and resources fit a
    two-core node."""
    env = {
        "stores": {name: f"file://{lake}/{name}" for name in spec.get("stores", {})},
        "kubernetes": {"namespace": namespace},
        "jobs": {
            name: {"resources": {"cpu": "250m", "memory": "1Gi"}} for name in spec.get("jobs", {})
        },
    }
    return {**spec, "environments": {**(spec.get("environments") or {}), "cluster": env}}


@pytest.fixture
def project_copy(tmp_path: Path, kube: Kube, image: str) -> Iterator[Any]:
    """`project_copy(src)`: a copy of project folder `src` (default: the example)."""

    def make(src: Path = EXAMPLE) -> Project:
        root = tmp_path / src.name
        shutil.copytree(src, root, ignore=shutil.ignore_patterns(".mizzen", "__pycache__"))
        return Project(root, kube, image)

    yield make
