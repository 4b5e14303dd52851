"""One loaded model version: an ONNX Runtime session (the fast path) or a python fallback."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mizzen.errors import MizzenError
from mizzen.serve.signature import BadInput, TensorSpec, coerce

# Above this many seconds per call, run the model in a thread so the event loop keeps serving.
OFFLOAD_ABOVE_SECONDS = 0.0005


class ModelLoadError(MizzenError):
    """A model version could not be loaded or failed its check with the example input."""


@dataclass
class LoadedModel:
    name: str
    version: int
    flavour: str  # "onnx" | "python"
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    meta: dict[str, Any]
    runner: Any = field(repr=False)
    output_names: list[str] = field(default_factory=list)
    call_seconds: float = 0.0  # measured on the example input at load time

    @property
    def platform(self) -> str:
        return "onnxruntime_onnx" if self.flavour == "onnx" else "python_pickle"

    @property
    def offload(self) -> bool:
        return self.flavour != "onnx" or self.call_seconds > OFFLOAD_ABOVE_SECONDS

    @property
    def batchable(self) -> bool:
        return all(t.batched for t in self.inputs) and all(t.batched for t in self.outputs)

    def input_spec(self, name: str) -> TensorSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        names = ", ".join(repr(t.name) for t in self.inputs)
        raise BadInput(f"model {self.name!r} has no input {name!r}; its inputs are {names}")

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [t.name for t in self.inputs if t.name not in feeds]
        if missing:
            raise BadInput(
                f"missing input(s) {', '.join(map(repr, missing))} for model {self.name!r}"
            )
        return self.runner(feeds)

    def example_feeds(self) -> dict[str, np.ndarray]:
        example = self.meta.get("example") or {}
        if isinstance(example, dict):
            unknown = [k for k in example if k not in {t.name for t in self.inputs}]
            if unknown:
                raise BadInput(
                    f"the example names input(s) {', '.join(map(repr, unknown))} the model does not have"
                )
        feeds: dict[str, np.ndarray] = {}
        for spec in self.inputs:
            if spec.name in example:
                feeds[spec.name] = coerce(spec, example[spec.name])
            elif len(self.inputs) == 1 and example and not isinstance(example, dict):
                feeds[spec.name] = coerce(spec, example)
            else:
                dims = tuple(1 if d == -1 else d for d in spec.shape)
                feeds[spec.name] = (
                    np.zeros(dims, dtype=spec.dtype)
                    if spec.datatype != "BYTES"
                    else np.full(dims, "", dtype=object)
                )
        return feeds

    def verify(self) -> None:
        """Run the example input; raise ModelLoadError if the model fails or answers nonsense."""
        try:
            feeds = self.example_feeds()
            self.run(feeds)  # warm-up
            start = time.perf_counter()
            out = self.run(feeds)
            self.call_seconds = time.perf_counter() - start
        except Exception as exc:
            raise ModelLoadError(
                f"model {self.name} v{self.version} failed on its example input: {exc}"
            ) from exc
        rows = next(iter(feeds.values())).shape[0] if feeds and self.batchable else None
        for spec in self.outputs:
            arr = out.get(spec.name)
            if arr is None:
                raise ModelLoadError(
                    f"model {self.name} v{self.version} did not return output {spec.name!r}"
                )
            if rows is not None and (arr.ndim == 0 or arr.shape[0] != rows):
                raise ModelLoadError(
                    f"model {self.name} v{self.version}: output {spec.name!r} has shape {list(arr.shape)} for {rows} input row(s)"
                )


def read_meta(path: Path) -> dict[str, Any]:
    meta_file = path / "model.json"
    if not meta_file.is_file():
        raise ModelLoadError(f"{path} has no model.json")
    try:
        meta = json.loads(meta_file.read_text())
    except ValueError as exc:
        raise ModelLoadError(f"{meta_file} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise ModelLoadError(f"{meta_file} must hold a JSON object")
    return meta


def load_model(name: str, version: int, path: Path, *, allow_python: bool = False) -> LoadedModel:
    """Load the files the registry fetched into `path`, then check the model with its example."""
    meta = read_meta(path)
    flavour = meta.get("format", "onnx")
    if flavour == "onnx":
        model = _load_onnx(name, version, path, meta)
    elif flavour == "python":
        if not allow_python:
            raise ModelLoadError(
                f"model {name} v{version} is a python (pickled) model: slower than ONNX and unsafe to load from an untrusted store",
                hint="publish it as ONNX, or start the server with --allow-python to serve it anyway",
            )
        model = _load_python(name, version, path, meta)
    else:
        raise ModelLoadError(
            f"model {name} v{version}: unknown format {flavour!r} in model.json (expected 'onnx' or 'python')"
        )
    model.verify()
    return model


def _load_onnx(name: str, version: int, path: Path, meta: dict[str, Any]) -> LoadedModel:
    import onnxruntime as ort

    file = path / "model.onnx"
    if not file.is_file():
        raise ModelLoadError(
            f"model {name} v{version}: {file.name} is missing from the model's files"
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(
            str(file), sess_options=opts, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise ModelLoadError(
            f"model {name} v{version}: ONNX Runtime cannot load {file.name}: {exc}"
        ) from exc
    inputs = [TensorSpec.from_any(i.name, i.type, i.shape) for i in sess.get_inputs()]
    outputs: list[TensorSpec] = []
    converters: list[Any] = []
    for o in sess.get_outputs():
        if o.type.startswith("seq(map("):
            # scikit-learn's ZipMap: a list of {class: probability}; served as an [n, classes] tensor
            outputs.append(TensorSpec(o.name, "FP32", (-1, -1)))
            converters.append(_zipmap_to_array)
        else:
            outputs.append(TensorSpec.from_any(o.name, o.type, o.shape))
            converters.append(None)
    names = [o.name for o in outputs]
    run = sess.run
    plain = all(c is None for c in converters)

    def runner(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = run(names, feeds)
        if plain:
            return dict(zip(names, values, strict=True))
        return {n: (c(v) if c else v) for n, v, c in zip(names, values, converters, strict=True)}

    return LoadedModel(name, version, "onnx", inputs, outputs, meta, runner, names)


def _zipmap_to_array(rows: list[dict[Any, float]]) -> np.ndarray:
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    keys = sorted(rows[0])
    return np.array([[r[k] for k in keys] for r in rows], dtype=np.float32)


def _load_python(name: str, version: int, path: Path, meta: dict[str, Any]) -> LoadedModel:
    import pickle

    files = sorted(p for p in path.iterdir() if p.suffix in (".pkl", ".pickle"))
    if not files:
        raise ModelLoadError(f"model {name} v{version}: no .pkl file among the model's files")
    try:
        obj = pickle.loads(files[0].read_bytes())
    except Exception as exc:
        raise ModelLoadError(
            f"model {name} v{version}: cannot unpickle {files[0].name}: {exc}"
        ) from exc
    if not callable(getattr(obj, "predict", None)):
        raise ModelLoadError(f"model {name} v{version}: the pickled object has no predict()")
    sig = meta.get("signature") or {}
    inputs = [
        TensorSpec.from_any(t["name"], t["dtype"], t.get("shape")) for t in sig.get("inputs", [])
    ]
    outputs = [
        TensorSpec.from_any(t["name"], t["dtype"], t.get("shape")) for t in sig.get("outputs", [])
    ]
    if len(inputs) != 1 or not outputs:
        raise ModelLoadError(
            f"model {name} v{version}: a python model needs a signature with one input and at least one output in model.json"
        )
    in_name, out_name = inputs[0].name, outputs[0].name
    out_dtype = outputs[0].dtype

    def runner(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {out_name: np.asarray(obj.predict(feeds[in_name])).astype(out_dtype, copy=False)}

    return LoadedModel(name, version, "python", inputs, outputs[:1], meta, runner, [out_name])
