"""Bulk operations: start one, wait for it, and read its JSONL result as whole records.

With `groupObjects: true` Shopify writes each child row (`__parentId`) right after its
parent, so a record is complete when the next top-level row begins: one record is held at
a time, never the file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from shoprelay.sources.shopify.admin import queries
from shoprelay.sources.shopify.admin.client import AdminClient, ShopifyAdminError

FINISHED = {"COMPLETED", "FAILED", "CANCELED", "EXPIRED"}


async def start(client: AdminClient, inner_query: str, scope: str) -> str:
    data = await client.query(queries.BULK_OPERATION_RUN_QUERY, {"query": inner_query}, scope=scope)
    payload = data["bulkOperationRunQuery"]
    errors = payload.get("userErrors") or []
    if errors or not payload.get("bulkOperation"):
        messages = "; ".join(str(error.get("message")) for error in errors) or "no operation"
        raise ShopifyAdminError(f"Shopify refused the bulk query: {messages}")
    return str(payload["bulkOperation"]["id"])


async def wait(
    client: AdminClient,
    operation_id: str,
    *,
    poll_seconds: float = 2.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    keep: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """The operation once it has finished, whichever way; `keep` runs between polls."""
    while True:
        data = await client.query(queries.BULK_OPERATION, {"id": operation_id})
        operation = data.get("bulkOperation")
        if operation is None:
            raise ShopifyAdminError(f"Shopify does not know bulk operation {operation_id}")
        if keep is not None:
            await keep()
        if operation.get("status") in FINISHED:
            return dict(operation)
        await sleep(poll_seconds)


def _child_connection(row: dict[str, Any]) -> str:
    """Which connection of its parent a child row belongs to, by what it carries."""
    if "lineItem" in row or "subtotalSet" in row:
        return "refundLineItems"
    if "kind" in row and "amountSet" in row:
        return "transactions"
    return "lineItems"


class Assembler:
    """Joins child rows to the record they follow; `feed` returns a record once it is whole."""

    def __init__(self) -> None:
        self._current: dict[str, Any] | None = None
        self._parents: dict[str, dict[str, Any]] = {}

    def feed(self, row: dict[str, Any]) -> dict[str, Any] | None:
        parent_id = row.pop("__parentId", None)
        if parent_id is None:
            finished, self._current = self._current, row
            self._parents = {row.get("id", ""): row}
            for refund in row.get("refunds") or []:
                if isinstance(refund, dict):
                    self._parents[refund.get("id", "")] = refund
            return finished
        parent = self._parents.get(parent_id)
        if parent is None:
            raise ShopifyAdminError(
                f"bulk result row for {parent_id} does not follow its parent: "
                "the operation was not run with groupObjects"
            )
        connection = parent.setdefault(_child_connection(row), {"nodes": []})
        connection.setdefault("nodes", []).append(row)
        return None

    def finish(self) -> dict[str, Any] | None:
        finished, self._current, self._parents = self._current, None, {}
        return finished


async def records(client: AdminClient, url: str) -> AsyncIterator[dict[str, Any]]:
    """Each top-level record of a result file, with its children joined, as it streams."""
    assembler = Assembler()
    async for line in client.lines(url):
        complete = assembler.feed(orjson.loads(line))
        if complete is not None:
            yield complete
    if (last := assembler.finish()) is not None:
        yield last
