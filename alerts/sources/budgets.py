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

It is also judged at every China-local midnight between the change and the data's end
(``checkpoints``), on the use up to that midnight. So when a crossing is dated does not
depend on how far the data had got when the evaluator looked: an evaluator that falls a day
behind a fast replay dates a budget's recovery at the midnight after it, not a day late.
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
from storage.alert_inputs import data_spans, period_tce
from stream.windows import WindowSize, window_end, window_start

_KIND = {BudgetScope.UNIT: "unit", BudgetScope.COUNTY: "county"}
Budget = tuple[BudgetScope, str, int]  # scope, subject, year


def checkpoints(since: datetime, first: datetime, last_end: datetime) -> list[datetime]:
    """When a budget whose data spans ``[first, last_end)`` and changed from ``since`` is
    judged: each China-local midnight after the change and before the data's end, then the
    data's end. ``last_end`` is at most the year's last instant (a year judged as a whole)."""
    start = max(since, first)
    points = []
    midnight = window_end(window_start(start, WindowSize.DAY), WindowSize.DAY)
    while midnight < last_end:
        points.append(midnight)
        midnight = window_end(midnight, WindowSize.DAY)
    return [*points, last_end]


def use_until(
    at: datetime, months: Mapping[datetime, float], days: Mapping[datetime, float]
) -> float:
    """Energy used in the year up to ``at``: whole months before ``at``'s month, then the
    days of its month that start before ``at`` (the day containing ``at`` holds the data up
    to ``at`` only when ``at`` is the data's end)."""
    month = window_start(at, WindowSize.MONTH)
    return sum(tce for start, tce in months.items() if start < month) + sum(
        tce for start, tce in days.items() if month <= start < at
    )


def _budgets(
    lookup: Lookup, since: Mapping[str, datetime], now: datetime
) -> dict[Budget, tuple[float, datetime]]:
    """Every (scope, subject, year) a change touched that has a budget: the budget, and the
    earliest change of the subject's data."""
    budgets: dict[Budget, tuple[float, datetime]] = {}

    def add(budget: Budget, amount: float, first: datetime) -> None:
        earlier = budgets.get(budget)
        budgets[budget] = (amount, first if earlier is None else min(first, earlier[1]))

    for code, first in since.items():
        enterprise = lookup.enterprises.get(code)
        if enterprise is None:
            continue
        plan = lookup.plan_of(enterprise)
        caps = plan.targets.total_consumption.caps if plan else ()
        for year in range(year_of(first), max(year_of(first), year_of(now)) + 1):
            unit_budget = enterprise.budget_tce(year)
            if unit_budget is not None:
                add((BudgetScope.UNIT, code, year), unit_budget, first)
            cap = next((c for c in caps if c.year == year and c.county == enterprise.county), None)
            if cap is not None:
                add((BudgetScope.COUNTY, enterprise.county, year), cap.cap_tce, first)
    return budgets


async def judge_budgets(
    conn: psycopg.AsyncConnection[TupleRow],
    lookup: Lookup,
    since: Mapping[str, datetime],
    now: datetime,
) -> list[Condition]:
    """The share, pace and forecast conditions of the budgets of the units whose energy
    changed from ``since[code]`` on, and of their counties' budgets, at each checkpoint."""
    budgets = _budgets(lookup, since, now)
    if not budgets:
        return []
    periods = [(_KIND[scope], subject, *year_bounds(year)) for scope, subject, year in budgets]
    spans = {
        (span.subject_kind, span.subject, year_of(span.period_start)): span
        for span in await data_spans(conn, periods)
    }
    judged: dict[Budget, list[datetime]] = {}
    for (scope, subject, year), (_, changed) in budgets.items():
        span = spans.get((_KIND[scope], subject, year))
        if span is not None:  # no data this year: nothing measured against the budget yet
            last_end = min(span.last_end, last_instant(year_bounds(year)[1]))
            judged[scope, subject, year] = checkpoints(changed, span.first, last_end)
    if not judged:
        return []
    years = [year for _, _, year in judged]
    start, end = year_bounds(min(years))[0], year_bounds(max(years))[1]
    subjects = sorted({(_KIND[scope], subject) for scope, subject, _ in judged})
    months: dict[tuple[str, str], dict[datetime, float]] = defaultdict(dict)
    for row in await period_tce(conn, subjects, WindowSize.MONTH, start, end):
        months[row.subject_kind, row.subject][row.period_start] = row.tce_counted
    first_month = min(window_start(points[0], WindowSize.MONTH) for points in judged.values())
    days: dict[tuple[str, str], dict[datetime, float]] = defaultdict(dict)
    for row in await period_tce(conn, subjects, WindowSize.DAY, first_month, end):
        days[row.subject_kind, row.subject][row.period_start] = row.tce_counted
    conditions: list[Condition] = []
    for (scope, subject, year), points in sorted(judged.items()):
        key = (_KIND[scope], subject)
        span = spans[key[0], subject, year]
        year_start, year_end = year_bounds(year)
        in_year_months = {m: t for m, t in months[key].items() if year_start <= m < year_end}
        in_year_days = {d: t for d, t in days[key].items() if year_start <= d < year_end}
        for at in points:
            use = BudgetUse(
                subject=subject,
                scope=scope,
                at=at,
                used_tce=use_until(at, in_year_months, in_year_days),
                annual_budget_tce=budgets[scope, subject, year][0],
                enterprise_code=subject if scope is BudgetScope.UNIT else None,
                monitored_from=span.first,
            )
            conditions += evaluate_budget(use, lookup.context.budget)
            conditions.append(evaluate_forecast(use, lookup.context.forecast))
    return conditions
