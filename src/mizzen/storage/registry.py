"""The model registry: named, integer-versioned models in the project store.

Layout:

    models/<name>/<version>/_claim        created first with a conditional create: the version
                                         number belongs to whoever created it (no races)
    models/<name>/<version>/model.onnx    the model files (any names)
    models/<name>/<version>/model.json    {name, version, format, files, signature, example,
                                         created, run_id, git_sha, metrics, tags}
    models/<name>/<version>/_complete     written last: only now is the version visible
    models/<name>/_aliases/<alias>        the version number an alias points at

A publisher that dies midway leaves a claim without `_complete`: readers never see it, and
its number is simply not reused. The next publish of that model removes what it uploaded
(partial objects too), once the claim's owner is known to be dead; the claim stays.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mizzen.errors import MizzenError, StoreError, UsageError
from mizzen.storage.base import Store
from mizzen.storage.local import LocalStore
from mizzen.storage.paths import inside, unsafe

CLAIM = "_claim"
COMPLETE = "_complete"
META = "model.json"
ALIASES = "_aliases"
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class ModelNotFound(MizzenError):
    """No such model, version or alias."""


class UnsafeModel(StoreError):
    """A version's `model.json` lists a file that would land outside its folder."""

    def __init__(self, name: str, version: int, path: object, why: str) -> None:
        super().__init__(
            f"model {name!r} version {version}: model.json lists {path!r} among its files, and {why}; "
            "a model's files must be relative paths inside its folder, so it was not fetched",
            hint="republish the model with mizzen.publish_model, or mizzen models rm it",
        )
        self.name = name
        self.version = version
        self.path = path


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    meta: dict[str, Any]
    files: list[str] = field(default_factory=list)

    @property
    def format(self) -> str:
        return str(self.meta.get("format", "onnx"))

    @property
    def signature(self) -> dict[str, Any]:
        return dict(self.meta.get("signature") or {})

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.meta.get("metrics") or {})

    @property
    def tags(self) -> dict[str, Any]:
        return dict(self.meta.get("tags") or {})

    @property
    def created(self) -> float | None:
        value = self.meta.get("created")
        return float(value) if value is not None else None


def validate_name(name: str, what: str = "model name") -> str:
    """DNS-1123 label: lowercase letters, digits and '-', at most 63 characters."""
    if not isinstance(name, str) or len(name) > 63 or not _DNS1123.match(name):
        raise UsageError(
            f"invalid {what} {name!r}",
            hint="use lowercase letters, digits and '-' (DNS-1123, at most 63 characters, no slashes or dots)",
        )
    return name


def validate_alias(alias: str) -> str:
    validate_name(alias, "alias")
    if alias.isdigit() or alias == "latest":
        raise UsageError(f"invalid alias {alias!r}", hint="an alias cannot be a number or 'latest'")
    return alias


