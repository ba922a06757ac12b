"""Industry profiles and GB/T 2589 coal factors: checked against DOMAIN.md §2 and §4."""

from datetime import date

import pytest
import yaml

from contracts.readings import READING_MODELS, EnergyType
from plans.coal_factors import CoalFactorError, CoalFactors, kgce_per_unit
from simulators.industries import (
    IndustryCatalogue,
    IndustryDataError,
    LimitLevel,
    OperatingPattern,
)

CATALOGUE = IndustryCatalogue.load()
PROFILES = CATALOGUE.profiles
PUBLIC_INSTITUTIONS = {"hospital", "school", "government"}
YUNCHENG_PLAN = "seeds/004"


def test_the_catalogue_has_every_industry_the_plans_name():
    assert set(CATALOGUE.codes) == {
        "steel",
        "cement",
        "coking",
        "ammonia",
        "methanol",
        "alumina",
        "aluminium",
        "coal_power",
        "data_centre",
        "hospital",
        "school",
        "government",
    }


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.code)
def test_every_energy_mix_sums_to_one(profile):
    assert abs(sum(profile.energy_mix.values()) - 1) < 1e-9
    assert EnergyType.WATER not in profile.energy_mix


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.code)
def test_every_band_is_positive_and_ordered(profile):
    low, high = profile.annual_tce_band
    assert 0 < low < high


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.code)
def test_enterprises_are_key_units_and_public_institutions_at_least_2000_tce(profile):
    low, _ = profile.annual_tce_band
    assert low >= (2_000 if profile.code in PUBLIC_INSTITUTIONS else 10_000)


def test_heavy_industry_runs_continuously_and_public_institutions_keep_office_hours():
    for profile in PROFILES:
        expected = (
            OperatingPattern.DAY_SHIFT
            if profile.code in PUBLIC_INSTITUTIONS
            else OperatingPattern.CONTINUOUS
        )
        assert profile.operating_pattern is expected, profile.code


def test_the_energy_mixes_have_each_industrys_character():
    mix = {profile.code: profile.energy_mix for profile in PROFILES}
    assert mix["aluminium"][EnergyType.ELECTRICITY] >= 0.9
    assert mix["data_centre"][EnergyType.ELECTRICITY] >= 0.99
    assert mix["data_centre"][EnergyType.DIESEL] > 0
    assert mix["steel"][EnergyType.COKE] + mix["steel"][EnergyType.RAW_COAL] > 0.8
    assert {EnergyType.ELECTRICITY, EnergyType.NATURAL_GAS, EnergyType.HEAT} <= set(mix["hospital"])


YUNCHENG_LIMITS = [
    ("steel", "crude_steel", None, 520),
    ("cement", "cement_clinker", None, 110),
    ("alumina", "alumina", None, 370),
    ("aluminium", "electrolytic_aluminium", None, 1640),
    ("ammonia", "synthetic_ammonia", "quality_anthracite_lump", 1150),
    ("ammonia", "synthetic_ammonia", "other_anthracite_briquette", 1320),
    ("ammonia", "synthetic_ammonia", "pulverised_coal", 1500),
    ("ammonia", "synthetic_ammonia", "natural_gas", 1050),
    ("methanol", "methanol", "anthracite", 1500),
    ("methanol", "methanol", "coke_oven_gas", 1300),
]


@pytest.mark.parametrize(("industry", "product", "route", "value"), YUNCHENG_LIMITS)
def test_products_carry_the_yuncheng_limits_from_domain_md(industry, product, route, value):
    limits = [
        limit
        for limit in CATALOGUE[industry].product(product).limits
        if limit.scope == "yuncheng" and limit.route == route
    ]
    assert [(limit.level, limit.value, limit.unit) for limit in limits] == [
        (LimitLevel.LIMIT, value, "kgce/t")
    ]
    assert YUNCHENG_PLAN in limits[0].source


def test_coal_power_carries_the_300_gce_per_kwh_retrofit_line():
    (limit,) = CATALOGUE["coal_power"].product("power_supply").limits
    assert (limit.value, limit.unit, limit.scope) == (300, "kgce/MWh", "yuncheng")


NATIONAL_LEVELS = [
    ("cement", "cement_clinker", None, 100, 117, "kgce/t", True),
    ("steel", "hot_metal", None, 361, 435, "kgce/t", True),
    ("coking", "coke", "top_charged", 110, 135, "kgce/t", True),
    ("ammonia", "synthetic_ammonia", "natural_gas", 1000, 1200, "kgce/t", True),
    ("aluminium", "electrolytic_aluminium", None, 13_000, 13_350, "kWh/t", False),
]


