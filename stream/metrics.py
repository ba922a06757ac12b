"""Every Prometheus series the worker exposes (readings, VOC samples, production reports,
consumer lag), created against an injected registry.

Labels come from small fixed sets: a dead letter's ``kind``, a report's ``kind``, and for the
consumer lag the worker's consumer group, a topic and a partition number.
"""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: time to make one batch durable
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

#: fine enough to read percentiles from, up to a minute behind
LATENCY_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    7.5,
    10.0,
    20.0,
    30.0,
    60.0,
)


@dataclass(frozen=True)
class WorkerMetrics:
    records_consumed: Counter
    readings_stored: Counter
    readings_duplicate: Counter
    readings_corrected: Counter
    readings_too_late: Counter
    records_skipped: Counter
    rollup_rows: Counter
    dead_letters: Counter
    units_marked_dirty: Counter
    db_write_errors: Counter
    batch_seconds: Histogram
    stage_seconds: Counter
    batch_size: Histogram
    event_to_row_seconds: Histogram
    consumer_lag: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "WorkerMetrics":
        return cls(
            records_consumed=Counter(
                "energywatch_stream_records_consumed_total",
                "Records read from the readings topic",
                registry=registry,
            ),
            readings_stored=Counter(
                "energywatch_stream_readings_stored_total",
                "Readings newly written to TimescaleDB",
                registry=registry,
            ),
            readings_duplicate=Counter(
                "energywatch_stream_readings_duplicate_total",
                "Readings already stored (redelivered or replayed), written as no-ops",
                registry=registry,
            ),
            readings_corrected=Counter(
                "energywatch_stream_readings_corrected_total",
                "Stored readings replaced by a corrected version (rollups adjusted)",
                registry=registry,
            ),
            readings_too_late=Counter(
                "energywatch_stream_readings_too_late_total",
                "Readings beyond the allowed lateness: stored, not aggregated",
                registry=registry,
            ),
            records_skipped=Counter(
                "energywatch_stream_records_skipped_total",
                "Redelivered records an earlier transaction had already made durable",
                registry=registry,
            ),
            rollup_rows=Counter(
                "energywatch_stream_rollup_rows_upserted_total",
                "Rollup rows inserted or updated",
                registry=registry,
            ),
            dead_letters=Counter(
                "energywatch_stream_dead_letters_total",
                "Records sent to the dead-letter topic, by kind of problem",
                ["kind"],
                registry=registry,
            ),
            units_marked_dirty=Counter(
                "energywatch_stream_units_marked_dirty_total",
                "Units whose rollups a batch changed, marked for the alert evaluator",
                registry=registry,
            ),
            db_write_errors=Counter(
                "energywatch_stream_db_write_errors_total",
                "Failed batch writes (each is retried)",
                registry=registry,
            ),
            batch_seconds=Histogram(
                "energywatch_stream_batch_seconds",
                "Time to make one batch durable: decode, dead-letter, write, publish",
                buckets=BATCH_BUCKETS,
                registry=registry,
            ),
            stage_seconds=Counter(
                "energywatch_stream_batch_stage_seconds_total",
                "Time readings batches spent in each stage of their transaction (account, "
                "ledger_insert, rollups_upsert, save_counter_states, commit...): where it goes",
                ["stage"],
                registry=registry,
            ),
            event_to_row_seconds=Histogram(
                "energywatch_stream_event_to_row_seconds",
                "From a record's Kafka timestamp (when it was produced) to its batch's commit",
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            batch_size=Histogram(
                "energywatch_stream_batch_records",
                "Records per batch",
                buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 20000, 30000),
                registry=registry,
            ),
            consumer_lag=Gauge(
                "energywatch_stream_consumer_lag_records",
                "Records in a partition the worker has not yet made durable: the partition's "
                "end offset minus the next offset to process, per assigned partition",
                ["consumer", "topic", "partition"],
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class VocMetrics:
    records_consumed: Counter
    samples_stored: Counter
    samples_corrected: Counter
    samples_duplicate: Counter
    dead_letters: Counter
    hourly_upserted: Counter
    daily_upserted: Counter
    db_write_errors: Counter
    batch_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "VocMetrics":
        return cls(
            records_consumed=Counter(
                "energywatch_voc_samples_consumed_total",
                "Records read from the VOC topic",
                registry=registry,
            ),
            samples_stored=Counter(
                "energywatch_voc_samples_stored_total",
                "VOC samples newly written to TimescaleDB",
                registry=registry,
            ),
            samples_corrected=Counter(
                "energywatch_voc_samples_corrected_total",
                "Stored VOC samples replaced by a version with other values",
                registry=registry,
            ),
            samples_duplicate=Counter(
                "energywatch_voc_samples_duplicate_total",
                "VOC samples already stored as they are (redelivered or replayed): no-ops",
                registry=registry,
            ),
            dead_letters=Counter(
                "energywatch_voc_dead_letters_total",
                "VOC records sent to the dead-letter topic, by kind of problem",
                ["kind"],
                registry=registry,
            ),
            hourly_upserted=Counter(
                "energywatch_voc_hourly_averages_upserted_total",
                "Hourly average rows (monitor, pollutant, hour) inserted or changed",
                registry=registry,
            ),
            daily_upserted=Counter(
                "energywatch_voc_daily_averages_upserted_total",
                "Daily average rows (monitor, pollutant, day) inserted or changed",
                registry=registry,
            ),
            db_write_errors=Counter(
                "energywatch_voc_db_write_errors_total",
                "Failed VOC batch writes (each is retried)",
                registry=registry,
            ),
            batch_seconds=Histogram(
                "energywatch_voc_batch_seconds",
                "Time to make one VOC batch durable: decode, dead-letter, write",
                buckets=BATCH_BUCKETS,
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class ProductionMetrics:
    reports_consumed: Counter
    reports_stored: Counter
    reports_revised: Counter
    reports_unchanged: Counter
    dead_letters: Counter
    db_write_errors: Counter
    batch_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "ProductionMetrics":
        return cls(
            reports_consumed=Counter(
                "energywatch_production_reports_consumed_total",
                "Records read from the production topic",
                registry=registry,
            ),
            reports_stored=Counter(
                "energywatch_production_reports_stored_total",
                "Reports written: new natural keys or new values for stored ones, by kind",
                ["kind"],
                registry=registry,
            ),
            reports_revised=Counter(
                "energywatch_production_reports_revised_total",
                "Stored reports replaced by a different value (revision bumped), by kind",
                ["kind"],
                registry=registry,
            ),
            reports_unchanged=Counter(
                "energywatch_production_reports_unchanged_total",
                "Reports that changed nothing: same value again or a redelivered record, by kind",
                ["kind"],
                registry=registry,
            ),
            dead_letters=Counter(
                "energywatch_production_dead_letters_total",
                "Production records sent to the dead-letter topic, by kind of problem",
                ["kind"],
                registry=registry,
            ),
            db_write_errors=Counter(
                "energywatch_production_db_write_errors_total",
                "Failed report batch writes (each is retried)",
                registry=registry,
            ),
            batch_seconds=Histogram(
                "energywatch_production_batch_seconds",
                "Time to make one batch of reports durable: decode, dead-letter, write",
                buckets=BATCH_BUCKETS,
                registry=registry,
            ),
        )
