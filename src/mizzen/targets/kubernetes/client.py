"""The real cluster: `Cluster` over the official `kubernetes` client (the only module that
imports it), and cluster selection (`--context`, `--namespace`, `KUBECONFIG`, the spec's
`kubernetes:` block, in that order)."""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mizzen.plan.model import KubernetesSettings
from mizzen.targets.kubernetes.cluster import Cluster, ClusterError, Obj
from mizzen.targets.kubernetes.naming import FIELD_MANAGER


def _kubeconfig_files(environ: Mapping[str, str]) -> list[Path]:
    raw = environ.get("KUBECONFIG")
    if raw:
        return [Path(p).expanduser() for p in raw.split(os.pathsep) if p]
    return [Path(environ.get("HOME", "~")).expanduser() / ".kube" / "config"]


def _read_kubeconfig(files: list[Path]) -> tuple[str | None, dict[str, str | None]]:
    """(current-context, context -> namespace) merged like kubectl: the first file wins."""
    import yaml

    current: str | None = None
    namespaces: dict[str, str | None] = {}
    for path in files:
        if not path.is_file():
            continue
        data = yaml.safe_load(path.read_text()) or {}
        current = current or data.get("current-context") or None
        for entry in data.get("contexts") or []:
            name = entry.get("name")
            if name and name not in namespaces:
                namespaces[name] = (entry.get("context") or {}).get("namespace")
    return current, namespaces


def select_cluster(
    context: str | None,
    namespace: str | None,
    settings: KubernetesSettings,
    environ: Mapping[str, str] | None = None,
) -> tuple[str | None, str]:
    """The (context, namespace) to use: flags, then a `KUBECONFIG` the user exported, then
    the environment's `kubernetes:` block, then the default kubeconfig, then `default`."""
    environ = os.environ if environ is None else environ
    current, namespaces = _read_kubeconfig(_kubeconfig_files(environ))
    exported = bool(environ.get("KUBECONFIG"))
    chosen = context or (current if exported else None) or settings.context or current
    ns = namespace
    if ns is None and exported and chosen:
        ns = namespaces.get(chosen)
    ns = ns or settings.namespace or (namespaces.get(chosen) if chosen else None) or "default"
    return chosen, ns


def to_cluster_error(exc: BaseException, what: str = "") -> ClusterError:
    """An API exception (its `Status` body) or a connection failure -> one clear ClusterError."""
    status = getattr(exc, "status", 0) or 0
    body = getattr(exc, "body", None)
    prefix = f"{what}: " if what else ""
    if status and body:
        try:
            data = json.loads(body)
        except (TypeError, ValueError):
            data = {}
        message = data.get("message") or str(getattr(exc, "reason", "")) or "API error"
        reason = data.get("reason", "")
        hint = "check your permissions (RBAC) for this namespace" if status == 403 else ""
        return ClusterError(prefix + message, status=status, reason=reason, hint=hint)
    if status:
        return ClusterError(
            f"{prefix}HTTP {status} {getattr(exc, 'reason', '')}".strip(), status=status
        )
    return ClusterError(
        f"{prefix}cannot connect to the cluster: {exc}",
        hint="check --context / KUBECONFIG and that the API server is reachable",
    )


def _import_client() -> None:
    """Import the `kubernetes` package without its optional client-side validation:
    `kubernetes.dynamic` imports `kubernetes_validate` when it is installed, which takes
    most of a second (its JSON-schema format checkers) for a feature mizzen never uses."""
    import sys

    if "kubernetes" in sys.modules or "kubernetes_validate" in sys.modules:
        return
    sys.modules["kubernetes_validate"] = None  # type: ignore[assignment]
    try:
        import kubernetes  # noqa: F401
    finally:
        del sys.modules["kubernetes_validate"]


def _allows(rules: list[dict[str, Any]], verb: str, group: str, resource: str) -> bool:
    """Whether one of these RBAC resource rules grants `verb` on every `group/resource` (a
    rule naming `resourceNames` grants only those objects)."""

    def has(values: Any, wanted: str) -> bool:
        return "*" in (values or ()) or wanted in (values or ())

    return any(
        has(r.get("verbs"), verb)
        and has(r.get("apiGroups"), group)
        and has(r.get("resources"), resource)
        and not r.get("resourceNames")
        for r in rules
    )


