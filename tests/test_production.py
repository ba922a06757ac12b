"""Production level: shifts, weekends, holidays, vacations, seasons and planned outages.

Instants are written in China Standard Time (``cst(...)``), as a plant's day is lived.
"""

import math
import random
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.identifiers import CHINA_STANDARD_TIME
from plans.cn_calendar import ChinaCalendar
from simulators.industries import IndustryCatalogue, OperatingPattern
from simulators.production import (
    Outage,
    mean_level,
    planned_outages,
    production_level,
    production_model,
    seasonal_factor,
    shift_shape,
)

CALENDAR = ChinaCalendar.load()
CATALOGUE = IndustryCatalogue.load()
PROFILES = CATALOGUE.profiles
CONTINUOUS = [p for p in PROFILES if p.operating_pattern is OperatingPattern.CONTINUOUS]
WITH_OUTAGES = [p for p in PROFILES if p.planned_outages_per_year > 0]


def cst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CHINA_STANDARD_TIME)


def level(code: str, at: datetime, outages: tuple[Outage, ...] = ()) -> float:
    return production_level(CATALOGUE[code], CALENDAR, at, outages)


def day_mean(code: str, d: date) -> float:
    start = cst(d.year, d.month, d.day)
    return sum(level(code, start + timedelta(minutes=15 * q)) for q in range(96)) / 96


@pytest.mark.parametrize("profile", CONTINUOUS, ids=lambda p: p.code)
def test_a_continuous_process_differs_by_less_than_10_percent_between_weekday_and_weekend(
    profile,
):
    wednesday, saturday = date(2025, 3, 12), date(2025, 3, 15)
    weekday, weekend = day_mean(profile.code, wednesday), day_mean(profile.code, saturday)
    assert abs(weekday - weekend) / weekday < 0.10


def test_a_government_building_works_office_hours_on_weekdays_only():
    weekday_day = level("government", cst(2025, 3, 12, 10))
    weekday_night = level("government", cst(2025, 3, 12, 3))
    weekend_day = level("government", cst(2025, 3, 15, 10))
    assert weekday_day >= 2 * weekend_day
    assert weekday_day >= 2 * weekday_night


def test_a_hospital_keeps_most_of_its_load_at_night():
    night, day = level("hospital", cst(2025, 3, 12, 3)), level("hospital", cst(2025, 3, 12, 10))
    assert 0.5 <= night / day <= 0.7


def test_a_make_up_working_sunday_is_a_working_day_for_a_government_building():
    makeup_sunday = level("government", cst(2025, 1, 26, 10))
    ordinary_sunday = level("government", cst(2025, 1, 19, 10))
    friday_before = level("government", cst(2025, 1, 24, 10))
    assert makeup_sunday >= 2 * ordinary_sunday
    assert makeup_sunday == pytest.approx(friday_before, rel=0.05)


def test_a_school_on_a_holiday_is_far_below_a_term_time_workday():
    national_day = level("school", cst(2025, 10, 2, 10))
    term_time = level("school", cst(2025, 10, 15, 10))
    assert national_day < 0.3 * term_time


def test_a_school_in_its_summer_vacation_is_below_term_time():
    vacation, term = level("school", cst(2025, 7, 23, 10)), level("school", cst(2025, 6, 18, 10))
    assert vacation < 0.5 * term


def test_cement_kilns_stop_in_the_northern_winter():
    assert day_mean("cement", date(2025, 1, 8)) < 0.4 * day_mean("cement", date(2025, 6, 11))


def test_a_continuous_plant_dips_at_the_shift_change():
    assert level("steel", cst(2025, 3, 12, 8)) < level("steel", cst(2025, 3, 12, 8, 15))


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.code)
def test_the_seasonal_factor_changes_smoothly_from_day_to_day(profile):
    days = [date(2025, 1, 1) + timedelta(days=n) for n in range(366)]
    factors = [seasonal_factor(profile, d) for d in days]
    assert max(abs(b - a) for a, b in pairwise(factors)) < 0.025


def test_a_planned_outage_drops_the_level_below_0_15_inside_it_and_not_outside():
    (outage,) = planned_outages(CATALOGUE["steel"], 2025, random.Random(7))
    outages = (outage,)
    inside = [outage.start + (outage.end - outage.start) * f for f in (0.0, 0.3, 0.99)]
    outside = [outage.start - timedelta(minutes=15), outage.end, outage.end + timedelta(days=1)]
    assert all(level("steel", at, outages) < 0.15 for at in inside)
    assert all(level("steel", at, outages) > 0.8 for at in outside)
    assert all(level("steel", at, outages) > 0 for at in inside)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.code)