@pytest.mark.parametrize(
    ("industry", "product", "route", "benchmark", "baseline", "unit", "verify"), NATIONAL_LEVELS
)
def test_national_benchmarks_and_baselines_carry_their_verify_flag(
    industry, product, route, benchmark, baseline, unit, verify
):
    national = {
        limit.level: limit
        for limit in CATALOGUE[industry].product(product).limits
        if limit.scope == "national" and limit.route == route
    }
    assert national[LimitLevel.BENCHMARK].value == benchmark
    assert national[LimitLevel.BASELINE].value == baseline
    assert {limit.unit for limit in national.values()} == {unit}
    assert {limit.verify for limit in national.values()} == {verify}


def test_a_product_applies_only_the_limits_of_its_own_route():
    ammonia = CATALOGUE["ammonia"].product("synthetic_ammonia")
    assert [limit.value for limit in ammonia.applicable_limits()] == [1500]


def test_product_output_follows_the_energy_its_unit_energy_covers():
    aluminium = CATALOGUE["aluminium"].product("electrolytic_aluminium")
    assert aluminium.output(1620.0) == pytest.approx(1000.0)
    hot_metal = CATALOGUE["steel"].product("hot_metal")
    assert hot_metal.output(390.0) == pytest.approx(680.0)


def catalogue_data_with(code: str, **changes: object) -> str:
    data = CATALOGUE.model_dump(mode="json")
    for profile in data["profiles"]:
        if profile["code"] == code:
            profile.update(changes)
    return yaml.safe_dump(data, allow_unicode=True)


def test_a_profile_whose_mix_does_not_sum_to_one_is_rejected_by_name():
    mix = {"coke": 0.6, "raw_coal": 0.33, "electricity": 0.11}
    with pytest.raises(IndustryDataError, match="steel: energy_mix sums to"):
        IndustryCatalogue.from_yaml(catalogue_data_with("steel", energy_mix=mix))


def test_a_profile_with_water_in_its_energy_mix_is_rejected():
    mix = {"electricity": 0.9, "water": 0.1}
    with pytest.raises(IndustryDataError, match="water is metered"):
        IndustryCatalogue.from_yaml(catalogue_data_with("data_centre", energy_mix=mix))


COAL_FACTORS = [
    (EnergyType.ELECTRICITY, 0.1229, "kWh"),
    (EnergyType.NATURAL_GAS, 1.2143, "m3"),
    (EnergyType.RAW_COAL, 714.3, "t"),
    (EnergyType.COKE, 971.4, "t"),
    (EnergyType.DIESEL, 1457.1, "t"),
    (EnergyType.HEAT, 34.12, "GJ"),
]


@pytest.mark.parametrize(("energy_type", "factor", "unit"), COAL_FACTORS)
def test_coal_factors_match_domain_md(energy_type, factor, unit):
    assert kgce_per_unit(energy_type, date(2025, 6, 1)) == (factor, unit)


def test_a_thousand_cubic_metres_of_natural_gas_is_1214_3_kgce():
    factor, unit = kgce_per_unit(EnergyType.NATURAL_GAS, date(2025, 6, 1))
    assert unit == "m3"
    assert 1000 * factor == pytest.approx(1214.3)


def test_every_factor_is_in_the_reading_contracts_physical_unit():
    for energy_type in EnergyType:
        if energy_type is EnergyType.WATER:
            continue
        _, unit = kgce_per_unit(energy_type, date(2025, 6, 1))
        assert unit == READING_MODELS[energy_type].physical_unit


def test_factors_are_dated_and_the_edition_in_force_is_used():
    factors = CoalFactors.load()
    assert factors.version_on(date(2021, 3, 31)).standard == "GB/T 2589-2008"
    assert factors.version_on(date(2021, 4, 1)).standard == "GB/T 2589-2020"
    with pytest.raises(CoalFactorError, match="no coal factors are in force"):
        factors.kgce_per_unit(EnergyType.ELECTRICITY, date(2000, 1, 1))


def test_water_is_metered_but_has_no_coal_factor():
    with pytest.raises(CoalFactorError, match="water"):
        kgce_per_unit(EnergyType.WATER, date(2025, 6, 1))
