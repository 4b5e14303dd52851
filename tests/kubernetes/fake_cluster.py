"""An in-memory `Cluster` for release/status/run logic: objects by identity, label
selectors, SSA dry-run/apply, configurable failures (as the API's Status bodies)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

from mizzen.targets.kubernetes.client import to_cluster_error
from mizzen.targets.kubernetes.cluster import KINDS, Cluster, ClusterError, Obj, group_of, key_of

API = Path(__file__).parent / "fixtures" / "api"


class RecordedApiError(Exception):
    """Shaped like `kubernetes.client.ApiException`: status, reason, body (JSON text)."""

    def __init__(self, fixture: str) -> None:
        data = json.loads((API / fixture).read_text())
        self.status = data["status"]
        self.reason = data["reason"]
        self.body = json.dumps(data["body"])
        super().__init__(self.reason)


def recorded(fixture: str) -> ClusterError:
    return to_cluster_error(RecordedApiError(fixture))


def matches(labels: dict[str, str], selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class FakeCluster(Cluster):
    def __init__(self, namespace: str = "drives", *, context: str | None = "test") -> None:
        self.namespace = namespace
        self.context = context
        self.store: dict[tuple[str, str, str, str], Obj] = {}
        self.reachable = True
        self.server_version = "v1.33.1"
        self.missing_kinds: set[str] = set()
        self.denied: set[tuple[str, str]] = set()  # (verb, resource)
        self.dry_run_errors: dict[str, ClusterError] = {}  # "Kind/name" -> error
        self.apply_errors: dict[str, ClusterError] = {}
        self.calls: list[tuple[str, str]] = []
        self.logs: dict[str, list[str]] = {}
        self.generation = 0
        self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})

    def put(self, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if KINDS.get(obj["kind"], ("", True))[1] and obj["kind"] != "Namespace":
            meta.setdefault("namespace", self.namespace)
        self.generation += 1
        meta["resourceVersion"] = str(self.generation)
        meta.setdefault("uid", f"uid-{self.generation}")
        self.store[key_of(obj)] = obj
        return copy.deepcopy(obj)

    def version(self) -> str:
        if not self.reachable:
            raise ClusterError("cannot connect to the cluster: connection refused")
        return self.server_version

    def has_kind(self, api_version: str, kind: str) -> bool:
        return kind not in self.missing_kinds

    def _key(
        self, api_version: str, kind: str, name: str, namespace: str | None
    ) -> tuple[str, str, str, str]:
        namespaced = KINDS.get(kind, ("", True))[1]
        return (
            group_of(api_version),
            kind,
            (namespace or self.namespace) if namespaced else "",
            name,
        )

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        self.calls.append(("get", f"{kind}/{name}"))
        found = self.store.get(self._key(api_version, kind, name, namespace))
        return copy.deepcopy(found) if found else None

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[Obj]:
        out = []
        for (group, k, ns, _), obj in sorted(self.store.items()):
            if k != kind or group != group_of(api_version) or (namespace and ns != namespace):
                continue
            if matches(obj["metadata"].get("labels", {}), label_selector):
                out.append(copy.deepcopy(obj))
        return out

    def apply(self, obj: Obj, *, dry_run: bool = False) -> Obj:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        self.calls.append(("dry-run" if dry_run else "apply", name))
        errors = self.dry_run_errors if dry_run else self.apply_errors
        if name in errors:
            raise errors[name]
        if dry_run:
            preview = copy.deepcopy(obj)
            preview["metadata"].setdefault("namespace", self.namespace)
            return preview
        return self.put(obj)

    def create(self, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        if "name" not in meta:
            meta["name"] = meta.pop("generateName") + "x7k2p"
        self.calls.append(("create", f"{obj['kind']}/{meta['name']}"))
        return self.put(obj)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        self.calls.append(("delete", f"{kind}/{name}"))
        self.store.pop(self._key(api_version, kind, name, namespace), None)

    def can_i(self, verb: str, group: str, resource: str, namespace: str | None) -> bool:
        return (verb, resource) not in self.denied

    def pod_logs(
        self,
        pod: str,
        namespace: str,
        container: str | None = None,
        *,
        follow: bool = False,
        tail: int | None = None,
    ) -> Iterator[str]:
        lines = self.logs.get(pod, [])
        yield from (lines[-tail:] if tail else lines)

    def names(self, kind: str) -> list[str]:
        return sorted(k[3] for k in self.store if k[1] == kind)


def install_everything(cluster: FakeCluster) -> None:
    """CSI drivers and a GPU node, so pre-flight passes."""
    for driver in ("s3.csi.aws.com", "blob.csi.azure.com", "gcsfuse.csi.storage.gke.io"):
        cluster.put(
            {"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": driver}}
        )
    cluster.put(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "gpu-1"},
            "status": {"allocatable": {"nvidia.com/gpu": "4"}},
        }
    )
