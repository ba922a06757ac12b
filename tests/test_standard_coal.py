"""Standard-coal accounting, factor by factor against DOMAIN.md §4 (GB/T 2589, 当量值)."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.readings import EnergyType
from plans.coal_factors import CoalFactorError, CoalFactors
from stream.standard_coal import StandardCoal, china_date

COAL = StandardCoal(CoalFactors.load())
AT = datetime(2026, 3, 2, 8, tzinfo=UTC)

# DOMAIN.md §4, kgce per physical unit, converted to the contracts' units
DOMAIN_FACTORS = {
    EnergyType.ELECTRICITY: (0.1229, "kWh"),
    EnergyType.NATURAL_GAS: (1.2143, "m3"),
    EnergyType.RAW_COAL: (714.3, "t"),
    EnergyType.COKE: (971.4, "t"),
    EnergyType.STEAM: (128.6, "t"),
    EnergyType.HEAT: (34.12, "GJ"),
    EnergyType.DIESEL: (1457.1, "t"),
}


@pytest.mark.parametrize(("energy_type", "expected"), sorted(DOMAIN_FACTORS.items()))
def test_each_factor_is_the_one_domain_md_gives(energy_type, expected):
    factor, unit = expected
    amount = COAL.convert(energy_type, 1000.0, AT)
    assert amount is not None
    assert amount.physical_unit == unit
    assert amount.tce == pytest.approx(factor)  # 1000 units x kgce/unit / 1000 = factor tce
    assert amount.physical == 1000.0


def test_a_million_kwh_is_122_9_tce_and_about_302_at_the_equal_value():
    amount = COAL.convert(EnergyType.ELECTRICITY, 1_000_000.0, AT)
    assert amount.tce == pytest.approx(122.9)
    assert amount.tce_equivalent == pytest.approx(302.0)
    assert amount.standard == "GB/T 2589-2020"


def test_water_is_not_energy():
    assert COAL.convert(EnergyType.WATER, 500.0, AT) is None


def test_excluded_meters_are_converted_but_not_counted():
    for reason in ("renewable", "feedstock", "listed_project"):
        amount = COAL.convert(EnergyType.NATURAL_GAS, 100.0, AT, exclusion=reason)
        assert amount.counted is False
        assert amount.exclusion == reason
        assert amount.tce == pytest.approx(0.12143)
    assert COAL.convert(EnergyType.NATURAL_GAS, 100.0, AT).counted is True


def test_the_edition_in_force_on_the_china_local_date_is_used():
    before = COAL.convert(EnergyType.COKE, 1.0, datetime(2021, 3, 31, 15, 59, tzinfo=UTC))
    after = COAL.convert(EnergyType.COKE, 1.0, datetime(2021, 3, 31, 16, 0, tzinfo=UTC))
    assert before.standard == "GB/T 2589-2008"  # 23:59 on 31 March in China
    assert after.standard == "GB/T 2589-2020"  # 00:00 on 1 April in China


def test_nothing_converts_before_the_first_edition():
    with pytest.raises(CoalFactorError, match="no coal factors"):
        COAL.convert(EnergyType.COKE, 1.0, datetime(2000, 1, 1, tzinfo=UTC))


@given(
    st.datetimes(
        min_value=datetime(2010, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    )
)
def test_the_china_date_is_the_utc_date_eight_hours_later(at):
    assert china_date(at) == (at.replace(tzinfo=None) + timedelta(hours=8)).date()


@given(st.sampled_from(sorted(DOMAIN_FACTORS)), st.floats(min_value=0, max_value=1e9))
def test_conversion_is_linear_and_never_negative(energy_type, quantity):
    amount = COAL.convert(energy_type, quantity, AT)
    assert amount.tce >= 0
    assert amount.tce == pytest.approx(quantity * DOMAIN_FACTORS[energy_type][0] / 1000)