class KubeCluster(Cluster):
    def __init__(self, context: str | None, namespace: str) -> None:
        self.context = context
        self.namespace = namespace
        self._api: Any = None
        self._dyn: Any = None
        self._served: dict[str, set[str]] = {}
        self._rules: dict[str, list[dict[str, Any]]] = {}
        self._version: str | None = None
        _import_client()

    @property
    def api(self) -> Any:
        if self._api is None:
            from kubernetes import config

            try:
                self._api = config.new_client_from_config(context=self.context)
            except Exception as exc:  # no kubeconfig: maybe we run inside a pod
                try:
                    config.load_incluster_config()
                    from kubernetes import client

                    self._api = client.ApiClient()
                except Exception:
                    raise ClusterError(
                        f"no usable kubeconfig (context {self.context or 'current'}): {exc}",
                        hint="set KUBECONFIG or pass --context",
                    ) from None
        return self._api

    @property
    def dyn(self) -> Any:
        if self._dyn is None:
            from kubernetes import dynamic

            try:
                self._dyn = dynamic.DynamicClient(self.api)
            except Exception as exc:
                raise to_cluster_error(exc) from None
        return self._dyn

    def _resource(self, api_version: str, kind: str) -> Any:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            return self.dyn.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            raise ClusterError(
                f"the cluster does not serve {kind} ({api_version})", status=404, reason="NotFound"
            ) from None

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.dynamic.exceptions import DynamicApiError

        try:
            return fn(*args, **kwargs)
        except DynamicApiError as exc:
            raise to_cluster_error(exc, what) from None
        except ClusterError:
            raise
        except Exception as exc:
            from kubernetes.client.exceptions import ApiException

            if isinstance(exc, ApiException):
                raise to_cluster_error(exc, what) from None
            if "urllib3" in type(exc).__module__ or isinstance(exc, OSError):
                raise to_cluster_error(exc, what) from None
            raise

    def version(self) -> str:
        """The server's version (asked once per process: pre-flight and the release's
        adaptation to it both need it)."""
        if self._version is None:
            from kubernetes import client

            info = self._call("version", client.VersionApi(self.api).get_code)
            self._version = str(info.git_version)
        return self._version

    def has_kind(self, api_version: str, kind: str) -> bool:
        """Asked of the API server itself (one discovery request per group version and
        process): a discovery cache on disk can still list a CRD that was removed."""
        if api_version not in self._served:
            path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
            try:
                raw = self._call(
                    f"discovery of {api_version}",
                    self.api.call_api,
                    path,
                    "GET",
                    header_params={"Accept": "application/json"},
                    auth_settings=["BearerToken"],
                    _return_http_data_only=True,
                    _preload_content=False,
                )
                found = json.loads(raw.data)
            except ClusterError as exc:
                if exc.status != 404:
                    raise
                found = {}
            self._served[api_version] = {r.get("kind", "") for r in found.get("resources", [])}
        return kind in self._served[api_version]

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        res = self._resource(api_version, kind)
        try:
            out = self._call(
                f"get {kind}/{name}",
                res.get,
                name=name,
                namespace=namespace if res.namespaced else None,
            )
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise
        return dict(out.to_dict())

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[Obj]:
        res = self._resource(api_version, kind)
        out = self._call(
            f"list {kind}",
            res.get,
            namespace=namespace if res.namespaced else None,
            label_selector=label_selector,
        )
        items = []
        for item in out.to_dict().get("items", []):
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
            items.append(item)
        return items

    def apply(self, obj: Obj, *, dry_run: bool = False) -> Obj:
        res = self._resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        out = self._call(
            f"{obj['kind']}/{meta['name']}",
            res.server_side_apply,
            body=obj,
            name=meta["name"],
            namespace=meta.get("namespace") if res.namespaced else None,
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
            dry_run="All" if dry_run else None,
        )
        return dict(out.to_dict())

    def create(self, obj: Obj) -> Obj:
        res = self._resource(obj["apiVersion"], obj["kind"])
        ns = obj["metadata"].get("namespace") if res.namespaced else None
        out = self._call(
            f"create {obj['kind']}", res.create, body=obj, namespace=ns, field_manager=FIELD_MANAGER
        )
        return dict(out.to_dict())

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        res = self._resource(api_version, kind)
        try:
            self._call(
                f"delete {kind}/{name}",
                res.delete,
                name=name,
                namespace=namespace if res.namespaced else None,
                propagation_policy="Background",
            )
        except ClusterError as exc:
            if exc.status != 404:
                raise

    def can_i(self, verb: str, group: str, resource: str, namespace: str | None) -> bool:
        """What a SelfSubjectAccessReview says; in a namespace, what the user's rules there
        allow is known from one SelfSubjectRulesReview first (a release asks dozens of
        questions), and only what they do not allow is asked one by one (another authorizer
        than RBAC may still allow it)."""
        if namespace and _allows(self._namespace_rules(namespace), verb, group, resource):
            return True
        return self._access_review(verb, group, resource, namespace)

    def _namespace_rules(self, namespace: str) -> builtins.list[dict[str, Any]]:
        if namespace not in self._rules:
            review = {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectRulesReview",
                "spec": {"namespace": namespace},
            }
            try:
                res = self._resource("authorization.k8s.io/v1", "SelfSubjectRulesReview")
                out = self._call("SelfSubjectRulesReview", res.create, body=review).to_dict()
                self._rules[namespace] = list((out.get("status") or {}).get("resourceRules") or [])
            except ClusterError:
                self._rules[namespace] = []  # ask each question instead
        return self._rules[namespace]

    def _access_review(self, verb: str, group: str, resource: str, namespace: str | None) -> bool:
        attrs = {"verb": verb, "group": group, "resource": resource}
        if namespace:
            attrs["namespace"] = namespace
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs},
        }
        res = self._resource("authorization.k8s.io/v1", "SelfSubjectAccessReview")
        out = self._call("SelfSubjectAccessReview", res.create, body=review).to_dict()
        return bool((out.get("status") or {}).get("allowed"))

    def pod_logs(
        self,
        pod: str,
        namespace: str,
        container: str | None = None,
        *,
        follow: bool = False,
        tail: int | None = None,
    ) -> Iterator[str]:
        from kubernetes import client

        core = client.CoreV1Api(self.api)
        resp = self._call(
            f"logs of {pod}",
            core.read_namespaced_pod_log,
            pod,
            namespace,
            container=container,
            follow=follow,
            tail_lines=tail,
            _preload_content=False,
        )
        buffer = b""
        try:
            for chunk in resp.stream(4096):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    yield line.decode(errors="replace")
            if buffer:
                yield buffer.decode(errors="replace")
        finally:
            resp.release_conn()
