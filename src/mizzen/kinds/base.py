"""What a kind of workload is: one class that owns its spec section, what it compiles to in
the plan, how it runs on this machine, what it becomes in a Kubernetes cluster (objects,
the API rights its pods need, its one-off form), and how its status and outcome are read.

A kind module imports only pydantic at its top (it is read when `mizzen.yaml` is
validated); what it needs to run or render it imports inside the method that needs it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from mizzen.plan.compile import Compiler
    from mizzen.plan.model import Job, Pipeline, Plan, Process, Step, Workload
    from mizzen.targets.kubernetes.render import Renderer

Obj = dict[str, Any]
Rules = list[Obj]
BATCH = (("batch/v1", "CronJob"), ("batch/v1", "Job"))


def scheduled_twin(obj: Obj, once: str, field: str) -> Obj:
    """The one-off object inside an operator's scheduled kind (`spec.<field>`)."""
    if obj["kind"] == once:
        return obj
    return {
        "apiVersion": obj["apiVersion"],
        "kind": once,
        "metadata": {
            "namespace": obj["metadata"]["namespace"],
            "labels": obj["metadata"]["labels"],
        },
        "spec": obj["spec"][field],
    }


@dataclass
class Launch:
    """One process a job starts on this machine (several start together for one attempt)."""

    argv: list[str]
    label: str  # the log prefix: "train", or "train/worker-1"
    env: dict[str, str] = field(default_factory=dict)  # on top of the job's own env


@dataclass(frozen=True)
class Compiled:
    """A job kind's part of the plan: the argv of its process (command + args, references
    not yet resolved), texts beyond its section's `texts()` whose volume references must be
    mounted (those a file it names holds), its payload."""

    argv: list[str]
    texts: tuple[str, ...] = ()
    payload: Any = None


class WorkloadKind(ABC):
    name: ClassVar[str]  # the registry key, and the plan workload's `kind`
    label: ClassVar[str]  # how status and the docs call it: "spark job"
    # Kubernetes controller kinds of its objects, (apiVersion, kind), newest form first:
    # status reads them, `mizzen delete` removes their one-off runs.
    controllers: ClassVar[tuple[tuple[str, str], ...]] = BATCH
    operator: ClassVar[str | None] = None  # the API group of the operator it needs, if any
    installs: ClassVar[str] = ""  # how to install that operator (pre-flight says it)
    # For the shared contract suite (tests/kinds/), which validates, renders and runs it on
    # both targets: a minimal entry of this kind under `section` (named `probe`), the jobs
    # it needs beside it (a pipeline's steps, a job publishing a model) and its files.
    section: ClassVar[str] = "jobs"
    example: ClassVar[dict[str, Any]]
    example_jobs: ClassVar[dict[str, dict[str, Any]]] = {}
    example_files: ClassVar[dict[str, str]] = {}

    @abstractmethod
    def render(self, r: Renderer, workload: Any) -> list[Obj]:
        """Its Kubernetes objects (a job: on demand, or its scheduled form)."""

    def roles(self, r: Renderer) -> dict[str, Rules]:
        """API rights its pods need, by account role (`spark`, `workflow`)."""
        return {}

    def one_off(self, obj: Obj) -> Obj:
        """The object a one-off run (`mizzen run --target kubernetes`) creates from the
        first rendered object: a scheduled form becomes its one-off twin."""
        if obj["kind"] != "CronJob":
            return obj
        template = obj["spec"]["jobTemplate"]
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {**template["metadata"], "namespace": obj["metadata"]["namespace"]},
            "spec": template["spec"],
        }

    def outcome(self, obj: Obj) -> int | None:
        """0 / 1 once a run object of this kind finished, None while it goes on."""
        from mizzen.targets.kubernetes.outcomes import job_outcome

        return job_outcome(obj)

    def describe(self, workload: Workload) -> str:
        """The kind as `mizzen status` shows it."""
        scheduled = getattr(workload, "schedule", None) is not None
        return (
            ("scheduled " + self.label) if scheduled and self.label.endswith("job") else self.label
        )


class JobKind(WorkloadKind):
    """A kind of job. Subclasses set the class variables and implement what differs."""

    field: ClassVar[str | None]  # the job field that makes a job this kind; None: `command`
    runner: ClassVar[bool] = True  # runs one thing: exclusive with the other runners
    # its command is its own (papermill, a Spark main file) around the job's `args`: a
    # pipeline step that replaces the args keeps that command's mounts and env
    wraps_args: ClassVar[bool] = False

    # --- spec --------------------------------------------------------------------------
    def fields(self) -> dict[str, Any]:
        """The fields this kind adds to the job model: name -> (annotation, default)."""
        return {}

    def misplaced(self, field: str) -> str:
        """Why `field`, which belongs to this kind, is refused on a job of another kind."""
        return f"`{field}` is for {self.label}s"

    def selects(self, job: Any) -> bool:
        """Whether a job spec is of this kind (its field is set)."""
        return self.field is not None and getattr(job, self.field, None) not in (None, "")

    def check(self, job: Any) -> None:
        """Rules across the job's fields; raise ValueError with the sentence to show."""

    def texts(self, job: Any) -> Iterable[tuple[tuple[str, ...], str, bool]]:
        """Strings of its section that may hold `${...}` references, as (path inside the
        job, text, whether a whole-value `${secrets.X.Y}` is allowed)."""
        return ()

    def problems(
        self, job: Any, root: Path, volumes: list[str], config: list[str]
    ) -> Iterable[tuple[tuple[str, ...], str, str]]:
        """Problems `mizzen validate` can see in the files the job names: (path inside the
        job, message, hint)."""
        return ()

    # --- plan --------------------------------------------------------------------------
    @abstractmethod
    def compile(self, c: Compiler, name: str, job: Any) -> Compiled:
        """Its argv and payload, before the process (mounts, env) is built."""

    def finish(
        self, c: Compiler, job: Any, compiled: Compiled, process: Process
    ) -> tuple[Process, Any]:
        """The process and payload once volumes are mounted (a kind that resolves references
        in its own section does it here)."""
        return process, compiled.payload

    def warnings(self, plan: Plan, job: Job) -> list[str]:
        """What renders but will not behave as a user expects (render and release say it)."""
        return []

    # --- this machine ------------------------------------------------------------------
    def launches(
        self, job: Job, argv: list[str], env: dict[str, str], run_dir: Path
    ) -> list[Launch]:
        """The processes to start together for one attempt (all stopped if one fails).
        `argv` has its run-time references filled; `env` is the job's whole environment;
        `run_dir` the run's staging folder (outputs go to run_dir/"outputs")."""
        return [Launch(argv=argv, label=job.name)]

    # --- Kubernetes ---------------------------------------------------------------------
    def render(self, r: Renderer, workload: Any) -> list[Obj]:
        return r.batch_job(workload)

    def step(
        self, r: Renderer, pipe: Pipeline, step: Step, job: Job, process: Process
    ) -> Obj | None:
        """The Argo `resource` template part for a pipeline step of this kind (Argo
        creates the object and waits for it), or None: the step is a container."""
        return None
