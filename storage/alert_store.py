"""The alert evaluator's tables: history (an outbox), latest state per alert, snapshots,
operators' commands and silences (``0007_alert_history.sql``).

Every writer here runs on the caller's cursor inside the caller's transaction: the evaluator
writes a pass's events, the ``alerts`` rows, its snapshots and the commands it applied in one
transaction, then publishes what ``claim_unpublished`` returns and ``mark_published`` stamps
it. Events carry digest ids, so writing the same event twice changes nothing.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from contracts.alert_commands import Acknowledge, AddSilence, DeclareEmergency, RemoveSilence
from contracts.alert_events import AlertEvent, AlertKind

#: NOTIFY'd when a command is queued, so the evaluator applies it at once.
COMMANDS_CHANNEL: Final = "energywatch_alert_commands"

Cursor = psycopg.AsyncCursor[TupleRow]


# -- history ------------------------------------------------------------------------------


async def insert_events(cur: Cursor, events: Sequence[AlertEvent], now: datetime) -> list[str]:
    """Record events not seen before; return the ids that were new. Events not to be
    delivered are history only: stored as published already (``now``)."""
    if not events:
        return []
    # one round trip for the batch (psycopg pipelines executemany), a result set per event
    await cur.executemany(
        "INSERT INTO alert_history (event_id, alert_id, kind, rule_id, subject, "
        "enterprise_code, region_code, severity, at, emitted_at, replay, deliver, payload, "
        "published_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
        [
            (
                event.event_id,
                event.alert_id,
                event.kind.value,
                event.rule_id,
                event.subject,
                event.enterprise_code,
                event.region_code,
                event.severity.value,
                event.at,
                event.emitted_at,
                event.replay,
                event.deliver,
                Jsonb(event.model_dump(mode="json")),
                None if event.deliver else now,
            )
            for event in events
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


async def claim_unpublished(cur: Cursor, limit: int = 500) -> list[AlertEvent]:
    """Lock and return events still to be sent, oldest first; others skip the locked ones."""
    # Events of one pass share ``emitted_at``; within it, an alert's events come in lifecycle
    # order (commands are applied before conditions; a fired event precedes the resolve).
    await cur.execute(
        "SELECT payload FROM alert_history WHERE published_at IS NULL AND deliver "
        "ORDER BY emitted_at, at, CASE kind WHEN 'fired' THEN 0 WHEN 'escalated' THEN 1 "
        "WHEN 'repeated' THEN 2 WHEN 'acknowledged' THEN 3 WHEN 'silenced' THEN 3 "
        "WHEN 'resolved' THEN 4 ELSE 5 END, event_id "
        "LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    )
    return [AlertEvent.model_validate(row[0]) for row in await cur.fetchall()]


async def mark_published(cur: Cursor, event_ids: Sequence[str], published_at: datetime) -> None:
    await cur.execute(
        "UPDATE alert_history SET published_at = %s WHERE event_id = ANY(%s)",
        (published_at, list(event_ids)),
    )


# -- latest state per alert ---------------------------------------------------------------


async def upsert_alerts(cur: Cursor, events: Sequence[AlertEvent]) -> None:
    """Bring each event's ``alerts`` row up to date, in the order given. An acknowledgement
    sets the ack fields, an escalation clears them (the lifecycle drops the ack), other
    events keep them; an event older than the row's latest changes nothing."""
    if not events:
        return
    await cur.executemany(
        "INSERT INTO alerts (alert_id, rule_id, subject, enterprise_code, region_code, status, "
        "severity, started_at, last_event_at, resolved_at, acknowledged_by, ack_comment, "
        "ack_expires_at, replay, latest) VALUES (%(alert_id)s, %(rule_id)s, %(subject)s, "
        "%(enterprise_code)s, %(region_code)s, %(status)s, %(severity)s, %(started_at)s, "
        "%(emitted_at)s, %(resolved_at)s, %(ack_user)s, %(ack_comment)s, %(ack_expires_at)s, "
        "%(replay)s, %(latest)s) "
        "ON CONFLICT (alert_id) DO UPDATE SET "
        "region_code = COALESCE(EXCLUDED.region_code, alerts.region_code), "
        "status = EXCLUDED.status, severity = EXCLUDED.severity, "
        "last_event_at = EXCLUDED.last_event_at, resolved_at = EXCLUDED.resolved_at, "
        "acknowledged_by = CASE %(ack_action)s WHEN 'set' THEN EXCLUDED.acknowledged_by "
        " WHEN 'clear' THEN NULL ELSE alerts.acknowledged_by END, "
        "ack_comment = CASE %(ack_action)s WHEN 'set' THEN EXCLUDED.ack_comment "
        " WHEN 'clear' THEN NULL ELSE alerts.ack_comment END, "
        "ack_expires_at = CASE %(ack_action)s WHEN 'set' THEN EXCLUDED.ack_expires_at "
        " WHEN 'clear' THEN NULL ELSE alerts.ack_expires_at END, "
        "latest = EXCLUDED.latest "
        "WHERE alerts.last_event_at <= EXCLUDED.last_event_at",
        [_alert_row(event) for event in events],
    )


