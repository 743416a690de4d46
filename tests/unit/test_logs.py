"""The redaction processor: the last guard against secrets and personal data in logs."""

from __future__ import annotations

import pytest
import structlog

from shoprelay.logs import configure, redact


def test_sensitive_keys_are_masked() -> None:
    """Values under keys such as email, body or api_key never reach the log."""
    event = redact(None, "info", {"email": "a@b.c", "body": "{...}", "api_key": "x", "count": 3})
    assert event == {
        "email": "[redacted]",
        "body": "[redacted]",
        "api_key": "[redacted]",
        "count": 3,
    }


def test_key_shaped_strings_are_masked_anywhere() -> None:
    """A Klaviyo or Shopify key inside a message is masked."""
    event = redact(None, "error", {"event": "failed with Klaviyo-API-Key pk_abcdef123456 set"})
    assert "pk_abcdef123456" not in event["event"]


def test_rows_quoted_by_database_errors_are_masked() -> None:
    """PostgreSQL's DETAIL quotes the failing row or key, which hold customers' data."""
    exception = (
        'IntegrityError: null value in column "account" violates not-null constraint\n'
        'DETAIL:  Failing row contains (7, null, event, {"email":"jane@example.com"}).\n'
        "DETAIL:  Key (dedup_key)=(event:jane@example.com#ab) already exists.\n"
        "[SQL: INSERT INTO outbox ...]"
    )
    event = redact(None, "warning", {"event": "ingest.group_failed", "exception": exception})
    assert "jane@example.com" not in event["exception"]
    assert "violates not-null constraint" in event["exception"]
    assert "[SQL: INSERT INTO outbox ...]" in event["exception"]


def _fail_with_a_customer_in_scope() -> None:
    customer_email = "jane.doe@example.com"
    raise RuntimeError(f"could not map the order of {len(customer_email)} characters")


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_tracebacks_show_no_local_values(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A logged exception names the frames, never the values they held (personal data)."""
    configure("INFO", fmt)
    try:
        _fail_with_a_customer_in_scope()
    except RuntimeError:
        structlog.get_logger("test").warning("mapping failed", exc_info=True)
    err = capsys.readouterr().err
    assert "_fail_with_a_customer_in_scope" in err
    assert "could not map the order" in err
    assert "jane.doe@example.com" not in err
