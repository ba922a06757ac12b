"""Reads what a replay left behind into a ``Snapshot``: the database's tables, the dead-letter
topic and what the webhook receiver was told.

Every column of every table the pipeline writes is compared except those that record *when* a
row was written on the wall clock (``ingested_at``, ``updated_at``, ``emitted_at``...), which no
two runs share. Names a run gives its topics and consumer group are replaced by the channel's
name (``readings``, ``worker``), so runs on different topics compare.

The SQL here is read-only and exists for the comparison alone (the application's queries live
in ``storage/``).
"""

import contextlib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Final, LiteralString

import psycopg
from kafka import KafkaConsumer
from psycopg import sql

from alerts.webhook_receiver import WebhookReceiver
from contracts.dead_letters import DeadLetter
from energywatch.settings import Settings
from proving_ground.snapshot import Part, Snapshot

#: The tables the worker and the evaluator write, in the order a difference is looked for:
#: the raw data first, then what is derived from it, then alerts.
TABLES: Final = (
    "meter_readings",
    "meter_counter_state",
    "stream_progress",
    "energy_rollups",
    "voc_samples",
    "voc_hourly",
    "voc_daily",
    "product_output_reports",
    "energy_total_reports",
    "output_value_reports",
    "value_added_reports",
    "alert_history",
    "alerts",
)
#: Wall-clock columns: when a row was written, not what it says.
WALL_CLOCK: Final = frozenset(
    {
        "ingested_at",
        "updated_at",
        "received_at",
        "revised_at",
        "emitted_at",
        "published_at",
        "last_event_at",
        "delivered_at",
        "marked_at",
    }
)
#: jsonb columns that embed an event (and so its emission time).
_EVENT_JSON: Final = {"payload", "latest"}


def run_names(settings: Settings) -> dict[str, str]:
    """This run's topic and group names -> the names every run shares."""
    return {
        settings.readings_topic: "readings",
        settings.voc_topic: "voc",
        settings.production_topic: "production",
        settings.alerts_topic: "alerts",
        settings.dead_letter_topic: "dead-letters",
        settings.worker_app_id: "worker",
        settings.notifier_group_id: "notifier",
    }


def read_snapshot(settings: Settings, receiver: WebhookReceiver | None) -> Snapshot:
    """Every table of ``TABLES``, the notifier's delivery record, the dead letters and (with
    ``receiver``) what the webhook was told."""
    names = run_names(settings)
    parts: dict[str, Part] = {}
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        for table in TABLES:
            if table == "alert_history":
                parts["alert_history.identity"] = _alert_identity(conn)
            parts[table] = _table(conn, table, names)
        parts["alert_notifications.events"] = _notified(conn)
    parts["dead_letters"] = dead_letters(settings, names)
    if receiver is not None:
        parts["webhook.events"], parts["webhook.doubled"] = told(receiver)
    return Snapshot(parts)


def _table(conn: psycopg.Connection, table: str, names: Mapping[str, str]) -> Part:
    cur = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
        (table,),
    )
    columns = [(name, kind) for name, kind in cur.fetchall() if name not in WALL_CLOCK]
    if not columns:
        return Part.of((), [])
    selected = []
    for name, kind in columns:
        column = sql.Identifier(name)
        if name in _EVENT_JSON and kind == "jsonb":
            selected.append(sql.SQL("({} - 'emitted_at')::text").format(column))
        else:
            selected.append(sql.SQL("{}::text").format(column))
    query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(selected), sql.Identifier(table))
    rows = conn.execute(query).fetchall()
    return Part.of([c for c, _ in columns], [[_rename(v, names) for v in row] for row in rows])


#: The parts that say whether an alert event was lost or doubled (not whether its content,
#: such as the data time it was judged at, is the same).
IDENTITY_PARTS: Final = (
    "alert_history.identity",
    "alert_notifications.events",
    "webhook.events",
    "webhook.doubled",
)


def _alert_identity(conn: psycopg.Connection) -> Part:
    """Each alert event by what it is (its id, alert, kind, rule and subject), compared before
    the whole row: so a run that lost or doubled an event says so first, and one whose events
    differ only in content (a value, the data time) shows that in ``alert_history``."""
    query: LiteralString = "SELECT event_id, alert_id, kind, rule_id, subject FROM alert_history"
    return Part.of(
        ("event_id", "alert_id", "kind", "rule_id", "subject"), conn.execute(query).fetchall()
    )


def _notified(conn: psycopg.Connection) -> Part:
    """One row per (recipient, channel, event) the notifier recorded as delivered: an event in
    two deliveries (alone and in a digest, say) is two rows, a doubling."""
    query: LiteralString = (
        "SELECT recipient_id, channel, unnest(event_ids) FROM alert_notifications"
    )
    rows = conn.execute(query).fetchall()
    return Part.of(("recipient_id", "channel", "event_id"), rows)


def told(receiver: WebhookReceiver) -> tuple[Part, Part]:
    """What the webhook receiver accepted: each event told (once per event), and each event
    told in more than one notification with different idempotency keys (doubled: a repeat of
    the same key is the receiver's de-duplication at work, not a doubling)."""
    keys_by_event: dict[str, set[str]] = {}
    for notification in receiver.notifications:
        for event in notification.notification.events:
            keys_by_event.setdefault(event.event_id, set()).add(notification.idempotency_key)
    events = [(event_id,) for event_id in keys_by_event]
    doubled = [(e, str(len(keys))) for e, keys in keys_by_event.items() if len(keys) > 1]
    return Part.of(("event_id",), events), Part.of(("event_id", "notifications"), doubled)


def repeated_posts(receiver: WebhookReceiver) -> int:
    """Notifications that arrived again with an idempotency key already seen (retries)."""
    return sum(1 for n in receiver.notifications if n.duplicate)


def dead_letters(settings: Settings, names: Mapping[str, str]) -> Part:
    """The dead letters, once per rejected record (topic, partition, offset, stage, kind,
    reason): a batch retried after a crash may send its dead letters again, which the
    de-duplication on the source record absorbs."""
    letters = read_dead_letters(settings)
    unique = {
        (
            names.get(d.source_topic or "", d.source_topic or ""),
            str(d.source_partition),
            str(d.source_offset),
            d.stage,
            d.kind,
            d.reason,
        )
        for d in letters
    }
    return Part.of(("topic", "partition", "offset", "stage", "kind", "reason"), sorted(unique))


def read_dead_letters(settings: Settings, timeout_s: float = 5.0) -> list[DeadLetter]:
    """Every dead letter in the run's dead-letter topic."""
    consumer = KafkaConsumer(
        settings.dead_letter_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=int(timeout_s * 1000),
        client_id="energywatch-prove-dead-letters",
    )
    letters = []
    try:
        for message in consumer:
            with contextlib.suppress(ValueError):
                letters.append(DeadLetter.model_validate_json(message.value))
    finally:
        consumer.close()
    return letters


def dead_letter_copies(settings: Settings) -> dict[str, int]:
    """How many dead letters the topic holds and how many of them repeat a rejected record."""
    letters = read_dead_letters(settings)
    keys = Counter((d.source_topic, d.source_partition, d.source_offset) for d in letters)
    return {"sent": len(letters), "repeats": sum(n - 1 for n in keys.values())}


def _rename(value: object, names: Mapping[str, str]) -> object:
    if isinstance(value, str) and value in names:
        return names[value]
    return value


def part_rows(snapshot: Snapshot, names: Sequence[str]) -> dict[str, int]:
    """Row counts of the named parts, for a report."""
    return {name: snapshot.rows(name) for name in names}