def _alert_row(event: AlertEvent) -> dict[str, Any]:
    ack = event.acknowledgement
    if event.kind is AlertKind.ACKNOWLEDGED and ack is not None:
        action = "set"
    elif event.kind is AlertKind.ESCALATED:
        action = "clear"
    else:
        action = "keep"
    return {
        "alert_id": event.alert_id,
        "rule_id": event.rule_id,
        "subject": event.subject,
        "enterprise_code": event.enterprise_code,
        "region_code": event.region_code,
        "status": event.status.value,
        "severity": event.severity.value,
        "started_at": event.started_at,
        "emitted_at": event.emitted_at,
        "resolved_at": event.at if event.kind is AlertKind.RESOLVED else None,
        "ack_user": ack.user if ack else None,
        "ack_comment": ack.comment if ack else None,
        "ack_expires_at": ack.expires_at if ack else None,
        "ack_action": action,
        "replay": event.replay,
        "latest": Jsonb(event.model_dump(mode="json")),
    }


# -- snapshots ----------------------------------------------------------------------------


async def save_snapshot(cur: Cursor, name: str, snapshot: Mapping[str, Any], now: datetime) -> None:
    await cur.execute(
        "INSERT INTO alert_lifecycle_state (name, snapshot, updated_at) VALUES (%s, %s, %s) "
        "ON CONFLICT (name) DO UPDATE SET snapshot = EXCLUDED.snapshot, "
        "updated_at = EXCLUDED.updated_at",
        (name, Jsonb(dict(snapshot)), now),
    )


async def load_snapshot(cur: Cursor, name: str) -> dict[str, Any] | None:
    await cur.execute("SELECT snapshot FROM alert_lifecycle_state WHERE name = %s", (name,))
    row = await cur.fetchone()
    return dict(row[0]) if row is not None else None


# -- operators' commands ------------------------------------------------------------------

Command = Acknowledge | AddSilence | RemoveSilence | DeclareEmergency


@dataclass(frozen=True)
class PendingCommand:
    """A row of ``alert_commands`` not yet applied, as stored (validated by whoever applies it)."""

    command_id: int
    kind: str
    payload: Any
    requested_by: str


async def queue_command(cur: Cursor, command: Command, requested_by: str) -> int:
    """Ask the evaluator to apply ``command`` (and ring its doorbell); the new command's id.
    ``requested_by`` is the principal, never a token."""
    await cur.execute(
        "INSERT INTO alert_commands (kind, payload, requested_by) VALUES (%s, %s, %s) "
        "RETURNING command_id",
        (command.kind, Jsonb(command.model_dump(mode="json")), requested_by),
    )
    row = await cur.fetchone()
    assert row is not None
    await cur.execute(f"NOTIFY {COMMANDS_CHANNEL}")
    return int(row[0])


