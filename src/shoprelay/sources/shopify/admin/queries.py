"""Every GraphQL document shoprelay sends to the Admin API, pinned to 2026-10.

A unit test validates each against Shopify's own schema for that version. Orders and customers
select what the webhook JSON carries and the mapping reads; `convert.py` turns the answer into
the webhook shape. Connections use `edges { node }`, which bulk queries require.
"""

from __future__ import annotations

SCHEMA_VERSION = "2026-10"

_MONEY = "shopMoney { amount currencyCode }"
_ADDRESS = (
    "firstName lastName company address1 address2 city province provinceCode zip country "
    "countryCodeV2 phone name"
)

_REFUND = """
id legacyResourceId createdAt note
refundLineItems(first: 10) { edges { node {
  id quantity subtotalSet { MONEY } totalTaxSet { MONEY }
  lineItem { id sku title name originalUnitPriceSet { MONEY } }
} } }
transactions(first: 3) { edges { node {
  id kind status gateway processedAt createdAt amountSet { MONEY }
} } }
""".replace("MONEY", _MONEY)

# The upper-case words are placeholders: page sizes and the refunds in paged queries; in bulk
# queries, which forbid `first` on nested connections and any connection inside a list (as
# `refunds` is), only the refunds' ids: `ORDER_REFUNDS` reads the rest of a refunded order.
_ORDER = """
id legacyResourceId name number email phone note test tags discountCodes sourceName
createdAt processedAt updatedAt cancelledAt cancelReason closedAt
displayFinancialStatus displayFulfillmentStatus currencyCode presentmentCurrencyCode
totalPriceSet { MONEY } subtotalPriceSet { MONEY } totalTaxSet { MONEY } totalDiscountsSet { MONEY }
customer {
  id legacyResourceId firstName lastName state verifiedEmail createdAt updatedAt
  defaultEmailAddress { emailAddress } defaultPhoneNumber { phoneNumber }
  defaultAddress { ADDRESS }
}
billingAddress { ADDRESS }
shippingAddress { ADDRESS }
fulfillments FULFILLMENTS { id legacyResourceId name status createdAt updatedAt }
refunds REFUNDS { REFUND_FIELDS }
lineItems LINES { PAGE_INFO edges { node {
  id name title sku vendor quantity variantTitle
  originalUnitPriceSet { MONEY }
  variant { legacyResourceId } product { legacyResourceId }
} } }
""".replace("MONEY", _MONEY).replace("ADDRESS", _ADDRESS)

# With the customer's marketing consent, which since 2025-01 no customer webhook carries: in
# 2026-10 it lives on the default email address and phone number (Customer.emailMarketingConsent
# and smsMarketingConsent are deprecated). It costs one object a customer (smsMarketingConsent).
_CUSTOMER = """
id legacyResourceId firstName lastName state verifiedEmail note locale tags createdAt updatedAt
defaultEmailAddress { emailAddress marketingState marketingOptInLevel marketingUpdatedAt }
defaultPhoneNumber { phoneNumber smsMarketingConsent { state optInLevel updatedAt } }
defaultAddress { ADDRESS }
""".replace("ADDRESS", _ADDRESS)

# Nested sizes of a paged order query: with them an order costs about 400 requested points
# (Shopify refunds what it does not use), where the single-query limit is 1000. An order with
# more line items has them paged by ORDER_LINE_ITEMS; more refunds than this are rare.
_PAGED = {
    "LINES": "(first: 30)",
    "FULFILLMENTS": "(first: 5)",
    "REFUNDS": "(first: 3)",
    "REFUND_FIELDS": _REFUND,
    "PAGE_INFO": "pageInfo { hasNextPage endCursor }",
}
_BULK = {
    "LINES": "",
    "FULFILLMENTS": "(first: 50)",
    "REFUNDS": "(first: 50)",
    "REFUND_FIELDS": "id legacyResourceId createdAt",
    "PAGE_INFO": "",
}


def order_selection(*, bulk: bool) -> str:
    """An Order's fields, for a paged query or a bulk one."""
    selection = _ORDER
    for placeholder, value in (_BULK if bulk else _PAGED).items():
        selection = selection.replace(placeholder, value)
    return selection


SHOP = """
query Shop {
  shop { name myshopifyDomain currencyCode ianaTimezone }
  currentAppInstallation { accessScopes { handle } }
}
"""

