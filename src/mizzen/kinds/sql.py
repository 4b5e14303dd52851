"""A SQL file run over the project's volumes, writing its last query's result as Parquet.

```yaml
jobs:
  daily:
    sql:
      file: sql/daily.sql                 # may use ${volumes.raw}, ${config.X}, ${parameters.X}
      output: "${volumes.out}/daily.parquet"
      parameters: {days: 7}
      engine: duckdb                      # (default) or spark
```

`engine: duckdb` runs `python -m mizzen.kinds.sql_runner` as the job's process: a process
here, a Job in a cluster (DuckDB must be in the image: `mizzen[sql]`), recorded like any
run. `engine: spark` runs the same runner with Spark SQL: `spark-submit --master local[N]`
here, a SparkApplication of the Spark operator in a cluster, the runner shipped to the
driver in a ConfigMap (the Spark image needs no mizzen); `spark:` sizes it as for a spark job.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from mizzen.kinds.base import BATCH, Compiled, JobKind, Launch, Obj, Rules
from mizzen.kinds.spark import Spark, SparkPlan, SparkSizing
from mizzen.spec import deps
from mizzen.spec.base import Model
from mizzen.spec.types import Text

if TYPE_CHECKING:
    from mizzen.plan.model import Job, Pipeline, Plan, Process, Step
    from mizzen.targets.kubernetes.render import Renderer

RUNNER = "mizzen.kinds.sql_runner"
RUNNER_DIR = "/opt/mizzen-sql"  # where a Spark driver finds the runner (a ConfigMap)


class SqlSpark(SparkSizing):
    """How `engine: spark` is sized, as for a spark job."""


class SqlSpec(Model):
    # The module that runs it: the SQL file runner; a section mizzen writes itself (the
    # signals' computation, `mizzen.signals.builtin`) names its own, run the same way.
    runner: ClassVar[str] = RUNNER

    file: str = Field(description="The SQL file, relative to the project")
    output: Text | None = Field(
        None, description="Where the last query's rows go, as Parquet (a path in a volume)"
    )
    parameters: dict[str, Text] = Field(
        default_factory=dict, description="`${parameters.NAME}` in the SQL file"
    )
    engine: Literal["duckdb", "spark"] = "duckdb"
    spark: SqlSpark | None = Field(None, description="engine: spark: executors, driver, conf")


@dataclass(frozen=True)
class SqlPlan:
    file: str | None
    output: str | None
    engine: Literal["duckdb", "spark"]
    parameters: dict[str, str] = field(default_factory=dict)
    spark: SparkPlan | None = None  # engine: spark
    runner: str = RUNNER  # the module run with these arguments


def file_references(text: str) -> list[tuple[int, int, str, str]]:
    """(line, column, root, name) of every `${root.name}` in a SQL file."""
    from mizzen.kinds.sql_runner import REF

    out = []
    for m in REF.finditer(text):
        if m.group(1):  # `$${` is a literal `${`
            continue
        line = text.count("\n", 0, m.start()) + 1
        col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
        out.append((line, col, m.group(2), m.group(3)))
    return out


_SPARK = Spark()  # kinds hold no state: the spark kind that runs `engine: spark`


class Sql(JobKind):
    name = "sql"
    field = "sql"
    label = "sql job"
    controllers = (*BATCH, *Spark.controllers)  # engine: spark renders Spark's objects
    wraps_args = True
    example: ClassVar[dict[str, Any]] = {
        "sql": {
            "file": "sql/count.sql",
            "output": "${volumes.out}/count.parquet",
            "parameters": {"n": "3"},
        }
    }
    example_files: ClassVar[dict[str, str]] = {
        "sql/count.sql": "SELECT range AS i, range * ${parameters.n} AS triple "
        "FROM range(${parameters.n})\n"
    }

    def fields(self) -> dict[str, Any]:
        return {"sql": (SqlSpec | None, None)}

    def check(self, job: Any) -> None:
        if job.args:
            raise ValueError("a sql job takes `sql.parameters`, not `args`")
        if job.sql.spark is not None and job.sql.engine != "spark":
            raise ValueError("`sql.spark` sizes `engine: spark`; set it or remove `spark`")

    def texts(self, job: Any) -> list[tuple[tuple[str, ...], str, bool]]:
        out: list[tuple[tuple[str, ...], str, bool]] = [(("sql", "file"), job.sql.file, False)]
        if job.sql.output is not None:
            out.append((("sql", "output"), job.sql.output, False))
        out += [(("sql", "parameters", k), v, False) for k, v in job.sql.parameters.items()]
        return out

    def problems(
        self, job: Any, root: Path, volumes: list[str], config: list[str]
    ) -> list[tuple[tuple[str, ...], str, str]]:
        """The SQL file exists, and every `${...}` in it names something the job has."""
        s = job.sql
        try:
            text = deps.read_text(root / s.file, encoding="utf-8")
        except OSError:
            return [
                (
                    ("sql", "file"),
                    f"{s.file} is not a file in the project",
                    "sql.file is relative to the folder of mizzen.yaml",
                )
            ]
        except UnicodeDecodeError as exc:
            return [
                (
                    ("sql", "file"),
                    f"{s.file} is not UTF-8 text (byte {exc.start}: {exc.reason})",
                    "save the SQL file as UTF-8",
                )
            ]
        out: list[tuple[tuple[str, ...], str, str]] = []
        known = {"volumes": volumes, "config": config, "parameters": list(s.parameters)}
        for line, col, root_name, name in file_references(text):
            if root_name == "run" and name in ("id", "date"):
                continue
            if root_name not in known:
                out.append(
                    (
                        ("sql", "file"),
                        f"{s.file}:{line}:{col}: ${{{root_name}.{name}}} is not a reference a SQL file may hold",
                        "use ${volumes.X}, ${config.X}, ${parameters.X}, ${run.id} or ${run.date}; $${ writes a literal ${",
                    )
                )
            elif name not in known[root_name]:
                what = {"volumes": "volume", "config": "config key", "parameters": "parameter"}[
                    root_name
                ]
                where = {
                    "volumes": "declare it under `volumes:`",
                    "config": "declare it under `config:`",
                    "parameters": "add it to sql.parameters",
                }[root_name]
                out.append(
                    (("sql", "file"), f"{s.file}:{line}:{col}: unknown {what} {name!r}", where)
                )
        return out

    # --- plan --------------------------------------------------------------------------
    def compile(self, c: Any, name: str, job: Any) -> Compiled:
        s = job.sql
        # the volumes the SQL file itself names are mounted like those of the command
        try:
            sql_text = deps.read_text(Path(c.root) / s.file, encoding="utf-8") if s.file else ""
        except (OSError, UnicodeDecodeError):
            sql_text = ""
        texts = [
            f"${{volumes.{n}}}" for _, _, root, n in file_references(sql_text) if root == "volumes"
        ]
        spark = None
        if s.engine == "spark":
            spark = (s.spark or SqlSpark()).plan(f"{RUNNER_DIR}/run.py")
        payload = SqlPlan(s.file, s.output, s.engine, dict(s.parameters), spark, s.runner)
        return Compiled(argv=[], texts=tuple(texts), payload=payload)

    def finish(self, c: Any, job: Any, compiled: Compiled, process: Process) -> tuple[Process, Any]:
        plan: SqlPlan = compiled.payload
        mounts = {m.volume: m for m in process.mounts}
        output = c.text(plan.output, mounts) if plan.output else None
        params = {k: c.text(v, mounts) for k, v in plan.parameters.items()}
        plan = replace(plan, output=output, parameters=params)
        return replace(process, command=tuple(runner_argv(plan))), plan

    # --- this machine ------------------------------------------------------------------
    def launches(
        self, job: Job, argv: list[str], env: dict[str, str], run_dir: Path
    ) -> list[Launch]:
        plan: SqlPlan = job.spec
        if plan.engine == "duckdb":
            import importlib.util

            if importlib.util.find_spec("duckdb") is None:
                from mizzen.errors import MissingExtraError

                raise MissingExtraError(f"sql job {job.name!r}", "sql", "duckdb")
            return [Launch(argv=argv, label=job.name)]
        from mizzen.targets.local.env import unresolved

        assert plan.spark is not None
        as_spark = replace(job, kind="spark", spec=replace(plan.spark, main_file=_file(plan)))
        args = unresolved(argv)[3:]  # the runner's own arguments, run-time references filled
        return self._spark().launches(as_spark, args, env, run_dir)

    # --- Kubernetes ---------------------------------------------------------------------
    def render(self, r: Renderer, workload: Any) -> list[Obj]:
        job: Job = workload
        plan: SqlPlan = job.spec
        if plan.engine == "duckdb":
            return r.batch_job(job)
        spark = self._spark()
        return [
            self.runner_config(r, plan),
            *spark.render(r, self.as_spark(job, job.process), self.runner_volume(r, plan)),
        ]

    def as_spark(self, job: Job, process: Process) -> Job:
        """The spark job that runs this SQL (the runner as its main file)."""
        plan: SqlPlan = job.spec
        assert plan.spark is not None
        args = tuple(runner_args(plan, "spark", in_image=True))
        return replace(job, kind="spark", spec=plan.spark, process=replace(process, command=args))

    def _spark(self) -> Spark:
        return _SPARK

    def runner_name(self, r: Renderer, plan: SqlPlan) -> str:
        from mizzen.targets.kubernetes import naming

        own = "sql-runner" if plan.runner == RUNNER else plan.runner.split(".")[-2] + "-runner"
        return naming.object_name(r.project, own)

    def runner_config(self, r: Renderer, plan: SqlPlan) -> Obj:
        """The runner, shipped to Spark drivers (their image need not hold mizzen)."""
        cm = r.meta("v1", "ConfigMap", self.runner_name(r, plan))
        cm["data"] = {"run.py": Path(_file(plan)).read_text()}
        return cm

    def runner_volume(self, r: Renderer, plan: SqlPlan) -> list[tuple[Obj, Obj]]:
        volume = {"name": "mizzen-sql", "configMap": {"name": self.runner_name(r, plan)}}
        return [(volume, {"name": "mizzen-sql", "mountPath": RUNNER_DIR, "readOnly": True})]

    def step(
        self, r: Renderer, pipe: Pipeline, step: Step, job: Job, process: Process
    ) -> Obj | None:
        if job.spec.engine == "duckdb":
            return None
        return self._spark().step(
            r, pipe, step, self.as_spark(job, process), process, self.runner_volume(r, job.spec)
        )

    def roles(self, r: Renderer) -> dict[str, Rules]:
        mine = [j for j in r.plan.jobs.values() if j.kind == self.name and j.spec.engine == "spark"]
        stepped = [j for j in r.stepped_jobs() if j in mine]
        return self._spark().rules(bool(mine), bool(stepped)) if mine else {}

    def one_off(self, obj: Obj) -> Obj:
        """A scheduled `engine: spark` job runs once as a SparkApplication."""
        if obj["kind"] in ("ScheduledSparkApplication", "SparkApplication"):
            return self._spark().one_off(obj)
        return super().one_off(obj)

    def warnings(self, plan: Plan, job: Job) -> list[str]:
        spec: SqlPlan = job.spec
        if spec.engine != "spark":
            return []
        return self._spark().warnings(plan, self.as_spark(job, job.process), "sql.spark")


def runner_args(plan: SqlPlan, engine: str, *, in_image: bool = False) -> list[str]:
    from mizzen.targets.kubernetes.render import APP_DIR

    argv = []
    if plan.file:
        argv += ["--file", f"{APP_DIR}/{plan.file.lstrip('./')}" if in_image else plan.file]
    if plan.output:
        argv += ["--output", plan.output]
    argv += ["--engine", engine]
    for key, value in sorted(plan.parameters.items()):
        argv += ["--param", f"{key}={value}"]
    return argv


def runner_argv(plan: SqlPlan) -> list[str]:
    """The job's process: the runner, the same on both targets."""
    return ["python", "-m", plan.runner, *runner_args(plan, plan.engine)]


def _file(plan: SqlPlan) -> str:
    """The runner's source file (a Spark job's main file)."""
    import importlib.util

    found = importlib.util.find_spec(plan.runner)
    assert found is not None and found.origin is not None, plan.runner
    return found.origin
