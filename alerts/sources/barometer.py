"""The regional barometer over stored data: every county and city of the plans that has
statistics, judged on its latest settled quarter (year to date) against the same period of
the year before.

* Energy: the region's monthly rollups of every energy type, exclusions left out
  (``tce_counted``: feedstock, listed projects and new renewables are not counted, DOMAIN.md
  §2), for both years.
* GDP: the statistics' year-to-date figure at comparable (2020) prices, for both years (a
  year's Q4 or, failing that, its annual row).
* Intensity target: the year's cut as the plan publishes it (the county's own, else the
  city's); a plan that publishes only the period's cut is taken as an even yearly cut
  compounding to it (14.5% over 2021-2025: 3.09% a year), the usual way of spreading it. No
  incentive figure: no exemption. A target "as assigned by the province": no barometer.
* Total-consumption cap: the plan's cap for the year (the county's, or the city-wide one for
  a city), pro-rated to the period by the budget's seasonal profile. Without a published cap
  the total is judged only where the plan says the cap follows from GDP growth and the basic
  intensity target (``total_from_growth_and_basic_intensity``), with the cap so derived.
"""

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import psycopg
from psycopg.rows import TupleRow

from alerts.rules.barometer import TOTAL_RULE, RegionPeriod, evaluate_barometer
from alerts.rules.condition import Condition
from alerts.sources.context import Lookup
from alerts.sources.periods import year_bounds, year_of
from contracts.identifiers import CHINA_STANDARD_TIME
from plans.statistics import Period, StatisticsTable
from plans.targets import CityPlan
from storage.alert_inputs import period_tce
from stream.windows import WindowSize

_DERIVED_CAP_RULE: Final = "total_from_growth_and_basic_intensity"


@dataclass(frozen=True)
class _Region:
    division: str
    rollup_kind: str  # 'county' or 'city'
    rollup_subject: str  # a county's division code, a city's id
    plan: CityPlan

    @property
    def county(self) -> str | None:
        return self.division if self.rollup_kind == "county" else None


@dataclass(frozen=True)
class _Period:
    year: int
    end: datetime  # the quarter's end, UTC
    gdp: float
    last_year_gdp: float

    @property
    def last_year_end(self) -> datetime:
        local = self.end.astimezone(CHINA_STANDARD_TIME)
        return local.replace(year=local.year - 1).astimezone(UTC)


def _quarter_end(year: int, quarter: int) -> datetime:
    if quarter == 4:
        return year_bounds(year)[1]
    return datetime(year, 3 * quarter + 1, 1, tzinfo=CHINA_STANDARD_TIME).astimezone(UTC)


_QUARTERS: Final[dict[int, Period]] = {1: "Q1", 2: "Q2", 3: "Q3", 4: "Q4"}


def _ytd_gdp(table: StatisticsTable, region: str, year: int, quarter: int) -> float | None:
    """Year-to-date GDP at comparable prices at the end of ``quarter`` (Q4: or the year's)."""
    row = table.row(region, year, _QUARTERS[quarter])
    if row is None and quarter == 4:
        row = table.row(region, year, "annual")
    return row.gdp_2020_prices_100m_yuan if row is not None else None


def _latest_period(table: StatisticsTable, region: str, settled: datetime) -> _Period | None:
    """The latest quarter over by ``settled`` with comparable GDP for it and a year before."""
    this_year = year_of(settled)
    for year in (this_year, this_year - 1):
        for quarter in (4, 3, 2, 1):
            end = _quarter_end(year, quarter)
            if end > settled:
                continue
            gdp = _ytd_gdp(table, region, year, quarter)
            last_year_gdp = _ytd_gdp(table, region, year - 1, quarter)
            if gdp is not None and last_year_gdp is not None:
                return _Period(year, end, gdp, last_year_gdp)
    return None


def even_yearly_cut(period_pct: float, years: int) -> float:
    """The yearly cut that compounds to a period's cut (14.5% over 5 years: 3.09% a year)."""
    return 1 - math.pow(1 - period_pct / 100, 1 / years)


