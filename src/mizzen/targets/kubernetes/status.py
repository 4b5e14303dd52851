"""Pod status + events -> one plain sentence per workload (`mizzen status`).

The reason functions are pure (objects as the API returns them as JSON), tested from
recorded fixtures; `collect` gathers them through the `Cluster` interface.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from mizzen.plan.model import Plan
from mizzen.targets.base import WorkloadStatus
from mizzen.targets.kubernetes import naming
from mizzen.targets.kubernetes.cluster import Cluster, ClusterError, Obj

Logs = Callable[[str, str], list[str]]  # (pod, container) -> last lines
PENDING_TOO_LONG = 120.0


Row = WorkloadStatus


def ts(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _minutes(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{minutes // 60} hours"


def _container_spec(pod: Obj, name: str) -> Obj:
    spec = pod.get("spec", {})
    for c in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        if c.get("name") == name:
            return dict(c)
    return {}


def _pod_events(pod: Obj, events: Iterable[Obj]) -> list[Obj]:
    name = pod["metadata"]["name"]
    found = [
        e
        for e in events
        if e.get("involvedObject", {}).get("name") == name
        and e.get("involvedObject", {}).get("kind", "Pod") == "Pod"
    ]
    return sorted(
        found, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "", reverse=True
    )


def _config_error(message: str) -> str:
    m = re.search(r'secret "([^"]+)" not found', message)
    if m:
        return f"the Secret {m.group(1)} does not exist (release again with its values set locally, or create it)"
    m = re.search(r"couldn't find key (\S+) in Secret [^/\s]+/(\S+)", message)
    if m:
        return f"the Secret {m.group(2)} has no key {m.group(1)}"
    m = re.search(r'configmap "([^"]+)" not found', message)
    if m:
        return f"the ConfigMap {m.group(1)} does not exist (release again)"
    m = re.search(r"couldn't find key (\S+) in ConfigMap [^/\s]+/(\S+)", message)
    if m:
        return f"the ConfigMap {m.group(2)} has no key {m.group(1)} (release again)"
    return f"cannot create the container: {message}"


def _pull_error(image: str, message: str, events: list[Obj]) -> tuple[str, bool]:
    """Why an image cannot be pulled, and whether the cause is known: the container's own
    message first (it carries the registry's answer), then the kubelet's events (the
    detailed one, not the generic `Error: ErrImagePull`)."""
    texts = [message] + [
        e.get("message", "")
        for e in events
        if e.get("reason") in ("Failed", "ErrImagePull", "InspectFailed")
    ]
    detail = ""
    for msg in texts:
        low = msg.lower()
        if "not found" in low or "manifest unknown" in low or "does not exist" in low:
            detail = ": the tag or digest does not exist in the registry (push it with `mizzen build --push`, or check --image)"
        elif any(
            w in low for w in ("unauthorized", "authentication required", "denied", "forbidden")
        ):
            detail = ": the registry refused access (check kubernetes.imagePullSecrets)"
        elif "no such host" in low or "timeout" in low or "connection refused" in low:
            detail = ": the registry cannot be reached from the cluster"
        elif "invalid reference format" in low or "couldn't parse image" in low:
            detail = ": the reference is not a valid image name"
        elif "errimageneverpull" in low or ("image pull policy" in low and "never" in low):
            detail = ": it is not on the node and the pull policy is Never"
        if detail:
            break
    return f"cannot pull the image {image}{detail}", bool(detail)


def _unschedulable(pod: Obj, message: str) -> str:
    requests: dict[str, str] = {}
    for c in pod.get("spec", {}).get("containers", []):
        requests.update(c.get("resources", {}).get("requests", {}))
    low = message.lower()
    if "insufficient nvidia.com/gpu" in low:
        return f"cannot be scheduled: no node has a free GPU (needs {requests.get('nvidia.com/gpu', '1')} nvidia.com/gpu)"
    if "insufficient memory" in low:
        return f"cannot be scheduled: no node has {requests.get('memory', 'the requested')} of free memory"
    if "insufficient cpu" in low:
        return f"cannot be scheduled: no node has {requests.get('cpu', 'the requested')} CPU free"
    if (
        "didn't match pod's node affinity/selector" in low
        or "node(s) didn't match node selector" in low
    ):
        return "cannot be scheduled: no node matches its nodeSelector/affinity"
    if "unbound immediate persistentvolumeclaims" in low or "persistentvolumeclaim" in low:
        return "cannot be scheduled: a PersistentVolumeClaim it mounts is not bound"
    if "untolerated taint" in low or "had taint" in low:
        return "cannot be scheduled: the nodes have taints it does not tolerate"
    return f"cannot be scheduled: {message}"


def _last_lines(logs: Logs | None, pod: str, container: str) -> str:
    """'; last log lines: a | b | c' from the container's log tail, or ''."""
    tail = [line.strip() for line in (logs(pod, container) if logs else []) if line.strip()]
    return "; last log lines: " + " | ".join(tail[-3:]) if tail else ""


@dataclass(frozen=True)
class Why:
    """What is wrong, in one sentence; `stuck`: waiting will not make it better (a wait
    stops with it instead of running into its timeout)."""

    text: str
    stuck: bool = False


def pod_reason(
    pod: Obj,
    events: Iterable[Obj],
    now: float,
    logs: Logs | None = None,
    volumes: dict[str, str] | None = None,
) -> str | None:
    """The one sentence that says what is wrong with this pod, or None when nothing is."""
    why = pod_why(pod, events, now, logs, volumes)
    return why.text if why else None


def pod_why(
    pod: Obj,
    events: Iterable[Obj],
    now: float,
    logs: Logs | None = None,
    volumes: dict[str, str] | None = None,
) -> Why | None:
    """`volumes` maps the names the kubelet uses (PersistentVolumes, claims) to the spec's."""
    status = pod.get("status", {})
    own = _pod_events(pod, events)
    name = pod["metadata"]["name"]
    statuses = [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]
    for cs in statuses:
        waiting = cs.get("state", {}).get("waiting") or {}
        reason = waiting.get("reason", "")
        if reason in ("CreateContainerConfigError", "CreateContainerError"):
            return Why(_config_error(waiting.get("message", "")), stuck=True)
        if reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"):
            image = cs.get("image") or _container_spec(pod, cs["name"]).get("image", "?")
            text, known = _pull_error(image, f"{reason} {waiting.get('message', '')}", own)
            return Why(text, stuck=known)
    for cs in statuses:
        state = cs.get("state", {})
        terminated = (
            state.get("terminated")
            or (cs.get("lastState", {}).get("terminated") if "running" not in state else None)
            or {}
        )
        if terminated.get("reason") == "OOMKilled":
            limit = (
                _container_spec(pod, cs["name"])
                .get("resources", {})
                .get("limits", {})
                .get("memory")
            )
            at = f" at its limit of {limit}" if limit else ""
            return Why(f"ran out of memory (OOMKilled){at}; raise resources.memory", stuck=True)
    for cs in statuses:
        waiting = cs.get("state", {}).get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff":
            last = cs.get("lastState", {}).get("terminated") or {}
            code = last.get("exitCode")
            lines = _last_lines(logs, name, cs["name"])
            return Why(
                f"keeps crashing (exit code {code}, restarted {cs.get('restartCount', 0)} times){lines}",
                stuck=True,
            )
    if status.get("phase") == "Pending":
        mount = _mount_failure(pod, own, volumes or {})
        if mount is not None:
            return mount
        for cond in status.get("conditions", []):
            if (
                cond.get("type") == "PodScheduled"
                and cond.get("status") == "False"
                and cond.get("reason") == "Unschedulable"
            ):
                return Why(_unschedulable(pod, cond.get("message", "")))
        created = ts(pod["metadata"].get("creationTimestamp"))
        if created is not None and now - created >= PENDING_TOO_LONG:
            waits = [cs.get("state", {}).get("waiting", {}).get("reason") for cs in statuses]
            why = next((w for w in waits if w), "")
            return Why(f"pending for {_minutes(now - created)}" + (f" ({why})" if why else ""))
    if status.get("phase") == "Failed":
        for cs in statuses:
            term = cs.get("state", {}).get("terminated") or {}
            if term.get("exitCode"):
                lines = _last_lines(logs, name, cs["name"])
                return Why(f"failed with exit code {term['exitCode']}{lines}")
        if status.get("reason") == "DeadlineExceeded":
            return Why("stopped: it ran past its timeout")
    return None


def _mount_failure(pod: Obj, events: list[Obj], volumes: dict[str, str]) -> Why | None:
    """A volume that cannot be mounted, from the pod's events (only while it is not running:
    an old FailedMount on a pod that has started since is history, not a reason)."""
    created = pod["metadata"].get("creationTimestamp") or ""
    for event in events:
        if event.get("reason") not in ("FailedMount", "FailedAttachVolume"):
            continue
        if (event.get("lastTimestamp") or event.get("eventTime") or "") < created:
            continue
        msg = event.get("message", "")
        m = re.search(r'volume "([^"]+)"', msg)
        vol = ""
        if m:
            named = m.group(1)
            vol = " " + volumes.get(named, named.removeprefix("vol-"))
        cause = msg.split(" : ", 1)[-1] if " : " in msg else msg
        if 'secret "' in cause and "not found" in cause:
            cause = _config_error(cause)
        elif "driver name" in cause and "not found in the list of registered CSI drivers" in cause:
            d = re.search(r"driver name (\S+)", cause)
            cause = (
                f"the CSI driver {d.group(1) if d else ''} is not installed on the node".replace(
                    "  ", " "
                )
            )
        return Why(f"cannot mount the volume{vol}: {cause}", stuck="not installed" in cause)
    return None


def job_why(job: Obj, events: Iterable[Obj] = ()) -> Why | None:
    """What keeps a Job from running or why it failed: its conditions, and its own events
    (a Job that cannot create pods says so only there)."""
    for cond in job.get("status", {}).get("conditions", []):
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            if cond.get("reason") == "DeadlineExceeded":
                return Why("stopped: it ran past its timeout", stuck=True)
            if cond.get("reason") == "BackoffLimitExceeded":
                attempts = job.get("spec", {}).get("backoffLimit", 0) + 1
                return Why(
                    f"failed {attempts} time{'s' if attempts != 1 else ''} (every retry used)",
                    stuck=True,
                )
            return Why(cond.get("message") or "failed", stuck=True)
    name = job.get("metadata", {}).get("name")
    mine = [
        e
        for e in events
        if e.get("involvedObject", {}).get("kind") == "Job"
        and e.get("involvedObject", {}).get("name") == name
        and e.get("reason") == "FailedCreate"
    ]
    if mine:
        newest = max(mine, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        return Why(_create_error(newest.get("message", "")), stuck=True)
    return None


def job_reason(job: Obj, events: Iterable[Obj] = ()) -> str | None:
    why = job_why(job, events)
    return why.text if why else None


def _create_error(message: str) -> str:
    m = re.search(r'serviceaccount "([^"]+)" not found', message)
    if m:
        return (
            f"cannot create its pods: the ServiceAccount {m.group(1)} does not exist "
            "(release the project first: `mizzen release`)"
        )
    m = re.search(r"exceeded quota: ([^,]+), requested: ([^,]+)", message)
    if m:
        return f"cannot create its pods: the namespace quota {m.group(1)} is exceeded (requested {m.group(2)})"
    return f"cannot create its pods: {message.split('is forbidden: ', 1)[-1]}"


def workload_row(
    workload: str,
    kind: str,
    controllers: list[Obj],
    pods: list[Obj],
    events: list[Obj],
    now: float,
    logs: Logs | None = None,
    volumes: dict[str, str] | None = None,
) -> Row:
    pods = sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
    restarts = sum(
        cs.get("restartCount", 0)
        for p in pods
        for cs in p.get("status", {}).get("containerStatuses", [])
    )
    main = controllers[0] if controllers else None
    age = (
        now - created
        if main and (created := ts(main["metadata"].get("creationTimestamp")))
        else None
    )
    last_run: float | None = None
    reason = next((r for p in pods if (r := pod_reason(p, events, now, logs, volumes))), None)
    if main is None:
        phase = pods[0].get("status", {}).get("phase", "Unknown") if pods else "Not released"
        if pods:
            last_run = ts(pods[0]["metadata"].get("creationTimestamp"))
    elif main["kind"] == "Deployment":
        want = main.get("spec", {}).get("replicas", 1)
        ready = main.get("status", {}).get("readyReplicas", 0) or 0
        phase = f"{'Available' if ready >= want else 'Progressing'} {ready}/{want}"
    elif main["kind"] in ("CronJob", "CronWorkflow", "ScheduledSparkApplication"):
        status = main.get("status", {})
        phase = "Suspended" if main.get("spec", {}).get("suspend") else "Scheduled"
        last_run = ts(
            status.get("lastScheduleTime")
            or status.get("lastScheduleTimeUTC")
            or status.get("lastRun")
        )
    elif main["kind"] == "Job":
        status = main.get("status", {})
        phase = (
            "Succeeded" if status.get("succeeded") else "Failed" if job_reason(main) else "Running"
        )
        reason = reason or job_reason(main, events)
        last_run = ts(status.get("startTime"))
    else:
        phase = str(
            main.get("status", {}).get("phase")
            or main.get("status", {}).get("applicationState", {}).get("state")
            or "Created"
        )
    return Row(workload, kind, phase, age, restarts, last_run, reason or "")


def _controller_kinds(plan: Plan) -> list[tuple[str, str]]:
    """The controller kinds the plan's workloads can have, as their kinds say: only those
    are listed (no right to, or CRD of, a kind the project does not use is needed)."""
    from mizzen.kinds import kind

    out: dict[tuple[str, str], None] = {}
    for w in plan.workloads:
        for controller in kind(w.kind).controllers:
            out[controller] = None
    return list(out)


def _kind_of(plan: Plan, name: str) -> str:
    from mizzen.kinds import kind

    w = plan.workload(name)
    return kind(w.kind).describe(w)


def collect(
    cluster: Cluster, plan: Plan, now: float, workloads: list[str] | None = None
) -> list[Row]:
    ns = cluster.namespace
    pods = cluster.list("v1", "Pod", ns, naming.selector(plan.project))
    events = cluster.list("v1", "Event", ns)
    controllers: dict[str, list[Obj]] = {}
    for api, kind in _controller_kinds(plan):
        if (
            "/" in api
            and api.split("/")[0] not in ("apps", "batch")
            and not cluster.has_kind(api, kind)
        ):
            continue
        try:
            found = cluster.list(api, kind, ns, naming.selector(plan.project))
        except ClusterError as exc:
            if exc.status not in (403, 404):
                raise
            continue
        for obj in found:
            if obj["metadata"].get("ownerReferences"):
                continue
            controllers.setdefault(
                obj["metadata"].get("labels", {}).get(naming.WORKLOAD, ""), []
            ).append(obj)

    def logs(pod: str, container: str) -> list[str]:
        try:
            return list(cluster.pod_logs(pod, ns, container, tail=5))
        except Exception:
            return []

    from mizzen.targets.kubernetes.volumes import kubelet_names

    volumes = kubelet_names(plan, ns)
    rows = []
    for name in workloads or [w.name for w in plan.workloads]:
        mine = [p for p in pods if p["metadata"].get("labels", {}).get(naming.WORKLOAD) == name]
        ctrl = sorted(
            controllers.get(name, []),
            key=lambda o: o["metadata"].get("creationTimestamp", ""),
            reverse=True,
        )
        rows.append(
            workload_row(name, _kind_of(plan, name), ctrl, mine, events, now, logs, volumes)
        )
    return rows
