"""The stream's doorbell for the alert evaluator: which units changed, from when.

Stream batches call ``mark_dirty`` inside their transaction; PostgreSQL delivers the NOTIFY
only if that transaction commits, and the row stays until the evaluator claims it, so a
missed notification (evaluator down) is caught by its next pass.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

import psycopg
from psycopg.rows import TupleRow

CHANNEL: Final = "energywatch_dirty"
Source = Literal["readings", "voc", "production"]


@dataclass(frozen=True)
class Dirty:
    enterprise_code: str
    source: str
    since: datetime


def earliest_by_unit(changes: Iterable[tuple[str, datetime]]) -> dict[str, datetime]:
    """Each unit's earliest changed time among (enterprise code, event time) pairs."""
    earliest: dict[str, datetime] = {}
    for code, at in changes:
        seen = earliest.get(code)
        if seen is None or at < seen:
            earliest[code] = at
    return earliest


async def mark_dirty(
    cur: psycopg.AsyncCursor[TupleRow], source: Source, earliest: Mapping[str, datetime]
) -> None:
    """Record that these units' ``source`` data changed from ``earliest[code]`` on."""
    if not earliest:
        return
    codes = list(earliest)
    await cur.execute(
        "INSERT INTO alert_dirty (enterprise_code, source, since) "
        "SELECT code, %s, since FROM unnest(%s::text[], %s::timestamptz[]) AS d(code, since) "
        "ON CONFLICT (enterprise_code, source) DO UPDATE "
        "SET since = LEAST(alert_dirty.since, EXCLUDED.since), marked_at = now()",
        (source, codes, [earliest[c] for c in codes]),
    )
    await cur.execute(f"NOTIFY {CHANNEL}")


async def claim_dirty(cur: psycopg.AsyncCursor[TupleRow], limit: int = 10_000) -> list[Dirty]:
    """Take (delete) pending marks, oldest first; they come back if the transaction fails."""
    await cur.execute(
        "DELETE FROM alert_dirty WHERE (enterprise_code, source) IN ("
        " SELECT enterprise_code, source FROM alert_dirty ORDER BY marked_at LIMIT %s"
        " FOR UPDATE SKIP LOCKED) RETURNING enterprise_code, source, since",
        (limit,),
    )
    return [Dirty(str(code), str(source), since) for code, source, since in await cur.fetchall()]
