"""The JSON Schema of mizzen.yaml, generated from the models."""

from __future__ import annotations

from typing import Any

from mizzen.spec.models import API_VERSION, Project


def json_schema() -> dict[str, Any]:
    schema = Project.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://mizzen.io/schema/{API_VERSION}/project.json"
    schema["title"] = "mizzen.yaml"
    # The YAML allows short forms the models normalise: `image: REPO`, `lake: s3://…`, `warehouse: [user]`,
    # `schedule: "0 3 * * *"`, steps as plain job names, `command` as one string.
    props = schema["properties"]
    props["image"]["anyOf"] = [{"type": "string"}, *props["image"].get("anyOf", [])]
    props["stores"]["additionalProperties"] = {
        "anyOf": [{"type": "string"}, {"$ref": "#/$defs/StoreSpec"}]
    }
    props["secrets"]["additionalProperties"] = {
        "anyOf": [{"type": "array", "items": {"type": "string"}}, {"$ref": "#/$defs/SecretSpec"}]
    }
    defs = schema["$defs"]
    for name in ("JobSpec", "PipelineSpec"):
        sched = defs[name]["properties"]["schedule"]
        sched["anyOf"] = [{"type": "string"}, *sched.get("anyOf", [])]
    steps = defs["PipelineSpec"]["properties"]["steps"]
    steps["items"] = {"anyOf": [{"type": "string"}, steps["items"]]}
    for name in ("JobSpec", "ServiceSpec"):
        cmd = defs[name]["properties"]["command"]
        cmd["anyOf"] = [{"type": "string"}, *cmd.get("anyOf", [])]
    return schema
