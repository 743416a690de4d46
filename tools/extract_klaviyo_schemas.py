"""Extract the JSON Schemas of the Klaviyo request bodies we send from the official spec."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = Path("/work/shared/reference/klaviyo-openapi.json")
OUTPUTS = (
    ROOT / "src/shoprelay/sim/data/klaviyo_schemas.json",
    ROOT / "tests/fixtures/klaviyo/request-schemas.json",
)
# (operationId, method, path); the GETs carry no body but share the bulk-import rate limits.
OPERATIONS = (
    ("create_event", "post", "/api/events"),
    ("bulk_create_events", "post", "/api/event-bulk-create-jobs"),
    ("create_or_update_profile", "post", "/api/profile-import"),
    ("bulk_import_profiles", "post", "/api/profile-bulk-import-jobs"),
    ("get_bulk_import_profiles_job", "get", "/api/profile-bulk-import-jobs/{job_id}"),
    (
        "get_errors_for_bulk_import_profiles_job",
        "get",
        "/api/profile-bulk-import-jobs/{id}/import-errors",
    ),
    ("bulk_subscribe_profiles", "post", "/api/profile-subscription-bulk-create-jobs"),
    ("bulk_unsubscribe_profiles", "post", "/api/profile-subscription-bulk-delete-jobs"),
    ("request_profile_deletion", "post", "/api/data-privacy-deletion-jobs"),
    # Reads for `shoprelay reconcile`: the account's time zone, metric ids, daily counts.
    ("get_accounts", "get", "/api/accounts"),
    ("get_metrics", "get", "/api/metrics"),
    ("query_metric_aggregates", "post", "/api/metric-aggregates"),
)
# Operations whose answers the simulator builds itself: their response schemas are kept, so
# tests check the simulator answers as the spec says.
RESPONSES_CHECKED = frozenset({"get_accounts", "get_metrics", "query_metric_aggregates"})
# Prose and samples only; dropping them keeps the file small and the validator fast.
ANNOTATIONS = frozenset({"description", "example"})
Schema = dict[str, Any]


def resolve_refs(node: Any, components: Schema) -> Any:
    """Inline every `$ref`, keeping sibling keys such as `nullable` (OpenAPI 3.0 habit)."""
    if isinstance(node, list):
        return [resolve_refs(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    resolved = {k: resolve_refs(v, components) for k, v in node.items() if k not in ANNOTATIONS}
    ref = resolved.pop("$ref", None)
    if ref is None:
        return resolved
    target = resolve_refs(components[ref.rsplit("/", 1)[-1]], components)
    return {**target, **resolved}


def to_json_schema(node: Any) -> Any:
    """Rewrite OpenAPI 3.0 `nullable: true` as a JSON Schema type union."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted: Schema = {}
    for key, value in node.items():
        if key == "properties":  # a name→schema map: its keys are field names, not keywords
            converted[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        else:
            converted[key] = to_json_schema(value)
    if converted.pop("nullable", False):
        allow_null(converted)
    return converted


def allow_null(schema: Schema) -> None:
    """Let `schema` also accept JSON null."""
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema["type"] = [*types, "null"]
    elif "oneOf" in schema:
        schema["oneOf"] = [*schema["oneOf"], {"type": "null"}]
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]


def query_parameters(operation: Schema) -> Schema:
    """The query parameters an operation takes: name → the values allowed (None: any)."""
    found: Schema = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] != "query":
            continue
        schema = parameter.get("schema", {})
        found[parameter["name"]] = (schema.get("items") or schema).get("enum")
    return found


def extract(spec: Schema) -> Schema:
    """Build the document written to both outputs."""
    components = spec["components"]["schemas"]
    operations: Schema = {}
    for operation_id, method, path in OPERATIONS:
        operation = spec["paths"][path][method]
        assert operation["operationId"] == operation_id, (path, method)
        entry: Schema = {
            "method": method.upper(),
            "path": path,
            "ratelimit": operation["x-klaviyo-ratelimit"],
            "scopes": operation["x-klaviyo-scopes"],
            "query": query_parameters(operation),
        }
        body = operation.get("requestBody")
        if body is not None:
            ref = body["content"]["application/vnd.api+json"]["schema"]["$ref"]
            entry["schema_name"] = ref.rsplit("/", 1)[-1]
            request_schema = to_json_schema(resolve_refs({"$ref": ref}, components))
            entry["request_schema"] = {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                **request_schema,
            }
        if operation_id in RESPONSES_CHECKED:
            ok = next(code for code in operation["responses"] if code.startswith("2"))
            ref = operation["responses"][ok]["content"]["application/vnd.api+json"]["schema"]
            entry["response_schema"] = {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                **to_json_schema(resolve_refs(ref, components)),
            }
        operations[operation_id] = entry
    return {"revision": spec["info"]["version"], "operations": operations}


def main() -> None:
    """Read the spec and write the schema file for the simulator and for the tests."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    args = parser.parse_args()
    raw = args.spec.read_bytes()
    document = extract(json.loads(raw))
    document["source"] = {
        "file": "klaviyo-openapi.json (github.com/klaviyo/openapi openapi/stable.json)",
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    text = json.dumps(document, indent=1, sort_keys=True) + "\n"
    for output in OUTPUTS:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        print(f"wrote {output.relative_to(ROOT)} ({len(text):,} bytes)")


if __name__ == "__main__":
    main()
