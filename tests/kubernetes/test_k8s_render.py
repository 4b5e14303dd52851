"""render(plan): golden files, schema validation of every object, best-practice defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_schemas import validate

from mizzen import spec as spec_mod
from mizzen.errors import MizzenError, NotSupportedError, UsageError
from mizzen.plan import compile_plan
from mizzen.targets.kubernetes.render import on_demand, render, render_warnings, to_yaml

HERE = Path(__file__).parent
REPO = HERE.parent.parent
GOLDEN = HERE / "golden"
IMAGE = "registry.example.com/team/app@sha256:" + "0" * 64
SPECS = {
    "design": HERE / "specs" / "design" / "mizzen.yaml",
    "everything": HERE / "specs" / "everything" / "mizzen.yaml",
    **{p.parent.name: p for p in sorted((REPO / "examples").glob("*/mizzen.yaml"))},
}
UPDATE = os.environ.get("MIZZEN_UPDATE_GOLDEN") == "1"


def rendered(name: str, env: str | None = None, **kw: Any) -> list[dict[str, Any]]:
    loaded = spec_mod.load(SPECS[name], env)
    return render(compile_plan(loaded, "kubernetes", image=kw.get("image", IMAGE), environ={}))


def cases() -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for name, path in SPECS.items():
        out.append((name, None))
        envs = (yaml.safe_load(path.read_text()) or {}).get("environments") or {}
        out += [(name, env) for env in envs]
    return out


def embedded(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Operator objects that Argo creates from a pipeline step's `resource.manifest`."""
    spec = (
        obj["spec"].get("workflowSpec", obj["spec"])
        if obj["kind"] in ("Workflow", "CronWorkflow")
        else None
    )
    if spec is None:
        return []
    return [yaml.safe_load(t["resource"]["manifest"]) for t in spec["templates"] if "resource" in t]


@pytest.mark.parametrize(("name", "env"), cases(), ids=lambda v: str(v))
def test_every_object_validates(name: str, env: str | None) -> None:
    try:
        objects = rendered(name, env)
    except NotSupportedError as err:
        if SPECS[name].is_relative_to(HERE):
            raise
        pytest.skip(f"environment {env} of the example is for the local target: {err.message}")
    assert objects
    problems = [p for obj in objects for o in (obj, *embedded(obj)) for p in validate(o)]
    assert problems == []


@pytest.mark.parametrize("name", list(SPECS))
def test_golden(name: str) -> None:
    text = to_yaml(rendered(name))
    golden = GOLDEN / f"{name}.yaml"
    if UPDATE:
        golden.write_text(text)
    if not golden.exists():
        pytest.skip(f"no golden file {golden.name}: run with MIZZEN_UPDATE_GOLDEN=1 and review it")
    assert text == golden.read_text(), (
        f"render output changed; review and run with MIZZEN_UPDATE_GOLDEN=1 ({golden})"
    )


def test_output_is_stable() -> None:
    assert to_yaml(rendered("everything")) == to_yaml(rendered("everything"))


def pod_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "containers" in node and isinstance(node["containers"], list):
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(obj)
    return found


def test_best_practice_defaults_on_every_pod() -> None:
    objects = rendered("everything")
    pods = [p for o in objects for p in pod_specs(o)]
    assert len(pods) >= 11
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod["containers"]:
            assert c["imagePullPolicy"] == "IfNotPresent"
            assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            assert ":latest" not in c["image"]
            names = {e["name"] for e in c["env"]}
            assert {"MIZZEN_TARGET", "MIZZEN_STORE", "MIZZEN_STORE_OPTIONS"} <= names
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "mizzen"
        assert labels["app.kubernetes.io/part-of"] == "everything"


