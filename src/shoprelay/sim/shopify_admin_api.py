"""The root fields the simulator answers: the shop, scopes, orders, customers, webhook
subscriptions and bulk operations, with Shopify's access rules and user errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from shoprelay.sim.shopify_admin_bulk import BulkOperation, BulkQueryInvalid
from shoprelay.sim.shopify_admin_execute import FieldError, Record, connection
from shoprelay.sim.shopify_admin_search import SearchError, found, parse_search, position
from shoprelay.sim.shopify_admin_shop import Stored
from shoprelay.sim.shopify_admin_state import ShopifyAdminSim
from shoprelay.sim.shopify_admin_webhooks import required_scope, topic_string

Args = dict[str, Any]
SCOPE_DESCRIPTIONS = {
    "read_orders": "Read orders, transactions, and fulfillments",
    "read_all_orders": "Read all orders",
    "read_customers": "Read customers",
}


def access_denied(field: str, scope: str) -> FieldError:
    required = f"`{scope}` access scope."
    return FieldError(
        f"Access denied for {field} field. Required access: {required}",
        {
            "code": "ACCESS_DENIED",
            "documentation": "https://shopify.dev/api/usage/access-scopes",
            "requiredAccess": required,
        },
    )


def _legacy_id(gid: str, kind: str) -> int | None:
    prefix = f"gid://shopify/{kind}/"
    if not gid.startswith(prefix) or not gid[len(prefix) :].isdigit():
        return None
    return int(gid[len(prefix) :])


class Roots:
    """Builds the Query and Mutation root records for one request."""

    def __init__(self, sim: ShopifyAdminSim, bulk_url: Callable[[BulkOperation], str]) -> None:
        self.sim, self.bulk_url = sim, bulk_url
        self.search_warnings: list[dict[str, Any]] = []

    # --- query ------------------------------------------------------------------------------

    def query(self) -> Record:
        return {
            "shop": self._shop(),
            "currentAppInstallation": self._installation(),
            "webhookSubscriptions": self._subscriptions,
            "webhookSubscription": lambda a: self._node_of(a["id"], "WebhookSubscription"),
            "orders": self._orders,
            "order": lambda a: self._node_of(a["id"], "Order"),
            "customers": self._customers,
            "customer": lambda a: self._node_of(a["id"], "Customer"),
            "node": lambda a: self._node(a["id"]),
            "nodes": lambda a: [self._node(i) for i in a["ids"]],
            "currentBulkOperation": self._current_bulk,
            "bulkOperation": lambda a: self._node_of(a["id"], "BulkOperation"),
            "bulkOperations": self._bulk_operations,
        }

    def _shop(self) -> Record:
        config = self.sim.config
        return {
            "__typename": "Shop",
            "id": "gid://shopify/Shop/1",
            "name": config.shop_name,
            "myshopifyDomain": config.shop,
            "email": f"owner@{config.shop}",
            "contactEmail": f"owner@{config.shop}",
            "currencyCode": "USD",
            "enabledPresentmentCurrencies": ["USD"],
            # Payload times carry -05:00 all year; a zone without summer time agrees with them.
            "ianaTimezone": "America/Bogota",
            "timezoneAbbreviation": "COT",
            "timezoneOffset": "-0500",
            "timezoneOffsetMinutes": -300,
            "url": f"https://{config.shop}",
            "description": None,
            "taxesIncluded": False,
            "taxShipping": False,
            "weightUnit": "KILOGRAMS",
            "unitSystem": "METRIC_SYSTEM",
            "setupRequired": False,
            "checkoutApiSupported": True,
            "transactionalSmsDisabled": False,
            "marketingSmsConsentEnabledAtCheckout": False,
            "orderNumberFormatPrefix": "#",
            "orderNumberFormatSuffix": "",
            "shopOwnerName": "Sim Owner",
            "createdAt": "2025-01-01T00:00:00Z",
            "updatedAt": "2025-01-01T00:00:00Z",
            "plan": {
                "__typename": "ShopPlan",
                "displayName": "Basic",
                "partnerDevelopment": False,
                "shopifyPlus": False,
                "publicDisplayName": "Basic",
            },
        }

    def _installation(self) -> Record:
        return {
            "__typename": "AppInstallation",
            "id": "gid://shopify/AppInstallation/1",
            "accessScopes": [
                {
                    "__typename": "AccessScope",
                    "handle": scope,
                    "description": SCOPE_DESCRIPTIONS.get(scope, scope),
                }
                for scope in sorted(self.sim.scopes)
            ],
            "launchUrl": f"https://{self.sim.config.shop}/admin/apps/shoprelay",
            "uninstallUrl": None,
        }

    def _require(self, field: str, scope: str) -> None:
        if scope not in self.sim.scopes:
            raise access_denied(field, scope)

    def _subscriptions(self, args: Args) -> Record:
        subscriptions = list(self.sim.webhooks.subscriptions.values())
        topics = args.get("topics")
        if topics:
            subscriptions = [s for s in subscriptions if s.topic in topics]
        for name in ("uri", "callbackUrl"):
            if args.get(name):
                subscriptions = [s for s in subscriptions if s.uri == args[name]]
        if args.get("format"):
            subscriptions = [s for s in subscriptions if s.format == args["format"]]
        # CREATED_AT and ID sort alike: numbers are handed out in creation order.
        records = [s.record() for s in subscriptions]
        return connection(records, args, position=lambda r, _i: int(r["legacyResourceId"]))

    def _searched(
        self, field: str, stored: list[Stored], args: Args, visible: Callable[[Stored], bool]
    ) -> tuple[list[Stored], Callable[[Stored, int], Any]]:
        try:
            search = parse_search(args.get("query"))
        except SearchError as error:
            raise FieldError(str(error)) from error
        if search.warnings:
            self.search_warnings.append(
                {"path": [field], "query": args.get("query"), "warnings": search.warnings}
            )
        key = args.get("sortKey")
        return found(stored, search, key, visible), position(key)

    def _orders(self, args: Args) -> Record:
        self._require("orders", "read_orders")
        hits, where = self._searched(
            "orders", list(self.sim.shop.orders.values()), args, self.sim.order_visibility()
        )
        page = connection(hits, args, position=where)
        return self._viewed(page, lambda s: self.sim.shop.order_view(s.id))

    def _customers(self, args: Args) -> Record:
        self._require("customers", "read_customers")
        hits, where = self._searched(
            "customers", list(self.sim.shop.customers.values()), args, lambda _s: True
        )
        page = connection(hits, args, position=where)
        return self._viewed(page, lambda s: self.sim.shop.customer_view(s.id))

    @staticmethod
    def _viewed(page: Record, view: Callable[[Stored], Any]) -> Record:
        """Turn a page of stored resources into GraphQL records, each once."""
        records = {id(s): view(s) for s in page["nodes"]}
        page["nodes"] = [records[id(s)] for s in page["nodes"]]
        page["edges"] = [e | {"node": records[id(e["node"])]} for e in page["edges"]]
        return page

    def _node(self, gid: str) -> Record | None:
        kind = gid.split("/")[3] if gid.count("/") >= 4 else ""
        return self._node_of(gid, kind)

    def _node_of(self, gid: str, kind: str) -> Record | None:
        number = _legacy_id(gid, kind)
        finder = {
            "Order": self._order,
            "Customer": self._customer,
            "WebhookSubscription": self._subscription,
            "BulkOperation": self._bulk_operation,
        }.get(kind)
        if finder is None:
            return None
        if number is None:
            raise FieldError(f"Invalid global id '{gid}'", {"code": "argumentLiteralsIncompatible"})
        return finder(number)

    def _order(self, number: int) -> Record | None:
        self._require("order", "read_orders")
        stored = self.sim.shop.orders.get(number)
        if stored is None or not self.sim.order_visibility()(stored):
            return None
        return self.sim.shop.order_view(number)

    def _customer(self, number: int) -> Record | None:
        self._require("customer", "read_customers")
        return self.sim.shop.customer_view(number)

    def _subscription(self, number: int) -> Record | None:
        subscription = self.sim.webhooks.subscriptions.get(number)
        return subscription.record() if subscription else None

    def _bulk_operation(self, number: int) -> Record | None:
        operation = self.sim.bulk.operations.get(number)
        return operation.record() if operation else None

    def _bulk_operations(self, args: Args) -> Record:
        """The app's bulk operations, oldest first; `status:` and `operation_type:` filter them."""
        wanted = dict(
            term.split(":", 1) for term in (args.get("query") or "").split() if ":" in term
        )
        records = [
            op.record()
            for op in self.sim.bulk.operations.values()
            if wanted.get("status", op.status).upper() == op.status
            and wanted.get("operation_type", "query").upper() == "QUERY"
        ]
        return connection(records, args, position=lambda r, _i: int(r["id"].rsplit("/", 1)[1]))

    def _current_bulk(self, args: Args) -> Record | None:
        if args.get("type", "QUERY") != "QUERY":
            return None
        operation = self.sim.bulk.current()
        return operation.record() if operation else None

    # --- mutations -----------------------------------------------------------------------------

    def mutation(self) -> Record:
        return {
            "webhookSubscriptionCreate": self._create_subscription,
            "webhookSubscriptionUpdate": self._update_subscription,
            "webhookSubscriptionDelete": self._delete_subscription,
            "bulkOperationRunQuery": self._run_bulk,
            "bulkOperationCancel": self._cancel_bulk,
        }

    def _create_subscription(self, args: Args) -> Record:
        topic = args["topic"]
        scope = required_scope(topic)
        if scope and scope not in self.sim.scopes:
            return _payload(
                "WebhookSubscriptionCreatePayload",
                webhookSubscription=None,
                userErrors=[_user_error(["topic"], _topic_denied(topic))],
            )
        spec = args["webhookSubscription"]
        made, errors = self.sim.webhooks.create(topic, spec, self.sim.now_stamp())
        return _payload(
            "WebhookSubscriptionCreatePayload",
            webhookSubscription=made.record() if made else None,
            userErrors=[_user_error(e["field"], e["message"]) for e in errors],
        )

    def _update_subscription(self, args: Args) -> Record:
        number = _legacy_id(args["id"], "WebhookSubscription") or 0
        changed, errors = self.sim.webhooks.update(
            number, args["webhookSubscription"], self.sim.now_stamp()
        )
        return _payload(
            "WebhookSubscriptionUpdatePayload",
            webhookSubscription=changed.record() if changed else None,
            userErrors=[_user_error(e["field"], e["message"]) for e in errors],
        )

    def _delete_subscription(self, args: Args) -> Record:
        number = _legacy_id(args["id"], "WebhookSubscription") or 0
        gone = self.sim.webhooks.delete(number)
        errors = [] if gone else [_user_error(["id"], "Webhook subscription does not exist")]
        return _payload(
            "WebhookSubscriptionDeletePayload",
            deletedWebhookSubscriptionId=gone.gid if gone else None,
            userErrors=errors,
        )

    def _run_bulk(self, args: Args) -> Record:
        try:
            operation = self.sim.bulk.start(args["query"], self._bulk_roots, self.bulk_url)
        except BulkQueryInvalid as invalid:
            error = _bulk_error(["query"], invalid.message, "INVALID")
            return _payload("BulkOperationRunQueryPayload", bulkOperation=None, userErrors=[error])
        except FieldError as busy:
            error = _bulk_error(None, busy.message, "OPERATION_IN_PROGRESS")
            return _payload("BulkOperationRunQueryPayload", bulkOperation=None, userErrors=[error])
        return _payload(
            "BulkOperationRunQueryPayload", bulkOperation=operation.record(), userErrors=[]
        )

    def _cancel_bulk(self, args: Args) -> Record:
        number = _legacy_id(args["id"], "BulkOperation") or 0
        operation = self.sim.bulk.cancel(number)
        errors = [] if operation else [_user_error(["id"], "Bulk operation does not exist")]
        return _payload(
            "BulkOperationCancelPayload",
            bulkOperation=operation.record() if operation else None,
            userErrors=errors,
        )

    def _bulk_roots(self, field: str, args: Args) -> Iterator[Record]:
        """Every root record of a bulk query, in id order (a bulk query reads them all)."""
        shop = self.sim.shop
        if field == "orders":
            self._require("orders", "read_orders")
            hits, _ = self._searched(
                "orders", list(shop.orders.values()), args, self.sim.order_visibility()
            )
            return (shop.order_view(s.id) for s in hits)
        if field == "customers":
            self._require("customers", "read_customers")
            hits, _ = self._searched(
                "customers", list(shop.customers.values()), args, lambda _s: True
            )
            return (r for s in hits if (r := shop.customer_view(s.id)) is not None)
        raise FieldError(f"The simulator does not run bulk queries over {field}")


def _topic_denied(topic: str) -> str:
    return (
        f"You do not have permission to create or update webhooks with {topic_string(topic)} "
        "topic. This topic contains protected customer data."
    )


def _user_error(field: list[str] | None, message: str) -> Record:
    return {"__typename": "UserError", "field": field, "message": message}


def _bulk_error(field: list[str] | None, message: str, code: str) -> Record:
    return {
        "__typename": "BulkOperationUserError",
        "field": field,
        "message": message,
        "code": code,
    }


def _payload(type_name: str, **fields: Any) -> Record:
    return {"__typename": type_name, **fields}