def yearly_cuts(plan: CityPlan, county: str | None, year: int) -> tuple[float, float] | None:
    """The (basic, incentive) intensity cuts for ``year`` as fractions, the incentive
    infinite when there is none; None when the plan sets no figure for it."""
    if year not in plan.period.years:
        return None
    years = len(plan.period.years)
    intensity = plan.targets.intensity
    own = next((t for t in intensity.counties if t.county == county), None) if county else None
    basic_pct: float | None
    if own is not None:
        annual, basic_pct = own.annual, own.basic_reduction_pct
        incentive_pct = own.incentive_reduction_pct
    else:
        annual, basic_pct = intensity.annual, intensity.basic.reduction_pct
        incentive_pct = intensity.incentive.reduction_pct if intensity.incentive else None
    incentive = even_yearly_cut(incentive_pct, years) if incentive_pct else math.inf
    published = next((a for a in annual if a.year == year), None)
    if published is not None:
        if published.incentive_reduction_pct is not None:
            incentive = published.incentive_reduction_pct / 100.0
        return published.basic_reduction_pct / 100, incentive
    if basic_pct is None:
        return None
    return even_yearly_cut(basic_pct, years), incentive


def _regions(lookup: Lookup) -> list[_Region]:
    regions = []
    for plan in lookup.context.plans:
        regions.append(_Region(plan.city.division, "city", plan.city.id, plan))
        regions += [_Region(c.division, "county", c.division, plan) for c in plan.counties]
    return regions


async def judge_barometer(
    conn: psycopg.AsyncConnection[TupleRow], lookup: Lookup, settled: datetime
) -> list[Condition]:
    """The intensity (and, where a cap is known, total) conditions of every region with
    statistics, on its latest quarter settled by ``settled``."""
    table = lookup.context.statistics
    if table is None:
        return []
    judged: list[tuple[_Region, _Period, tuple[float, float]]] = []
    for region in _regions(lookup):
        period = _latest_period(table, region.division, settled)
        if period is None:
            continue
        cuts = yearly_cuts(region.plan, region.county, period.year)
        if cuts is not None:
            judged.append((region, period, cuts))
    if not judged:
        return []
    start = year_bounds(min(p.year for _, p, _ in judged) - 1)[0]
    end = max(p.end for _, p, _ in judged)
    subjects = sorted({(r.rollup_kind, r.rollup_subject) for r, _, _ in judged})
    months = await period_tce(conn, subjects, WindowSize.MONTH, start, end)
    conditions: list[Condition] = []
    for region, period, (basic, incentive) in judged:
        energy: dict[int, float] = defaultdict(float)
        for row in months:
            if (row.subject_kind, row.subject) != (region.rollup_kind, region.rollup_subject):
                continue
            year = year_of(row.period_start)
            if row.period_start < (period.end if year == period.year else period.last_year_end):
                energy[year] += row.tce_counted
        now_tce, last_tce = energy[period.year], energy[period.year - 1]
        if last_tce <= 0:
            continue  # nothing to compare with
        cap, published = _cap(lookup, region, period, basic, last_tce)
        conditions += [
            c
            for c in evaluate_barometer(
                RegionPeriod(
                    region=region.division,
                    at=period.end,
                    energy_tce=now_tce,
                    gdp=period.gdp,
                    last_year_energy_tce=last_tce,
                    last_year_gdp=period.last_year_gdp,
                    basic_target_cut=basic,
                    incentive_target_cut=incentive,
                    prorated_cap_tce=cap,
                ),
                lookup.context.barometer,
            )
            if c.rule_id != TOTAL_RULE or published or region.plan.has_rule(_DERIVED_CAP_RULE)
        ]
    return conditions


def _cap(
    lookup: Lookup, region: _Region, period: _Period, basic: float, last_tce: float
) -> tuple[float, bool]:
    """The period's total-consumption cap, and whether the plan published it (else it is
    derived from GDP growth and the basic intensity target)."""
    caps = region.plan.targets.total_consumption.caps
    cap = next((c for c in caps if c.year == period.year and c.county == region.county), None)
    if cap is None:
        return last_tce * period.gdp / period.last_year_gdp * (1 - basic), False
    year_end = year_bounds(period.year)[1]
    profile = lookup.context.budget.profile
    share = 1.0 if period.end == year_end else profile.expected_share(period.end)
    return cap.cap_tce * share, True
