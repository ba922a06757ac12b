"""Plans as data: the seed cities' targets, statistics and the extended register.

The expected numbers are written here from DOMAIN.md §2 (and the seeds it summarises), not read
from the YAML, so a slip in a plan file fails a test.
"""

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from energywatch.config_files import ConfigFileError, parse_yaml
from plans.register import (
    EnergyBudget,
    EnterpriseEntry,
    LimitLevel,
    Product,
    ProductEnergyLimit,
    Register,
    format_location,
    load_register,
    located_errors,
    region_problems,
)
from plans.statistics import (
    StatisticsRow,
    StatisticsTable,
    check_statistics,
    dump_statistics_csv,
    load_statistics,
    parse_statistics_csv,
)
from plans.targets import (
    CITY_PLANS_DIR,
    CityPlan,
    County,
    CountyTarget,
    EmissionCuts,
    ExclusionRule,
    IntensityTarget,
    PlanCity,
    PlanDocument,
    PlanPeriod,
    ReductionTarget,
    Rule,
    ShareTarget,
    Targets,
    TotalConsumptionTarget,
    YearTarget,
    counties_by_city,
    dump_city_plan,
    known_regions,
    load_city_plan,
    load_city_plans,
    parse_city_plan,
)
from simulators.regions import load_regions
from tests.strategies import enterprise_codes

REPO = Path(__file__).resolve().parent.parent
SEED_OF = {
    "hanzhong": "000",
    "huludao": "001",
    "ziyang": "002",
    "xianyang": "003",
    "yuncheng": "004",
}


# --- strategies -------------------------------------------------------------------------------

texts = st.text(
    st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), min_size=1, max_size=30
)
percents = st.floats(min_value=0, max_value=100, exclude_min=True, exclude_max=True)
sector_names = st.sampled_from(
    ["power", "coking", "steel", "non_ferrous", "building_materials", "chemicals"]
)
rule_names = st.sampled_from(
    ["dual_intensity_targets", "incentive_met_exempts_total", "analyse_and_warn"]
)


@st.composite
def reduction_targets(draw: st.DrawFn) -> ReductionTarget:
    if draw(st.booleans()):
        return ReductionTarget(assigned_by_province=True, source=draw(texts))
    cut = draw(st.floats(min_value=0.1, max_value=90))
    stretch = draw(st.none() | st.floats(min_value=cut + 0.1, max_value=99))
    return ReductionTarget(
        reduction_pct=cut,
        stretch_reduction_pct=stretch,
        strive=draw(st.booleans()),
        source=draw(texts),
        quote=draw(st.none() | texts),
    )


@st.composite
def city_plans(draw: st.DrawFn) -> CityPlan:
    first = draw(st.integers(2001, 2090))
    period = PlanPeriod(
        base_year=first - 1, first_year=first, last_year=first + draw(st.integers(0, 9))
    )
    years = st.integers(period.first_year, period.last_year)
    division = draw(st.from_regex(r"[1-6]\d{3}", fullmatch=True))
    numbers = draw(st.lists(st.integers(1, 99), min_size=1, max_size=5, unique=True))
    counties = tuple(County(division=f"{division}{n:02d}", name_zh=draw(texts)) for n in numbers)
    year_targets = st.lists(years, max_size=3, unique=True).map(
        lambda ys: tuple(YearTarget(year=y, basic_reduction_pct=2.5, source="s") for y in ys)
    )
    county_targets = tuple(
        CountyTarget(
            county=county.division,
            basic_reduction_pct=10,
            incentive_reduction_pct=draw(st.none() | st.floats(10, 99)),
            annual=draw(year_targets),
            source=draw(texts),
        )
        for county in counties
        if draw(st.booleans())
    )
    cuts = draw(st.none() | st.tuples(*[st.floats(1, 1e5)] * 4))
    emission_cuts = (
        EmissionCuts(assigned_by_province=True, source="s")
        if cuts is None
        else EmissionCuts(cod_t=cuts[0], nh3_n_t=cuts[1], nox_t=cuts[2], vocs_t=cuts[3], source="s")
    )
    targets = Targets(
        intensity=IntensityTarget(
            basic=draw(reduction_targets()), annual=draw(year_targets), counties=county_targets
        ),
        total_consumption=TotalConsumptionTarget(source=draw(texts)),
        industrial_value_added_intensity=draw(st.none() | reduction_targets()),
        sector_value_added_intensity=draw(st.dictionaries(sector_names, reduction_targets())),
        non_fossil_share=draw(
            st.none()
            | st.builds(ShareTarget, share_pct=percents, source=texts, approximate=st.booleans())
        ),
        emission_cuts=emission_cuts,
    )
    kinds = draw(
        st.lists(st.sampled_from(["renewable", "feedstock", "listed_project"]), unique=True)
    )
    return CityPlan(
        revision=draw(st.integers(1, 50)),
        city=PlanCity(
            id=draw(st.from_regex(r"[a-z]{2,10}", fullmatch=True)),
            name_zh=draw(texts),
            province_zh=draw(texts),
            division=f"{division}00",
        ),
        document=PlanDocument(
            seed=draw(st.from_regex(r"\d{3}", fullmatch=True)),
            title=draw(texts),
            issued=draw(st.none() | st.dates()),
        ),
        period=period,
        counties=counties,
        counties_source=draw(texts),
        targets=targets,
        exclusions=tuple(ExclusionRule(kind=k, source=draw(texts)) for k in kinds),
        rules={name: Rule(source=draw(texts)) for name in draw(st.lists(rule_names, unique=True))},
    )


