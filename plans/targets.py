"""A city's energy-conservation plan as data: its targets for the plan period, how they are
decomposed, what is excluded from the totals, and the rules that say how the targets work.

One YAML file per city (``data/cities/<city>.yaml``), transcribed from the seed plans
(``../shared/seeds/``; DOMAIN.md §2 summarises them). Every number carries a ``source`` (document
and section) and, where it helps, the ``quote`` it was read from. A number the plan does not
give is left empty (``None`` or an empty list), never estimated: a plan that says its target is
"as assigned by the province" says ``assigned_by_province: true`` instead of a figure.

Percentages are cuts relative to the base year, positive: ``reduction_pct: 14.5`` means the last
year's value is 14.5% below the base year's.
"""

from datetime import date
from pathlib import Path
from typing import Annotated, Final, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from energywatch.config_files import ConfigFileError, parse_yaml
from plans.register import (
    Exclusion,
    Located,
    Location,
    Product,
    describe_problems,
    inconsistent,
)

PLAN_VERSION: Final = 1
#: The packaged plans of the five seed cities.
CITY_PLANS_DIR: Final = Path(__file__).parent / "data" / "cities"

_STRICT = ConfigDict(frozen=True, extra="forbid")
Percent = Annotated[float, Field(gt=0, lt=100, allow_inf_nan=False)]
Year = Annotated[int, Field(ge=2000, le=2100)]
Division = Annotated[str, Field(pattern=r"^\d{6}$", description="GB/T 2260 code")]
Source = Annotated[str, Field(min_length=1)]
Quote = Annotated[str | None, Field(default=None, min_length=1)]
_INCENTIVE_BELOW_BASIC: Final = "an incentive target is the higher one: not below the basic"


class PlanCity(BaseModel):
    model_config = _STRICT
    #: The id the register and the fleets use for the city (``EnterpriseEntry.city``).
    id: str = Field(pattern=r"^[a-z]+$")
    name_zh: str = Field(min_length=1)
    province_zh: str = Field(min_length=1)
    division: Division


class County(BaseModel):
    model_config = _STRICT
    division: Division
    name_zh: str = Field(min_length=1)


class PlanDocument(BaseModel):
    """The plan the numbers come from."""

    model_config = _STRICT
    #: Its number in ``../shared/seeds/`` (the file name's first three digits).
    seed: str = Field(pattern=r"^\d{3}$")
    title: str = Field(min_length=1)
    #: The issuing notice's document number (文号), when the seed shows it.
    number: str | None = None
    issued: date | None = None
    url: str | None = None


class PlanPeriod(BaseModel):
    """The five-year period (2021-2025 for the 14th) and the base year targets compare with."""

    model_config = _STRICT
    base_year: Year
    first_year: Year
    last_year: Year

    @model_validator(mode="after")
    def _base_year_precedes_period(self) -> Self:
        if self.base_year != self.first_year - 1:
            raise ValueError("base_year must be the year before first_year")
        if self.last_year < self.first_year:
            raise ValueError("last_year must not be before first_year")
        return self

    @property
    def years(self) -> range:
        return range(self.first_year, self.last_year + 1)


class ReductionTarget(BaseModel):
    """A cut of an indicator by the period's last year, relative to the base year.

    Exactly one of ``reduction_pct`` and ``assigned_by_province``. ``strive`` marks a figure the
    plan only strives for (力争) rather than one it must reach; ``stretch_reduction_pct`` is a
    further 力争 figure given beside a binding one (Huludao: 确保 14.5%, 力争 18%)."""

    model_config = _STRICT
    reduction_pct: Percent | None = None
    assigned_by_province: bool = False
    strive: bool = False
    stretch_reduction_pct: Percent | None = None
    source: Source
    quote: Quote = None

    @model_validator(mode="after")
    def _figure_or_assigned(self) -> Self:
        if (self.reduction_pct is None) != self.assigned_by_province:
            raise ValueError("give reduction_pct or set assigned_by_province: true (not both)")
        if self.stretch_reduction_pct is not None and (
            self.reduction_pct is None or self.stretch_reduction_pct <= self.reduction_pct
        ):
            raise ValueError("stretch_reduction_pct must be above reduction_pct")
        return self


