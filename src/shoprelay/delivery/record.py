"""Act on an outcome: write what happened to the claimed items into the store."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shoprelay import backoff
from shoprelay.delivery.outcome import (
    Delivered,
    DuplicateProfile,
    Outcome,
    PauseAccount,
    Refused,
    RetryLater,
)
from shoprelay.delivery.pauseboard import PauseBoard
from shoprelay.delivery.ratelimit import RateLimiter
from shoprelay.delivery.report import report_gave_up, report_pause
from shoprelay.delivery.requests import IDENTIFIERS
from shoprelay.store import outbox, pauses
from shoprelay.store.database import Store
from shoprelay.store.outbox import Failure, Item

# Klaviyo's advice for a 409: drop the identifier that conflicts; the phone is the usual culprit.
DROPPABLE_IDENTIFIERS = ("phone_number", "external_id")


@dataclass(frozen=True)
class DeliveryRetry:
    """When to try an item's delivery again, and when to give up on it."""

    max_attempts: int
    max_age_seconds: float
    backoff_base_seconds: float
    backoff_cap_seconds: float


def without_conflicting_identifier(kind: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """The body minus one identifier, for a 409; None if that would leave no identifier."""
    attributes = body if kind == "profile" else body["profile"]["data"]["attributes"]
    for name in DROPPABLE_IDENTIFIERS:
        rest = {k: v for k, v in attributes.items() if k != name}
        if attributes.get(name) and any(rest.get(k) for k in IDENTIFIERS):
            if kind == "profile":
                return rest
            profile = {**body["profile"], "data": {**body["profile"]["data"], "attributes": rest}}
            return {**body, "profile": profile}
    return None


class Recorder:
    """Writes outcomes to the store, sets and notes pauses, and spends attempts."""

    def __init__(  # noqa: PLR0917 - the collaborators it writes through
        self,
        store: Store,
        policy: DeliveryRetry,
        board: PauseBoard,
        limiter: RateLimiter,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.store = store
        self.policy = policy
        self.board = board
        self.limiter = limiter
        self.clock = clock
        self.rng = rng

    async def apply(self, endpoint: str, items: Sequence[Item], outcome: Outcome) -> None:
        """Record one request's outcome for the items it carried."""
        account = items[0].account
        if isinstance(outcome, Delivered):
            await outbox.mark_delivered(self.store, items, self.clock())
            self.limiter.observe(account, endpoint, outcome.quota)
        elif isinstance(outcome, RetryLater):
            if outcome.throttled:
                # Throttled is not processed: wait out Retry-After without spending an attempt.
                wait = outcome.delay_hint or 1.0
                await self.pause_endpoint(account, endpoint, wait)
                await self.release(items, self.clock() + wait)
            else:
                await self.retry(items, outcome.reason, outcome.delay_hint)
        elif isinstance(outcome, Refused):
            failure = Failure(
                f"{outcome.status} {outcome.code or 'refused'}",
                outcome.detail,
                outcome.pointer,
                outcome.status,
            )
            await self.dead_letter(items, [failure] * len(items))
        elif isinstance(outcome, PauseAccount):
            await self.pause_account(account, endpoint, outcome)
            await self.release(items)
        else:
            await self.resolve_duplicates(items, outcome)

    async def retry(self, items: Sequence[Item], reason: str, retry_after: float | None) -> None:
        """Spend an attempt and schedule the next, or give up on items out of attempts or time."""
        now = self.clock()
        spent = [item for item in items if self._exhausted(item, now)]
        if spent:
            attempts = max(item.attempts for item in spent)
            failure = Failure(f"gave up after {attempts} attempts: {reason}")
            await self.dead_letter(spent, [failure] * len(spent))
            report_gave_up(items[0].account, tuple(i.id for i in spent), reason)
        by_attempt: dict[int, list[Item]] = {}
        for item in items:
            if item not in spent:
                by_attempt.setdefault(item.attempts, []).append(item)
        for attempt, waiting in by_attempt.items():
            wait = backoff.delay(
                attempt,
                self.rng,
                self.policy.backoff_base_seconds,
                self.policy.backoff_cap_seconds,
                retry_after,
            )
            await outbox.schedule_retry(self.store, waiting, available_at=now + wait, error=reason)

    def _exhausted(self, item: Item, now: float) -> bool:
        """Out of attempts or time; `item.attempts` counts the claim being settled."""
        too_old = now - item.created_at >= self.policy.max_age_seconds
        return item.attempts >= self.policy.max_attempts or too_old

    async def dead_letter(self, items: Sequence[Item], failures: Sequence[Failure]) -> None:
        await outbox.dead_letter(self.store, items, failures, self.clock())

    async def release(self, items: Sequence[Item], available_at: float | None = None) -> None:
        """Back to the queue without spending an attempt."""
        when = self.clock() if available_at is None else available_at
        await outbox.release(self.store, items, available_at=when)

    async def pause_endpoint(self, account: str, endpoint: str, seconds: float) -> None:
        """After a 429, no worker sends to this endpoint until Retry-After has passed."""
        now = self.clock()
        until = now + seconds
        self.limiter.hold(account, endpoint, until)
        pause = pauses.Pause(account, endpoint, "rate_limited", "429 throttled", now, until)
        if self.board.note(pause, now):
            report_pause(account, endpoint, "rate_limited", paused=True)
        await pauses.set_pause(
            self.store,
            account=account,
            endpoint=endpoint,
            reason="rate_limited",
            detail="429 throttled",
            now=now,
            until=until,
        )

    async def pause_account(self, account: str, endpoint: str, outcome: PauseAccount) -> None:
        """A bad key or a missing scope: stop the account until a probe or a person clears it."""
        now = self.clock()
        pause = pauses.Pause(account, pauses.ALL_ENDPOINTS, "auth", outcome.reason, now, None)
        if not self.board.note(pause, now):
            return
        report_pause(account, pauses.ALL_ENDPOINTS, outcome.reason, paused=True)
        await pauses.set_pause(
            self.store,
            account=account,
            endpoint=pauses.ALL_ENDPOINTS,
            reason="auth",
            detail=outcome.reason,
            now=now,
            until=None,
        )
        await pauses.record_error(
            self.store,
            account=account,
            endpoint=endpoint,
            status_code=outcome.status,
            detail=outcome.reason,
            now=now,
        )

    async def resume_account(self, account: str) -> None:
        """A probe got through: lift the account-wide pause for every worker."""
        self.board.lift(account, pauses.ALL_ENDPOINTS)
        await pauses.clear_pause(self.store, account=account, endpoint=pauses.ALL_ENDPOINTS)
        report_pause(account, pauses.ALL_ENDPOINTS, "probe succeeded", paused=False)

    async def resolve_duplicates(self, items: Sequence[Item], outcome: DuplicateProfile) -> None:
        """Resend without the conflicting identifier; dead-letter only if none would be left."""
        for item in items:
            body = without_conflicting_identifier(item.kind, item.body)
            if body is None:
                detail = f"duplicate profile {outcome.duplicate_profile_id}; no identifier to drop"
                await self.dead_letter(
                    [item], [Failure("409 duplicate_profile", detail, None, 409)]
                )
                continue
            await outbox.replace_body(self.store, item, body)
            await self.release([item])
