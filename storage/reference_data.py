"""Reference data for the dashboards: the register and the city plans as rows of the ``ref_*``
tables (migration 0008), which the stream never writes.

:func:`reference_rows` is pure: a register and the plans in, every table's rows out.
:func:`replace_reference_data` writes them (every table emptied and refilled in one
transaction, so a dashboard never sees half a sync); :func:`sync_reference_data` migrates,
then does that, for the command line and the main job.

A unit's product levels follow the alert evaluator's rule: the register's limits for a product
it lists, else the unit's city plan's for the same product (and the unit's route), national or
the unit's own city's only.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg.rows import TupleRow

from plans.register import EnterpriseEntry, Product, ProductEnergyLimit, Register
from plans.targets import CityPlan, ReductionTarget
from storage.migrate import migrate

Row = tuple[Any, ...]

#: table -> its columns, in the order :class:`ReferenceData` holds each row's values
COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "ref_cities": (
        "city",
        "division",
        "name_zh",
        "province_zh",
        "plan_revision",
        "first_year",
        "last_year",
    ),
    "ref_counties": ("county", "city", "name_zh"),
    "ref_units": (
        "enterprise_code",
        "name",
        "city",
        "county",
        "industry",
        "two_high",
        "emergency_grade",
    ),
    "ref_unit_budgets": ("enterprise_code", "year", "budget_tce", "source"),
    "ref_product_limits": (
        "enterprise_code",
        "product_code",
        "product_name_zh",
        "product_unit",
        "route",
        "level",
        "scope",
        "value",
        "value_unit",
        "source",
    ),
    "ref_meters": ("meter_id", "enterprise_code", "energy_type", "excluded_from_totals"),
    "ref_voc_limits": (
        "monitor_id",
        "pollutant",
        "enterprise_code",
        "standard",
        "hourly_avg_mg_m3",
        "single_mg_m3",
    ),
    "ref_plan_targets": (
        "region_kind",
        "region",
        "division",
        "indicator",
        "first_year",
        "last_year",
        "value",
        "assigned_by_province",
        "source",
    ),
    "ref_sync": ("register_name", "plans", "synced_at"),
}


@dataclass(frozen=True)
class ReferenceData:
    """Every ``ref_*`` table's rows, by table name (values in :data:`COLUMNS` order)."""

    tables: Mapping[str, Sequence[Row]] = field(default_factory=dict)

    def rows(self, table: str) -> Sequence[Row]:
        return self.tables.get(table, ())

    def counts(self) -> dict[str, int]:
        return {table: len(self.rows(table)) for table in COLUMNS}


def reference_rows(
    register: Register, plans: Mapping[str, CityPlan], *, synced_at: datetime
) -> ReferenceData:
    """The ``ref_*`` rows for ``register`` and the city ``plans`` (city id -> plan)."""
    if synced_at.tzinfo is None:
        raise ValueError("synced_at must be timezone-aware")
    cities: list[Row] = []
    counties: dict[str, Row] = {}
    targets: list[Row] = []
    for city_id, plan in sorted(plans.items()):
        period = plan.period
        cities.append(
            (
                city_id,
                plan.city.division,
                plan.city.name_zh,
                plan.city.province_zh,
                plan.revision,
                period.first_year,
                period.last_year,
            )
        )
        counties.update((c.division, (c.division, city_id, c.name_zh)) for c in plan.counties)
        targets += _plan_targets(plan)
    for enterprise in register.enterprises:
        # a county the register names that no plan lists still gets a row, without a name
        counties.setdefault(enterprise.county, (enterprise.county, enterprise.city, None))
    units = [
        (
            e.code,
            e.name,
            e.city,
            e.county,
            e.industry,
            e.two_high,
            e.emergency_grade,
        )
        for e in register.enterprises
    ]
    budgets = [
        (e.code, b.year, b.budget_tce, b.source)
        for e in register.enterprises
        for b in e.energy_budgets
    ]
    limits = [row for e in register.enterprises for row in _product_rows(e, plans.get(e.city))]
    meters = [
        (m.meter_id, m.enterprise_code, m.energy_type.value, m.excluded_from_totals)
        for m in register.meters
    ]
    voc = [
        (
            monitor.mn,
            code,
            monitor.enterprise_code,
            monitor.standard,
            limit.hourly_avg_mg_m3,
            limit.single_mg_m3,
        )
        for monitor in register.voc_monitors
        for code, limit in sorted(monitor.limits.items())
    ]
    revisions = ", ".join(f"{city}:{plan.revision}" for city, plan in sorted(plans.items()))
    return ReferenceData(
        {
            "ref_cities": cities,
            "ref_counties": sorted(counties.values()),
            "ref_units": units,
            "ref_unit_budgets": budgets,
            "ref_product_limits": limits,
            "ref_meters": meters,
            "ref_voc_limits": voc,
            "ref_plan_targets": targets,
            "ref_sync": [(register.name, revisions, synced_at)],
        }
    )


