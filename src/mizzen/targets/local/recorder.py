"""The run record of a local run (or of `mizzen exec` in a pod), kept up to date while it runs.

Each step writes into its staging folder (`<staging>/<step>/`: `metrics.jsonl` and
`params.json` from the SDK, `outputs/`); mizzen keeps the step's log next to it
(`<staging>/<step>.log`, secrets already masked). A background thread uploads the record and
the logs every few seconds so `mizzen logs -f` can follow; `finish` uploads everything and
writes the commit marker last.
"""

from __future__ import annotations

import copy
import json
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mizzen.targets.local.console import Console

if TYPE_CHECKING:
    from mizzen.storage.runs import Metric, RunRecord, RunStore

FLUSH_SECONDS = 3.0


class Recorder:
    def __init__(
        self,
        runs: RunStore | None,
        record: RunRecord,
        staging: Path,
        console: Console,
        *,
        interval: float = FLUSH_SECONDS,
    ) -> None:
        self.runs = runs
        self.record = record
        self.staging = staging
        self.console = console
        self.interval = interval
        self.lock = threading.RLock()
        self._logs: dict[str, Any] = {}
        self._uploaded: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = False

    # --- per step ----------------------------------------------------------------------------
    def step_dir(self, step: str) -> Path:
        path = self.staging / step
        (path / "outputs").mkdir(parents=True, exist_ok=True)
        return path

    def log_path(self, step: str) -> Path:
        return self.staging / f"{step}.log"

    def log(self, step: str, text: str) -> None:
        """Keep one (already masked) line of a step's log."""
        with self.lock:
            fh = self._logs.get(step)
            if fh is None:
                self.staging.mkdir(parents=True, exist_ok=True)
                fh = self._logs[step] = open(self.log_path(step), "a", encoding="utf-8")  # noqa: SIM115
            fh.write(text + "\n")

    # --- uploads -----------------------------------------------------------------------------
    def start(self) -> None:
        self.flush()
        if self.runs is not None:
            self._thread = threading.Thread(target=self._loop, name="mizzen-recorder", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        """Upload the record, changed logs and metrics (the lock is held only to snapshot)."""
        if self.runs is None:
            return
        with self.lock:
            for fh in self._logs.values():
                fh.flush()
            snapshot = copy.deepcopy(self.record)
            steps = list(self._logs)
        try:
            self.runs.save(snapshot)
            self.record.heartbeat = snapshot.heartbeat
            for step in steps:
                data = self.log_path(step).read_bytes()
                if self._uploaded.get(step) != len(data):
                    self.runs.put_log(snapshot, step, data)
                    self._uploaded[step] = len(data)
            metrics = self.metrics()
            if metrics:
                self.runs.put_metrics(snapshot, metrics)
        except Exception as exc:  # a flaky store must not kill the run; the final upload retries
            self._warn(f"could not update the run record: {exc}")

    def _warn(self, text: str) -> None:
        if not self._warned:
            self._warned = True
            self.console.note(f"warning: {text}", level="warn")

    # --- gathering what the steps wrote --------------------------------------------------------
    def _step_dirs(self) -> list[tuple[str, Path]]:
        return [
            (s.name, self.staging / s.name)
            for s in self.record.steps
            if (self.staging / s.name).is_dir()
        ]

    def metrics(self) -> list[Metric]:
        from mizzen.storage.runs import Metric

        out: list[Metric] = []
        for _, folder in self._step_dirs():
            file = folder / "metrics.jsonl"
            if not file.is_file():
                continue
            for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    raw = json.loads(line)
                    out.append(
                        Metric(
                            name=str(raw["name"]),
                            value=float(raw["value"]),
                            step=raw.get("step"),
                            time=float(raw["time"]),
                        )
                    )
                except (ValueError, KeyError, TypeError):
                    continue  # a half-written last line while the step runs
        return out

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for _, folder in self._step_dirs():
            file = folder / "params.json"
            if file.is_file():
                try:
                    out.update(json.loads(file.read_text(encoding="utf-8")))
                except ValueError:
                    continue
        return out

    def outputs(self) -> list[tuple[Path, str]]:
        """(local file, name in the record); names carry the step in a pipeline."""
        single = len(self.record.steps) == 1
        found = []
        for step, folder in self._step_dirs():
            base = folder / "outputs"
            for file in sorted(base.rglob("*")):
                if file.is_file():
                    rel = file.relative_to(base).as_posix()
                    found.append((file, rel if single else f"{step}/{rel}"))
        return found

    # --- the end -------------------------------------------------------------------------------
    def finish(self, sets: dict[str, str] | None = None) -> list[Metric]:
        """Upload logs, metrics, params and outputs, then the record and its marker."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        metrics = self.metrics()
        with self.lock:
            for fh in self._logs.values():
                fh.close()
            self.record.params = {**(sets or {}), **self.params()}
            self.record.metrics = {m.name: m.value for m in metrics}
            if self.runs is not None:
                try:
                    for step in self._logs:
                        self.runs.put_log(self.record, step, self.log_path(step).read_bytes())
                    self.runs.put_metrics(self.record, metrics)
                    for file, name in self.outputs():
                        self.runs.put_output(self.record, str(file), name)
                    self.runs.finish(self.record)
                except Exception as exc:
                    self.console.note(
                        f"error: could not write the run record of {self.record.id}: {exc}",
                        level="error",
                    )
            self._logs.clear()
        return metrics

    def remove_staging(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
