"""A unit's periods that were not yet settled at its last change are judged when the stream's
watermark passes them, with no further change of the unit. The watermark is the slowest
partition's: with readings lanes finishing apart, the end-to-end demo left a monthly
deviation and a day's completeness unjudged because the unit's last batch came before the
slowest lane caught up."""

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from alerts.rules.condition import Severity
from alerts.sources.inputs import RuleInputs
from alerts.sources.periods import Unsettled, due, judged, touched, windows
from storage.alert_dirty import Dirty
from stream.windows import WindowSize, window_end, window_start
from tests.test_alert_sources import (
    CEMENT,
    EL,
    NG,
    connect,
    context,
    cst,
    put_reading,
    put_uploads,
    run,
    services,
)

instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2025, 12, 31), timezones=st.just(UTC)
)
steps = st.lists(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)), max_size=40)


sizes = st.sampled_from([WindowSize.HOUR, WindowSize.DAY, WindowSize.MONTH])  # what rules judge


@given(instants, st.timedeltas(timedelta(0), timedelta(days=40)), steps, sizes)
def test_every_window_up_to_the_newest_data_is_judged_once_the_watermark_passes_it(
    judged_to, ahead, advances, size
):
    """However the settled time advances after a change, each ``size`` window from the one
    the change was judged up to, through the one holding the unit's newest data, is judged by
    the time the settled time passes its end; the unit is forgotten only after the month of
    its newest data is over."""
    newest = judged_to + ahead
    unsettled = {"u": Unsettled(judged_to=judged_to, newest=newest)}
    covered: set[datetime] = set()
    settled = judged_to
    for step in advances:
        settled += step
        since = due(unsettled, settled, size).get("u")
        if since is not None:
            covered |= {start for start, _ in touched(since, settled, size)}
        unsettled = judged(unsettled, {}, settled)
    expected = {
        start
        for start, end in windows(judged_to, settled, size)
        if start <= newest and end > judged_to
    }
    assert expected <= covered
    month_over = window_end(window_start(newest, WindowSize.MONTH), WindowSize.MONTH) <= settled
    assert ("u" in unsettled) == (not month_over)


@given(instants, instants)
def test_a_unit_is_due_exactly_when_a_window_ended_between_its_judgement_and_now(a, b):
    judged_to, settled = min(a, b), max(a, b)
    unsettled = {"u": Unsettled(judged_to=judged_to, newest=settled)}
    for size in (WindowSize.HOUR, WindowSize.DAY, WindowSize.MONTH):
        ended = any(judged_to < end <= settled for _, end in windows(judged_to, settled, size))
        assert ("u" in due(unsettled, settled, size)) == ended


def test_a_changed_unit_is_kept_with_its_newest_data_and_an_old_one_whose_month_ended_dropped():
    old = {"old": Unsettled(judged_to=cst(2025, 2, 27), newest=cst(2025, 2, 28, 23))}
    after = judged(old, {"new": cst(2025, 3, 3)}, cst(2025, 3, 2))
    assert after == {"new": Unsettled(judged_to=cst(2025, 3, 2), newest=cst(2025, 3, 3))}


@services
def test_a_day_settled_after_the_units_last_change_is_judged_on_the_next_tick_even_after_restart(
    database_settings,
):
    """The unit's first readings of 3 March arrive while the slowest partition is still at
    2 March 23:50: its 2 March is not settled yet. The watermark then moves to 06:00 with no
    further reading of the unit: the next tick judges 2 March's completeness, once."""
    day = cst(2025, 3, 2)

    async def set_watermark(conn, at: datetime) -> None:
        await conn.execute(
            "INSERT INTO stream_progress (consumer, topic, partition, next_offset, watermark)"
            " VALUES ('w', 'readings', 0, 1, %s) ON CONFLICT (consumer, topic, partition)"
            " DO UPDATE SET watermark = excluded.watermark",
            (at,),
        )
        await conn.commit()

    async def scenario():
        async with await connect(database_settings) as conn:
            await put_uploads(conn, day, electricity=86, gas=96)
            await put_reading(conn, EL, cst(2025, 3, 3, 0, 0))
            await set_watermark(conn, cst(2025, 3, 2, 23, 50))
            lagging = context(readings_topic="readings", stream_consumer="w")
            inputs = RuleInputs(lagging)
            inputs._primed = True
            now = cst(2025, 3, 3, 10)
            at_change = await inputs.on_dirty(
                conn, [Dirty(CEMENT, "readings", cst(2025, 3, 3))], now
            )
            restored = RuleInputs.restore(lagging, json.loads(json.dumps(inputs.snapshot())))
            restored._primed = True
            await set_watermark(conn, cst(2025, 3, 3, 6))
            caught_up = await restored.on_tick(conn, now)
            again = await restored.on_tick(conn, now + timedelta(minutes=1))
            return at_change, caught_up, again

    at_change, caught_up, again = run(scenario)

    def completeness(conditions):
        return [
            (c.subject, c.severity, c.at)
            for c in conditions
            if c.rule_id == "data-quality.completeness" and c.at == cst(2025, 3, 3)
        ]

    assert completeness(at_change) == []  # 2 March is not settled at the change
    assert sorted(completeness(caught_up), key=str) == sorted(
        [(EL, Severity.WARNING, cst(2025, 3, 3)), (NG, None, cst(2025, 3, 3))], key=str
    )
    assert completeness(again) == []  # judged once: nothing ended since