WEBHOOK_SUBSCRIPTIONS = """
query WebhookSubscriptions($after: String) {
  webhookSubscriptions(first: 100, after: $after, sortKey: CREATED_AT) {
    pageInfo { hasNextPage endCursor }
    edges { node { id topic uri name format createdAt } }
  }
}
"""

WEBHOOK_SUBSCRIPTION_CREATE = """
mutation WebhookSubscriptionCreate(
  $topic: WebhookSubscriptionTopic!, $subscription: WebhookSubscriptionInput!
) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $subscription) {
    webhookSubscription { id topic uri name format createdAt }
    userErrors { field message }
  }
}
"""

WEBHOOK_SUBSCRIPTION_UPDATE = """
mutation WebhookSubscriptionUpdate($id: ID!, $subscription: WebhookSubscriptionInput!) {
  webhookSubscriptionUpdate(id: $id, webhookSubscription: $subscription) {
    webhookSubscription { id topic uri name format createdAt }
    userErrors { field message }
  }
}
"""

ORDERS_UPDATED_SINCE = """
query OrdersUpdatedSince($first: Int!, $after: String, $query: String!) {
  orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {
    pageInfo { hasNextPage endCursor }
    edges { node { ORDER } }
  }
}
""".replace("ORDER", order_selection(bulk=False))

CUSTOMERS_UPDATED_SINCE = """
query CustomersUpdatedSince($first: Int!, $after: String, $query: String!) {
  customers(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {
    pageInfo { hasNextPage endCursor }
    edges { node { CUSTOMER } }
  }
}
""".replace("CUSTOMER", _CUSTOMER)

ORDER_LINE_ITEMS = """
query OrderLineItems($id: ID!, $after: String) {
  order(id: $id) {
    lineItems(first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      edges { node {
        id name title sku vendor quantity variantTitle
        originalUnitPriceSet { shopMoney { amount currencyCode } }
        variant { legacyResourceId } product { legacyResourceId }
      } }
    }
  }
}
"""

ORDER_REFUNDS = """
query OrderRefunds($id: ID!) {
  order(id: $id) { id refunds(first: 20) { REFUND_FIELDS } }
}
""".replace("REFUND_FIELDS", _REFUND)

BULK_OPERATION_RUN_QUERY = """
mutation BulkOperationRunQuery($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: true) {
    bulkOperation { id status createdAt }
    userErrors { field message code }
  }
}
"""

BULK_OPERATION = """
query BulkOperation($id: ID!) {
  bulkOperation(id: $id) {
    id status errorCode objectCount rootObjectCount fileSize url partialDataUrl
    createdAt completedAt
  }
}
"""


def bulk_orders_query(search: str) -> str:
    """The inner query of an orders backfill; `search` is Shopify search syntax."""
    selection = order_selection(bulk=True)
    return (
        "{ orders(query: "
        + _quoted(search)
        + ", sortKey: CREATED_AT) { edges { node { "
        + (selection + " } } } }")
    )


def bulk_customers_query(search: str) -> str:
    """The inner query of a customers backfill."""
    return "{ customers(query: " + _quoted(search) + ") { edges { node { " + _CUSTOMER + " } } } }"


def _quoted(text: str) -> str:
    # A GraphQL string literal: the search syntax quotes its dates with single quotes.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# What `created_at` / `updated_at` filters look like: Shopify search syntax, UTC.
def created_since(moment_iso: str) -> str:
    return f"created_at:>='{moment_iso}'"


def updated_since(moment_iso: str) -> str:
    return f"updated_at:>='{moment_iso}'"


PAGED_DOCUMENTS = {
    "Shop": SHOP,
    "WebhookSubscriptions": WEBHOOK_SUBSCRIPTIONS,
    "WebhookSubscriptionCreate": WEBHOOK_SUBSCRIPTION_CREATE,
    "WebhookSubscriptionUpdate": WEBHOOK_SUBSCRIPTION_UPDATE,
    "OrdersUpdatedSince": ORDERS_UPDATED_SINCE,
    "CustomersUpdatedSince": CUSTOMERS_UPDATED_SINCE,
    "OrderLineItems": ORDER_LINE_ITEMS,
    "OrderRefunds": ORDER_REFUNDS,
    "BulkOperationRunQuery": BULK_OPERATION_RUN_QUERY,
    "BulkOperation": BULK_OPERATION,
}
