"""`shoprelay shopify check|register` against `shoprelay sim shopify` in its own process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.integration.shopify_admin.support import SHOP, TOKEN
from tests.support.harness import free_port
from typer.testing import CliRunner

from shoprelay.cli.main import app
from shoprelay.sources.shopify.admin.subscriptions import wanted_topics

SIM_START_SECONDS = 30
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def shop_url() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shoprelay", "sim", "shopify", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SIM_START_SECONDS
        while True:
            try:
                if httpx.get(f"{url}/_sim/stats", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("`shoprelay sim shopify` did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def shopify_env(monkeypatch: pytest.MonkeyPatch, shop_url: str) -> str:
    monkeypatch.setenv("SHOPIFY_SHOP", SHOP)
    monkeypatch.setenv("SHOPIFY_API_KEY", TOKEN)
    monkeypatch.setenv("SHOPIFY_ADMIN_URL", shop_url)
    return shop_url


def test_register_then_check(cli: CliRunner, shopify_env: str) -> None:
    target = "http://127.0.0.1:9/webhooks/shopify"
    before = cli.invoke(app, ["shopify", "check"])
    assert before.exit_code == 1, before.output
    assert "shoprelay shopify register" in before.output

    dry = cli.invoke(app, ["shopify", "register", "--url", target, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"{len(wanted_topics())} change(s) to make" in dry.output
    assert httpx.get(f"{shopify_env}/_sim/subscriptions").json()["subscriptions"] == []

    done = cli.invoke(app, ["shopify", "register", "--url", target])
    assert done.exit_code == 0, done.output
    again = cli.invoke(app, ["shopify", "register", "--url", target])
    assert "0 change(s) made" in again.output

    checked = cli.invoke(app, ["shopify", "check"])
    assert checked.exit_code == 0, checked.output
    assert "everything is in place" in checked.output

    moved = cli.invoke(app, ["shopify", "register", "--url", "https://relay.example.com/hook"])
    assert moved.exit_code == 0, moved.output
    subscriptions = httpx.get(f"{shopify_env}/_sim/subscriptions").json()["subscriptions"]
    assert len(subscriptions) == len(wanted_topics())  # repointed, not added
    assert {sub["uri"] for sub in subscriptions} == {"https://relay.example.com/hook"}


def test_check_names_what_is_wrong(
    cli: CliRunner, shopify_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpx.post(f"{shopify_env}/_sim/scopes", json={"scopes": ["read_orders", "read_customers"]})
    lacking = cli.invoke(app, ["shopify", "check"])
    assert lacking.exit_code == 1
    assert "read_all_orders" in lacking.output

    monkeypatch.setenv("SHOPIFY_API_KEY", "shpat_wrong_token")
    refused = cli.invoke(app, ["shopify", "check"])
    assert refused.exit_code == 2
    assert "SHOPIFY_API_KEY" in refused.output
    assert "shpat_wrong_token" not in refused.output

    monkeypatch.setenv("SHOPIFY_ADMIN_URL", f"http://127.0.0.1:{free_port()}")
    unreachable = cli.invoke(app, ["shopify", "check"])
    assert unreachable.exit_code == 2


def test_register_refuses_plain_http_elsewhere(cli: CliRunner, shopify_env: str) -> None:
    refused = cli.invoke(app, ["shopify", "register", "--url", "http://relay.example.com/x"])
    assert refused.exit_code == 1
    assert "https://" in refused.output
