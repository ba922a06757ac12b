"""The stream worker: a Faust app built by ``create_app(settings)``.

Readings, the heavy stream, are taken from Kafka in whole fetches by
``stream.readings_consumer.BatchConsumer`` (hosted by the Faust app, outside Faust's per-event
stream) and made durable by ``stream.ledger_writer.LedgerWriter`` (which wraps the pure core,
``stream.accounting``):

    take what Kafka has fetched, up to N records
      -> one DB transaction: skip what is already done, account the rest (counters, standard
         coal, watermarks), store ledger rows, add rollups, mark the touched units for the
         alert evaluator (NOTIFY on commit), send dead letters (awaited), save progress
      -> commit the offsets to Kafka

A crash anywhere before the transaction's commit re-delivers the batch, which then runs as if
for the first time; after it, the redelivered records are skipped by offset. VOC samples and
production reports, far fewer, are Faust agents (``stream.voc_agent``,
``stream.production_agent``) that follow the same pattern with Faust's acknowledgements.

Consumer groups: the readings' is ``worker_app_id`` (which also keys their progress in the
database); the Faust agents' is ``faust_group`` (``<worker_app_id>-voc-production`` for a
worker with every stream), so a split deployment and a single worker share partitions the
same way.
"""

import logging
import time
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import faust
from aiokafka import ConsumerRecord
from faust.app.base import BootStrategy
from prometheus_client import CollectorRegistry

from contracts.dead_letters import DeadLetter
from energywatch.settings import Settings
from plans.coal_factors import CoalFactors
from plans.register import Register, load_register
from storage.policies import PolicyConfig
from stream.accounting import Accountant, AccountingConfig
from stream.agents import send_dead_letters
from stream.lag_monitor import ConsumerLagMonitor
from stream.ledger_writer import LedgerWriter
from stream.metrics import WorkerMetrics
from stream.production_agent import add_production_agent
from stream.readings_consumer import BatchConsumer, Handle, produced_at, raw_record
from stream.sink import TimescaleSink
from stream.standard_coal import StandardCoal
from stream.voc_agent import add_voc_agent

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


#: the worker's streams, each an agent: meter readings, VOC samples, production reports
STREAMS: Final = ("readings", "voc", "production")


def app_id(settings: Settings, streams: Collection[str] = STREAMS) -> str:
    """The worker's name (its metrics target): ``worker_app_id`` for a worker with every
    stream, ``<worker_app_id>-voc-production`` for one with some of them."""
    _check(streams)
    if set(streams) == set(STREAMS):
        return settings.worker_app_id
    return "-".join([settings.worker_app_id, *(s for s in STREAMS if s in streams)])


def faust_group(settings: Settings, streams: Collection[str] = STREAMS) -> str:
    """The Faust app's id, which is its consumer group: named after the streams its agents
    run (VOC samples, production reports), so a worker with every stream and a split
    ``--stream voc --stream production`` worker share one group. Readings are not a Faust
    agent: their group is ``worker_app_id`` (``stream.readings_consumer``)."""
    _check(streams)
    agents = [s for s in STREAMS if s in streams and s != "readings"]
    return "-".join([settings.worker_app_id, *(agents or ["readings"])])


def worker_groups(settings: Settings) -> dict[str, list[str]]:
    """Each consumer group of the workers and the topics it consumes, for probes that read
    the workers' progress from outside (``proving_ground.kafka_offsets.OffsetProbe``)."""
    return {
        settings.worker_app_id: [settings.readings_topic],
        faust_group(settings): [settings.voc_topic, settings.production_topic],
    }


def _check(streams: Collection[str]) -> None:
    unknown = set(streams) - set(STREAMS)
    if unknown or not streams:
        raise ValueError(f"streams must be some of {', '.join(STREAMS)}; got {sorted(streams)}")


def faust_app(settings: Settings, name: str) -> faust.App:
    """The worker's Faust configuration, without agents: raw bytes in and out, no leader
    topic, offsets from the earliest, acknowledged sends, the configured commit interval and
    session timeout. (The benchmarks' bare-Faust ceiling uses it too, so the two compare.)"""
    settings.worker_data_dir.mkdir(parents=True, exist_ok=True)  # Faust makes only the leaf
    return faust.App(
        name,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        datadir=str(settings.worker_data_dir / name),
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_interval=settings.worker_commit_interval_seconds,
        broker_session_timeout=settings.worker_session_timeout_seconds,
        broker_heartbeat_interval=settings.worker_session_timeout_seconds / 4,
        stream_wait_empty=True,
    )


