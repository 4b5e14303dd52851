"""Day one on a cluster with no operator installed, as an admin and as a team member who is
admin of their own namespace only (the `admin` ClusterRole bound in that namespace)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import Kube, Project

pytestmark = pytest.mark.cluster

PLAIN = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: plain
image: {repository: localhost/mizzen-test-drives}
jobs:
  nightly: {command: [python, -c, "print('nightly')"], schedule: "0 3 * * *"}
  once: {command: [python, -c, "print('once')"]}
services:
  web:
    command: [python, -m, http.server, "8000"]
    port: 8000
    resources: {cpu: 100m, memory: 128Mi}
"""

S3 = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: lakey
image: {repository: localhost/mizzen-test-drives}
stores:
  lake: {url: "s3://team-lake/base", options: {endpoint_url: "http://10.244.0.1:8333"}}
volumes:
  raw: {blob: lake/raw, readOnly: true}
  out: {blob: lake/out}
jobs:
  nightly:
    command: [python, -c, "print('hi')", "${volumes.raw}", "${volumes.out}"]
    schedule: "0 3 * * *"
"""


def plain(tmp_path: Path, kube: Kube, image: str, text: str = PLAIN) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    (root / "mizzen.yaml").write_text(text)
    return Project(root, kube, image)


KINDS = "deploy,svc,hpa,cronjob,job,configmaps,secrets,serviceaccounts,roles,rolebindings,pvc"


def objects(kube: Kube, ns: str) -> set[str]:
    """What mizzen made in `ns` (objects with a project label)."""
    found = kube.kubectl("get", KINDS, "-n", ns, "-l", "mizzen.io/project", "-o", "json")
    return {f"{o['kind']}/{o['metadata']['name']}" for o in json.loads(found.stdout)["items"]}


def test_a_project_releases_on_a_cluster_with_no_operator(
    tmp_path: Path, kube: Kube, image: str
) -> None:
    """Nothing to install on day one: `release` lists no kind the project does not use."""
    crds = kube.kubectl("get", "crd", "-o", "name").stdout
    assert "argoproj.io" not in crds and "sparkoperator" not in crds  # `crds` tests run last
    ns = kube.namespace("plain")
    p = plain(tmp_path, kube, image)
    out = p.mizzen("release", "-n", ns, "--image", image, "--wait", "--timeout", "120", check=True)
    assert "revision 1: applied" in out.stdout, out.stdout + out.stderr
    assert "web" in out.stdout and "available" in out.stdout
    rows = {
        r["workload"]: r
        for r in json.loads(p.mizzen("status", "-n", ns, "-o", "json", check=True).stdout)
    }
    assert rows["web"]["phase"] == "Available 1/1"
    assert rows["nightly"]["phase"] == "Scheduled"
    assert rows["once"]["phase"] == "Not released"  # on demand: `mizzen run once`
    history = json.loads(p.mizzen("history", "-n", ns, "-o", "json", check=True).stdout)
    assert [h["revision"] for h in history] == [1] and history[0]["status"] == "deployed"


def test_a_namespace_admin_releases_a_project_with_no_volumes(
    tmp_path: Path, kube: Kube, image: str
) -> None:
    ns = kube.namespace("team", deployer=True)
    p = plain(tmp_path, kube, image)
    first = p.mizzen("release", "-n", ns, "--image", image, "--no-wait", user="deployer")
    assert first.returncode == 0, first.stderr
    # a second release prunes what the spec no longer has, still without cluster-wide rights
    spec = p.spec()
    del spec["services"]
    p.write(spec)
    second = p.mizzen("release", "-n", ns, "--image", image, "--no-wait", user="deployer")
    assert second.returncode == 0, second.stderr
    assert "pruned Deployment/plain-web, Service/plain-web" in second.stdout
    status = p.mizzen("status", "-n", ns, user="deployer")
    assert status.returncode == 0, status.stderr
    assert objects(kube, ns) and not {o for o in objects(kube, ns) if "web" in o}


def test_a_namespace_admin_is_told_which_cluster_object_an_admin_must_create(
    tmp_path: Path, kube: Kube, image: str
) -> None:
    """S3 volumes need a cluster-scoped PersistentVolume: the deployer is told, before
    anything is applied, which one and how a cluster admin makes it; once made, they release."""
    kube.kubectl(
        "apply",
        "-f",
        "-",
        stdin='{"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": "s3.csi.aws.com"}, "spec": {"attachRequired": false}}',
    )
    ns = kube.namespace("team", deployer=True)
    p = plain(tmp_path, kube, image, S3)
    refused = p.mizzen("release", "-n", ns, "--image", image, "--no-wait", user="deployer")
    assert refused.returncode == 1
    err = refused.stderr
    assert "pre-flight failed, nothing was applied" in err
    assert "volumes out, raw are mounted through PersistentVolume/" in err, err
    assert "which are cluster-scoped (PersistentVolume): you may not create them" in err
    assert f"mizzen render -n {ns} --cluster-objects | kubectl apply -f -" in err
    assert "CSI driver s3.csi.aws.com" in err and "was not checked" in err  # a warning, not a stop
    assert objects(kube, ns) == set()
    # the cluster admin creates what mizzen prints, once
    printed = p.mizzen("render", "-n", ns, "--image", image, "--cluster-objects", check=True)
    kinds = [line for line in printed.stdout.splitlines() if line.startswith("kind: ")]
    assert (
        kinds.count("kind: PersistentVolume") == 2
        and kinds.count("kind: PersistentVolumeClaim") == 2
    )
    kube.kubectl("apply", "-f", "-", stdin=printed.stdout)
    kube.kubectl(
        "wait", "pvc", "--all", "-n", ns, "--for=jsonpath={.status.phase}=Bound", "--timeout=60s"
    )
    done = p.mizzen("release", "-n", ns, "--image", image, "--no-wait", user="deployer")
    assert done.returncode == 0, done.stderr
    assert "PersistentVolume/" not in done.stdout  # the admin's, not the release's


def test_two_namespaces_of_one_project_never_touch_each_other(
    tmp_path: Path, kube: Kube, image: str
) -> None:
    kube.kubectl(
        "apply",
        "-f",
        "-",
        stdin='{"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": "s3.csi.aws.com"}, "spec": {"attachRequired": false}}',
    )
    prod, staging = kube.namespace("prod"), kube.namespace("staging")
    p = plain(tmp_path, kube, image, S3)
    for ns in (prod, staging):
        p.mizzen("release", "-n", ns, "--image", image, "--no-wait", check=True)

    def pvs(ns: str) -> set[str]:
        found = kube.get("pv", None, None)["items"]
        return {
            o["metadata"]["name"]
            for o in found
            if o["metadata"].get("labels", {}).get("mizzen.io/namespace") == ns
        }

    prod_pvs, prod_objects = pvs(prod), objects(kube, prod)
    assert len(prod_pvs) == 2 and len(pvs(staging)) == 2
    # staging drops a volume and changes the other (a new bucket path): only staging's go
    spec = p.spec()
    del spec["volumes"]["raw"]
    spec["volumes"]["out"]["blob"] = "lake/out-v2"
    spec["jobs"]["nightly"]["command"].remove("${volumes.raw}")
    p.write(spec)
    again = p.mizzen("release", "-n", staging, "--image", image, "--no-wait", check=True)
    assert "pruned" in again.stdout
    assert pvs(prod) == prod_pvs and objects(kube, prod) == prod_objects
    assert len(pvs(staging)) == 1 and not pvs(staging) & prod_pvs
    gone = p.mizzen("delete", "-n", staging, "--yes", check=True)
    assert "deleted" in gone.stdout
    assert pvs(prod) == prod_pvs and objects(kube, prod) == prod_objects
    assert not pvs(staging)


def test_run_says_why_it_cannot_start(tmp_path: Path, kube: Kube, image: str) -> None:
    """`mizzen run --target kubernetes` never hangs: each reason is one sentence, and the
    run stops waiting with it."""
    ns = kube.namespace("why")
    p = plain(tmp_path, kube, image)
    unreleased = p.mizzen("run", "once", "--target", "kubernetes", "-n", ns, "--image", image)
    assert unreleased.returncode == 2
    assert f"the ServiceAccount plain does not exist in namespace {ns}" in unreleased.stderr
    assert f"mizzen release -n {ns}" in unreleased.stderr
    p.mizzen("release", "-n", ns, "--image", image, "--no-wait", check=True)
    # a Job that may not create pods (a quota of none)
    kube.kubectl("create", "quota", "nopods", "--hard=pods=0", "-n", ns)
    blocked = p.mizzen(
        "run", "once", "--target", "kubernetes", "-n", ns, "--image", image, timeout=120
    )
    assert blocked.returncode == 1
    assert "cannot create its pods: the namespace quota nopods is exceeded" in blocked.stdout
    assert "gave up" in blocked.stdout and "deleted it" in blocked.stdout
    kube.kubectl("delete", "quota", "nopods", "-n", ns)
    # an image that cannot be pulled
    missing = p.mizzen(
        "run",
        "once",
        "--target",
        "kubernetes",
        "-n",
        ns,
        "--image",
        "localhost/no-such-image:1",
        timeout=180,
    )
    assert missing.returncode == 1
    assert "cannot pull the image localhost/no-such-image:1: " in missing.stdout, missing.stdout
    # a pod no node can take, for longer than the run will wait
    spec = p.spec()
    spec["jobs"]["once"]["resources"] = {"cpu": "3"}
    p.write(spec)
    big = p.mizzen(
        "run",
        "once",
        "--target",
        "kubernetes",
        "-n",
        ns,
        "--image",
        image,
        "--pending-timeout",
        "15",
        timeout=120,
    )
    assert big.returncode == 1
    assert "cannot be scheduled: no node has 3 CPU free" in big.stdout
    assert "not running after 15s" in big.stdout
    left = kube.get("jobs", None, ns)["items"]
    assert left == []  # every run that gave up was deleted


def _status(p: Project, ns: str) -> dict[str, Any]:
    out = p.mizzen("status", "-n", ns, "-o", "json", check=True)
    return {r["workload"]: r for r in json.loads(out.stdout)}
