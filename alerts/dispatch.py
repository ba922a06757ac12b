"""What the notifier decides (pure): which alert events go to whom, and when, folded into
digests by each recipient's rate limit; and the whole state a restart resumes from.

The state (``DispatchState``) is saved with the releases about to be sent *before* they are
sent, and each record's offset is remembered once taken, so after a crash anywhere:

* a record consumed again (its offset was not committed) is recognised and not offered to
  the rate limits a second time (``taken``), so it can neither use up a slot nor land in a
  digest with a new key;
* releases saved as pending are sent again under the same idempotency keys, and the record
  of what was sent (``alert_notifications``) lets through only those that had not reached
  their channel.

An event published twice to the topic (the evaluator's outbox is at-least-once) is told apart
by its ``event_id`` among the last ``remember`` events taken.
"""

from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from alerts.rate_limit import RateLimiter, RateLimitState, Release
from alerts.routing import RoutingConfig, recipients_for
from contracts.alert_events import AlertEvent

STATE_VERSION: Final = 1
#: How many recent event ids are kept to recognise an event published twice.
REMEMBERED_EVENTS: Final = 2000
_STRICT = ConfigDict(frozen=True, extra="forbid")


class PendingRelease(BaseModel):
    model_config = _STRICT
    recipient_id: str
    events: tuple[AlertEvent, ...] = Field(min_length=1)


class DispatchState(BaseModel):
    """The notifier's state, as saved in ``notifier_state``."""

    model_config = _STRICT
    version: Literal[1] = STATE_VERSION
    limiter: RateLimitState = RateLimitState()
    #: ``"<topic>/<partition>"`` -> the next offset not yet taken.
    next_offsets: dict[str, int] = Field(default_factory=dict)
    recent_event_ids: tuple[str, ...] = ()
    pending: tuple[PendingRelease, ...] = ()


class Skip(StrEnum):
    """Why an event was not offered to anyone (a metric label)."""

    NOT_FOR_DELIVERY = "not_for_delivery"  # deliver=False: a replay, a silence, maintenance
    DUPLICATE = "duplicate"  # the same event_id was taken recently
    NO_RECIPIENT = "no_recipient"  # nobody's routing covers it


def _partition(topic: str, partition: int) -> str:
    return f"{topic}/{partition}"


class Dispatcher:
    def __init__(
        self,
        routing: RoutingConfig,
        county_of: Mapping[str, str],
        state: DispatchState | None = None,
        remember: int = REMEMBERED_EVENTS,
    ) -> None:
        state = state or DispatchState()
        self._routing = routing
        self._county_of = county_of
        self._limiter = RateLimiter(
            routing.default_rate_limit, routing.rate_limit_overrides, state.limiter
        )
        self._next_offsets = dict(state.next_offsets)
        self._recent = deque(state.recent_event_ids[-remember:], maxlen=remember)
        self._recent_set = set(self._recent)
        self.pending = [Release(p.recipient_id, p.events) for p in state.pending]

    def taken(self, topic: str, partition: int, offset: int) -> bool:
        """Whether this record was taken before (consumed again after a restart)."""
        return offset < self._next_offsets.get(_partition(topic, partition), 0)

    def take(self, topic: str, partition: int, offset: int) -> None:
        """Remember a record as handled, whatever became of it."""
        key = _partition(topic, partition)
        self._next_offsets[key] = max(self._next_offsets.get(key, 0), offset + 1)

    def accept(self, event: AlertEvent, now: datetime) -> list[Release] | Skip:
        """Offer an event to everyone it concerns; return what to send now, or why nobody
        is told."""
        if event.event_id in self._recent_set:
            return Skip.DUPLICATE
        self._remember(event.event_id)
        if not event.deliver:
            return Skip.NOT_FOR_DELIVERY
        recipients = recipients_for(event, self._routing, self._county_of)
        if not recipients:
            return Skip.NO_RECIPIENT
        return [
            release
            for recipient in recipients
            for release in self._limiter.offer(recipient.id, event, now)
        ]

    def due(self, now: datetime) -> list[Release]:
        """Held digests whose recipients may be sent to again."""
        return self._limiter.due(now)

    def next_due(self) -> datetime | None:
        return self._limiter.next_due()

    def held_count(self) -> int:
        return self._limiter.held_count()

    def snapshot(self, pending: Sequence[Release] = ()) -> DispatchState:
        """The whole state, with ``pending`` the releases about to be sent."""
        return DispatchState(
            limiter=self._limiter.snapshot(),
            next_offsets=dict(self._next_offsets),
            recent_event_ids=tuple(self._recent),
            pending=tuple(
                PendingRelease(recipient_id=r.recipient_id, events=r.events) for r in pending
            ),
        )

    def _remember(self, event_id: str) -> None:
        if len(self._recent) == self._recent.maxlen:
            self._recent_set.discard(self._recent[0])
        self._recent.append(event_id)
        self._recent_set.add(event_id)
