"""Synthetic drive records (business vs personal), seeded: the 26 weeks up to the run's date,
written as the dataset `drives` (replacing the last run's rows)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

import mizzen

DAY = 86400


def drives(rows: int, seed: int, until: date) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    drivers = max(rows // 150, 20)
    driver = rng.integers(0, drivers, rows)
    business_share = rng.beta(2, 3, drivers)  # some drivers drive for work a lot, some hardly
    business = rng.random(rows) < business_share[driver]

    start_day = (until - timedelta(days=182) - date(1970, 1, 1)).days
    day = rng.integers(0, 182, rows)
    weekday = (start_day + day + 3) % 7  # 1970-01-01 was a Thursday: Monday is 0
    # business trips happen on weekdays; personal ones drift towards weekends
    weekend = weekday >= 5
    move = business & weekend & (rng.random(rows) < 0.85)
    day = np.where(move, day - (weekday - 4), day)
    commute = rng.random(rows) < 0.5
    hour = np.where(
        business,
        np.where(commute, rng.normal(8.2, 1.0, rows), rng.normal(14.0, 2.5, rows)),
        rng.normal(15.5, 3.5, rows),
    ).clip(0, 23.9)
    start_ts = (start_day + day) * DAY + (hour * 3600).astype(np.int64)

    distance = np.where(
        business, rng.lognormal(3.1, 0.6, rows), rng.lognormal(2.1, 0.7, rows)
    ).clip(0.5, 600)
    speed = np.where(business, rng.normal(62, 15, rows), rng.normal(42, 12, rows)).clip(8, 130)
    duration = (distance / speed * 3600).astype(np.int64) + 60
    to_office = np.where(business, rng.exponential(3.0, rows), rng.exponential(14.0, rows))
    van = np.where(business, rng.random(rows) < 0.3, rng.random(rows) < 0.05)

    return pd.DataFrame(
        {
            "drive_id": np.arange(rows, dtype=np.int64),
            "driver_id": driver.astype(np.int32),
            "day": pd.to_datetime(start_ts, unit="s").date,
            "vehicle": np.where(van, "van", "car"),
            "start_ts": start_ts.astype(np.int64),
            "duration_s": duration.astype(np.int32),
            "distance_km": distance.round(2),
            "to_office_km": to_office.round(2),
            "purpose": np.where(business, "business", "personal"),
        }
    )


def main() -> None:
    rows, seed = int(mizzen.config("ROWS")), int(mizzen.config("SEED"))
    until = date.fromisoformat(mizzen.run_date() or date.today().isoformat())
    frame = drives(rows, seed, until)
    mizzen.dataset("drives").write(frame, mode="overwrite")  # a version once the job succeeded
    share = (frame["purpose"] == "business").mean()
    mizzen.log_param("rows", rows)
    print(
        f"generated {rows:,} drives of {frame['driver_id'].nunique()} drivers ({share:.0%} business) -> dataset drives"
    )


if __name__ == "__main__":
    main()
