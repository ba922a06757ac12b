"""The Quix Streams peer: the same rollups written as Quix Streams is meant to be used.

    readings topic (key: meter)
      -> apply: decode and validate the reading, its tce (``rollup_job``), filter the rest
      -> set_timestamp: the interval's start on the CST clock (UTC + 8 h), so that tumbling
         windows, which Quix aligns to the epoch, cut days at China midnight
      -> group_by unit: a repartition topic keyed by unit, so one unit's meters meet
      -> two branches: tumbling windows of 15 minutes and of a day, each
         ``.agg(tce=Sum("tce"), readings=Count())`` with seven days' grace (the worker's
         allowed lateness), ``.current()``
      -> a BatchingSink per window size: on each checkpoint, the latest value of every window
         it saw, COPYed to a staging table and upserted into the unit's rollup row

``.current()`` rather than ``.final()``: the worker's rollups hold the windows still open
(today's total is what a dashboard shows), and a final-only stream would never store a window
the stream has not yet passed. The sink writes each window's current total (``SET``, not
``+=``), and Quix keeps the window state in RocksDB with changelog topics, committed with the
offsets at each checkpoint after the sinks have flushed: at-least-once delivery whose replays
rewrite the same totals, so the stored rollups are idempotent.

Run as a child process of the benchmark: ``python -m benchmarks.peers.quix_rollups``, with
the ``EW_*`` environment (``EW_READINGS_TOPIC``; ``EW_WORKER_APP_ID`` as the consumer group;
``EW_DATABASE_URL``, whose tables it creates; ``EW_WORKER_DATA_DIR`` for Quix's state). The
commit interval is the worker's (``EW_WORKER_COMMIT_INTERVAL_SECONDS``). Runs until SIGTERM.
"""

from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg import sql
from quixstreams import Application
from quixstreams.dataframe.windows import Count, Sum
from quixstreams.sinks import BatchingSink, SinkBatch

from benchmarks.peers.rollup_job import CST_OFFSET_MS, ReadingTce, epoch_ms
from benchmarks.peers.rollup_tables import TABLES, Window, create_tables
from energywatch.settings import Settings
from stream.accounting import TCE_DECIMALS

#: the worker's allowed lateness (``AccountingConfig``): a window takes readings this late
GRACE: Final = timedelta(days=7)
WINDOWS: Final[dict[Window, timedelta]] = {"15m": timedelta(minutes=15), "1d": timedelta(days=1)}

_STAGING: Final = (
    "CREATE TEMP TABLE IF NOT EXISTS rollup_staging "
    "(unit text, period_start timestamptz, tce numeric, readings bigint) ON COMMIT DELETE ROWS"
)
_UPSERT: Final = sql.SQL(
    "INSERT INTO {table} AS r (unit, period_start, tce, readings) "
    "SELECT unit, period_start, tce, readings FROM rollup_staging ORDER BY unit, period_start "
    "ON CONFLICT (unit, period_start) DO UPDATE "
    "SET tce = excluded.tce, readings = excluded.readings"
)


class RollupSink(BatchingSink):
    """Upserts the latest value of each (unit, window) in a checkpoint's batch."""

    def __init__(self, url: str, window: Window) -> None:
        super().__init__()
        self._url = url
        self._upsert = _UPSERT.format(table=sql.Identifier(TABLES[window]))
        self._conn: psycopg.Connection[Any] | None = None

    def setup(self) -> None:
        self._conn = psycopg.connect(self._url)
        self._conn.execute(_STAGING)
        self._conn.commit()

    def write(self, batch: SinkBatch) -> None:
        assert self._conn is not None, "setup() connects"
        latest: dict[tuple[str, int], tuple[float, int]] = {}
        for item in batch:  # in offset order: a later update of a window replaces the earlier
            window = item.value
            latest[(item.key, window["start"])] = (window["tce"], window["readings"])
        with self._conn.transaction(), self._conn.cursor() as cur:
            with cur.copy("COPY rollup_staging FROM STDIN") as copy:
                for (unit, start), (tce, readings) in latest.items():
                    at = datetime.fromtimestamp((start - CST_OFFSET_MS) / 1000, UTC)
                    # the float sum of values rounded to 1e-9 t, back to their precision
                    copy.write_row((unit, at, round(tce, TCE_DECIMALS), readings))
            cur.execute(self._upsert)


def create_app(settings: Settings) -> Application:
    url = settings.database_url.get_secret_value()
    create_tables(url)
    app = Application(
        broker_address=settings.kafka_bootstrap,
        consumer_group=settings.worker_app_id,
        auto_offset_reset="earliest",
        commit_interval=settings.worker_commit_interval_seconds,
        state_dir=settings.worker_data_dir / settings.worker_app_id / "quix-state",
        processing_guarantee="at-least-once",
        loglevel="WARNING",
    )
    to_tce = ReadingTce()

    def part(raw: bytes) -> dict[str, Any] | None:
        found = to_tce(raw)
        if found is None:
            return None
        return {"unit": found.unit, "tce": found.tce, "at": epoch_ms(found.period_start)}

    topic = app.topic(settings.readings_topic, value_deserializer="bytes", key_deserializer="str")
    sdf = app.dataframe(topic)
    sdf = sdf.apply(part).filter(lambda value: value is not None)
    sdf = sdf.set_timestamp(lambda value, key, timestamp, headers: value["at"] + CST_OFFSET_MS)
    sdf = sdf.group_by("unit", name="unit")
    for window, duration in WINDOWS.items():
        (
            sdf.tumbling_window(duration, grace_ms=GRACE, name=f"tce-{window}")
            .agg(tce=Sum("tce"), readings=Count())
            .current()
            .sink(RollupSink(url, window))
        )
    return app


def main() -> None:
    create_app(Settings.load()).run()


if __name__ == "__main__":
    main()
