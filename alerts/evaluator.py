"""The alert evaluator: rules over stored data, the lifecycle over their verdicts, an outbox to
the alerts topic. The only writer of alert state.

One evaluator leads at a time (a session advisory lock on a connection of its own; others
wait on it and take over when the leader's session ends). The leader LISTENs for the stream's
dirty marks and the Alerts API's commands and runs a *pass* on each notification, and a sweep
pass every ``evaluator_sweep_seconds``. A pass is one transaction:

1. apply pending operators' commands in id order (each in a savepoint: a refused one gets its
   ``error`` and the rest go on);
2. claim the dirty marks and ask the rule inputs for conditions (plus ``on_tick`` on sweeps);
3. feed them to the lifecycle, and write its events to ``alert_history``, the ``alerts`` rows
   and both snapshots (lifecycle and rule inputs).

After the commit, events to deliver are sent to the alerts topic (acks=all, awaited) and only
then marked published: a crash in between sends them again, and the notifier de-duplicates on
``event_id``. A restart (or a new leader) resumes exactly from the snapshots. A pass that fails
rolls back and the in-memory state is reloaded from the snapshots, so memory never runs ahead
of what is stored.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from psycopg.rows import TupleRow
from pydantic import TypeAdapter, ValidationError

from alerts.events import to_alert_event
from alerts.lifecycle import (
    AlertLifecycle,
    LifecycleConfig,
    LifecycleEvent,
    Silence,
    SilenceKind,
    UnknownAlert,
)
from alerts.metrics import EvaluatorMetrics
from alerts.rules.condition import Condition
from alerts.sources import RuleContext, RuleInputs, load_rule_context, region_of
from contracts.alert_commands import (
    Acknowledge,
    AddSilence,
    AlertCommand,
    DeclareEmergency,
    RemoveSilence,
)
from contracts.alert_events import AlertEvent, encode_alert
from energywatch.settings import Settings
from storage import alert_store
from storage.alert_dirty import CHANNEL as DIRTY_CHANNEL
from storage.alert_dirty import Dirty, claim_dirty, mark_dirty
from storage.alert_store import COMMANDS_CHANNEL, Command, PendingCommand
from storage.migrate import migrate

log = logging.getLogger(__name__)

LIFECYCLE_SNAPSHOT: Final = "lifecycle"
INPUTS_SNAPSHOT: Final = "rule_inputs"
PUBLISH_BATCH: Final = 500
#: Marks and commands taken per pass; a full batch makes the next pass follow at once.
DIRTY_BATCH: Final = 10_000
COMMAND_BATCH: Final = 100
_MAX_BACKOFF_SECONDS: Final = 10.0

Connection = psycopg.AsyncConnection[TupleRow]


class ConditionSource(Protocol):
    """What the evaluator needs of the rules' data side: ``alerts.sources.RuleInputs``, or
    a test's stand-in."""

    async def on_dirty(
        self, conn: Connection, dirty: Sequence[Dirty], now: datetime
    ) -> list[Condition]: ...

    async def on_tick(self, conn: Connection, now: datetime) -> list[Condition]: ...

    def declare_emergency(self, command: DeclareEmergency) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...


#: Rule inputs restored from their snapshot, or fresh when there is none (None).
InputsLoader = Callable[[Mapping[str, Any] | None], ConditionSource]
#: The region (division code) an event's subject belongs to, if known.
RegionOf = Callable[[LifecycleEvent], str | None]


class LeadershipLost(RuntimeError):
    """The leader lock's session ended: another evaluator may be leading now."""


class Stopped(Exception):
    """Asked to stop before leadership was taken."""


def utc_now() -> datetime:
    return datetime.now(UTC)


_COMMAND: Final = TypeAdapter[Command](AlertCommand)


def parse_command(pending: PendingCommand) -> Command:
    """The command a stored row asks for; ``ValueError`` (or ``ValidationError``) if it is
    not one."""
    if not isinstance(pending.payload, dict):
        raise ValueError("a command's payload must be a JSON object")
    kind = pending.payload.get("kind", pending.kind)
    if kind != pending.kind:
        raise ValueError(f"payload kind {kind!r} does not match command kind {pending.kind!r}")
    return _COMMAND.validate_python({**pending.payload, "kind": pending.kind})