class YearTarget(BaseModel):
    """One year's share of an intensity target: that year's cut on the year before, percent."""

    model_config = _STRICT
    year: Year
    basic_reduction_pct: float = Field(gt=-100, lt=100, allow_inf_nan=False)
    incentive_reduction_pct: float | None = Field(default=None, gt=-100, lt=100)
    source: Source


class CountyTarget(BaseModel):
    """A county's (区县) intensity targets for the period, and their yearly split."""

    model_config = _STRICT
    county: Division
    basic_reduction_pct: Percent
    incentive_reduction_pct: Percent | None = None
    annual: tuple[YearTarget, ...] = ()
    source: Source

    @model_validator(mode="after")
    def _incentive_not_below_basic(self) -> Self:
        incentive = self.incentive_reduction_pct
        if incentive is not None and incentive < self.basic_reduction_pct:
            raise ValueError(_INCENTIVE_BELOW_BASIC)
        return self


class IntensityTarget(BaseModel):
    """Energy per unit of GDP (单位地区生产总值能耗): the plan's headline, binding target.

    Plans set counties a basic and a higher incentive target (基本目标/激励目标), decomposed per
    year; ``annual`` and ``counties`` hold those figures where a plan publishes them."""

    model_config = _STRICT
    basic: ReductionTarget
    #: The city's own incentive figure; no seed gives one.
    incentive: ReductionTarget | None = None
    annual: tuple[YearTarget, ...] = ()
    counties: tuple[CountyTarget, ...] = ()

    @model_validator(mode="after")
    def _incentive_not_below_basic(self) -> Self:
        basic, incentive = self.basic.reduction_pct, self.incentive
        if incentive and incentive.reduction_pct and basic and incentive.reduction_pct < basic:
            raise ValueError(_INCENTIVE_BELOW_BASIC)
        return self


class ConsumptionCap(BaseModel):
    """A total-consumption target (能源消费总量) for a year, city-wide or for one county."""

    model_config = _STRICT
    year: Year
    county: Division | None = None
    cap_tce: float = Field(gt=0, allow_inf_nan=False)
    source: Source


class TotalConsumptionTarget(BaseModel):
    """Total energy consumption. The seeds give no figure ("得到合理控制"): yearly caps follow
    from the GDP growth target and the basic intensity target (see ``rules``)."""

    model_config = _STRICT
    caps: tuple[ConsumptionCap, ...] = ()
    source: Source
    quote: Quote = None


class ShareTarget(BaseModel):
    """A share to reach by the last year, percent (e.g. non-fossil energy in consumption)."""

    model_config = _STRICT
    share_pct: Percent
    #: The plan says "about" (左右).
    approximate: bool = False
    source: Source
    quote: Quote = None


class EmissionCuts(BaseModel):
    """Key-project emission reductions (重点工程减排量) by the last year, tonnes."""

    model_config = _STRICT
    cod_t: float | None = Field(default=None, gt=0)
    nh3_n_t: float | None = Field(default=None, gt=0)
    nox_t: float | None = Field(default=None, gt=0)
    vocs_t: float | None = Field(default=None, gt=0)
    assigned_by_province: bool = False
    source: Source
    quote: Quote = None

    @model_validator(mode="after")
    def _figures_or_assigned(self) -> Self:
        figures = [self.cod_t, self.nh3_n_t, self.nox_t, self.vocs_t]
        if self.assigned_by_province == any(f is not None for f in figures):
            raise ValueError("give the four figures or set assigned_by_province: true")
        if not self.assigned_by_province and None in figures:
            raise ValueError("give all four of cod_t, nh3_n_t, nox_t, vocs_t")
        return self


class PublicInstitutionTargets(BaseModel):
    """Public institutions (公共机构): energy per m² of floor area and per person."""

    model_config = _STRICT
    per_floor_area: ReductionTarget
    per_capita: ReductionTarget


class CoalConsumptionTarget(BaseModel):
    model_config = _STRICT
    #: Coal use in the last year below the base year's (煤炭消费负增长).
    negative_growth: bool
    source: Source
    quote: Quote = None


