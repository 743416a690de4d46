"""`shoprelay dlq replay --all` and `dlq purge` on many letters: bounded, exactly once, and
leaving no customer data behind."""

from __future__ import annotations

import asyncio
import weakref
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from shoprelay.cli.main import app
from shoprelay.operations.replay import BATCH
from shoprelay.store import deadletters
from shoprelay.store.database import Store
from shoprelay.store.ingest import IngestWriter, WebhookDelivery, WebhookOutcome
from shoprelay.store.outbox import Status
from shoprelay.store.retention import CLEARED_BODY
from shoprelay.store.schema import dead_letters, outbox, webhook_receipts

SHOP = "dlq-shop.myshopify.com"
BASE = 1_700_000_000.0
DELIVERIES = 2_000
WEBHOOKS = 500  # one letter in five: every batch mixes both
NOT_JSON = b'{"id": 5, "email": '


async def _seed(database_url: str) -> None:
    """2,000 dead-lettered deliveries and 500 unprocessable webhooks, interleaved in time."""
    store = await Store.open(database_url)
    try:
        async with store.transaction() as conn:
            await conn.execute(
                outbox.insert(),
                [
                    {
                        "account": "default",
                        "kind": "event",
                        "dedup_key": f"k{n}",
                        "body": '{"profile": {"email": "jane@example.com"}}',
                        "source": "shopify",
                        "status": Status.DEAD_LETTERED,
                        "attempts": 5,
                        "created_at": BASE,
                        "available_at": BASE,
                    }
                    for n in range(DELIVERIES)
                ],
            )
            ids = (await conn.execute(select(outbox.c.id).order_by(outbox.c.id))).scalars()
            items = iter(ids.all())
            letters = []
            for n in range(DELIVERIES + WEBHOOKS):
                letter: dict[str, Any] = {"source": "shopify", "created_at": BASE + n}
                if n % 5 == 0:
                    letter |= {
                        "origin": "webhook",
                        "reason": "not JSON",
                        "topic": "orders/create",
                        "scope": SHOP,
                        "payload": NOT_JSON,
                    }
                else:
                    letter |= {"origin": "delivery", "reason": "400", "outbox_id": next(items)}
                letters.append(letter)
            await conn.execute(dead_letters.insert(), _same_keys(letters))
    finally:
        await store.close()


