"""POST /api/data-privacy-deletion-jobs: delete every profile an identifier matches, and its
events, as Klaviyo does (asynchronously there; by the next loop turn here)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shoprelay.sim.klaviyo_errors import ApiError, invalid
from shoprelay.sim.klaviyo_profiles import identity_key
from shoprelay.sim.klaviyo_rules import E164, EMAIL
from shoprelay.sim.klaviyo_state import KlaviyoSim

OPERATION = "request_profile_deletion"
PATH = "/api/data-privacy-deletion-jobs"
_PROFILE = "/data/attributes/profile/data"
_ONE_IDENTIFIER = "Exactly one of email, phone_number or id is required."


@dataclass
class Deletion:
    """One accepted deletion request, and what it deleted once it ran."""

    identifier: str  # "email" | "phone_number" | "id"
    value: str
    received_at: datetime
    profiles_deleted: list[str] = field(default_factory=list)
    events_deleted: int = 0
    done: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "value": self.value,
            "received_at": self.received_at.isoformat(),
            "profiles_deleted": self.profiles_deleted,
            "events_deleted": self.events_deleted,
            "done": self.done,
        }


def _identifiers(body: Any) -> dict[str, str]:
    data = body["data"]["attributes"]["profile"]["data"]
    attributes = data.get("attributes") or {}
    found = {name: attributes.get(name) for name in ("email", "phone_number")}
    found["id"] = data.get("id")
    return {name: value for name, value in found.items() if value is not None}


def check_deletion(sim: KlaviyoSim, body: Any, now: datetime) -> list[ApiError]:
    """One identifier, no more ("If multiple identifiers are provided, we will return an
    error"), well formed."""
    found = _identifiers(body)
    if len(found) != 1:
        return [invalid(_ONE_IDENTIFIER, f"{_PROFILE}/attributes")]
    email, phone = found.get("email"), found.get("phone_number")
    if email is not None and not EMAIL.match(email):
        return [invalid(f"Invalid email address: {email}", f"{_PROFILE}/attributes/email")]
    if phone is not None and not E164.match(phone):
        detail = f"Invalid phone number format (Example of a valid format: +12345678901): {phone}"
        return [invalid(detail, f"{_PROFILE}/attributes/phone_number")]
    return []


def request_deletion(sim: KlaviyoSim, body: Any, now: datetime, base_url: str) -> Response:
    """202 with no body; the deletion runs afterwards, as Klaviyo's does."""
    ((name, value),) = _identifiers(body).items()
    deletion = Deletion(name, value, now)
    sim.deletions.append(deletion)
    asyncio.get_running_loop().call_soon(delete_profiles, sim, deletion)
    return Response(status_code=202)


def delete_profiles(sim: KlaviyoSim, deletion: Deletion) -> None:
    """Remove every matching profile, its identifiers, events and consent."""
    profiles = sim.profiles
    if deletion.identifier == "id":
        matched = [deletion.value] if deletion.value in profiles.by_id else []
    else:
        found = profiles.index.get(identity_key(deletion.identifier, deletion.value))
        matched = [found] if found else []
    for profile_id in matched:
        profile = profiles.by_id.pop(profile_id)
        for key in [key for key, owner in profiles.index.items() if owner == profile.id]:
            del profiles.index[key]
        log = sim.event_log
        kept = [event for event in log.events if event.profile_id != profile_id]
        deletion.events_deleted += len(log.events) - len(kept)
        log.events = kept
        log.seen = {key for key in log.seen if key[0] != profile_id}
        book = getattr(sim, "subscriptions", None)
        if book is not None:
            book.consents.pop(profile_id, None)
            for members in book.lists.values():
                members.discard(profile_id)
        deletion.profiles_deleted.append(profile_id)
    deletion.done = True


async def list_deletions(request: Request) -> Response:
    """GET /_sim/deletions: every deletion request, and what it deleted."""
    sim: KlaviyoSim = request.app.state.sim
    data = [deletion.to_json() for deletion in sim.deletions]
    return Response(orjson.dumps({"data": data, "count": len(data)}), media_type="application/json")


CONTROL_ROUTES = [Route("/_sim/deletions", list_deletions, methods=["GET"])]