def create_app(
    settings: Settings,
    *,
    registry: CollectorRegistry | None = None,
    clock: Clock = utc_now,
    streams: Collection[str] = STREAMS,
) -> faust.App:
    """Build the worker's Faust app with the agents of ``streams``; nothing connects until the
    worker starts."""
    registry = registry or CollectorRegistry()
    metrics = WorkerMetrics.create(registry)
    app = faust_app(settings, faust_group(settings, streams))
    if "readings" in streams:
        _add_readings_consumer(app, settings, metrics, clock)
    if "voc" in streams:
        add_voc_agent(app, settings, registry)
    if "production" in streams:
        add_production_agent(app, settings, registry)
    if set(streams) == {"readings"}:
        # no agents: Faust's own consumer would have nothing to subscribe to
        app.boot_strategy = BootStrategy(app, enable_kafka_consumer=False)
    else:
        ConsumerLagMonitor(app, metrics.consumer_lag, settings.kafka_bootstrap).install()
    app.energywatch_metrics = metrics  # type: ignore[attr-defined]
    return app


def _add_readings_consumer(
    app: faust.App, settings: Settings, metrics: WorkerMetrics, clock: Clock
) -> None:
    accountant = Accountant(
        worker_register(settings),
        StandardCoal(CoalFactors.load()),
        AccountingConfig(
            allowed_lateness=timedelta(seconds=settings.allowed_lateness_seconds),
            grace=timedelta(seconds=settings.watermark_grace_seconds),
        ),
    )
    dead_letter_topic = app.topic(settings.dead_letter_topic)
    policies = PolicyConfig(
        compress_after=timedelta(days=settings.compress_after_days),
        raw_retention=None
        if settings.raw_retention_days is None
        else timedelta(days=settings.raw_retention_days),
        allowed_lateness=timedelta(seconds=settings.allowed_lateness_seconds),
    )

    async def dead_letters(letters: Sequence[DeadLetter]) -> None:
        await send_dead_letters(dead_letter_topic, letters, metrics.dead_letters)

    sinks: list[TimescaleSink] = []

    def lane() -> Handle:
        """A lane's writer (its own counter-state cache) and connection."""
        writer = LedgerWriter(accountant, consumer=settings.worker_app_id)
        sink = TimescaleSink(
            settings.database_url,
            on_error=lambda exc: metrics.db_write_errors.inc(),
            policies=policies if not sinks else None,  # applied once, by the first lane
        )
        sinks.append(sink)

        async def handle(batch: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
            started = time.perf_counter()
            records = [raw_record(r) for r in batch]
            metrics.records_consumed.inc(len(records))
            metrics.batch_size.observe(len(records))
            now = clock()
            result = await sink.run(
                "batch write", lambda conn: writer.write(conn, records, now, dead_letters)
            )
            metrics.records_skipped.inc(result.skipped)
            metrics.readings_stored.inc(result.inserted)
            metrics.readings_duplicate.inc(result.duplicates)
            metrics.readings_corrected.inc(result.corrections)
            metrics.readings_too_late.inc(result.too_late)
            metrics.rollup_rows.inc(result.rollup_rows)
            for stage, seconds in result.stages.items():
                metrics.stage_seconds.labels(stage).inc(seconds)
            metrics.units_marked_dirty.inc(result.dirty_units)
            committed_at = time.time()
            for record in batch:
                sent = produced_at(record)
                if sent is not None:
                    metrics.event_to_row_seconds.observe(max(0.0, committed_at - sent))
            metrics.batch_seconds.observe(time.perf_counter() - started)

        return handle

    consumer = BatchConsumer(
        settings,
        settings.readings_topic,
        settings.worker_app_id,
        [lane() for _ in range(settings.worker_lanes)],
        metrics.consumer_lag,
    )

    async def consume_readings() -> None:
        await consumer.run()

    async def stop_consuming(app: faust.App, **kwargs: Any) -> None:
        await consumer.stop_and_wait(within_seconds=settings.worker_session_timeout_seconds)
        for sink in sinks:
            await sink.close()

    app.task(consume_readings)
    app.on_before_shutdown.connect(stop_consuming)  # type: ignore[arg-type]


def worker_register(settings: Settings) -> Register:
    """The register the rollups' dimensions come from (an empty one when none is set)."""
    if settings.register_path is None:
        log.warning(
            "no register (EW_REGISTER_PATH): every unit is counted as 'unregistered' in the "
            "county, city and industry rollups"
        )
        return Register(name="none", enterprises=())
    return load_register(settings.register_path)