@st.composite
def statistics_tables(draw: st.DrawFn) -> StatisticsTable:
    keys = draw(
        st.lists(
            st.tuples(st.from_regex(r"\d{6}", fullmatch=True), st.integers(2000, 2100)),
            max_size=8,
            unique=True,
        )
    )
    rows = []
    for region, year in keys:
        gdp = draw(st.floats(min_value=0.01, max_value=1e6))
        share = draw(st.none() | st.floats(0, 1))
        rows.append(
            StatisticsRow(
                region=region,
                year=year,
                period=draw(st.sampled_from(["annual", "Q1", "Q2", "Q3", "Q4"])),
                gdp_100m_yuan=gdp,
                gdp_2020_prices_100m_yuan=draw(st.none() | st.floats(0.01, 1e6)),
                above_scale_industry_value_added_100m_yuan=None if share is None else gdp * share,
                source=draw(texts.filter(lambda t: t == t.strip())),
            )
        )
    return StatisticsTable(rows=tuple(rows), illustrative=draw(st.booleans()))


@st.composite
def registers(draw: st.DrawFn) -> Register:
    codes = draw(st.lists(enterprise_codes(), min_size=1, max_size=4, unique=True))
    enterprises = []
    for code in codes:
        limits = tuple(
            ProductEnergyLimit(
                level=level,
                scope="national",
                value=draw(st.floats(1, 1e5)),
                unit="kgce/t",
                source="s",
            )
            for level in draw(st.lists(st.sampled_from(list(LimitLevel)), unique=True))
        )
        budget_years = draw(st.lists(st.integers(2000, 2100), max_size=3, unique=True))
        enterprises.append(
            EnterpriseEntry(
                code=code,
                name=draw(texts),
                city="yuncheng",
                county="140882",
                industry="steel",
                products=(Product(code="crude_steel", limits=limits),)
                if draw(st.booleans())
                else (),
                energy_budgets=tuple(
                    EnergyBudget(year=y, budget_tce=draw(st.floats(1, 1e7))) for y in budget_years
                ),
                emergency_grade=draw(st.none() | st.sampled_from(["A", "B", "C", "D"])),
                two_high=draw(st.booleans()),
            )
        )
    return Register(name=draw(texts), enterprises=tuple(enterprises))


@pytest.fixture(scope="module")
def plans() -> dict[str, CityPlan]:
    return load_city_plans()


def test_one_plan_per_seed_city_each_for_2021_to_2025_against_2020(plans):
    assert {city: p.document.seed for city, p in plans.items()} == SEED_OF
    for plan in plans.values():
        assert (plan.period.base_year, plan.period.first_year, plan.period.last_year) == (
            2020,
            2021,
            2025,
        )
        assert plan.version == 1
        assert plan.revision >= 1


