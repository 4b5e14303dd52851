"""Release history in the cluster: one Secret per numbered revision.

A revision holds the rendered objects (gzip + base64), git sha, image, time, env, note,
status and the *names* of the Secrets the release used, never their values. Records are
Secrets (type `mizzen.io/release.v1`), not ConfigMaps: the Spark driver's Role may edit
ConfigMaps, and no workload's Role grants Secrets. Records written as ConfigMaps by earlier
mizzen versions are still read.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import re
from dataclasses import dataclass
from typing import Any

from mizzen.targets.kubernetes import naming
from mizzen.targets.kubernetes.cluster import Cluster, Obj, describe

RECORD_TYPE = "mizzen.io/release.v1"
# a job's MIZZEN_SPEC_DIGEST changes with any edit of the spec: not a change of the job
_DIGEST = re.compile(r'(?<="name": "MIZZEN_SPEC_DIGEST", )"value": "[^"]*"')
_SERVER_FIELDS = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation")


@dataclass
class Revision:
    number: int
    time: float
    git_sha: str | None
    image: str | None
    status: str  # deployed | superseded | failed
    note: str
    env: str | None
    objects: list[Obj]
    secrets: list[str]
    name: str = ""
    kind: str = "Secret"


def revision_name(project: str, number: int) -> str:
    return naming.object_name(project, "release", f"v{number}", limit=253)


def _fields(rev: Revision) -> dict[str, str]:
    return {
        "revision": str(rev.number),
        "time": str(rev.time),
        "gitSha": rev.git_sha or "",
        "image": rev.image or "",
        "status": rev.status,
        "note": rev.note,
        "env": rev.env or "",
        "secrets": json.dumps(rev.secrets),
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def record(cluster: Cluster, project: str, rev: Revision) -> None:
    """Write revision `rev`; a deployed one supersedes every earlier deployed one."""
    blob = gzip.compress(json.dumps(rev.objects, sort_keys=True).encode(), mtime=0)
    labels = {
        **naming.project_labels(project),
        naming.ROLE: "release",
        naming.REVISION: str(rev.number),
    }
    data = {k: _b64(v.encode()) for k, v in _fields(rev).items()}
    data["objects.json.gz"] = _b64(blob)
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": RECORD_TYPE,
            "metadata": {
                "name": revision_name(project, rev.number),
                "namespace": cluster.namespace,
                "labels": labels,
            },
            "data": data,
        }
    )
    if rev.status == "deployed":
        for older in revisions(cluster, project):
            if older.number != rev.number and older.status == "deployed":
                set_status(cluster, older, "superseded")


def set_status(cluster: Cluster, rev: Revision, status: str) -> None:
    live = cluster.get("v1", rev.kind, rev.name, cluster.namespace) or {}
    live = copy.deepcopy(live)
    for key in _SERVER_FIELDS:
        live.get("metadata", {}).pop(key, None)
    if rev.kind == "Secret":
        live.setdefault("data", {})["status"] = _b64(status.encode())
    else:
        live.setdefault("data", {})["status"] = status
    cluster.apply(live)


def _parse(obj: Obj) -> Revision:
    raw = obj.get("data") or {}
    if obj["kind"] == "Secret":
        data = {k: base64.b64decode(v).decode() for k, v in raw.items() if k != "objects.json.gz"}
        blob = raw.get("objects.json.gz", "")
    else:  # a record of an earlier mizzen version
        data = dict(raw)
        blob = (obj.get("binaryData") or {}).get("objects.json.gz", "")
    objects = json.loads(gzip.decompress(base64.b64decode(blob))) if blob else []
    return Revision(
        number=int(data.get("revision", "0")),
        time=float(data.get("time", "0") or 0),
        git_sha=data.get("gitSha") or None,
        image=data.get("image") or None,
        status=data.get("status", ""),
        note=data.get("note", ""),
        env=data.get("env") or None,
        objects=objects,
        secrets=json.loads(data.get("secrets", "[]")),
        name=obj["metadata"]["name"],
        kind=obj["kind"],
    )


def revisions(cluster: Cluster, project: str) -> list[Revision]:
    """Newest first."""
    selector = naming.selector(project) + f",{naming.ROLE}=release"
    found = [
        {**o, "kind": "Secret"} for o in cluster.list("v1", "Secret", cluster.namespace, selector)
    ]
    found += [
        {**o, "kind": "ConfigMap"}
        for o in cluster.list("v1", "ConfigMap", cluster.namespace, selector)
    ]
    return parse_records(found)


def is_record(obj: Obj) -> bool:
    """A revision record: a Secret of its type (a ConfigMap from an earlier mizzen)."""
    if obj["metadata"].get("labels", {}).get(naming.ROLE) != "release":
        return False
    return obj["kind"] == "ConfigMap" or obj.get("type") == RECORD_TYPE


def parse_records(objects: list[Obj]) -> list[Revision]:
    """The revisions among `objects` (records of the project), newest first."""
    found = [o for o in objects if o.get("kind") in ("Secret", "ConfigMap") and is_record(o)]
    by_number = {r.number: r for r in sorted(map(_parse, found), key=lambda r: r.kind)}
    return sorted(by_number.values(), key=lambda r: r.number, reverse=True)


def changes(new: Revision, old: Revision | None) -> str:
    """What a revision changed against the one before it: '+2 ~1 -1 (Deployment/x, ...)'."""

    def index(rev: Revision) -> dict[str, Obj]:
        out = {}
        for obj in rev.objects:
            body = json.loads(_DIGEST.sub('"value": ""', json.dumps(obj)))
            body = {k: v for k, v in body.items() if k != "metadata"}
            labels = {
                k: v for k, v in obj["metadata"].get("labels", {}).items() if k != naming.REVISION
            }
            out[describe(obj)] = {**body, "labels": labels}
        return out

    now = index(new)
    before = index(old) if old is not None else {}
    added = sorted(set(now) - set(before))
    removed = sorted(set(before) - set(now))
    changed = sorted(k for k in set(now) & set(before) if now[k] != before[k])
    if old is None:
        return f"first release ({len(now)} objects)"
    if not (added or removed or changed):
        return "no object changed"
    parts = [
        f"{sign}{len(items)}"
        for sign, items in (("+", added), ("~", changed), ("-", removed))
        if items
    ]
    named = [*(f"+{k}" for k in added), *(f"~{k}" for k in changed), *(f"-{k}" for k in removed)]
    more = f", +{len(named) - 4} more" if len(named) > 4 else ""
    return f"{' '.join(parts)} ({', '.join(named[:4])}{more})"


def summary(cluster: Cluster, project: str) -> list[dict[str, Any]]:
    """Revisions newest first, each with what it changed: for `history` and the dashboard."""
    revs = revisions(cluster, project)
    return [
        {
            "revision": r.number,
            "time": r.time,
            "status": r.status,
            "gitSha": r.git_sha,
            "image": r.image,
            "env": r.env,
            "note": r.note,
            "objects": len(r.objects),
            "changes": changes(r, revs[i + 1] if i + 1 < len(revs) else None),
        }
        for i, r in enumerate(revs)
    ]


def rollback_target(history: list[Revision], number: int | None) -> Revision:
    """The revision `mizzen rollback` re-applies: the one asked for, else the newest good
    revision before the current one. The current one is the newest revision, whatever its
    status: after a failed release, rollback goes back to the last deployed revision."""
    from mizzen.errors import UsageError

    if number is not None:
        for rev in history:
            if rev.number == number:
                return rev
        raise UsageError(f"no revision {number}", hint="see `mizzen history`")
    current = history[0]
    for rev in history[1:]:
        if rev.status in ("deployed", "superseded"):
            return rev
    raise UsageError(
        f"revision {current.number} is the first good one; there is nothing to roll back to"
    )
