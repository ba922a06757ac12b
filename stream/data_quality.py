"""Data-quality checks (pure), per meter and per unit, by the national platform's rules
(DOMAIN.md §5):

* completeness: at least 90% of a day's expected uploads arrived;
* gaps: which intervals are missing, as runs;
* timestamps off the period start: an interval reading should label its period's start;
* daily sums against the monthly figure: within 5%;
* device offline: how long since a device was last heard from, in hours and in working days
  (a broken link must be fixed within 3 working days, after which data is entered by hand).

Stuck values, spikes, resets and rollovers come from ``stream.counters``. Every function takes
its inputs and the time it judges at; none reads a clock.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Final

from contracts.identifiers import CHINA_STANDARD_TIME
from plans.cn_calendar import ChinaCalendar
from stream.windows import WindowSize, window_start

COMPLETENESS_REQUIRED: Final = 0.90
DAILY_VS_MONTHLY_TOLERANCE: Final = 0.05
OFFLINE_WORKING_DAYS_ALLOWED: Final = 3


@dataclass(frozen=True)
class Completeness:
    day: date  # China-local
    expected: int
    received: int

    @property
    def ratio(self) -> float:
        return self.received / self.expected if self.expected else 1.0

    @property
    def meets_rule(self) -> bool:
        return self.ratio >= COMPLETENESS_REQUIRED


@dataclass(frozen=True)
class Gap:
    start: datetime  # the first missing interval's start
    end: datetime  # the end of the last missing interval
    intervals: int


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=CHINA_STANDARD_TIME)
    return start, start + timedelta(days=1)


def completeness(
    day: date, interval: timedelta, received: Iterable[datetime], until: datetime | None = None
) -> Completeness:
    """How many of a China-local ``day``'s intervals arrived. With ``until`` (the time judged
    at), a day still in progress expects only the intervals that have ended by then."""
    start, end = _day_bounds(day)
    if until is not None:
        end = max(start, min(end, until))
    expected = int((end - start) / interval)
    slots = {
        at
        for at in received
        if start <= at < start + expected * interval and not (at - start) % interval
    }
    return Completeness(day=day, expected=expected, received=len(slots))


def gaps(
    first: datetime, last_end: datetime, interval: timedelta, received: Iterable[datetime]
) -> list[Gap]:
    """The runs of missing intervals between ``first`` (an interval start) and ``last_end``."""
    seen = set(received)
    runs: list[Gap] = []
    run_start: datetime | None = None
    count = 0
    at = first
    while at < last_end:
        if at in seen:
            if run_start is not None:
                runs.append(Gap(run_start, at, count))
                run_start, count = None, 0
        else:
            run_start = run_start or at
            count += 1
        at += interval
    if run_start is not None:
        runs.append(Gap(run_start, at, count))
    return runs


def off_period_start(at: datetime, interval: timedelta) -> timedelta | None:
    """How far ``at`` is past its period's start (periods counted from China-local midnight);
    None when it is on a boundary, as a reading's timestamp should be."""
    day_start = window_start(at, WindowSize.DAY)
    offset = (at - day_start) % interval
    return offset or None


class MonthlyCheck(StrEnum):
    WITHIN = "within"
    OUTSIDE = "outside"
    NO_MONTHLY_FIGURE = "no_monthly_figure"


@dataclass(frozen=True)
class DailyVsMonthly:
    daily_sum: float
    monthly: float | None
    result: MonthlyCheck

    @property
    def deviation(self) -> float | None:
        if self.monthly is None or self.monthly == 0:
            return None
        return (self.daily_sum - self.monthly) / self.monthly


def daily_vs_monthly(daily_totals: Iterable[float], monthly: float | None) -> DailyVsMonthly:
    """The month's daily figures summed against its monthly figure: within 5% or not."""
    total = sum(daily_totals)
    if monthly is None:
        return DailyVsMonthly(total, None, MonthlyCheck.NO_MONTHLY_FIGURE)
    if monthly == 0:
        ok = total == 0
    else:
        ok = abs(total - monthly) / abs(monthly) <= DAILY_VS_MONTHLY_TOLERANCE
    return DailyVsMonthly(total, monthly, MonthlyCheck.WITHIN if ok else MonthlyCheck.OUTSIDE)


class OfflineLevel(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"  # silent for more than two intervals
    OVERDUE = "overdue"  # silent beyond the working days allowed to fix a link


@dataclass(frozen=True)
class Offline:
    since: datetime | None
    duration: timedelta
    working_days: int
    level: OfflineLevel


def offline(
    last_heard: datetime | None,
    now: datetime,
    interval: timedelta,
    calendar: ChinaCalendar,
    first_expected: datetime | None = None,
) -> Offline:
    """How long a device has been silent at ``now``. A device never heard from is silent since
    ``first_expected`` (when it should have started sending)."""
    since = last_heard if last_heard is not None else first_expected
    if since is None:
        return Offline(None, timedelta(0), 0, OfflineLevel.ONLINE)
    silent = max(timedelta(0), now - since)
    if silent <= 2 * interval:
        return Offline(since, silent, 0, OfflineLevel.ONLINE)
    days = calendar.working_days_between(
        since.astimezone(CHINA_STANDARD_TIME).date(), now.astimezone(CHINA_STANDARD_TIME).date()
    )
    level = OfflineLevel.OVERDUE if days > OFFLINE_WORKING_DAYS_ALLOWED else OfflineLevel.OFFLINE
    return Offline(since, silent, days, level)
