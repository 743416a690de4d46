"""Which webhook subscriptions shoprelay needs, which exist, and making them so.

shoprelay marks its own subscriptions with a `name` (`shoprelay-…`, unique per shop since
2026-04) and never touches one without that mark.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import structlog

from shoprelay.errors import ShoprelayError
from shoprelay.sources.shopify import topics
from shoprelay.sources.shopify.admin import queries
from shoprelay.sources.shopify.admin.client import AdminClient, ShopifyAdminError
from shoprelay.sources.shopify.admin.convert import nodes

log = structlog.get_logger(__name__)

NAME_PREFIX = "shoprelay-"
# Shopify sends these only to apps that declare them in their TOML or Dev Dashboard: the
# Admin API cannot subscribe to them.
COMPLIANCE_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})
SCOPE = "read_orders"  # any scope that lets the app see the topics; Shopify names the real one


class BadWebhookUrl(ShoprelayError):
    """A URL Shopify would refuse, or that cannot reach shoprelay."""


def wanted_topics() -> list[str]:
    """Every topic shoprelay handles that the Admin API can subscribe to, sorted."""
    return sorted(topic for topic in topics.TOPICS if topic not in COMPLIANCE_TOPICS)


def enum_name(topic: str) -> str:
    """`orders/create` → `ORDERS_CREATE`, as WebhookSubscriptionTopic spells it."""
    return topic.replace("/", "_").replace(".", "_").upper()


def subscription_name(topic: str) -> str:
    """`shoprelay-orders-create`: at most 50 characters of [A-Za-z0-9_-]."""
    return (NAME_PREFIX + topic.replace("/", "-").replace(".", "-"))[:50]


def check_url(url: str) -> str:
    """The URL if Shopify can deliver to it: https, or http to a loopback address (simulator)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and _loopback(parts.hostname):
        return url
    raise BadWebhookUrl(
        f"{url!r} is not an https:// URL; Shopify delivers webhooks over HTTPS only "
        "(http:// is accepted for a loopback address, such as the simulator)"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Subscription:
    id: str
    topic: str  # the enum, as Shopify returns it
    uri: str
    name: str | None

    @property
    def ours(self) -> bool:
        return (self.name or "").startswith(NAME_PREFIX)


@dataclass
class SubscriptionPlan:
    """What `register` would do, topic by topic."""

    url: str
    create: list[str] = field(default_factory=list)  # topics
    repoint: list[tuple[str, Subscription]] = field(default_factory=list)
    in_place: list[str] = field(default_factory=list)
    foreign: list[Subscription] = field(default_factory=list)  # not ours: left alone

    @property
    def changes(self) -> int:
        return len(self.create) + len(self.repoint)


async def list_subscriptions(client: AdminClient) -> list[Subscription]:
    found: list[Subscription] = []
    after: str | None = None
    while True:
        data = await client.query(queries.WEBHOOK_SUBSCRIPTIONS, {"after": after}, scope=SCOPE)
        connection = data["webhookSubscriptions"]
        found += [
            Subscription(node["id"], node["topic"], node.get("uri") or "", node.get("name"))
            for node in nodes(connection)
        ]
        page = connection.get("pageInfo") or {}
        if not page.get("hasNextPage"):
            return found
        after = page.get("endCursor")


def plan_subscriptions(existing: list[Subscription], url: str) -> SubscriptionPlan:
    planned = SubscriptionPlan(url)
    ours = {sub.topic: sub for sub in existing if sub.ours}
    planned.foreign = [sub for sub in existing if not sub.ours]
    for topic in wanted_topics():
        current = ours.get(enum_name(topic))
        if current is None:
            planned.create.append(topic)
        elif current.uri != url:
            planned.repoint.append((topic, current))
        else:
            planned.in_place.append(topic)
    return planned


def _input(topic: str, url: str) -> dict[str, Any]:
    return {"uri": url, "format": "JSON", "name": subscription_name(topic)}


def _raise_user_errors(what: str, payload: dict[str, Any]) -> None:
    errors = payload.get("userErrors") or []
    if errors:
        messages = "; ".join(str(error.get("message")) for error in errors)
        raise ShopifyAdminError(f"Shopify refused to {what}: {messages}")


async def apply_plan(client: AdminClient, planned: SubscriptionPlan) -> None:
    """Create what is missing and repoint ours; foreign subscriptions are never touched."""
    for topic in planned.create:
        data = await client.query(
            queries.WEBHOOK_SUBSCRIPTION_CREATE,
            {"topic": enum_name(topic), "subscription": _input(topic, planned.url)},
            scope=SCOPE,
        )
        _raise_user_errors(f"subscribe to {topic}", data["webhookSubscriptionCreate"])
        log.info("shopify.subscription_created", topic=topic)
    for topic, current in planned.repoint:
        data = await client.query(
            queries.WEBHOOK_SUBSCRIPTION_UPDATE,
            {"id": current.id, "subscription": _input(topic, planned.url)},
            scope=SCOPE,
        )
        _raise_user_errors(f"repoint the {topic} subscription", data["webhookSubscriptionUpdate"])
        log.info("shopify.subscription_repointed", topic=topic)


async def ensure_subscriptions(
    client: AdminClient, url: str, *, dry_run: bool = False
) -> SubscriptionPlan:
    """Make every topic's subscription point at `url`; running it twice changes nothing."""
    planned = plan_subscriptions(await list_subscriptions(client), check_url(url))
    if not dry_run:
        await apply_plan(client, planned)
    return planned
