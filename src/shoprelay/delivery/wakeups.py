"""Wake-ups between processes: receivers tell the delivery process which lanes got new items.

A wake-up is a hint, never the record: the outbox is. A message that cannot be written at
once (the pipe is full because the delivery process is busy) is dropped, and the lane finds
its items at its next poll.
"""

from __future__ import annotations

import asyncio
import os
import select
from collections.abc import Callable, Collection

import orjson
import structlog

log = structlog.get_logger("shoprelay.delivery")

Lanes = Collection[tuple[str, str]]
_READ_SIZE = 65_536


class WakeSender:
    """Called after each group commit with the lanes its items joined."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._fd = fd

    def __call__(self, lanes: Lanes) -> None:
        message = orjson.dumps(sorted(lanes)) + b"\n"
        if len(message) > select.PIPE_BUF:
            # Only writes up to PIPE_BUF are whole; a longer list wakes every lane instead.
            message = b"null\n"
        try:
            os.write(self._fd, message)
        except BlockingIOError:
            pass  # the delivery process is behind: it has work, and polls
        except OSError as exc:
            log.warning("delivery.wake_failed", error=type(exc).__name__)


def listen(fd: int, wake: Callable[[Lanes | None], None]) -> Callable[[], None]:
    """Call `wake` on this event loop for what the receivers send; returns the way to stop."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    pending = bytearray()

    def readable() -> None:
        try:
            pending.extend(os.read(fd, _READ_SIZE))
        except BlockingIOError:
            return
        end = pending.rfind(b"\n")
        if end < 0:
            return
        messages = bytes(pending[:end]).split(b"\n")
        del pending[: end + 1]
        woken: set[tuple[str, str]] = set()
        for message in messages:
            lanes = orjson.loads(message)
            if lanes is None:
                wake(None)
                return
            woken.update((account, kind) for account, kind in lanes)
        wake(woken)

    loop.add_reader(fd, readable)

    def stop() -> None:
        loop.remove_reader(fd)

    return stop
