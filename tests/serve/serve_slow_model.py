"""A deliberately slow python-flavour model (pickled by the tests, unpickled by the server)."""

from __future__ import annotations

import time

import numpy as np


class SlowModel:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def predict(self, x: np.ndarray) -> np.ndarray:
        time.sleep(self.seconds)
        return np.asarray(x, dtype=np.float32).sum(axis=1)
