"""The simulated account: what it recorded, what it counted, and the faults it injects."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from dataclasses import fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shoprelay.sim.klaviyo_config import KlaviyoSimConfig

if TYPE_CHECKING:
    from shoprelay.sim.klaviyo_privacy import Deletion
from shoprelay.sim.klaviyo_consents import SubscriptionBook
from shoprelay.sim.klaviyo_events import AcceptedEvent, EventLog
from shoprelay.sim.klaviyo_faults import Fault, Faults
from shoprelay.sim.klaviyo_jobs import ImportJob
from shoprelay.sim.klaviyo_limits import RateLimiter
from shoprelay.sim.klaviyo_profiles import Profile, ProfileStore


def utc_now() -> datetime:
    """The wall clock in UTC."""
    return datetime.now(UTC)


def faults_from_config(config: KlaviyoSimConfig) -> Faults:
    """The fault settings named in the config."""
    return Faults(
        **{f.name: getattr(config, f.name) for f in fields(Faults) if f.name != "revoked"}
    )


class KlaviyoSim:
    """State of one simulated Klaviyo account, shared by every request (one event loop)."""

    def __init__(self, config: KlaviyoSimConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Forget everything recorded and counted; faults go back to the config's."""
        self.rng = random.Random(self.config.seed)
        self.faults = faults_from_config(self.config)
        self.limiter = RateLimiter()
        self.profiles = ProfileStore()
        self.event_log = EventLog()
        self.jobs: dict[str, ImportJob] = {}
        self.subscriptions = SubscriptionBook()
        self.deletions: list[Deletion] = []  # data-privacy deletion jobs (klaviyo_privacy.py)
        self.responses: defaultdict[str, Counter[int]] = defaultdict(Counter)
        self.faults_injected: Counter[str] = Counter()

    @property
    def events(self) -> list[AcceptedEvent]:
        """Accepted events, first of each dedup key only, in arrival order."""
        return self.event_log.events

    def all_profiles(self) -> list[Profile]:
        """Every stored profile, oldest first."""
        return list(self.profiles.all())

    def set_faults(self, faults: Faults) -> None:
        """Replace the fault settings (takes effect on the next request)."""
        self.faults = faults

    def draw_fault(self) -> Fault:
        """The fault for this request, drawn from the seeded RNG."""
        fault = self.faults.draw(self.rng)
        if fault is not Fault.NONE:
            self.faults_injected[fault.value] += 1
        return fault

    def count_response(self, operation_id: str, status: int) -> None:
        """Count one answered request."""
        self.responses[operation_id][status] += 1

    def schedule_job(self, job: ImportJob) -> None:
        """Start the job on the next loop turn and complete it after the configured delay."""
        self.jobs[job.id] = job
        loop = asyncio.get_running_loop()
        loop.call_soon(job.start, utc_now())
        loop.call_later(self.config.bulk_job_delay_seconds, self.complete_job, job)

    def complete_job(self, job: ImportJob) -> None:
        """Apply a job's profiles, unless the account was reset meanwhile."""
        if self.jobs.get(job.id) is job:
            job.complete(self.profiles, utc_now())

    def stats(self) -> dict[str, Any]:
        """Counters for tests and benchmarks: requests, throttling, dedup, window peaks."""
        return {
            "requests": {
                operation_id: {str(status): count for status, count in sorted(counts.items())}
                for operation_id, counts in sorted(self.responses.items())
            },
            "throttled": sum(counts[429] for counts in self.responses.values()),
            "events_accepted": len(self.event_log.events),
            "duplicates_ignored": self.event_log.duplicates_ignored,
            "profiles": len(self.profiles.by_id),
            "faults_injected": dict(self.faults_injected),
            "max_in_window": self.limiter.highest_counts(),
        }
