"""Train the business-vs-personal classifier (scikit-learn) on the features."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

import mizzen

sys.path.insert(0, str(Path(__file__).parent))
from common import FEATURES, LABEL  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    features = mizzen.dataset("features")
    frame = features.to_table().to_pandas()
    x = frame[FEATURES].to_numpy(dtype=np.float32)
    y = frame[LABEL].to_numpy()
    seed = int(mizzen.config("SEED"))
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=seed, stratify=y
    )
    params = {"n_estimators": 40, "max_depth": 12, "min_samples_leaf": 5, "max_samples": 0.3}
    model = RandomForestClassifier(random_state=seed, n_jobs=-1, **params).fit(x_train, y_train)
    for key, value in params.items():
        mizzen.log_param(key, value)
    mizzen.log_metric("train_accuracy", float(model.score(x_train, y_train)))
    args.out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, args.out / "model.joblib")
    # evaluate publishes the model, maybe in another run: it records what it was trained on
    (args.out / "trained_on.json").write_text(json.dumps([f"features@{features.read_version}"]))
    pd.DataFrame(x_test, columns=FEATURES).assign(**{LABEL: y_test}).to_parquet(
        args.out / "test.parquet", index=False
    )
    print(f"trained on {len(x_train):,} drives, held out {len(x_test):,} -> {args.out}")


if __name__ == "__main__":
    main()
