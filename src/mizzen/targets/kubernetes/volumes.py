"""Plan mounts -> pod volumes, volume mounts and the objects they need.

How a blob volume is bound is chosen so that a team member who is admin of their own
namespace only can release (docs/kubernetes.md, "Volumes"):

- Azure Blob (`blob.csi.azure.com`) and GCS FUSE (`gcsfuse.csi.storage.gke.io`): a CSI
  *inline* volume in the pod spec; nothing cluster-scoped, nothing immutable to collide with.
- S3 (Mountpoint, `s3.csi.aws.com`) supports static provisioning only: a PersistentVolume
  (cluster-scoped) bound to one claim. Both names carry a digest of the volume's source, so
  a changed bucket, prefix or mode makes new objects instead of an immutable-field error.
  The PV is labelled with its namespace, so a release in one namespace never prunes
  another's. A deployer who may not create PVs gets the PV from a cluster admin, once
  (`mizzen render --cluster-objects`).
- `file://` stores: hostPath (single-node clusters: the laptop's folder is the node's).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from mizzen.errors import NotSupportedError
from mizzen.plan.model import Mount, Plan, StoreRef
from mizzen.targets.kubernetes import naming

S3_DRIVER = "s3.csi.aws.com"
AZURE_DRIVER = "blob.csi.azure.com"
GCS_DRIVER = "gcsfuse.csi.storage.gke.io"
DRIVERS = {"s3": S3_DRIVER, "azure": AZURE_DRIVER, "gcs": GCS_DRIVER}
INLINE_DRIVERS = {AZURE_DRIVER, GCS_DRIVER}
CSI_NAMES = {
    S3_DRIVER: "Mountpoint for Amazon S3 CSI driver",
    AZURE_DRIVER: "Azure Blob Storage CSI driver",
    GCS_DRIVER: "Cloud Storage FUSE CSI driver",
}
BLOB_CAPACITY = "1Ti"  # static CSI volumes ignore it; the API requires one
GCS_ANNOTATION = "gke-gcsfuse/volumes"
STORE_VOLUME = "mizzen-store"
Obj = dict[str, Any]


@dataclass(frozen=True)
class Blob:
    provider: str  # s3 | azure | gcs | file
    bucket: str  # bucket / container (file: the folder)
    prefix: str
    account: str | None = None


@dataclass
class VolumeContext:
    project: str
    namespace: str
    uid: int
    secret_names: dict[str, str] = field(default_factory=dict)  # spec secret -> Secret name
    secret_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)  # spec secret -> keys


@dataclass(frozen=True)
class CsiSecret:
    """A Secret in the shape a CSI driver reads, derived from a store's `secret` at release
    time (no `keys`: the store's own Secret already has that shape). `keys`: driver key -> the spec secret's key, `=literal`, or `KEY:Field` (a field of
    a `;`-separated connection string)."""

    name: str
    store: str
    secret: str
    keys: dict[str, str]


def parse_blob_url(url: str, options: dict[str, Any] | None = None) -> Blob:
    options = options or {}
    parsed = urlparse(url)
    scheme = parsed.scheme
    path = parsed.path.strip("/")
    if scheme in ("s3", "s3a"):
        return Blob("s3", parsed.netloc, path)
    if scheme in ("gs", "gcs"):
        return Blob("gcs", parsed.netloc, path)
    if scheme in ("abfs", "abfss", "az"):
        container, _, host = parsed.netloc.partition("@")
        account = host.split(".", 1)[0] if host else options.get("account_name")
        return Blob("azure", container, path, account)
    if scheme == "file":
        return Blob("file", "/" + path, "")
    raise NotSupportedError(
        f"a blob store at {url!r}",
        "kubernetes",
        hint="use s3://, abfs://, az://, gs:// or file:// (a folder on a single-node cluster)",
    )


def _blob(mount: Mount) -> Blob:
    assert mount.blob is not None
    return parse_blob_url(mount.blob.url, mount.blob.store.options)


def volume_name(mount: Mount) -> str:
    return naming.object_name("vol", mount.volume)


def _source_digest(mount: Mount) -> str:
    assert mount.blob is not None
    b = mount.blob
    source = [b.url, b.store.options, mount.read_only, b.sync, b.cache_seconds]
    return hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()[:6]


def claim_name(project: str, mount: Mount) -> str:
    """The claim of an S3 volume; its name changes with the volume's source."""
    return naming.object_name(project, mount.volume, _source_digest(mount), limit=253)


def pv_name(ctx: VolumeContext, mount: Mount) -> str:
    return naming.object_name(
        ctx.namespace, ctx.project, mount.volume, _source_digest(mount), limit=253
    )


def pod_volume(mount: Mount, ctx: VolumeContext) -> Obj:
    """The `volumes:` entry of a pod that mounts `mount`."""
    name = volume_name(mount)
    if mount.kind == "scratch":
        if mount.host_path:
            return {
                "name": name,
                "hostPath": {"path": mount.host_path, "type": "DirectoryOrCreate"},
            }
        empty: Obj = {}
        if mount.medium:
            empty["medium"] = mount.medium
        if mount.size:
            empty["sizeLimit"] = mount.size
        return {"name": name, "emptyDir": empty}
    if mount.kind == "files":
        assert mount.claim is not None
        return {
            "name": name,
            "persistentVolumeClaim": {"claimName": mount.claim, "readOnly": mount.read_only},
        }
    blob = _blob(mount)
    if blob.provider == "file":
        return {"name": name, "hostPath": {"path": blob.bucket, "type": "DirectoryOrCreate"}}
    if blob.provider in ("azure", "gcs"):
        return {"name": name, "csi": _inline_csi(blob, mount, ctx)}
    return {
        "name": name,
        "persistentVolumeClaim": {
            "claimName": claim_name(ctx.project, mount),
            "readOnly": mount.read_only,
        },
    }


def volume_mount(mount: Mount) -> Obj:
    out: Obj = {"name": volume_name(mount), "mountPath": mount.path}
    if mount.read_only:
        out["readOnly"] = True
    sub = mount.sub_path
    if mount.kind == "blob" and mount.blob is not None:
        blob = _blob(mount)
        if blob.provider == "azure" and blob.prefix:
            sub = blob.prefix  # blobfuse2 mounts the container; the path is a sub-directory
    if sub:
        out["subPath"] = sub
    return out


def store_volumes(stores: Sequence[StoreRef | None]) -> list[tuple[Obj, Obj]]:
    """`file://` stores a pod reaches directly (the project store: `mizzen exec` records runs
    in the folder the laptop reads; datasets' stores), each mounted at its own path from the
    node (single-node clusters); a store inside another one's folder rides on its mount."""
    paths = sorted(
        {"/" + urlparse(s.url).path.strip("/") for s in stores if s and s.url.startswith("file://")}
    )
    kept = [p for p in paths if not any(p.startswith(q.rstrip("/") + "/") for q in paths)]
    out = []
    for path in kept:
        # named by its path: a pipeline pools its steps' volumes by name
        name = f"{STORE_VOLUME}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"
        out.append(
            (
                {"name": name, "hostPath": {"path": path, "type": "DirectoryOrCreate"}},
                {"name": name, "mountPath": path},
            )
        )
    return out


def _check_globs(mount: Mount) -> None:
    assert mount.blob is not None
    if mount.blob.include or mount.blob.exclude:
        raise NotSupportedError(
            f"volume {mount.volume!r}: `include`/`exclude`",
            "kubernetes",
            hint=f"a cluster mount shows everything under {mount.blob.url}; point the volume at a "
            f"narrower path, or clear the globs for the cluster in an environment overlay "
            f"(volumes: {{{mount.volume}: {{include: [], exclude: []}}}})",
        )


def volume_objects(mount: Mount, ctx: VolumeContext) -> list[Obj]:
    """Namespaced objects a volume needs besides the pod: the claim of an S3 volume, a
    `files` claim the spec asks to create (`size`)."""
    if mount.kind == "files" and mount.size:
        assert mount.claim is not None
        spec: Obj = {
            "accessModes": [mount.access_mode],
            "resources": {"requests": {"storage": mount.size}},
        }
        if mount.storage_class:
            spec["storageClassName"] = mount.storage_class
        pvc = _pvc(mount.claim, ctx, mount.volume, spec)
        pvc["metadata"]["annotations"] = {"mizzen.io/keep": "true"}  # holds data: never pruned
        return [pvc]
    if mount.kind != "blob" or mount.blob is None:
        return []
    _check_globs(mount)
    if _blob(mount).provider != "s3":
        return []
    pvc_spec = {
        "accessModes": [_mode(mount)],
        "storageClassName": "",
        "volumeName": pv_name(ctx, mount),
        "resources": {"requests": {"storage": BLOB_CAPACITY}},
    }
    return [_pvc(claim_name(ctx.project, mount), ctx, mount.volume, pvc_spec)]


def cluster_objects(mount: Mount, ctx: VolumeContext) -> list[Obj]:
    """Cluster-scoped objects a volume needs: the static PersistentVolume of an S3 volume."""
    if mount.kind != "blob" or mount.blob is None or _blob(mount).provider != "s3":
        return []
    csi, options = _s3_csi(_blob(mount), mount, ctx)
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": pv_name(ctx, mount),
                "labels": {
                    **naming.project_labels(ctx.project),
                    naming.VOLUME: mount.volume,
                    naming.NAMESPACE: ctx.namespace,
                },
            },
            "spec": {
                "capacity": {"storage": BLOB_CAPACITY},
                "accessModes": [_mode(mount)],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "claimRef": {"namespace": ctx.namespace, "name": claim_name(ctx.project, mount)},
                "mountOptions": options,
                "csi": csi,
            },
        }
    ]


