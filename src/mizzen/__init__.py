"""mizzen: code + Dockerfile + mizzen.yaml -> build -> release -> watch.

Inside a job, `import mizzen` is the runtime SDK: `mizzen.volume("raw")`, `mizzen.config(key)`,
`mizzen.secret(name, key)`, `mizzen.dataset(name)`, `mizzen.log_metric(...)`, `mizzen.log_param(...)`,
`mizzen.run_id()`, `mizzen.outputs_dir()`, `mizzen.publish_model(...)`, `mizzen.load_model(...)`.
Attributes load on first use, so `import mizzen` stays light.
"""

from __future__ import annotations

from mizzen._version import __version__

TYPE_CHECKING = False  # not typing's: importing typing costs a cached `mizzen validate` a tenth
if TYPE_CHECKING:
    from typing import Any

_RUNTIME = (
    "volume",
    "dataset",
    "config",
    "secret",
    "log_metric",
    "log_param",
    "run_id",
    "run_date",
    "outputs_dir",
)
_REGISTRY = ("publish_model", "load_model")

__all__ = ["__version__", *_RUNTIME, *_REGISTRY]


def __getattr__(name: str) -> Any:
    if name in _RUNTIME:
        from mizzen import runtime

        return getattr(runtime, name)
    if name in _REGISTRY:
        from mizzen.storage import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'mizzen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