@pytest.mark.parametrize(
    ("city", "reduction_pct"),
    [
        ("hanzhong", None),
        ("huludao", 14.5),
        ("ziyang", 14.5),
        ("xianyang", 13.5),
        ("yuncheng", 15.5),
    ],
)
def test_gdp_intensity_cut_is_the_domain_figure(plans, city, reduction_pct):
    basic = plans[city].targets.intensity.basic
    assert basic.reduction_pct == reduction_pct
    # Hanzhong's is "as assigned by the province": a flag, never a guessed figure
    assert basic.assigned_by_province is (reduction_pct is None)
    assert plans[city].targets.intensity.incentive is None  # no seed gives a city-level one


@pytest.mark.parametrize(
    ("city", "cuts"),
    [
        ("hanzhong", None),
        ("huludao", (4961, 47, 4356, 1509)),
        ("ziyang", (4218, 184, 650, 280)),
        ("xianyang", (6736, 290, 3415, 1805)),
        ("yuncheng", None),
    ],
)
def test_key_project_emission_cuts_are_the_domain_tonnes(plans, city, cuts):
    e = plans[city].targets.emission_cuts
    if cuts is None:
        assert e.assigned_by_province
        assert (e.cod_t, e.nh3_n_t, e.nox_t, e.vocs_t) == (None, None, None, None)
    else:
        assert not e.assigned_by_province
        assert (e.cod_t, e.nh3_n_t, e.nox_t, e.vocs_t) == cuts


def test_industrial_value_added_targets(plans):
    hanzhong = plans["hanzhong"].targets.industrial_value_added_intensity
    huludao = plans["huludao"].targets.industrial_value_added_intensity
    xianyang = plans["xianyang"].targets.industrial_value_added_intensity
    ziyang = plans["ziyang"].targets.industrial_value_added_intensity
    assert (hanzhong.reduction_pct, hanzhong.stretch_reduction_pct) == (13.5, None)
    assert (huludao.reduction_pct, huludao.stretch_reduction_pct) == (14.5, 18)
    assert (xianyang.reduction_pct, xianyang.stretch_reduction_pct) == (13.5, None)
    assert ziyang.assigned_by_province  # "完成省下达指标"
    assert ziyang.reduction_pct is None
    assert plans["yuncheng"].targets.industrial_value_added_intensity is None


def test_non_fossil_shares(plans):
    shares = {
        city: (p.targets.non_fossil_share.share_pct if p.targets.non_fossil_share else None)
        for city, p in plans.items()
    }
    assert shares == {
        "hanzhong": 16,
        "huludao": 13.7,
        "ziyang": 40,
        "xianyang": 16,
        "yuncheng": None,
    }


def test_public_institution_cuts_per_floor_area_and_per_capita(plans):
    def cuts(city: str) -> tuple[float | None, float | None] | None:
        targets = plans[city].targets.public_institutions
        if targets is None:
            return None
        return targets.per_floor_area.reduction_pct, targets.per_capita.reduction_pct

    assert cuts("huludao") == (6, 6)
    assert cuts("ziyang") == (4, 4)
    assert cuts("hanzhong") is cuts("xianyang") is cuts("yuncheng") is None


def test_yuncheng_sector_targets_are_strive_figures(plans):
    sectors = plans["yuncheng"].targets.sector_value_added_intensity
    assert {name: t.reduction_pct for name, t in sectors.items()} == {
        "power": 7,
        "coking": 18,
        "steel": 20,
        "non_ferrous": 21,
        "building_materials": 19,
        "chemicals": 18,
    }
    assert all(t.strive for t in sectors.values())  # every one is worded 力争
    assert all(
        not p.targets.sector_value_added_intensity for c, p in plans.items() if c != "yuncheng"
    )


def test_coal_use_negative_growth_only_where_the_plan_says_so(plans):
    negative = {c for c, p in plans.items() if p.targets.coal_consumption is not None}
    assert negative == {"xianyang", "yuncheng"}
    assert all(plans[c].targets.coal_consumption.negative_growth for c in negative)


def _levels(plan: CityPlan) -> dict[tuple[str, str, str | None], tuple[float, str]]:
    return {
        (product.code, limit.level.value, limit.route): (limit.value, limit.unit)
        for product in plan.product_limits
        for limit in product.limits
    }