#: Industries whose value-added energy intensity a plan targets (Yuncheng's).
Sector = Literal["power", "coking", "steel", "non_ferrous", "building_materials", "chemicals"]


class Targets(BaseModel):
    model_config = _STRICT
    intensity: IntensityTarget
    total_consumption: TotalConsumptionTarget
    #: Energy per unit of value added of industry above designated size (规模以上工业).
    industrial_value_added_intensity: ReductionTarget | None = None
    sector_value_added_intensity: dict[Sector, ReductionTarget] = Field(default_factory=dict)
    non_fossil_share: ShareTarget | None = None
    public_institutions: PublicInstitutionTargets | None = None
    coal_consumption: CoalConsumptionTarget | None = None
    emission_cuts: EmissionCuts


class ExclusionRule(BaseModel):
    """Energy the plan keeps out of the controlled totals (DOMAIN.md §2); meters carry the same
    tag (``MeterEntry.excluded_from_totals``)."""

    model_config = _STRICT
    kind: Exclusion
    #: What it covers when the plan says (feedstock products, listed project names).
    applies_to: tuple[str, ...] = ()
    source: Source
    quote: Quote = None


#: How a plan says its targets work (DOMAIN.md §2); present only where the seed says so.
RuleName = Literal[
    "dual_intensity_targets",  # counties get a basic and an incentive target
    "counties_split_targets_by_year",  # counties decompose their targets to each year
    "total_from_growth_and_basic_intensity",  # yearly caps follow from GDP growth and intensity
    "total_raised_when_growth_beats_plan",
    "incentive_met_exempts_total",  # a county meeting its incentive skips the total check
    "targets_split_to_key_units",  # counties pass targets on to key energy-using units
    "analyse_and_warn",  # 节能形势分析预警
    "energy_budget_management",  # 用能预算管理
    "energy_use_rights_trading",  # 用能权交易
    "annual_midterm_final_assessment",  # 年度评价、中期评估、五年考核
]


class Rule(BaseModel):
    model_config = _STRICT
    source: Source
    quote: Quote = None


