"""Data-quality rules of the national platform (DOMAIN.md §5), as pure checks."""

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.identifiers import CHINA_STANDARD_TIME
from plans.cn_calendar import ChinaCalendar
from stream.data_quality import (
    MonthlyCheck,
    OfflineLevel,
    completeness,
    daily_vs_monthly,
    gaps,
    off_period_start,
    offline,
)

Q = timedelta(minutes=15)
DAY = date(2026, 3, 2)  # a Monday
DAY_START = datetime(2026, 3, 2, tzinfo=CHINA_STANDARD_TIME)
CALENDAR = ChinaCalendar.load()


def quarters(count: int, skip: frozenset[int] | set[int] = frozenset()) -> list[datetime]:
    return [DAY_START + i * Q for i in range(count) if i not in skip]


def test_a_full_day_is_complete_and_nine_missing_quarters_break_the_90_percent_rule():
    assert completeness(DAY, Q, quarters(96)).ratio == 1.0
    assert completeness(DAY, Q, quarters(96, skip=set(range(9)))).meets_rule  # 87/96 = 90.6%
    broken = completeness(DAY, Q, quarters(96, skip=set(range(10))))  # 86/96 = 89.6%
    assert not broken.meets_rule
    assert (broken.expected, broken.received) == (96, 86)


def test_duplicates_other_days_and_off_boundary_stamps_do_not_count_toward_completeness():
    received = quarters(48) + quarters(48) + [DAY_START - Q, DAY_START + timedelta(minutes=7)]
    assert completeness(DAY, Q, received).received == 48


def test_a_day_in_progress_expects_only_the_intervals_already_over():
    noon = DAY_START + timedelta(hours=12)
    result = completeness(DAY, Q, quarters(48), until=noon)
    assert result.expected == 48
    assert result.meets_rule


def test_gaps_come_back_as_runs_with_their_bounds():
    #  00:00 00:15 00:30 00:45 01:00 01:15
    #    x     .     .     x     .     x      (x received, . missing)
    received = [DAY_START, DAY_START + 3 * Q, DAY_START + 5 * Q]
    runs = gaps(DAY_START, DAY_START + 6 * Q, Q, received)
    assert [(g.start, g.end, g.intervals) for g in runs] == [
        (DAY_START + Q, DAY_START + 3 * Q, 2),
        (DAY_START + 4 * Q, DAY_START + 5 * Q, 1),
    ]


@given(st.sets(st.integers(min_value=0, max_value=95)))
def test_gaps_and_received_intervals_account_for_every_interval(missing):
    runs = gaps(DAY_START, DAY_START + 96 * Q, Q, quarters(96, skip=missing))
    assert sum(g.intervals for g in runs) == len(missing)


def test_timestamps_off_the_period_start_are_measured_from_china_midnight():
    assert off_period_start(DAY_START + 2 * Q, Q) is None
    assert off_period_start(DAY_START + 2 * Q + timedelta(seconds=40), Q) == timedelta(seconds=40)
    # a day period starts at 00:00 China time, which is 16:00 UTC
    assert off_period_start(datetime(2026, 3, 1, 16, tzinfo=UTC), timedelta(days=1)) is None
    assert off_period_start(datetime(2026, 3, 2, 0, tzinfo=UTC), timedelta(days=1)) == timedelta(
        hours=8
    )


@pytest.mark.parametrize(
    ("daily", "monthly", "expected"),
    [
        ([100.0] * 31, 3100.0, MonthlyCheck.WITHIN),
        ([100.0] * 31, 3255.0, MonthlyCheck.WITHIN),  # 4.8% under
        ([100.0] * 31, 3300.0, MonthlyCheck.OUTSIDE),  # 6.1% under
        ([100.0] * 31, None, MonthlyCheck.NO_MONTHLY_FIGURE),
        ([0.0] * 31, 0.0, MonthlyCheck.WITHIN),
    ],
)
def test_daily_sums_must_be_within_five_percent_of_the_monthly_figure(daily, monthly, expected):
    assert daily_vs_monthly(daily, monthly).result is expected


def test_a_link_broken_on_friday_is_overdue_on_the_fourth_working_day():
    friday_morning = datetime(2026, 3, 6, 9, tzinfo=CHINA_STANDARD_TIME)
    wednesday = datetime(2026, 3, 11, 9, tzinfo=CHINA_STANDARD_TIME)
    thursday = datetime(2026, 3, 12, 9, tzinfo=CHINA_STANDARD_TIME)
    assert offline(friday_morning, wednesday, Q, CALENDAR).level is OfflineLevel.OFFLINE
    late = offline(friday_morning, thursday, Q, CALENDAR)
    assert late.level is OfflineLevel.OVERDUE
    assert late.working_days == 4
    assert late.duration == timedelta(days=6)


def test_a_device_that_sent_recently_is_online_and_one_never_heard_from_counts_from_its_start():
    now = DAY_START + timedelta(hours=10)
    assert offline(now - Q, now, Q, CALENDAR).level is OfflineLevel.ONLINE
    never = offline(None, now, Q, CALENDAR, first_expected=DAY_START)
    assert never.level is OfflineLevel.OFFLINE
    assert never.duration == timedelta(hours=10)


def test_holidays_do_not_count_as_working_days_offline():
    # Spring Festival 2026: silent from the eve's morning through the holiday week
    before = datetime(2026, 2, 13, 9, tzinfo=CHINA_STANDARD_TIME)
    after = datetime(2026, 2, 23, 9, tzinfo=CHINA_STANDARD_TIME)
    result = offline(before, after, Q, CALENDAR)
    assert result.working_days < (after - before).days
