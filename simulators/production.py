"""Production level over time: shifts, weekends, holidays, seasons and planned outages.

``production_level`` is the relative production (and energy) intensity of a unit of one
industry at an instant, normalised so that its mean over the calendar's table years, with no
outages, is 1.0. A generator scales interval consumption by it::

    kwh = annual_tce * mix[electricity] * 1000 / 0.1229 * level / (mean_level * 35_040)

where ``mean_level`` (the mean over the simulated year, outages included) makes the year's
total hit the annual target exactly in expectation.

How a level is made (China local time, UTC+8):

- the shift shape at the quarter-hour (``shift_shape``): continuous plants run flat with a
  slight night dip and short dips at the 00:00/08:00/16:00 shift changes; day and two-shift
  sites are high in working hours with a one-hour ramp each side and a base load at night;
- the day's factor: 1 on working days (make-up working days included), ``weekend_factor`` or
  ``holiday_factor`` otherwise, and at most ``vacation_factor`` in a school's vacations. A
  continuous plant scales the whole day by it; a day or two-shift site caps its level at it,
  so an empty building sits at its base load all day;
- the seasonal factor, interpolated linearly between the monthly values at month midpoints;
- a planned outage multiplies the level by ``outage_level`` (0.05-0.1): never exactly zero.

Speed: the shape is precomputed per profile (96 quarter-hours) and each local day's factors
once per day, so a call costs a timestamp, two dict lookups and a few float operations.
"""

import math
import random
from calendar import monthrange
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Final

from contracts.identifiers import CHINA_STANDARD_TIME
from plans.cn_calendar import ChinaCalendar, DayKind
from simulators.industries import IndustryProfile, OperatingPattern

QUARTERS_PER_DAY: Final = 96
_QUARTER_SECONDS: Final = 900
_DAY_SECONDS: Final = 86_400
_CST_OFFSET_SECONDS: Final = 8 * 3600
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
#: Normalise on this year when the calendar covers none.
_REFERENCE_YEAR: Final = 2025


@dataclass(frozen=True)
class Outage:
    """A planned stop of the whole unit, ``start`` (inclusive) to ``end`` (exclusive)."""

    start: datetime
    end: datetime
    reason: str

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("an outage's start and end must be timezone-aware")
        if not self.start < self.end:
            raise ValueError(f"an outage must end after it starts: {self.start} .. {self.end}")

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end


def shift_shape(profile: IndustryProfile) -> tuple[float, ...]:
    """The level in each China-local quarter-hour of a working day, before any factor (≤ 1)."""
    night = profile.night_level
    if profile.operating_pattern is OperatingPattern.CONTINUOUS:
        shape = []
        for quarter in range(QUARTERS_PER_DAY):
            hour = (quarter + 0.5) / 4
            dip = (1 - night) * (0.5 + 0.5 * math.cos(2 * math.pi * (hour - 3) / 24))
            shape.append(1 - dip)
        for shift_change in (0, 32, 64):  # 00:00, 08:00, 16:00
            shape[shift_change] *= profile.shift_change_dip
        return tuple(shape)

    start, end = profile.working_hours_or_default()
    shape = [night] * QUARTERS_PER_DAY
    for quarter in range(start * 4, end * 4):
        shape[quarter] = 1.0
    for step in range(4):  # a one-hour ramp on each side: 20%, 40%, 60%, 80% of the way
        ramp = night + (1 - night) * (step + 1) / 5
        if start > 0:
            shape[start * 4 - 4 + step] = ramp
        if end < 24:
            shape[end * 4 + 3 - step] = ramp
    if profile.operating_pattern is OperatingPattern.TWO_SHIFT:
        shape[(start + end) * 2] *= profile.shift_change_dip
    return tuple(shape)


