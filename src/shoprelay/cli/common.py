"""What every command shares: settings, the store, clear errors, time arguments."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import typer
import uvloop
from rich.console import Console
from rich.markup import escape

from shoprelay import logs
from shoprelay.config import Settings, load_settings
from shoprelay.errors import ShoprelayError
from shoprelay.store.database import Store

console = Console()
stderr = Console(stderr=True)
T = TypeVar("T")

_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def settings() -> Settings:
    """Load the settings once per command; a bad one stops it with the variable named."""
    with clear_errors():
        loaded = load_settings()
    logs.configure(loaded.LOG_LEVEL, loaded.LOG_FORMAT)
    return loaded


@contextlib.contextmanager
def clear_errors() -> Iterator[None]:
    """A ShoprelayError becomes one red line and exit code 1, not a traceback.

    The message is printed literally (text in brackets is not markup) and is not
    wrapped, so a long problem line keeps its indent.
    """
    try:
        yield
    except ShoprelayError as exc:
        stderr.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on uvloop, with clear errors."""
    with clear_errors(), asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


async def with_store(
    config: Settings, work: Callable[[Store], Awaitable[T]], *, read_only: bool = False
) -> T:
    """Run `work` on the store. A writing command migrates the schema first; a `read_only`
    one changes nothing and stops, naming `shoprelay migrate`, if the schema is behind."""
    if read_only:
        store = await Store.open_for_reading(config.DATABASE_URL)
    else:
        store = await Store.open(config.DATABASE_URL)
    try:
        return await work(store)
    finally:
        await store.close()


def parse_time(value: str, now: float | None = None) -> float:
    """An ISO-8601 time, or an age such as 30m, 2h or 7d."""
    now = time.time() if now is None else now
    if match := _RELATIVE.match(value.strip()):
        return now - int(match.group(1)) * _UNITS[match.group(2)]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ShoprelayError(f"not a time: {value!r} (use ISO-8601 or an age like 2h)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def show_time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def bind_port(listening: socket.socket, host: str, port: int) -> None:
    """Bind, or close the socket and stop with one error that names the port and what to do."""
    try:
        listening.bind((host, port))
    except OSError as exc:
        listening.close()
        raise ShoprelayError(
            f"cannot listen on {host}:{port}: {exc.strerror}; "
            "stop what holds the port, or choose another with --port"
        ) from None
