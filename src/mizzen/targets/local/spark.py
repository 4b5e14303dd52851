"""Spark jobs on one machine: `spark-submit --master local[N]` from the `[spark]` extra.

The executors of the spec become threads of one local JVM: N = executors x cores, capped at
this machine's CPUs; the JVM heap is the driver's memory plus the executors', capped at half
of the machine's RAM. Spark's own chatter is condensed: WARN and above, no progress bars.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mizzen.errors import MissingExtraError, UsageError
from mizzen.kinds.spark import SparkPlan
from mizzen.plan.model import Job
from mizzen.spec.units import parse_quantity

MIB = 2**20
MIN_HEAP_MIB = 512
JAVA_HINT = "install a Java 17+ runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless; macOS: brew install openjdk@17) or set JAVA_HOME"

LOG4J2 = """\
# Written by mizzen for a local spark-submit: Spark's own logging condensed to {level}.
rootLogger.level = {level}
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark %p %c{{1}}: %m%n%ex
logger.nativeio.name = org.apache.hadoop.util.NativeCodeLoader
logger.nativeio.level = error
logger.snapshot.name = org.apache.spark.util.Utils
logger.snapshot.level = error
"""


@dataclass(frozen=True)
class LocalSpark:
    """How a SparkPlan maps onto this machine."""

    threads: int
    heap_mib: int
    requested_threads: int
    requested_mib: int
    cpus: int
    ram_mib: int

    def summary(self, plan: SparkPlan) -> str:
        cores = f"{plan.executors} executor(s) x {plan.executor_cores} core(s)"
        capped = (
            " (capped: this machine)"
            if self.threads < self.requested_threads or self.heap_mib < self.requested_mib
            else ""
        )
        return f"spark: local[{self.threads}] for {cores}, {self.heap_mib}m heap for driver {plan.driver_memory} + executors {plan.executors} x {plan.executor_memory}{capped}"


def version_note(plan: SparkPlan, installed: str | None = None) -> str:
    """Say so when the local pyspark is not the `sparkVersion` the cluster will run."""
    if installed is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            installed = version("pyspark")
        except PackageNotFoundError:
            return ""
    if installed.split(".")[:2] == plan.spark_version.split(".")[:2]:
        return ""
    return (
        f"; note: sparkVersion {plan.spark_version} (the cluster) but pyspark {installed} runs here"
    )


def machine() -> tuple[int, int]:
    """(CPUs usable by this process, physical RAM in MiB)."""
    cpus = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // MIB
    except (ValueError, OSError, AttributeError):
        ram = 4096
    return max(cpus, 1), max(int(ram), MIN_HEAP_MIB * 2)


def size_for(plan: SparkPlan, cpus: int, ram_mib: int) -> LocalSpark:
    requested_threads = plan.executors * plan.executor_cores
    requested_mib = _mib(plan.driver_memory) + plan.executors * _mib(plan.executor_memory)
    heap = max(min(requested_mib, ram_mib // 2), MIN_HEAP_MIB)
    return LocalSpark(
        threads=max(1, min(requested_threads, cpus)),
        heap_mib=heap,
        requested_threads=requested_threads,
        requested_mib=requested_mib,
        cpus=cpus,
        ram_mib=ram_mib,
    )


def _mib(quantity: str) -> int:
    return max(1, int(parse_quantity(quantity) / MIB))


def spark_home(job: Job) -> Path:
    """The pyspark install (its bin/spark-submit), or a MissingExtraError naming `mizzen[spark]`."""
    import importlib.util

    found = importlib.util.find_spec("pyspark")
    if found is None or not found.submodule_search_locations:
        raise MissingExtraError(f"spark job {job.name!r}", "spark", "pyspark")
    return Path(next(iter(found.submodule_search_locations)))


def min_java() -> int:
    """Spark 4 needs Java 17; Spark 3 runs on Java 8 and newer."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return 17 if int(version("pyspark").split(".")[0]) >= 4 else 8
    except (PackageNotFoundError, ValueError):
        return 17


def java(job: Job, minimum: int = 17) -> str:
    """The java binary Spark will use; refuses a missing or too old one, naming what to install."""
    home = os.environ.get("JAVA_HOME")
    binary = (
        str(Path(home) / "bin" / "java")
        if home and (Path(home) / "bin" / "java").exists()
        else shutil.which("java")
    )
    if binary is None:
        raise UsageError(
            f"spark job {job.name!r} needs Java, which is not installed (no java on PATH, JAVA_HOME unset)",
            hint=JAVA_HINT,
        )
    try:
        out = subprocess.run([binary, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(
            f"spark job {job.name!r}: {binary} -version failed: {exc}", hint=JAVA_HINT
        ) from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match:
        major = int(match.group(1))
        if major == 1 and match.group(2):
            major = int(match.group(2))
        if major < minimum:
            raise UsageError(
                f"spark job {job.name!r}: this Spark needs Java {minimum} or newer; {binary} is Java {major}",
                hint=JAVA_HINT,
            )
    return binary


def spark_submit_argv(
    job: Job, args: list[str], run_dir: Path, *, home: Path, size: LocalSpark
) -> list[str]:
    """The spark-submit command line for one local run of `job` with its (filled) `args`."""
    plan: SparkPlan = job.spec
    conf = dict(plan.conf)
    level = conf.pop("spark.log.level", "WARN").upper()
    log_config = run_dir / "spark" / "log4j2.properties"
    log_config.parent.mkdir(parents=True, exist_ok=True)
    log_config.write_text(LOG4J2.format(level=level))
    java_opts = f"-Dlog4j2.configurationFile={log_config.as_uri()}"
    if conf.get("spark.driver.extraJavaOptions"):
        java_opts = conf.pop("spark.driver.extraJavaOptions") + " " + java_opts
    defaults = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": str(max(2, 2 * size.threads)),
        "spark.driver.host": "127.0.0.1",
    }
    for key, value in defaults.items():
        conf.setdefault(key, value)
    argv = [
        str(home / "bin" / "spark-submit"),
        "--master",
        f"local[{size.threads}]",
        "--name",
        job.name,
    ]
    argv += ["--driver-memory", f"{size.heap_mib}m", "--driver-java-options", java_opts]
    for key, value in sorted(conf.items()):
        argv += ["--conf", f"{key}={value}"]
    if plan.packages:
        argv += ["--packages", ",".join(plan.packages)]
    if plan.main_class:
        argv += ["--class", plan.main_class]
    return [*argv, plan.main_file, *args]


def spark_env(home: Path, java_binary: str, job_env: dict[str, str]) -> dict[str, str]:
    env = {
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PYTHONUNBUFFERED": "1",
    }
    if "PYTHONWARNINGS" not in job_env:
        env["PYTHONWARNINGS"] = "ignore::FutureWarning:pyspark.testing.utils"  # pandas-version nag
    if not os.environ.get("JAVA_HOME"):
        env["JAVA_HOME"] = str(Path(os.path.realpath(java_binary)).parent.parent)
    return env


def exec_with_summary(argv: list[str]) -> None:
    """`python -m mizzen.targets.local.spark SUMMARY -- SPARK-SUBMIT...`: say how the job was
    sized (into the step's log), then become spark-submit."""
    summary, rest = argv[0], argv[argv.index("--") + 1 :]
    print(summary, flush=True)
    os.execv(rest[0], rest)


if __name__ == "__main__":
    exec_with_summary(sys.argv[1:])
