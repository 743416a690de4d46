"""Consent changes packed into subscription jobs: one channel, action and import kind a job,
within each endpoint's profile limit, every body valid against Klaviyo's spec."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from tests.support.klaviyo_schema import validate_request

from shoprelay.delivery.subscriptions import (
    SUBSCRIBE_ENDPOINT,
    UNSUBSCRIBE_ENDPOINT,
    plan_subscription_jobs,
)
from shoprelay.mapping.consent import Action, ConsentChange

PAST = datetime(2025, 3, 1, 10, tzinfo=UTC)


def change(action: Action, n: int, channel: str = "email", **extra: Any) -> dict[str, Any]:
    address = (
        {"email": f"p{n}@example.com"}
        if channel == "email"
        else {"phone_number": f"+1613555{n:04}"}
    )
    return ConsentChange(channel, action, **address, **extra).to_body()


def test_changes_split_by_action_channel_and_import_kind() -> None:
    """Live and historical subscriptions, email and SMS, never share a job; no-ops send nothing."""
    items = [
        (1, change(Action.SUBSCRIBE, 1)),
        (2, change(Action.SUBSCRIBE, 2, consented_at=PAST)),
        (3, change(Action.SUBSCRIBE, 3, "sms")),
        (4, change(Action.UNSUBSCRIBE, 4)),
        (5, change(Action.NONE, 5)),
        (6, change(Action.SUBSCRIBE, 6)),
    ]
    plan = plan_subscription_jobs(items, "LIST1")
    assert plan.no_request == [5]
    by_ids = {job.request.item_ids: job for job in plan.jobs}
    assert set(by_ids) == {(1, 6), (2,), (3,), (4,)}
    assert by_ids[(4,)].endpoint == UNSUBSCRIBE_ENDPOINT
    for job in plan.jobs:
        body = orjson.loads(job.request.body)
        assert validate_request(job.endpoint, body) == []
        assert body["data"]["relationships"]["list"]["data"] == {"type": "list", "id": "LIST1"}
        channels = {
            channel
            for profile in body["data"]["attributes"]["profiles"]["data"]
            for channel in profile["attributes"]["subscriptions"]
        }
        assert len(channels) == 1
    historical = orjson.loads(by_ids[(2,)].request.body)["data"]["attributes"]
    assert historical["historical_import"] is True
    assert (
        "historical_import" not in orjson.loads(by_ids[(1, 6)].request.body)["data"]["attributes"]
    )


def test_jobs_hold_at_most_1000_subscriptions_or_100_unsubscriptions() -> None:
    """Klaviyo's per-request limits; each profile's pointer names its item."""
    subscribes = [(n, change(Action.SUBSCRIBE, n)) for n in range(2_500)]
    unsubscribes = [(10_000 + n, change(Action.UNSUBSCRIBE, n)) for n in range(250)]
    plan = plan_subscription_jobs(subscribes + unsubscribes, None)
    sizes = sorted((job.endpoint, len(job.request.item_ids)) for job in plan.jobs)
    assert sizes == [
        (SUBSCRIBE_ENDPOINT, 500),
        (SUBSCRIBE_ENDPOINT, 1_000),
        (SUBSCRIBE_ENDPOINT, 1_000),
        (UNSUBSCRIBE_ENDPOINT, 50),
        (UNSUBSCRIBE_ENDPOINT, 100),
        (UNSUBSCRIBE_ENDPOINT, 100),
    ]
    job = plan.jobs[0]
    assert "relationships" not in orjson.loads(job.request.body)["data"]
    assert job.request.items_at("/data/attributes/profiles/data/7/attributes/email") == (7,)


def test_a_second_change_of_one_address_waits_for_a_later_job() -> None:
    """Two changes of one address in one job would race each other inside Klaviyo."""
    plan = plan_subscription_jobs(
        [(1, change(Action.SUBSCRIBE, 1)), (2, change(Action.SUBSCRIBE, 1))], None
    )
    assert [job.request.item_ids for job in plan.jobs] == [(1,)]
    assert plan.deferred == [2]
