"""The Klaviyo simulator's reads over real sockets: accounts, metrics and metric aggregates
as the spec shapes them, days cut in the requested zone, scopes and limits."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from pydantic import SecretStr
from tests.support.klaviyo_schema import validate_request

from shoprelay.delivery.klaviyo import KlaviyoClient
from shoprelay.delivery.klaviyo_reads import KlaviyoReads
from shoprelay.sim.klaviyo import KlaviyoSimConfig, RateLimit, create_app
from shoprelay.sim.klaviyo_metric_api import metric_id
from shoprelay.web.serving import serving

KEY = "pk_sim_demo"
HEADERS = {
    "Authorization": f"Klaviyo-API-Key {KEY}",
    "revision": "2026-07-15",
    "Content-Type": "application/vnd.api+json",
    "Accept": "application/vnd.api+json",
}
SCHEMAS = Path(__file__).parents[1] / "fixtures/klaviyo/request-schemas.json"
# Around midnight and across the end of daylight-saving time in New York (2026-11-01 02:00
# EDT became 01:00 EST): UTC instants and the New York day Klaviyo puts each on.
TIMES = {
    "2026-10-31T03:59:59Z": "2026-10-30",
    "2026-10-31T04:00:00Z": "2026-10-31",
    "2026-11-01T03:59:59Z": "2026-10-31",
    "2026-11-01T05:30:00Z": "2026-11-01",  # 01:30 EDT
    "2026-11-01T06:30:00Z": "2026-11-01",  # 01:30 EST, the same wall clock an hour later
    "2026-11-02T04:59:59Z": "2026-11-01",
    "2026-11-02T05:00:00Z": "2026-11-02",
}


@functools.cache
def response_validator(operation_id: str) -> Draft202012Validator:
    operations = json.loads(SCHEMAS.read_text(encoding="utf-8"))["operations"]
    return Draft202012Validator(operations[operation_id]["response_schema"])


def assert_valid_response(operation_id: str, document: Any) -> None:
    errors = [error.message for error in response_validator(operation_id).iter_errors(document)]
    assert errors == []


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # get_accounts allows one request a second: these tests make several.
    config = KlaviyoSimConfig(
        limits={"get_accounts": RateLimit(10, 100)},
        timezone="America/New_York",
        key_scopes={"pk_no_metrics": frozenset({"events:write", "accounts:read"})},
        api_keys={KEY, "pk_no_metrics"},
    )
    async with (
        serving(create_app(config)) as url,
        httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=10) as opened,
    ):
        for n, moment in enumerate(TIMES):
            event = {
                "data": {
                    "type": "event",
                    "attributes": {
                        "metric": {
                            "data": {"type": "metric", "attributes": {"name": "Placed Order"}}
                        },
                        "profile": {
                            "data": {
                                "type": "profile",
                                "attributes": {"email": f"c{n}@example.com"},
                            }
                        },
                        "properties": {},
                        "time": moment,
                        "unique_id": f"u{n}",
                        "value": 10,
                    },
                }
            }
            assert (await opened.post("/api/events", json=event)).status_code == 202
        yield opened


def aggregate_body(**attributes: Any) -> dict[str, Any]:
    return {
        "data": {
            "type": "metric-aggregate",
            "attributes": {
                "metric_id": metric_id("Placed Order"),
                "measurements": ["count", "sum_value", "unique"],
                "interval": "day",
                "timezone": "America/New_York",
                "filter": [
                    "greater-or-equal(datetime,2026-10-30T00:00:00)",
                    "less-than(datetime,2026-11-03T00:00:00)",
                ],
            }
            | attributes,
        }
    }


async def test_account_says_its_time_zone(client: httpx.AsyncClient) -> None:
    """GET /api/accounts: the one account, with the configured zone, shaped as the spec says."""
    answer = await client.get("/api/accounts")
    assert answer.status_code == 200
    assert_valid_response("get_accounts", answer.json())
    assert answer.json()["data"][0]["attributes"]["timezone"] == "America/New_York"
    sparse = (await client.get("/api/accounts", params={"fields[account]": "timezone"})).json()
    assert sparse["data"][0]["attributes"] == {"timezone": "America/New_York"}


async def test_metrics_list_the_api_metric_of_each_name(client: httpx.AsyncClient) -> None:
    """GET /api/metrics: one metric per name the events used, under the API integration."""
    answer = await client.get("/api/metrics", params={"filter": "equals(integration.name,'API')"})
    assert answer.status_code == 200
    assert_valid_response("get_metrics", answer.json())
    [metric] = answer.json()["data"]
    assert (metric["id"], metric["attributes"]["name"]) == (
        metric_id("Placed Order"),
        "Placed Order",
    )
    assert metric["attributes"]["integration"]["key"] == "api"
    refused = await client.get("/api/metrics", params={"page[size]": "10"})
    assert refused.status_code == 400  # get_metrics takes no page size
    assert refused.json()["errors"][0]["source"] == {"parameter": "page[size]"}


async def test_aggregates_cut_days_at_local_midnight_across_dst(client: httpx.AsyncClient) -> None:
    """Days start at New York's midnight, -04:00 before the change and -05:00 after; each
    event counts on its local day, including the two at 01:30 on the day the clocks fell back."""
    body = aggregate_body()
    assert validate_request("query_metric_aggregates", body) == []
    answer = await client.post("/api/metric-aggregates", json=body)
    assert answer.status_code == 200, answer.text
    assert_valid_response("query_metric_aggregates", answer.json())
    attributes = answer.json()["data"]["attributes"]
    assert attributes["dates"] == [
        "2026-10-30T00:00:00-04:00",
        "2026-10-31T00:00:00-04:00",
        "2026-11-01T00:00:00-04:00",
        "2026-11-02T00:00:00-05:00",
    ]
    [row] = attributes["data"]
    assert row["dimensions"] == []
    assert row["measurements"]["count"] == [1.0, 2.0, 3.0, 1.0]
    assert row["measurements"]["sum_value"] == [10.0, 20.0, 30.0, 10.0]
    utc = await client.post("/api/metric-aggregates", json=aggregate_body(timezone="UTC"))
    assert utc.json()["data"]["attributes"]["data"][0]["measurements"]["count"] == [0, 2, 3, 2]


@pytest.mark.parametrize(
    ("attributes", "pointer"),
    [
        ({"timezone": "america/new_york"}, "/data/attributes/timezone"),  # case-sensitive
        ({"timezone": "Europe/Kyiv"}, "/data/attributes/timezone"),  # the spec's exception
        ({"filter": ["greater-or-equal(datetime,2026-10-30T00:00:00)"]}, "/data/attributes/filter"),
        (
            {
                "filter": [
                    "greater-or-equal(datetime,2025-01-01T00:00:00)",
                    "less-than(datetime,2026-11-03T00:00:00)",
                ]
            },
            "/data/attributes/filter",
        ),
        ({"metric_id": "NOSUCH"}, "/data/attributes/metric_id"),
        ({"measurements": ["median"]}, "/data/attributes/measurements/0"),
    ],
)
async def test_aggregates_refuse_what_klaviyo_refuses(
    client: httpx.AsyncClient, attributes: dict[str, Any], pointer: str
) -> None:
    """A bad zone, a range without both ends or over a year, an unknown metric: 400 at the field."""
    answer = await client.post("/api/metric-aggregates", json=aggregate_body(**attributes))
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["source"]["pointer"] == pointer


async def test_a_key_without_metrics_read_gets_403(client: httpx.AsyncClient) -> None:
    """Scopes as Klaviyo grants them: the key may read its account but not metrics."""
    headers = HEADERS | {"Authorization": "Klaviyo-API-Key pk_no_metrics"}
    assert (await client.get("/api/accounts", headers=headers)).status_code == 200
    for answer in (
        await client.get("/api/metrics", headers=headers),
        await client.post("/api/metric-aggregates", json=aggregate_body(), headers=headers),
    ):
        assert answer.status_code == 403
        assert answer.json()["errors"][0]["code"] == "permission_denied"


async def test_metric_ids_follow_the_pages() -> None:
    """Past 200 metrics Klaviyo pages by cursor; KlaviyoReads follows `links.next` to the last."""
    async with serving(create_app(KlaviyoSimConfig())) as url:
        async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=10) as client:
            for n in range(205):
                body = {
                    "data": {
                        "type": "event",
                        "attributes": {
                            "metric": {
                                "data": {"type": "metric", "attributes": {"name": f"Metric {n}"}}
                            },
                            "profile": {
                                "data": {"type": "profile", "attributes": {"email": "a@b.co"}}
                            },
                            "properties": {},
                        },
                    }
                }
                assert (await client.post("/api/events", json=body)).status_code == 202
        reads = KlaviyoReads(KlaviyoClient(url, SecretStr(KEY), "2026-07-15"))
        try:
            found = await reads.metric_ids({"Metric 0", "Metric 204", "Never Sent"})
        finally:
            await reads.close()
    assert found == {"Metric 0": metric_id("Metric 0"), "Metric 204": metric_id("Metric 204")}
