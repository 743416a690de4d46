"""The admin listener's actions: replay, purge, resume. POSTs only, each with its CSRF token
when a browser sends it (the bearer token is enough for a script)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request

from shoprelay.operations import dead_letters
from shoprelay.store import pauses
from shoprelay.store.deadletters import LetterFilter
from shoprelay.web.admin_requests import letter_filter

if TYPE_CHECKING:
    from shoprelay.web.admin import Admin


def add_routes(app: FastAPI, admin: Admin) -> None:
    service = admin.service

    @app.post("/api/dead-letters/replay")
    async def replay(request: Request) -> dict[str, Any]:
        from shoprelay.service import shopify_metrics

        admin.acting(request)
        ids, chosen = action_target(await _json(request))
        report = await dead_letters.replay_chosen(
            service.store, shopify_metrics(service.settings), ids, chosen
        )
        service.dispatcher.wake()
        return {
            "requeued": report.requeued,
            "reprocessed": report.reprocessed,
            "still_unprocessable": report.still_unprocessable,
            "not_replayable": report.not_replayable,
        }

    @app.post("/api/dead-letters/purge")
    async def purge(request: Request) -> dict[str, Any]:
        admin.acting(request)
        ids, chosen = action_target(await _json(request))
        return {"purged": await dead_letters.purge_chosen(service.store, ids, chosen)}

    @app.post("/api/resume")
    async def resume(request: Request) -> dict[str, Any]:
        admin.acting(request)
        cleared = await pauses.clear_pause(service.store)
        service.dispatcher.wake()
        return {"cleared": cleared}


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise HTTPException(422, "expected a JSON body") from None


def action_target(body: Any) -> tuple[list[int] | None, LetterFilter | None]:
    """An action's letters: `{"ids": [...]}`, or `{"filter": {...}}` for all that match."""
    if not isinstance(body, dict):
        raise HTTPException(422, "expected a JSON object with ids or filter")
    ids = body.get("ids")
    if isinstance(ids, list) and ids and all(type(i) is int for i in ids):
        return ids, None
    if isinstance(body.get("filter"), dict):
        return None, letter_filter(body["filter"])
    raise HTTPException(422, "name dead letter ids, or a filter for all that match")
