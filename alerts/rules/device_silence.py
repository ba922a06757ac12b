"""Silence from a meter or monitor, judged as it happens: gaps and devices offline.

* gap: more than ``gap_intervals`` whole intervals have ended since the last data did;
* offline: silent for more than two intervals (the platform's line) and, counted in China's
  working days, escalating towards the rule that a broken link is fixed within 3 working days,
  after which data is entered by hand (DOMAIN.md §5). Defaults: notice after more than 1
  working day, warning after more than 2 (the last day allowed), critical after more than 3.

A silence that ends resolves at the time the data resumed (the start of the first period
heard after the hole), not at whenever the evaluator next looked: an evaluator that fell
behind (PostgreSQL away, a restart) and catches up on a backlog tells the same story as one
that kept pace. It is never dated before the last time the silence was reported, so a
resumption that arrives late is not taken for old news.

Working days are counted as ``plans.cn_calendar.ChinaCalendar.working_days_between`` does
(``stream.data_quality.offline`` agrees): a link broken on a Friday has had 3 working days by
Wednesday's end and is overdue on Thursday. The tracker keeps the last period heard from each
device as explicit state, so a restarted worker resumes with ``restore(snapshot())``.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.rules.condition import Condition, Severity, graded
from contracts.identifiers import CHINA_STANDARD_TIME
from plans.cn_calendar import ChinaCalendar

GAP_RULE = "data-quality.gap"
OFFLINE_RULE = "data-quality.offline"


@dataclass(frozen=True)
class DeviceSilenceConfig:
    gap_intervals: int = 4
    gap_severity: Severity = Severity.NOTICE
    offline_after_intervals: int = 2
    #: (more than this many working days silent, severity)
    offline_levels: tuple[tuple[int, Severity], ...] = (
        (1, Severity.NOTICE),
        (2, Severity.WARNING),
        (3, Severity.CRITICAL),
    )


@dataclass(frozen=True)
class _Heard:
    last_start: datetime  # the latest period start received, UTC
    interval_seconds: int
    enterprise_code: str | None
    feed: str = ""  # where its data comes from ("readings", "voc"): its own clock in a replay
    #: the latest hole of more than a few intervals: where it began (the end of the last
    #: period before it) and the start of the first period heard after it
    hole_from: datetime | None = None
    resumed: datetime | None = None


class DeviceSilence:
    """The last period heard from each device, and the gap and offline conditions it implies
    at a given time."""

    def __init__(self, config: DeviceSilenceConfig, calendar: ChinaCalendar) -> None:
        self.config = config
        self._calendar = calendar
        self._devices: dict[str, _Heard] = {}
        #: when each (rule, device) was last reported met: a resumption is dated no earlier
        self._met: dict[tuple[str, str], datetime] = {}

    def heard(
        self,
        device: str,
        period_start: datetime,
        interval_seconds: int,
        enterprise_code: str | None = None,
        feed: str = "",
        *,
        first_after: datetime | None = None,
    ) -> None:
        """Record data for ``device``'s period starting ``period_start``; late data for an
        older period changes nothing. ``feed`` names the stream the device's data comes by.

        ``first_after``: the first period the device sent after the last one recorded here,
        when ``period_start`` is a later one (a caller that learns only each device's newest
        period looks it up, ``expected_next`` says after what). A hole of more than a few
        intervals before it is a silence that ended there."""
        if period_start.tzinfo is None:
            raise ValueError("period_start must be timezone-aware")
        if interval_seconds <= 0:
            raise ValueError("an interval is a positive number of seconds")
        start = period_start.astimezone(UTC)
        known = self._devices.get(device)
        if known is None:
            self._devices[device] = _Heard(start, interval_seconds, enterprise_code, feed)
        elif start >= known.last_start:
            hole_from, resumed = known.hole_from, known.resumed
            first = start if first_after is None else min(start, first_after.astimezone(UTC))
            end = self._hole_before(known, first)
            if end is not None:
                hole_from, resumed = end, first
            self._devices[device] = _Heard(
                start, interval_seconds, enterprise_code, feed, hole_from, resumed
            )

    def _hole_before(self, known: _Heard, start: datetime) -> datetime | None:
        """Where the hole before data for ``start`` begins, if it is one worth remembering
        (more intervals than the shorter rule's line); else None."""
        interval = timedelta(seconds=known.interval_seconds)
        end = known.last_start + interval
        line = min(self.config.gap_intervals, self.config.offline_after_intervals)
        return end if (start - end) // interval > line else None

    def expected_next(self, device: str, period_start: datetime) -> datetime | None:
        """If data for ``period_start`` would leave a hole this tracker remembers, the end of
        the last period heard from ``device`` (look up the first period sent since, and pass
        it as ``first_after``); else None."""
        known = self._devices.get(device)
        return None if known is None else self._hole_before(known, period_start)

    def forget(self, device: str) -> None:
        """Stop watching ``device`` (decommissioned): no more conditions about it."""
        self._devices.pop(device, None)
        for key in [key for key in self._met if key[1] == device]:
            del self._met[key]

    def evaluate(
        self,
        now: datetime,
        *,
        data_clock: bool = False,
        passed: Mapping[str, datetime] | None = None,
    ) -> list[Condition]:
        """Each watched device's gap and offline conditions at ``now``, by device id.

        On the ``data_clock`` (replays of past data), each device is judged at the time
        most of its own feed has reached (the lower quartile of its devices' latest data; a
        feed of fewer than four devices, its latest), if earlier than ``now``, for being
        offline: feeds and their partitions are replayed at different speeds, so a device
        minutes behind its peers may only be on a slower partition, while one days behind
        is silent. Gaps are judged there only for a feed in ``passed``, at the time given
        (its stream's watermark: every partition is past it, so a device still sending has
        been heard up to it, provided it was heard after the watermark was read)."""
        ends: dict[str, list[datetime]] = {}
        for heard in self._devices.values():
            end = heard.last_start + timedelta(seconds=heard.interval_seconds)
            ends.setdefault(heard.feed, []).append(end)
        reached = {
            feed: sorted(times)[len(times) // 4] if len(times) >= 4 else max(times)
            for feed, times in ends.items()
        }
        passed = passed or {}
        conditions: list[Condition] = []
        for device in sorted(self._devices):
            heard = self._devices[device]
            if not data_clock:
                conditions.extend(self._device_conditions(device, heard, now))
                continue
            at = min(now, reached[heard.feed])
            conditions.extend(
                c for c in self._device_conditions(device, heard, at) if c.rule_id == OFFLINE_RULE
            )
            if heard.feed in passed:
                at = min(now, passed[heard.feed])
                conditions.extend(
                    c
                    for c in self._device_conditions(device, heard, at, crossing=True)
                    if c.rule_id == GAP_RULE
                )
        for condition in conditions:
            if condition.met:
                self._met[(condition.rule_id, condition.subject)] = condition.at
        return conditions

    def _resumed(self, rule_id: str, device: str, heard: _Heard, threshold: int) -> datetime | None:
        """When ``device``'s data resumed after the silence ``rule_id`` last reported, if it
        has (a hole of more than ``threshold`` intervals since): the resolution's time."""
        met = self._met.get((rule_id, device))
        if met is None or heard.resumed is None or heard.hole_from is None:
            return None
        hole = (heard.resumed - heard.hole_from) // timedelta(seconds=heard.interval_seconds)
        if hole <= threshold:
            return None
        return max(heard.resumed, met)

    def _device_conditions(
        self, device: str, heard: _Heard, now: datetime, *, crossing: bool = False
    ) -> list[Condition]:
        """``crossing``: date a gap over the line at the moment it crossed it, with the count
        it crossed with, rather than at ``now`` (on the data clock, so that an evaluator that
        looks later, having fallen behind, tells the same story)."""
        interval = timedelta(seconds=heard.interval_seconds)
        since = heard.last_start + interval
        silent = max(timedelta(0), now - since)
        missing = silent // interval
        gap_over = missing > self.config.gap_intervals
        resumed = (
            None if gap_over else self._resumed(GAP_RULE, device, heard, self.config.gap_intervals)
        )
        gap = Condition(
            rule_id=GAP_RULE,
            subject=device,
            at=now,
            severity=self.config.gap_severity if gap_over else None,
            value=float(missing),
            threshold=float(self.config.gap_intervals),
            unit="intervals",
            message=(
                f"{device}: {missing} intervals of {heard.interval_seconds} s missing since "
                f"{since.isoformat()} 数据中断 (allowed {self.config.gap_intervals})"
            ),
            enterprise_code=heard.enterprise_code,
        )
        earlier: list[Condition] = []
        if crossing and not gap_over:
            earlier = self._hole_not_reported(device, heard, now)
            if earlier:
                resumed = self._resumed(GAP_RULE, device, heard, self.config.gap_intervals)
        if resumed is not None:
            gap = replace(gap, at=resumed, value=0.0, message=self._resumption(device, heard))
        elif gap_over and crossing:
            gap = self._crossed(device, heard, since)
        days = 0
        if missing > self.config.offline_after_intervals:
            days = self._calendar.working_days_between(
                since.astimezone(CHINA_STANDARD_TIME).date(),
                now.astimezone(CHINA_STANDARD_TIME).date(),
            )
        lines = tuple((float(n), severity) for n, severity in self.config.offline_levels)
        severity, line = graded(float(days), lines)
        offline = Condition(
            rule_id=OFFLINE_RULE,
            subject=device,
            at=now,
            severity=severity,
            value=float(days),
            threshold=line,
            unit="working days",
            message=(
                f"{device} offline 设备离线 for {days} working days since {since.isoformat()}; "
                "a link is to be fixed within 3 working days, then data is entered by hand"
            ),
            enterprise_code=heard.enterprise_code,
        )
        if severity is None:
            resumed = self._resumed(
                OFFLINE_RULE, device, heard, self.config.offline_after_intervals
            )
            if resumed is not None:
                offline = replace(
                    offline, at=resumed, value=0.0, message=self._resumption(device, heard)
                )
        return [*earlier, gap, offline]

    def _crossed(self, device: str, heard: _Heard, since: datetime) -> Condition:
        """The gap met, dated when the silence since ``since`` crossed the line."""
        crossed = self.config.gap_intervals + 1
        return Condition(
            rule_id=GAP_RULE,
            subject=device,
            at=since + crossed * timedelta(seconds=heard.interval_seconds),
            severity=self.config.gap_severity,
            value=float(crossed),
            threshold=float(self.config.gap_intervals),
            unit="intervals",
            message=(
                f"{device}: more than {self.config.gap_intervals} intervals of "
                f"{heard.interval_seconds} s missing since {since.isoformat()} 数据中断"
            ),
            enterprise_code=heard.enterprise_code,
        )

    def _hole_not_reported(self, device: str, heard: _Heard, now: datetime) -> list[Condition]:
        """The gap a hole in the stored data was, if nobody reported it (the evaluator was
        behind: by the time it looked, the data after the hole was in). Reported now, dated
        when it crossed the line, so that it resolves next, as it did for an evaluator that
        kept pace. A hole whose crossing ``now`` has not passed yet waits for it."""
        if heard.hole_from is None or heard.resumed is None:
            return []
        interval = timedelta(seconds=heard.interval_seconds)
        if (heard.resumed - heard.hole_from) // interval <= self.config.gap_intervals:
            return []
        gap = self._crossed(device, heard, heard.hole_from)
        met = self._met.get((GAP_RULE, device))
        if gap.at > now or (met is not None and met >= gap.at):
            return []
        self._met[(GAP_RULE, device)] = gap.at
        return [gap]

    @staticmethod
    def _resumption(device: str, heard: _Heard) -> str:
        assert heard.hole_from is not None
        assert heard.resumed is not None
        return (
            f"{device}: data resumed at {heard.resumed.isoformat()} after a silence since "
            f"{heard.hole_from.isoformat()} 数据恢复"
        )

    def snapshot(self) -> dict[str, Any]:
        """The tracker's state as plain JSON-able data."""
        return {
            "devices": [
                {
                    "device": device,
                    "last_start": heard.last_start.isoformat(),
                    "interval_seconds": heard.interval_seconds,
                    "enterprise_code": heard.enterprise_code,
                    "feed": heard.feed,
                    "hole_from": _iso(heard.hole_from),
                    "resumed": _iso(heard.resumed),
                }
                for device, heard in sorted(self._devices.items())
            ],
            "met": [
                {"rule_id": rule_id, "device": device, "at": at.isoformat()}
                for (rule_id, device), at in sorted(self._met.items())
            ],
        }

    @classmethod
    def restore(
        cls, config: DeviceSilenceConfig, calendar: ChinaCalendar, snapshot: dict[str, Any]
    ) -> "DeviceSilence":
        """A tracker continuing from ``snapshot`` (as ``snapshot()`` returned it)."""
        tracker = cls(config, calendar)
        for row in snapshot["devices"]:
            tracker._devices[row["device"]] = _Heard(
                datetime.fromisoformat(row["last_start"]),
                int(row["interval_seconds"]),
                row["enterprise_code"],
                row.get("feed", ""),
                _parse(row.get("hole_from")),
                _parse(row.get("resumed")),
            )
        for row in snapshot.get("met", []):
            tracker._met[(row["rule_id"], row["device"])] = datetime.fromisoformat(row["at"])
        return tracker


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