def test_yuncheng_product_limits_and_national_levels(plans):
    assert _levels(plans["yuncheng"]) == {
        ("crude_steel", "limit", None): (520, "kgce/t"),
        ("alumina", "limit", None): (370, "kgce/t"),
        ("electrolytic_aluminium", "limit", None): (1640, "kgce/t"),
        ("electrolytic_aluminium", "benchmark", None): (13000, "kWh/t"),
        ("electrolytic_aluminium", "baseline", None): (13350, "kWh/t"),
        ("cement_clinker", "limit", None): (110, "kgce/t"),
        ("cement_clinker", "benchmark", None): (100, "kgce/t"),
        ("cement_clinker", "baseline", None): (117, "kgce/t"),
        ("hot_metal", "benchmark", None): (361, "kgce/t"),
        ("hot_metal", "baseline", None): (435, "kgce/t"),
        ("coke", "benchmark", "top_charged"): (110, "kgce/t"),
        ("coke", "baseline", "top_charged"): (135, "kgce/t"),
        ("synthetic_ammonia", "limit", "quality_anthracite_lump"): (1150, "kgce/t"),
        ("synthetic_ammonia", "limit", "other_anthracite_briquette"): (1320, "kgce/t"),
        ("synthetic_ammonia", "limit", "pulverised_coal"): (1500, "kgce/t"),
        ("synthetic_ammonia", "limit", "natural_gas"): (1050, "kgce/t"),
        ("synthetic_ammonia", "benchmark", "natural_gas"): (1000, "kgce/t"),
        ("synthetic_ammonia", "baseline", "natural_gas"): (1200, "kgce/t"),
        ("methanol", "limit", "anthracite"): (1500, "kgce/t"),
        ("methanol", "limit", "coke_oven_gas"): (1300, "kgce/t"),
        ("power_supply", "limit", None): (300, "kgce/MWh"),
    }
    # DOMAIN.md marks the national levels "verify", except electrolytic aluminium's
    for product in plans["yuncheng"].product_limits:
        for limit in product.limits:
            expected = limit.scope == "national" and product.code != "electrolytic_aluminium"
            assert limit.verify is expected, (product.code, limit.level)


def test_exclusions_are_those_each_seed_names(plans):
    kinds = {c: {e.kind for e in p.exclusions} for c, p in plans.items()}
    assert kinds == {
        "hanzhong": {"renewable", "feedstock", "listed_project"},
        "huludao": set(),
        "ziyang": {"renewable", "feedstock", "listed_project"},
        "xianyang": {"renewable", "feedstock"},
        "yuncheng": {"renewable", "feedstock", "listed_project"},
    }


def test_target_rules_follow_the_seeds(plans):
    assert plans["hanzhong"].has_rule("incentive_met_exempts_total")
    assert plans["xianyang"].has_rule("incentive_met_exempts_total")
    assert not plans["yuncheng"].has_rule("dual_intensity_targets")
    dual = {c for c, p in plans.items() if p.has_rule("dual_intensity_targets")}
    assert dual == {"hanzhong", "huludao", "ziyang"}


def test_no_decomposition_is_invented_where_the_seeds_publish_none(plans):
    for plan in plans.values():
        intensity = plan.targets.intensity
        assert intensity.annual == ()
        assert intensity.counties == ()
        assert plan.targets.total_consumption.caps == ()


def _sources(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["source"]] if isinstance(node.get("source"), str) else []
        return own + [s for value in node.values() for s in _sources(value)]
    if isinstance(node, list):
        return [s for value in node for s in _sources(value)]
    return []


def test_every_number_cites_its_own_seed(plans):
    for plan in plans.values():
        sources = _sources(plan.model_dump(mode="json"))
        assert len(sources) >= 4
        cited = {s.split(",")[0] for s in sources if s.startswith("seeds/")}
        assert cited == {f"seeds/{plan.document.seed}"}, plan.city.id


def test_counties_agree_with_the_simulated_regions(plans):
    for city in load_regions().cities:
        plan = plans[city.code]
        assert plan.city.division == city.division
        assert [(c.division, c.name_zh) for c in plan.counties] == [
            (c.division, c.name_zh) for c in city.counties
        ]


# --- invalid plans: every problem, each at its place ----------------------------------------


def _yuncheng() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CITY_PLANS_DIR / "yuncheng.yaml").read_text("utf-8"))
    return data


