"""Drive features with DuckDB (the default): jobs/features.sql over the raw parquet."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb


def main(source: Path, target: Path) -> None:
    sql = (Path(__file__).parent / "features.sql").read_text()
    con = duckdb.connect()
    con.execute(f"CREATE VIEW drives AS SELECT * FROM read_parquet('{source.as_posix()}/*.parquet')")
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("*.parquet"):
        old.unlink()
    con.execute(f"COPY ({sql}) TO '{(target / 'part-0.parquet').as_posix()}' (FORMAT parquet)")
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{target.as_posix()}/*.parquet')").fetchone()
    print(f"features: {rows[0] if rows else 0:,} rows with DuckDB -> {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
