"""Sending what the rate limits released: every release over every channel of its recipient,
each recorded once it has arrived, or dead-lettered when it cannot arrive.

Channels of one batch are sent concurrently (bounded), but one recipient's channel gets its
releases one after another, in order (a resolved notice never overtakes its alert). A
notification recorded in ``alert_notifications`` under the same (recipient, channel,
idempotency key) is not sent again. A channel that refuses a message for good, or still fails
after every retry, costs a dead letter with the reason, never the other channels' deliveries.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import psycopg
from aiokafka import AIOKafkaProducer
from psycopg.rows import TupleRow
from pydantic import BaseModel, ConfigDict

from alerts.channels.delivery import DeliveryResult
from alerts.channels.render import RenderedMessage, render_alerts
from alerts.channels.sender import ChannelSender
from alerts.channels.targets import ChannelTarget, target_names
from alerts.metrics import NotifierMetrics
from alerts.rate_limit import Release
from alerts.routing import RoutingConfig
from contracts.alert_events import AlertEvent
from contracts.dead_letters import DeadLetter, encode_dead_letter
from storage import notifications

log = logging.getLogger(__name__)
STAGE: Final = "alerts.notifier"


class Undelivered(BaseModel):
    """The raw bytes of a dead letter for a notification that did not arrive: enough to send
    it again by hand."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    recipient_id: str
    channel: str
    idempotency_key: str
    events: tuple[AlertEvent, ...]


@dataclass(frozen=True)
class Topics:
    alerts: str
    dead_letters: str


@dataclass(frozen=True)
class _Job:
    release: Release
    recipient_id: str
    channel: str  # the target's name within the recipient (alert_notifications.channel)
    target: ChannelTarget

    @property
    def key(self) -> notifications.NotificationKey:
        return (self.recipient_id, self.channel, self.release.idempotency_key)


class Courier:
    def __init__(
        self,
        routing: RoutingConfig,
        enterprise_names: Mapping[str, str],
        sender: ChannelSender,
        conn: psycopg.AsyncConnection[TupleRow],
        producer: AIOKafkaProducer,
        topics: Topics,
        metrics: NotifierMetrics,
        clock: Callable[[], datetime],
        max_concurrent_sends: int = 8,
    ) -> None:
        self._routing = routing
        self._names = enterprise_names
        self._sender = sender
        self._conn = conn
        self._producer = producer
        self._topics = topics
        self._metrics = metrics
        self._clock = clock
        self._slots = asyncio.Semaphore(max_concurrent_sends)

    async def deliver(self, releases: Sequence[Release]) -> None:
        """Send every release; return once each is recorded or dead-lettered."""
        queues: dict[tuple[str, str], list[_Job]] = defaultdict(list)
        for release in releases:
            recipient = self._routing.by_id.get(release.recipient_id)
            if recipient is None:  # removed from the recipients file while events were held
                await self._undeliverable(
                    release, "-", "no_recipient", "the recipient is no longer configured"
                )
                continue
            names = target_names(recipient.channels)
            for name, target in zip(names, recipient.channels, strict=True):
                queues[(recipient.id, name)].append(_Job(release, recipient.id, name, target))
        done = await notifications.sent_already(
            self._conn, [job.key for queue in queues.values() for job in queue]
        )
        messages: dict[str, RenderedMessage] = {}
        async with asyncio.TaskGroup() as group:
            for queue in queues.values():
                group.create_task(self._send_in_order(queue, done, messages))

    async def dead_letter(
        self, kind: str, reason: str, raw: bytes, source: tuple[str, int, int] | None = None
    ) -> None:
        """Send a dead letter; ``source`` is the rejected record's (topic, partition, offset)."""
        topic, partition, offset = source or (self._topics.alerts, None, None)
        letter = DeadLetter(
            stage=STAGE,
            kind=kind,
            reason=reason[:2000],
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            raw_base64=DeadLetter.encode_raw(raw),
            rejected_at=self._clock(),
        )
        await self._producer.send_and_wait(self._topics.dead_letters, encode_dead_letter(letter))
        self._metrics.dead_letters.labels(kind=kind).inc()
        log.warning("dead-lettered (%s): %s", kind, reason)

    async def _send_in_order(
        self,
        queue: Sequence[_Job],
        done: set[notifications.NotificationKey],
        messages: dict[str, RenderedMessage],
    ) -> None:
        for job in queue:
            if job.key in done:
                self._metrics.notifications_skipped.labels(channel=job.target.kind).inc()
                continue
            key = job.release.idempotency_key
            if key not in messages:
                messages[key] = render_alerts(job.release.events, enterprise_names=self._names)
            async with self._slots:
                result = await self._sender.send(job.target, messages[key], key)
            await self._settle(job, result)

    async def _settle(self, job: _Job, result: DeliveryResult) -> None:
        channel = job.target.kind
        failures = self._metrics.notification_failures
        if result.attempts > 1:
            failures.labels(channel=channel, reason="retried").inc(result.attempts - 1)
        if not result.delivered:
            reason = "refused" if result.permanent else "exhausted"
            failures.labels(channel=channel, reason=reason).inc()
            what = "refused" if result.permanent else f"failed {result.attempts} attempt(s)"
            await self._undeliverable(
                job.release, job.channel, "undeliverable", f"{what}: {result.detail}"
            )
            return
        delivered_at = self._clock()
        release = job.release
        await notifications.record_sent(
            self._conn,
            notifications.SentNotification(
                job.recipient_id,
                job.channel,
                release.idempotency_key,
                release.event_ids,
                result.attempts,
                delivered_at,
            ),
        )
        self._metrics.notifications_sent.labels(channel=channel).inc()
        for event in release.events:
            latency = (delivered_at - event.emitted_at) / timedelta(seconds=1)
            self._metrics.delivery_seconds.labels(channel=channel).observe(max(0.0, latency))
        log.info(
            "sent %s to %s over %s (%d event(s))",
            release.idempotency_key,
            job.recipient_id,
            job.channel,
            len(release.events),
        )

    async def _undeliverable(self, release: Release, channel: str, kind: str, why: str) -> None:
        raw = Undelivered(
            recipient_id=release.recipient_id,
            channel=channel,
            idempotency_key=release.idempotency_key,
            events=release.events,
        )
        reason = f"{release.recipient_id}/{channel}: {why}"
        await self.dead_letter(kind, reason, raw.model_dump_json().encode())