def _mode(mount: Mount) -> str:
    return "ReadOnlyMany" if mount.read_only else "ReadWriteMany"


def _pvc(name: str, ctx: VolumeContext, volume: str, spec: Obj) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": name,
            "namespace": ctx.namespace,
            "labels": {**naming.project_labels(ctx.project), naming.VOLUME: volume},
        },
        "spec": spec,
    }


def _seconds(value: float | None) -> int | None:
    return None if value is None else max(int(value), 0)


def _endpoint_and_region(store: StoreRef) -> tuple[str | None, str | None]:
    kwargs = store.options.get("client_kwargs", {})
    endpoint = store.options.get("endpoint_url") or kwargs.get("endpoint_url")
    region = store.options.get("region") or kwargs.get("region_name")
    return endpoint, region


def _s3_csi(blob: Blob, mount: Mount, ctx: VolumeContext) -> tuple[Obj, list[str]]:
    assert mount.blob is not None
    cache = _seconds(mount.blob.cache_seconds)
    csi: Obj = {
        "driver": S3_DRIVER,
        "volumeHandle": pv_name(ctx, mount),
        "volumeAttributes": {"bucketName": blob.bucket},
    }
    if mount.read_only:
        csi["readOnly"] = True
    options = [f"uid={ctx.uid}", f"gid={ctx.uid}", "allow-other"]
    if mount.read_only:
        options.append("read-only")
    else:  # `sync: update` never deletes in the store, `mirror` does
        options.append("allow-overwrite")
        if mount.blob.sync == "mirror":
            options.append("allow-delete")
    if blob.prefix:
        options.append(f"prefix {blob.prefix}/")
    endpoint, region = _endpoint_and_region(mount.blob.store)
    if endpoint:
        options += [f"endpoint-url {endpoint}", "force-path-style"]
    if region:
        options.append(f"region {region}")
    if cache is not None:
        options.append(f"metadata-ttl {cache}")
    return csi, options