def by_name(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def test_job_kinds_and_their_settings() -> None:
    objects = rendered("everything")
    job = by_name(objects, "Job", "everything-prepare")
    assert on_demand(job)
    assert job["spec"]["backoffLimit"] == 3
    assert job["spec"]["activeDeadlineSeconds"] == 3600
    assert job["spec"]["ttlSecondsAfterFinished"] == 7200
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["command"][:5] == ["mizzen", "exec", "--workload", "prepare", "--"]
    assert "--in" in c["command"] and "/mnt/mizzen/raw" in c["command"]
    cron = by_name(objects, "CronJob", "everything-nightly-export")
    assert (
        cron["spec"]["concurrencyPolicy"] == "Replace"
        and cron["spec"]["timeZone"] == "Europe/Paris"
    )
    assert by_name(objects, "CronJob", "everything-hourly")["spec"]["concurrencyPolicy"] == "Forbid"
    spark = by_name(objects, "SparkApplication", "everything-features")["spec"]
    assert spark["mainApplicationFile"] == "local:///app/jobs/features.py"
    assert spark["arguments"] == ["--input", "/mnt/mizzen/raw", "--output", "/mnt/mizzen/features"]
    assert spark["executor"]["instances"] == 4 and spark["executor"]["memory"] == "4g"
    torch = by_name(objects, "PyTorchJob", "everything-train")["spec"]
    assert torch["pytorchReplicaSpecs"]["Worker"]["replicas"] == 2
    master = torch["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    assert master["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in master[
        "tolerations"
    ]
    notebook = by_name(objects, "Job", "everything-report")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert "papermill" in notebook["command"]


def test_pipeline_dag_keeps_dependencies() -> None:
    wf = by_name(rendered("everything"), "Workflow", "everything-daily")["spec"]
    tasks = {t["name"]: t.get("dependencies", []) for t in wf["templates"][0]["dag"]["tasks"]}
    assert tasks == {
        "prepare": [],
        "features": ["prepare"],
        "train": ["features"],
        "report": ["train"],
    }
    report = next(t for t in wf["templates"] if t["name"] == "report")
    assert report["container"]["command"][-2:] == ["--days", "1"]
    kinds = {
        yaml.safe_load(t["resource"]["manifest"])["kind"]
        for t in wf["templates"]
        if "resource" in t
    }
    assert kinds == {"SparkApplication", "PyTorchJob"}
    cron = by_name(rendered("everything"), "CronWorkflow", "everything-weekly")["spec"]
    assert cron["schedules"] == ["0 5 * * 1"]


def test_services() -> None:
    objects = rendered("everything")
    model = by_name(objects, "Deployment", "everything-classifier")["spec"]
    assert "replicas" not in model  # the HPA owns it
    c = model["template"]["spec"]["containers"][0]
    assert c["command"][:3] == ["mizzen", "serve", "drive-classifier"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    hpa = by_name(objects, "HorizontalPodAutoscaler", "everything-classifier")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    svc = by_name(objects, "Service", "everything-classifier")["spec"]
    assert svc["ports"][0]["port"] == 8080
    worker = by_name(objects, "Deployment", "everything-ingest")["spec"]
    assert worker["replicas"] == 3
    assert worker["template"]["spec"]["containers"][0]["command"][:2] == ["mizzen", "exec"]
    assert not any(
        o["kind"] == "Service" and o["metadata"]["name"] == "everything-ingest" for o in objects
    )
    dash = by_name(objects, "Deployment", "everything-dashboard")["spec"]["template"]["spec"]
    assert dash["serviceAccountName"] == "dashboard-reader"


def test_volumes_use_the_store_csi_driver() -> None:
    """S3 through a static PersistentVolume (Mountpoint has no inline volumes); Azure Blob and
    GCS FUSE as inline CSI volumes: nothing cluster-scoped for them."""
    objects = rendered("everything")
    pvs = [o for o in objects if o["kind"] == "PersistentVolume"]
    assert {o["spec"]["csi"]["driver"] for o in pvs} == {"s3.csi.aws.com"}
    assert all(o["metadata"]["labels"]["mizzen.io/namespace"] == "everything" for o in pvs)
    pod = by_name(objects, "Job", "everything-prepare")["spec"]["template"]
    inline = {v["name"]: v["csi"] for v in pod["spec"]["volumes"] if "csi" in v}
    azure = inline["vol-curated"]
    assert azure["driver"] == "blob.csi.azure.com" and azure["readOnly"] is True
    attrs = azure["volumeAttributes"]
    assert attrs["protocol"] == "fuse2" and attrs["containerName"] == "lake"
    assert attrs["secretName"] == "everything-azure-creds"  # already the driver's key names
    assert "--file-cache-timeout-in-seconds=120" in attrs["mountOptions"]
    assert "-o ro" in attrs["mountOptions"]
    gcs = inline["vol-images"]
    assert gcs["driver"] == "gcsfuse.csi.storage.gke.io"
    assert gcs["volumeAttributes"]["bucketName"] == "gcs-bucket"
    assert "only-dir=root/images" in gcs["volumeAttributes"]["mountOptions"]
    assert pod["metadata"]["annotations"]["gke-gcsfuse/volumes"] == "true"
    pod = by_name(objects, "Job", "everything-prepare")["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["vol-local"]["hostPath"]["path"] == "/srv/data/local"
    assert vols["vol-ssd"]["hostPath"]["path"] == "/mnt/nvme/everything"
    assert vols["vol-tmp"]["emptyDir"] == {"sizeLimit": "20Gi"}
    assert vols["vol-share"]["persistentVolumeClaim"]["claimName"] == "team-share"
    made = by_name(objects, "PersistentVolumeClaim", "made-claim")["spec"]
    assert made["resources"]["requests"]["storage"] == "50Gi" and made["storageClassName"] == "fast"


def test_no_secret_value_is_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIZZEN_SECRET_WAREHOUSE_PASSWORD", "hunter2-very-secret")
    assert "hunter2" not in to_yaml(rendered("everything"))
    assert not any(o["kind"] == "Secret" for o in rendered("everything"))


def test_missing_store_is_a_warning() -> None:
    plan = compile_plan(spec_mod.load(SPECS["design"]), "kubernetes", image=IMAGE, environ={})
    assert any("store" in w for w in render_warnings(plan))


@pytest.mark.parametrize("image", ["registry.example.com/app", "registry.example.com/app:latest"])
def test_unpinned_images_are_refused(image: str) -> None:
    with pytest.raises(UsageError):
        rendered("everything", image=image)


def write_spec(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "mizzen.yaml"
    path.write_text(
        "apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: p\nimage: {repository: r.example.com/p}\n"
        + body
    )
    return path


@pytest.mark.parametrize(
    "body",
    [
        "jobs: {t: {command: [x], distributed: {framework: pytorch}, schedule: '0 * * * *'}}\n",
        "stores: {s: data}\nvolumes: {v: {blob: s/x}}\njobs: {t: {command: [x, '${volumes.v}']}}\n",
        "jobs: {t: {spark: {mainFile: a.py}, timeout: 1h}}\n",
        "jobs: {t: {spark: {mainFile: a.py}, workingDir: src}}\n",
        "stores: {s: s3://b}\nvolumes: {v: {blob: s/x, include: ['*.csv']}}\njobs: {t: {command: [x], volumes: [v]}}\n",
    ],
    ids=["scheduled-distributed", "relative-store", "spark-timeout", "spark-workdir", "blob-globs"],
)
def test_unsupported_features_are_refused(tmp_path: Path, body: str) -> None:
    plan = compile_plan(
        spec_mod.load(write_spec(tmp_path, body)), "kubernetes", image=IMAGE, environ={}
    )
    with pytest.raises(NotSupportedError) as err:
        render(plan)
    assert isinstance(err.value, MizzenError) and err.value.hint


def compiled_objects(tmp_path: Path, body: str) -> list[dict[str, Any]]:
    loaded = spec_mod.load(write_spec(tmp_path, body))
    return render(compile_plan(loaded, "kubernetes", image=IMAGE, environ={}))


def test_relative_working_dir_is_inside_the_image_project(tmp_path: Path) -> None:
    objects = compiled_objects(
        tmp_path,
        "jobs:\n  rel: {command: [x], workingDir: src/app}\n  abs: {command: [x], workingDir: /data}\n",
    )
    dirs = {
        o["metadata"]["labels"]["mizzen.io/workload"]: o["spec"]["template"]["spec"]["containers"][
            0
        ]["workingDir"]
        for o in objects
        if o["kind"] == "Job"
    }
    assert dirs == {"rel": "/app/src/app", "abs": "/data"}


def test_pipeline_step_keeps_its_service_account(tmp_path: Path) -> None:
    objects = compiled_objects(
        tmp_path,
        "jobs: {t: {command: [x], serviceAccountName: reader}, u: {command: [y]}}\n"
        "pipelines: {p: {steps: [t, {job: u, after: [t]}]}}\n",
    )
    wf = by_name(objects, "Workflow", "p-p")["spec"]
    steps = {t["name"]: t for t in wf["templates"]}
    assert steps["t"]["serviceAccountName"] == "reader"
    assert "serviceAccountName" not in steps["u"]  # the workflow's own account
    assert validate(by_name(objects, "Workflow", "p-p")) == []


@pytest.mark.parametrize(
    ("sync", "present", "absent"),
    [
        ("update", {"allow-overwrite"}, {"allow-delete"}),
        ("mirror", {"allow-overwrite", "allow-delete"}, set()),
    ],
)
def test_s3_write_back_mode_follows_sync(
    tmp_path: Path, sync: str, present: set[str], absent: set[str]
) -> None:
    objects = compiled_objects(
        tmp_path,
        f"stores: {{s: s3://b}}\nvolumes: {{v: {{blob: s/x, sync: {sync}}}}}\n"
        "jobs: {t: {command: [x], volumes: [v]}}\n",
    )
    options = set(
        next(o for o in objects if o["kind"] == "PersistentVolume")["spec"]["mountOptions"]
    )
    assert present <= options and not absent & options


TWO_LAKES = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: lakes
stores: {main: "file:///srv/main", a: "file:///data/a", b: "file:///data/b"}
store: main
datasets:
  ta: {location: a/ta, schema: {x: long}}
  tb: {location: b/tb, schema: {x: long}}
jobs:
  ja: {command: [python, -c, pass], outputs: [ta]}
  jb: {command: [python, -c, pass], outputs: [tb]}
pipelines:
  both: {steps: [ja, {job: jb, after: [ja]}]}
"""


def test_each_pipeline_step_mounts_its_own_stores_folder(tmp_path: Path) -> None:
    (tmp_path / "mizzen.yaml").write_text(TWO_LAKES)
    plan = compile_plan(
        spec_mod.load(tmp_path / "mizzen.yaml"), "kubernetes", image=IMAGE, environ={}
    )
    (workflow,) = [o for o in render(plan) if o["kind"] == "Workflow"]
    host = {v["name"]: v["hostPath"]["path"] for v in workflow["spec"]["volumes"]}
    for template in workflow["spec"]["templates"]:
        for mount in (template.get("container") or {}).get("volumeMounts", []):
            if mount["name"] in host:  # the node folder is the one the pod sees
                assert host[mount["name"]] == mount["mountPath"], template["name"]
    assert sorted(host.values()) == ["/data/a", "/data/b", "/srv/main/mizzen/lakes"]
