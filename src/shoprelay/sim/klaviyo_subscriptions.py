"""The subscription jobs (bulk subscribe, bulk unsubscribe) and each profile's consent.

Klaviyo answers both with 202 and no body, and runs the job later; the simulator applies it
at once, so a test reads the outcome as soon as the 202 is back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shoprelay.sim.klaviyo_consents import Consent
from shoprelay.sim.klaviyo_errors import ApiError, invalid
from shoprelay.sim.klaviyo_rules import E164, EMAIL
from shoprelay.sim.klaviyo_state import KlaviyoSim

SUBSCRIBE = "bulk_subscribe_profiles"
UNSUBSCRIBE = "bulk_unsubscribe_profiles"
MAX_PROFILES = {SUBSCRIBE: 1_000, UNSUBSCRIBE: 100}
PROFILES = "/data/attributes/profiles/data"
# The channels whose consent the simulator keeps; whatsapp and push are validated only.
ADDRESS_OF = {"email": "email", "sms": "phone_number"}


def check_subscribe(sim: KlaviyoSim, body: Any, now: datetime) -> list[ApiError]:
    """Limits, identifiers per channel, and `consented_at` only in a historical import."""
    attributes = body["data"]["attributes"]
    historical = attributes.get("historical_import") is True
    errors = _count_errors(SUBSCRIBE, attributes["profiles"]["data"])
    for index, profile in enumerate(attributes["profiles"]["data"]):
        pointer = f"{PROFILES}/{index}/attributes"
        errors += _address_errors(profile, pointer)
        for channel, marketing in _marketing(profile):
            at = f"{pointer}/subscriptions/{channel}/marketing/consented_at"
            errors += _consented_at_errors(marketing.get("consented_at"), historical, at, now)
    return errors


def check_unsubscribe(sim: KlaviyoSim, body: Any, now: datetime) -> list[ApiError]:
    """Limits and identifiers per channel."""
    profiles = body["data"]["attributes"]["profiles"]["data"]
    errors = _count_errors(UNSUBSCRIBE, profiles)
    for index, profile in enumerate(profiles):
        errors += _address_errors(profile, f"{PROFILES}/{index}/attributes")
    return errors


def subscribe(sim: KlaviyoSim, body: Any, now: datetime, base_url: str) -> Response:
    """Subscribe each profile (created if none matches) and add it to the list, if named."""
    attributes = body["data"]["attributes"]
    historical = attributes.get("historical_import") is True
    source = attributes.get("custom_source")
    for profile_id, marketing_by_channel in _apply_to(sim, body, now):
        for channel, marketing in marketing_by_channel:
            consented_at = marketing.get("consented_at")
            sim.subscriptions.consents.setdefault(profile_id, {})[channel] = Consent(
                "SUBSCRIBED",
                now,
                datetime.fromisoformat(consented_at) if consented_at else now,
                historical,
                source,
            )
    return Response(status_code=202)


def unsubscribe(sim: KlaviyoSim, body: Any, now: datetime, base_url: str) -> Response:
    """Unsubscribe each profile's channels, and take it off the list, if named."""
    for profile_id, marketing_by_channel in _apply_to(sim, body, now, leave=True):
        for channel, _ in marketing_by_channel:
            sim.subscriptions.consents.setdefault(profile_id, {})[channel] = Consent(
                "UNSUBSCRIBED", now
            )
    return Response(status_code=202)


def _apply_to(
    sim: KlaviyoSim, body: Any, now: datetime, *, leave: bool = False
) -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    list_id = (
        ((body["data"].get("relationships") or {}).get("list") or {}).get("data", {}).get("id")
    )
    for resource in body["data"]["attributes"]["profiles"]["data"]:
        attributes = resource["attributes"]
        identity = {name: attributes[name] for name in ADDRESS_OF.values() if attributes.get(name)}
        profile, _ = sim.profiles.upsert(identity, now, profile_id=resource.get("id"), strict=False)
        if list_id:
            members = sim.subscriptions.lists.setdefault(list_id, set())
            (members.discard if leave else members.add)(profile.id)
        yield profile.id, list(_marketing(resource))


def _marketing(resource: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(channel, marketing parameters) of the email and SMS channels a profile entry names."""
    subscriptions = (resource.get("attributes") or {}).get("subscriptions") or {}
    for channel in ADDRESS_OF:
        marketing = (subscriptions.get(channel) or {}).get("marketing")
        if isinstance(marketing, dict):
            yield channel, marketing


def _count_errors(operation_id: str, profiles: list[Any]) -> list[ApiError]:
    if not profiles:
        return [invalid("At least one profile is required.", PROFILES)]
    if len(profiles) > MAX_PROFILES[operation_id]:
        limit = MAX_PROFILES[operation_id]
        return [invalid(f"At most {limit} profiles are accepted per request.", PROFILES)]
    return []


def _address_errors(profile: dict[str, Any], pointer: str) -> list[ApiError]:
    """A channel needs its address: email for email, an E.164 phone number for SMS."""
    attributes = profile.get("attributes") or {}
    errors: list[ApiError] = []
    channels = dict(_marketing(profile))
    if not profile.get("id") and not attributes.get("email") and not attributes.get("phone_number"):
        errors.append(invalid("Either email or phone_number is required.", pointer))
    for channel, name in ADDRESS_OF.items():
        if channel in channels and not attributes.get(name) and not profile.get("id"):
            errors.append(invalid(f"{name} is required for {channel} subscriptions.", pointer))
    email, phone = attributes.get("email"), attributes.get("phone_number")
    if email is not None and not EMAIL.match(email):
        errors.append(invalid(f"Invalid email address: {email}", f"{pointer}/email"))
    if phone is not None and not E164.match(phone):
        detail = f"Invalid phone number format (Example of a valid format: +12345678901): {phone}"
        errors.append(invalid(detail, f"{pointer}/phone_number"))
    return errors


def _consented_at_errors(
    raw: str | None, historical: bool, pointer: str, now: datetime
) -> list[ApiError]:
    """The spec: consented_at only with historical_import, and then required and past."""
    if raw is not None and not historical:
        detail = "consented_at can only be provided when historical_import is true."
        return [invalid(detail, pointer)]
    if historical and raw is None:
        return [invalid("consented_at is required when historical_import is true.", pointer)]
    if historical and raw is not None:
        moment = datetime.fromisoformat(raw)
        if moment.tzinfo is None or moment >= now:
            return [invalid("consented_at must be a time in the past, with an offset.", pointer)]
    return []


async def list_subscriptions(request: Request) -> Response:
    """GET /_sim/subscriptions: each profile's identifiers, consent per channel and lists."""
    sim: KlaviyoSim = request.app.state.sim
    subscriptions = sim.subscriptions
    data = [
        {
            "profile_id": profile.id,
            "email": profile.attributes.get("email"),
            "phone_number": profile.attributes.get("phone_number"),
            "consent": {
                channel: record.to_json()
                for channel, record in subscriptions.consents.get(profile.id, {}).items()
            },
            "lists": subscriptions.lists_of(profile.id),
        }
        for profile in sim.all_profiles()
        if profile.id in subscriptions.consents or subscriptions.lists_of(profile.id)
    ]
    return Response(orjson.dumps({"data": data, "count": len(data)}), media_type="application/json")


CONTROL_ROUTES = [Route("/_sim/subscriptions", list_subscriptions, methods=["GET"])]
