"""China's working-day calendar: weekends, public holidays and 调休 make-up working days.

The table (``data/cn_public_holidays.yaml``) holds each year's holidays as the State Council
General Office published them, or, for years not yet published, an estimate from the statutory
rules (marked ``source: statutory-rule estimate``). Dates in years outside the table fall back
to Monday–Friday working days and Saturday–Sunday weekends, with no holidays at all.

Dates are calendar dates in China Standard Time; turning an instant into one is the caller's
business (the simulators do it at the edge).
"""

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, Final, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

#: How an estimated year is marked in the table.
ESTIMATE_SOURCE: Final = "statutory-rule estimate"
_TABLE_FILE: Final = "cn_public_holidays.yaml"
_LONGEST_BREAK_DAYS: Final = 12


class DayKind(StrEnum):
    WORKDAY = "workday"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"
    #: A Saturday or Sunday worked instead of a weekday given off (调休上班).
    MAKEUP_WORKDAY = "makeup_workday"


class CalendarDataError(ValueError):
    """A holiday table that cannot be used, saying where and what is wrong."""


class Holiday(BaseModel):
    """One holiday break and the weekend days worked to make it up."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name_en: str = Field(min_length=1)
    name_zh: str = Field(min_length=1)
    first_day_off: date
    last_day_off: date
    makeup_workdays: tuple[date, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        span = (self.last_day_off - self.first_day_off).days + 1
        if not 1 <= span <= _LONGEST_BREAK_DAYS:
            raise ValueError(
                f"{self.name_en}: a break runs 1 to {_LONGEST_BREAK_DAYS} days, "
                f"not {self.first_day_off}..{self.last_day_off}"
            )
        for day in self.makeup_workdays:
            if day.weekday() < 5:
                raise ValueError(f"{self.name_en}: make-up working day {day} is not a weekend day")
            if self.first_day_off <= day <= self.last_day_off:
                raise ValueError(f"{self.name_en}: make-up working day {day} is inside the break")
        return self

    def days_off(self) -> list[date]:
        span = (self.last_day_off - self.first_day_off).days + 1
        return [self.first_day_off + timedelta(days=n) for n in range(span)]


class HolidayYear(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The notice the dates come from, or ``ESTIMATE_SOURCE``.
    source: str = Field(min_length=1)
    holidays: tuple[Holiday, ...]

    @property
    def is_estimate(self) -> bool:
        return self.source == ESTIMATE_SOURCE


class HolidayTable(BaseModel):
    """The whole table, checked: breaks start in their year and no date is listed twice."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    years: dict[int, HolidayYear]

    @model_validator(mode="after")
    def _no_date_twice(self) -> Self:
        seen: dict[date, str] = {}
        for year, entry in self.years.items():
            for holiday in entry.holidays:
                if holiday.first_day_off.year != year:
                    raise ValueError(
                        f"{year}: {holiday.name_en} starts on {holiday.first_day_off}, "
                        f"not in {year}"
                    )
                for day in [*holiday.days_off(), *holiday.makeup_workdays]:
                    if day in seen:
                        raise ValueError(
                            f"{day} is listed by both {seen[day]} and {year} {holiday.name_en}"
                        )
                    seen[day] = f"{year} {holiday.name_en}"
        return self


class _NoTimestampLoader(yaml.SafeLoader):
    """A safe loader that leaves dates as strings, so pydantic parses (and reports) them."""


_NoTimestampLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: {error.error_count()} problem(s) in the holiday table"]
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        lines.append(f"  {where}: {problem['msg']} (got {problem['input']!r})")
    return "\n".join(lines)


class ChinaCalendar:
    """Which dates are working days in mainland China.

    >>> calendar = ChinaCalendar.load()
    >>> calendar.day_kind(date(2025, 1, 26))
    <DayKind.MAKEUP_WORKDAY: 'makeup_workday'>
    """

    def __init__(self, table: HolidayTable) -> None:
        self._table = table
        self._special: dict[date, DayKind] = {}
        for entry in table.years.values():
            for holiday in entry.holidays:
                for day in holiday.days_off():
                    self._special[day] = DayKind.HOLIDAY
                for day in holiday.makeup_workdays:
                    self._special[day] = DayKind.MAKEUP_WORKDAY

    @classmethod
    def load(cls) -> "ChinaCalendar":
        """The packaged table (loaded once; the same instance every time)."""
        return _packaged_calendar()

    @classmethod
    def from_yaml(cls, text: str, source: str = "<yaml>") -> "ChinaCalendar":
        """A calendar from a table's YAML text; ``CalendarDataError`` if it is not valid."""
        try:
            data: Any = yaml.load(text, Loader=_NoTimestampLoader)  # noqa: S506 (a SafeLoader)
        except yaml.YAMLError as exc:
            raise CalendarDataError(f"{source}: not valid YAML: {exc}") from exc
        return cls.from_data(data, source)

    @classmethod
    def from_data(cls, data: Mapping[str, Any], source: str = "<data>") -> "ChinaCalendar":
        try:
            table = HolidayTable.model_validate(data)
        except ValidationError as exc:
            raise CalendarDataError(_describe(exc, source)) from exc
        return cls(table)

    @property
    def years(self) -> tuple[int, ...]:
        """The years the table covers, ascending."""
        return tuple(sorted(self._table.years))

    def year_source(self, year: int) -> str | None:
        """Where a year's dates come from, ``ESTIMATE_SOURCE``, or None outside the table."""
        entry = self._table.years.get(year)
        return entry.source if entry else None

    def holidays(self, year: int) -> tuple[Holiday, ...]:
        entry = self._table.years.get(year)
        return entry.holidays if entry else ()

    def day_kind(self, d: date) -> DayKind:
        """What kind of day ``d`` is; weekday/weekend only for years outside the table."""
        kind = self._special.get(d)
        if kind is not None:
            return kind
        return DayKind.WEEKEND if d.weekday() >= 5 else DayKind.WORKDAY

    def is_working_day(self, d: date) -> bool:
        """True for ordinary working days and make-up working days."""
        return self.day_kind(d) in (DayKind.WORKDAY, DayKind.MAKEUP_WORKDAY)

    def working_days_between(self, a: date, b: date) -> int:
        """Working days after ``a`` up to and including ``b`` (negative when ``b`` < ``a``).

        This is the count of working days that have *elapsed* since ``a`` by the end of ``b``:
        a link broken on Friday or on Saturday has had 3 working days on Wednesday, so a
        "fixed within 3 working days" rule is overdue once this exceeds 3.
        """
        if b < a:
            return -self.working_days_between(b, a)
        return sum(1 for day in _dates_after(a, b) if self.is_working_day(day))

    def add_working_days(self, d: date, n: int) -> date:
        """The ``n``-th working day after ``d`` (``d`` itself for 0)."""
        if n < 0:
            raise ValueError("n counts working days forward and cannot be negative")
        day = d
        while n > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                n -= 1
        return day


def _dates_after(a: date, b: date) -> Iterable[date]:
    for offset in range(1, (b - a).days + 1):
        yield a + timedelta(days=offset)


@cache
def _packaged_calendar() -> ChinaCalendar:
    text = resources.files("plans").joinpath("data", _TABLE_FILE).read_text("utf-8")
    return ChinaCalendar.from_yaml(text, source=_TABLE_FILE)
