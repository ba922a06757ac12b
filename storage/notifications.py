"""What the notifier has sent (``alert_notifications``) and its own state (``notifier_state``).

A notification is recorded once it has reached a recipient's channel, keyed by
(recipient, channel, idempotency key), so a redelivered event or a re-sent digest is
recognised and not sent again. The state is one JSON snapshot per notifier (its rate limits,
held events, progress), written whole. Every statement here stands alone: the notifier's
connection runs in autocommit, and each write is one statement.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

#: (recipient id, channel name, idempotency key)
NotificationKey = tuple[str, str, str]


@dataclass(frozen=True)
class SentNotification:
    recipient_id: str
    channel: str
    idempotency_key: str
    event_ids: Sequence[str]
    attempts: int
    delivered_at: datetime

    @property
    def key(self) -> NotificationKey:
        return (self.recipient_id, self.channel, self.idempotency_key)


async def sent_already(
    conn: psycopg.AsyncConnection[TupleRow], keys: Iterable[NotificationKey]
) -> set[NotificationKey]:
    """Those of ``keys`` that have been recorded as sent."""
    wanted = sorted(set(keys))
    if not wanted:
        return set()
    recipients, channels, idempotency_keys = (list(column) for column in zip(*wanted, strict=True))
    cur = await conn.execute(
        "SELECT n.recipient_id, n.channel, n.idempotency_key FROM alert_notifications n "
        "JOIN unnest(%s::text[], %s::text[], %s::text[]) AS k(recipient_id, channel, key) "
        "ON n.recipient_id = k.recipient_id AND n.channel = k.channel "
        "AND n.idempotency_key = k.key",
        (recipients, channels, idempotency_keys),
    )
    return {(str(r), str(c), str(k)) for r, c, k in await cur.fetchall()}


async def record_sent(conn: psycopg.AsyncConnection[TupleRow], sent: SentNotification) -> bool:
    """Remember a notification that reached its channel; False when it was recorded before."""
    cur = await conn.execute(
        "INSERT INTO alert_notifications "
        "(recipient_id, channel, idempotency_key, event_ids, delivered_at, attempts) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
        (
            sent.recipient_id,
            sent.channel,
            sent.idempotency_key,
            list(sent.event_ids),
            sent.delivered_at,
            sent.attempts,
        ),
    )
    return await cur.fetchone() is not None


async def load_state(conn: psycopg.AsyncConnection[TupleRow], name: str) -> Any | None:
    """A notifier's last saved snapshot (parsed JSON), or None."""
    cur = await conn.execute("SELECT snapshot FROM notifier_state WHERE name = %s", (name,))
    row = await cur.fetchone()
    return None if row is None else row[0]


async def save_state(
    conn: psycopg.AsyncConnection[TupleRow], name: str, snapshot: Any, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO notifier_state (name, snapshot, updated_at) VALUES (%s, %s, %s) "
        "ON CONFLICT (name) DO UPDATE SET snapshot = excluded.snapshot, "
        "updated_at = excluded.updated_at",
        (name, Jsonb(snapshot), at),
    )


async def try_lock_notifier(conn: psycopg.AsyncConnection[TupleRow], name: str) -> bool:
    """Take the session lock that makes one notifier (per name) the only writer of its state;
    False while another session holds it. Released when the connection closes."""
    cur = await conn.execute(
        "SELECT pg_try_advisory_lock(hashtextextended('energywatch-notifier:' || %s, 0))",
        (name,),
    )
    row = await cur.fetchone()
    return bool(row and row[0])
