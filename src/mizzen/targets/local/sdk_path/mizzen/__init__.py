"""Stand-in `mizzen` that a local run appends to PYTHONPATH when a job's `python` is not the
environment mizzen runs in (docs/spec.md, Run-time environment).

`import mizzen` then loads the job environment's own mizzen when it has one; else the mizzen
that started the run (its SDK needs only the standard library). Its folder holds nothing
else, so no other module is shadowed. Plain code: it may be imported by any Python 3.
"""

import importlib.util
import os
import sys
import types

_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_REAL = os.path.dirname(os.path.dirname(os.path.dirname(_HERE)))
_RULE = "docs/spec.md, Run-time environment"


def _install_hint():
    exe = sys.executable
    return (
        f"install mizzen into it: uv pip install --python {exe} mizzen, or {exe} -m pip install "
        "mizzen (the wheel in the project's wheels/ when your package index has no mizzen)"
    )


class _MissingForMizzen:
    """Last on sys.meta_path: a module mizzen's own code imports and this environment lacks
    fails with what to install where (imports by the job itself are left alone)."""

    def find_spec(self, name, path=None, target=None):
        if path is not None or "." in name:
            return None
        frame: types.FrameType | None = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__", "").startswith("importlib"):
            if frame.f_globals.get("__name__") == "importlib.util":
                return None  # a probe (importlib.util.find_spec), not an import
            frame = frame.f_back
        caller = "" if frame is None else frame.f_globals.get("__name__", "")
        if caller != "mizzen" and not caller.startswith("mizzen."):
            return None
        raise ModuleNotFoundError(
            f"No module named {name!r}, which {caller} needs: this job's Python ({sys.executable}) has no mizzen, so "
            f"mizzen's SDK came from {_REAL} without its dependencies; {_install_hint()} ({_RULE})",
            name=name,
        )


def _load():
    del sys.modules[__name__]
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
    spec = None
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        spec = find(__name__, None) if find is not None else None
        if spec is not None:
            break
    fallback = spec is None
    if fallback:
        if sys.version_info < (3, 11):  # noqa: UP036 (any Python 3 may import this)
            raise ImportError(
                f"mizzen's SDK needs Python 3.11 or newer; this job runs {sys.executable} (Python {sys.version_info[0]}.{sys.version_info[1]}): "
                f"use a newer Python for its environment, or {_install_hint()} ({_RULE})",
                name=__name__,
            )
        spec = importlib.util.spec_from_file_location(
            __name__, os.path.join(_REAL, "__init__.py"), submodule_search_locations=[_REAL]
        )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load mizzen from {_REAL}", name=__name__)
    module = importlib.util.module_from_spec(spec)
    sys.modules[__name__] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[__name__]
        raise
    if fallback:
        sys.meta_path.append(_MissingForMizzen())


_load()
