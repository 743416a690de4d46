"""List semantics of ShipStation V1: Pacific date filters, sortBy/sortDir, page/pageSize."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100
# A sort key among records with the same sort value; ShipStation documents no such order.
TieKey = Callable[[Mapping[str, Any]], Any]


class QueryError(ValueError):
    """A malformed parameter; ShipStation answers 400 with a message."""


@dataclass(frozen=True)
class Resource:
    """How one list endpoint filters and sorts: field names per date filter and sort key."""

    envelope: str
    id_field: str
    date_filters: Mapping[str, str]  # filter prefix -> record field, e.g. modifyDate
    sort_fields: Mapping[str, str]  # sortBy value -> record field
    default_sort: str  # record field for an empty sortBy (ascending)
    exact_filters: Mapping[str, str]  # parameter -> record field


ORDERS = Resource(
    envelope="orders",
    id_field="orderId",
    date_filters={
        "createDate": "createDate",
        "modifyDate": "modifyDate",
        "orderDate": "orderDate",
        "paymentDate": "paymentDate",
    },
    sort_fields={"OrderDate": "orderDate", "ModifyDate": "modifyDate", "CreateDate": "createDate"},
    default_sort="orderId",
    exact_filters={"orderStatus": "orderStatus", "orderId": "orderId"},
)
SHIPMENTS = Resource(
    envelope="shipments",
    id_field="shipmentId",
    date_filters={"createDate": "createDate", "shipDate": "shipDate", "voidDate": "voidDate"},
    sort_fields={"ShipDate": "shipDate", "CreateDate": "createDate"},
    default_sort="createDate",
    exact_filters={"orderId": "orderId", "trackingNumber": "trackingNumber"},
)
FULFILLMENTS = Resource(
    envelope="fulfillments",
    id_field="fulfillmentId",
    date_filters={"createDate": "createDate", "shipDate": "shipDate"},
    sort_fields={"ShipDate": "shipDate", "CreateDate": "createDate"},
    default_sort="createDate",
    exact_filters={"orderId": "orderId", "trackingNumber": "trackingNumber"},
)


def wall_clock(raw: str, name: str) -> datetime:
    """A filter value: 'yyyy-mm-dd hh:mm:ss' or 'yyyy-mm-dd', naive Pacific like the records."""
    try:
        return datetime.fromisoformat(raw.strip().replace(" ", "T"))
    except ValueError:
        raise QueryError(f"The parameter '{name}' is not a valid date: '{raw}'.") from None


def _stamp(record: Mapping[str, Any], key: str) -> datetime | None:
    value = record.get(key)
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _matches_dates(record: Mapping[str, Any], bounds: list[tuple[str, str, datetime]]) -> bool:
    for key, side, bound in bounds:
        stamp = _stamp(record, key)
        if stamp is None or (stamp < bound if side == "Start" else stamp > bound):
            return False
    return True


def _bounds(resource: Resource, params: Mapping[str, str]) -> list[tuple[str, str, datetime]]:
    bounds = []
    for prefix, key in resource.date_filters.items():
        for side in ("Start", "End"):
            raw = params.get(prefix + side)
            if raw:
                bounds.append((key, side, wall_clock(raw, prefix + side)))
    return bounds


def _page_numbers(params: Mapping[str, str]) -> tuple[int, int]:
    try:
        page = int(params.get("page") or 1)
        size = int(params.get("pageSize") or DEFAULT_PAGE_SIZE)
    except ValueError:
        raise QueryError("The parameters 'page' and 'pageSize' must be integers.") from None
    if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        raise QueryError(f"'page' must be at least 1 and 'pageSize' from 1 to {MAX_PAGE_SIZE}.")
    return page, size


def _sorted(
    resource: Resource,
    records: list[dict[str, Any]],
    params: Mapping[str, str],
    tie_key: TieKey | None,
) -> list[dict[str, Any]]:
    sort_by = params.get("sortBy") or ""
    descending = (params.get("sortDir") or "ASC").upper() == "DESC"
    if sort_by and sort_by not in resource.sort_fields:
        raise QueryError(f"The parameter 'sortBy' has an invalid value: '{sort_by}'.")
    key = resource.sort_fields.get(sort_by, resource.default_sort)
    # Ties break on the id, in the same direction, as a database ORDER BY key, id would,
    # unless a test asks for another order of the ties.
    tie = tie_key or (lambda r: r[resource.id_field])
    by = (lambda r: (r[key], tie(r))) if sort_by else (lambda r: r[key])
    return sorted(records, key=by, reverse=descending and bool(sort_by))


def listing(
    resource: Resource,
    records: Sequence[dict[str, Any]],
    params: Mapping[str, str],
    tie_key: TieKey | None = None,
) -> dict[str, Any]:
    """The envelope `{<resource>, total, page, pages}` for one page of filtered records."""
    page, size = _page_numbers(params)
    bounds = _bounds(resource, params)
    exact = {
        field: params[name] for name, field in resource.exact_filters.items() if params.get(name)
    }
    found = [
        record
        for record in records
        if _matches_dates(record, bounds)
        and all(str(record.get(field)) == value for field, value in exact.items())
        and (params.get("storeId") is None or _store_of(record) == params["storeId"])
    ]
    ordered = _sorted(resource, found, params, tie_key)
    return {
        resource.envelope: ordered[(page - 1) * size : page * size],
        "total": len(ordered),
        "page": page,
        "pages": math.ceil(len(ordered) / size),
    }


def _store_of(record: Mapping[str, Any]) -> str:
    return str((record.get("advancedOptions") or {}).get("storeId"))
