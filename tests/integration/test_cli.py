"""The `shoprelay` command against a real database: status, dlq, resume, start-up errors."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from tests.support.harness import free_port
from typer.testing import CliRunner

from shoprelay.cli.main import app
from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sources.shopify.receive import plan_body
from shoprelay.sources.shopify.topics import SOURCE
from shoprelay.store import outbox, pauses
from shoprelay.store.database import Store
from shoprelay.store.ingest import IngestWriter, WebhookDelivery
from shoprelay.store.outbox import Failure, NewItem

SHOP = "cli-shop.myshopify.com"


async def _seed(database_url: str) -> None:
    """One dead-lettered delivery, one unprocessable webhook, one pending item, one pause."""
    store = await Store.open(database_url)
    try:
        now = time.time()
        items = [
            NewItem("event", f"k{i}", {"properties": {}, "unique_id": f"u{i}"}, "shopify")
            for i in range(2)
        ]
        async with store.transaction() as conn:
            await outbox.enqueue(store, conn, items, now)
        claimed = await outbox.claim(
            store, account="default", kind="event", limit=1, owner="t", now=now, lease_seconds=30
        )
        failure = Failure("invalid", "Invalid phone number.", "/data/attributes/phone_number", 400)
        await outbox.dead_letter(store, claimed, [failure], now)
        body = b'{"id": 5, "email": '
        delivery = WebhookDelivery(
            SOURCE,
            SHOP,
            "w1",
            "orders/create",
            plan_body("orders/create", SHOP, body, ShopifyMetrics()),
            body,
        )
        await IngestWriter(store).commit([delivery])
        await pauses.set_pause(
            store,
            account="default",
            endpoint="*",
            reason="auth",
            detail="401 not_authenticated",
            now=now,
            until=None,
        )
    finally:
        await store.close()


def test_status_json_reports_counts_pauses_and_dead_letters(
    cli: CliRunner, database_url: str
) -> None:
    """`status --json` is the documented document, with the pause and its reason."""
    asyncio.run(_seed(database_url))
    result = cli.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["version"] == 1
    assert document["outbox"]["pending"] == 1
    assert document["outbox"]["dead_lettered"] == 1
    assert document["dead_letters"]["open"] == 2
    assert document["delivery"]["paused"] is True
    assert document["delivery"]["pauses"][0]["reason"] == "auth"
    assert document["webhooks"]["unprocessable"] == 1


def test_status_warns_when_postgresql_will_not_vacuum_the_outbox(
    cli: CliRunner, database_url: str
) -> None:
    """The warning follows the server's own setting; SQLite has nothing to warn about."""
    asyncio.run(_seed(database_url))
    document = json.loads(cli.invoke(app, ["status", "--json"]).output)
    warnings = document["database"]["warnings"]
    human = cli.invoke(app, ["status"]).output
    if database_url.startswith("sqlite"):
        assert warnings == []
        assert "WARNING" not in human
        return
    autovacuum = asyncio.run(_setting(database_url, "autovacuum"))
    assert bool(warnings) == (autovacuum == "off")
    assert ("autovacuum is off" in human) == (autovacuum == "off")


async def _setting(database_url: str, name: str) -> str:
    store = await Store.open(database_url, migrate=False)
    try:
        async with store.read() as conn:
            return str((await conn.execute(text(f"SHOW {name}"))).scalar())
    finally:
        await store.close()


def test_human_status_says_paused_and_resume_lifts_it(cli: CliRunner, database_url: str) -> None:
    """A paused account is loud in `status`; `resume` clears it."""
    asyncio.run(_seed(database_url))
    assert "PAUSED" in cli.invoke(app, ["status"]).output
    resumed = cli.invoke(app, ["resume"])
    assert resumed.exit_code == 0
    assert "delivery running" in cli.invoke(app, ["status"]).output


