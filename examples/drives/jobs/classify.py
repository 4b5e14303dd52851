"""The classifier's decisions as production records them (dataset `classifications`): each
drive's predicted purpose and confidence, the experiment arm its driver is in, and a
synthetic user correction (drivers fix most wrong labels, and a few right ones).

Variant B calibrates the model's probabilities more sharply (more drives auto-classified
with confidence >= 0.9, the same labels); signals `business-share` and `label-accuracy`
watch the result (docs/signals.md). Only drives newer than the dataset's latest row are
added, up to CLASSIFY_UNTIL (a date; empty: every drive).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import joblib
import numpy as np
import pyarrow as pa

import mizzen

sys.path.insert(0, str(Path(__file__).parent))
from common import FEATURES  # noqa: E402


def sharpen(p: np.ndarray, power: float) -> np.ndarray:
    return p**power / (p**power + (1 - p) ** power)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--artifacts", type=Path, required=True)
    args = parser.parse_args()
    out = mizzen.dataset("classifications")
    drives = mizzen.dataset("drives").to_table(columns=["drive_id", "start_ts", "vehicle", "purpose"]).to_pandas()
    features = mizzen.dataset("features").to_table().to_pandas()
    frame = features.merge(drives, on="drive_id")
    until = mizzen.config("CLASSIFY_UNTIL") or ""
    if until:
        end = datetime.combine(date.fromisoformat(until), datetime.min.time(), UTC)
        frame = frame[frame["start_ts"] < end.timestamp()]
    if out.version() is not None:
        latest = out.to_table(columns=["started_at"]).column("started_at")
        if len(latest):
            newest = max(latest.to_pylist()).timestamp()
            frame = frame[frame["start_ts"] > newest]
    if frame.empty:
        print("classify: no new drives")
        return
    model = joblib.load(args.artifacts / "model.joblib")
    p = model.predict_proba(frame[FEATURES].to_numpy(dtype=np.float32))[:, 1]
    variant = np.where(frame["driver_id"].to_numpy() % 2 == 0, "A", "B")
    p = np.where(variant == "B", sharpen(p, 1.6), p)
    predicted = np.where(p >= 0.5, "business", "personal")
    truth = frame["purpose"].to_numpy()
    rng = np.random.default_rng(int(mizzen.config("SEED")) + len(frame))
    wrong = predicted != truth
    corrected = np.where(wrong, rng.random(len(frame)) < 0.8, rng.random(len(frame)) < 0.01)
    other = np.where(predicted == "business", "personal", "business")
    user_label = np.where(corrected, np.where(wrong, truth, other), None)
    started = [datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=int(s)) for s in frame["start_ts"]]
    table = pa.table(
        {
            "drive_id": pa.array(frame["drive_id"].to_numpy(), pa.int64()),
            "driver_id": pa.array(frame["driver_id"].to_numpy(), pa.int32()),
            "started_at": pa.array(started, pa.timestamp("us", tz="UTC")),
            "day": pa.array([s.date() for s in started], pa.date32()),
            "vehicle": frame["vehicle"].to_numpy(),
            "variant": variant,
            "predicted": predicted,
            "confidence": np.maximum(p, 1 - p).round(4),
            "user_label": pa.array(user_label.tolist(), pa.string()),
        }
    )
    out.write(table)
    print(
        f"classify: {len(frame):,} drives from {min(started):%Y-%m-%d} to {max(started):%Y-%m-%d}, "
        f"{wrong.mean():.1%} wrong, {corrected.mean():.1%} corrected by their drivers"
    )


if __name__ == "__main__":
    main()