def test_an_empty_plans_directory_is_an_error_not_no_plans(tmp_path):
    with pytest.raises(ConfigFileError, match="no city plans"):
        load_city_plans(tmp_path)


def test_a_plan_with_several_bad_fields_names_each_place():
    data = _yuncheng()
    data["targets"]["intensity"]["basic"]["reduction_pct"] = 155
    data["targets"]["non_fossil_share"] = {"share_pct": 12}
    data["rules"]["guesswork"] = {"source": "x"}
    del data["city"]["province_zh"]
    with pytest.raises(ConfigFileError) as error:
        parse_city_plan(yaml.safe_dump(data, allow_unicode=True), "bad.yaml")
    message = str(error.value)
    assert message.startswith("bad.yaml: 4 problem(s) in the city plan")
    for place in (
        "targets.intensity.basic.reduction_pct",
        "targets.non_fossil_share.source",
        "rules.guesswork",
        "city.province_zh",
    ):
        assert f"  {place}: " in message


def test_inconsistencies_are_each_reported_at_their_own_place():
    data = _yuncheng()
    data["counties"].append({"division": "140882", "name_zh": "河津市"})
    data["targets"]["intensity"]["annual"] = [
        {"year": 2022, "basic_reduction_pct": 3.0, "source": "x"},
        {"year": 2027, "basic_reduction_pct": 3.0, "source": "x"},
        {"year": 2022, "basic_reduction_pct": 3.0, "source": "x"},
    ]
    data["targets"]["total_consumption"]["caps"] = [
        {"year": 2024, "county": "140899", "cap_tce": 1.0e6, "source": "x"}
    ]
    data["product_limits"][0]["limits"][0]["scope"] = "xianyang"
    with pytest.raises(ValidationError) as error:
        CityPlan.model_validate(data)
    found = {format_location(f.location): f.message for f in located_errors(error.value)}
    assert set(found) == {
        "counties[13].division",
        "targets.intensity.annual[1].year",
        "targets.intensity.annual[2].year",
        "targets.total_consumption.caps[0].county",
        "product_limits[0].limits[0].scope",
    }
    assert "outside 2021-2025" in found["targets.intensity.annual[1].year"]
    assert "listed twice" in found["targets.intensity.annual[2].year"]


def test_an_incentive_target_below_the_basic_one_is_refused():
    data = _yuncheng()
    data["targets"]["intensity"]["counties"] = [
        {
            "county": "140802",
            "basic_reduction_pct": 15,
            "incentive_reduction_pct": 12,
            "source": "x",
        }
    ]
    with pytest.raises(ValidationError, match="not below the basic"):
        CityPlan.model_validate(data)


def test_a_target_needs_a_figure_or_the_province_flag_not_both():
    data = _yuncheng()
    data["targets"]["intensity"]["basic"]["assigned_by_province"] = True
    with pytest.raises(ValidationError, match="not both"):
        CityPlan.model_validate(data)


def test_loading_a_directory_reports_every_bad_file(tmp_path):
    good = (CITY_PLANS_DIR / "ziyang.yaml").read_text(encoding="utf-8")
    (tmp_path / "a.yaml").write_text(good.replace("revision: 1", "revision: 0"), "utf-8")
    (tmp_path / "b.yaml").write_text(good.replace("share_pct: 40", "share_pct: -40"), "utf-8")
    with pytest.raises(ConfigFileError) as error:
        load_city_plans(tmp_path)
    assert "a.yaml: 1 problem(s)" in str(error.value)
    assert "b.yaml: 1 problem(s)" in str(error.value)


@settings(max_examples=60, deadline=None)
@given(city_plans())
def test_a_plan_survives_yaml_and_back(plan):
    assert parse_city_plan(dump_city_plan(plan), "<dump>") == plan


def test_a_packaged_plan_survives_yaml_and_back(plans):
    for plan in plans.values():
        assert parse_city_plan(dump_city_plan(plan), "<dump>") == plan


# --- statistics -------------------------------------------------------------------------------


def test_the_example_statistics_are_marked_illustrative_and_load(plans):
    table = load_statistics(
        REPO / "plans/data/statistics/example-yuncheng.csv", known_regions(plans)
    )
    assert table.illustrative
    assert table.row("140882", 2023, "Q2").gdp_100m_yuan == 205.0
    assert table.row("140824", 2022).gdp_2020_prices_100m_yuan is None  # an empty cell


