"""The Alerts API's side of the alert tables: reading ``alerts``, ``alert_history`` and
``alert_silences``, and writing operators' requests to ``alert_commands``.

**Scope is applied in SQL.** Every read takes a :class:`Scope` and adds its condition to the
``WHERE`` clause, so rows a caller may not see never leave the database: a unit's scope adds
``enterprise_code = %s``; a region's keeps rows whose division code starts with the region's
prefix. A row's division code is its ``region_code``, or for a unit's alert without one the
division code inside the unit's credit code (characters 3–8), the same fallback the notifier's
routing uses, so a supervisor can read what it is told about. A row with neither is seen only
by operators.

**Pages** are keyset pages: a :class:`Position` (a time and an id) is where the last page
ended, and travels to clients as an opaque cursor (:func:`encode_cursor`).
"""

import base64
import binascii
import re
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from contracts.alert_commands import AlertCommand
from contracts.alert_events import AlertEvent, AlertSeverity
from storage import alert_store

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_CURSOR_TEXT: Final = re.compile(r"^[A-Za-z0-9_-]{1,160}$")
_CURSOR_BODY: Final = re.compile(r"^(-?[0-9]{1,20})\.([0-9a-f]{16,64})$")
_REGION_PREFIX: Final = re.compile(r"^[0-9]{2,6}$")

#: The division code a row belongs to (see the module docstring).
_ROW_REGION: Final = sql.SQL("COALESCE(region_code, substr(enterprise_code, 3, 6))")


@dataclass(frozen=True)
class Scope:
    """What one caller may read: everything (``everything=True``), one unit's rows
    (``enterprise_code``), or a region's (``region_prefix``: the leading digits shared by the
    division codes it covers; ``region_enterprises``: the registered units in it, for
    silences, which name an enterprise but carry no division code)."""

    everything: bool = False
    enterprise_code: str | None = None
    region_prefix: str | None = None
    region_enterprises: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        chosen = [self.everything, self.enterprise_code is not None, self.region_prefix is not None]
        if sum(chosen) != 1:
            raise ValueError("a scope is everything, one enterprise or one region: pick one")
        if self.region_prefix is not None and not _REGION_PREFIX.match(self.region_prefix):
            raise ValueError(f"{self.region_prefix!r} is not the prefix of a division code")


@dataclass(frozen=True)
class AlertFilter:
    """Narrowing a list of alerts (within the caller's scope). ``region_prefix`` as in
    :class:`Scope`; ``since``/``until`` bound ``last_event_at`` (until exclusive)."""

    status: str | None = None
    min_severity: AlertSeverity | None = None
    rule_prefix: str | None = None
    enterprise_code: str | None = None
    region_prefix: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    include_replay: bool = False


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last row's time and id (``last_event_at`` and ``alert_id`` for
    alerts, ``emitted_at`` and ``event_id`` for history)."""

    at: datetime
    id: str


@dataclass(frozen=True)
class StoredAlert:
    alert_id: str
    rule_id: str
    subject: str
    enterprise_code: str | None
    region_code: str | None
    status: str
    severity: str
    started_at: datetime
    last_event_at: datetime
    resolved_at: datetime | None
    acknowledged_by: str | None
    ack_comment: str | None
    ack_expires_at: datetime | None
    replay: bool
    latest: AlertEvent


@dataclass(frozen=True)
class StoredSilence:
    silence_id: str
    kind: str
    rule: str
    subject: str
    enterprise: str
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    removed_at: datetime | None


@dataclass(frozen=True)
class StoredCommand:
    command_id: int
    kind: str
    payload: dict[str, Any]
    requested_by: str
    requested_at: datetime
    applied_at: datetime | None
    error: str | None


class CursorError(ValueError):
    """A cursor this API did not hand out."""


def encode_cursor(position: Position) -> str:
    """``position`` as an opaque, URL-safe string."""
    micros = (position.at - _EPOCH) // _MICROSECOND
    raw = f"{micros}.{position.id}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(text: str) -> Position:
    """The position ``encode_cursor`` made ``text`` from; ``CursorError`` for anything else
    (only the canonical spelling is accepted, so one position has one cursor)."""
    if not _CURSOR_TEXT.match(text):
        raise CursorError("not a cursor from this API")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, ValueError) as exc:
        raise CursorError("not a cursor from this API") from exc
    match = _CURSOR_BODY.match(raw)
    if match is None:
        raise CursorError("not a cursor from this API")
    try:
        position = Position(_EPOCH + int(match[1]) * _MICROSECOND, match[2])
    except OverflowError as exc:
        raise CursorError("not a cursor from this API") from exc
    if encode_cursor(position) != text:
        raise CursorError("not a cursor from this API")
    return position


def _row_scope(scope: Scope) -> tuple[sql.Composable, list[Any]]:
    """The scope's condition on a table with ``enterprise_code`` and ``region_code``."""
    if scope.everything:
        return sql.SQL("TRUE"), []
    if scope.enterprise_code is not None:
        return sql.SQL("enterprise_code = %s"), [scope.enterprise_code]
    return sql.SQL("starts_with({}, %s)").format(_ROW_REGION), [scope.region_prefix]


