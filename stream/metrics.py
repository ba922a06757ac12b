"""Every Prometheus series the readings worker exposes, created against an injected registry."""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

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
    batch_size: Histogram
    event_to_row_seconds: Histogram

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
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
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
                buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
                registry=registry,
            ),
        )