def _reduction(
    kind: str, region: str, division: str, indicator: str, years: tuple[int, int], target: Any
) -> Row:
    value = target.reduction_pct if isinstance(target, ReductionTarget) else target
    assigned = isinstance(target, ReductionTarget) and target.assigned_by_province
    source = target.source if isinstance(target, ReductionTarget) else ""
    return (kind, region, division, indicator, years[0], years[1], value, assigned, source)


def _plan_targets(plan: CityPlan) -> list[Row]:
    city, division = plan.city.id, plan.city.division
    period = (plan.period.first_year, plan.period.last_year)
    intensity = plan.targets.intensity
    rows = [_reduction("city", city, division, "intensity_basic_pct", period, intensity.basic)]
    if intensity.incentive is not None:
        rows.append(
            _reduction(
                "city", city, division, "intensity_incentive_pct", period, intensity.incentive
            )
        )
    for year in intensity.annual:
        for indicator, pct in (
            ("intensity_basic_pct", year.basic_reduction_pct),
            ("intensity_incentive_pct", year.incentive_reduction_pct),
        ):
            if pct is not None:
                rows.append(
                    (
                        "city",
                        city,
                        division,
                        indicator,
                        year.year,
                        year.year,
                        pct,
                        False,
                        year.source,
                    )
                )
    for county in intensity.counties:
        c = county.county
        figures = [
            ("intensity_basic_pct", period, county.basic_reduction_pct, county.source),
            ("intensity_incentive_pct", period, county.incentive_reduction_pct, county.source),
        ]
        for year in county.annual:
            figures += [
                (
                    "intensity_basic_pct",
                    (year.year, year.year),
                    year.basic_reduction_pct,
                    year.source,
                ),
                (
                    "intensity_incentive_pct",
                    (year.year, year.year),
                    year.incentive_reduction_pct,
                    year.source,
                ),
            ]
        rows += [
            ("county", c, c, indicator, years[0], years[1], pct, False, source)
            for indicator, years, pct, source in figures
            if pct is not None
        ]
    for cap in plan.targets.total_consumption.caps:
        kind, region, area = (
            ("county", cap.county, cap.county) if cap.county else ("city", city, division)
        )
        rows.append(
            (
                kind,
                region,
                area,
                "consumption_cap_tce",
                cap.year,
                cap.year,
                cap.cap_tce,
                False,
                cap.source,
            )
        )
    return rows


def _product_rows(enterprise: EnterpriseEntry, plan: CityPlan | None) -> list[Row]:
    listed = {p.code: p for p in enterprise.products}
    planned = {p.code: p for p in plan.product_limits} if plan else {}
    rows: list[Row] = []
    for code in sorted(listed.keys() | planned.keys()):
        product = listed.get(code) or planned[code]
        levels: tuple[ProductEnergyLimit, ...] = (
            product.applicable_limits() if code in listed else ()
        )
        if not levels and code in planned:
            route = listed[code].route if code in listed else None
            levels = Product(
                code=code, route=route, limits=planned[code].limits
            ).applicable_limits()
        seen: set[tuple[str, str]] = set()
        # a level given both for the unit's route and for every route: the route's own wins
        for limit in sorted(levels, key=lambda x: x.route is None):
            key = (limit.level.value, limit.scope)
            if limit.scope not in ("national", enterprise.city) or key in seen:
                continue
            seen.add(key)
            rows.append(
                (
                    enterprise.code,
                    code,
                    product.name_zh or (planned[code].name_zh if code in planned else None),
                    product.unit,
                    product.route,
                    limit.level.value,
                    limit.scope,
                    limit.value,
                    limit.unit,
                    limit.source,
                )
            )
    return rows


# -- the adapter --------------------------------------------------------------------------------


async def replace_reference_data(
    conn: psycopg.AsyncConnection[TupleRow], data: ReferenceData
) -> dict[str, int]:
    """Empty every ``ref_*`` table and fill it with ``data``, in one transaction; the rows
    written per table."""
    async with conn.transaction():
        await conn.execute("TRUNCATE " + ", ".join(COLUMNS))
        for table, columns in COLUMNS.items():
            rows = data.rows(table)
            if not rows:
                continue
            async with conn.cursor() as cur:
                copy_sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                async with cur.copy(copy_sql) as copy:
                    for row in rows:
                        await copy.write_row(row)
    return data.counts()


async def sync_reference_data(
    database_url: str, register: Register, plans: Mapping[str, CityPlan], *, now: datetime
) -> dict[str, int]:
    """Migrate the database at ``database_url`` and replace its reference data with the
    register's and plans'; the rows written per table."""
    data = reference_rows(register, plans, synced_at=now)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await migrate(conn)
        return await replace_reference_data(conn, data)
