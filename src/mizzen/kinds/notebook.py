"""A notebook run with papermill on both targets (a process here, a Job in a cluster); the
executed notebook is kept as a run output. `parameters` reach its `parameters` cell."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from mizzen.kinds.base import Compiled, JobKind, Launch

if TYPE_CHECKING:
    from mizzen.plan.model import Job, Process


@dataclass(frozen=True)
class NotebookPlan:
    path: str
    parameters: dict[str, Any] = field(default_factory=dict)


class Notebook(JobKind):
    name = "notebook"
    field = "notebook"
    label = "notebook job"
    wraps_args = True
    example: ClassVar[dict[str, Any]] = {
        "notebook": "notebooks/check.ipynb",
        "parameters": {"answer": 42},
    }
    example_files: ClassVar[dict[str, str]] = {
        "notebooks/check.ipynb": json.dumps(
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "metadata": {"tags": ["parameters"]},
                        "source": ["answer = 0"],
                        "outputs": [],
                        "execution_count": None,
                    },
                    {
                        "cell_type": "code",
                        "metadata": {},
                        "source": ["assert answer == 42\n", "print('the answer', answer)"],
                        "outputs": [],
                        "execution_count": None,
                    },
                ],
                "metadata": {
                    "kernelspec": {
                        "name": "python3",
                        "display_name": "Python 3",
                        "language": "python",
                    }
                },
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    }

    def fields(self) -> dict[str, Any]:
        return {
            "notebook": (str | None, Field(None, description="A notebook run with papermill")),
            "parameters": (
                dict[str, Any],
                Field(default_factory=dict, description="Notebook parameters"),
            ),
        }

    def misplaced(self, field: str) -> str:
        return "`parameters` is for notebook jobs; use `args` for commands"

    def texts(self, job: Any) -> list[tuple[tuple[str, ...], str, bool]]:
        return [
            (("parameters", key), value, False)
            for key, value in job.parameters.items()
            if isinstance(value, str)
        ]

    def compile(self, c: Any, name: str, job: Any) -> Compiled:
        # the papermill argv comes once references are resolved (finish)
        return Compiled(
            argv=[*job.args],
            payload=NotebookPlan(path=job.notebook, parameters=dict(job.parameters)),
        )

    def finish(self, c: Any, job: Any, compiled: Compiled, process: Process) -> tuple[Process, Any]:
        plan: NotebookPlan = compiled.payload
        mounts = {m.volume: m for m in process.mounts}
        params = {
            k: c.text(v, mounts) if isinstance(v, str) else v for k, v in plan.parameters.items()
        }
        plan = NotebookPlan(path=plan.path, parameters=params)
        return replace(process, command=tuple(papermill_argv(plan)) + process.command), plan

    def launches(
        self, job: Job, argv: list[str], env: dict[str, str], run_dir: Path
    ) -> list[Launch]:
        """papermill, run by this interpreter; a failing cell fails the process with its error."""
        import importlib.util

        from mizzen.targets.local.env import unresolved

        if importlib.util.find_spec("papermill") is None:
            from mizzen.errors import MissingExtraError

            raise MissingExtraError(f"notebook job {job.name!r}", "notebook", "papermill")
        (run_dir / "outputs").mkdir(parents=True, exist_ok=True)
        argv = unresolved(argv)
        if argv[:3] == ["python", "-m", "papermill"]:
            argv[:3] = [sys.executable, "-m", "mizzen.targets.local.notebook_run"]
        if "--no-progress-bar" not in argv and "--progress-bar" not in argv:
            argv.insert(
                argv.index("--log-output") + 1 if "--log-output" in argv else len(argv),
                "--no-progress-bar",
            )
        return [Launch(argv=argv, label=job.name, env={"PYTHONUNBUFFERED": "1"})]


def papermill_argv(notebook: NotebookPlan) -> list[str]:
    """Notebook jobs run papermill on both targets; the executed copy is a run output."""
    stem = notebook.path.rsplit("/", 1)[-1].removesuffix(".ipynb")
    argv = [
        "python",
        "-m",
        "papermill",
        notebook.path,
        "${run.outputs}/" + stem + ".ipynb",
        "--log-output",
    ]
    if notebook.parameters:
        argv += ["-y", json.dumps(notebook.parameters, sort_keys=True)]
    return argv


__all__ = ["Notebook", "NotebookPlan", "papermill_argv"]