async def claim_commands(cur: Cursor, limit: int = 100) -> list[PendingCommand]:
    """Lock and return pending commands in id order (the order they were asked in)."""
    await cur.execute(
        "SELECT command_id, kind, payload, requested_by FROM alert_commands "
        "WHERE applied_at IS NULL ORDER BY command_id LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    )
    return [
        PendingCommand(int(command_id), str(kind), payload, str(requested_by))
        for command_id, kind, payload, requested_by in await cur.fetchall()
    ]


async def finish_commands(
    cur: Cursor, outcomes: Sequence[tuple[int, str | None]], at: datetime
) -> None:
    """Stamp commands as dealt with at ``at``: ``(command_id, None)`` applied, ``(command_id,
    reason)`` refused. Both leave the pending set (a refused command is not retried)."""
    if not outcomes:
        return
    await cur.executemany(
        "UPDATE alert_commands SET applied_at = %s, error = %s WHERE command_id = %s",
        [(at, error, command_id) for command_id, error in outcomes],
    )


# -- silences -----------------------------------------------------------------------------


async def save_silence(cur: Cursor, silence: AddSilence) -> None:
    """Record a silence as set (a silence set again under its id replaces it)."""
    await cur.execute(
        "INSERT INTO alert_silences (silence_id, kind, rule, subject, enterprise, starts_at, "
        "ends_at, created_by, comment) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (silence_id) DO UPDATE SET kind = EXCLUDED.kind, rule = EXCLUDED.rule, "
        "subject = EXCLUDED.subject, enterprise = EXCLUDED.enterprise, "
        "starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at, "
        "created_by = EXCLUDED.created_by, comment = EXCLUDED.comment, removed_at = NULL",
        (
            silence.silence_id,
            silence.silence_kind,
            silence.rule,
            silence.subject,
            silence.enterprise,
            silence.starts_at,
            silence.ends_at,
            silence.created_by,
            silence.comment,
        ),
    )


async def remove_silence(cur: Cursor, silence_id: str, at: datetime) -> None:
    await cur.execute(
        "UPDATE alert_silences SET removed_at = %s WHERE silence_id = %s AND removed_at IS NULL",
        (at, silence_id),
    )


# -- one evaluator at a time --------------------------------------------------------------

#: Session lock of the leading evaluator (advisory locks are per database).
LEADER_LOCK: Final = 0x45574556  # "EWEV"
#: Taken by every pass and by every load of the snapshots, so a new leader reads the state
#: only after a pass of the old one that was already under way has committed or rolled back.
STATE_LOCK: Final = 0x45575354  # "EWST"


async def try_lead(conn: psycopg.AsyncConnection[TupleRow]) -> bool:
    """Take the leader lock on ``conn`` (autocommit) if it is free."""
    cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,))
    row = await cur.fetchone()
    return bool(row and row[0])


async def wait_to_lead(conn: psycopg.AsyncConnection[TupleRow]) -> None:
    """Wait for the leader lock on ``conn`` (autocommit): until the leader's session ends."""
    await conn.execute("SELECT pg_advisory_lock(%s)", (LEADER_LOCK,))


async def listen(conn: psycopg.AsyncConnection[TupleRow], channels: Sequence[str]) -> None:
    for channel in channels:
        await conn.execute(f"LISTEN {channel}")


async def lock_state(cur: Cursor, leader_pid: int | None) -> bool:
    """Serialise with other passes and loads (until the transaction ends); with
    ``leader_pid``, whether that session still holds the leader lock."""
    await cur.execute("SELECT pg_advisory_xact_lock(%s)", (STATE_LOCK,))
    if leader_pid is None:
        return True
    # a bigint key shows in pg_locks as classid (high half), objid (low half), objsubid 1
    await cur.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND pid = %s AND classid = %s AND objid = %s AND objsubid = 1)",
        (leader_pid, LEADER_LOCK >> 32, LEADER_LOCK & 0xFFFFFFFF),
    )
    row = await cur.fetchone()
    return bool(row and row[0])
