"""The running service: store, webhook receiver, delivery worker and pollers, wired once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import structlog
from pydantic import SecretStr
from sqlalchemy import text

from shoprelay.config import Settings
from shoprelay.delivery.dispatcher import DeliveryConfig, Dispatcher
from shoprelay.delivery.klaviyo import KlaviyoClient
from shoprelay.errors import ConfigError
from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.operations import status
from shoprelay.sources.shopify.receive import Receiver
from shoprelay.store import retention
from shoprelay.store.database import Store
from shoprelay.store.ingest import IngestWriter

log = structlog.get_logger("shoprelay.service")
RETENTION_PASS_SECONDS = 600.0


def missing(settings: Settings, *names: str) -> list[str]:
    """A problem line for each of `names` that is not set, or set to nothing (`NAME=` in a
    .env file): an empty webhook secret would verify signatures made with no key at all."""
    return [
        f"{name}: required to run this command, and not set"
        for name in names
        if not _given(getattr(settings, name))
    ]


def _given(value: object) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value is not None and str(value).strip() != ""


def require(settings: Settings, *names: str) -> None:
    """Stop start-up with one message naming every missing setting."""
    if problems := missing(settings, *names):
        raise ConfigError(*problems)


def shopify_metrics(settings: Settings) -> ShopifyMetrics:
    return ShopifyMetrics(
        placed_order=settings.METRIC_PLACED_ORDER,
        ordered_product=settings.METRIC_ORDERED_PRODUCT,
        fulfilled_order=settings.METRIC_FULFILLED_ORDER,
        cancelled_order=settings.METRIC_CANCELLED_ORDER,
        refunded_order=settings.METRIC_REFUNDED_ORDER,
        started_checkout=settings.METRIC_STARTED_CHECKOUT,
    )


class Service:
    """What a process of `shoprelay serve` runs: the receiver, or delivery and the pollers;
    the demo and the tests run all of them in one."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        background: bool = True,
        on_commit: Callable[[frozenset[tuple[str, str]]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        # Under `serve` the receivers do not deliver: one process delivers and polls, so one
        # limiter paces; `on_commit` then tells that process which lanes have new items.
        self.background = background
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.client = KlaviyoClient.from_settings(settings)
        self.dispatcher = Dispatcher(
            store, self.client, DeliveryConfig.from_settings(settings), owner=self.owner
        )
        self.writer = IngestWriter(store, on_commit=on_commit or self.dispatcher.wake)
        self.receiver = Receiver(
            self.writer,
            settings.shopify_secrets,
            shopify_metrics(settings),
            store=store,
            max_age_seconds=settings.SHOPIFY_WEBHOOK_MAX_AGE_SECONDS,
            propagates={
                "customers/delete": settings.SHOPIFY_DELETE_PROPAGATES,
                "shop/redact": settings.SHOPIFY_SHOP_REDACT_PROPAGATES,
            },
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        background: bool = True,
        migrate: bool = True,
        on_commit: Callable[[frozenset[tuple[str, str]]], None] | None = None,
    ) -> Service:
        require(settings, "SHOPIFY_WEBHOOK_SECRET", "KLAVIYO_PRIVATE_API_KEY")
        store = await Store.open(settings.DATABASE_URL, migrate=migrate)
        return cls(settings, store, background=background, on_commit=on_commit)

    async def start(self, *, receive: bool = True) -> None:
        """Start the webhook writer (unless `receive` is off), and delivery and the pollers."""
        self._stop.clear()
        if receive:
            await self.writer.start()
        if self.background:
            self._start_background()
        log.info(
            "shoprelay started",
            database=self.store.backend,
            role=("all" if receive else "delivery") if self.background else "receiver",
            shipstation=self.settings.shipstation_enabled and self.background,
            shopify_catchup=self.settings.shopify_admin_enabled and self.background,
        )

    def _start_background(self) -> None:
        self._tasks.append(asyncio.create_task(self.dispatcher.run(self._stop), name="delivery"))
        if self.settings.OUTBOX_RETENTION_DAYS > 0:
            retention = self._clear_old_bodies(self.settings.OUTBOX_RETENTION_DAYS * 86_400)
            self._tasks.append(asyncio.create_task(retention, name="retention"))
        if self.settings.shipstation_enabled:
            from shoprelay.sources.shipstation.poll import run_scheduler

            self._tasks.append(
                asyncio.create_task(
                    run_scheduler(self.store, self.settings, self._stop), name="shipstation"
                )
            )
        if self.settings.shopify_admin_enabled:
            from shoprelay.sources.shopify.admin.schedule import run_scheduler as catch_up

            work = catch_up(self.store, self.settings, shopify_metrics(self.settings), self._stop)
            self._tasks.append(asyncio.create_task(work, name="shopify-catchup"))

    async def _clear_old_bodies(self, keep_seconds: float) -> None:
        """Clear delivered items' bodies past the retention window, now and then every 10 min."""
        while not self._stop.is_set():
            now = time.time()
            try:
                cleared = await retention.clear_old_bodies(
                    self.store, before=now - keep_seconds, now=now
                )
            except Exception:
                # Only the clearing waits: delivery goes on, and the next pass picks up here.
                log.warning("retention.pass_failed", exc_info=True)
            else:
                if cleared:
                    log.info("retention.bodies_cleared", items=cleared)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=RETENTION_PASS_SECONDS)

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=10)
        self._tasks = []
        await self.writer.stop()
        await self.client.close()
        log.info("shoprelay stopped")

    async def close(self) -> None:
        await self.store.close()

    def stopped_tasks(self) -> list[str]:
        """Background tasks that ended though nobody stopped the service."""
        if self._stop.is_set():
            return []
        return [task.get_name() for task in self._tasks if task.done()]

    async def ready(self) -> tuple[bool, str]:
        """Not ready when the database is away or a background task has stopped."""
        if stopped := self.stopped_tasks():
            return False, f"background task stopped: {', '.join(stopped)}"
        # Twice: a pooled connection the database dropped fails once and is discarded; the
        # answer is about the database as it is now.
        for tries_left in (1, 0):
            try:
                async with self.store.read() as conn:
                    await conn.execute(text("SELECT 1"))
            except Exception as exc:
                if not tries_left:
                    return False, f"database unreachable: {type(exc).__name__}"
            else:
                break
        return True, "ok"

    async def status(self) -> dict[str, Any]:
        settings = self.settings
        return await status.collect(
            self.store,
            shipstation_enabled=settings.shipstation_enabled,
            shopify_shop=settings.SHOPIFY_SHOP if settings.shopify_admin_enabled else None,
        )
