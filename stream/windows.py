"""Event-time tumbling windows with a watermark and allowed lateness (pure: no IO, no clock).

Faust's own windows expire on wall-clock time and drop late events. These are driven only by
event times and explicit watermarks, keep late data within an allowed lateness, report what
comes later still instead of losing it, and can be snapshotted so a restarted worker resumes
exactly.

Semantics, in the order an event meets them:

- **Assignment.** Windows tile time without gaps: quarter hours and hours, days from 00:00 China
  Standard Time (16:00 UTC the day before), months from the 1st 00:00 CST. An instant belongs
  to exactly one window, ``start <= at < end``.
- **Watermark.** One per :class:`EventTimeWindows` (global across keys): the latest event time
  seen minus ``grace``, raised further by ``advance(watermark)``; it never goes back. Global,
  not per key, because a meter that falls silent would otherwise never see its window close,
  and closing is what lets completeness checks notice the silence. The price: a meter whose
  clock runs ahead drags the watermark for everyone, so the adapter must quarantine
  future-dated readings before they get here; ``grace`` absorbs ordinary disorder.
- **Closing.** ``advance()`` closes every window whose end <= watermark and returns each once,
  as final.
- **Lateness.** An event whose window ends at or before ``watermark - allowed_lateness`` is
  *too late*: it is not aggregated and ``add`` says so, for the caller to store raw, count and
  report. Earlier late events are aggregated; if their window was already closed the change
  is flagged as a *correction*, also for a key whose first data in that window arrives late
  (its absence had been final).
- **Eviction.** A window leaves the state once its end + ``allowed_lateness`` <= watermark, so
  memory holds only the windows still open to late data.
- **Duplicates.** A window's contributions are keyed by event id (a natural key such as
  ``(meter_id, period_start)``): a redelivery changes nothing and a corrected value replaces
  the old one. An id is scoped to its key and window, so it must determine its event time.
- **Changes.** ``drain_changed()`` returns every window whose aggregate or finality changed
  since the last drain, once, for a sink to upsert; changes to windows evicted meanwhile are
  kept until drained.
"""

import math
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Final

from contracts.identifiers import CHINA_STANDARD_TIME

#: UTC+8 all year: a fixed offset, not Asia/Shanghai, whose history has pre-1992 DST.

#: 1970-01-01 00:00 CST, the origin fixed-size windows count from (CST midnights for days).
_ORIGIN: Final = datetime(1969, 12, 31, 16, tzinfo=UTC)

SNAPSHOT_VERSION: Final = 1


class WindowSize(Enum):
    QUARTER_HOUR = "15m"
    HOUR = "1h"
    DAY = "1d"
    MONTH = "1mo"


_STEP: Final[dict[WindowSize, timedelta]] = {
    WindowSize.QUARTER_HOUR: timedelta(minutes=15),
    WindowSize.HOUR: timedelta(hours=1),
    WindowSize.DAY: timedelta(days=1),
}