class CityPlan(BaseModel):
    """One city's plan: ``version`` is the file format, ``revision`` counts changes to the
    numbers (raise it whenever a figure changes, so results can name the plan they used)."""

    model_config = _STRICT
    kind: Literal["city_plan"] = "city_plan"
    version: Literal[1] = PLAN_VERSION
    revision: int = Field(ge=1)
    city: PlanCity
    document: PlanDocument
    period: PlanPeriod
    counties: tuple[County, ...] = Field(min_length=1)
    counties_source: Source
    targets: Targets
    exclusions: tuple[ExclusionRule, ...] = ()
    rules: dict[RuleName, Rule] = Field(default_factory=dict)
    #: Unit-product energy limits the plan sets (scope: the city id), with the national
    #: benchmark and baseline levels for the same products (scope: national).
    product_limits: tuple[Product, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = _cross_problems(self)
        if problems:
            raise inconsistent(problems)
        return self

    @property
    def county_divisions(self) -> frozenset[str]:
        return frozenset(c.division for c in self.counties)

    def has_rule(self, name: RuleName) -> bool:
        return name in self.rules


def _repeats(values: list[object], where: Location, field: str) -> list[Located]:
    """A problem at ``where[i].field`` for each value already seen before index ``i``."""
    return [
        ((*where, i, field), f"{value} is listed twice: keep one")
        for i, value in enumerate(values)
        if value in values[:i]
    ]


def _cross_problems(plan: CityPlan) -> list[Located]:
    """What no single part can check: counties named are listed, years fall in the period,
    nothing is listed twice, product limits are this city's or national."""
    intensity, caps = plan.targets.intensity, plan.targets.total_consumption.caps
    at_intensity, at_caps = ("targets", "intensity"), ("targets", "total_consumption", "caps")
    problems = _repeats([c.division for c in plan.counties], ("counties",), "division")
    problems += [
        (("counties", i, "division"), f"{c.division} is not in city {plan.city.division}")
        for i, c in enumerate(plan.counties)
        if c.division[:4] != plan.city.division[:4]
    ]
    references = [
        ((*at_intensity, "counties", i), t.county) for i, t in enumerate(intensity.counties)
    ]
    references += [((*at_caps, i), c.county) for i, c in enumerate(caps) if c.county is not None]
    problems += [
        ((*where, "county"), f"{county} is not under `counties`: add it there or fix the code")
        for where, county in references
        if county not in plan.county_divisions
    ]
    problems += _repeats(
        [t.county for t in intensity.counties], (*at_intensity, "counties"), "county"
    )
    # each year once per list; caps once per year and area
    yearly: list[tuple[Location, list[int]]] = [
        ((*at_intensity, "annual"), [y.year for y in intensity.annual])
    ]
    yearly += [
        ((*at_intensity, "counties", i, "annual"), [y.year for y in t.annual])
        for i, t in enumerate(intensity.counties)
    ]
    for where, years in yearly:
        problems += _repeats(list(years), where, "year")
    problems += _repeats([(c.year, c.county) for c in caps], at_caps, "year")
    period = plan.period
    yearly.append((at_caps, [c.year for c in caps]))
    problems += [
        ((*where, i, "year"), f"{year} is outside {period.first_year}-{period.last_year}")
        for where, years in yearly
        for i, year in enumerate(years)
        if year not in period.years
    ]
    problems += _repeats([e.kind for e in plan.exclusions], ("exclusions",), "kind")
    problems += _repeats([p.code for p in plan.product_limits], ("product_limits",), "code")
    problems += [
        (("product_limits", i, "limits", j, "scope"), f"use {plan.city.id!r} or 'national'")
        for i, product in enumerate(plan.product_limits)
        for j, limit in enumerate(product.limits)
        if limit.scope not in ("national", plan.city.id)
    ]
    return problems


def parse_city_plan(text: str, source: str) -> CityPlan:
    """A plan from YAML ``text``, or ``ConfigFileError`` naming every problem's place."""
    data = parse_yaml(text, source)
    try:
        return CityPlan.model_validate(data)
    except ValidationError as exc:
        raise ConfigFileError(describe_problems(source, exc, "city plan")) from exc


def load_city_plan(path: Path) -> CityPlan:
    """The plan in YAML file ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read it: {exc.strerror}") from exc
    return parse_city_plan(text, str(path))


def load_city_plans(directory: Path = CITY_PLANS_DIR) -> dict[str, CityPlan]:
    """Every ``*.yaml`` plan in ``directory``, by city id; ``ConfigFileError`` lists the
    problems of every bad file at once."""
    paths = sorted(directory.glob("*.yaml"))
    if not paths:  # e.g. an install that left the data files behind
        raise ConfigFileError(f"{directory}: no city plans (*.yaml) there")
    plans: dict[str, CityPlan] = {}
    errors: list[str] = []
    for path in paths:
        try:
            plan = load_city_plan(path)
        except ConfigFileError as exc:
            errors.append(str(exc))
            continue
        if plan.city.id in plans:
            errors.append(f"{path}: a second plan for {plan.city.id}: keep one per city")
        plans[plan.city.id] = plan
    if errors:
        raise ConfigFileError("\n".join(errors))
    return plans


def dump_city_plan(plan: CityPlan) -> str:
    """``plan`` as YAML that ``parse_city_plan`` reads back to an equal plan."""
    data = plan.model_dump(mode="json", exclude_defaults=True)
    # kind and version are defaults but say what the file is: always write them
    data = {"kind": plan.kind, "version": plan.version, **data}
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def known_regions(plans: dict[str, CityPlan]) -> dict[str, str]:
    """Division code -> name of every city and county the plans cover."""
    regions: dict[str, str] = {}
    for plan in plans.values():
        regions[plan.city.division] = plan.city.name_zh
        regions.update((c.division, c.name_zh) for c in plan.counties)
    return regions


def counties_by_city(plans: dict[str, CityPlan]) -> dict[str, set[str]]:
    """City id -> its county division codes, for checking a register against the plans."""
    return {city_id: set(plan.county_divisions) for city_id, plan in plans.items()}
