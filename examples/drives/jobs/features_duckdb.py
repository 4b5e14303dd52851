"""Drive features with DuckDB (the default): jobs/features.sql over the dataset `drives`,
written as the dataset `features` (replacing the last run's rows)."""

from __future__ import annotations

from pathlib import Path

import duckdb

import mizzen


def main() -> None:
    sql = (Path(__file__).parent / "features.sql").read_text()
    con = duckdb.connect()
    mizzen.dataset("drives").duckdb(connection=con).create_view("drives")
    written = mizzen.dataset("features").write(con.sql(sql).arrow(), mode="overwrite")
    print(f"features: {written.rows:,} rows with DuckDB -> dataset features")


if __name__ == "__main__":
    main()
