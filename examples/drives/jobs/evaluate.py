"""Evaluate the trained model on the held-out drives; publish it when it is good enough."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn import metrics

import mizzen

sys.path.insert(0, str(Path(__file__).parent))
from common import FEATURES, LABEL  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--artifacts", type=Path, required=True)
    args = parser.parse_args()
    model = joblib.load(args.artifacts / "model.joblib")
    test = pd.read_parquet(args.artifacts / "test.parquet")
    x, y = test[FEATURES].to_numpy(dtype=np.float32), test[LABEL].to_numpy()
    proba = model.predict_proba(x)[:, 1]
    predicted = (proba >= 0.5).astype(int)
    scores = {
        "accuracy": metrics.accuracy_score(y, predicted),
        "precision": metrics.precision_score(y, predicted),
        "recall": metrics.recall_score(y, predicted),
        "f1": metrics.f1_score(y, predicted),
        "roc_auc": metrics.roc_auc_score(y, proba),
    }
    for name, value in scores.items():
        mizzen.log_metric(name, round(float(value), 4))
    (args.artifacts / "metrics.json").write_text(json.dumps(scores, indent=2))
    print("  ".join(f"{k} {v:.3f}" for k, v in scores.items()))

    floor = float(mizzen.config("MIN_ACCURACY"))
    if scores["accuracy"] < floor:
        print(
            f"accuracy {scores['accuracy']:.3f} is below MIN_ACCURACY {floor}: not published",
            file=sys.stderr,
        )
        return 1
    version = mizzen.publish_model(
        "drive-classifier",
        model,
        metrics={k: round(float(v), 4) for k, v in scores.items()},
        tags={"features": ",".join(FEATURES), "positive": "business"},
        example=x[:3],
        trained_on=json.loads((args.artifacts / "trained_on.json").read_text()),
    )
    print(f"published drive-classifier version {getattr(version, 'version', version)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