def _same_keys(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with every column any of them names, for one executemany."""
    keys = {key for row in rows for key in row}
    return [{key: row.get(key) for key in keys} for row in rows]


async def _facts(database_url: str) -> dict[str, Any]:
    """What became of the seeded letters and their items."""
    store = await Store.open(database_url)
    try:
        async with store.read() as conn:
            seeded = dead_letters.c.created_at < BASE + DELIVERIES + WEBHOOKS
            groups = await conn.execute(
                select(dead_letters.c.replayed_at, func.count().label("letters"))
                .where(seeded)
                .group_by(dead_letters.c.replayed_at)
            )
            webhooks = await conn.execute(
                select(dead_letters.c.id).where(seeded, dead_letters.c.origin == "webhook")
            )
            receipts = await conn.execute(
                select(webhook_receipts.c.webhook_id).where(
                    webhook_receipts.c.webhook_id.like("replay:%")
                )
            )
            statuses = await conn.execute(
                select(outbox.c.status, outbox.c.attempts, func.count()).group_by(
                    outbox.c.status, outbox.c.attempts
                )
            )
            replayed = Counter(int(webhook_id.split(":")[1]) for webhook_id in receipts.scalars())
            return {
                "groups": {row.replayed_at: row.letters for row in groups.all()},
                # How many times each seeded webhook letter was re-planned.
                "replays": Counter(replayed[letter] for letter in webhooks.scalars()),
                "replays_in_all": replayed.total(),
                "outbox": {(status, attempts): n for status, attempts, n in statuses.all()},
                "open": await deadletters.count_open(conn),
            }
    finally:
        await store.close()


@pytest.fixture
def letters_alive(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The most DeadLetter objects alive at once while a test runs, as [peak]."""
    alive, peak = [0], [0]
    made = deadletters._dead_letter

    def gone() -> None:
        alive[0] -= 1

    def counted(row: Any, *, full: bool) -> deadletters.DeadLetter:
        letter = made(row, full=full)
        alive[0] += 1
        peak[0] = max(peak[0], alive[0])
        weakref.finalize(letter, gone)
        return letter

    monkeypatch.setattr(deadletters, "_dead_letter", counted)
    return peak


def test_replay_all_goes_batch_by_batch_and_requeues_each_letter_once(
    cli: CliRunner, database_url: str, letters_alive: list[int]
) -> None:
    """2,500 letters are read, held and committed a batch at a time; every item is requeued
    with attempts and age from zero, every webhook re-planned once; letters recorded by the replay
    itself (webhooks still unprocessable) are left for the next one."""
    asyncio.run(_seed(database_url))

    result = cli.invoke(app, ["dlq", "replay", "--all"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        f"requeued {DELIVERIES} deliveries, reprocessed 0 webhooks, {WEBHOOKS} still unprocessable"
    )
    assert f"{BATCH} dead letters gone through" in result.output
    facts = asyncio.run(_facts(database_url))
    sizes = sorted(facts["groups"].values())
    assert None not in facts["groups"]
    assert sum(sizes) == DELIVERIES + WEBHOOKS
    assert len(sizes) >= (DELIVERIES + WEBHOOKS) // BATCH
    assert max(sizes) <= BATCH
    # The batch being read, and the one before it until the read returns.
    assert letters_alive[0] <= 2 * BATCH
    assert facts["outbox"] == {(Status.PENDING, 0): DELIVERIES}
    assert facts["replays"] == {1: WEBHOOKS}
    assert facts["replays_in_all"] == WEBHOOKS
    assert facts["open"] == WEBHOOKS


def test_replay_all_cut_short_and_run_again_replays_nothing_twice(
    cli: CliRunner, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replay that dies after committing a batch's webhooks but before marking their
    letters, run again, re-plans each of them once and requeues each item once; the letters
    the first run recorded (webhooks still unprocessable) are replayed by the second."""
    asyncio.run(_seed(database_url))
    commit = IngestWriter.commit

    async def dies_after_committing(
        self: IngestWriter, batch: Sequence[WebhookDelivery]
    ) -> list[WebhookOutcome]:
        await commit(self, batch)
        raise ConnectionError("the database went away")

    monkeypatch.setattr(IngestWriter, "commit", dies_after_committing)
    assert cli.invoke(app, ["dlq", "replay", "--all"]).exit_code != 0
    monkeypatch.setattr(IngestWriter, "commit", commit)
    again = cli.invoke(app, ["dlq", "replay", "--all"])

    assert again.exit_code == 0, again.output
    facts = asyncio.run(_facts(database_url))
    assert None not in facts["groups"]
    assert facts["outbox"] == {(Status.PENDING, 0): DELIVERIES}
    assert facts["replays"] == {1: WEBHOOKS}
    assert facts["open"] == WEBHOOKS  # one new letter each, not two


def test_replay_all_since_leaves_older_letters_open(cli: CliRunner, database_url: str) -> None:
    """Only the letters since the time are replayed; the rest stay open."""
    asyncio.run(_seed(database_url))
    since = datetime.fromtimestamp(BASE + DELIVERIES + WEBHOOKS - 10, UTC).isoformat()

    result = cli.invoke(app, ["dlq", "replay", "--all", "--since", since])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "requeued 8 deliveries, reprocessed 0 webhooks, 2 still unprocessable"
    )
    facts = asyncio.run(_facts(database_url))
    assert facts["groups"][None] == DELIVERIES + WEBHOOKS - 10


def test_purge_all_clears_the_bodies_of_the_purged_items(cli: CliRunner, database_url: str) -> None:
    """Every letter goes, a batch a transaction, and no dead-lettered item keeps the
    customer's data; the rows and their dedup keys stay."""
    asyncio.run(_seed(database_url))

    result = cli.invoke(app, ["dlq", "purge", "--all", "--yes"])

    assert result.exit_code == 0, result.output
    assert f"purged {DELIVERIES + WEBHOOKS} dead letters" in result.output
    facts = asyncio.run(_bodies(database_url))
    assert facts == {(Status.DEAD_LETTERED, CLEARED_BODY): DELIVERIES}


async def _bodies(database_url: str) -> dict[tuple[str, str], int]:
    store = await Store.open(database_url)
    try:
        async with store.read() as conn:
            rows = await conn.execute(
                select(outbox.c.status, outbox.c.body, func.count()).group_by(
                    outbox.c.status, outbox.c.body
                )
            )
            return {(status, body): n for status, body, n in rows.all()}
    finally:
        await store.close()
