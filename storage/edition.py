"""Which TimescaleDB edition the database runs, and so which features the code may use.

The Apache edition (built locally) has hypertables and ``time_bucket``; the full edition
("timescale" license, the docker-compose image) adds continuous aggregates, compression and
background policies. Code checks ``has_tsl_features`` and falls back when they are missing.
"""

from dataclasses import dataclass

import psycopg
from psycopg.rows import TupleRow


@dataclass(frozen=True)
class TimescaleEdition:
    license: str
    version: str

    @property
    def has_tsl_features(self) -> bool:
        """Continuous aggregates, compression and policies: only under the Timescale license."""
        return self.license == "timescale"


async def detect_edition(conn: psycopg.AsyncConnection[TupleRow]) -> TimescaleEdition:
    cur = await conn.execute(
        "SELECT current_setting('timescaledb.license'), "
        "(SELECT extversion FROM pg_extension WHERE extname = 'timescaledb')"
    )
    row = await cur.fetchone()
    await conn.rollback()
    if row is None or row[1] is None:
        raise RuntimeError("the timescaledb extension is not installed in this database")
    return TimescaleEdition(license=str(row[0]), version=str(row[1]))
