"""Request parsing and response encoding: Open Inference Protocol v2 and plain JSON predict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from mizzen.serve.model import LoadedModel
from mizzen.serve.signature import BadInput, coerce, datatype_of_array, from_bytes, to_bytes

Feeds = dict[str, np.ndarray]
_NP = orjson.OPT_SERIALIZE_NUMPY


def loads(body: bytes | memoryview) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"the body is not valid JSON: {exc}") from None


@dataclass
class V2Request:
    body: dict[str, Any]
    binary: memoryview | None

    def feeds(self, model: LoadedModel) -> tuple[Feeds, int]:
        inputs = self.body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise BadInput(
                'expected "inputs": a list of tensors {"name", "shape", "datatype", "data"}'
            )
        feeds: Feeds = {}
        offset = 0
        for tensor in inputs:
            if not isinstance(tensor, dict) or "name" not in tensor:
                raise BadInput("every entry of inputs needs a name")
            spec = model.input_spec(tensor["name"])
            shape = tensor.get("shape")
            if not isinstance(shape, list):
                raise BadInput(f"input {spec.name!r}: shape is missing")
            params = tensor.get("parameters") or {}
            size = params.get("binary_data_size")
            if size is not None:
                if self.binary is None or offset + size > len(self.binary):
                    raise BadInput(
                        f"input {spec.name!r}: binary_data_size {size} runs past the end of the body"
                    )
                if tensor.get("datatype") != spec.datatype:
                    raise BadInput(
                        f"input {spec.name!r}: datatype {tensor.get('datatype')} does not match the model's {spec.datatype}"
                    )
                feeds[spec.name] = from_bytes(spec, self.binary[offset : offset + size], shape)
                offset += size
            else:
                if "data" not in tensor:
                    raise BadInput(f"input {spec.name!r}: data is missing")
                feeds[spec.name] = coerce(
                    spec, tensor["data"], datatype=tensor.get("datatype"), shape=shape
                )
        missing = [t.name for t in model.inputs if t.name not in feeds]
        if missing:
            raise BadInput(
                f"missing input(s) {', '.join(map(repr, missing))}; the model's inputs are {', '.join(repr(t.name) for t in model.inputs)}"
            )
        return feeds, _rows(model, feeds)

    def forget_inputs(self) -> None:
        """Drop the parsed input tensors once converted (the rest is needed to answer)."""
        self.body.pop("inputs", None)
        self.binary = None

    def declared_rows(self) -> int:
        """The largest first dimension the request's input shapes declare."""
        rows = 0
        inputs = self.body.get("inputs")
        for tensor in inputs if isinstance(inputs, list) else ():
            shape = tensor.get("shape") if isinstance(tensor, dict) else None
            if isinstance(shape, list) and shape and isinstance(shape[0], int):
                rows = max(rows, shape[0])
        return rows

    def encode(self, model: LoadedModel, outputs: Feeds) -> tuple[bytes, int | None]:
        """The response body, and the JSON header length when binary outputs follow it."""
        requested = self.body.get("outputs")
        default_binary = bool((self.body.get("parameters") or {}).get("binary_data_output", False))
        if requested:
            wanted = []
            for r in requested:
                name = r.get("name") if isinstance(r, dict) else None
                if name not in outputs:
                    raise BadInput(
                        f"model {model.name!r} has no output {name!r}; its outputs are {', '.join(map(repr, outputs))}"
                    )
                wanted.append(
                    (name, bool((r.get("parameters") or {}).get("binary_data", default_binary)))
                )
        else:
            wanted = [(n, default_binary) for n in outputs]
        tensors = []
        blobs = []
        for name, binary in wanted:
            arr = outputs[name]
            t: dict[str, Any] = {
                "name": name,
                "datatype": datatype_of_array(arr),
                "shape": arr.shape,
            }
            if binary:
                raw = to_bytes(arr)
                t["parameters"] = {"binary_data_size": len(raw)}
                blobs.append(raw)
            else:
                t["data"] = (
                    arr.ravel() if arr.dtype.kind not in "OUS" else [_text(x) for x in arr.ravel()]
                )
            tensors.append(t)
        doc: dict[str, Any] = {
            "model_name": model.name,
            "model_version": str(model.version),
            "outputs": tensors,
        }
        if "id" in self.body:
            doc["id"] = self.body["id"]
        head = orjson.dumps(doc, option=_NP)
        if not blobs:
            return head, None
        return head + b"".join(blobs), len(head)


