"""`shoprelay reconcile` against the Klaviyo simulator: days cut in the account's zone as
Klaviyo cuts them, each difference explained, one JSON document, a missing scope said once."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.support.harness import (
    KLAVIYO_KEY,
    eventually,
    klaviyo_sim,
    service_settings,
    shoprelay_service,
)
from typer.testing import CliRunner

from shoprelay.cli.main import app
from shoprelay.operations.reconcile import reconcile
from shoprelay.sim.klaviyo import KlaviyoSimConfig, RateLimit
from shoprelay.store import outbox
from shoprelay.store.database import Store
from shoprelay.store.outbox import Failure, NewItem

NEW_YORK = "America/New_York"
# Around midnight and across the end of daylight-saving time in New York (2026-11-01 02:00
# EDT became 01:00 EST). In UTC days these would count 2, 3 and 2 on Oct 31 to Nov 2.
DELIVERED = {
    "2026-10-31T03:59:59Z": "2026-10-30",
    "2026-10-31T04:00:00Z": "2026-10-31",
    "2026-11-01T03:59:59Z": "2026-10-31",
    "2026-11-01T05:30:00Z": "2026-11-01",  # 01:30 EDT
    "2026-11-01T06:30:00Z": "2026-11-01",  # 01:30 EST
    "2026-11-02T04:59:59Z": "2026-11-01",
    "2026-11-02T05:00:00Z": "2026-11-02",
}
NOON_NOV_2 = datetime(2026, 11, 2, 17, tzinfo=UTC).timestamp()
# Klaviyo allows one GET /api/accounts a second; each reconcile makes one.
EASY_LIMITS = {"get_accounts": RateLimit(10, 100)}


def event(key: str, moment: str, metric: str = "Placed Order") -> NewItem:
    body = {
        "properties": {"OrderId": key},
        "time": moment,
        "unique_id": key,
        "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": f"{key}@example.com"}}},
    }
    return NewItem("event", key, body, "shopify")


async def enqueue(store: Store, items: list[NewItem], now: float) -> None:
    async with store.transaction() as conn:
        await outbox.enqueue(store, conn, items, now)


async def dead_letter(store: Store, failures: list[Failure], now: float) -> None:
    claimed = await outbox.claim(
        store,
        account="default",
        kind="event",
        limit=len(failures),
        owner="test",
        now=now,
        lease_seconds=30,
    )
    for item, failure in zip(claimed, failures, strict=True):
        await outbox.dead_letter(store, [item], [failure], now)


def rows_of(document: dict[str, Any], metric: str = "Placed Order") -> dict[str, Any]:
    return {row["date"]: row for row in document["days"] if row["metric"] == metric}


async def test_days_are_cut_as_klaviyo_cuts_them_and_gaps_are_explained(
    database_url: str, store: Store
) -> None:
    """Events around midnight and across the DST change count on the same New York day at
    the source and in Klaviyo; a refused event, a dead letter and a pending item explain
    the days where Klaviyo has fewer."""
    config = KlaviyoSimConfig(timezone=NEW_YORK, limits=EASY_LIMITS)
    async with klaviyo_sim(config) as sim:
        queued = NOON_NOV_2 - 3600
        await enqueue(store, [event("refused", "2026-11-01T12:00:00Z")], queued)
        await enqueue(store, [event("exhausted", "2026-11-01T13:00:00Z")], queued)
        await dead_letter(
            store,
            [
                Failure("invalid", "Invalid phone number.", "/data/attributes", 400),
                Failure("attempts", "503 server error", None, 503),
            ],
            queued,
        )
        items = [event(f"order-{n}", moment) for n, moment in enumerate(DELIVERED)]
        await enqueue(store, items, queued)
        settings = service_settings(database_url, sim.url)
        async with shoprelay_service(settings):
            await eventually(lambda: len(sim.sim.events) == len(DELIVERED))
            await eventually(lambda: _delivered(store, len(DELIVERED)))
        await enqueue(store, [event("waiting", "2026-11-02T16:00:00Z")], NOON_NOV_2)

        document = await reconcile(store, settings, days=4, now=NOON_NOV_2)

    assert (document["timezone"], document["klaviyo_error"]) == (NEW_YORK, None)
    days = rows_of(document)
    assert list(days) == ["2026-10-30", "2026-10-31", "2026-11-01", "2026-11-02"]
    counts = {day: (row["source"], row["delivered"], row["klaviyo"]) for day, row in days.items()}
    assert counts == {
        "2026-10-30": (1, 1, 1),
        "2026-10-31": (2, 2, 2),
        "2026-11-01": (5, 3, 3),
        "2026-11-02": (2, 1, 1),
    }
    explained = {day: row["explained"] for day, row in days.items()}
    assert explained == {
        "2026-10-30": {},
        "2026-10-31": {},
        "2026-11-01": {"refused": 1, "dead_letters": 1},
        "2026-11-02": {"pending": 1},
    }
    quiet = rows_of(document, "Ordered Product")["2026-11-01"]
    assert (quiet["source"], quiet["klaviyo"], quiet["explained"]) == (0, 0, {})


async def _delivered(store: Store, expected: int) -> bool:
    async with store.read() as conn:
        return (await outbox.counts(conn))["delivered"] == expected


@pytest.fixture
def reconcile_cli(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The command line on the test's database, with the simulator's key."""
    monkeypatch.setenv("KLAVIYO_PRIVATE_API_KEY", KLAVIYO_KEY)
    return cli


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_json_is_one_document_with_the_pending_item_explained(
    reconcile_cli: CliRunner, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`reconcile --json` prints exactly one JSON document on stdout: today's event is
    queued, not delivered, and Klaviyo has none, explained as pending."""
    store = await Store.open(database_url)
    now = time.time()
    moment = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    await enqueue(store, [event("today", moment)], now)
    await store.close()
    async with klaviyo_sim(KlaviyoSimConfig(timezone="UTC", limits=EASY_LIMITS)) as sim:
        monkeypatch.setenv("KLAVIYO_API_URL", sim.url)
        result = await asyncio.to_thread(
            reconcile_cli.invoke, app, ["reconcile", "--days", "2", "--json"]
        )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1
    document = json.loads(result.stdout)
    assert document["timezone"] == "UTC"
    today = rows_of(document)[moment[:10]]
    assert (today["source"], today["delivered"], today["klaviyo"]) == (1, 0, 0)
    assert today["explained"] == {"pending": 1}
    assert len(document["days"]) == 2 * len({row["metric"] for row in document["days"]})


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_without_metrics_read_one_line_says_so(
    reconcile_cli: CliRunner, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key without metrics:read: one clear line names the scope; the counts shoprelay
    holds are still shown, and Klaviyo's are null in JSON."""
    await (await Store.open(database_url)).close()
    scopes = {KLAVIYO_KEY: frozenset({"accounts:read", "events:write", "profiles:write"})}
    config = KlaviyoSimConfig(timezone=NEW_YORK, limits=EASY_LIMITS, key_scopes=scopes)
    async with klaviyo_sim(config) as sim:
        monkeypatch.setenv("KLAVIYO_API_URL", sim.url)
        human = await asyncio.to_thread(reconcile_cli.invoke, app, ["reconcile"])
        as_json = await asyncio.to_thread(reconcile_cli.invoke, app, ["reconcile", "--json"])
    assert human.exit_code == 0, human.output
    said = [line for line in human.output.splitlines() if "metrics:read" in line]
    assert len(said) == 1, human.output
    assert "lacks the metrics:read scope" in said[0]
    assert f"days in {NEW_YORK}" in human.output
    document = json.loads(as_json.stdout)
    assert "metrics:read" in document["klaviyo_error"]
    assert {row["klaviyo"] for row in document["days"]} == {None}
