"""Plan mounts -> pod volumes, volume mounts and the objects they need (PV, PVC).

Blob volumes use the CSI driver of their store through a static PersistentVolume bound to
one claim per project volume: Mountpoint for S3 (`s3.csi.aws.com`), Azure Blob
(`blob.csi.azure.com`, blobfuse2) and GCS FUSE (`gcsfuse.csi.storage.gke.io`). A `file://`
store becomes a hostPath (single-node and dev clusters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from mizzen.errors import NotSupportedError
from mizzen.plan.model import Mount
from mizzen.targets.kubernetes import naming

S3_DRIVER = "s3.csi.aws.com"
AZURE_DRIVER = "blob.csi.azure.com"
GCS_DRIVER = "gcsfuse.csi.storage.gke.io"
DRIVERS = {"s3": S3_DRIVER, "azure": AZURE_DRIVER, "gcs": GCS_DRIVER}
BLOB_CAPACITY = "1Ti"  # static CSI volumes ignore it; the API requires one


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


def claim_name(project: str, volume: str) -> str:
    return naming.object_name(project, volume, limit=253)


def volume_name(mount: Mount) -> str:
    return naming.object_name("vol", mount.volume)


def pod_volume(mount: Mount, ctx: VolumeContext) -> dict[str, Any]:
    """The `volumes:` entry of a pod that mounts `mount`."""
    name = volume_name(mount)
    if mount.kind == "scratch":
        if mount.host_path:
            return {
                "name": name,
                "hostPath": {"path": mount.host_path, "type": "DirectoryOrCreate"},
            }
        empty: dict[str, Any] = {}
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
    assert mount.blob is not None
    blob = parse_blob_url(mount.blob.url, mount.blob.store.options)
    if blob.provider == "file":
        return {"name": name, "hostPath": {"path": blob.bucket, "type": "DirectoryOrCreate"}}
    return {
        "name": name,
        "persistentVolumeClaim": {
            "claimName": claim_name(ctx.project, mount.volume),
            "readOnly": mount.read_only,
        },
    }


def volume_mount(mount: Mount) -> dict[str, Any]:
    out: dict[str, Any] = {"name": volume_name(mount), "mountPath": mount.path}
    if mount.read_only:
        out["readOnly"] = True
    sub = mount.sub_path
    if mount.kind == "blob" and mount.blob is not None:
        blob = parse_blob_url(mount.blob.url, mount.blob.store.options)
        if blob.provider == "azure" and blob.prefix:
            sub = blob.prefix  # blobfuse2 mounts the container; the path is a sub-directory
    if sub:
        out["subPath"] = sub
    return out


def volume_objects(mount: Mount, ctx: VolumeContext) -> list[dict[str, Any]]:
    """Objects a volume needs besides the pod: a PV + PVC for CSI blob volumes, a PVC for a
    `files` claim the spec asks to create (`size`)."""
    if mount.kind == "files" and mount.size:
        assert mount.claim is not None
        spec: dict[str, Any] = {
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
    if mount.blob.include or mount.blob.exclude:
        raise NotSupportedError(
            f"volume {mount.volume!r}: `include`/`exclude`",
            "kubernetes",
            hint=f"a cluster mount shows everything under {mount.blob.url}; point the volume at a "
            f"narrower path, or clear the globs for the cluster in an environment overlay "
            f"(volumes: {{{mount.volume}: {{include: [], exclude: []}}}})",
        )
    blob = parse_blob_url(mount.blob.url, mount.blob.store.options)
    if blob.provider == "file":
        return []
    claim = claim_name(ctx.project, mount.volume)
    pv_name = naming.object_name(ctx.namespace, ctx.project, mount.volume, limit=253)
    mode = "ReadOnlyMany" if mount.read_only else "ReadWriteMany"
    csi, options = _csi(blob, mount, ctx)
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": pv_name,
            "labels": {**naming.project_labels(ctx.project), naming.VOLUME: mount.volume},
        },
        "spec": {
            "capacity": {"storage": BLOB_CAPACITY},
            "accessModes": [mode],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "claimRef": {"namespace": ctx.namespace, "name": claim},
            "mountOptions": options,
            "csi": csi,
        },
    }
    pvc_spec = {
        "accessModes": [mode],
        "storageClassName": "",
        "volumeName": pv_name,
        "resources": {"requests": {"storage": BLOB_CAPACITY}},
    }
    return [pv, _pvc(claim, ctx, mount.volume, pvc_spec)]


def _pvc(name: str, ctx: VolumeContext, volume: str, spec: dict[str, Any]) -> dict[str, Any]:
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


def _csi(blob: Blob, mount: Mount, ctx: VolumeContext) -> tuple[dict[str, Any], list[str]]:
    assert mount.blob is not None
    store = mount.blob.store
    cache = _seconds(mount.blob.cache_seconds)
    handle = naming.object_name(ctx.namespace, ctx.project, mount.volume, limit=253)
    csi: dict[str, Any] = {"driver": "", "volumeHandle": handle}
    if mount.read_only:
        csi["readOnly"] = True
    options: list[str]
    if blob.provider == "s3":
        csi["driver"] = S3_DRIVER
        csi["volumeAttributes"] = {"bucketName": blob.bucket}
        options = [f"uid={ctx.uid}", f"gid={ctx.uid}", "allow-other"]
        if mount.read_only:
            options.append("read-only")
        else:  # `sync: update` never deletes in the store, `mirror` does
            options.append("allow-overwrite")
            if mount.blob.sync == "mirror":
                options.append("allow-delete")
        if blob.prefix:
            options.append(f"prefix {blob.prefix}/")
        endpoint = store.options.get("endpoint_url") or store.options.get("client_kwargs", {}).get(
            "endpoint_url"
        )
        if endpoint:
            options += [f"endpoint-url {endpoint}", "force-path-style"]
        region = store.options.get("region") or store.options.get("client_kwargs", {}).get(
            "region_name"
        )
        if region:
            options.append(f"region {region}")
        if cache is not None:
            options.append(f"metadata-ttl {cache}")
    elif blob.provider == "azure":
        csi["driver"] = AZURE_DRIVER
        attrs = {"containerName": blob.bucket, "protocol": "fuse2"}
        if blob.account:
            attrs["storageAccount"] = blob.account
        csi["volumeAttributes"] = attrs
        if store.secret:
            csi["nodeStageSecretRef"] = {
                "name": ctx.secret_names.get(
                    store.secret, naming.secret_name(ctx.project, store.secret)
                ),
                "namespace": ctx.namespace,
            }
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
    else:
        csi["driver"] = GCS_DRIVER
        csi["volumeHandle"] = blob.bucket
        options = [f"uid={ctx.uid}", f"gid={ctx.uid}", "implicit-dirs"]
        if blob.prefix:
            options.append(f"only-dir={blob.prefix}")
        if mount.read_only:
            options.append("ro")
        if cache is not None:
            options += [f"metadata-cache:ttl-secs:{cache}"]
    return csi, options


def uses_gcs(mounts: list[Mount]) -> bool:
    return any(
        m.kind == "blob" and m.blob is not None and parse_blob_url(m.blob.url).provider == "gcs"
        for m in mounts
    )


def csi_drivers(mounts: list[Mount]) -> set[str]:
    out = set()
    for m in mounts:
        if m.kind == "blob" and m.blob is not None:
            provider = parse_blob_url(m.blob.url, m.blob.store.options).provider
            if provider in DRIVERS:
                out.add(DRIVERS[provider])
    return out
