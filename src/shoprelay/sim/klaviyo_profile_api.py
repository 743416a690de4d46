"""POST /api/profile-import and the profile bulk import job endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from shoprelay.sim.klaviyo_errors import ApiError, ApiFailure, invalid, json_api_response
from shoprelay.sim.klaviyo_jobs import ImportFailure, ImportJob, new_job_id
from shoprelay.sim.klaviyo_profiles import ProfileConflictError
from shoprelay.sim.klaviyo_rules import (
    MAX_BULK_PROFILES,
    PROFILE_IDENTIFIERS,
    profile_errors,
    profile_size_error,
)
from shoprelay.sim.klaviyo_state import KlaviyoSim

BULK_PROFILES = "/data/attributes/profiles/data"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def check_profile(sim: KlaviyoSim, body: Any, now: datetime) -> list[ApiError]:
    """Identifier rules for a profile upsert."""
    return profile_errors(body["data"], "/data", PROFILE_IDENTIFIERS)


def create_or_update_profile(sim: KlaviyoSim, body: Any, now: datetime, base_url: str) -> Response:
    """Upsert: 201 with the new profile, 200 with the updated one, 409 on an identity clash."""
    data = body["data"]
    profile_id = data.get("id")
    if profile_id and profile_id not in sim.profiles.by_id:
        detail = f"A profile with id {profile_id} does not exist."
        raise ApiFailure([ApiError(404, "not_found", detail, pointer="/data/id")])
    try:
        profile, created = sim.profiles.upsert(
            data["attributes"], now, profile_id=profile_id, patch=data.get("meta")
        )
    except ProfileConflictError as conflict:
        error = ApiError(
            409,
            "duplicate_profile",
            "A profile already exists with one of these identifiers.",
            pointer="/data/attributes",
            meta={"duplicate_profile_id": conflict.duplicate_profile_id},
        )
        raise ApiFailure([error]) from None
    document = {
        "data": profile.resource(base_url),
        "links": {"self": f"{base_url}/api/profile-import/"},
    }
    return json_api_response(document, 201 if created else 200)


def check_bulk_profiles(sim: KlaviyoSim, body: Any, now: datetime) -> list[ApiError]:
    """Only the request-wide limit fails a bulk import; bad profiles become import errors."""
    total = len(body["data"]["attributes"]["profiles"]["data"])
    if total <= MAX_BULK_PROFILES:
        return []
    detail = f"At most {MAX_BULK_PROFILES} profiles are accepted per request; got {total}."
    return [invalid(detail, BULK_PROFILES)]


def bulk_import_profiles(sim: KlaviyoSim, body: Any, now: datetime, base_url: str) -> Response:
    """Queue a job: valid profiles wait for it to complete, invalid ones are its import errors."""
    profiles = body["data"]["attributes"]["profiles"]["data"]
    job = ImportJob(id=new_job_id(), created_at=now, total_count=len(profiles), pending=[])
    for index, resource in enumerate(profiles):
        pointer = f"{BULK_PROFILES}/{index}"
        errors = profile_errors(resource, pointer, PROFILE_IDENTIFIERS)
        too_big = profile_size_error(resource, pointer)
        first = too_big or (errors[0] if errors else None)
        if first is None:
            job.pending.append((pointer, resource))
        else:
            job.errors.append(ImportFailure(first, resource))
    sim.schedule_job(job)
    return json_api_response({"data": job.resource(base_url)}, 202)


def find_job(sim: KlaviyoSim, job_id: str) -> ImportJob:
    """The job, or a 404 like Klaviyo's."""
    job = sim.jobs.get(job_id)
    if job is None:
        detail = f"A profile bulk import job with id {job_id} does not exist."
        raise ApiFailure([ApiError(404, "not_found", detail, parameter="job_id")])
    return job


async def get_job(sim: KlaviyoSim, request: Request) -> Response:
    """GET /api/profile-bulk-import-jobs/{job_id}."""
    job = find_job(sim, request.path_params["job_id"])
    return json_api_response({"data": job.resource(base_url_of(request))}, 200)


async def get_import_errors(sim: KlaviyoSim, request: Request) -> Response:
    """GET /api/profile-bulk-import-jobs/{id}/import-errors, paged by page[size], page[cursor]."""
    job = find_job(sim, request.path_params["job_id"])
    size = query_int(request, "page[size]", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    start = query_int(request, "page[cursor]", 0, 0, max(len(job.errors), 0))
    page = job.errors[start : start + size]
    here = f"{base_url_of(request)}/api/profile-bulk-import-jobs/{job.id}/import-errors/"
    links: dict[str, str | None] = {
        "self": f"{here}?page[size]={size}&page[cursor]={start}",
        "next": f"{here}?page[size]={size}&page[cursor]={start + size}"
        if start + size < len(job.errors)
        else None,
        "prev": f"{here}?page[size]={size}&page[cursor]={max(start - size, 0)}" if start else None,
    }
    return json_api_response({"data": [item.resource() for item in page], "links": links}, 200)


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high], else a 400 naming the parameter."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiFailure(
            [invalid(f"{name} must be an integer from {low} to {high}.", parameter=name)]
        )
    return int(raw)


def base_url_of(request: Request) -> str:
    """The simulator's own base URL, for `links`."""
    return str(request.base_url).rstrip("/")
