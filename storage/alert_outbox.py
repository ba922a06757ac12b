"""The alert outbox: alerts are stored with the readings that raised them, published after.

``insert_alerts`` runs inside the stream's batch transaction; ``claim_unpublished`` and
``mark_published`` let any worker publish what is pending, so a crash between storing and
publishing re-publishes on restart instead of losing the alert. Alert ids are deterministic,
so replaying the same readings inserts nothing new and publishes nothing twice.
"""

from collections.abc import Sequence
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from contracts.alert_events import AlertEvent


async def insert_alerts(
    cur: psycopg.AsyncCursor[TupleRow], alerts: Sequence[AlertEvent]
) -> list[str]:
    """Store alerts not seen before; return the ids that were new."""
    if not alerts:
        return []
    # one round trip for the batch (psycopg pipelines executemany), a result set per alert
    await cur.executemany(
        "INSERT INTO alert_events (alert_id, rule_id, status, severity, enterprise_code, "
        "subject, period_start, window_seconds, observed_value, threshold_value, value_unit, "
        "message, raised_at, payload) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (alert_id) DO NOTHING RETURNING alert_id",
        [
            (
                alert.alert_id,
                alert.rule_id,
                alert.status.value,
                alert.severity.value,
                alert.enterprise_code,
                alert.subject,
                alert.period_start,
                alert.window_seconds,
                alert.observed_value,
                alert.threshold_value,
                alert.value_unit,
                alert.message,
                alert.raised_at,
                Jsonb(alert.model_dump(mode="json")),
            )
            for alert in alerts
        ],
        returning=True,
    )
    new_ids: list[str] = []
    while True:
        row = await cur.fetchone()
        if row is not None:
            new_ids.append(str(row[0]))
        if not cur.nextset():
            break
    return new_ids


async def claim_unpublished(
    cur: psycopg.AsyncCursor[TupleRow], limit: int = 500
) -> list[AlertEvent]:
    """Lock and return pending alerts; other workers skip the locked ones."""
    await cur.execute(
        "SELECT payload FROM alert_events WHERE published_at IS NULL "
        "ORDER BY raised_at, alert_id LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    )
    return [AlertEvent.model_validate(row[0]) for row in await cur.fetchall()]


async def mark_published(
    cur: psycopg.AsyncCursor[TupleRow], alert_ids: Sequence[str], published_at: datetime
) -> None:
    await cur.execute(
        "UPDATE alert_events SET published_at = %s WHERE alert_id = ANY(%s)",
        (published_at, list(alert_ids)),
    )


async def record_delivery(
    conn: psycopg.AsyncConnection[TupleRow], alert_id: str, channel: str, attempts: int
) -> bool:
    """Remember that an alert reached a channel; False when it had already been delivered."""
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO alert_deliveries (alert_id, channel, attempts) VALUES (%s, %s, %s) "
            "ON CONFLICT (alert_id, channel) DO NOTHING RETURNING alert_id",
            (alert_id, channel, attempts),
        )
        return await cur.fetchone() is not None


async def was_delivered(
    conn: psycopg.AsyncConnection[TupleRow], alert_id: str, channel: str
) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM alert_deliveries WHERE alert_id = %s AND channel = %s", (alert_id, channel)
    )
    found = await cur.fetchone() is not None
    await conn.rollback()
    return found


async def alerts_for_subjects(
    conn: psycopg.AsyncConnection[TupleRow], subjects: Sequence[str]
) -> list[tuple[AlertEvent, bool]]:
    """Stored alerts about these subjects, oldest first, each with whether it was published."""
    cur = await conn.execute(
        "SELECT payload, published_at IS NOT NULL FROM alert_events "
        "WHERE subject = ANY(%s) ORDER BY period_start, subject",
        (list(subjects),),
    )
    rows = await cur.fetchall()
    await conn.rollback()
    return [(AlertEvent.model_validate(payload), bool(published)) for payload, published in rows]