def _silence_scope(scope: Scope) -> tuple[sql.Composable, list[Any]]:
    """The scope's condition on silences (columns ``enterprise``, ``subject``): a unit's own;
    a region's units by exact code, and region-wide silences of a division code inside it."""
    if scope.everything:
        return sql.SQL("TRUE"), []
    if scope.enterprise_code is not None:
        return sql.SQL("enterprise = %s"), [scope.enterprise_code]
    return (
        sql.SQL(
            "(enterprise = ANY(%s) OR (enterprise = '*' AND subject ~ '^[0-9]{6}$' "
            "AND starts_with(subject, %s)))"
        ),
        [list(scope.region_enterprises), scope.region_prefix],
    )


_ALERT_FIELDS: Final = [f.name for f in fields(StoredAlert) if f.name != "latest"]
_ALERT_COLUMNS: Final = sql.SQL(", ").join(map(sql.Identifier, [*_ALERT_FIELDS, "latest"]))


def _alert(row: TupleRow) -> StoredAlert:
    *columns, latest = row
    named = dict(zip(_ALERT_FIELDS, columns, strict=True))
    return StoredAlert(**named, latest=AlertEvent.model_validate(latest))


def _severities_from(lowest: AlertSeverity) -> list[str]:
    order = list(AlertSeverity)
    return [s.value for s in order[order.index(lowest) :]]


async def list_alerts(
    conn: psycopg.AsyncConnection[TupleRow],
    scope: Scope,
    filters: AlertFilter,
    after: Position | None,
    limit: int,
) -> tuple[list[StoredAlert], Position | None]:
    """A page of alerts, latest event first, and where the next page starts (None: last)."""
    where, params = _row_scope(scope)
    conditions = [where]
    optional: list[tuple[object, sql.Composable, object]] = [
        (filters.status, sql.SQL("status = %s"), filters.status),
        (
            filters.min_severity,
            sql.SQL("severity = ANY(%s)"),
            filters.min_severity and _severities_from(filters.min_severity),
        ),
        (filters.rule_prefix, sql.SQL("starts_with(rule_id, %s)"), filters.rule_prefix),
        (filters.enterprise_code, sql.SQL("enterprise_code = %s"), filters.enterprise_code),
        (
            filters.region_prefix,
            sql.SQL("starts_with({}, %s)").format(_ROW_REGION),
            filters.region_prefix,
        ),
        (filters.since, sql.SQL("last_event_at >= %s"), filters.since),
        (filters.until, sql.SQL("last_event_at < %s"), filters.until),
    ]
    for given, condition, value in optional:
        if given is not None:
            conditions.append(condition)
            params.append(value)
    if not filters.include_replay:
        conditions.append(sql.SQL("NOT replay"))
    if after is not None:
        conditions.append(sql.SQL("(last_event_at, alert_id) < (%s, %s)"))
        params += [after.at, after.id]
    query = sql.SQL(
        "SELECT {} FROM alerts WHERE {} ORDER BY last_event_at DESC, alert_id DESC LIMIT %s"
    ).format(_ALERT_COLUMNS, sql.SQL(" AND ").join(conditions))
    cur = await conn.execute(query, [*params, limit + 1])
    alerts = [_alert(row) for row in await cur.fetchall()]
    if len(alerts) <= limit:
        return alerts, None
    alerts = alerts[:limit]
    return alerts, Position(alerts[-1].last_event_at, alerts[-1].alert_id)


