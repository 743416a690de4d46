"""What the admin listener reads from a request: a dead-letter filter, the letter asked for,
and whether a browser sent it from another site."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

from shoprelay.operations import dead_letters
from shoprelay.store.database import Store
from shoprelay.store.deadletters import LetterFilter

AGES = {"1h": (3600, None), "24h": (86_400, None), "older-24h": (None, 86_400),
        "older-7d": (None, 7 * 86_400)}  # fmt: skip


async def letter_detail(store: Store, letter_id: int, *, unmask: bool) -> dict[str, Any]:
    """One dead letter for the API or the page; 404 if there is none."""
    found = await dead_letters.detail(store, letter_id, unmask=unmask)
    if found is None:
        raise HTTPException(404, f"no dead letter with id {letter_id}")
    return found


def letter_filter(params: Any, now: float | None = None) -> LetterFilter:
    """The dead-letter filter in a query string or an action's `filter` object."""
    now = time.time() if now is None else now
    newer, older = AGES.get(params.get("age") or "", (None, None))
    return LetterFilter(
        origin=params.get("origin") or None,
        topic=params.get("topic") or None,
        reason=params.get("reason") or None,
        since=None if newer is None else now - newer,
        before=None if older is None else now - older,
    )


def cross_site(request: Request) -> bool:
    """A browser's request from another site: its Origin names another host than ours."""
    origin = request.headers.get("origin")
    if not origin:
        return False
    return origin == "null" or urlsplit(origin).netloc != request.headers.get("host", "")
