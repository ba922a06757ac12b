"""China's working-day calendar: published holidays, 调休 make-up days, working-day counts."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plans.cn_calendar import (
    ESTIMATE_SOURCE,
    CalendarDataError,
    ChinaCalendar,
    DayKind,
)

CALENDAR = ChinaCalendar.load()

table_dates = st.dates(min_value=date(2023, 12, 1), max_value=date(2028, 1, 31))


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def test_the_2025_spring_festival_runs_from_the_eve_to_the_eighth_day():
    assert all(
        CALENDAR.day_kind(d) is DayKind.HOLIDAY for d in days(date(2025, 1, 28), date(2025, 2, 4))
    )
    assert CALENDAR.day_kind(date(2025, 1, 27)) is DayKind.WORKDAY
    assert CALENDAR.day_kind(date(2025, 2, 5)) is DayKind.WORKDAY


def test_sunday_26_january_and_saturday_8_february_2025_are_make_up_working_days():
    for d in (date(2025, 1, 26), date(2025, 2, 8)):
        assert d.weekday() >= 5
        assert CALENDAR.day_kind(d) is DayKind.MAKEUP_WORKDAY
        assert CALENDAR.is_working_day(d)


def test_national_day_2024_is_seven_days_off_made_up_on_two_weekend_days():
    assert all(
        CALENDAR.day_kind(d) is DayKind.HOLIDAY for d in days(date(2024, 10, 1), date(2024, 10, 7))
    )
    assert CALENDAR.day_kind(date(2024, 9, 29)) is DayKind.MAKEUP_WORKDAY
    assert CALENDAR.day_kind(date(2024, 10, 12)) is DayKind.MAKEUP_WORKDAY
    assert not CALENDAR.is_working_day(date(2024, 10, 7))


def test_the_published_2026_spring_festival_is_nine_days():
    assert all(
        CALENDAR.day_kind(d) is DayKind.HOLIDAY for d in days(date(2026, 2, 15), date(2026, 2, 23))
    )
    assert CALENDAR.day_kind(date(2026, 2, 28)) is DayKind.MAKEUP_WORKDAY


def test_working_days_between_skips_the_holiday_and_counts_the_make_up_days():
    # Fri 24 Jan 2025 -> Mon 10 Feb: Sun 26 (make-up), Mon 27, Wed 5 to Fri 7 Feb,
    # Sat 8 (make-up) and Mon 10; 28 Jan to 4 Feb are off.
    assert CALENDAR.working_days_between(date(2025, 1, 24), date(2025, 2, 10)) == 7
    assert CALENDAR.working_days_between(date(2025, 2, 10), date(2025, 1, 24)) == -7
    assert CALENDAR.working_days_between(date(2025, 3, 3), date(2025, 3, 3)) == 0


def test_a_link_broken_on_friday_or_saturday_is_overdue_after_three_working_days_on_thursday():
    friday, saturday = date(2025, 3, 7), date(2025, 3, 8)
    wednesday, thursday = date(2025, 3, 12), date(2025, 3, 13)
    for broken in (friday, saturday):
        assert CALENDAR.working_days_between(broken, wednesday) == 3
        assert CALENDAR.working_days_between(broken, thursday) == 4
        assert CALENDAR.add_working_days(broken, 3) == wednesday


def test_each_year_loses_exactly_its_statutory_holidays_in_net_working_days():
    # 11 statutory days before the 2025 amendment, 13 from 2025; the 调休 arrangement moves
    # days around but never changes the number of working days lost.
    for year, statutory in ((2024, 11), (2025, 13), (2026, 13), (2027, 13)):
        weekdays = [d for d in days(date(year, 1, 1), date(year, 12, 31)) if d.weekday() < 5]
        workdays = sum(
            1 for d in days(date(year, 1, 1), date(year, 12, 31)) if CALENDAR.is_working_day(d)
        )
        assert len(weekdays) - workdays == statutory, year


def test_2027_is_marked_as_a_statutory_rule_estimate_and_the_published_years_are_not():
    assert CALENDAR.year_source(2027) == ESTIMATE_SOURCE
    for year in (2024, 2025, 2026):
        source = CALENDAR.year_source(year)
        assert source is not None
        assert "国办发明电" in source


def test_dates_outside_the_table_fall_back_to_weekdays_and_weekends():
    assert CALENDAR.year_source(2030) is None
    assert CALENDAR.day_kind(date(2030, 10, 1)) is DayKind.WORKDAY  # a Tuesday, no holiday
    assert CALENDAR.day_kind(date(2030, 10, 5)) is DayKind.WEEKEND


def test_a_holiday_table_with_an_unparsable_date_is_rejected_saying_where_and_what():
    text = """
years:
  2025:
    source: test
    holidays:
      - name_en: Spring Festival
        name_zh: 春节
        first_day_off: 2025-02-30
        last_day_off: 2025-03-02
"""
    with pytest.raises(CalendarDataError) as raised:
        ChinaCalendar.from_yaml(text, source="bad.yaml")
    message = str(raised.value)
    assert "bad.yaml" in message
    assert "years.2025.holidays.0.first_day_off" in message
    assert "2025-02-30" in message
    assert "valid date" in message


def test_a_make_up_working_day_on_a_weekday_is_rejected():
    data = {
        "years": {
            2025: {
                "source": "test",
                "holidays": [
                    {
                        "name_en": "Labour Day",
                        "name_zh": "劳动节",
                        "first_day_off": "2025-05-01",
                        "last_day_off": "2025-05-05",
                        "makeup_workdays": ["2025-04-29"],
                    }
                ],
            }
        }
    }
    with pytest.raises(CalendarDataError, match="2025-04-29 is not a weekend day"):
        ChinaCalendar.from_data(data)


def test_a_date_listed_by_two_holidays_is_rejected():
    holiday = {"name_zh": "节", "first_day_off": "2025-05-01", "last_day_off": "2025-05-02"}
    data = {
        "years": {
            2025: {
                "source": "test",
                "holidays": [{"name_en": "A", **holiday}, {"name_en": "B", **holiday}],
            }
        }
    }
    with pytest.raises(CalendarDataError, match="listed by both"):
        ChinaCalendar.from_data(data)


@given(table_dates, st.integers(min_value=0, max_value=60))
def test_adding_n_working_days_is_n_working_days_between(start, n):
    end = CALENDAR.add_working_days(start, n)
    assert CALENDAR.working_days_between(start, end) == n
    assert n == 0 or CALENDAR.is_working_day(end)


@given(table_dates, table_dates, table_dates)
def test_working_days_between_adds_up_over_consecutive_stretches(a, b, c):
    assert CALENDAR.working_days_between(a, b) + CALENDAR.working_days_between(
        b, c
    ) == CALENDAR.working_days_between(a, c)
