"""The run record of a local run (or of `mizzen exec` in a pod), kept up to date while it runs.

Each step writes into its staging folder (`<staging>/<step>/`: `metrics.jsonl` and
`params.json` from the SDK, `outputs/`); mizzen keeps the step's log next to it
(`<staging>/<step>.log`, secrets already masked). A background thread uploads the record and
the logs every few seconds so `mizzen logs -f` can follow; `finish` uploads everything and
writes the commit marker last.

The runner holds a lock on `<staging>/.owner` (its pid, host, workload and store) while it
lives. A staging folder whose lock is free belongs to a runner that died (`kill -9`, a
crash): `sweep_staging`, called as the next run starts, writes that run's record as `lost`
(with the log lines it never uploaded) and removes the folder.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mizzen.targets.local.console import MASK, Console

if TYPE_CHECKING:
    from mizzen.storage.runs import Metric, RunRecord, RunStore

FLUSH_SECONDS = 3.0
OWNER = ".owner"
MASK_OUTPUTS_UP_TO = 256 * 1024 * 1024  # larger outputs are only scanned for secret values


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
        self._owner: IO[str] | None = None

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
        self._claim()
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
                            name=self.console.redact(str(raw["name"])),
                            value=float(raw["value"]),
                            step=raw.get("step"),
                            time=float(raw["time"]),
                        )
                    )
                except (ValueError, KeyError, TypeError):
                    continue  # a half-written last line while the step runs
        return out

    def params(self) -> dict[str, Any]:
        """What the steps logged, secrets masked (a warning names each param masked)."""
        out: dict[str, Any] = {}
        for _, folder in self._step_dirs():
            file = folder / "params.json"
            if file.is_file():
                try:
                    out.update(json.loads(file.read_text(encoding="utf-8")))
                except ValueError:
                    continue
        return self._masked(out, "param")

    def _masked(self, params: dict[str, Any], what: str) -> dict[str, Any]:
        redact = self.console.redact
        if not redact:
            return params
        safe = {}
        for key, value in params.items():
            name, masked = redact(str(key)), redact.json(value)
            if name != key or json.dumps(masked) != json.dumps(value):
                self.console.note(
                    f"warning: {what} {name!r} held the value of a secret: recorded as {MASK}",
                    level="warn",
                )
            safe[name] = masked
        return safe

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

    def mask_output(self, file: Path, name: str) -> str:
        """Mask secret values in an output before it is kept: in its name; in the strings of
        a notebook or JSON file; in the text of a text file. A binary file that holds a
        secret value as is, is kept unchanged with a warning. Returns the name to keep."""
        redact = self.console.redact
        if not redact:
            return name
        safe = redact(name)
        if safe != name:
            self._output_warning(safe, "its name held the value of a secret: kept as")
        if file.stat().st_size > MASK_OUTPUTS_UP_TO:
            self._scan_binary(file, safe)
            return safe
        data = file.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self._scan_binary(file, safe)
            return safe
        masked = redact(text)
        if file.suffix in (".ipynb", ".json"):
            try:
                parsed = json.loads(text)
            except ValueError:
                pass
            else:  # the strings as JSON holds them (escapes); numbers and structure untouched
                nested = redact.json(parsed)
                masked = text
                if json.dumps(nested) != json.dumps(parsed):
                    masked = json.dumps(nested, indent=1, sort_keys=True, ensure_ascii=False)
        if masked != text:
            file.write_text(masked, encoding="utf-8")
            self._output_warning(safe, f"held the value of a secret: kept with it masked as {MASK}")
        return safe

    def _scan_binary(self, file: Path, name: str) -> None:
        import mmap

        values = [v.encode() for v in self.console.redact.values]
        if not values or file.stat().st_size == 0:
            return
        with open(file, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if any(data.find(v) >= 0 for v in values):
                self._output_warning(
                    name, "is a binary file that holds the value of a secret: kept as it is"
                )

    def _output_warning(self, name: str, text: str) -> None:
        self.console.note(f"warning: output {name} {text}", level="warn")

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
            self.record.params = {**self._masked(sets or {}, "--set"), **self.params()}
            self.record.metrics = {m.name: m.value for m in metrics}
            redact = self.console.redact
            self.record.reason = redact(self.record.reason)
            for step_record in self.record.steps:
                step_record.reason = redact(step_record.reason)
            if self.runs is not None:
                try:
                    for step in self._logs:
                        self.runs.put_log(self.record, step, self.log_path(step).read_bytes())
                    self.runs.put_metrics(self.record, metrics)
                    for file, name in self.outputs():
                        self.runs.put_output(self.record, str(file), self.mask_output(file, name))
                    self.runs.finish(self.record)
                except Exception as exc:
                    self.console.note(
                        f"error: could not write the run record of {self.record.id}: {exc}",
                        level="error",
                    )
            self._logs.clear()
        return metrics

    def _claim(self) -> None:
        """Lock `<staging>/.owner` for as long as this process lives (see `sweep_staging`)."""
        self.staging.mkdir(parents=True, exist_ok=True)
        fh = open(self.staging / OWNER, "a+", encoding="utf-8")  # noqa: SIM115
        if _lock(fh, blocking=False):
            owner = {
                "run": self.record.id,
                "workload": self.record.workload,
                "pid": os.getpid(),
                "host": self.record.host,
                "store": self.runs.store.url if self.runs is not None else None,
            }
            fh.truncate(0)
            fh.write(json.dumps(owner))
            fh.flush()
        self._owner = fh

    def remove_staging(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        if self._owner is not None:
            self._owner.close()
            self._owner = None


def _lock(fh: IO[str], *, blocking: bool) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no sweeping
        return blocking
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def sweep_staging(base: Path, runs: RunStore | None) -> list[tuple[str, RunRecord | None]]:
    """Staging folders under `base` whose runner died: their runs written `lost` in `runs`
    (when it is the store they recorded into), the folders removed. Returns each run's id
    and the record written lost (None when none was)."""
    from mizzen.storage.runs import LOST_AFTER

    if not base.is_dir():
        return []
    swept: list[tuple[str, RunRecord | None]] = []
    for folder in sorted(base.iterdir()):
        if not folder.is_dir():
            continue
        owner_file = folder / OWNER
        if not owner_file.is_file():  # a runner that died before claiming, or one starting now
            with contextlib.suppress(OSError):
                if time.time() - folder.stat().st_mtime > LOST_AFTER:
                    shutil.rmtree(folder, ignore_errors=True)
                    swept.append((folder.name, None))
            continue
        with open(owner_file, encoding="utf-8") as fh:
            if not _lock(fh, blocking=False):
                continue  # its runner is alive
            try:
                owner = json.loads(fh.read() or "{}")
            except ValueError:
                owner = {}
            written = None
            if runs is not None and owner.get("store") == runs.store.url:
                with contextlib.suppress(Exception):  # a record we cannot fix is shown lost anyway
                    written = _write_lost(runs, folder, owner)
            shutil.rmtree(folder, ignore_errors=True)
            swept.append((folder.name, written))
    return swept


def _write_lost(runs: RunStore, folder: Path, owner: dict[str, Any]) -> RunRecord | None:
    from mizzen.storage.runs import mark_lost

    record = runs.stored(f"{owner['workload']}/{owner.get('run', folder.name)}")
    if record.status not in ("running", "pending") or runs.is_done(record):
        return None
    for log in sorted(folder.glob("*.log")):  # masked when written; the last lines were unsent
        runs.put_log(record, log.stem, log.read_bytes())
    for step in record.steps:  # started after the last upload: its folder tells
        if step.status == "pending" and (folder / step.name).is_dir():
            step.status = "running"
            step.started = (folder / step.name).stat().st_mtime
    mark_lost(record)
    runs.finish(record)
    return record
