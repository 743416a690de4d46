"""The Admin client and shop the settings name."""

from __future__ import annotations

from shoprelay.config import Settings
from shoprelay.errors import ConfigError
from shoprelay.sources.shopify.admin.client import AdminClient


def shop_of(settings: Settings) -> str:
    if settings.SHOPIFY_SHOP is None or settings.SHOPIFY_API_KEY is None:
        raise ConfigError(
            "the Shopify Admin API is not configured: set SHOPIFY_SHOP (name.myshopify.com) "
            "and SHOPIFY_API_KEY (the custom app's Admin API access token)"
        )
    return settings.SHOPIFY_SHOP


def client_from_settings(settings: Settings, *, max_attempts: int = 6) -> AdminClient:
    shop_of(settings)
    assert settings.SHOPIFY_API_KEY is not None
    url = settings.shopify_admin_url or f"https://{settings.SHOPIFY_SHOP}"
    token = settings.SHOPIFY_API_KEY.get_secret_value()
    return AdminClient(url, token, settings.SHOPIFY_API_VERSION, max_attempts=max_attempts)
