"""`shoprelay serve`: the webhook receiver, the delivery worker and the pollers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import FrameType

import structlog
import uvicorn

from shoprelay.cli.common import bind_port, clear_errors, run, settings, stderr, with_store
from shoprelay.config import Settings
from shoprelay.delivery.wakeups import WakeSender, listen
from shoprelay.errors import ConfigError, ShoprelayError
from shoprelay.service import Service, missing
from shoprelay.store import dialects
from shoprelay.store.database import Store
from shoprelay.web.admin import create_admin_app
from shoprelay.web.app import create_app
from shoprelay.web.auth import is_loopback

log = structlog.get_logger("shoprelay.serve")


def serve(
    host: str, port: int, workers: int, admin_host: str | None = None, admin_port: int | None = None
) -> None:
    """`workers` receiving processes, each listening on the port, and one that delivers and
    polls and serves the admin listener, under this one, which restarts nothing: if one
    stops, all stop."""
    config = settings()
    admin_host = config.ADMIN_HOST if admin_host is None else admin_host
    admin_port = config.ADMIN_PORT if admin_port is None else admin_port
    # Refuse a bad configuration before taking the port, every variable named at once.
    with clear_errors():
        problems = missing(config, "SHOPIFY_WEBHOOK_SECRET", "KLAVIYO_PRIVATE_API_KEY")
        if not is_loopback(admin_host) and missing(config, "ADMIN_TOKEN"):
            problems.append(
                f"ADMIN_TOKEN: required when the admin listener binds {admin_host}, which is "
                "not loopback; set it (or ADMIN_TOKEN_FILE), or keep --admin-host 127.0.0.1"
            )
        if dialects.for_url(config.DATABASE_URL).one_process_only(config.DATABASE_URL):
            # Receivers would acknowledge into a database the delivery process never sees.
            problems.append(
                "DATABASE_URL: serve runs several processes, and an in-memory SQLite database "
                "belongs to one; name a file (sqlite+aiosqlite:///shoprelay.db) or PostgreSQL"
            )
        if problems:
            raise ConfigError(*problems)
        listener = Listener.bind(host, port)
        admin = _admin_socket(admin_host, admin_port, listener)
    bound = admin.getsockname()
    log.info("admin.listening", url=f"http://{_url_host(bound[0])}:{bound[1]}/")
    # Migrate once, before the fork: processes migrating side by side would race for the schema.
    run(lambda: with_store(config, _schema_ready))
    # Delivery gets a process of its own: packing a 1,000-event request on a receiver's event
    # loop held up every acknowledgement waiting there. Receivers wake it through a pipe.
    wake_reader, wake_writer = os.pipe()
    # Fork: the children inherit the socket, the pipe and the loaded settings.
    context = multiprocessing.get_context("fork")
    children = [
        context.Process(
            target=_run_receiver, args=(config, listener, admin, wake_writer), daemon=True
        )
        for _ in range(workers)
    ]
    children.append(
        context.Process(
            target=_run_delivery, args=(config, listener, admin, wake_reader), daemon=True
        )
    )
    for child in children:
        child.start()
    # The delivery process holds it now; a copy here would queue connections nobody takes.
    admin.close()
    _supervise(children)


@dataclass(frozen=True)
class Listener:
    """The port the receivers take connections on, each with a socket of its own where the
    kernel can spread connections over them.

    One socket shared by every receiver let whichever woke first accept them all: in
    benchmark runs one of two receivers often held all 64 keep-alive connections and the
    other none. With SO_REUSEPORT the kernel hashes each new connection to one receiver's
    socket.
    """

    host: str
    port: int
    # Bound to hold the port; listening only where it is the receivers' shared socket.
    held: socket.socket

    @classmethod
    def bind(cls, host: str, port: int) -> Listener:
        """Take the port, or fail here if anything holds it (a second shoprelay included)."""
        held = _socket(host)
        bind_port(held, host, port)
        if not hasattr(socket, "SO_REUSEPORT"):
            held.listen(_BACKLOG)
            return cls(host, held.getsockname()[1], held)
        # Taken without SO_REUSEPORT first, so no other process already sharing it slips by.
        port = held.getsockname()[1]
        held.close()
        held = _socket(host, reuse_port=True)
        held.bind((host, port))
        return cls(host, port, held)

    def for_receiver(self) -> socket.socket:
        """This receiver's listening socket (called in the receiver's process)."""
        if not hasattr(socket, "SO_REUSEPORT"):
            return self.held
        own = _socket(self.host, reuse_port=True)
        own.bind((self.host, self.port))
        own.listen(_BACKLOG)
        self.held.close()
        return own


_BACKLOG = 2048


def _socket(host: str, *, reuse_port: bool = False) -> socket.socket:
    made = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    made.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        made.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    made.set_inheritable(True)
    return made


def _admin_socket(host: str, port: int, listener: Listener) -> socket.socket:
    """The admin listener's socket, listening: the delivery process serves it."""
    admin = _socket(host)
    try:
        admin.bind((host, port))
    except OSError as exc:
        admin.close()
        listener.held.close()
        raise ShoprelayError(
            f"cannot listen on {host}:{port} for the admin listener: {exc.strerror}; "
            "stop what holds the port, or choose another with --admin-port"
        ) from None
    admin.listen(_BACKLOG)
    return admin


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _schema_ready(_: Store) -> None:
    """Nothing to do once the store is open: opening it migrated the schema."""


