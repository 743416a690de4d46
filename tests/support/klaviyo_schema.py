"""Validate request bodies against the Klaviyo spec schemas copied into tests/fixtures."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

SCHEMAS_FILE = Path(__file__).resolve().parent.parent / "fixtures/klaviyo/request-schemas.json"
FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def is_date_time(value: object) -> bool:
    """ISO 8601 date-time, as Klaviyo parses it (strings only: other types are the schema's job)."""
    if isinstance(value, str):
        datetime.fromisoformat(value)
    return True


@functools.cache
def validator_for(operation_id: str) -> Draft202012Validator:
    """The compiled validator for one operation's request body."""
    operations = json.loads(SCHEMAS_FILE.read_text(encoding="utf-8"))["operations"]
    if "request_schema" not in operations.get(operation_id, {}):
        raise KeyError(f"no request schema for operation {operation_id!r}")
    return Draft202012Validator(operations[operation_id]["request_schema"], format_checker=FORMATS)


def validate_request(operation_id: str, body: dict[str, Any]) -> list[str]:
    """Every schema violation in `body` as '<json pointer>: <message>'; empty means valid."""
    errors = validator_for(operation_id).iter_errors(body)
    return sorted(
        f"/{'/'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in errors
    )