class ModelRegistry:
    """Models in one store (the project store)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.stats: dict[str, int] = {"downloaded": 0}

    # --- reading --------------------------------------------------------------------------
    def names(self) -> list[str]:
        return [n for n in self.store.list_dirs("models") if _DNS1123.match(n)]

    def versions(self, name: str) -> list[int]:
        """Complete versions, ascending (one LIST call)."""
        validate_name(name)
        found: set[int] = set()
        for info in self.store.list(f"models/{name}"):
            parts = info.key.split("/")
            if len(parts) == 4 and parts[3] == COMPLETE and parts[2].isdigit():
                found.add(int(parts[2]))
        return sorted(found)

    def aliases(self, name: str) -> dict[str, int]:
        validate_name(name)
        out: dict[str, int] = {}
        for info in self.store.list(f"models/{name}/{ALIASES}"):
            alias = info.key.rsplit("/", 1)[-1]
            try:
                out[alias] = int(self.store.read_bytes(info.key).decode().strip())
            except (FileNotFoundError, ValueError):
                continue
        return dict(sorted(out.items()))

    def resolve(self, name: str, ref: int | str = "latest") -> int:
        """A version number from an int, "3", "latest" or an alias."""
        validate_name(name)
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            version = int(ref)
            if not self.store.exists(f"models/{name}/{version}/{COMPLETE}"):
                raise ModelNotFound(
                    f"model {name!r} has no version {version}", hint=self._hint(name)
                )
            return version
        if ref == "latest":
            versions = self.versions(name)
            if not versions:
                raise ModelNotFound(
                    f"model {name!r} has no published version",
                    hint="publish one with mizzen.publish_model(...)",
                )
            return versions[-1]
        validate_alias(ref)
        try:
            data = self.store.read_bytes(f"models/{name}/{ALIASES}/{ref}")
        except FileNotFoundError:
            raise ModelNotFound(
                f"model {name!r} has no alias {ref!r}", hint=self._hint(name)
            ) from None
        return self.resolve(name, int(data.decode().strip()))

    def _hint(self, name: str) -> str:
        versions = self.versions(name)
        aliases = self.aliases(name)
        if not versions:
            return "it has no published versions"
        known = ", ".join(str(v) for v in versions)
        if aliases:
            known += "; aliases: " + ", ".join(aliases)
        return f"known versions: {known}"

    def get(self, name: str, version: int | str = "latest") -> ModelVersion:
        number = self.resolve(name, version)
        try:
            meta = json.loads(self.store.read_bytes(f"models/{name}/{number}/{META}"))
        except FileNotFoundError:
            raise ModelNotFound(f"model {name!r} version {number} has no {META}") from None
        return ModelVersion(name=name, version=number, meta=meta, files=list(meta.get("files", [])))

    def fetch(self, name: str, version: int | str, dest_dir: str | Path) -> Path:
        """The version's files in `dest_dir/<name>/<version>/` (downloaded once per version).

        Every file listed in model.json must be a relative path inside that folder (no
        absolute path, no `..`, no symbolic link out of it, in the store or on disk):
        otherwise `UnsafeModel`, before anything is written."""
        mv = self.get(name, version)
        listed = mv.meta.get("files", [])
        if not isinstance(listed, list):
            raise UnsafeModel(name, mv.version, listed, "`files` is not a list of file names")
        for rel in mv.files:
            why = unsafe(rel)
            if why:
                raise UnsafeModel(name, mv.version, rel, why)
        target = Path(dest_dir) / name / str(mv.version)
        marker = target / ".complete"
        if marker.is_file():
            return target
        tmp = target.with_name(f".{mv.version}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            for rel in [*mv.files, META]:
                self._get_inside(mv, rel, tmp)
            (tmp / ".complete").write_text(str(mv.version))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            tmp.rename(target)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another process got there first
            if not marker.is_file():
                raise
        return target

    def _get_inside(self, mv: ModelVersion, rel: str, folder: Path) -> None:
        """Download one file of `mv` to `folder/rel`, refusing any symbolic link that would
        take the source out of the version's folder in a local store, or the copy out of
        `folder`."""
        key = f"models/{mv.name}/{mv.version}/{rel}"
        if isinstance(self.store, LocalStore):  # a folder: its symbolic links count too
            version_dir = self.store.root / "models" / mv.name / str(mv.version)
            if not inside(version_dir, version_dir / rel):
                raise UnsafeModel(
                    mv.name, mv.version, rel, "it is a symbolic link out of the version's folder"
                )
        dest = folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink() or not inside(folder, dest.parent):
            raise UnsafeModel(mv.name, mv.version, rel, "it leads out of the destination folder")
        self.store.get_file(key, str(dest))
        self.stats["downloaded"] += 1

    # --- writing --------------------------------------------------------------------------
    def publish(
        self, name: str, files: str | Path, meta: dict[str, Any] | None = None
    ) -> ModelVersion:
        """Upload a file or a folder's files as the next version; visible once complete."""
        validate_name(name)
        source = Path(files)
        if source.is_file():
            pairs = [(source, source.name)]
        elif source.is_dir():
            pairs = sorted(
                (p, p.relative_to(source).as_posix()) for p in source.rglob("*") if p.is_file()
            )
        else:
            raise UsageError(f"publish {name!r}: {source} is neither a file nor a folder")
        if not pairs:
            raise UsageError(f"publish {name!r}: {source} holds no files")
        names = [rel for _, rel in pairs]
        reserved = {META, CLAIM, COMPLETE}.intersection(names)
        if reserved:
            raise UsageError(
                f"publish {name!r}: file name(s) {', '.join(sorted(reserved))} are reserved by the registry"
            )
        with contextlib.suppress(OSError, StoreError, ValueError):  # housekeeping only
            self.sweep(name)
        version = self._claim(name)
        prefix = f"models/{name}/{version}"
        for path, rel in pairs:
            self.store.put_file(str(path), f"{prefix}/{rel}")
        full = {
            "format": "onnx",
            "signature": {"inputs": [], "outputs": []},
            "example": None,
            "run_id": None,
            "git_sha": None,
            "metrics": {},
            "tags": {},
            **(meta or {}),
            "name": name,
            "version": version,
            "files": names,
            "created": time.time(),
        }
        self.store.write_bytes(
            f"{prefix}/{META}",
            json.dumps(full, indent=1, sort_keys=True, default=_jsonable).encode(),
        )
        self.store.write_bytes(f"{prefix}/{COMPLETE}", b"")
        return ModelVersion(name=name, version=version, meta=full, files=names)

    def _claim(self, name: str) -> int:
        """The next free version number, taken with a conditional create."""
        taken = [int(d) for d in self.store.list_dirs(f"models/{name}") if d.isdigit()]
        candidate = max(taken, default=0) + 1
        owner = json.dumps(owner_record()).encode()
        for _ in range(1000):
            if self.store.create(f"models/{name}/{candidate}/{CLAIM}", owner):
                return candidate
            candidate += 1
        raise StoreError(f"could not claim a version of model {name!r}")

    def sweep(self, name: str) -> list[int]:
        """Remove what dead publishers of `name` left: the files of versions that were
        claimed but never completed, their partial objects (`.tmp-` files in a local folder,
        unfinished multipart uploads on S3). The claims stay: numbers are never reused. A
        version is left alone while its publisher may be alive (see `owner_alive`)."""
        validate_name(name)
        found: dict[int, set[str]] = {}
        for info in self.store.list(f"models/{name}"):
            parts = info.key.split("/", 3)
            if len(parts) == 4 and parts[2].isdigit():
                found.setdefault(int(parts[2]), set()).add(parts[3])
        incomplete = [v for v, f in sorted(found.items()) if CLAIM in f and COMPLETE not in f]
        uploads = self._s3_uploads() if incomplete else []
        swept = []
        for version in incomplete:
            prefix = f"models/{name}/{version}"
            files = found[version] - {CLAIM}
            partial = self._local_partials(prefix)
            pending = [u for u in uploads if u[1].startswith(self._bucket_key(prefix) + "/")]
            if not (files or partial or pending) or not self._abandoned(f"{prefix}/{CLAIM}"):
                continue
            # the listing is older than the owner's death: it may have completed meanwhile
            if self.store.exists(f"{prefix}/{COMPLETE}"):
                continue
            for rel in sorted(files):
                self.store.delete(f"{prefix}/{rel}")
            for path in partial:
                path.unlink(missing_ok=True)
            for bucket, key, upload in pending:
                self.store.fs.abort_mpu(bucket, key, upload)  # type: ignore[attr-defined]
            swept.append(version)
        self.stats["swept"] = self.stats.get("swept", 0) + len(swept)
        return swept

    def _abandoned(self, claim_key: str) -> bool:
        try:
            owner = json.loads(self.store.read_bytes(claim_key))
        except (FileNotFoundError, ValueError):
            return False
        if not isinstance(owner, dict):
            return False
        alive = owner_alive(owner)
        if alive is None:  # another machine or pid namespace: only old claims
            started = owner.get("time")
            return isinstance(started, int | float) and time.time() - started > ABANDONED_AFTER
        return not alive

    def _local_partials(self, prefix: str) -> list[Path]:
        """`.tmp-` files a killed write left in a local store's folder (listings skip them)."""
        if not isinstance(self.store, LocalStore):
            return []
        folder = self.store.root / prefix
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            return sorted(p for p in folder.rglob(".tmp-*") if p.is_file() and not p.is_symlink())
        return []

    def _bucket_key(self, prefix: str) -> str:
        """`prefix` as a key in an S3 store's bucket."""
        return f"{getattr(self.store, 'root', '')}/{prefix}".split("/", 1)[1]

    def _s3_uploads(self) -> list[tuple[str, str, str]]:
        """(bucket, key, upload id) of the unfinished multipart uploads in an S3 store's
        bucket (s3fs uploads files of 100 MiB and more in parts)."""
        from mizzen.storage.fsspec_store import S3Store

        if not isinstance(self.store, S3Store):
            return []
        bucket = self.store.root.split("/", 1)[0]
        found = self.store.fs.list_multipart_uploads(bucket)
        return [(bucket, u["Key"], u["UploadId"]) for u in found if "Key" in u]

    def set_alias(self, name: str, alias: str, version: int | str) -> int:
        validate_alias(alias)
        number = self.resolve(name, version)
        self.store.write_bytes(f"models/{name}/{ALIASES}/{alias}", str(number).encode())
        return number

    def remove_alias(self, name: str, alias: str) -> None:
        validate_alias(alias)
        self.store.delete(f"models/{name}/{ALIASES}/{alias}")

    def delete(self, name: str, version: int | str, force: bool = False) -> None:
        """Remove a version. Refused while an alias points at it, unless `force` (which drops
        those aliases too)."""
        number = self.resolve(name, version)
        pointing = [a for a, v in self.aliases(name).items() if v == number]
        if pointing and not force:
            raise UsageError(
                f"model {name!r} version {number} is aliased as {', '.join(pointing)}",
                hint="move the alias first (mizzen models alias), or pass --force",
            )
        for alias in pointing:
            self.remove_alias(name, alias)
        prefix = f"models/{name}/{number}"
        self.store.delete(f"{prefix}/{COMPLETE}")  # invisible first
        for info in list(self.store.list(prefix)):
            if info.key != f"{prefix}/{CLAIM}":  # the claim stays: numbers are never reused
                self.store.delete(info.key)