def _inline_csi(blob: Blob, mount: Mount, ctx: VolumeContext) -> Obj:
    assert mount.blob is not None
    cache = _seconds(mount.blob.cache_seconds)
    attrs: dict[str, str]
    if blob.provider == "azure":
        options = ["-o allow_other", f"-o uid={ctx.uid}", f"-o gid={ctx.uid}"]
        if mount.read_only:
            options.append("-o ro")
        if cache is not None:
            options += [
                f"--file-cache-timeout-in-seconds={cache}",
                f"-o attr_timeout={cache}",
                f"-o entry_timeout={cache}",
                f"-o negative_timeout={cache}",
            ]
        secret = azure_secret(mount.blob.store, ctx)
        attrs = {"containerName": blob.bucket, "protocol": "fuse2"}
        if blob.account:
            attrs["storageAccount"] = blob.account
        if secret is not None:
            attrs["secretName"] = secret.name
        # without a store secret the driver authenticates with its own (managed) identity
        attrs["mountOptions"] = " ".join(options)
        driver = AZURE_DRIVER
    else:
        options = [f"uid={ctx.uid}", f"gid={ctx.uid}", "implicit-dirs"]
        if blob.prefix:
            options.append(f"only-dir={blob.prefix}")
        if cache is not None:
            options.append(f"metadata-cache:ttl-secs:{cache}")
        attrs = {"bucketName": blob.bucket, "mountOptions": ",".join(options)}
        driver = GCS_DRIVER
    out: Obj = {"driver": driver}
    if mount.read_only:
        out["readOnly"] = True
    out["volumeAttributes"] = attrs
    return out


