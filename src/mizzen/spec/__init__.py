"""mizzen.yaml: parse with positions, overlay an environment, validate into typed models.

Attributes are imported lazily so the pure helpers (`interpolate`, `units`, `source`) stay
usable on the run path without importing pydantic.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: a cached `mizzen validate` never imports typing
if TYPE_CHECKING:
    from typing import Any

_EXPORTS = {
    "SPEC_FILE": "mizzen.spec.loader",
    "Spec": "mizzen.spec.loader",
    "find_spec": "mizzen.spec.loader",
    "load": "mizzen.spec.loader",
    "Project": "mizzen.spec.models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mizzen.spec' has no attribute {name!r}")