def test_bad_statistics_name_every_row_and_its_line(tmp_path, plans):
    path = tmp_path / "s.csv"
    path.write_text(
        "# a comment\n"
        "region,year,period,gdp_100m_yuan,source\n"
        "140800,2023,Q2,-5,x\n"  # line 3: negative
        "999999,2023,annual,100,x\n"  # line 4: unknown region
        "140800,2023,Q3,90,x\n"  # line 5: fine on its own
        "140800,2023,Q4,80,x\n"  # line 6: year to date falls
        "140800,2023,Q4,85,x\n"  # line 7: repeated
        "140800,2023,annual,100,\n",  # line 8: no source
        "utf-8",
    )
    with pytest.raises(ConfigFileError) as error:
        load_statistics(path, known_regions(plans))
    message = str(error.value)
    assert "5 problem(s)" in message
    for expected in (
        "line 3, rows[0].gdp_100m_yuan: Input should be greater than 0",
        "line 4, rows[1].region: 999999 is not a city or county",
        "line 6, rows[3].gdp_100m_yuan: below 140800 2023 Q3",
        "line 7, rows[4].period: a second row for 140800 2023 Q4",
        "line 8, rows[5].source: Field required",
    ):
        assert expected in message


def test_value_added_cannot_exceed_gdp():
    with pytest.raises(ValidationError, match="above GDP"):
        StatisticsRow(
            region="140800",
            year=2023,
            period="annual",
            gdp_100m_yuan=10,
            above_scale_industry_value_added_100m_yuan=11,
            source="x",
        )


def test_a_header_without_required_columns_is_reported():
    parsed = parse_statistics_csv("region,year,gdp,source\n140800,2023,1,x\n")
    table, findings = check_statistics(parsed)
    assert table is None
    places = {format_location(f.location) for f in findings}
    assert {"header.gdp", "header.period", "header.gdp_100m_yuan"} <= places


@settings(max_examples=60, deadline=None)
@given(statistics_tables())
def test_statistics_survive_csv_and_back(table):
    parsed = parse_statistics_csv(dump_statistics_csv(table))
    again, findings = check_statistics(parsed)
    assert findings == []
    assert again == table


# --- the register, extended -------------------------------------------------------------------


def test_the_demo_register_still_loads_with_the_new_fields_empty():
    register = load_register(REPO / "plans/registers/demo.yaml")
    assert len(register.enterprises) == 9
    first = register.enterprises[0]
    assert (first.products, first.energy_budgets, first.emergency_grade, first.two_high) == (
        (),
        (),
        None,
        False,
    )


def _clinker_plant(**changes: Any) -> EnterpriseEntry:
    base = load_register(REPO / "plans/registers/demo.yaml").enterprises[2]
    clinker = Product(
        code="cement_clinker",
        limits=(
            ProductEnergyLimit(
                level=LimitLevel.LIMIT, scope="yuncheng", value=110, unit="kgce/t", source="s"
            ),
            ProductEnergyLimit(
                level=LimitLevel.BENCHMARK, scope="national", value=100, unit="kgce/t", source="s"
            ),
        ),
    )
    fields = {
        **base.model_dump(),
        "products": (clinker,),
        "energy_budgets": (EnergyBudget(year=2025, budget_tce=120_000),),
        "emergency_grade": "B",
        "two_high": True,
        **changes,
    }
    return EnterpriseEntry.model_validate(fields)


def test_an_enterprise_carries_products_budgets_grade_and_two_high():
    plant = _clinker_plant()
    assert plant.budget_tce(2025) == 120_000
    assert plant.budget_tce(2024) is None
    assert plant.emergency_grade == "B"
    assert plant.two_high
    assert [lim.value for lim in plant.products[0].applicable_limits()] == [110, 100]


def test_limits_for_another_route_do_not_apply():
    ammonia = Product(
        code="synthetic_ammonia",
        route="natural_gas",
        limits=(
            ProductEnergyLimit(
                level="limit", scope="yuncheng", value=1050, unit="kgce/t", route="natural_gas",
                source="s",
            ),
            ProductEnergyLimit(
                level="limit", scope="yuncheng", value=1500, unit="kgce/t",
                route="pulverised_coal", source="s",
            ),
        ),
    )  # fmt: skip
    assert [lim.value for lim in ammonia.applicable_limits()] == [1050]


