"""Validation at the edge: every rejection reason is reachable and says what was wrong."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.identifiers import uscc_check_character
from contracts.production import EnergyTotalReport, ProductOutputReport, ValueAddedReport
from contracts.readings import ElectricityReading, EnergyType
from ingest.report_validation import check_report
from ingest.validation import REJECTION_KINDS, Accepted, Rejection, check_reading
from plans.register import EnterpriseEntry, MeterEntry, Register

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
A = "91350100M000100Y43"
B = "91140882MA0K1234X" + uscc_check_character("91140882MA0K1234X")
REGISTER = Register(
    name="test",
    enterprises=(
        EnterpriseEntry(code=A, name="A", city="x", county="140802", industry="steel"),
        EnterpriseEntry(code=B, name="B", city="x", county="140802", industry="cement"),
    ),
    meters=(
        MeterEntry(meter_id="A-EL", enterprise_code=A, energy_type=EnergyType.ELECTRICITY),
        MeterEntry(meter_id="A-CK", enterprise_code=A, energy_type=EnergyType.COKE),
        MeterEntry(meter_id="B-EL", enterprise_code=B, energy_type=EnergyType.ELECTRICITY),
    ),
)
GOOD = {
    "meter_id": "A-EL",
    "period_start": "2026-03-02T15:45:00+08:00",
    "interval_seconds": 900,
    "unit": "kWh",
    "value": 1234.5,
}


def check(item, sender: str | None = A):
    return check_reading(item, register=REGISTER, sender=sender, now=NOW, source="https")


def test_a_good_reading_becomes_the_contract_reading():
    result = check(GOOD)
    assert isinstance(result, Accepted)
    assert result.reading == ElectricityReading(
        enterprise_code=A,
        meter_id="A-EL",
        period_start=datetime(2026, 3, 2, 7, 45, tzinfo=UTC),
        consumption_kwh=1234.5,
        source="https",
    )


def test_convertible_units_and_numbers_as_strings_are_accepted():
    result = check({**GOOD, "unit": "MWh", "value": "1.5", "counter": "2000"})
    assert isinstance(result, Accepted)
    assert result.reading.physical_quantity == 1500.0
    assert result.reading.physical_counter == 2_000_000.0
    coke = check({**GOOD, "meter_id": "A-CK", "unit": "kg", "value": 2500})
    assert isinstance(coke, Accepted)
    assert coke.reading.physical_quantity == 2.5


def test_a_timestamp_without_offset_is_taken_as_china_time_with_a_warning():
    result = check({**GOOD, "period_start": "2026-03-02T15:45:00"})
    assert isinstance(result, Accepted)
    assert result.reading.period_start == datetime(2026, 3, 2, 7, 45, tzinfo=UTC)
    assert "China Standard Time" in result.warnings[0]


CASES = {
    "wrong_schema": ({**GOOD, "colour": "red"}, "colour"),
    "unknown_meter": ({**GOOD, "meter_id": "NOPE"}, "NOPE is not in the register"),
    "not_your_meter": ({**GOOD, "meter_id": "B-EL"}, "belongs to another enterprise"),
    "wrong_unit": ({**GOOD, "unit": "GJ"}, "use one of kwh, mwh, wh"),
    "not_numeric": ({**GOOD, "value": "lots"}, "'lots'"),
    "negative": ({**GOOD, "value": -3}, "never negative"),
    "out_of_range": ({**GOOD, "value": 9e9}, "beyond any single electricity meter"),
    "bad_timestamp": ({**GOOD, "period_start": "yesterday"}, "not ISO 8601"),
    "future_timestamp": ({**GOOD, "period_start": "2026-03-03T00:00:00+08:00"}, "in the future"),
    "too_old": ({**GOOD, "period_start": "2024-01-01T00:00:00+08:00"}, "days old"),
    "bad_interval": ({**GOOD, "interval_seconds": 7}, "not one of"),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_every_rejection_kind_is_reachable_with_a_precise_reason(kind):
    item, words = CASES[kind]
    result = check(item)
    assert isinstance(result, Rejection)
    assert result.kind == kind
    assert words in result.reason


def test_the_cases_cover_every_kind_readings_can_be_refused_for():
    assert set(CASES) | {"bad_period"} == set(REJECTION_KINDS)


def test_a_number_too_large_for_a_float_is_not_numeric_and_not_quoted_whole():
    result = check({**GOOD, "value": 10**400})
    assert isinstance(result, Rejection)
    assert result.kind == "not_numeric"
    assert len(result.reason) < 100


def test_device_channels_without_a_sender_may_write_any_registered_meter():
    assert isinstance(check({**GOOD, "meter_id": "B-EL"}, sender=None), Accepted)


@given(
    st.dictionaries(
        st.sampled_from([*sorted(GOOD), "counter", "x"]),
        st.one_of(
            st.none(),
            st.integers(),
            st.floats(),
            st.text(max_size=30),
            st.booleans(),
            st.lists(st.integers(), max_size=2),
        ),
    )
)
def test_any_item_is_either_accepted_or_rejected_with_a_known_kind(item):
    result = check({**GOOD, **item})
    assert isinstance(result, Accepted) or result.kind in REJECTION_KINDS


def report(**fields):
    return check_report(fields, enterprise_code=A, now=NOW)


def test_a_daily_energy_total_in_mwh_becomes_kwh_in_the_contract():
    result = report(
        kind="energy_total",
        period="day",
        period_start="2026-03-01T00:00:00+08:00",
        energy_type="electricity",
        value=12.5,
        unit="MWh",
    )
    assert not isinstance(result, Rejection)
    total, warnings = result
    assert isinstance(total, EnergyTotalReport)
    assert total.consumption_kwh == 12_500.0
    assert warnings == ()


def test_a_period_start_within_tolerance_is_moved_onto_the_boundary():
    result = report(
        kind="product_output",
        period="day",
        period_start="2026-03-01T00:00:40+08:00",
        product_code="cement_clinker",
        value=3000,
        unit="t",
    )
    assert not isinstance(result, Rejection)
    output, warnings = result
    assert isinstance(output, ProductOutputReport)
    assert output.period_start == datetime(2026, 2, 28, 16, tzinfo=UTC)
    assert "moved" in warnings[0]


def test_a_month_may_start_a_day_early_but_not_two():
    early = report(
        kind="value_added",
        period="month",
        period_start="2026-02-28T08:00:00+08:00",
        value=500,
        unit="10^4 CNY",
    )
    assert not isinstance(early, Rejection)
    assert isinstance(early[0], ValueAddedReport)
    assert early[0].value_added_cny == 5_000_000.0
    late = report(
        kind="value_added",
        period="month",
        period_start="2026-02-27T00:00:00+08:00",
        value=500,
        unit="CNY",
    )
    assert isinstance(late, Rejection)
    assert late.kind == "bad_period"


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        (
            {
                "kind": "energy_total",
                "period": "day",
                "period_start": "2026-03-01T00:00:00+08:00",
                "energy_type": "electricity",
                "value": 5,
                "unit": "t",
            },
            "wrong_unit",
        ),
        (
            {
                "kind": "weather",
                "period": "day",
                "period_start": "2026-03-01T00:00:00+08:00",
                "value": 5,
                "unit": "t",
            },
            "wrong_schema",
        ),
        (
            {
                "kind": "output_value",
                "period": "day",
                "period_start": "2026-03-01T00:00:00+08:00",
                "value": 5,
                "unit": "CNY",
            },
            "bad_period",
        ),
        (
            {
                "kind": "energy_total",
                "period": "day",
                "period_start": "2026-03-01T09:00:00+08:00",
                "energy_type": "electricity",
                "value": 5,
                "unit": "kWh",
            },
            "bad_period",
        ),
        (
            {
                "kind": "product_output",
                "period": "day",
                "period_start": "2026-03-01T00:00:00+08:00",
                "product_code": "Bad Code!",
                "value": 5,
                "unit": "t",
            },
            "wrong_schema",
        ),
    ],
)
def test_bad_reports_are_refused_for_the_right_reason(fields, kind):
    result = report(**fields)
    assert isinstance(result, Rejection)
    assert result.kind == kind
    assert result.reason
