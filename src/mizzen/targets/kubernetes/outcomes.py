"""How a finished run object says how it ended (workload kinds pick theirs)."""

from __future__ import annotations

from typing import Any

from mizzen.errors import EXIT_FAILED, EXIT_OK

Obj = dict[str, Any]


def job_outcome(obj: Obj) -> int | None:
    """A `batch/v1` Job: 0 once it succeeded, 1 once it failed, None while it runs."""
    status = obj.get("status") or {}
    if status.get("succeeded"):
        return EXIT_OK
    if any(
        c.get("type") == "Failed" and c.get("status") == "True"
        for c in status.get("conditions", [])
    ):
        return EXIT_FAILED
    return None


def condition_outcome(obj: Obj) -> int | None:
    """An operator object with `Succeeded` / `Failed` conditions (Kubeflow training jobs)."""
    for cond in (obj.get("status") or {}).get("conditions", []):
        if cond.get("status") == "True" and cond.get("type") in ("Succeeded", "Failed"):
            return EXIT_OK if cond["type"] == "Succeeded" else EXIT_FAILED
    return None
