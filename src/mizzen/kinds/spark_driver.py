"""`mizzen-spark-driver FILE [ARGS...]`: the Python a Spark driver starts its program with on
Kubernetes (the SparkApplication sets `spark.pyspark.driver.python` to it), so the program
runs as `mizzen exec` runs a pod's command: a recorded run whose datasets' staged outputs are
committed once it succeeded. Spark passes the gateway to the program in the environment,
which the child inherits."""

from __future__ import annotations

import os
import sys
from typing import Any

from mizzen import contract

COMMAND = "mizzen-spark-driver"


def main(argv: list[str] | None = None) -> Any:
    from mizzen.cli.main import main as cli

    program = list(sys.argv[1:] if argv is None else argv)
    workload = os.environ.get(contract.WORKLOAD) or "spark"
    return cli(["exec", "--workload", workload, "--", sys.executable, *program])


if __name__ == "__main__":
    main()
