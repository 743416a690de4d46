"""Bulk profile import jobs: queued, processing for a while, then complete with import errors."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shoprelay.sim.klaviyo_errors import ApiError
from shoprelay.sim.klaviyo_profiles import ProfileConflictError, ProfileStore

JOB_LIFETIME = timedelta(days=7)


class JobStatus(enum.StrEnum):
    """The statuses the spec lists for a profile bulk import job."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETE = "complete"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class ImportFailure:
    """One profile the job could not import, with the pointer into the original request."""

    error: ApiError
    original_payload: dict[str, Any] | None

    def resource(self) -> dict[str, Any]:
        """The `import-error` resource of the import-errors listing."""
        item = self.error.to_json()
        return {
            "type": "import-error",
            "id": item["id"],
            "attributes": {
                "code": item["code"],
                "title": item["title"],
                "detail": item["detail"],
                "source": item["source"],
                "original_payload": self.original_payload,
            },
        }


@dataclass
class ImportJob:
    """One bulk import: the profiles that passed validation wait here until the job completes."""

    id: str
    created_at: datetime
    total_count: int
    pending: list[tuple[str, dict[str, Any]]]
    errors: list[ImportFailure] = field(default_factory=list)
    status: JobStatus = JobStatus.QUEUED
    completed_count: int = 0
    started_at: datetime | None = None
    completed_at: datetime | None = None

    def start(self, now: datetime) -> None:
        """Move from queued to processing."""
        if self.status is JobStatus.QUEUED:
            self.status, self.started_at = JobStatus.PROCESSING, now

    def complete(self, profiles: ProfileStore, now: datetime) -> None:
        """Upsert every pending profile; identifier conflicts become import errors."""
        self.start(now)
        for pointer, resource in self.pending:
            attributes = resource.get("attributes") or {}
            try:
                profiles.upsert(
                    attributes, now, profile_id=resource.get("id"), patch=resource.get("meta")
                )
            except ProfileConflictError as conflict:
                detail = "A profile already exists with one of these identifiers."
                error = ApiError(
                    409,
                    "duplicate_profile",
                    detail,
                    pointer=pointer,
                    meta={"duplicate_profile_id": conflict.duplicate_profile_id},
                )
                self.errors.append(ImportFailure(error, resource))
            else:
                self.completed_count += 1
        self.pending = []
        self.status, self.completed_at = JobStatus.COMPLETE, now

    def resource(self, base_url: str) -> dict[str, Any]:
        """The `profile-bulk-import-job` resource."""

        def stamp(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        links = f"{base_url}/api/profile-bulk-import-jobs/{self.id}"
        done = self.status is JobStatus.COMPLETE
        return {
            "type": "profile-bulk-import-job",
            "id": self.id,
            "attributes": {
                "status": self.status.value,
                "created_at": stamp(self.created_at),
                "total_count": self.total_count,
                "completed_count": self.completed_count,
                "failed_count": len(self.errors) if done else 0,
                "completed_at": stamp(self.completed_at),
                "expires_at": stamp(self.created_at + JOB_LIFETIME),
                "started_at": stamp(self.started_at),
            },
            "relationships": {
                "import-errors": {"links": {"related": f"{links}/import-errors/"}},
            },
            "links": {"self": f"{links}/"},
        }


def new_job_id() -> str:
    """A job id in Klaviyo's style."""
    return str(uuid.uuid4())
