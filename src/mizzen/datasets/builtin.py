"""The datasets' maintenance job: retention, vacuum of versions past their time-travel
window, erasures completed once their window passed (`mizzen data maintain`), scheduled by
mizzen itself (`maintenance.schedule`, daily by default) on both targets."""

from __future__ import annotations

from typing import Any

NAME = "mizzen-maintenance"


def maintenance(project: Any) -> dict[str, dict[str, Any]]:
    if not project.datasets:
        return {}
    m = project.maintenance
    job: dict[str, Any] = {
        "command": ["mizzen", "data", "maintain"],
        "inputs": list(project.datasets),  # every dataset reaches it through the contract
        "resources": m.resources.model_dump(mode="json", by_alias=True, exclude_defaults=True),
    }
    if m.schedule is not None:
        job["schedule"] = m.schedule.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return {NAME: job}
