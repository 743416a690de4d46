"""The account's profiles: identity resolution by identifier, and Klaviyo's upsert semantics."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

IDENTIFIERS = ("email", "phone_number", "external_id", "anonymous_id", "_kx")
SCALARS = ("first_name", "last_name", "organization", "locale", "title", "image")
SHOWN = ("email", "phone_number", "external_id", *SCALARS)  # attributes a profile resource shows
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_profile_id() -> str:
    """A 26-character ULID-shaped id, like Klaviyo's profile ids."""
    return "01" + "".join(secrets.choice(CROCKFORD) for _ in range(24))


def identity_key(name: str, value: str) -> str:
    """The index key of one identifier; emails match case-insensitively."""
    return f"{name}:{value.strip().lower() if name == 'email' else value}"


def identity_keys(attributes: Mapping[str, Any]) -> list[str]:
    """Index keys of the identifiers present in `attributes`, in matching priority."""
    return [identity_key(name, attributes[name]) for name in IDENTIFIERS if attributes.get(name)]


@dataclass
class Profile:
    """One profile as the simulated account stores it."""

    id: str
    created: datetime
    updated: datetime
    attributes: dict[str, Any] = field(default_factory=dict)
    last_event_date: datetime | None = None

    def resource(self, base_url: str) -> dict[str, Any]:
        """The JSON:API profile resource Klaviyo returns."""
        attributes = {name: self.attributes.get(name) for name in SHOWN}
        attributes |= {
            "created": self.created.isoformat(),
            "updated": self.updated.isoformat(),
            "last_event_date": self.last_event_date and self.last_event_date.isoformat(),
            "location": self.attributes.get("location"),
            "properties": self.attributes.get("properties", {}),
        }
        return {
            "type": "profile",
            "id": self.id,
            "attributes": attributes,
            "links": {"self": f"{base_url}/api/profiles/{self.id}/"},
        }


class ProfileConflictError(Exception):
    """The identifiers of one request belong to two different existing profiles."""

    def __init__(self, duplicate_profile_id: str):
        super().__init__(duplicate_profile_id)
        self.duplicate_profile_id = duplicate_profile_id


class ProfileStore:
    """Profiles by id, and an index from each identifier to the profile that holds it."""

    def __init__(self) -> None:
        self.by_id: dict[str, Profile] = {}
        self.index: dict[str, str] = {}

    def matches(self, attributes: Mapping[str, Any]) -> list[str]:
        """Ids of existing profiles holding any identifier in `attributes`, first match first."""
        found = (self.index.get(key) for key in identity_keys(attributes))
        return list(dict.fromkeys(profile_id for profile_id in found if profile_id))

    def upsert(
        self,
        attributes: Mapping[str, Any],
        now: datetime,
        *,
        profile_id: str | None = None,
        patch: Mapping[str, Any] | None = None,
        strict: bool = True,
    ) -> tuple[Profile, bool]:
        """Create or update a profile; returns it and whether it was created.

        Strict (profile-import) raises ProfileConflictError when identifiers point at two
        profiles; lenient (events) attaches to the first match and skips taken identifiers.
        """
        candidates = self.matches(attributes)
        if profile_id in self.by_id:
            candidates = [profile_id, *(c for c in candidates if c != profile_id)]
        if strict and len(candidates) > 1:
            raise ProfileConflictError(candidates[1])
        created = not candidates
        profile = self.by_id[candidates[0]] if candidates else self.create(now)
        taken = self.assign_identifiers(profile, attributes)
        merge_attributes(
            profile.attributes, {k: v for k, v in attributes.items() if k not in taken}
        )
        apply_patch(profile.attributes, patch or {})
        profile.updated = now
        return profile, created

    def create(self, now: datetime) -> Profile:
        """Store a new empty profile."""
        profile = Profile(id=new_profile_id(), created=now, updated=now)
        self.by_id[profile.id] = profile
        return profile

    def assign_identifiers(self, profile: Profile, attributes: Mapping[str, Any]) -> set[str]:
        """Move the index to the identifiers sent; null clears; returns those held elsewhere."""
        taken: set[str] = set()
        for name in IDENTIFIERS:
            if name not in attributes:
                continue
            value = attributes[name]
            key = identity_key(name, value) if value else None
            if key is not None and self.index.get(key, profile.id) != profile.id:
                taken.add(name)
                continue
            old = profile.attributes.get(name)
            if old:
                self.index.pop(identity_key(name, old), None)
            if key is not None:
                self.index[key] = profile.id
        return taken

    def find(self, attributes: Mapping[str, Any]) -> Profile | None:
        """The first profile holding one of these identifiers, if any."""
        matches = self.matches(attributes)
        return self.by_id[matches[0]] if matches else None

    def all(self) -> Iterable[Profile]:
        """Every profile, oldest first."""
        return self.by_id.values()


def merge_attributes(stored: dict[str, Any], sent: Mapping[str, Any]) -> None:
    """Klaviyo's rule: a field sent as null is cleared, a field left out is unchanged."""
    for name, value in sent.items():
        if name in ("location", "properties") and isinstance(value, Mapping):
            nested = stored.setdefault(name, {})
            merge_attributes(nested, value)
        elif value is None:
            stored.pop(name, None)
        else:
            stored[name] = value


def apply_patch(stored: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """`meta.patch_properties`: append to, unappend from and unset custom properties."""
    changes = patch.get("patch_properties") or {}
    if not changes:
        return
    properties = stored.setdefault("properties", {})
    for name, value in (changes.get("append") or {}).items():
        current = properties.get(name)
        items = current if isinstance(current, list) else ([] if current is None else [current])
        properties[name] = [*items, *(value if isinstance(value, list) else [value])]
    for name, value in (changes.get("unappend") or {}).items():
        removed = value if isinstance(value, list) else [value]
        if isinstance(properties.get(name), list):
            properties[name] = [item for item in properties[name] if item not in removed]
    unset = changes.get("unset") or []
    for name in [unset] if isinstance(unset, str) else unset:
        properties.pop(name, None)