def parse_v2(body: bytes, header_length: int | None) -> V2Request:
    if header_length is not None:
        if header_length > len(body):
            raise BadInput("Inference-Header-Content-Length is larger than the body")
        doc = loads(memoryview(body)[:header_length])
        binary: memoryview | None = memoryview(body)[header_length:]
    else:
        doc = loads(body)
        binary = None
    if not isinstance(doc, dict):
        raise BadInput("the request must be a JSON object")
    return V2Request(doc, binary)


def declared_rows(doc: Any) -> int:
    """How many rows a plain JSON request says it has, before anything is converted."""
    if type(doc) is not dict:
        return 0
    value = doc.get("instances", doc.get("inputs"))
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict):
        return max((len(v) for v in value.values() if isinstance(v, list)), default=0)
    return 0


def _rows(model: LoadedModel, feeds: Feeds) -> int:
    first = next(iter(feeds.values()))
    if not model.batchable or first.ndim == 0:
        return 1
    rows = first.shape[0]
    for name, arr in feeds.items():
        if arr.shape[0] != rows:
            raise BadInput(f"input {name!r} has {arr.shape[0]} rows, other inputs have {rows}")
    return int(rows)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- plain JSON: {"instances": [...]} / {"inputs": ...} -------------------------------------


def plain_feeds(model: LoadedModel, doc: Any) -> tuple[Feeds, int]:
    if not isinstance(doc, dict):
        raise BadInput('expected a JSON object like {"instances": [[...], ...]}')
    if "instances" in doc:
        feeds = _instances(model, doc["instances"])
    elif "inputs" in doc:
        feeds = _columnar(model, doc["inputs"])
    else:
        raise BadInput('expected {"instances": [row, ...]} or {"inputs": {input_name: [...]}}')
    return feeds, _rows(model, feeds)


def _instances(model: LoadedModel, instances: Any) -> Feeds:
    if not isinstance(instances, list) or not instances:
        raise BadInput('"instances" must be a non-empty list of rows or records')
    if isinstance(instances[0], dict):
        return _records(model, instances)
    if len(model.inputs) != 1:
        names = ", ".join(repr(t.name) for t in model.inputs)
        raise BadInput(
            f"model {model.name!r} has several inputs ({names}): send instances as records keyed by input name"
        )
    spec = model.inputs[0]
    return {spec.name: coerce(spec, instances)}


def _records(model: LoadedModel, records: list[Any]) -> Feeds:
    if not all(isinstance(r, dict) for r in records):
        raise BadInput("mixing records and rows in instances")
    names = {t.name for t in model.inputs}
    if names <= set(records[0]):
        return {
            t.name: coerce(t, [_field(r, t.name, i) for i, r in enumerate(records)])
            for t in model.inputs
        }
    columns = feature_names(model)
    if not columns or len(model.inputs) != 1:
        inputs = ", ".join(repr(t.name) for t in model.inputs)
        raise BadInput(
            f"records must be keyed by the model's input names ({inputs}); model.json lists no column names to map other keys"
        )
    spec = model.inputs[0]
    rows = [[_field(r, c, i) for c in columns] for i, r in enumerate(records)]
    return {spec.name: coerce(spec, rows)}


def _field(record: dict[str, Any], key: str, index: int) -> Any:
    try:
        return record[key]
    except KeyError:
        raise BadInput(f"instance {index} has no field {key!r}") from None


