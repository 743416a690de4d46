"""Bulk delivery: event bulk-create jobs and profile import jobs, one bad item at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from shoprelay.delivery.klaviyo import KlaviyoClient, KlaviyoResponse, job_id_of, job_status_of
from shoprelay.delivery.outcome import Delivered, DuplicateProfile, KlaviyoError, Refused
from shoprelay.delivery.ratelimit import Pacer
from shoprelay.delivery.record import Recorder
from shoprelay.delivery.report import report_fault
from shoprelay.delivery.requests import BulkPlan, BulkRequest, plan_bulk_events, plan_bulk_profiles
from shoprelay.delivery.sender import BULK_ENDPOINT, SINGLE_ENDPOINT, Sender
from shoprelay.delivery.subscriptions import (
    SUBSCRIBE_ENDPOINT,
    SubscriptionJob,
    plan_subscription_jobs,
)
from shoprelay.store import outbox
from shoprelay.store.outbox import Failure, Item

Resend = Callable[[Sequence[Item], float], Awaitable[None]]
# Single requests at once when a batch's failure must be found item by item.
ONE_BY_ONE_IN_FLIGHT = 8
JOB_ENDPOINT = "get_bulk_import_profiles_job"
ERRORS_ENDPOINT = "get_errors_for_bulk_import_profiles_job"


@dataclass(frozen=True)
class JobPolling:
    """How often to ask about an import job, how long to hold its items, and when to give up."""

    poll_seconds: float
    lease_seconds: float
    timeout_seconds: float


class BulkDelivery:
    """Sends claimed items through Klaviyo's bulk endpoints and records each item's fate."""

    def __init__(
        self,
        client: KlaviyoClient,
        sender: Sender,
        pacer: Pacer,
        recorder: Recorder,
        polling: JobPolling,
        *,
        list_id: str | None = None,
    ) -> None:
        self.client = client
        self.sender = sender
        self.pacer = pacer
        self.recorder = recorder
        self.polling = polling
        self.list_id = list_id  # KLAVIYO_LIST_ID: the list subscribers join

    async def send_events(self, items: Sequence[Item], deadline: float) -> None:
        """Pack events into bulk-create jobs and send them."""
        plan = plan_bulk_events([(item.id, item.body) for item in items])
        await self._send_plan(plan, items, deadline, self._send_events_request)

    async def send_profiles(self, items: Sequence[Item], deadline: float) -> None:
        """Pack profiles into import jobs, send them and wait for each to complete."""
        plan = plan_bulk_profiles([(item.id, item.body) for item in items])
        await self._send_plan(plan, items, deadline, self._send_profiles_request)

    async def send_subscriptions(self, items: Sequence[Item], deadline: float) -> None:
        """Pack consent changes into subscribe and unsubscribe jobs and send them; a change
        that asks for nothing is settled at once."""
        plan = plan_subscription_jobs([(item.id, item.body) for item in items], self.list_id)
        by_id = {item.id: item for item in items}
        if plan.no_request:
            outcome = Delivered(202)
            await self.recorder.apply(
                SUBSCRIBE_ENDPOINT, [by_id[i] for i in plan.no_request], outcome
            )
        await self.recorder.release([by_id[item_id] for item_id in plan.deferred])
        async with asyncio.TaskGroup() as group:
            for job in plan.jobs:
                job_items = [by_id[i] for i in job.request.item_ids]
                group.create_task(self._send_subscription_job(job, job_items, deadline))

    async def _send_subscription_job(
        self, job: SubscriptionJob, items: list[Item], deadline: float
    ) -> None:
        call = (
            self.client.bulk_subscribe_profiles
            if job.endpoint == SUBSCRIBE_ENDPOINT
            else self.client.bulk_unsubscribe_profiles
        )
        sent = await self.sender.send(job.endpoint, items, lambda: call(job.request.body), deadline)
        if sent is None:
            return
        if isinstance(sent.outcome, Refused) and len(items) > 1:
            resend = self.send_subscriptions
            await self._isolate(job.request, items, sent.outcome, deadline, resend)
        else:
            await self.recorder.apply(job.endpoint, items, sent.outcome)

    async def _send_plan(
        self,
        plan: BulkPlan,
        items: Sequence[Item],
        deadline: float,
        send: Callable[[BulkRequest, list[Item], float], Coroutine[Any, Any, None]],
    ) -> None:
        by_id = {item.id: item for item in items}
        await self.recorder.release([by_id[item_id] for item_id in plan.deferred])
        # A task group: if one request's work fails, the others are cancelled and awaited
        # before the lane retries the batch, so none of it is still being sent meanwhile.
        async with asyncio.TaskGroup() as group:
            for request in plan.requests:
                group.create_task(send(request, [by_id[i] for i in request.item_ids], deadline))

    async def _send_events_request(
        self, request: BulkRequest, items: list[Item], deadline: float
    ) -> None:
        sent = await self.sender.send(
            BULK_ENDPOINT["event"],
            items,
            lambda: self.client.bulk_create_events(request.body),
            deadline,
        )
        if sent is None:
            return
        if isinstance(sent.outcome, Refused) and len(items) > 1:
            await self._isolate(request, items, sent.outcome, deadline, self.send_events)
        else:
            await self.recorder.apply(BULK_ENDPOINT["event"], items, sent.outcome)

    async def _send_profiles_request(
        self, request: BulkRequest, items: list[Item], deadline: float
    ) -> None:
        sent = await self.sender.send(
            BULK_ENDPOINT["profile"],
            items,
            lambda: self.client.bulk_import_profiles(request.body),
            deadline,
        )
        if sent is None:
            return
        if isinstance(sent.outcome, Refused) and len(items) > 1:
            await self._isolate(request, items, sent.outcome, deadline, self.send_profiles)
        elif isinstance(sent.outcome, Delivered) and isinstance(sent.reply, KlaviyoResponse):
            await self._finish_job(job_id_of(sent.reply.body), request, items, deadline)
        else:
            await self.recorder.apply(BULK_ENDPOINT["profile"], items, sent.outcome)

    async def _isolate(
        self,
        request: BulkRequest,
        items: list[Item],
        refusal: Refused,
        deadline: float,
        resend: Resend,
    ) -> None:
        """Dead-letter the items Klaviyo's pointers name and resend the rest; else bisect."""
        named: dict[int, list[KlaviyoError]] = {}
        for error in refusal.errors:
            for item_id in request.items_at(error.pointer):
                named.setdefault(item_id, []).append(error)
        if not named:
            half = len(items) // 2
            await resend(items[:half], deadline)
            await resend(items[half:], deadline)
            return
        bad = [item for item in items if item.id in named]
        failures = [_failure(refusal.status, named[item.id]) for item in bad]
        await self.recorder.dead_letter(bad, failures)
        rest = [item for item in items if item.id not in named]
        if rest:
            await resend(rest, deadline)

    async def _finish_job(
        self, job_id: str | None, request: BulkRequest, items: list[Item], deadline: float
    ) -> None:
        """Wait for the import job, then settle each profile by the job's import errors."""
        if job_id is None or not await self._job_completed(job_id, items):
            return
        account = items[0].account
        limiter = self.pacer.limiter
        pages = 0

        async def pace() -> None:
            nonlocal pages
            if pages:
                limiter.answer(account, ERRORS_ENDPOINT, self.pacer.clock())
            await self.pacer.acquire(account, ERRORS_ENDPOINT)
            pages += 1

        errors, last = await self.client.get_profile_import_errors(job_id, before_each=pace)
        limiter.answer(account, ERRORS_ENDPOINT, self.pacer.clock())
        if not isinstance(last, KlaviyoResponse) or last.status != 200:
            # The job ran but we cannot tell which profiles failed: an upsert may safely
            # repeat. An attempt is spent, so a job whose errors never read ends.
            reason = "the import job's errors could not be read"
            await self.recorder.retry(items, reason, None)
            return
        await self._settle(request, items, errors)

    async def _job_completed(self, job_id: str, items: list[Item]) -> bool:
        """Poll the job until it completes; False (items settled) if it cannot be known.

        Klaviyo accepted the job, so the items stay leased while it runs: releasing them would
        only submit the same job again, and a job slower than the lease would never finish.
        """
        give_up_at = self.pacer.clock() + self.polling.timeout_seconds
        async with self._leased(items) as keeper:
            return await self._poll_job(job_id, items, give_up_at, keeper)

    @contextlib.asynccontextmanager
    async def _leased(self, items: list[Item]) -> AsyncIterator[asyncio.Task[None]]:
        """Keep the items leased for as long as the block runs; the keeper task ends early
        only when the claim no longer holds them."""
        keeper = asyncio.create_task(self._keep_leased(items))
        try:
            yield keeper
        finally:
            keeper.cancel()
            # Waited for, not awaited: a cancellation of this task itself must go on up.
            await asyncio.wait({keeper})

    async def _poll_job(
        self, job_id: str, items: list[Item], give_up_at: float, keeper: asyncio.Task[None]
    ) -> bool:
        # A poll may wait for the job endpoint's quota as long as the job may take.
        while not keeper.done():
            if self.pacer.clock() >= give_up_at:
                await self.recorder.retry(items, "import job did not complete in time", None)
                return False
            sent = await self.sender.send(
                JOB_ENDPOINT, items, lambda: self.client.get_profile_import_job(job_id), give_up_at
            )
            if sent is None:
                return False
            reply = sent.reply
            status = job_status_of(reply.body) if isinstance(reply, KlaviyoResponse) else ""
            if isinstance(sent.outcome, Delivered) and status == "complete":
                return not keeper.done()
            if status == "cancelled" or isinstance(sent.outcome, Refused):
                # Sent again later, an attempt spent: a job refused every time ends.
                await self.recorder.retry(items, f"the import job was {status or 'refused'}", None)
                return False
            await asyncio.sleep(self.polling.poll_seconds)
        return False  # another worker holds the items now; its outcome stands

    async def _keep_leased(self, items: list[Item]) -> None:
        """Extend the items' lease every third of it; end when the claim no longer holds them.
        A failed extension is tried again at the next third: two of them still fit."""
        lease = self.polling.lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            until = self.pacer.clock() + lease
            try:
                held = await outbox.extend_lease(self.recorder.store, items, until)
            except Exception:
                report_fault("lease", account=items[0].account, kind=items[0].kind)
                continue
            if not held:
                return

    async def _settle(
        self, request: BulkRequest, items: list[Item], errors: list[dict[str, Any]]
    ) -> None:
        """Failed profiles are resolved (409) or dead-lettered; the others were imported."""
        failed: dict[int, dict[str, Any]] = {}
        unmapped = 0
        for error in errors:
            attributes = error.get("attributes") or {}
            pointer = (attributes.get("source") or {}).get("pointer")
            found = request.items_at(pointer) or _by_payload(items, attributes)
            unmapped += not found
            failed.update((item_id, attributes) for item_id in found)
        imported = [item for item in items if item.id not in failed]
        if unmapped:
            # Some profile failed and we cannot tell which. Alone, each gets its own answer:
            # the bad one is dead-lettered and the others land (an upsert may repeat).
            await self._send_one_by_one(imported)
        elif imported:
            await self.recorder.apply(BULK_ENDPOINT["profile"], imported, Delivered(202))
        conflicts = [i for i in items if failed.get(i.id, {}).get("code") == "duplicate_profile"]
        if conflicts:
            await self.recorder.resolve_duplicates(conflicts, DuplicateProfile(None))
        refused = [i for i in items if i.id in failed and i not in conflicts]
        if refused:
            failures = [_import_failure(failed[item.id]) for item in refused]
            await self.recorder.dead_letter(refused, failures)

    async def _send_one_by_one(self, items: list[Item]) -> None:
        """Send each item as a single request, a few at a time, under the batch's lease."""
        gate = asyncio.Semaphore(ONE_BY_ONE_IN_FLIGHT)
        deadline = self.pacer.clock() + self.polling.timeout_seconds

        async def send_alone(item: Item) -> None:
            async with gate:
                sent = await self.sender.send_single(item, deadline)
                if sent is not None:
                    await self.recorder.apply(SINGLE_ENDPOINT[item.kind], [item], sent.outcome)

        async with self._leased(items), asyncio.TaskGroup() as group:
            for item in items:
                group.create_task(send_alone(item))


def _by_payload(items: list[Item], attributes: dict[str, Any]) -> tuple[int, ...]:
    """Match an import error to an item by the payload Klaviyo echoes back."""
    payload = attributes.get("original_payload") or {}
    sent = payload.get("attributes", payload)
    return tuple(item.id for item in items if item.body == sent)[:1]


def _failure(status: int, errors: list[KlaviyoError]) -> Failure:
    detail = "; ".join(error.detail for error in errors)
    return Failure(f"{status} {errors[0].code or 'invalid'}", detail, errors[0].pointer, status)


def _import_failure(attributes: dict[str, Any]) -> Failure:
    pointer = (attributes.get("source") or {}).get("pointer")
    code = attributes.get("code") or "invalid"
    return Failure(f"import error {code}", attributes.get("detail"), pointer, 400)