def test_grades_outside_a_to_d_and_repeated_budget_years_are_refused():
    with pytest.raises(ValidationError, match="emergency_grade"):
        _clinker_plant(emergency_grade="E")
    with pytest.raises(ValidationError) as error:
        _clinker_plant(
            energy_budgets=(
                EnergyBudget(year=2025, budget_tce=1),
                EnergyBudget(year=2025, budget_tce=2),
            )
        )
    [finding] = located_errors(error.value)
    assert format_location(finding.location) == "energy_budgets[1].year"


def test_register_inconsistencies_are_each_placed():
    data = yaml.safe_load((REPO / "plans/registers/demo.yaml").read_text("utf-8"))
    data["enterprises"].append(dict(data["enterprises"][0]))
    data["meters"][3]["enterprise_code"] = "91140882MA00000000"  # valid, but not registered
    data["meters"][5]["meter_id"] = data["meters"][4]["meter_id"]
    with pytest.raises(ValidationError) as error:
        Register.model_validate(data)
    found = [format_location(f.location) for f in located_errors(error.value)]
    assert found == ["enterprises[9].code", "meters[3].enterprise_code", "meters[5].meter_id"]


def test_register_counties_are_checked_against_the_plans(plans):
    register = load_register(REPO / "plans/registers/demo.yaml")
    assert region_problems(register, counties_by_city(plans)) == []
    moved = register.model_copy(
        update={
            "enterprises": (
                register.enterprises[0].model_copy(update={"county": "140899"}),
                register.enterprises[1].model_copy(update={"city": "atlantis"}),
                *register.enterprises[2:],
            )
        }
    )
    problems = dict(region_problems(moved, counties_by_city(plans)))
    assert set(problems) == {("enterprises", 0, "county"), ("enterprises", 1, "city")}


@settings(max_examples=40, deadline=None)
@given(registers())
def test_a_register_with_plan_fields_survives_yaml_and_back(register):
    # as `energywatch register from-simulation` writes it
    text = yaml.safe_dump(register.model_dump(mode="json"), allow_unicode=True, sort_keys=False)
    assert Register.model_validate(parse_yaml(text, "<dump>")) == register


def test_a_city_plan_file_loads_by_path():
    plan = load_city_plan(CITY_PLANS_DIR / "huludao.yaml")
    assert plan.city.name_zh == "葫芦岛市"
    with pytest.raises(ConfigFileError, match="cannot read it"):
        load_city_plan(CITY_PLANS_DIR / "atlantis.yaml")


def test_statistics_rows_are_found_by_region_year_and_period():
    table = StatisticsTable(
        rows=(StatisticsRow(region="140800", year=2023, period="Q1", gdp_100m_yuan=1, source="s"),)
    )
    assert table.row("140800", 2023, "Q1") is not None
    assert table.row("140800", 2023) is None


def test_a_simulated_fleets_register_carries_budgets_limits_and_grades_for_its_rules():
    from simulators.credentials import BUDGET_MARGIN, register_for_fleet
    from simulators.scenario import load_scenario

    scenario = load_scenario(Path(__file__).parent.parent / "scenarios" / "budget-overrun.yaml")
    register = register_for_fleet(scenario.fleet, scenario.plan.voc_monitors, [2026])
    by_code = register.enterprises_by_code
    cement = by_code[scenario.fleet.enterprise("jx-cement").code]
    planned = scenario.fleet.enterprise("jx-cement").annual_tce
    assert cement.budget_tce(2026) == pytest.approx(planned * (1 + BUDGET_MARGIN), abs=0.1)
    assert cement.budget_tce(2025) is None
    assert cement.emergency_grade == "B"
    assert cement.two_high
    assert cement.products
    assert all(p.limits for p in cement.products)
    hospital = by_code[scenario.fleet.enterprise("yuncheng-hospital-1").code]
    assert (hospital.products, hospital.emergency_grade, hospital.two_high) == ((), None, False)
    assert register_for_fleet(scenario.fleet).enterprises[0].energy_budgets == ()
