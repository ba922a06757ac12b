"""Energy budgets and their year-end forecast, for units and for their counties.

A unit's budget is the register's (``EnergyBudget``, of the controlled total); a county's is
its city plan's total-consumption cap for the year (``ConsumptionCap`` with the county), when
the plan publishes one. Use so far is the sum of the subject's monthly rollups of every
energy type, exclusions left out (``tce_counted``), from the China-local new year.

A budget is judged as far as its data goes: at the end of the subject's last quarter hour in
the year (so a lagging stream or a replay of old data is paced on what it covers, not on the
wall clock), and from its first quarter hour in the year (``BudgetUse.monitored_from``: a
unit that joined online monitoring in March is paced on the share expected since March).
Every year a change touched is judged, up to the year of ``now``; a year with no data is not.
"""

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from alerts.rules.budget_forecast import evaluate_forecast
from alerts.rules.condition import Condition
from alerts.rules.energy_budget import BudgetScope, BudgetUse, evaluate_budget
from alerts.sources.context import Lookup
from alerts.sources.periods import last_instant, year_bounds, year_of
from storage.alert_inputs import data_spans, monthly_tce

_KIND = {BudgetScope.UNIT: "unit", BudgetScope.COUNTY: "county"}
Budget = tuple[BudgetScope, str, int]  # scope, subject, year


def _budgets(lookup: Lookup, since: Mapping[str, datetime], now: datetime) -> dict[Budget, float]:
    """Every (scope, subject, year) a change touched that has a budget, and the budget."""
    budgets: dict[Budget, float] = {}
    for code, first in since.items():
        enterprise = lookup.enterprises.get(code)
        if enterprise is None:
            continue
        plan = lookup.plan_of(enterprise)
        caps = plan.targets.total_consumption.caps if plan else ()
        for year in range(year_of(first), max(year_of(first), year_of(now)) + 1):
            unit_budget = enterprise.budget_tce(year)
            if unit_budget is not None:
                budgets[BudgetScope.UNIT, code, year] = unit_budget
            cap = next((c for c in caps if c.year == year and c.county == enterprise.county), None)
            if cap is not None:
                budgets[BudgetScope.COUNTY, enterprise.county, year] = cap.cap_tce
    return budgets


async def judge_budgets(
    conn: psycopg.AsyncConnection[TupleRow],
    lookup: Lookup,
    since: Mapping[str, datetime],
    now: datetime,
) -> list[Condition]:
    """The share, pace and forecast conditions of the budgets of the units whose energy
    changed from ``since[code]`` on, and of their counties' budgets."""
    budgets = _budgets(lookup, since, now)
    if not budgets:
        return []
    periods = [(_KIND[scope], subject, *year_bounds(year)) for scope, subject, year in budgets]
    spans = {
        (span.subject_kind, span.subject, year_of(span.period_start)): span
        for span in await data_spans(conn, periods)
    }
    years = [year for _, _, year in budgets]
    start, end = year_bounds(min(years))[0], year_bounds(max(years))[1]
    used: dict[tuple[str, str, int], float] = defaultdict(float)
    subjects = sorted({(kind, subject) for kind, subject, _, _ in periods})
    for row in await monthly_tce(conn, subjects, start, end):
        used[row.subject_kind, row.subject, year_of(row.period_start)] += row.tce_counted
    conditions: list[Condition] = []
    for (scope, subject, year), budget in sorted(budgets.items()):
        key = (_KIND[scope], subject, year)
        span = spans.get(key)
        if span is None:
            continue  # no data this year: nothing measured against the budget yet
        use = BudgetUse(
            subject=subject,
            scope=scope,
            at=min(span.last_end, last_instant(year_bounds(year)[1])),
            used_tce=used[key],
            annual_budget_tce=budget,
            enterprise_code=subject if scope is BudgetScope.UNIT else None,
            monitored_from=span.first,
        )
        conditions += evaluate_budget(use, lookup.context.budget)
        conditions.append(evaluate_forecast(use, lookup.context.forecast))
    return conditions
