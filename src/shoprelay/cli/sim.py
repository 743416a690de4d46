"""`shoprelay sim`: run a simulator as a real HTTP server, saying how to point shoprelay at it."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Annotated, Any

import typer
import uvicorn

from shoprelay.cli.common import bind_port, clear_errors
from shoprelay.sim.klaviyo_config import DEMO_API_KEY
from shoprelay.sim.shipstation_state import ShipStationSimConfig
from shoprelay.sim.shopify_admin_state import ShopifyAdminSimConfig

app = typer.Typer(help="Simulators of Klaviyo, ShipStation and Shopify for demos and tests.")

PortOption = Annotated[int, typer.Option(help="Port to listen on (0: any free port).")]
HostOption = Annotated[str, typer.Option(help="Interface to listen on.")]


@app.command()
def klaviyo(
    port: PortOption = 8100,
    host: HostOption = "127.0.0.1",
    key: Annotated[str, typer.Option(help="The private API key the account accepts.")] = (
        DEMO_API_KEY
    ),
    timezone: Annotated[
        str, typer.Option(help="The account's time zone (IANA), as GET /api/accounts says.")
    ] = "UTC",
    scope: Annotated[
        list[str] | None,
        typer.Option(help="Give the key only these scopes (repeat); default: every scope."),
    ] = None,
) -> None:
    """Klaviyo's API: auth, revision, JSON:API validation, limits, dedup, faults.

    \b
    Control endpoints (no key needed):
      GET  /_sim/events?metric=NAME  accepted events, oldest first
      GET  /_sim/profiles            stored profiles, as Klaviyo resources
      GET  /_sim/stats               requests, 429s, dedup, rate windows
      GET  /_sim/faults              the fault settings in force
      POST /_sim/faults              change some: {"rate_503": 0.1},
                                     {"revoked": true}
      POST /_sim/reset               forget everything recorded
    """
    from shoprelay.sim.klaviyo import KlaviyoSimConfig, create_app

    def banner(url: str) -> str:
        return (
            f"Klaviyo simulator at {url}, accepting the private API key {key}.\n"
            "Point shoprelay at it with these settings (environment or .env):\n\n"
            f"KLAVIYO_API_URL={url}\n"
            f"KLAVIYO_PRIVATE_API_KEY={key}\n\n"
            f"What it received: curl {url}/_sim/events\n"
            "Control endpoints: shoprelay sim klaviyo --help. Ctrl-C stops it."
        )

    from shoprelay.sim.klaviyo_aggregates import zone_named

    if zone_named(timezone) is None:
        raise typer.BadParameter(f"{timezone!r} is not a time zone Klaviyo accepts")
    scopes = {key: frozenset(scope)} if scope else {}
    config = KlaviyoSimConfig(api_keys={key}, timezone=timezone, key_scopes=scopes)
    _serve(create_app(config), host, port, banner)


@app.command()
def shipstation(
    port: PortOption = 8200,
    host: HostOption = "127.0.0.1",
    api_key: Annotated[str, typer.Option(help="The API key the account accepts.")] = (
        ShipStationSimConfig.api_key
    ),
    api_secret: Annotated[str, typer.Option(help="The API secret that goes with it.")] = (
        ShipStationSimConfig.api_secret
    ),
) -> None:
    """ShipStation's V1 API: Basic auth, Pacific times, paging, 40 requests a minute.

    \b
    It starts with no orders. Control endpoints (no key needed):
      POST /_sim/orders            {"count": 20, "days_ago": 5}: new orders
                                   ("store_id" optional)
      POST /_sim/orders/ID/ACTION  ACTION: await_payment, pay, hold, restore,
                                   cancel, ship_label, mark_shipped, void_label
      POST /_sim/activity          {"changes": 5}: move open orders one step on
      GET  /_sim/stats             orders by status, shipments, requests
    """
    from shoprelay.sim.shipstation import create_app

    def banner(url: str) -> str:
        return (
            f"ShipStation simulator at {url}, accepting API key {api_key} "
            f"with API secret {api_secret} (Basic auth).\n"
            "Point shoprelay at it with these settings (environment or .env):\n\n"
            f"SHIPSTATION_API_URL={url}\n"
            f"SHIPSTATION_API_KEY={api_key}\n"
            f"SHIPSTATION_API_SECRET={api_secret}\n\n"
            f"It has no orders yet: curl -X POST {url}/_sim/orders -d '{{\"count\": 20}}'\n"
            "Control endpoints: shoprelay sim shipstation --help. Ctrl-C stops it."
        )

    config = ShipStationSimConfig(api_key=api_key, api_secret=api_secret)
    _serve(create_app(config), host, port, banner)


@app.command()
def shopify(
    *,
    port: PortOption = 8300,
    host: HostOption = "127.0.0.1",
    token: Annotated[str, typer.Option(help="The Admin API access token the shop accepts.")] = (
        ShopifyAdminSimConfig.access_token
    ),
    shop: Annotated[str, typer.Option(help="The shop's myshopify.com domain.")] = (
        ShopifyAdminSimConfig.shop
    ),
    scopes: Annotated[str, typer.Option(help="Scopes granted to the token, comma-separated.")] = (
        ",".join(ShopifyAdminSimConfig.scopes)
    ),
    webhook_secret: Annotated[
        str, typer.Option(help="The secret its webhook deliveries are signed with.")
    ] = ShopifyAdminSimConfig.webhook_secret,
    orders: Annotated[int, typer.Option(help="Orders already in the shop at start.")] = 200,
    days: Annotated[float, typer.Option(help="Over how many past days those orders spread.")] = (
        90.0
    ),
) -> None:
    """Shopify's GraphQL Admin API (2026-10): schema-checked queries, cost limits, bulk
    operations, webhook subscriptions it delivers to (and deletes after 8 failures).

    \b
    Control endpoints (no token needed):
      POST /_sim/seed              {"orders": 20000, "days": 90}
      POST /_sim/orders            {"count": 5}: new orders, webhooks
      POST /_sim/orders/ID/ACTION  update, fulfill, cancel, refund
      POST /_sim/activity          {"changes": 20}: random changes
      POST /_sim/customers/ID/consent  {"email": "SUBSCRIBED"}
      POST /_sim/scopes            {"scopes": ["read_orders"]}
      POST /_sim/endpoint          {"failure": "refuse" | 503 | null}
                                   (how shoprelay's endpoint fails)
      GET  /_sim/subscriptions     live and deleted subscriptions
      GET  /_sim/stats             requests, cost, THROTTLED, deliveries
    """
    from shoprelay.sim.shopify_admin import create_app

    def banner(url: str) -> str:
        return (
            f"Shopify Admin API simulator at {url} for the shop {shop}, accepting the access "
            f"token {token} with scopes {scopes}; {orders} orders over {days:g} days.\n"
            "Point shoprelay at it with these settings (environment or .env):\n\n"
            f"SHOPIFY_SHOP={shop}\n"
            f"SHOPIFY_API_KEY={token}\n"
            f"SHOPIFY_ADMIN_URL={url}\n"
            f"SHOPIFY_WEBHOOK_SECRET={webhook_secret}\n\n"
            f"GraphQL: POST {url}/admin/api/2026-10/graphql.json "
            "(header X-Shopify-Access-Token)\n"
            f"Change the shop: curl -X POST {url}/_sim/activity -d '{{\"changes\": 20}}'\n"
            "Control endpoints: shoprelay sim shopify --help. Ctrl-C stops it."
        )

    config = ShopifyAdminSimConfig(
        shop=shop,
        access_token=token,
        scopes=tuple(s.strip() for s in scopes.split(",") if s.strip()),
        webhook_secret=webhook_secret,
        seed_orders=orders,
        seed_days=days,
    )
    _serve(create_app(config), host, port, banner)


def _serve(app: Any, host: str, port: int, banner: Callable[[str], str]) -> None:
    """Take the port, print the banner (now true: connections queue), then serve until ^C."""
    with clear_errors():
        listening = _listen(host, port)
    # Flushed at once: a script reading the banner through a pipe would otherwise wait for it.
    print(banner(base_url(host, listening.getsockname()[1])), flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listening])


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    bind_port(listening, host, port)
    listening.listen(2048)
    return listening


def base_url(host: str, port: int) -> str:
    """The URL to reach a server listening on `host`: every interface is reached locally."""
    everywhere = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104
    reachable = everywhere.get(host, host)
    return f"http://[{reachable}]:{port}" if ":" in reachable else f"http://{reachable}:{port}"
