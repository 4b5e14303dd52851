"""BentoML service for the serving benchmark: the pickled scikit-learn classifier, 2 workers."""

from __future__ import annotations

import os
import pickle

import bentoml
import numpy as np


@bentoml.service(workers=int(os.environ.get("BENCH_WORKERS", "2")))
class Classifier:
    def __init__(self) -> None:
        with open(os.environ["BENCH_MODEL"], "rb") as f:
            self.model = pickle.load(f)

    @bentoml.api
    def predict(self, instances: np.ndarray) -> np.ndarray:
        return self.model.predict(instances)
