"""Offline validation of rendered objects: built-in kinds against the official Kubernetes JSON
schemas (`kubernetes-validate`, strict), operator kinds against the CRDs' openAPIV3Schema."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import yaml

KUBERNETES_VERSION = "1.33"
CRD_DIR = Path(
    os.environ.get("MIZZEN_CRD_DIR", Path(__file__).resolve().parents[3] / "shared" / "crds")
)


def crd_dir() -> Path:
    for candidate in (CRD_DIR, Path("/work/shared/crds")):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no CRD folder at {CRD_DIR} (set MIZZEN_CRD_DIR)")


def to_json_schema(node: Any) -> Any:
    """OpenAPI v3 (structural, as in a CRD) -> JSON Schema with the API server's meaning:
    int-or-string accepts both, preserve-unknown-fields keeps anything, nullable allows null,
    and an object with `properties` rejects fields it does not declare (the server would
    silently prune them: a typo in the renderer must fail here instead)."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.pop("anyOf", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in node and not preserve and "additionalProperties" not in node:
        out["additionalProperties"] = False
    if node.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        for key in ("apiVersion", "kind"):
            props.setdefault(key, {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    out.pop("nullable", None)
    return out


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> JSON Schema, for every served version of every CRD file."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(crd_dir().glob("*.yaml")):
        crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = to_json_schema(version["schema"]["openAPIV3Schema"])
            out[(f"{group}/{version['name']}", kind)] = schema
    return out


def validate(obj: dict[str, Any]) -> list[str]:
    """Problems with one object ([] when valid)."""
    key = (obj["apiVersion"], obj["kind"])
    where = f"{obj['kind']}/{obj['metadata'].get('name') or obj['metadata'].get('generateName')}"
    schemas = crd_schemas()
    if key in schemas:
        import jsonschema

        validator = jsonschema.Draft7Validator(schemas[key])
        return [
            f"{where}: {'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(obj)
        ]
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{where}: {'.'.join(map(str, e.path))}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError as e:
        return [f"{where}: {e.message}"]
    return []
