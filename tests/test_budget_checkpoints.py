"""A budget is judged at every China-local midnight between a change and the data's end, so
when its share, pace or forecast crosses a line is dated the same however far behind the
evaluator was (the end-to-end demo's pace recovery was dated a day late when the readings
worker ran ahead of the evaluator)."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from alerts.sources.budgets import checkpoints, use_until
from alerts.sources.inputs import RuleInputs
from contracts.identifiers import CHINA_STANDARD_TIME as CST
from storage.alert_dirty import Dirty
from stream.windows import WindowSize, window_start
from tests.test_alert_sources import (
    CEMENT,
    connect,
    context,
    cst,
    put_months,
    put_rollup,
    put_span,
    run,
    services,
)

instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


def test_a_change_on_one_day_judged_two_days_later_is_judged_at_each_midnight_between():
    assert checkpoints(cst(2025, 3, 1, 6), cst(2025, 1, 1), cst(2025, 3, 3, 12)) == [
        cst(2025, 3, 2),
        cst(2025, 3, 3),
        cst(2025, 3, 3, 12),
    ]


def test_a_live_change_within_the_day_is_judged_at_the_data_s_end_only():
    assert checkpoints(cst(2025, 3, 3, 11), cst(2025, 1, 1), cst(2025, 3, 3, 12)) == [
        cst(2025, 3, 3, 12)
    ]


def test_a_change_before_the_data_begins_is_judged_from_the_data_s_first_day():
    points = checkpoints(cst(2024, 12, 1), cst(2025, 1, 2, 9), cst(2025, 1, 4, 0, 15))
    assert points == [cst(2025, 1, 3), cst(2025, 1, 4), cst(2025, 1, 4, 0, 15)]


@given(instants, st.timedeltas(timedelta(0), timedelta(days=40)), st.timedeltas(timedelta(0)))
def test_checkpoints_rise_end_at_the_data_s_end_and_are_cst_midnights_before_it(
    since, length, head
):
    first = since - min(head, timedelta(days=400))
    last_end = since + length + timedelta(minutes=15)
    points = checkpoints(since, first, last_end)
    assert points[-1] == last_end
    assert points == sorted(set(points))
    for p in points[:-1]:
        assert since < p < last_end
        assert p.astimezone(CST).time().isoformat() == "00:00:00"
    assert len(points) <= length.days + 2


@given(
    st.lists(st.integers(0, 1000), min_size=12, max_size=12),
    st.lists(st.integers(0, 100), min_size=31, max_size=31),
    st.integers(1, 30),
)
def test_use_up_to_a_midnight_is_the_whole_months_before_and_the_month_s_days_before(
    monthly, daily, day
):
    months = {cst(2025, m, 1).astimezone(UTC): float(t) for m, t in enumerate(monthly, 1)}
    days = {cst(2025, 5, d).astimezone(UTC): float(t) for d, t in enumerate(daily, 1)}
    at = cst(2025, 5, day + 1)
    assert window_start(at, WindowSize.MONTH) == cst(2025, 5, 1)
    assert use_until(at, months, days) == sum(monthly[:4]) + sum(daily[:day])


@services
def test_an_evaluator_two_days_behind_dates_each_day_s_share_at_its_midnight(database_settings):
    async def scenario():
        async with await connect(database_settings) as conn:
            await put_months(conn, "unit", CEMENT, 2025, [100.0, 100.0, 25.0])
            for day, tce in ((1, 10.0), (2, 10.0), (3, 5.0)):
                await put_rollup(
                    conn, "unit", CEMENT, WindowSize.DAY, cst(2025, 3, day), tce_counted=tce
                )
            await put_span(conn, "unit", CEMENT, cst(2025, 1, 1), cst(2025, 3, 3, 11, 45))
            now = cst(2025, 3, 3, 12, 30)
            return await RuleInputs(context()).on_dirty(
                conn, [Dirty(CEMENT, "readings", cst(2025, 3, 1, 6))], now
            )

    conditions = run(scenario)
    share = [(c.at, c.value) for c in conditions if c.rule_id == "energy-budget.unit.share"]
    assert share == [
        (cst(2025, 3, 2), 0.21),
        (cst(2025, 3, 3), 0.22),
        (cst(2025, 3, 3, 12), 0.225),
    ]
    forecast = [c.at for c in conditions if c.rule_id == "budget-forecast.unit"]
    assert forecast == [at for at, _ in share]