# A claim (or publish folder) whose owner cannot be checked from here (another machine or
# pid namespace) counts as abandoned only after this long.
ABANDONED_AFTER = 24 * 3600.0


def owner_record() -> dict[str, Any]:
    """Who this process is, precisely enough for `owner_alive` to tell later if it died."""
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "pid": pid,
        "pidns": _pid_namespace(),
        "started": _start_ticks(pid),
        "time": time.time(),
    }


def owner_alive(owner: dict[str, Any]) -> bool | None:
    """True if the process `owner_record()` described still runs, False if it is gone (or
    its pid now belongs to another process), None if this machine cannot tell."""
    pid = owner.get("pid")
    if (
        owner.get("host") != socket.gethostname()
        or owner.get("pidns") is None
        or owner.get("pidns") != _pid_namespace()
        or not isinstance(pid, int)
    ):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    started = _start_ticks(pid)
    if started is None:  # a zombie, or gone since
        return False
    return owner.get("started") in (None, started)


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _start_ticks(pid: int) -> int | None:
    """When `pid` started (clock ticks after boot, from /proc); None if it is not running."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if not fields or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def sweep_publish_folders(base: str | Path | None = None) -> list[str]:
    """Remove the temporary folders (`mizzen-publish-*`) of publishes whose process died;
    a folder whose owner file is missing or unreadable only once it is a day old."""
    import tempfile

    root = Path(base or tempfile.gettempdir())
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith(PUBLISH_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            owner = json.loads((Path(entry.path) / OWNER).read_text())
            alive = owner_alive(owner) if isinstance(owner, dict) else None
        except (OSError, ValueError):
            alive = None
        if alive is None:
            try:
                stale = time.time() - entry.stat(follow_symlinks=False).st_mtime > ABANDONED_AFTER
            except OSError:
                continue
            if not stale:
                continue
        elif alive:
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    return removed


PUBLISH_PREFIX = "mizzen-publish-"
OWNER = ".mizzen-owner.json"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


# --- SDK: publish_model / load_model -------------------------------------------------------
def publish_model(
    name: str,
    model: Any,
    signature: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    tags: dict[str, Any] | None = None,
    example: Any = None,
    *,
    format: str | None = None,
    store: Store | None = None,
    trained_on: Sequence[str] | None = None,
) -> ModelVersion:
    """Publish `model` to the project store's registry as the next version of `name`.

    `model`: an ONNX file path or ONNX bytes; a fitted scikit-learn estimator (converted with
    skl2onnx; the input width comes from `example` or the estimator's `n_features_in_`); a
    PyTorch module (exported with torch.onnx, needs `example`); any object with
    `format="python"` (pickled: only servable by Python, never chosen implicitly).
    `example`: a small input (numpy array or nested list) kept in model.json.
    `trained_on`: the dataset versions it was trained on (`["features@3"]`), for a model
    trained in another run than the one publishing it; by default, every dataset version
    the publishing run read.
    """
    import tempfile

    from mizzen.storage.project import project_store

    validate_name(name)
    pinned = _trained_on(trained_on)
    registry = ModelRegistry(store if store is not None else project_store())
    sweep_publish_folders()
    with tempfile.TemporaryDirectory(prefix=PUBLISH_PREFIX) as tmp:
        (Path(tmp) / OWNER).write_text(json.dumps(owner_record()))
        work = Path(tmp) / "model"
        work.mkdir()
        fmt, path = _to_file(model, work, example, format)
        sig = signature or (onnx_signature(path) if fmt == "onnx" else _example_signature(example))
        meta: dict[str, Any] = {
            "format": fmt,
            "signature": sig,
            "example": _example_json(example, sig),
            "metrics": dict(metrics or {}),
            "tags": dict(tags or {}),
            **_run_context(),
        }
        version = registry.publish(name, path, meta)
    _record_lineage(registry.store, name, version.version, meta.get("run_id"), pinned)
    return version


def _trained_on(refs: Sequence[str] | None) -> list[tuple[str, int]] | None:
    if refs is None:
        return None
    from mizzen.datasets.model import parse_ref

    if isinstance(refs, str):
        refs = [refs]
    out = []
    for text in refs:
        try:
            ref = parse_ref(text)
        except ValueError as exc:
            raise UsageError(f"trained_on: {exc}") from None
        if ref.version is None:
            raise UsageError(
                f"trained_on: {text!r} names no version",
                hint=f"give the version read, e.g. {ref.name}@3 (DatasetHandle.version())",
            )
        out.append((ref.name, ref.version))
    return out


def _record_lineage(
    store: Store,
    name: str,
    version: int,
    run_id: str | None,
    trained_on: list[tuple[str, int]] | None,
) -> None:
    """What a published model was trained on: `trained_on` as given, or the dataset
    versions its run read (in any step of a pipeline run: `train` reads, `evaluate`
    publishes). A run that read none has nothing to record."""
    from mizzen.datasets.lineage import Lineage

    lineage = Lineage(store)
    if trained_on is not None:
        lineage.record_model(name, version, run_id=run_id, trained_on=trained_on)
    elif run_id and any(e.kind == "read" for e in lineage.run_events(run_id)):
        lineage.record_model(name, version, run_id=run_id)


def load_model(name: str, ref: int | str = "latest", *, store: Store | None = None) -> Any:
    """A ready `onnxruntime.InferenceSession` for `name` at `ref` (version, alias, latest)."""
    from mizzen.storage.project import project_store

    registry = ModelRegistry(store if store is not None else project_store())
    mv = registry.get(name, ref)
    if mv.format != "onnx":
        raise UsageError(
            f"model {name!r} version {mv.version} is in {mv.format!r} format",
            hint="load_model returns ONNX Runtime sessions; fetch it with ModelRegistry.fetch instead",
        )
    folder = registry.fetch(name, mv.version, model_cache_dir(registry.store))
    onnx_files = [f for f in mv.files if f.endswith(".onnx")]
    if not onnx_files:
        raise StoreError(f"model {name!r} version {mv.version} has no .onnx file")
    ort = _import("onnxruntime", "models")
    return ort.InferenceSession(str(folder / onnx_files[0]), providers=["CPUExecutionProvider"])


def model_cache_dir(store: Store) -> Path:
    """Per-store cache of fetched versions: `$MIZZEN_CACHE_DIR` or `.mizzen/cache`, then
    `models/<digest of the store URL>`."""
    import hashlib

    base = Path(os.environ.get("MIZZEN_CACHE_DIR") or Path.cwd() / ".mizzen" / "cache")
    return base / "models" / hashlib.sha256(store.url.encode()).hexdigest()[:12]


def onnx_signature(path: Path) -> dict[str, Any]:
    """Inputs and outputs (name, dtype, shape with None for dynamic dims) of an ONNX file."""
    onnx = _import("onnx", "models")
    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}

    def describe(value: Any) -> dict[str, Any]:
        tensor = value.type.tensor_type
        dtype = (
            str(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))
            if tensor.elem_type
            else "unknown"
        )
        shape = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        return {"name": value.name, "dtype": dtype, "shape": shape}

    return {
        "inputs": [describe(v) for v in graph.input if v.name not in initializers],
        "outputs": [describe(v) for v in graph.output],
    }


def _example_signature(example: Any) -> dict[str, Any]:
    """A python model's signature, from its example input (the server validates against it)."""
    if example is None:
        raise UsageError(
            "publish_model(format='python') needs `example=` (a small input) or `signature=`",
            hint="the model server checks requests against the signature",
        )
    import numpy as np

    arr = np.asarray(example)
    shape: list[int | None] = [None, *arr.shape[1:]] if arr.ndim else []
    return {"inputs": [{"name": "input", "dtype": str(arr.dtype), "shape": shape}], "outputs": []}


def _to_file(model: Any, tmp: Path, example: Any, format: str | None) -> tuple[str, Path]:
    if format not in (None, "onnx", "python"):
        raise UsageError(
            f"publish_model: unknown format {format!r}", hint="use 'onnx' (default) or 'python'"
        )
    if format == "python":
        import pickle

        if type(model).__module__ == "__main__":
            raise UsageError(
                f"publish_model: {type(model).__name__} is defined in the script that runs, so a "
                "model server could not unpickle it",
                hint="move the class into a module the server's image or environment can import",
            )

        path = tmp / "model.pkl"
        path.write_bytes(pickle.dumps(model))
        return "python", path
    path = tmp / "model.onnx"
    if isinstance(model, (str, Path)):
        source = Path(model)
        if not source.is_file():
            raise UsageError(f"publish_model: {source} is not a file")
        if source.suffix != ".onnx":
            raise UsageError(
                f"publish_model: {source} is not an .onnx file",
                hint="pass an ONNX file, a scikit-learn estimator or a torch module",
            )
        shutil.copyfile(source, path)
        return "onnx", path
    if isinstance(model, (bytes, bytearray)):
        path.write_bytes(bytes(model))
        return "onnx", path
    module = type(model).__module__
    if module.startswith("sklearn") or hasattr(model, "n_features_in_"):
        path.write_bytes(_sklearn_to_onnx(model, example))
        return "onnx", path
    if module.startswith("torch") or any(
        c.__module__.startswith("torch.nn") for c in type(model).__mro__
    ):
        _torch_to_onnx(model, example, path)
        return "onnx", path
    if hasattr(model, "SerializeToString"):  # an onnx.ModelProto
        path.write_bytes(model.SerializeToString())
        return "onnx", path
    raise UsageError(
        f"publish_model: cannot convert a {type(model).__name__} to ONNX",
        hint="pass an ONNX file or bytes, a scikit-learn estimator, a torch module, or format='python' to pickle it",
    )


def _sklearn_to_onnx(model: Any, example: Any) -> bytes:
    np = _import("numpy", "models")
    skl2onnx = _import("skl2onnx", "models")
    from skl2onnx.common.data_types import FloatTensorType

    if example is not None:
        sample = np.asarray(example)
        width = sample.shape[-1] if sample.ndim > 1 else sample.shape[0]
    elif hasattr(model, "n_features_in_"):
        width = int(model.n_features_in_)
    else:
        raise UsageError(
            "publish_model: cannot tell the input width of this estimator",
            hint="pass example=X[:5] (a few input rows)",
        )
    options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
    onx = skl2onnx.convert_sklearn(
        model, initial_types=[("input", FloatTensorType([None, int(width)]))], options=options
    )
    return bytes(onx.SerializeToString())


def _torch_to_onnx(model: Any, example: Any, path: Path) -> None:
    torch = _import("torch", "torch")
    if example is None:
        raise UsageError(
            "publish_model: a torch module needs example=<an input batch> to be exported"
        )
    sample = (
        example
        if isinstance(example, torch.Tensor)
        else torch.as_tensor(example, dtype=torch.float32)
    )
    model.eval()
    torch.onnx.export(
        model,
        (sample,),
        str(path),
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
    )


def _example_json(example: Any, signature: dict[str, Any]) -> dict[str, Any] | None:
    if example is None:
        return None
    if isinstance(example, dict):
        return {k: _to_list(v) for k, v in example.items()}
    inputs = signature.get("inputs") or [{"name": "input"}]
    rows = _to_list(example)
    if isinstance(rows, list) and len(rows) > 5:
        rows = rows[:5]
    return {inputs[0]["name"]: rows}


def _to_list(value: Any) -> Any:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return value.tolist() if hasattr(value, "tolist") else value


def _run_context() -> dict[str, Any]:
    """run id, workload and git sha from the environment a target set (else git)."""
    from mizzen import contract

    given = contract.read(os.environ)
    sha = given.git_sha
    if not sha:
        import subprocess

        try:
            out = subprocess.run(
                ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
            )
            sha = out.stdout.strip() if out.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            sha = None
    return {
        "run_id": given.run_id,
        "workload": given.workload,
        "git_sha": sha or None,
    }


def _import(module: str, extra: str) -> Any:
    import importlib

    from mizzen.errors import MissingExtraError

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"this model operation ({module})", extra, module) from None
