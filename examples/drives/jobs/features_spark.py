"""Drive features with Spark: the same jobs/features.sql as the DuckDB job, from the files of
the dataset `drives` to the dataset `features` (Parquet files mizzen commits as a version once
the job succeeded)."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession

import mizzen


def hadoop(uri: str) -> str:
    """Spark reaches S3 through s3a:// (hadoop-aws), the datasets say s3://."""
    return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri


def main() -> None:
    spark = SparkSession.builder.appName("drives-features").getOrCreate()
    drives = mizzen.dataset("drives")
    spark.read.parquet(*[hadoop(f) for f in drives.files()]).createOrReplaceTempView("drives")
    sql = (Path(__file__).parent / "features.sql").read_text()
    target = hadoop(mizzen.dataset("features").output_path(mode="overwrite"))
    spark.sql(sql).coalesce(2).write.mode("overwrite").parquet(target)
    rows = spark.read.parquet(target).count()
    print(f"features: {rows:,} rows with Spark -> dataset features")
    spark.stop()


if __name__ == "__main__":
    main()
