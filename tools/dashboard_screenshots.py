"""Screenshots of the dashboard for the README: `python tools/dashboard_screenshots.py`.

Runs the Klaviyo simulator and `shoprelay serve` on a scratch SQLite database, sends a month
of a small shop's webhooks, plants two dead letters (one Klaviyo refuses, one that is not
JSON), then photographs the page with Debian's chromium: docs/images/dashboard.png,
docs/images/dead-letter.png and, after the simulator revokes the key, dashboard-stalled.png
(made smaller by `pngquant` where it is installed: apt-get install pngquant).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from shoprelay.sim import shopify as sender
from shoprelay.sim.shopify import generate_stream
from shoprelay.store import outbox
from shoprelay.store.database import Store
from shoprelay.store.outbox import NewItem

IMAGES = Path(__file__).parents[1] / "docs" / "images"
SECRET, KEY, SHOP = "screenshot-secret", "pk_sim_demo", "north-coast-tea.myshopify.com"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def until(check: Callable[[], T], within: float = 60.0) -> T:
    deadline = time.monotonic() + within
    while not (value := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting ({value!r})")
        time.sleep(0.2)
    return value


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def running(commands: list[list[str]], env: dict[str, str]) -> Iterator[None]:
    processes = [
        subprocess.Popen(  # noqa: S603 - our own commands
            command, env=env, stdout=subprocess.DEVNULL, start_new_session=True
        )
        for command in commands
    ]
    try:
        yield
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)


def send_month(url: str) -> None:
    """About 150 orders over the last 30 days, with their fulfilments, refunds and cancels."""
    rng = random.Random(2026)  # noqa: S311 - a repeatable shop, not a secret
    now = datetime.now(UTC)
    with httpx.Client(base_url=url, timeout=10) as client:
        for day in range(30, 0, -1):
            start = now - timedelta(days=day)
            for topic, payload in generate_stream(rng, rng.randint(2, 8), start=start):
                body = sender.encode(payload)
                headers = sender.headers(topic, body, SECRET.encode(), SHOP, None)
                client.post("/webhooks/shopify", content=body, headers=headers)
        body = b'{"id": 5550001, "email": "sam@example.com", "line_items": ['
        headers = sender.headers("orders/create", body, SECRET.encode(), SHOP, "broken-1")
        client.post("/webhooks/shopify", content=body, headers=headers)


async def plant_refused(database_url: str) -> None:
    """An event Klaviyo refuses (a time before 1990), as the demo plants one."""
    event = {
        "properties": {"OrderId": "1042"},
        "time": "1985-01-01T00:00:00Z",
        "unique_id": "screenshot:refused:1",
        "metric": {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": "ada@example.com"}}},
    }
    store = await Store.open(database_url, migrate=False)
    try:
        async with store.transaction() as conn:
            item = NewItem("event", "screenshot:refused:1", event, "shopify")
            await outbox.enqueue(store, conn, [item], time.time())
    finally:
        await store.close()


def browser() -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1400",
                     "--hide-scrollbars"):  # fmt: skip
        options.add_argument(argument)
    return webdriver.Chrome(service=ChromeService("/usr/bin/chromedriver"), options=options)


def settled(admin_url: str) -> bool:
    status = httpx.get(f"{admin_url}/status", timeout=5).json()
    return bool(status["outbox"]["pending"] == 0 and status["outbox"]["in_flight"] == 0)


def photograph(admin_url: str, sim_url: str, url: str) -> None:
    driver = browser()
    try:
        driver.get(f"{admin_url}/")
        until(lambda: driver.find_elements(By.CSS_SELECTOR, "#deliveries svg"))
        until(lambda: driver.find_elements(By.CSS_SELECTOR, "#letters [data-letter]"))
        until(lambda: "Loading" not in driver.find_element(By.ID, "reconcile").text)
        time.sleep(6)  # one refresh, so the per-minute rates have two samples
        driver.save_screenshot(str(IMAGES / "dashboard.png"))
        letters = driver.find_elements(By.CSS_SELECTOR, "#letters [data-letter]")
        letters[0].click()  # the newest: the event Klaviyo refused
        detail = until(lambda: driver.find_elements(By.CSS_SELECTOR, "#letter-detail article"))
        driver.execute_script("arguments[0].scrollIntoView()", driver.find_element(By.ID, "dlq"))
        time.sleep(0.5)
        detail[0].screenshot(str(IMAGES / "dead-letter.png"))
        httpx.post(f"{sim_url}/_sim/faults", json={"revoked": True}).raise_for_status()
        rng = random.Random(7)  # noqa: S311 - a repeatable shop, not a secret
        with httpx.Client(base_url=url) as client:
            for topic, payload in generate_stream(rng, 3, start=datetime.now(UTC)):
                body = sender.encode(payload)
                headers = sender.headers(topic, body, SECRET.encode(), SHOP, None)
                client.post("/webhooks/shopify", content=body, headers=headers)
        driver.execute_script("window.scrollTo(0, 0)")
        until(lambda: "stalled" in str(driver.find_element(By.ID, "health").get_attribute("class")))
        driver.set_window_size(1280, 560)
        driver.save_screenshot(str(IMAGES / "dashboard-stalled.png"))
    finally:
        driver.quit()


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="shoprelay-shots-"))
    sim_port, port, admin_port = free_port(), free_port(), free_port()
    sim_url, url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{port}"
    admin_url = f"http://127.0.0.1:{admin_port}"
    database_url = f"sqlite+aiosqlite:///{folder / 'shots.db'}"
    env = os.environ | {
        "DATABASE_URL": database_url,
        "KLAVIYO_API_URL": sim_url,
        "KLAVIYO_PRIVATE_API_KEY": KEY,
        "SHOPIFY_WEBHOOK_SECRET": SECRET,
        "DELIVERY_AUTH_PROBE_SECONDS": "600",
        "LOG_LEVEL": "ERROR",
    }
    shoprelay = [sys.executable, "-m", "shoprelay"]
    commands = [
        [*shoprelay, "sim", "klaviyo", "--port", str(sim_port), "--timezone", "America/New_York"],
        [*shoprelay, "serve", "--port", str(port), "--admin-port", str(admin_port)],
    ]
    with running(commands, env):
        until(lambda: answers(f"{sim_url}/_sim/stats") and answers(f"{admin_url}/readyz"))
        send_month(url)
        asyncio.run(plant_refused(database_url))
        until(lambda: settled(admin_url), within=300)
        photograph(admin_url, sim_url, url)
    for name in ("dashboard.png", "dead-letter.png", "dashboard-stalled.png"):
        if shutil.which("pngquant"):  # a quarter of the size, no difference to see
            subprocess.run(  # noqa: S603 - our own files
                ["pngquant", "--force", "--quality=70-90", "--strip", "--output",  # noqa: S607
                 str(IMAGES / name), "--", str(IMAGES / name)],
                check=True,
            )  # fmt: skip
        print(f"{IMAGES / name}: {(IMAGES / name).stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