def _refusal(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'payload'}: {error['msg']}"
            for error in exc.errors()
        )
        return f"invalid command: {problems}"[:1000]
    if isinstance(exc, UnknownAlert):
        return f"no firing alert {exc.args[0]}"
    return f"{type(exc).__name__}: {exc}"[:1000]


class Evaluator:
    def __init__(
        self,
        settings: Settings,
        metrics: EvaluatorMetrics,
        load_inputs: InputsLoader,
        region_of: RegionOf,
        clock: Callable[[], datetime] = utc_now,
        lifecycle_config: LifecycleConfig | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._load_inputs = load_inputs
        self._region_of = region_of
        self._clock = clock
        self._config = lifecycle_config or LifecycleConfig(send_replays=settings.send_replays)
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        # set while leading
        self._conn: Connection | None = None
        self._lock_conn: Connection | None = None
        self._leader_pid: int | None = None
        self._producer: AIOKafkaProducer | None = None
        self._lifecycle = AlertLifecycle(self._config)
        self._inputs: ConditionSource | None = None
        self._saved: dict[str, str | None] = {}  # snapshots as last stored, as JSON text
        self._deferred_readings = False  # the last pass put the readings' marks back

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    @property
    def lifecycle(self) -> AlertLifecycle:
        return self._lifecycle

    # -- the service ----------------------------------------------------------------------

    async def run(self) -> None:
        """Wait to lead, then evaluate until ``stop()``; on a lost database session (or lost
        leadership) start over: wait for the lock again, reload the state."""
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                async with self.leading():
                    backoff = 0.5
                    await self._serve()
            except Stopped:
                break
            except (psycopg.OperationalError, psycopg.InterfaceError, LeadershipLost) as exc:
                log.warning("evaluator lost its database session (%s); starting over", exc)
                self._metrics.session_errors.inc()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)

    @contextlib.asynccontextmanager
    async def leading(self) -> AsyncIterator[None]:
        """Connect, wait for the leader lock and load the state; lead inside the block.
        Raises ``Stopped`` if ``stop()`` comes while waiting."""
        url = self._settings.database_url.get_secret_value()
        lock_conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        try:
            conn = await psycopg.AsyncConnection.connect(url)
            try:
                applied = await migrate(conn)
                if applied:
                    log.info("applied schema migrations %s", applied)
                if not await self._take_lock(lock_conn):
                    raise Stopped
                self._conn, self._lock_conn = conn, lock_conn
                self._leader_pid = lock_conn.info.backend_pid
                self._metrics.leader.set(1)
                log.info("leading the alert evaluation")
                await self._load_state()
                yield
            finally:
                self._metrics.leader.set(0)
                self._conn = self._lock_conn = self._leader_pid = None
                await self._close_producer()
                await conn.close()
        finally:
            await lock_conn.close()  # ends the session: the lock goes to the next in line

    async def _take_lock(self, lock_conn: Connection) -> bool:
        if await alert_store.try_lead(lock_conn):
            return True
        log.info("another evaluator leads; waiting for the leader lock")
        waiting = asyncio.ensure_future(alert_store.wait_to_lead(lock_conn))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if waiting.done():
            waiting.result()
            return True
        await lock_conn.cancel_safe()
        with contextlib.suppress(psycopg.Error):
            await waiting
        return False

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        sweep_every = self._settings.evaluator_sweep_seconds
        listener = asyncio.create_task(self._listen())
        next_sweep = loop.time()  # catch up at once on what came while nobody led
        sweep_deferred = False
        retry_publish: float | None = None
        publish_backoff = 0.5
        try:
            while not self._stopping.is_set():
                deadline = next_sweep if retry_publish is None else min(next_sweep, retry_publish)
                if not self._wake.is_set():
                    await self._wait(deadline - loop.time(), listener)
                if self._stopping.is_set():
                    break
                if listener.done():
                    raise LeadershipLost("the leader lock's session ended") from (
                        listener.exception() if not listener.cancelled() else None
                    )
                notified = self._wake.is_set()
                self._wake.clear()
                sweep = loop.time() >= next_sweep
                if notified and sweep and not sweep_deferred:
                    # what was notified goes out first: a sweep re-judges every rule and
                    # takes long; it follows at once, so it is late by one pass at most
                    await self._pass(False)
                    sweep_deferred = True
                elif notified or sweep:
                    await self._pass(sweep)
                    if sweep:
                        next_sweep = loop.time() + sweep_every
                        sweep_deferred = False
                if await self._publish_safely():
                    retry_publish, publish_backoff = None, 0.5
                else:
                    retry_publish = loop.time() + publish_backoff
                    publish_backoff = min(publish_backoff * 2, _MAX_BACKOFF_SECONDS)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
                await listener

    async def _listen(self) -> None:
        """Ring ``_wake`` on every notification; ends (with an error) when the leader
        session does."""
        assert self._lock_conn is not None
        await alert_store.listen(self._lock_conn, [DIRTY_CHANNEL, COMMANDS_CHANNEL])
        self._wake.set()  # anything notified before LISTEN is in the tables: look now
        async for _ in self._lock_conn.notifies():
            self._wake.set()

    async def _wait(self, seconds: float, listener: asyncio.Task[None]) -> None:
        if seconds <= 0:
            return
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait(
                {waiter, listener}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()

    async def _pass(self, sweep: bool) -> None:
        started = time.perf_counter()
        try:
            await self.evaluate(sweep)
        except (psycopg.OperationalError, psycopg.InterfaceError, LeadershipLost):
            raise
        except Exception:
            # bad data or a rule's bug: nothing was stored, so forget what memory did too
            log.exception("evaluation pass failed and was rolled back")
            self._metrics.pass_failures.inc()
            await self._load_state()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 1.0)  # do not spin on poison
            return
        trigger = "sweep" if sweep else "notify"
        elapsed = time.perf_counter() - started
        self._metrics.passes.labels(trigger=trigger).inc()
        self._metrics.last_pass_seconds.set(elapsed)
        self._metrics.pass_seconds.labels(trigger=trigger).observe(elapsed)
        self._metrics.last_pass_timestamp.set_to_current_time()

    async def _publish_safely(self) -> bool:
        try:
            await self.publish_pending()
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise
        except (KafkaError, OSError) as exc:
            log.warning("publishing alert events failed (%s); will retry", exc)
            await self._close_producer()
            return False
        except Exception:
            log.exception("publishing alert events failed; will retry")
            return False
        return True

    # -- one pass -------------------------------------------------------------------------

    async def evaluate(self, sweep: bool = False) -> list[AlertEvent]:
        """One pass in one transaction (see the module docstring); the events recorded new."""
        conn, inputs = self._leader_connection(), self._inputs
        assert inputs is not None
        now = self._clock()
        async with conn.transaction():
            cur = conn.cursor()
            if not await alert_store.lock_state(cur, self._leader_pid):
                raise LeadershipLost("the leader lock is no longer held")
            happened = await self._apply_commands(conn, cur, inputs, now)
            dirty = await claim_dirty(cur, DIRTY_BATCH)
            dirty, deferred = await self._defer_readings(cur, dirty, sweep)
            conditions = await inputs.on_dirty(conn, dirty, now) if dirty else []
            if sweep:
                conditions += await inputs.on_tick(conn, now)
            self._metrics.conditions.inc(len(conditions))
            happened += self._lifecycle.observe(conditions, now)
            events = self._contract_events(happened)
            new_ids = set(await alert_store.insert_events(cur, events, now))
            await alert_store.upsert_alerts(cur, events)
            await self._save(cur, LIFECYCLE_SNAPSHOT, self._lifecycle.snapshot(), now)
            await self._save(cur, INPUTS_SNAPSHOT, inputs.snapshot(), now)
        self._deferred_readings = deferred
        if len(dirty) >= DIRTY_BATCH or deferred:
            self._wake.set()  # more marks are waiting
        recorded = [event for event in events if event.event_id in new_ids]
        for event in recorded:
            self._metrics.events.labels(kind=event.kind.value).inc()
        if recorded or dirty:
            log.info(
                "pass: %d dirty, %d conditions, %d events%s",
                len(dirty),
                len(conditions),
                len(recorded),
                " (readings' marks next)" if deferred else "",
            )
        return recorded

    async def _defer_readings(
        self, cur: alert_store.Cursor, dirty: list[Dirty], sweep: bool
    ) -> tuple[list[Dirty], bool]:
        """Put the readings' marks back for the next pass when VOC or production marks came
        with them: those are few units, their rules are quick, and a single VOC reading above
        its limit is an alert on its own, so it should not wait for the readings rules over
        every unit a stream batch touched. Never on a sweep nor twice in a row, so readings
        are judged one short pass later at most. The marks go back in this transaction: a
        failed pass leaves them as they were."""
        if sweep or self._deferred_readings:
            return dirty, False
        readings = [d for d in dirty if d.source == "readings"]
        if not readings or len(readings) == len(dirty):
            return dirty, False
        await mark_dirty(cur, "readings", {d.enterprise_code: d.since for d in readings})
        return [d for d in dirty if d.source != "readings"], True

    async def _apply_commands(
        self,
        conn: Connection,
        cur: alert_store.Cursor,
        inputs: ConditionSource,
        now: datetime,
    ) -> list[LifecycleEvent]:
        events: list[LifecycleEvent] = []
        outcomes: list[tuple[int, str | None]] = []
        pending_commands = await alert_store.claim_commands(cur, COMMAND_BATCH)
        if len(pending_commands) >= COMMAND_BATCH:
            self._wake.set()
        for pending in pending_commands:
            try:
                command = parse_command(pending)
                async with conn.transaction():  # a savepoint: a refusal undoes its writes
                    events += await self._apply(cur, inputs, command, now)
            except (psycopg.OperationalError, psycopg.InterfaceError):
                raise  # the session, not the command
            except Exception as exc:  # an operator's input: refuse it, never stop on it
                reason = _refusal(exc)
                log.warning("command %d (%s) refused: %s", pending.command_id, pending.kind, reason)
                outcomes.append((pending.command_id, reason))
                self._metrics.commands_failed.labels(kind=pending.kind).inc()
            else:
                outcomes.append((pending.command_id, None))
                self._metrics.commands_applied.labels(kind=pending.kind).inc()
        await alert_store.finish_commands(cur, outcomes, now)
        return events

    async def _apply(
        self, cur: alert_store.Cursor, inputs: ConditionSource, command: Command, now: datetime
    ) -> list[LifecycleEvent]:
        # a refusal after a stored write (the silence row) is undone by the caller's savepoint
        if isinstance(command, Acknowledge):
            return self._lifecycle.acknowledge(
                command.alert_id, command.user, command.comment, command.expires_at, now
            )
        if isinstance(command, AddSilence):
            silence = Silence(
                silence_id=command.silence_id,
                start=command.starts_at,
                end=command.ends_at,
                rule=command.rule,
                subject=command.subject,
                enterprise=command.enterprise,
                kind=SilenceKind(command.silence_kind),
                created_by=command.created_by,
                comment=command.comment,
            )
            await alert_store.save_silence(cur, command)
            return self._lifecycle.add_silence(silence, now)
        if isinstance(command, RemoveSilence):
            await alert_store.remove_silence(cur, command.silence_id, now)
            self._lifecycle.remove_silence(command.silence_id)
            return []
        inputs.declare_emergency(command)
        return []

    def _contract_events(self, happened: Sequence[LifecycleEvent]) -> list[AlertEvent]:
        events = []
        for event in happened:
            try:
                region = self._region_of(event)
            except Exception:
                log.exception("no region for %s/%s", event.rule_id, event.subject)
                region = None
            try:
                try:
                    events.append(to_alert_event(event, region))
                except ValidationError:
                    if region is None:
                        raise
                    log.warning("region %r of %s is not a division code", region, event.subject)
                    events.append(to_alert_event(event, None))
            except ValidationError as exc:
                # recorded nowhere, so say it loudly: the alert lives on in the lifecycle
                log.error(
                    "event %s of %s/%s breaks the alert contract: %s",
                    event.kind,
                    event.rule_id,
                    event.subject,
                    exc,
                )
                self._metrics.events_rejected.inc()
        return events

    # -- state ----------------------------------------------------------------------------

    async def _load_state(self) -> None:
        conn = self._leader_connection()
        async with conn.transaction():
            cur = conn.cursor()
            await alert_store.lock_state(cur, None)  # after any pass under way has ended
            lifecycle = await alert_store.load_snapshot(cur, LIFECYCLE_SNAPSHOT)
            inputs = await alert_store.load_snapshot(cur, INPUTS_SNAPSHOT)
        self._lifecycle = (
            AlertLifecycle.restore(self._config, lifecycle)
            if lifecycle is not None
            else AlertLifecycle(self._config)
        )
        self._inputs = self._load_inputs(inputs)
        self._saved = {LIFECYCLE_SNAPSHOT: _text(lifecycle), INPUTS_SNAPSHOT: _text(inputs)}

    async def _save(
        self, cur: alert_store.Cursor, name: str, snapshot: dict[str, Any], now: datetime
    ) -> None:
        text = _text(snapshot)  # a copy: later changes to the state cannot alias it
        if self._saved.get(name) == text:
            return  # most sweeps change nothing: spare the write
        await alert_store.save_snapshot(cur, name, snapshot, now)
        self._saved[name] = text

    def _leader_connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("not leading: use `async with evaluator.leading()`")
        return self._conn

    # -- the outbox -----------------------------------------------------------------------

    async def publish_pending(self) -> int:
        """Send recorded, undelivered events to the alerts topic, oldest first, and mark
        them published once the topic has acknowledged them; how many were sent."""
        conn = self._leader_connection()
        sent = 0
        while True:
            async with conn.transaction():
                cur = conn.cursor()
                pending = await alert_store.claim_unpublished(cur, PUBLISH_BATCH)
                if not pending:
                    return sent
                producer = await self._started_producer()
                acks = [
                    await producer.send(
                        self._settings.alerts_topic,
                        key=event.partition_key,
                        value=encode_alert(event),
                    )
                    for event in pending
                ]
                await asyncio.gather(*acks)
                now = self._clock()
                await alert_store.mark_published(cur, [e.event_id for e in pending], now)
            for event in pending:
                latency = (now - event.emitted_at).total_seconds()
                self._metrics.publish_seconds.observe(max(latency, 0.0))
            self._metrics.events_published.inc(len(pending))
            sent += len(pending)
            if len(pending) < PUBLISH_BATCH:
                return sent

    async def _started_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._settings.kafka_bootstrap,
                acks="all",
                enable_idempotence=True,  # a retried batch is not written twice, nor reordered
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(KafkaError, OSError):
                await producer.stop()


def _text(snapshot: Mapping[str, Any] | None) -> str | None:
    return None if snapshot is None else json.dumps(snapshot, sort_keys=True)


def create_evaluator(
    settings: Settings,
    metrics: EvaluatorMetrics,
    clock: Callable[[], datetime] = utc_now,
    context: RuleContext | None = None,
) -> Evaluator:
    """The evaluator of a process: the rules judged against the register, plans and
    statistics that ``settings`` name (or ``context``), the lifecycle's default policies
    with ``send_replays`` from ``settings``. Reads its files now; connects in ``run()``."""
    rules = context if context is not None else load_rule_context(settings)

    def load_inputs(snapshot: Mapping[str, Any] | None) -> ConditionSource:
        return RuleInputs(rules) if snapshot is None else RuleInputs.restore(rules, snapshot)

    return Evaluator(
        settings,
        metrics,
        load_inputs,
        lambda event: region_of(event, rules.register),
        clock=clock,
    )