def _require_aware(at: datetime, what: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {at.isoformat()}")


def _index(at: datetime, size: WindowSize) -> int:
    """The number of the window ``at`` falls in: consecutive windows, consecutive numbers."""
    step = _STEP.get(size)
    if step is not None:
        return (at - _ORIGIN) // step
    local = at.astimezone(CHINA_STANDARD_TIME)
    return local.year * 12 + local.month - 1


def _start(index: int, size: WindowSize) -> datetime:
    step = _STEP.get(size)
    if step is not None:
        return _ORIGIN + index * step
    year, month0 = divmod(index, 12)
    return datetime(year, month0 + 1, 1, tzinfo=CHINA_STANDARD_TIME).astimezone(UTC)


def window_start(at: datetime, size: WindowSize) -> datetime:
    """The start (aware UTC) of the ``size`` window containing the aware instant ``at``."""
    _require_aware(at, "at")
    return _start(_index(at, size), size)


def window_end(start: datetime, size: WindowSize) -> datetime:
    """The end (aware UTC, exclusive) of the window beginning at ``start``: the next one's start.

    Raises ValueError if ``start`` is not a window boundary.
    """
    _require_aware(start, "start")
    index = _index(start, size)
    if _start(index, size) != start:
        raise ValueError(f"{start.isoformat()} does not start a {size.value} window")
    return _start(index + 1, size)


@dataclass(frozen=True, slots=True)
class WindowTotals:
    """The aggregate of one key's contributions to one window.

    ``sum`` is the correctly rounded sum of the exact values, whatever the order they arrived
    in and however often they were replaced; ``first_event`` and ``last_event`` are the
    earliest and latest event times (aware UTC) among the contributions.
    """

    sum: float
    count: int
    min: float
    max: float
    first_event: datetime
    last_event: datetime


@dataclass(frozen=True, slots=True)
class WindowUpdate:
    """One window's aggregate, to upsert on (key, size, start).

    ``final``: the window's period has been closed by ``advance()``. ``correction``: the change
    arrived after that, so it differs from a final value already handed out.
    """

    key: str
    size: WindowSize
    start: datetime
    end: datetime
    totals: WindowTotals
    final: bool
    correction: bool


class AddOutcome(Enum):
    ADDED = "added"  # a new contribution to its window
    REPLACED = "replaced"  # the event id was there with another value or time: replaced
    DUPLICATE = "duplicate"  # the event id was there with this value and time: nothing changed
    TOO_LATE = "too_late"  # beyond the allowed lateness: not aggregated, the caller keeps it


@dataclass(frozen=True, slots=True)
class AddResult:
    """What ``add`` did with an event. ``correction``: it changed an already-final window."""

    outcome: AddOutcome
    correction: bool = False

    @property
    def accepted(self) -> bool:
        return self.outcome is not AddOutcome.TOO_LATE

    @property
    def too_late(self) -> bool:
        return self.outcome is AddOutcome.TOO_LATE


# add() returns one of these six, indexed by correction: no allocation, no enum hashing per event
_ADDED: Final = (AddResult(AddOutcome.ADDED), AddResult(AddOutcome.ADDED, True))
_REPLACED: Final = (AddResult(AddOutcome.REPLACED), AddResult(AddOutcome.REPLACED, True))
_DUPLICATE: Final = AddResult(AddOutcome.DUPLICATE)
_TOO_LATE: Final = AddResult(AddOutcome.TOO_LATE)


@dataclass(frozen=True, slots=True)
class WindowConfig:
    """How windows are cut and how long they wait for late data."""

    size: WindowSize
    allowed_lateness: timedelta = timedelta(0)
    #: how far behind the latest event time the watermark trails
    grace: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if self.allowed_lateness < timedelta(0) or self.grace < timedelta(0):
            raise ValueError("allowed_lateness and grace must not be negative")


# Values are summed exactly as integer multiples of the smallest subnormal float (2**-1074), so
# the sum does not depend on arrival order, and subtracting a replaced value leaves no residue.
_SCALE_BITS: Final = 1074
_SCALE: Final = 1 << _SCALE_BITS


def _exact(value: float) -> int:
    numerator, denominator = value.as_integer_ratio()
    return numerator << (_SCALE_BITS + 1 - denominator.bit_length())


def _rounded(exact_sum: int) -> float:
    try:
        return exact_sum / _SCALE  # int / int is correctly rounded
    except OverflowError:
        return math.copysign(math.inf, exact_sum)


class _Accumulator:
    """One key's contributions to one window, by event id, and the running totals over them."""

    __slots__ = ("cached", "contributions", "exact_sum", "first", "last", "max", "min", "stale")

    def __init__(self) -> None:
        self.contributions: dict[Hashable, tuple[datetime, float]] = {}
        self.exact_sum = 0
        self.min = math.inf
        self.max = -math.inf
        self.first: datetime | None = None
        self.last: datetime | None = None
        # a replaced value may have been an extreme: recompute them when next asked
        self.stale = False
        #: the totals as last computed, until the next change
        self.cached: WindowTotals | None = None

    def put(
        self, event_id: Hashable, at: datetime, value: float
    ) -> tuple[AddResult, AddResult] | AddResult:
        """Add or replace a contribution; the results for ADDED, REPLACED or the DUPLICATE."""
        contributions = self.contributions
        previous = contributions.get(event_id)
        if previous is None:
            contributions[event_id] = (at, value)
            self.cached = None
            self.exact_sum += _exact(value)
            if not self.stale:
                if value < self.min:
                    self.min = value
                if value > self.max:
                    self.max = value
                if self.first is None or at < self.first:
                    self.first = at
                if self.last is None or at > self.last:
                    self.last = at
            return _ADDED
        if previous[0] == at and previous[1] == value:
            return _DUPLICATE
        contributions[event_id] = (at, value)
        self.cached = None
        self.exact_sum += _exact(value) - _exact(previous[1])
        self.stale = True
        return _REPLACED

    def totals(self) -> WindowTotals:
        if self.cached is not None:
            return self.cached
        if self.stale:
            values = [value for _, value in self.contributions.values()]
            times = [at for at, _ in self.contributions.values()]
            self.min, self.max = min(values), max(values)
            self.first, self.last = min(times), max(times)
            self.stale = False
        assert self.first is not None
        assert self.last is not None
        self.cached = WindowTotals(
            sum=_rounded(self.exact_sum),
            count=len(self.contributions),
            min=self.min,
            max=self.max,
            first_event=self.first,
            last_event=self.last,
        )
        return self.cached


class _Bucket:
    """All keys' windows over one period."""

    __slots__ = ("changed", "end", "evict_at", "final", "start", "windows")

    def __init__(self, start: datetime, end: datetime, evict_at: datetime, final: bool) -> None:
        self.start = start
        self.end = end
        self.evict_at = evict_at
        self.final = final
        self.windows: dict[str, _Accumulator] = {}
        #: keys changed since the last drain -> whether the change is a correction
        self.changed: dict[str, bool] = {}


class EventTimeWindows:
    """Tumbling event-time windows per key: config, logic and explicit, snapshot-able state.

    Feed events with :meth:`add`, then call :meth:`advance` (after each batch, say) to close
    and evict windows, and :meth:`drain_changed` to collect what a sink should upsert.
    """

    def __init__(self, config: WindowConfig) -> None:
        self.config = config
        self._buckets: dict[int, _Bucket] = {}
        self._max_event_time: datetime | None = None
        self._watermark: datetime | None = None
        #: the watermark at the last advance(): windows ending at or before it are final
        self._closed_through: datetime | None = None
        self._evicted_changes: list[WindowUpdate] = []
        #: the bucket the last event went to (None once evicted)
        self._recent: _Bucket | None = None

    @property
    def watermark(self) -> datetime | None:
        """Latest event time minus grace, or later if advanced; None before any event."""
        return self._watermark

    @property
    def state_size(self) -> int:
        """How many (key, window) aggregates the state holds."""
        return sum(len(bucket.windows) for bucket in self._buckets.values())

    def _raise_watermark(self, candidate: datetime) -> None:
        if self._watermark is None or candidate > self._watermark:
            self._watermark = candidate

    def _new_bucket(self, index: int) -> _Bucket:
        size = self.config.size
        start = _start(index, size)
        end = _start(index + 1, size)
        final = self._closed_through is not None and end <= self._closed_through
        return _Bucket(start, end, end + self.config.allowed_lateness, final)

    def add(self, key: str, event_id: Hashable, at: datetime, value: float) -> AddResult:
        """Aggregate one event into its window, or say it is too late (and leave it to you).

        ``event_id`` names the event across redeliveries: seeing it again in the same window
        replaces its earlier value. It must be a str, int, float, bool, None, aware or naive
        datetime, or a tuple of these, for :meth:`snapshot` to encode it.
        """
        if at.tzinfo is not UTC:
            _require_aware(at, "at")
            at = at.astimezone(UTC)
        if not math.isfinite(value):
            raise ValueError(f"value must be finite, got {value!r}")
        if self._max_event_time is None or at > self._max_event_time:
            self._max_event_time = at
            self._raise_watermark(at - self.config.grace)
        watermark = self._watermark
        # events mostly arrive in time order: try the window of the previous event first
        bucket = self._recent
        if bucket is None or not bucket.start <= at < bucket.end:
            index = _index(at, self.config.size)
            bucket = self._buckets.get(index)
            if bucket is None:
                bucket = self._new_bucket(index)
                if watermark is not None and bucket.evict_at <= watermark:
                    return _TOO_LATE
                self._buckets[index] = bucket
            self._recent = bucket
        if watermark is not None and bucket.evict_at <= watermark:
            return _TOO_LATE
        window = bucket.windows.get(key)
        if window is None:
            window = bucket.windows[key] = _Accumulator()
        results = window.put(event_id, at, value)
        if isinstance(results, AddResult):  # a duplicate: nothing changed
            return results
        if bucket.final:
            bucket.changed[key] = True
        elif key not in bucket.changed:
            bucket.changed[key] = False
        return results[bucket.final]

    def advance(self, watermark: datetime | None = None) -> list[WindowUpdate]:
        """Raise the watermark to ``watermark`` if later; close and evict windows behind it.

        Returns the windows that became final in this call, each once ever, ordered by
        (start, key). They are also marked changed for :meth:`drain_changed`.
        """
        if watermark is not None:
            _require_aware(watermark, "watermark")
            self._raise_watermark(watermark.astimezone(UTC))
        current = self._watermark
        if current is None:
            return []
        self._closed_through = current
        finals: list[WindowUpdate] = []
        for index in sorted(self._buckets):
            bucket = self._buckets[index]
            if bucket.end > current:
                break
            if not bucket.final:
                bucket.final = True
                for key in sorted(bucket.windows):
                    bucket.changed.setdefault(key, False)
                    finals.append(self._update(key, bucket, correction=False))
            if bucket.evict_at <= current:
                self._evicted_changes.extend(self._drain_bucket(bucket))
                del self._buckets[index]
                if bucket is self._recent:
                    self._recent = None
        return finals

    def drain_changed(self) -> list[WindowUpdate]:
        """Every window whose aggregate or finality changed since the last drain, once each,
        ordered by (start, key)."""
        drained, self._evicted_changes = self._evicted_changes, []
        for index in sorted(self._buckets):
            drained.extend(self._drain_bucket(self._buckets[index]))
        return drained

    def _drain_bucket(self, bucket: _Bucket) -> list[WindowUpdate]:
        updates = [
            self._update(key, bucket, correction=bucket.changed[key])
            for key in sorted(bucket.changed)
        ]
        bucket.changed.clear()
        return updates

    def _update(self, key: str, bucket: _Bucket, correction: bool) -> WindowUpdate:
        return WindowUpdate(
            key=key,
            size=self.config.size,
            start=bucket.start,
            end=bucket.end,
            totals=bucket.windows[key].totals(),
            final=bucket.final,
            correction=correction,
        )

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain JSON-serialisable data, for :meth:`restore`."""
        windows = []
        for index in sorted(self._buckets):
            bucket = self._buckets[index]
            for key in sorted(bucket.windows):
                windows.append(
                    {
                        "key": key,
                        "start": bucket.start.isoformat(),
                        "changed": key in bucket.changed,
                        "correction": bucket.changed.get(key, False),
                        "events": [
                            [_encode_id(event_id), at.isoformat(), value]
                            for event_id, (at, value) in bucket.windows[key].contributions.items()
                        ],
                    }
                )
        return {
            "version": SNAPSHOT_VERSION,
            "size": self.config.size.value,
            "max_event_time": _encode_time(self._max_event_time),
            "watermark": _encode_time(self._watermark),
            "closed_through": _encode_time(self._closed_through),
            "windows": windows,
            "evicted_changes": [_encode_update(update) for update in self._evicted_changes],
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Replace the state with one taken by :meth:`snapshot`, of the same window size.

        Lateness and grace come from this instance's config, so they may change across a
        restart.
        """
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unknown window snapshot version {snapshot.get('version')!r}")
        size = self.config.size
        if snapshot["size"] != size.value:
            raise ValueError(f"snapshot of {snapshot['size']} windows, these are {size.value}")
        self._buckets = {}
        self._recent = None
        self._max_event_time = _decode_time(snapshot["max_event_time"])
        self._watermark = _decode_time(snapshot["watermark"])
        self._closed_through = _decode_time(snapshot["closed_through"])
        for entry in snapshot["windows"]:
            index = _index(datetime.fromisoformat(entry["start"]), size)
            bucket = self._buckets.get(index)
            if bucket is None:
                bucket = self._buckets[index] = self._new_bucket(index)
            window = bucket.windows[entry["key"]] = _Accumulator()
            for event_id, at, value in entry["events"]:
                window.put(_decode_id(event_id), datetime.fromisoformat(at), float(value))
            if entry["changed"]:
                bucket.changed[entry["key"]] = bool(entry["correction"])
        self._evicted_changes = [_decode_update(data, size) for data in snapshot["evicted_changes"]]


def _encode_time(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _decode_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _encode_id(event_id: Hashable) -> Any:
    if event_id is None or isinstance(event_id, str | bool | int | float):
        return event_id
    if isinstance(event_id, datetime):
        return {"datetime": event_id.isoformat()}
    if isinstance(event_id, tuple):
        return {"tuple": [_encode_id(part) for part in event_id]}
    raise TypeError(f"cannot snapshot event id {event_id!r} of type {type(event_id).__name__}")


def _decode_id(data: Any) -> Hashable:
    if isinstance(data, dict):
        if "datetime" in data:
            return datetime.fromisoformat(data["datetime"])
        return tuple(_decode_id(part) for part in data["tuple"])
    return data  # type: ignore[no-any-return]


def _encode_update(update: WindowUpdate) -> dict[str, Any]:
    totals = update.totals
    return {
        "key": update.key,
        "start": update.start.isoformat(),
        "sum": totals.sum,
        "count": totals.count,
        "min": totals.min,
        "max": totals.max,
        "first_event": totals.first_event.isoformat(),
        "last_event": totals.last_event.isoformat(),
        "final": update.final,
        "correction": update.correction,
    }


def _decode_update(data: dict[str, Any], size: WindowSize) -> WindowUpdate:
    start = datetime.fromisoformat(data["start"])
    return WindowUpdate(
        key=data["key"],
        size=size,
        start=start,
        end=window_end(start, size),
        totals=WindowTotals(
            sum=float(data["sum"]),
            count=int(data["count"]),
            min=float(data["min"]),
            max=float(data["max"]),
            first_event=datetime.fromisoformat(data["first_event"]),
            last_event=datetime.fromisoformat(data["last_event"]),
        ),
        final=bool(data["final"]),
        correction=bool(data["correction"]),
    )