def test_dlq_list_and_show_give_klaviyo_detail_and_pointer(
    cli: CliRunner, database_url: str
) -> None:
    """`dlq list` shows each reason; `dlq show` gives Klaviyo's detail, pointer and the body."""
    asyncio.run(_seed(database_url))
    listed = json.loads(cli.invoke(app, ["dlq", "list", "--json"]).output)
    assert {letter["origin"] for letter in listed} == {"delivery", "webhook"}
    delivery = next(letter for letter in listed if letter["origin"] == "delivery")
    shown = json.loads(cli.invoke(app, ["dlq", "show", str(delivery["id"]), "--json"]).output)
    assert shown["detail"] == "Invalid phone number."
    assert shown["pointer"] == "/data/attributes/phone_number"
    assert shown["body"]["unique_id"] in {"u0", "u1"}
    missing = cli.invoke(app, ["dlq", "show", "999"])
    assert missing.exit_code == 1
    assert "no dead letter with id 999" in missing.output


def test_dlq_replay_all_requeues_and_reprocesses(cli: CliRunner, database_url: str) -> None:
    """`dlq replay --all` requeues the delivery and re-plans the kept webhook."""
    asyncio.run(_seed(database_url))
    result = cli.invoke(app, ["dlq", "replay", "--all"])
    assert result.exit_code == 0, result.output
    assert "requeued 1" in result.output
    assert "1 still unprocessable" in result.output  # the bytes are still not JSON
    document = json.loads(cli.invoke(app, ["status", "--json"]).output)
    assert document["outbox"]["pending"] == 2
    listed = json.loads(cli.invoke(app, ["dlq", "list", "--json"]).output)
    assert [letter["origin"] for letter in listed] == ["webhook"]


def test_dlq_purge_deletes_for_good(cli: CliRunner, database_url: str) -> None:
    """`dlq purge --all --yes` empties the queue."""
    asyncio.run(_seed(database_url))
    assert cli.invoke(app, ["dlq", "purge", "--all", "--yes"]).exit_code == 0
    assert json.loads(cli.invoke(app, ["dlq", "list", "--json", "--all"]).output) == []