async def get_alert(
    conn: psycopg.AsyncConnection[TupleRow], scope: Scope, alert_id: str
) -> StoredAlert | None:
    """The alert, if it exists and ``scope`` may see it (the two are not told apart)."""
    where, params = _row_scope(scope)
    query = sql.SQL("SELECT {} FROM alerts WHERE alert_id = %s AND {}").format(
        _ALERT_COLUMNS, where
    )
    cur = await conn.execute(query, [alert_id, *params])
    row = await cur.fetchone()
    return _alert(row) if row is not None else None


async def alert_history(
    conn: psycopg.AsyncConnection[TupleRow],
    scope: Scope,
    alert_id: str,
    after: Position | None,
    limit: int,
) -> tuple[list[AlertEvent], Position | None]:
    """A page of one alert's events in the order they were emitted, and where the next
    page starts."""
    where, params = _row_scope(scope)
    conditions = [sql.SQL("alert_id = %s"), where]
    params = [alert_id, *params]
    if after is not None:
        conditions.append(sql.SQL("(emitted_at, event_id) > (%s, %s)"))
        params += [after.at, after.id]
    query = sql.SQL(
        "SELECT emitted_at, payload FROM alert_history WHERE {} "
        "ORDER BY emitted_at, event_id LIMIT %s"
    ).format(sql.SQL(" AND ").join(conditions))
    cur = await conn.execute(query, [*params, limit + 1])
    rows = await cur.fetchall()
    events = [AlertEvent.model_validate(payload) for _at, payload in rows[:limit]]
    if len(rows) <= limit:
        return events, None
    return events, Position(rows[limit - 1][0], events[-1].event_id)


_SILENCE_COLUMNS: Final = sql.SQL(
    "silence_id, kind, rule, subject, enterprise, starts_at, ends_at, created_by, comment, "
    "removed_at"
)


async def list_silences(
    conn: psycopg.AsyncConnection[TupleRow],
    scope: Scope,
    now: datetime,
    include_ended: bool = False,
    limit: int = 1000,
) -> list[StoredSilence]:
    """Silences and maintenance windows as the evaluator applied them, latest start first;
    without ``include_ended`` only those neither removed nor over at ``now``."""
    where, params = _silence_scope(scope)
    conditions = [where]
    if not include_ended:
        conditions.append(sql.SQL("removed_at IS NULL AND ends_at > %s"))
        params.append(now)
    query = sql.SQL(
        "SELECT {} FROM alert_silences WHERE {} ORDER BY starts_at DESC, silence_id LIMIT %s"
    ).format(_SILENCE_COLUMNS, sql.SQL(" AND ").join(conditions))
    cur = await conn.execute(query, [*params, limit])
    return [StoredSilence(*row) for row in await cur.fetchall()]


async def silence_visible(
    conn: psycopg.AsyncConnection[TupleRow], scope: Scope, silence_id: str
) -> bool:
    """Whether ``scope`` may see silence ``silence_id``: applied (``alert_silences``) or
    requested and not refused (an ``alert_commands`` row the evaluator has yet to apply)."""
    where, params = _silence_scope(scope)
    query = sql.SQL(
        "SELECT 1 FROM ("
        " SELECT silence_id, enterprise, subject FROM alert_silences"
        " UNION ALL"
        " SELECT payload->>'silence_id', payload->>'enterprise', payload->>'subject'"
        " FROM alert_commands WHERE kind = 'silence' AND error IS NULL"
        ") AS known WHERE silence_id = %s AND {} LIMIT 1"
    ).format(where)
    cur = await conn.execute(query, [silence_id, *params])
    return await cur.fetchone() is not None


async def insert_command(
    conn: psycopg.AsyncConnection[TupleRow], command: AlertCommand, requested_by: str
) -> int:
    """Record a request for the evaluator (and ring its doorbell); its ``command_id``."""
    async with conn.transaction(), conn.cursor() as cur:
        return await alert_store.queue_command(cur, command, requested_by)


async def get_command(
    conn: psycopg.AsyncConnection[TupleRow], command_id: int, requested_by: str | None
) -> StoredCommand | None:
    """A command and how it went; with ``requested_by``, only if that principal asked for it
    (None: anyone's, for operators)."""
    query = (
        "SELECT command_id, kind, payload, requested_by, requested_at, applied_at, error "
        "FROM alert_commands WHERE command_id = %s AND (%s::text IS NULL OR requested_by = %s)"
    )
    cur = await conn.execute(query, (command_id, requested_by, requested_by))
    row = await cur.fetchone()
    return StoredCommand(*row) if row is not None else None
