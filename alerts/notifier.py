"""The notifier: consumes alert events and tells each recipient over each of its channels.

For every batch of records from the alerts topic:

1. decode each record (a bad one goes to the dead-letter topic with the reason and its raw
   bytes) and offer its event to the rate limits of everyone routing says it concerns
   (``alerts.dispatch``); add the held digests that have come due;
2. save the dispatcher's state with the releases about to be sent (``notifier_state``);
3. send every release over every channel of its recipient, concurrently across recipients and
   channels (bounded), in order within one channel; skip what ``alert_notifications`` says
   was sent already, record what is sent; dead-letter what a channel refuses for good or
   still fails after every retry, so one broken channel never holds up the others;
4. save the state again (nothing pending) and only then commit the offsets.

A crash anywhere repeats no notification: see ``alerts.dispatch`` for why. The loop's poll
timeout is the timer that sends held digests when their recipients' slots free up. One
notifier runs per consumer group: it takes a database lock named after the group, and a second
one waits for it (the rate limits and held digests are one state, not one per partition).
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import httpx
import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import CommitFailedError
from psycopg.rows import TupleRow
from pydantic import TypeAdapter

from alerts.channels.delivery import RetryPolicy
from alerts.channels.mail import SmtpSettings
from alerts.channels.sender import ChannelSender
from alerts.channels.targets import EmailTarget, WebhookTarget
from alerts.courier import Courier, Topics
from alerts.dispatch import Dispatcher, DispatchState, Skip
from alerts.metrics import NotifierMetrics
from alerts.rate_limit import RateLimit, Release
from alerts.routing import RoutingConfig, everything_to, load_routing
from contracts.alert_events import AlertEvent
from contracts.decoding import DecodeError, decode_json
from energywatch.settings import Settings
from plans.register import load_register
from storage import notifications
from storage.migrate import migrate

log = logging.getLogger(__name__)
#: Without a recipients file, the one webhook is a machine: limited only against floods.
IMPLICIT_RATE_LIMIT: Final = RateLimit(max_messages=600, per_seconds=60)
_EVENT: Final = TypeAdapter(AlertEvent)
_MAX_BACKOFF_SECONDS: Final = 10.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NotifierConfig:
    """Everything the notifier needs besides connections (``create_notifier`` builds it)."""

    routing: RoutingConfig
    county_of: Mapping[str, str] = field(default_factory=dict)
    enterprise_names: Mapping[str, str] = field(default_factory=dict)
    smtp: SmtpSettings | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_concurrent_sends: int = 8
    max_records: int = 200
    poll_seconds: float = 0.5


class Notifier:
    def __init__(
        self,
        settings: Settings,
        config: NotifierConfig,
        metrics: NotifierMetrics,
        *,
        clock: Callable[[], datetime] = utc_now,
        on_delivered: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``on_delivered`` runs after a batch's deliveries are recorded and before the state
        is saved again and offsets committed: tests crash the notifier there."""
        self._settings = settings
        self._config = config
        self._metrics = metrics
        self._clock = clock
        self._on_delivered = on_delivered
        self._stopping = asyncio.Event()
        self._state_name = settings.notifier_group_id
        self._names = {**config.routing.enterprise_names, **config.enterprise_names}

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Deliver until ``stop()``. On a lost database session start over, as a restarted
        process would: reconnect (backing off), reload the saved state, read from the last
        committed offsets; what was taken but not committed is skipped by the saved state."""
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                await self._serve()
                return
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                log.warning("notifier lost its database session (%s); starting over", exc)
                self._metrics.session_errors.inc()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)

    async def _serve(self) -> None:
        s = self._settings
        async with AsyncExitStack() as stack:
            conn = await psycopg.AsyncConnection.connect(s.database_url.get_secret_value())
            stack.push_async_callback(conn.close)
            await migrate(conn)
            await conn.set_autocommit(True)
            if not await self._lock(conn):
                return
            saved = await notifications.load_state(conn, self._state_name)
            state = DispatchState.model_validate(saved) if saved is not None else None
            dispatcher = Dispatcher(self._config.routing, self._config.county_of, state)
            producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
            await producer.start()
            stack.push_async_callback(producer.stop)
            client = await stack.enter_async_context(
                httpx.AsyncClient(timeout=s.webhook_timeout_seconds)
            )
            sender = ChannelSender(
                client, smtp=self._config.smtp, policy=self._config.retry, clock=self._clock
            )
            courier = Courier(
                self._config.routing,
                self._names,
                sender,
                conn,
                producer,
                Topics(alerts=s.alerts_topic, dead_letters=s.dead_letter_topic),
                self._metrics,
                self._clock,
                self._config.max_concurrent_sends,
            )
            if dispatcher.pending:  # sent, or not, when the last run stopped
                log.info(
                    "sending %d release(s) pending since the last run", len(dispatcher.pending)
                )
                await courier.deliver(dispatcher.pending)
                await self._save(conn, dispatcher)
            consumer = AIOKafkaConsumer(
                s.alerts_topic,
                bootstrap_servers=s.kafka_bootstrap,
                group_id=s.notifier_group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_interval_ms=600_000,  # a batch may wait on retries of slow channels
            )
            await consumer.start()
            stack.push_async_callback(consumer.stop)
            while not self._stopping.is_set():
                await self._step(consumer, dispatcher, courier, conn)

    async def _lock(self, conn: psycopg.AsyncConnection[TupleRow]) -> bool:
        waiting = False
        while not await notifications.try_lock_notifier(conn, self._state_name):
            if not waiting:
                log.warning("another notifier of %s is running; waiting", self._state_name)
                waiting = True
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=1.0)
                return False
            except TimeoutError:
                continue
        return True

    async def _save(
        self,
        conn: psycopg.AsyncConnection[TupleRow],
        dispatcher: Dispatcher,
        pending: Sequence[Release] = (),
    ) -> None:
        snapshot = dispatcher.snapshot(pending).model_dump(mode="json")
        await notifications.save_state(conn, self._state_name, snapshot, self._clock())

    def _poll_ms(self, dispatcher: Dispatcher) -> int:
        wait = self._config.poll_seconds
        due = dispatcher.next_due()
        if due is not None:
            wait = min(wait, max(0.0, (due - self._clock()).total_seconds()))
        return int(wait * 1000)

    async def _step(
        self,
        consumer: AIOKafkaConsumer,
        dispatcher: Dispatcher,
        courier: Courier,
        conn: psycopg.AsyncConnection[TupleRow],
    ) -> None:
        polled = await consumer.getmany(
            timeout_ms=self._poll_ms(dispatcher), max_records=self._config.max_records
        )
        now = self._clock()
        releases: list[Release] = []
        changed = False
        for records in polled.values():
            for record in records:
                self._metrics.events_consumed.inc()
                if dispatcher.taken(record.topic, record.partition, record.offset):
                    self._metrics.events_skipped.labels(reason="already_taken").inc()
                    continue
                dispatcher.take(record.topic, record.partition, record.offset)
                changed = True
                releases += await self._accept(record, dispatcher, courier, now)
        due = dispatcher.due(now)
        releases += due
        changed = changed or bool(due)
        self._metrics.digests.inc(sum(r.is_digest for r in releases))
        self._metrics.held.set(dispatcher.held_count())
        if changed:
            await self._save(conn, dispatcher, releases)
        if releases:
            await courier.deliver(releases)
            if self._on_delivered is not None:
                await self._on_delivered()
            await self._save(conn, dispatcher)
        if polled:
            try:
                await consumer.commit()
            except CommitFailedError as exc:  # a rebalance: whoever reads these again skips
                log.warning("offsets not committed: %s", exc)  # them by the saved state

    async def _accept(
        self,
        record: ConsumerRecord[bytes, bytes],
        dispatcher: Dispatcher,
        courier: Courier,
        now: datetime,
    ) -> list[Release]:
        raw = record.value or b""
        try:
            if not raw:
                raise DecodeError("empty", "the record has no value")
            event = decode_json(_EVENT, raw, DecodeError)
        except DecodeError as exc:
            await courier.dead_letter(
                exc.kind, exc.reason, raw, (record.topic, record.partition, record.offset)
            )
            return []
        outcome = dispatcher.accept(event, now)
        if isinstance(outcome, Skip):
            self._metrics.events_skipped.labels(reason=outcome.value).inc()
            return []
        return outcome


def notifier_config(settings: Settings) -> NotifierConfig:
    """Read the recipients file (or make the one webhook the only recipient), the register
    (counties and names) and the SMTP server. Raises ``ValueError`` (``ConfigFileError`` is
    one) when the configuration cannot work."""
    if settings.recipients_path is not None:
        routing = load_routing(settings.recipients_path)
    elif settings.webhook_url:
        target = WebhookTarget(url=settings.webhook_url, secret=settings.webhook_secret)
        routing = everything_to(target, IMPLICIT_RATE_LIMIT)
    else:
        raise ValueError(
            "nobody to notify: set EW_RECIPIENTS_PATH to a recipients file, or EW_WEBHOOK_URL "
            "to the one webhook that receives every alert"
        )
    county_of: dict[str, str] = {}
    names: dict[str, str] = {}
    if settings.register_path is not None:
        register = load_register(settings.register_path)
        county_of = {e.code: e.county for e in register.enterprises}
        names = {e.code: e.name for e in register.enterprises}
    smtp = None
    if settings.smtp_host:
        smtp = SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_sender,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password,
        )
    mailed = sorted(
        r.id for r in routing.recipients if any(isinstance(c, EmailTarget) for c in r.channels)
    )
    if mailed and smtp is None:
        raise ValueError(
            f"recipient(s) {', '.join(mailed)} have e-mail channels but no SMTP server is "
            "configured: set EW_SMTP_HOST (and EW_SMTP_PORT, EW_SMTP_SECURITY, ...)"
        )
    return NotifierConfig(
        routing=routing,
        county_of=county_of,
        enterprise_names=names,
        smtp=smtp,
        retry=RetryPolicy(max_attempts=settings.webhook_max_attempts),
    )


def create_notifier(
    settings: Settings,
    metrics: NotifierMetrics,
    *,
    clock: Callable[[], datetime] = utc_now,
    on_delivered: Callable[[], Awaitable[None]] | None = None,
) -> Notifier:
    """The notifier process's composition root: the CLI and the tests both call it."""
    return Notifier(
        settings, notifier_config(settings), metrics, clock=clock, on_delivered=on_delivered
    )