def seasonal_factor(profile: IndustryProfile, d: date) -> float:
    """The monthly factor of ``d``'s month, interpolated towards the neighbouring month."""
    month = d.month - 1
    days = monthrange(d.year, d.month)[1]
    position = d.day - 0.5 - days / 2  # days from this month's midpoint
    if position >= 0:
        neighbour_days = monthrange(d.year + (d.month == 12), d.month % 12 + 1)[1]
        neighbour = profile.seasonal[(month + 1) % 12]
    else:
        previous_month = 12 if d.month == 1 else d.month - 1
        neighbour_days = monthrange(d.year - (d.month == 1), previous_month)[1]
        neighbour = profile.seasonal[(month - 1) % 12]
    weight = abs(position) / (days / 2 + neighbour_days / 2)
    return profile.seasonal[month] * (1 - weight) + neighbour * weight


def day_factor(profile: IndustryProfile, calendar: ChinaCalendar, d: date) -> float:
    """The day's activity relative to a working day (make-up working days count as work)."""
    kind = calendar.day_kind(d)
    if kind is DayKind.WEEKEND:
        factor = profile.weekend_factor
    elif kind is DayKind.HOLIDAY:
        factor = profile.holiday_factor
    else:
        factor = 1.0
    if profile.vacations and profile.in_vacation(d):
        factor = min(factor, profile.vacation_factor)
    return factor