def test_serve_without_a_secret_stops_with_the_variable_named(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve refuses to start without SHOPIFY_WEBHOOK_SECRET and says so in one line."""
    monkeypatch.delenv("SHOPIFY_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("KLAVIYO_PRIVATE_API_KEY", "pk_secret_value_123")
    result = cli.invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 1
    assert "SHOPIFY_WEBHOOK_SECRET" in result.output
    assert "pk_secret_value_123" not in result.output


def test_serve_names_every_missing_setting_at_once(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither secret and an in-memory database: one message, three variables, before the
    port is taken."""
    monkeypatch.delenv("SHOPIFY_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("KLAVIYO_PRIVATE_API_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", "sqlite+aiosqlite:///:memory:")
    result = cli.invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 1
    assert "3 settings need fixing" in result.output
    for name in ("SHOPIFY_WEBHOOK_SECRET", "KLAVIYO_PRIVATE_API_KEY", "DATABASE_URL"):
        assert f"{name}: " in result.output
    assert "Traceback" not in result.output


def test_serve_refuses_an_in_memory_sqlite_database(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Receivers would acknowledge into a database the delivery process never sees."""
    monkeypatch.setenv("SHOPIFY_WEBHOOK_SECRET", "whsec")
    monkeypatch.setenv("KLAVIYO_PRIVATE_API_KEY", "pk_secret_value_123")
    monkeypatch.setenv("DATABASE_URL", "sqlite+aiosqlite:///:memory:")
    result = cli.invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 1
    assert "DATABASE_URL" in result.output
    assert "in-memory" in result.output


@pytest.mark.parametrize(
    ("option", "listener"), [("--port", ""), ("--admin-port", " for the admin listener")]
)
def test_serve_on_a_taken_port_stops_with_the_port_named(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, option: str, listener: str
) -> None:
    """A port another process listens on is one clear line naming its option, before any
    database work."""
    monkeypatch.setenv("SHOPIFY_WEBHOOK_SECRET", "whsec")
    monkeypatch.setenv("KLAVIYO_PRIVATE_API_KEY", "pk_secret_value_123")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'taken.db'}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        other = "--admin-port" if option == "--port" else "--port"
        result = cli.invoke(app, ["serve", option, str(port), other, "0"])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}{listener}" in result.output
    assert option in result.output
    assert not (tmp_path / "taken.db").exists()


SIM_START_SECONDS = 20


def _answers(url: str) -> bool:
    """True once `url` answers 200."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def shipstation_sim_url() -> Iterator[str]:
    """`shoprelay sim shipstation` as its own process."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shoprelay", "sim", "shipstation", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SIM_START_SECONDS
        while not _answers(f"{url}/_sim/stats"):
            if process.poll() is not None:
                pytest.fail(f"`shoprelay sim shipstation` exited with code {process.returncode}")
            if time.monotonic() > deadline:
                pytest.fail(f"`shoprelay sim shipstation` did not answer in {SIM_START_SECONDS} s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_shipstation_check_lists_stores_or_names_the_bad_credentials(
    cli: CliRunner, shipstation_sim_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`shipstation check` lists the stores; refused credentials give one clear line."""
    monkeypatch.setenv("SHIPSTATION_API_URL", shipstation_sim_url)
    monkeypatch.setenv("SHIPSTATION_API_KEY", "ss_sim_key")
    monkeypatch.setenv("SHIPSTATION_API_SECRET", "ss_sim_secret")
    accepted = cli.invoke(app, ["shipstation", "check"])
    assert accepted.exit_code == 0, accepted.output
    assert "3 store(s)" in accepted.output
    monkeypatch.setenv("SHIPSTATION_API_SECRET", "wrong-secret-value")
    refused = cli.invoke(app, ["shipstation", "check"])
    assert refused.exit_code == 1
    assert "SHIPSTATION_API_KEY" in refused.output
    assert "wrong-secret-value" not in refused.output


def test_shipstation_sync_reports_what_it_did(
    cli: CliRunner, shipstation_sim_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`shipstation sync` backfills the simulator's orders and prints its summary."""
    httpx.post(f"{shipstation_sim_url}/_sim/orders", json={"count": 30, "days_ago": 5})
    monkeypatch.setenv("SHIPSTATION_API_URL", shipstation_sim_url)
    monkeypatch.setenv("SHIPSTATION_API_KEY", "ss_sim_key")
    monkeypatch.setenv("SHIPSTATION_API_SECRET", "ss_sim_secret")
    result = cli.invoke(app, ["shipstation", "sync", "--backfill-days", "10"])
    assert result.exit_code == 0, result.output
    document = json.loads(cli.invoke(app, ["status", "--json"]).output)
    shipstation = document["shipstation"]
    assert shipstation["enabled"] is True
    assert shipstation["orders_tracked"] == 30
    assert document["outbox"]["pending"] == sum(shipstation["events_queued"].values())


def test_demo_runs_end_to_end_and_doubles_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """`shoprelay demo`, the README's first command, completes with nothing doubled."""
    monkeypatch.chdir(str(tmp_path))
    result = CliRunner().invoke(app, ["demo", "--orders", "5"])
    assert result.exit_code == 0, result.output
    assert "0 doubled" in result.output
    assert "PAUSED *: auth" in result.output  # the revoked key paused the whole account
    assert "Klaviyo said:" in result.output
    # The subscriber is forgotten: here and in Klaviyo.
    assert "SUBSCRIBED" in result.output
    assert "shoprelay holds 0 records naming her." in result.output


def test_a_malformed_setting_is_one_clear_line(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any command with a bad setting stops with the variable named, not a traceback."""
    monkeypatch.setenv("KLAVIYO_API_URL", "not-a-url")
    result = cli.invoke(app, ["status"])
    assert result.exit_code == 1
    assert "KLAVIYO_API_URL" in result.output
    assert "Traceback" not in result.output
