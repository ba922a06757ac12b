"""The naive peer: a plain kafka-python consumer that upserts one row per reading per rollup.

What a user writes first: poll a batch, and for every reading run two ``INSERT ... ON CONFLICT
DO UPDATE`` statements (its unit's 15-minute row and its CST day's row, each moved by the
reading's tce), commit the transaction, then commit the batch's offsets. At-least-once: a crash
between the two commits re-delivers the batch, whose readings are then added a second time.

Run as a child process of the benchmark: ``python -m benchmarks.peers.plain_consumer``, with
the ``EW_*`` environment (``EW_READINGS_TOPIC``; ``EW_WORKER_APP_ID`` as the consumer group;
``EW_DATABASE_URL``, whose tables it creates). It runs until SIGTERM.
"""

import signal
from types import FrameType
from typing import Final

import psycopg
from kafka import KafkaConsumer

from benchmarks.peers.rollup_job import ReadingTce
from benchmarks.peers.rollup_tables import create_tables
from energywatch.settings import Settings
from stream.windows import WindowSize, window_start

_UPSERT_15M: Final = (
    "INSERT INTO unit_tce_15m AS r (unit, period_start, tce, readings) VALUES (%s, %s, %s, 1) "
    "ON CONFLICT (unit, period_start) DO UPDATE SET tce = r.tce + excluded.tce, "
    "readings = r.readings + 1"
)
_UPSERT_1D: Final = (
    "INSERT INTO unit_tce_1d AS r (unit, period_start, tce, readings) VALUES (%s, %s, %s, 1) "
    "ON CONFLICT (unit, period_start) DO UPDATE SET tce = r.tce + excluded.tce, "
    "readings = r.readings + 1"
)


def run(settings: Settings) -> None:
    url = settings.database_url.get_secret_value()
    create_tables(url)
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    to_tce = ReadingTce()
    consumer = KafkaConsumer(
        settings.readings_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.worker_app_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        with psycopg.connect(url) as conn, conn.cursor() as cur:
            while not stopping:
                polled = consumer.poll(timeout_ms=500)
                if not polled:
                    continue
                for records in polled.values():
                    for record in records:
                        part = to_tce(record.value)
                        if part is None:
                            continue
                        quarter = window_start(part.period_start, WindowSize.QUARTER_HOUR)
                        day = window_start(part.period_start, WindowSize.DAY)
                        cur.execute(_UPSERT_15M, (part.unit, quarter, part.tce))
                        cur.execute(_UPSERT_1D, (part.unit, day, part.tce))
                conn.commit()
                consumer.commit()
    finally:
        consumer.close()


def main() -> None:
    run(Settings.load())


if __name__ == "__main__":
    main()
