"""Train the benchmark classifier inside a baseline venv (its own scikit-learn) and save it
for MLflow (`mlflow.sklearn.save_model`) or as a pickle for BentoML."""

from __future__ import annotations

import pickle
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression


def fit() -> LogisticRegression:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    return LogisticRegression().fit(x, y)


if __name__ == "__main__":
    kind, dest = sys.argv[1], sys.argv[2]
    model = fit()
    if kind == "mlflow":
        import mlflow.sklearn

        mlflow.sklearn.save_model(model, dest)
    else:
        with open(dest, "wb") as f:
            pickle.dump(model, f)