class ProductionModel:
    """One profile under one calendar, precomputed for fast repeated ``level`` calls.

    Per-day factors are cached by China-local day as they are first asked for (two floats a
    day), so a long simulation holds a few kilobytes per profile and simulated year.
    """

    def __init__(self, profile: IndustryProfile, calendar: ChinaCalendar) -> None:
        self.profile = profile
        self.calendar = calendar
        self._shape = shift_shape(profile)
        self._capped = profile.operating_pattern is not OperatingPattern.CONTINUOUS
        self._outage_level = profile.outage_level
        self._cap_sums: dict[float, float] = {}
        self._days: dict[int, tuple[float, float]] = {}
        # Measure the unnormalised mean first, then drop the days cached on that scale.
        self._normaliser = 1.0
        reference_years = calendar.years or (_REFERENCE_YEAR,)
        self._normaliser = sum(self._year_mean(year, ()) for year in reference_years) / len(
            reference_years
        )
        self._days.clear()

    def level(self, at: datetime, outages: Sequence[Outage] = ()) -> float:
        """The normalised level at ``at`` (timezone-aware), inside ``outages`` or not."""
        if at.tzinfo is None:
            raise ValueError("production_level needs a timezone-aware datetime")
        local = at.timestamp() + _CST_OFFSET_SECONDS
        day = int(local // _DAY_SECONDS)
        factors = self._days.get(day)
        if factors is None:
            factors = self._day_factors(day)
        cap, scale = factors
        level = min(self._shape[int(local - day * _DAY_SECONDS) // _QUARTER_SECONDS], cap) * scale
        for outage in outages:
            if outage.start <= at < outage.end:
                return level * self._outage_level
        return level

    def mean_level(self, year: int, outages: Sequence[Outage] = ()) -> float:
        """The mean of ``level`` at every quarter-hour start of China-local ``year``."""
        return self._year_mean(year, outages)

    def _day_factors(self, day: int) -> tuple[float, float]:
        d = date.fromordinal(day + _EPOCH_ORDINAL)
        factor = day_factor(self.profile, self.calendar, d)
        seasonal = seasonal_factor(self.profile, d) / self._normaliser
        factors = (factor, seasonal) if self._capped else (1.0, factor * seasonal)
        self._days[day] = factors
        return factors

    def _day_sum(self, day: int) -> float:
        cap, scale = self._days.get(day) or self._day_factors(day)
        total = self._cap_sums.get(cap)
        if total is None:
            total = math.fsum(min(value, cap) for value in self._shape)
            self._cap_sums[cap] = total
        return total * scale

    def _year_mean(self, year: int, outages: Sequence[Outage]) -> float:
        first = date(year, 1, 1).toordinal() - _EPOCH_ORDINAL
        last = date(year, 12, 31).toordinal() - _EPOCH_ORDINAL
        spans = [(o.start.timestamp(), o.end.timestamp(), o) for o in outages]
        total = 0.0
        for day in range(first, last + 1):
            start_ts = day * _DAY_SECONDS - _CST_OFFSET_SECONDS
            end_ts = start_ts + _DAY_SECONDS
            touching = [o for s, e, o in spans if s < end_ts and e > start_ts]
            if not touching:
                total += self._day_sum(day)
                continue
            if any(s <= start_ts and end_ts <= e for s, e, _o in spans):
                # a whole day inside an outage: every quarter at the outage level
                total += self._day_sum(day) * self._outage_level
                continue
            day_start = datetime.fromtimestamp(start_ts, UTC)
            for quarter in range(QUARTERS_PER_DAY):
                at = day_start + timedelta(seconds=quarter * _QUARTER_SECONDS)
                total += self.level(at, touching)
        return total / ((last - first + 1) * QUARTERS_PER_DAY)


@lru_cache(maxsize=256)
def production_model(profile: IndustryProfile, calendar: ChinaCalendar) -> ProductionModel:
    """The (cached) model of ``profile`` under ``calendar``; call ``.level`` in hot loops."""
    return ProductionModel(profile, calendar)


def production_level(
    profile: IndustryProfile,
    calendar: ChinaCalendar,
    at: datetime,
    outages: Sequence[Outage] = (),
) -> float:
    """Relative production intensity of a ``profile`` unit at ``at`` (timezone-aware).

    Normalised so the mean over the calendar's table years without outages is 1.0; always
    finite and above zero.
    """
    return production_model(profile, calendar).level(at, outages)


def mean_level(
    profile: IndustryProfile,
    calendar: ChinaCalendar,
    year: int,
    outages: Sequence[Outage] = (),
) -> float:
    """The mean ``production_level`` over China-local ``year``, sampled every 15 minutes.

    The samples are the starts of the 15-minute reporting intervals a generator produces, so
    scaling by this mean hits an annual target exactly in expectation. (Quarter-hours rather
    than hours: hourly samples would land on every shift-change dip.) Cached.
    """
    return _cached_mean_level(profile, calendar, year, tuple(outages))


@lru_cache(maxsize=4096)
def _cached_mean_level(
    profile: IndustryProfile, calendar: ChinaCalendar, year: int, outages: tuple[Outage, ...]
) -> float:
    return production_model(profile, calendar).mean_level(year, outages)


def planned_outages(profile: IndustryProfile, year: int, rng: random.Random) -> list[Outage]:
    """The unit's planned outages in China-local ``year``, in order and not overlapping.

    ``planned_outages_per_year`` is the expected count (its fraction is a chance of one more);
    each lasts a random time in ``outage_days`` and starts at 08:00 local time on a random day
    of its own slice of the year, so outages never overlap. Same rng state, same outages.
    """
    expected = profile.planned_outages_per_year
    count = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
    if count == 0:
        return []
    year_start = datetime(year, 1, 1, tzinfo=CHINA_STANDARD_TIME)
    year_days = (datetime(year + 1, 1, 1, tzinfo=CHINA_STANDARD_TIME) - year_start).days
    slot_days = year_days / count
    shortest, longest = profile.outage_days
    outages = []
    for index in range(count):
        # a day's margin each side keeps outages inside their slice (and the year)
        duration_days = min(rng.uniform(shortest, longest), slot_days - 2)
        slot_start = index * slot_days
        latest_start = max(slot_start, slot_start + slot_days - duration_days - 2)
        start_day = math.ceil(rng.uniform(slot_start, latest_start))
        start = year_start + timedelta(days=start_day, hours=8)
        end = start + timedelta(hours=max(1, round(duration_days * 24)))
        outages.append(
            Outage(
                start=start.astimezone(UTC), end=end.astimezone(UTC), reason=profile.outage_reason
            )
        )
    return outages
