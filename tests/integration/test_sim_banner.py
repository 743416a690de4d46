"""`shoprelay sim …` says, as it starts, where it listens and which credentials it accepts, as
settings to copy; the settings it prints are the ones that work."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

BANNER_END = b"Ctrl-C stops it."
BANNER_SECONDS = 15
KLAVIYO_HEADERS = {"revision": "2026-07-15"}


@contextmanager
def simulator(*arguments: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A simulator process on a free port: its banner, and the settings the banner gives."""
    with subprocess.Popen(
        [sys.executable, "-m", "shoprelay", "sim", *arguments, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    ) as process:
        try:
            banner = _read_banner(process)
            settings = dict(re.findall(r"^([A-Z_]+)=(\S+)$", banner, re.MULTILINE))
            yield banner, settings
        finally:
            process.terminate()
            process.wait(timeout=10)


def _read_banner(process: subprocess.Popen[bytes]) -> str:
    """What the process prints up to the banner's last line, waiting at most BANNER_SECONDS."""
    assert process.stdout is not None
    printed = b""
    deadline = time.monotonic() + BANNER_SECONDS
    while BANNER_END not in printed and time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready and not (chunk := os.read(process.stdout.fileno(), 4096)):
            break  # it exited
        printed += chunk if ready else b""
    assert BANNER_END in printed, printed.decode()
    return printed.decode()


def klaviyo_status(url: str, key: str) -> int:
    """An authenticated read of a job that does not exist: 404 if the key is taken, else 401."""
    response = httpx.get(
        f"{url}/api/profile-bulk-import-jobs/no-such-job",
        headers=KLAVIYO_HEADERS | {"Authorization": f"Klaviyo-API-Key {key}"},
    )
    return response.status_code


@pytest.mark.parametrize(
    ("arguments", "accepted", "refused"),
    [
        ((), "pk_sim_demo", "pk_test_mine"),
        (("--key", "pk_test_mine"), "pk_test_mine", "pk_sim_demo"),
    ],
)
def test_klaviyo_banner_names_the_key_it_accepts(
    arguments: tuple[str, ...], accepted: str, refused: str
) -> None:
    """The banner gives the URL and the key as settings; --key changes the key it takes."""
    with simulator("klaviyo", *arguments) as (banner, settings):
        assert f"accepting the private API key {accepted}" in banner
        assert settings["KLAVIYO_PRIVATE_API_KEY"] == accepted
        url = settings["KLAVIYO_API_URL"]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        assert klaviyo_status(url, accepted) == 404
        assert klaviyo_status(url, refused) == 401


def test_shipstation_banner_names_the_key_and_secret_it_accepts() -> None:
    """--api-key and --api-secret choose the Basic credentials; the banner gives all three."""
    arguments = ("--api-key", "ss_mine", "--api-secret", "ss_mine_secret")
    with simulator("shipstation", *arguments) as (banner, settings):
        assert "accepting API key ss_mine with API secret ss_mine_secret" in banner
        url = settings["SHIPSTATION_API_URL"]
        credentials = (settings["SHIPSTATION_API_KEY"], settings["SHIPSTATION_API_SECRET"])
        assert credentials == ("ss_mine", "ss_mine_secret")
        assert httpx.get(f"{url}/stores", auth=credentials).status_code == 200
        default = ("ss_sim_key", "ss_sim_secret")
        assert httpx.get(f"{url}/stores", auth=default).status_code == 401


def test_shopify_banner_names_the_shop_token_and_admin_url() -> None:
    """--token chooses the Admin API token; the banner's settings reach the seeded shop."""
    arguments = (
        "--token",
        "shpat_mine",
        "--orders",
        "3",
        "--days",
        "30",
        "--scopes",
        "read_orders",
    )
    with simulator("shopify", *arguments) as (banner, settings):
        assert "accepting the access token shpat_mine with scopes read_orders" in banner
        assert settings["SHOPIFY_SHOP"] == "sim-shop.myshopify.com"
        url = f"{settings['SHOPIFY_ADMIN_URL']}/admin/api/2026-10/graphql.json"
        query = {"query": "{ orders(first: 5) { nodes { id } } }"}

        def ask(token: str) -> httpx.Response:
            return httpx.post(url, json=query, headers={"X-Shopify-Access-Token": token})

        answer = ask(settings["SHOPIFY_API_KEY"])
        assert len(answer.json()["data"]["orders"]["nodes"]) == 3
        assert ask("shpat_sim_token").status_code == 401