def _columnar(model: LoadedModel, inputs: Any) -> Feeds:
    if isinstance(inputs, dict):
        unknown = [k for k in inputs if k not in {t.name for t in model.inputs}]
        if unknown:
            model.input_spec(unknown[0])  # raises naming the inputs
        return {t.name: coerce(t, inputs[t.name]) for t in model.inputs if t.name in inputs}
    if len(model.inputs) != 1:
        raise BadInput(
            f'model {model.name!r} has several inputs: send "inputs" as an object keyed by input name'
        )
    spec = model.inputs[0]
    return {spec.name: coerce(spec, inputs)}


def feature_names(model: LoadedModel) -> list[str]:
    meta = model.meta
    for candidate in (meta.get("feature_names"), meta.get("columns")):
        if isinstance(candidate, list) and candidate:
            return [str(c) for c in candidate]
    sig_inputs = (meta.get("signature") or {}).get("inputs") or []
    if len(sig_inputs) == 1 and isinstance(sig_inputs[0], dict):
        cols = sig_inputs[0].get("columns") or sig_inputs[0].get("feature_names")
        if isinstance(cols, list):
            return [str(c) for c in cols]
    return []


def plain_encode(model: LoadedModel, outputs: Feeds) -> bytes:
    if len(outputs) == 1:
        predictions: Any = next(iter(outputs.values()))
    else:
        names = list(outputs)
        columns = [a.tolist() for a in outputs.values()]
        predictions = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
    return orjson.dumps(
        {"predictions": predictions, "model_name": model.name, "model_version": str(model.version)},
        option=_NP,
    )


class PlainCodec:
    """Plain JSON predict for one model, with the common case precomputed.

    A model with a single 2-D numeric input answering `{"instances": [[...], ...]}` skips the
    general coercion: one array build, a kind check and a shape check. Anything else (records,
    a single row, ints for a float model...) goes through `plain_feeds`, which says what is wrong.
    """

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.tail = b',"model_name":%s,"model_version":%s}' % (
            orjson.dumps(model.name),
            orjson.dumps(str(model.version)),
        )
        self.batchable = model.batchable
        spec = model.inputs[0] if len(model.inputs) == 1 else None
        self.fast = (
            spec is not None
            and spec.datatype in ("FP16", "FP32", "FP64")
            and len(spec.shape) == 2
            and spec.shape[0] == -1
        )
        self.input = spec.name if spec is not None else ""
        self.columns = spec.shape[1] if spec is not None and len(spec.shape) == 2 else -1
        self.dtype = np.dtype(spec.dtype) if spec is not None and self.fast else None

    def feeds(self, doc: Any) -> tuple[Feeds, int]:
        if self.fast and type(doc) is dict and len(doc) == 1:
            rows = doc.get("instances")
            if type(rows) is list and rows and type(rows[0]) is list:
                try:
                    arr = np.array(rows)
                except (ValueError, TypeError):
                    arr = None
                if (
                    arr is not None
                    and arr.ndim == 2
                    and arr.dtype.kind in "fiu"
                    and (self.columns == -1 or arr.shape[1] == self.columns)
                ):
                    return (
                        {self.input: arr.astype(self.dtype, copy=False)},
                        arr.shape[0] if self.batchable else 1,
                    )
        return plain_feeds(self.model, doc)

    def encode(self, outputs: Feeds) -> bytes:
        return b'{"predictions":' + self.predictions(outputs) + self.tail

    def predictions(self, outputs: Feeds) -> bytes:
        """The JSON array of predictions for `outputs` (one entry per row)."""
        if len(outputs) == 1:
            predictions: Any = next(iter(outputs.values()))
        else:
            names = list(outputs)
            columns = [a.tolist() for a in outputs.values()]
            predictions = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
        return orjson.dumps(predictions, option=_NP)

    def joined(self, parts: list[bytes]) -> bytes:
        """The answer for a request run in slices: the `predictions` arrays of its parts."""
        inner = b",".join(p[1:-1] for p in parts if len(p) > 2)
        return b'{"predictions":[' + inner + b"]" + self.tail
