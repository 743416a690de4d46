"""structlog set-up, with a redaction processor as the last guard."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SENSITIVE_KEYS = frozenset(
    {"api_key", "secret", "authorization", "password", "token", "payload", "body", "email"}
)
_KEY_PATTERN = re.compile(r"(pk_[A-Za-z0-9]{6,}|shpat_[A-Za-z0-9]{6,}|Klaviyo-API-Key \S+)")
# PostgreSQL's error details quote the row or key a statement failed on: an outbox body, a raw
# webhook, an email. hide_parameters keeps the statement's values out, not these.
_ROW_PATTERN = re.compile(r"(Failing row contains|Key \(|DETAIL:  Key)[^\n]*")


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask values under sensitive keys, and anything shaped like an API key."""
    for key, value in list(event_dict.items()):
        if key.lower() in SENSITIVE_KEYS:
            event_dict[key] = "[redacted]"
        elif isinstance(value, str):
            event_dict[key] = _KEY_PATTERN.sub(
                "[redacted]", _ROW_PATTERN.sub(r"\1 [redacted]", value)
            )
    return event_dict


def _stderr_logger(*_: Any) -> structlog.PrintLogger:
    return structlog.PrintLogger(file=sys.stderr)


def configure(level: str = "INFO", fmt: str = "console") -> None:
    """Route structlog to stderr as console lines or JSON."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    # Tracebacks become text before redaction, in both formats: the console renderer's own
    # (rich) tracebacks would print every frame's locals, customers' payloads among them.
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # Look up stderr at each logger's creation, not once: it may be replaced (tests, daemons).
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
