"""The dashboard in a real headless browser (Debian's chromium, driven by Selenium), against
`shoprelay serve` with its admin listener off loopback and ADMIN_TOKEN set."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from tests.support.harness import KLAVIYO_KEY, WEBHOOK_SECRET, free_port, wait_until_healthy

from shoprelay.sim import shopify as sender
from shoprelay.sim.shopify_orders import fake_order
from shoprelay.sim.shopify_payloads import fake_customer

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
TOKEN = "browser-admin-token-9f8e7d6c5b4a"
SHOP = "browser-shop.myshopify.com"
T = TypeVar("T")

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    if os.environ.get("CI") == "true":
        pytest.fail("chromium and chromium-driver are required under CI", pytrace=False)
    pytest.skip("chromium is not installed (apt-get install chromium chromium-driver)",
                allow_module_level=True)  # fmt: skip


@dataclass(frozen=True)
class Stack:
    admin_url: str
    sim_url: str

    def api(self, path: str) -> Any:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        response = httpx.get(f"{self.admin_url}{path}", headers=headers, timeout=10)
        response.raise_for_status()
        return response.json()

    def reached_klaviyo(self) -> int:
        """Events and profiles the simulator has accepted."""
        return sum(
            int(httpx.get(f"{self.sim_url}/_sim/{kind}", timeout=10).json()["count"])
            for kind in ("events", "profiles")
        )


def until(check: Callable[[], T], within: float = 20.0) -> T:
    """Poll `check` until it returns something truthy."""
    deadline = time.monotonic() + within
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not so within {within:g} s (last: {value!r})")
        time.sleep(0.1)
    return value


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The Klaviyo simulator answering 500 to everything, and `serve` giving up after one
    attempt: one order's items become dead letters; then the simulator is healed."""
    folder = tmp_path_factory.mktemp("browser")
    sim_port, port, admin_port = free_port(), free_port(), free_port()
    sim_url, url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{port}"
    env = os.environ | {
        "DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'browser.db'}",
        "KLAVIYO_API_URL": sim_url,
        "KLAVIYO_PRIVATE_API_KEY": KLAVIYO_KEY,
        "SHOPIFY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ADMIN_TOKEN": TOKEN,
        "DELIVERY_MAX_ATTEMPTS": "1",
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "shoprelay"]
    processes = [
        subprocess.Popen(
            [*command, "sim", "klaviyo", "--port", str(sim_port)],
            env=env, stdout=subprocess.DEVNULL, start_new_session=True,
        ),
        subprocess.Popen(
            [*command, "serve", "--port", str(port), "--admin-host", "0.0.0.0",  # noqa: S104
             "--admin-port", str(admin_port)],
            env=env, stdout=subprocess.DEVNULL, start_new_session=True,
        ),
    ]  # fmt: skip
    try:
        until(lambda: _answers(f"{sim_url}/_sim/stats"))
        httpx.post(f"{sim_url}/_sim/faults", json={"rate_500": 1.0}).raise_for_status()
        wait_until_healthy(processes[1], url)
        stack = Stack(f"http://127.0.0.1:{admin_port}", sim_url)
        until(lambda: _answers(f"{stack.admin_url}/readyz", TOKEN))
        _send_order(url)
        until(lambda: _settled_with_letters(stack))
        httpx.post(f"{sim_url}/_sim/faults", json={"rate_500": 0.0}).raise_for_status()
        yield stack
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _answers(url: str, token: str | None = None) -> bool:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return httpx.get(url, headers=headers, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _send_order(url: str) -> None:
    rng = random.Random(18)
    body = sender.encode(fake_order(rng, fake_customer(rng), number=1801))
    headers = sender.headers("orders/create", body, WEBHOOK_SECRET.encode(), SHOP, "browser-1")
    response = httpx.post(f"{url}/webhooks/shopify", content=body, headers=headers)
    assert response.status_code == 200, response.text


def _settled_with_letters(stack: Stack) -> bool:
    outbox = stack.api("/status")["outbox"]
    return outbox["pending"] == 0 and outbox["in_flight"] == 0 and outbox["dead_lettered"] > 0


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=ChromeService(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(browser: WebDriver, stack: Stack, token: str) -> None:
    browser.get(f"{stack.admin_url}/")
    until(lambda: browser.current_url.endswith("/login"))
    field = browser.find_element(By.ID, "token")
    field.send_keys(token)
    field.submit()


def shown(browser: WebDriver, key: str) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, f'[data-k="{key}"]').text)


def test_the_admin_listener_off_loopback_asks_for_the_token(stack: Stack) -> None:
    """Bound to 0.0.0.0, the admin listener answers nothing without ADMIN_TOKEN."""
    for path in ("/status", "/metrics", "/readyz"):
        assert httpx.get(f"{stack.admin_url}{path}").status_code == 401


def test_sign_in_is_refused_without_the_token(stack: Stack, browser: WebDriver) -> None:
    """A wrong token leaves the browser on the sign-in form, with no dashboard."""
    sign_in(browser, stack, "not-the-token")
    until(lambda: browser.find_elements(By.CSS_SELECTOR, ".error"))
    assert "not the admin token" in browser.page_source
    assert not browser.find_elements(By.ID, "overview")
    browser.get(f"{stack.admin_url}/")
    assert browser.current_url.endswith("/login")


def test_the_page_shows_the_numbers_the_api_shows(stack: Stack, browser: WebDriver) -> None:
    """Signed in, the queue and webhook panels say what /status says, and stay live."""
    sign_in(browser, stack, TOKEN)
    until(lambda: browser.find_elements(By.ID, "overview"))
    document = stack.api("/status")
    assert shown(browser, "queue.pending") == str(document["outbox"]["pending"])
    assert shown(browser, "queue.delivered") == str(document["outbox"]["delivered"])
    assert shown(browser, "queue.dead") == str(document["dead_letters"]["open"])
    processed = browser.find_element(By.CSS_SELECTOR, 'tr[data-outcome="processed"]')
    assert processed.text.split()[-1] == str(document["webhooks"]["processed"])
    assert "letter(s) wait for a decision" in browser.find_element(By.ID, "health").text
    # The panels refresh on their own: the update time moves on without a reload.
    before = browser.find_element(By.ID, "updated").text
    until(lambda: browser.find_element(By.ID, "updated").text != before, within=15)
    until(lambda: browser.find_elements(By.CSS_SELECTOR, "#deliveries p"))
    # No script error and nothing the page's Content-Security-Policy had to block.
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []


def test_a_dead_letter_is_opened_replayed_and_reaches_klaviyo(
    stack: Stack, browser: WebDriver
) -> None:
    """Open a letter: its error and the masked body show; Replay sends it to Klaviyo."""
    sign_in(browser, stack, TOKEN)
    open_letters = stack.api("/status")["dead_letters"]["open"]
    link = until(lambda: browser.find_elements(By.CSS_SELECTOR, "#letters [data-letter]"))[0]
    link.click()
    detail = until(lambda: browser.find_elements(By.CSS_SELECTOR, "#letter-detail article"))[0]
    assert "Klaviyo's error" in detail.text
    assert "•••" in detail.text  # the customer's email, masked
    assert stack.reached_klaviyo() == 0
    detail.find_element(By.CSS_SELECTOR, 'button[data-scope="one"]:not(.danger)').click()
    until(lambda: "requeued" in browser.find_element(By.ID, "flash").text)
    until(stack.reached_klaviyo)
    assert stack.api("/status")["dead_letters"]["open"] == open_letters - 1
