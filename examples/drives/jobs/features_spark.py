"""Drive features with Spark: the same jobs/features.sql as the DuckDB job."""

from __future__ import annotations

import sys
from pathlib import Path

from pyspark.sql import SparkSession


def main(source: str, target: str) -> None:
    spark = SparkSession.builder.appName("drives-features").getOrCreate()
    spark.read.parquet(source).createOrReplaceTempView("drives")
    sql = (Path(__file__).parent / "features.sql").read_text()
    features = spark.sql(sql)
    features.coalesce(2).write.mode("overwrite").parquet(target)
    rows = spark.read.parquet(target).count()
    print(f"features: {rows:,} rows with Spark -> {target}")
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
