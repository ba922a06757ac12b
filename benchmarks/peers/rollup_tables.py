"""The peers' rollup tables, and the totals the benchmark compares (SQL, sync psycopg).

Each peer has a database of its own with two hypertables, ``unit_tce_15m`` and
``unit_tce_1d``: one row per unit and window, its tce (numeric, so sums are exact as in
``energy_rollups``) and how many readings it holds (which is also how the benchmark sees a
peer's progress: the sum of ``readings`` over the daily rows is the readings stored).
"""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal

import psycopg
from psycopg import sql

Window = Literal["15m", "1d"]
TABLES: Final[Mapping[Window, str]] = {"15m": "unit_tce_15m", "1d": "unit_tce_1d"}
Totals = dict[tuple[str, datetime], Decimal]

_TABLE = sql.SQL("""
CREATE TABLE IF NOT EXISTS {table} (
    unit         text        NOT NULL,
    period_start timestamptz NOT NULL,
    tce          numeric     NOT NULL,
    readings     bigint      NOT NULL,
    PRIMARY KEY (unit, period_start)
)
""")
_HYPERTABLE = sql.SQL(
    "SELECT create_hypertable({name}, 'period_start', "
    "chunk_time_interval => INTERVAL '30 days', if_not_exists => TRUE)"
)


def create_tables(url: str) -> None:
    """The two rollup hypertables, in the database at ``url`` (idempotent)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        for table in TABLES.values():
            conn.execute(_TABLE.format(table=sql.Identifier(table)))
            conn.execute(_HYPERTABLE.format(name=sql.Literal(table)))


class StoredSoFar:
    """How much a contender has stored, asked many times a second over one open connection
    (opening one per question would cost the machine more than the question)."""

    def __init__(self, url: str, query: sql.SQL, params: tuple[str, ...] = ()) -> None:
        self._conn = psycopg.connect(url, autocommit=True)
        self._query = query
        self._params = params

    @classmethod
    def peer(cls, url: str) -> "StoredSoFar":
        """Readings a peer has stored: the sum of its daily rows' ``readings``."""
        return cls(url, sql.SQL("SELECT coalesce(sum(readings), 0) FROM unit_tce_1d"))

    @classmethod
    def energywatch(cls, url: str, topic: str) -> "StoredSoFar":
        """Records the worker has made durable: its partitions' next offsets, summed."""
        return cls(
            url,
            sql.SQL("SELECT coalesce(sum(next_offset), 0) FROM stream_progress WHERE topic = %s"),
            (topic,),
        )

    def __call__(self) -> int:
        try:
            row = self._conn.execute(self._query, self._params).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0  # the contender has not created its tables yet
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._conn.close()


def peer_totals(url: str, window: Window) -> Totals:
    """(unit, window start) -> tce, from a peer's table."""
    query = sql.SQL("SELECT unit, period_start, tce FROM {}").format(sql.Identifier(TABLES[window]))
    with psycopg.connect(url) as conn:
        return {(u, at): Decimal(t) for u, at, t in conn.execute(query)}


def energywatch_totals(url: str, window: Window) -> Totals:
    """(unit, window start) -> tce, from the worker's ``energy_rollups``: the unit rows of
    energy type ``all`` (every energy but water, excluded flows included: ``tce``, not
    ``tce_counted``)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT subject, period_start, tce FROM energy_rollups "
            "WHERE subject_kind = 'unit' AND energy_type = 'all' AND window_size = %s",
            (window,),
        )
        return {(u, at): Decimal(t) for u, at, t in rows}
