"""Per-recipient rate limits that fold a storm of alert events into digests and lose nothing.
Pure: time is passed in, and the whole state is a snapshot that a restart resumes from.

A recipient gets at most ``max_messages`` messages in any ``per_seconds`` (a sliding log of
send times, so no burst straddles a window edge). Once the limit is reached, events are
held; when a slot frees up, everything held goes out as one digest, in arrival order. While
anything is held, new events join it rather than overtaking it. Resolved (and every other
kind of) events are treated alike: held and digested, never dropped.

    max 2 per 10 min           a's slot frees at 10, b's at 11
    t(min)   0    1    2    3   ...  10      11
    offer    a    b    c    d        e
    sent     a    b                  [c d]   e
    held               c    c d      e

Times passed in must not go backwards (the notifier's clock, not event time).
"""

import hashlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.alert_events import AlertEvent
from contracts.identifiers import UtcDatetime

STATE_VERSION: Final = 1
_STRICT = ConfigDict(frozen=True, extra="forbid")


class RateLimit(BaseModel):
    """At most ``max_messages`` messages to one recipient in any ``per_seconds``."""

    model_config = _STRICT
    max_messages: int = Field(ge=1)
    per_seconds: float = Field(gt=0)


class RecipientLog(BaseModel):
    """One recipient's state: recent send times (at most ``max_messages`` of them), the
    events held back, and since when."""

    model_config = _STRICT
    sent_at: tuple[UtcDatetime, ...] = ()
    held: tuple[AlertEvent, ...] = ()
    held_since: UtcDatetime | None = None


class RateLimitState(BaseModel):
    model_config = _STRICT
    version: Literal[1] = STATE_VERSION
    recipients: dict[str, RecipientLog] = Field(default_factory=dict)


@dataclass(frozen=True)
class Release:
    """What to send one recipient now: one event alone, or several as a digest."""

    recipient_id: str
    events: tuple[AlertEvent, ...]

    @property
    def is_digest(self) -> bool:
        return len(self.events) > 1

    @property
    def event_ids(self) -> tuple[str, ...]:
        return tuple(event.event_id for event in self.events)

    @property
    def idempotency_key(self) -> str:
        """The event id alone; for a digest, a digest of its event ids (stable across a
        restart, since the held events are part of the snapshot)."""
        if not self.is_digest:
            return self.events[0].event_id
        ids = "|".join(self.event_ids)
        return "digest-" + hashlib.sha256(ids.encode()).hexdigest()[:32]


@dataclass
class _Log:
    sent_at: deque[datetime] = field(default_factory=deque)
    held: list[AlertEvent] = field(default_factory=list)
    held_since: datetime | None = None


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("rate limits need timezone-aware times")
    return now


class RateLimiter:
    """Decides, for each event offered, what may be sent now and what is held for a digest."""

    def __init__(
        self,
        default: RateLimit,
        overrides: Mapping[str, RateLimit] | None = None,
        state: RateLimitState | None = None,
    ) -> None:
        self._default = default
        self._overrides = dict(overrides or {})
        self._logs: dict[str, _Log] = {}
        for recipient_id, saved in (state or RateLimitState()).recipients.items():
            self._logs[recipient_id] = _Log(
                deque(saved.sent_at), list(saved.held), saved.held_since
            )

    def limit_for(self, recipient_id: str) -> RateLimit:
        return self._overrides.get(recipient_id, self._default)

    def offer(self, recipient_id: str, event: AlertEvent, now: datetime) -> list[Release]:
        """Take one event for one recipient; return what to send now (a digest of earlier
        events whose slot has just freed, this event alone, or nothing if it is held)."""
        now = _aware(now)
        log = self._logs.setdefault(recipient_id, _Log())
        releases = self._flush(recipient_id, log, now)
        if log.held or not self._has_slot(recipient_id, log, now):
            if not log.held:
                log.held_since = now
            log.held.append(event)
            return releases
        log.sent_at.append(now)
        return [*releases, Release(recipient_id, (event,))]

    def due(self, now: datetime) -> list[Release]:
        """Digests whose recipients may be sent to again; call at or after ``next_due()``."""
        now = _aware(now)
        releases: list[Release] = []
        for recipient_id, log in self._logs.items():
            releases.extend(self._flush(recipient_id, log, now))
        return releases

    def next_due(self) -> datetime | None:
        """When the earliest held digest may go out, or None when nothing is held."""
        times = [
            self._slot_frees_at(recipient_id, log)
            for recipient_id, log in self._logs.items()
            if log.held
        ]
        return min(times, default=None)

    def held_count(self) -> int:
        return sum(len(log.held) for log in self._logs.values())

    def snapshot(self) -> RateLimitState:
        """The whole state, for a restart to resume exactly where this one stopped."""
        return RateLimitState(
            recipients={
                recipient_id: RecipientLog(
                    sent_at=tuple(log.sent_at), held=tuple(log.held), held_since=log.held_since
                )
                for recipient_id, log in self._logs.items()
                if log.sent_at or log.held
            }
        )

    def _has_slot(self, recipient_id: str, log: _Log, now: datetime) -> bool:
        limit = self.limit_for(recipient_id)
        window = timedelta(seconds=limit.per_seconds)
        while log.sent_at and now - log.sent_at[0] >= window:
            log.sent_at.popleft()
        while len(log.sent_at) > limit.max_messages:  # the limit was lowered since
            log.sent_at.popleft()
        return len(log.sent_at) < limit.max_messages

    def _slot_frees_at(self, recipient_id: str, log: _Log) -> datetime:
        limit = self.limit_for(recipient_id)
        if len(log.sent_at) < limit.max_messages:  # the limit was raised since
            assert log.held_since is not None
            return log.held_since
        return log.sent_at[-limit.max_messages] + timedelta(seconds=limit.per_seconds)

    def _flush(self, recipient_id: str, log: _Log, now: datetime) -> list[Release]:
        if not log.held or not self._has_slot(recipient_id, log, now):
            return []
        release = Release(recipient_id, tuple(log.held))
        log.held.clear()
        log.held_since = None
        log.sent_at.append(now)
        return [release]
