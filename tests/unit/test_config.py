"""Settings: names, defaults, NAME_FILE secrets, and errors that never show a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoprelay.config import load_settings
from shoprelay.errors import ConfigError


def test_defaults_match_the_documentation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without configuration, shoprelay talks to Klaviyo's real API at the spec's revision."""
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.KLAVIYO_API_URL == "https://a.klaviyo.com"
    assert settings.KLAVIYO_REVISION == "2026-07-15"
    assert settings.DATABASE_URL.startswith("sqlite+aiosqlite:///")
    assert settings.SHIPSTATION_POLL_INTERVAL == 1800
    assert not settings.shipstation_enabled


def test_secret_comes_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """KLAVIYO_PRIVATE_API_KEY_FILE supplies the key, trimmed of its newline."""
    monkeypatch.chdir(tmp_path)
    secret = tmp_path / "key"
    secret.write_text("pk_from_file\n")
    settings = load_settings({"KLAVIYO_PRIVATE_API_KEY_FILE": str(secret)})
    assert settings.KLAVIYO_PRIVATE_API_KEY is not None
    assert settings.KLAVIYO_PRIVATE_API_KEY.get_secret_value() == "pk_from_file"


def test_unreadable_secret_file_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret file that cannot be read stops start-up naming the _FILE variable."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="SHOPIFY_WEBHOOK_SECRET_FILE"):
        load_settings({"SHOPIFY_WEBHOOK_SECRET_FILE": str(tmp_path / "missing")})


def test_malformed_setting_names_the_variable_and_not_the_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad value is reported by name; the value itself is never echoed."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_settings({"KLAVIYO_API_URL": "pk_live_secretlooking", "DELIVERY_MAX_ATTEMPTS": "0"})
    assert "KLAVIYO_API_URL" in str(caught.value) or "DELIVERY_MAX_ATTEMPTS" in str(caught.value)
    assert "pk_live_secretlooking" not in str(caught.value)


def test_secrets_never_appear_in_repr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Printing the settings object does not reveal a secret."""
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"KLAVIYO_PRIVATE_API_KEY": "pk_abcdefgh12345"})
    assert "pk_abcdefgh12345" not in repr(settings)
    assert "pk_abcdefgh12345" not in str(settings.model_dump())


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A .env file in the working directory supplies settings with the seed's names."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHOPIFY_WEBHOOK_SECRET", raising=False)
    (tmp_path / ".env").write_text('SHOPIFY_WEBHOOK_SECRET="from-dotenv"\n')
    settings = load_settings()
    assert settings.shopify_secrets == [b"from-dotenv"]


def test_webhook_bounds_default_to_two_days_and_64_mb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replays older than 48 h are refused; each receiver holds at most 64 MB of bodies."""
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.SHOPIFY_WEBHOOK_MAX_AGE_SECONDS == 172_800
    assert settings.SHOPIFY_MAX_PENDING_BYTES == 64_000_000
    assert settings.RECEIVER_MAX_CONNECTIONS == 1000
    assert (
        load_settings({"SHOPIFY_WEBHOOK_MAX_AGE_SECONDS": "0"}).SHOPIFY_WEBHOOK_MAX_AGE_SECONDS == 0
    )


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"SHOPIFY_WEBHOOK_MAX_AGE_SECONDS": "-1"}, "SHOPIFY_WEBHOOK_MAX_AGE_SECONDS"),
        ({"RECEIVER_MAX_CONNECTIONS": "0"}, "RECEIVER_MAX_CONNECTIONS"),
        (
            {"SHOPIFY_MAX_BODY_BYTES": "2000000", "SHOPIFY_MAX_PENDING_BYTES": "1999999"},
            "SHOPIFY_MAX_PENDING_BYTES",
        ),
    ],
)
def test_webhook_bounds_that_cannot_work_stop_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], named: str
) -> None:
    """A negative age, no connections, or pending bytes too few for one body the limit allows."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=f"^{named}:"):
        load_settings(environ)
