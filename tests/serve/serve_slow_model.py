"""A deliberately slow python-flavour model (pickled by the tests, unpickled by the server)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


class SlowModel:
    def __init__(self, seconds: float, started: str | None = None) -> None:
        self.seconds = seconds
        self.started = started  # a file created when a call starts

    def predict(self, x: np.ndarray) -> np.ndarray:
        if getattr(self, "started", None):
            Path(self.started).touch()
        time.sleep(self.seconds)
        return np.asarray(x, dtype=np.float32).sum(axis=1)