@pytest.mark.parametrize("year", [2024, 2025, 2026, 2027])
def test_the_mean_level_over_a_year_is_one_within_2_percent(profile, year):
    assert mean_level(profile, CALENDAR, year) == pytest.approx(1.0, abs=0.02)


def test_the_mean_level_with_outages_is_the_mean_of_every_quarter_hours_level():
    # mean_level sums whole days from cached daily totals; this samples every quarter-hour.
    profile = CATALOGUE["ammonia"]
    outages = tuple(planned_outages(profile, 2025, random.Random(3)))
    assert outages
    start = cst(2025, 1, 1)
    samples = [
        production_level(profile, CALENDAR, start + timedelta(minutes=15 * q), outages)
        for q in range(365 * 96)
    ]
    expected = sum(samples) / len(samples)
    assert mean_level(profile, CALENDAR, 2025, outages) == pytest.approx(expected, rel=1e-9)
    assert mean_level(profile, CALENDAR, 2025, outages) < mean_level(profile, CALENDAR, 2025)


@pytest.mark.parametrize("profile", WITH_OUTAGES, ids=lambda p: p.code)
def test_the_same_seed_gives_the_same_outages(profile):
    first = planned_outages(profile, 2026, random.Random(42))
    assert first == planned_outages(profile, 2026, random.Random(42))
    others = [planned_outages(profile, 2026, random.Random(seed)) for seed in range(100)]
    assert any(other != first for other in others)


@settings(deadline=None)
@given(
    profile=st.sampled_from(WITH_OUTAGES),
    year=st.integers(min_value=2020, max_value=2030),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_outages_stay_inside_the_year_in_order_without_overlapping(profile, year, seed):
    outages = planned_outages(profile, year, random.Random(seed))
    shortest, longest = profile.outage_days
    assert len(outages) <= math.ceil(profile.planned_outages_per_year)
    for outage in outages:
        assert cst(year, 1, 1) <= outage.start < outage.end <= cst(year + 1, 1, 1)
        assert outage.start.tzinfo is UTC
        length_days = (outage.end - outage.start) / timedelta(days=1)
        assert shortest - 1 / 24 <= length_days <= longest + 1 / 24
        assert outage.reason == profile.outage_reason
    for earlier, later in pairwise(outages):
        assert earlier.end <= later.start


def test_steel_has_an_overhaul_every_year_and_a_data_centre_never_stops():
    assert len(planned_outages(CATALOGUE["steel"], 2025, random.Random(1))) == 1
    assert planned_outages(CATALOGUE["data_centre"], 2025, random.Random(1)) == []


def test_the_level_is_the_same_whatever_offset_names_the_instant():
    at = cst(2025, 5, 6, 9, 30)
    assert level("school", at) == level("school", at.astimezone(UTC))
    assert level("school", at) == level("school", at.astimezone(timezone(timedelta(hours=-5))))


def test_a_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        level("steel", datetime(2025, 5, 6, 9, 30))


def test_the_model_and_the_function_agree():
    model = production_model(CATALOGUE["hospital"], CALENDAR)
    at = cst(2026, 2, 17, 14)
    assert model.level(at) == level("hospital", at)


@given(
    profile=st.sampled_from(PROFILES),
    at=st.datetimes(
        min_value=datetime(2019, 1, 1),
        max_value=datetime(2031, 12, 31),
        timezones=st.sampled_from([UTC, CHINA_STANDARD_TIME, timezone(timedelta(hours=-7))]),
    ),
    outage_hours=st.lists(st.tuples(st.integers(-48, 48), st.integers(1, 24 * 40)), max_size=3),
)
def test_the_level_is_always_finite_and_above_zero(profile, at, outage_hours):
    outages = [
        Outage(at + timedelta(hours=offset), at + timedelta(hours=offset + length), "test")
        for offset, length in outage_hours
    ]
    value = production_level(profile, CALENDAR, at, outages)
    assert math.isfinite(value)
    assert value > 0


def test_a_two_shift_site_works_from_eight_to_midnight():
    two_shift = CATALOGUE["government"].model_copy(
        update={"operating_pattern": OperatingPattern.TWO_SHIFT, "working_hours": (8, 24)}
    )
    shape = shift_shape(two_shift)
    assert shape[22 * 4] == 1.0
    assert shape[3 * 4] == two_shift.night_level
    assert shape[7 * 4] < shape[8 * 4]


def test_an_outage_must_be_aware_and_end_after_it_starts():
    start = cst(2025, 5, 1)
    with pytest.raises(ValueError, match="end after it starts"):
        Outage(start, start, "nothing")
    with pytest.raises(ValueError, match="timezone-aware"):
        Outage(start.replace(tzinfo=None), start + timedelta(days=1), "naive")
