"""`shoprelay send-webhook` as its own process against a real shoprelay: signed as Shopify
signs, with Shopify's headers, and a refused signature reported as such."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from tests.support.harness import (
    WEBHOOK_SECRET,
    free_port,
    klaviyo_sim,
    service_settings,
    shoprelay_service,
)

from shoprelay.config import SECRET_NAMES, Settings
from shoprelay.store.schema import webhook_receipts

SHOP = "by-hand.myshopify.com"


@dataclass
class Sent:
    returncode: int
    stdout: str
    stderr: str


async def send_webhook(workdir: Path, secret: str, *arguments: str) -> Sent:
    """Run `shoprelay send-webhook` in `workdir` with no setting but `secret` (if not empty)."""
    names = set(Settings.model_fields) | {f"{name}_FILE" for name in SECRET_NAMES}
    environ = {key: value for key, value in os.environ.items() if key not in names}
    if secret:
        environ["SHOPIFY_WEBHOOK_SECRET"] = secret
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shoprelay",
        "send-webhook",
        *arguments,
        cwd=workdir,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return Sent(process.returncode, stdout.decode(), stderr.decode())


async def test_a_wrong_secret_gets_401_and_says_so(tmp_path: Path) -> None:
    """The service refuses the signature; the command says 401, names the setting to check,
    exits 1, and prints neither secret."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}"
    async with (
        klaviyo_sim() as sim,
        shoprelay_service(service_settings(database_url, sim.url)) as relay,
    ):
        sent = await send_webhook(
            tmp_path, "wrong-secret-value-42", "orders/create", "--url", relay.url
        )
        async with relay.store.read() as conn:
            receipts = (await conn.execute(select(webhook_receipts))).all()
    said = sent.stdout + sent.stderr
    assert sent.returncode == 1, said
    assert "401 unverified" in said
    assert "SHOPIFY_WEBHOOK_SECRET" in said
    assert "wrong-secret-value-42" not in said
    assert WEBHOOK_SECRET not in said
    assert receipts == []


async def test_samples_are_signed_and_headed_as_shopify_sends_them(tmp_path: Path) -> None:
    """Each send has a fresh webhook id (a resend is processed, not a duplicate), the shop
    given, the topic; the sample refund finds the sample order. The full URL works too."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}"
    async with (
        klaviyo_sim() as sim,
        shoprelay_service(service_settings(database_url, sim.url)) as relay,
    ):
        target = ("--url", f"{relay.url}/webhooks/shopify/", "--shop", SHOP)
        sent = [
            await send_webhook(tmp_path, WEBHOOK_SECRET, topic, *target)
            for topic in ("orders/create", "orders/create", "refunds/create")
        ]
        async with relay.store.read() as conn:
            receipts = (
                await conn.execute(
                    select(webhook_receipts.c.shop, webhook_receipts.c.topic).order_by(
                        webhook_receipts.c.id
                    )
                )
            ).all()
    for each in sent:
        assert each.returncode == 0, each.stdout + each.stderr
    assert [each.stdout.split(":")[0] for each in sent] == ["200 processed"] * 3
    assert "refunds/create to " in sent[2].stdout
    assert [tuple(row) for row in receipts] == [
        (SHOP, "orders/create"),
        (SHOP, "orders/create"),
        (SHOP, "refunds/create"),
    ]


async def test_nothing_listening_is_one_clear_error(tmp_path: Path) -> None:
    """No traceback: the URL it tried, and the likely reason."""
    port = free_port()
    sent = await send_webhook(
        tmp_path, WEBHOOK_SECRET, "orders/create", "--url", f"127.0.0.1:{port}"
    )
    assert sent.returncode == 1
    assert f"cannot send to http://127.0.0.1:{port}/webhooks/shopify" in sent.stderr
    assert "shoprelay serve" in sent.stderr
    assert "Traceback" not in sent.stderr


async def test_without_a_secret_it_names_the_setting(tmp_path: Path) -> None:
    """Nothing to sign with, unset or set to nothing in .env: the variable is named before
    anything is sent."""
    for dotenv in ("", "SHOPIFY_WEBHOOK_SECRET=\n"):
        (tmp_path / ".env").write_text(dotenv)
        sent = await send_webhook(tmp_path, "", "orders/create", "--url", "http://127.0.0.1:1")
        assert sent.returncode == 1
        assert "SHOPIFY_WEBHOOK_SECRET: required" in sent.stderr
        assert "cannot send" not in sent.stderr
