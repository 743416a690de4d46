"""Settings: environment variables, a `.env` file, and `NAME_FILE` secrets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shoprelay.errors import ConfigError
from shoprelay.mapping.shopify_fields import ShopifyMetrics

SECRET_NAMES = (
    "SHOPIFY_WEBHOOK_SECRET",
    "SHOPIFY_WEBHOOK_SECRET_PREVIOUS",
    "SHOPIFY_API_KEY",
    "KLAVIYO_PRIVATE_API_KEY",
    "SHIPSTATION_API_KEY",
    "SHIPSTATION_API_SECRET",
    "ADMIN_TOKEN",
)

# Shopify's retries end within hours; a delivery triggered longer ago than this is a replay.
WEBHOOK_MAX_AGE_SECONDS = 48 * 3600
MAX_PENDING_BYTES = 64_000_000
# The METRIC_* defaults: the mapping's own, so the names live in one place.
_METRICS = ShopifyMetrics()


class Settings(BaseSettings):
    """Everything shoprelay reads from its environment, loaded once by the CLI."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=True
    )

    SHOPIFY_WEBHOOK_SECRET: SecretStr | None = None
    SHOPIFY_WEBHOOK_SECRET_PREVIOUS: SecretStr | None = None
    # The Admin API token (shpat_…): webhook registration, catch-up and backfill need it.
    SHOPIFY_API_KEY: SecretStr | None = None
    SHOPIFY_SHOP: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")
    SHOPIFY_API_VERSION: str = Field(default="2026-10", pattern=r"^(\d{4}-\d{2}|unstable)$")
    # Default https://{SHOPIFY_SHOP}; point it at the simulator to test.
    SHOPIFY_ADMIN_URL: str | None = None
    SHOPIFY_CATCHUP_INTERVAL: float = Field(default=900.0, gt=0)
    SHOPIFY_BACKFILL_DAYS: int = Field(default=90, ge=0)
    # Whether `serve` imports SHOPIFY_BACKFILL_DAYS of history on its first start with a token.
    SHOPIFY_BACKFILL_ON_FIRST_START: bool = True
    # How long a catch-up or backfill whose process died keeps another from starting.
    SHOPIFY_LEASE_SECONDS: float = Field(default=120.0, ge=5)
    SHOPIFY_MAX_BODY_BYTES: int = Field(default=2_000_000, gt=0)
    # 0 turns the check off.
    SHOPIFY_WEBHOOK_MAX_AGE_SECONDS: float = Field(default=WEBHOOK_MAX_AGE_SECONDS, ge=0)
    # Per receiving process: webhook bodies being read or held until answered.
    SHOPIFY_MAX_PENDING_BYTES: int = Field(default=MAX_PENDING_BYTES, gt=0)
    # Whether a customers/delete webhook (a customer deleted in Shopify's admin, not a privacy
    # request) also asks Klaviyo to delete the profile; customers/redact and shop/redact do.
    SHOPIFY_DELETE_PROPAGATES: bool = False
    # Whether shop/redact (48 h after the app is uninstalled) also deletes from Klaviyo every
    # customer the shop sent. The Klaviyo account is the merchant's: one who keeps using it after
    # uninstalling turns this off, and only our copies are erased.
    SHOPIFY_SHOP_REDACT_PROPAGATES: bool = True
    # Per receiving process: past it uvicorn answers 503 itself, before shoprelay sees the request.
    RECEIVER_MAX_CONNECTIONS: int = Field(default=1000, ge=1)

    KLAVIYO_PRIVATE_API_KEY: SecretStr | None = None
    KLAVIYO_API_URL: str = "https://a.klaviyo.com"
    KLAVIYO_REVISION: str = "2026-07-15"
    KLAVIYO_TIMEOUT_SECONDS: float = Field(default=30.0, gt=0)
    KLAVIYO_BULK: bool = True
    KLAVIYO_BULK_THRESHOLD: int = Field(default=20, ge=1)
    # The list Shopify's email and SMS subscribers join; unset, the account's default opt-in.
    KLAVIYO_LIST_ID: str | None = None

    DATABASE_URL: str = "sqlite+aiosqlite:///shoprelay.db"

    DELIVERY_MAX_ATTEMPTS: int = Field(default=8, ge=1)
    DELIVERY_MAX_AGE_SECONDS: float = Field(default=72 * 3600, gt=0)
    DELIVERY_BACKOFF_BASE_SECONDS: float = Field(default=1.0, gt=0)
    DELIVERY_BACKOFF_CAP_SECONDS: float = Field(default=600.0, gt=0)
    DELIVERY_LEASE_SECONDS: float = Field(default=60.0, gt=0)
    DELIVERY_AUTH_PROBE_SECONDS: float = Field(default=60.0, gt=0)
    # Days a delivered item keeps its body (a customer's data); its dedup key stays. 0: forever.
    OUTBOX_RETENTION_DAYS: float = Field(default=30.0, ge=0)

    METRIC_PLACED_ORDER: str = _METRICS.placed_order
    METRIC_ORDERED_PRODUCT: str = _METRICS.ordered_product
    METRIC_FULFILLED_ORDER: str = _METRICS.fulfilled_order
    METRIC_CANCELLED_ORDER: str = _METRICS.cancelled_order
    METRIC_REFUNDED_ORDER: str = _METRICS.refunded_order
    METRIC_STARTED_CHECKOUT: str = _METRICS.started_checkout

    SHIPSTATION_API_KEY: SecretStr | None = None
    SHIPSTATION_API_SECRET: SecretStr | None = None
    SHIPSTATION_API_URL: str = "https://ssapi.shipstation.com"
    SHIPSTATION_POLL_INTERVAL: float = Field(default=1800.0, gt=0)
    SHIPSTATION_BACKFILL_DAYS: int = Field(default=90, ge=0)
    # V1 orders carry no currency: it is the account's.
    SHIPSTATION_CURRENCY: str = Field(default="USD", pattern=r"^[A-Z]{3}$")

    LOG_LEVEL: str = "INFO"
    LOG_FORMAT: str = "console"

    # The admin listener: /readyz, /status, /metrics and the dashboard, never public.
    ADMIN_HOST: str = "127.0.0.1"
    ADMIN_PORT: int = Field(default=8001, ge=0, le=65535)
    # Required when ADMIN_HOST is not loopback; a bearer token, and the dashboard's password.
    ADMIN_TOKEN: SecretStr | None = None
    ADMIN_SESSION_HOURS: float = Field(default=12.0, gt=0)
    # The dashboard calls the pipeline stalled when items wait this long with none delivered.
    ADMIN_STALL_MINUTES: float = Field(default=10.0, gt=0)

    @field_validator("DATABASE_URL")
    @classmethod
    def _known_backend(cls, url: str) -> str:
        if not url.startswith(("sqlite", "postgresql")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return url

    @field_validator("KLAVIYO_API_URL", "SHIPSTATION_API_URL", "SHOPIFY_ADMIN_URL")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return url.rstrip("/")

    @field_validator("LOG_FORMAT")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value not in {"console", "json"}:
            raise ValueError("must be 'console' or 'json'")
        return value

    @field_validator("SHOPIFY_MAX_PENDING_BYTES")
    @classmethod
    def _room_for_the_largest_body(cls, pending: int, info: ValidationInfo) -> int:
        # Otherwise a body the limit allows could never be admitted: Shopify would resend it
        # until it gave up.
        if pending < info.data.get("SHOPIFY_MAX_BODY_BYTES", 0):
            raise ValueError("must be at least SHOPIFY_MAX_BODY_BYTES")
        return pending

    @property
    def shopify_secrets(self) -> list[bytes]:
        """Current webhook secret first, then the previous one during rotation."""
        found = [self.SHOPIFY_WEBHOOK_SECRET, self.SHOPIFY_WEBHOOK_SECRET_PREVIOUS]
        return [s.get_secret_value().encode() for s in found if s is not None]

    @property
    def shopify_admin_enabled(self) -> bool:
        """Whether the Admin API can be used: a token and the shop it belongs to."""
        return self.SHOPIFY_API_KEY is not None and self.SHOPIFY_SHOP is not None

    @property
    def shopify_admin_url(self) -> str | None:
        if self.SHOPIFY_ADMIN_URL is not None:
            return self.SHOPIFY_ADMIN_URL
        return None if self.SHOPIFY_SHOP is None else f"https://{self.SHOPIFY_SHOP}"

    @property
    def shipstation_enabled(self) -> bool:
        return self.SHIPSTATION_API_KEY is not None and self.SHIPSTATION_API_SECRET is not None


def _secrets_from_files(environ: dict[str, str], problems: list[str]) -> dict[str, Any]:
    """Read `NAME_FILE` paths, the Docker and Kubernetes way of passing secrets; a file that
    cannot be read is added to `problems`."""
    found: dict[str, Any] = {}
    for name in SECRET_NAMES:
        path = environ.get(f"{name}_FILE")
        if not path:
            continue
        try:
            found[name] = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(f"{name}_FILE: cannot read the file ({exc.strerror})")
    return found


def load_settings(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Load settings, turning every problem into one ConfigError that names each variable."""
    env = dict(os.environ if environ is None else environ)
    problems: list[str] = []
    values = _secrets_from_files(env, problems) | overrides
    try:
        if environ is None:
            loaded = Settings(**values)
        else:
            # An explicit environment replaces os.environ; the .env file still applies.
            known = {k: v for k, v in env.items() if k in Settings.model_fields}
            loaded = Settings(**(known | values))
    except ValidationError as exc:
        # Never echo the input: for a secret, the input is the secret.
        problems += [
            f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: "
            + error["msg"].removeprefix("Value error, ")
            for error in exc.errors()
        ]
    if problems:
        raise ConfigError(*problems)
    return loaded