def azure_secret(store: StoreRef, ctx: VolumeContext) -> CsiSecret | None:
    """The Secret the Azure Blob CSI driver reads for an inline volume: the account name and
    the store secret's `account_key`, `sas_token` or `connection_string`, under the
    driver's key names."""
    if not store.secret:
        return None
    declared = ctx.secret_keys.get(store.secret, ())
    blob = parse_blob_url(store.url, store.options)
    if {"azurestorageaccountkey", "azurestorageaccountsastoken"} & set(declared):
        # already in the driver's shape: the store's own Secret is mounted as it is
        name = ctx.secret_names.get(store.secret, naming.secret_name(ctx.project, store.secret))
        return CsiSecret(name=name, store=store.name, secret=store.secret, keys={})
    keys = {"azurestorageaccountname": "=" + (blob.account or "")}
    if "account_key" in declared:
        keys["azurestorageaccountkey"] = "account_key"
    elif "sas_token" in declared:
        keys["azurestorageaccountsastoken"] = "sas_token"
    elif "connection_string" in declared:
        keys["azurestorageaccountkey"] = "connection_string:AccountKey"
        if not blob.account:
            keys["azurestorageaccountname"] = "connection_string:AccountName"
    else:
        raise NotSupportedError(
            f"store {store.name!r}: an Azure blob volume without an account key",
            "kubernetes",
            hint=f"give secrets.{store.secret} an `account_key`, `sas_token` or "
            "`connection_string` key: the Azure Blob CSI driver mounts with it",
        )
    return CsiSecret(
        name=naming.object_name(ctx.project, store.name, "blob-csi", limit=253),
        store=store.name,
        secret=store.secret,
        keys=keys,
    )


def csi_secrets(mounts: list[Mount], ctx: VolumeContext) -> list[CsiSecret]:
    out: dict[str, CsiSecret] = {}
    for m in mounts:
        if m.kind == "blob" and m.blob is not None and _blob(m).provider == "azure":
            secret = azure_secret(m.blob.store, ctx)
            if secret is not None:
                out[secret.name] = secret
    return list(out.values())


def needs_gcs_annotation(volumes: list[Obj]) -> bool:
    return any(v.get("csi", {}).get("driver") == GCS_DRIVER for v in volumes)


def csi_drivers(mounts: list[Mount]) -> dict[str, list[str]]:
    """CSI driver -> the volumes that use it."""
    out: dict[str, list[str]] = {}
    for m in mounts:
        if m.kind == "blob" and m.blob is not None:
            provider = _blob(m).provider
            if provider in DRIVERS:
                out.setdefault(DRIVERS[provider], [])
                if m.volume not in out[DRIVERS[provider]]:
                    out[DRIVERS[provider]].append(m.volume)
    return out


def host_paths(mounts: list[Mount], stores: Sequence[StoreRef | None]) -> list[str]:
    """Folders on the node that pods mount as hostPath (file:// stores, scratch paths)."""
    out: list[str] = []
    for m in mounts:
        if m.kind == "blob" and m.blob is not None and _blob(m).provider == "file":
            out.append(_blob(m).bucket)
        elif m.kind == "scratch" and m.host_path:
            out.append(m.host_path)
    for volume, _ in store_volumes(stores):
        out.append(volume["hostPath"]["path"])
    return list(dict.fromkeys(out))


def plan_mounts(plan: Plan) -> list[Mount]:
    """Every mount of every workload (and pipeline step) of the plan, in spec order."""
    out = [m for j in plan.jobs.values() for m in j.process.mounts]
    out += [
        m for p in plan.pipelines.values() for s in p.steps if s.process for m in s.process.mounts
    ]
    out += [m for s in plan.services.values() for m in s.process.mounts]
    return out


def volume_context(plan: Plan, namespace: str) -> VolumeContext:
    names = {
        s.name: naming.secret_name(plan.project, s.name, s.existing_secret)
        for s in plan.secrets.values()
    }
    keys = {s.name: s.keys for s in plan.secrets.values()}
    return VolumeContext(plan.project, namespace, plan.kubernetes.run_as_user, names, keys)


def kubelet_names(plan: Plan, namespace: str) -> dict[str, str]:
    """The names the kubelet gives volumes in its events (PersistentVolumes, claims, pod
    volumes) -> the spec's volume names."""
    ctx = volume_context(plan, namespace)
    out: dict[str, str] = {}
    for m in plan_mounts(plan):
        out[volume_name(m)] = m.volume
        if m.kind == "blob" and m.blob is not None and _blob(m).provider == "s3":
            out[pv_name(ctx, m)] = m.volume
            out[claim_name(plan.project, m)] = m.volume
        elif m.claim:
            out[m.claim] = m.volume
    return out