def _run_receiver(
    config: Settings, listener: Listener, admin: socket.socket, wake_writer: int
) -> None:
    """Take webhooks until SIGTERM; deliver nothing."""
    admin.close()
    wakeups = WakeSender(wake_writer)
    parent = os.getppid()

    async def main() -> None:
        service = await Service.open(config, background=False, migrate=False, on_commit=wakeups)
        try:
            server = uvicorn.Server(
                uvicorn.Config(
                    create_app(service),
                    log_level="warning",
                    access_log=False,
                    http="httptools",
                    proxy_headers=False,
                    timeout_graceful_shutdown=10,
                    # The last bound on memory, past the webhook's own: uvicorn answers 503
                    # itself beyond this many connections or requests in progress.
                    limit_concurrency=config.RECEIVER_MAX_CONNECTIONS,
                )
            )
            _freeze_startup_objects()
            watchdog = asyncio.create_task(_exit_with_parent(server, parent))
            await server.serve(sockets=[listener.for_receiver()])
            watchdog.cancel()
        finally:
            await service.close()

    run(main)


def _run_delivery(
    config: Settings, listener: Listener, admin: socket.socket, wake_reader: int
) -> None:
    """Deliver, poll and serve the admin listener until SIGTERM; receivers take webhooks."""
    listener.held.close()
    parent = os.getppid()

    async def main() -> None:
        service = await Service.open(config, background=True, migrate=False)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        stop_listening = listen(wake_reader, service.dispatcher.wake)
        admin_server = _AdminServer(
            uvicorn.Config(
                create_admin_app(service),
                log_level="warning",
                access_log=False,
                proxy_headers=False,
                lifespan="off",
                timeout_graceful_shutdown=5,
            )
        )
        serving = asyncio.create_task(admin_server.serve(sockets=[admin]), name="admin")
        try:
            await service.start(receive=False)
            _freeze_startup_objects()
            while not stop.is_set() and os.getppid() == parent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1)
                # No /readyz can see this process: exit instead, and the supervisor stops all.
                if stopped := service.stopped_tasks():
                    raise ShoprelayError(f"background task stopped: {', '.join(stopped)}")
                if serving.done():
                    raise ShoprelayError("the admin listener stopped")
        finally:
            admin_server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(serving, timeout=10)
            stop_listening()
            await service.stop()
            await service.close()

    run(main)


class _AdminServer(uvicorn.Server):
    """uvicorn, leaving SIGTERM and SIGINT to the delivery process's own handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _freeze_startup_objects() -> None:
    """Leave the ~10^5 objects of the loaded libraries out of every later GC pass.

    A full collection walks them all, tens of milliseconds, and stalls every request in flight;
    frozen, it walks only what serving allocates. A webhook allocates thousands of short-lived
    objects, so the youngest generation is also collected less often than the default 700.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


async def _exit_with_parent(server: uvicorn.Server, parent: int) -> None:
    """A worker whose supervisor was killed (even with -9) stops instead of lingering."""
    while os.getppid() == parent:  # noqa: ASYNC110 - no event tells us the parent died
        await asyncio.sleep(1)
    server.should_exit = True


def _supervise(children: Sequence[multiprocessing.process.BaseProcess]) -> None:
    """Forward SIGTERM/SIGINT; if one worker dies, stop all, so the supervisor can restart us."""

    def forward(signum: int, _: FrameType | None) -> None:
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while all(child.is_alive() for child in children):
        children[0].join(timeout=0.5)
    forward(signal.SIGTERM, None)
    for child in children:
        child.join(timeout=15)
    failed = [child.exitcode for child in children if child.exitcode not in (0, -signal.SIGTERM)]
    if failed:
        stderr.print(f"[red]error:[/red] a worker exited with code {failed[0]}; stopping")
        sys.exit(1)
