"""The proving ground's pure parts: snapshots and their first difference, kill plans, trends,
``/proc`` parsing, and how a private stack is kept apart from the shared one."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proving_ground.fault_plan import OutagePlan, RebalancePlan, kill_plan
from proving_ground.faults import lost_or_doubled
from proving_ground.private_stack import DEFAULT_PORT_OFFSET, check_apart, private_settings
from proving_ground.process_memory import parse_rss_kib
from proving_ground.snapshot import Part, Snapshot, first_difference
from proving_ground.snapshot_reader import IDENTITY_PARTS
from proving_ground.trend import SoakBounds, judge_lag, judge_memory, second_half, slope
from stack import StackError, StackSettings

rows = st.lists(st.tuples(st.text(max_size=5), st.integers(-5, 5)), max_size=20)


def snapshot(**parts: list[tuple[object, ...]]) -> Snapshot:
    return Snapshot({name: Part.of(("a", "b"), value) for name, value in parts.items()})


@given(rows, st.randoms())
def test_the_order_rows_come_in_never_makes_a_difference(table, rng):
    shuffled = list(table)
    rng.shuffle(shuffled)
    assert first_difference(snapshot(t=table), snapshot(t=shuffled)) is None
    assert Part.of(("a", "b"), table).digest() == Part.of(("a", "b"), shuffled).digest()


@given(rows, st.tuples(st.text(max_size=5), st.integers(-5, 5)))
def test_a_row_added_anywhere_is_found_as_extra(table, row):
    difference = first_difference(snapshot(t=table), snapshot(t=[*table, row]))
    assert difference is not None
    assert difference.extra == tuple(str(v) for v in row)
    assert (difference.missing_count, difference.extra_count) == (0, 1)


def test_a_doubled_row_is_a_difference_though_the_set_of_rows_is_the_same():
    difference = first_difference(snapshot(t=[("x", 1)]), snapshot(t=[("x", 1), ("x", 1)]))
    assert difference is not None
    assert difference.describe() == "t: 0 row(s) missing, 1 extra; first extra a=x, b=1"


def test_the_first_difference_is_in_the_first_part_that_differs_and_names_both_rows():
    reference = snapshot(readings=[("m1", 1)], rollups=[("u1", 10)], alerts=[("a", 1)])
    other = snapshot(readings=[("m1", 1)], rollups=[("u1", 11)], alerts=[])
    difference = first_difference(reference, other)
    assert difference is not None
    assert difference.part == "rollups"
    assert difference.missing == ("u1", "10")
    assert difference.extra == ("u1", "11")
    assert difference.as_json()["first_missing"] == {"a": "u1", "b": "10"}


def test_a_part_missing_from_a_run_is_named():
    difference = first_difference(snapshot(t=[], webhook=[]), snapshot(t=[]))
    assert difference is not None
    assert difference.describe() == "webhook: absent from this run"


def test_nulls_are_shown_as_such_and_do_not_equal_the_text_none():
    assert first_difference(snapshot(t=[(None, 1)]), snapshot(t=[("None", 1)])) is not None


def test_a_kill_plan_is_the_same_for_the_same_seed_and_differs_for_another():
    plan = kill_plan(20, seed=8)
    assert plan == kill_plan(20, seed=8)
    assert plan != kill_plan(20, seed=9)
    assert [p.number for p in plan] == list(range(1, 21))
    assert all(0 <= p.delay_seconds < 1.5 for p in plan)


def test_outages_and_rebalances_come_in_their_order_within_the_feed():
    with pytest.raises(ValueError, match="Kafka first"):
        OutagePlan(kafka_at=0.7, postgres_at=0.6)
    with pytest.raises(ValueError, match="join_at < leave_at"):
        RebalancePlan(join_at=0.8, leave_at=0.2)


@given(
    st.floats(-100, 100, allow_nan=False),
    st.floats(-1000, 1000, allow_nan=False),
    st.integers(3, 50),
)
def test_the_slope_of_a_straight_line_is_its_slope(gradient, intercept, n):
    samples = [(float(t * 5), intercept + gradient * t * 5) for t in range(n)]
    assert slope(samples) == pytest.approx(gradient, abs=1e-6)


def test_the_second_half_starts_at_the_middle_of_the_covered_time():
    assert second_half([(0, 1), (10, 2), (20, 3), (30, 4)]) == [(20, 3), (30, 4)]


BOUNDS = SoakBounds(warmup_seconds=60, rss_growth_mib=64, rss_slope_mib_per_minute=2)


def test_memory_that_settles_after_the_warm_up_is_bounded():
    # climbs during the warm-up, then breathes around 150 MiB
    rss = [(t, 80 + min(t, 60) + (3 if t % 20 else 0)) for t in range(0, 600, 5)]
    verdict = judge_memory(rss, BOUNDS)
    assert verdict.bounded
    assert verdict.growth_mib <= 3


def test_memory_that_climbs_steadily_is_not_bounded_even_within_the_growth_allowance():
    rss = [(t, 150 + t * 0.05) for t in range(0, 600, 5)]  # 3 MiB/min, +27 MiB
    verdict = judge_memory(rss, BOUNDS)
    assert not verdict.bounded
    assert verdict.slope_mib_per_minute == pytest.approx(3.0)


def test_a_lag_that_hovers_does_not_grow_and_one_that_climbs_does():
    steady = [(t, 800 + (400 if t % 10 else -400)) for t in range(0, 600, 5)]
    assert not judge_lag(steady, BOUNDS).grows
    falling_behind = [(t, 800 + 20 * t) for t in range(0, 600, 5)]
    verdict = judge_lag(falling_behind, BOUNDS)
    assert verdict.grows
    assert verdict.slope_records_per_second == pytest.approx(20)


def test_a_run_shorter_than_its_warm_up_cannot_be_judged():
    with pytest.raises(ValueError, match="warm-up"):
        judge_memory([(0, 100), (30, 110)], BOUNDS)


def test_rss_is_read_from_the_vmrss_line_in_kib():
    status = "Name:\tpython\nVmPeak:\t  999 kB\nVmRSS:\t  153600 kB\nThreads:\t4\n"
    assert parse_rss_kib(status) == 153600
    with pytest.raises(ValueError, match="no VmRSS"):
        parse_rss_kib("Name:\tzombie\nState:\tZ (zombie)\n")


def test_a_private_stack_moves_every_port_and_its_home(tmp_path: Path):
    shared = StackSettings(home=tmp_path / "shared")
    private = private_settings(shared, tmp_path / "private", DEFAULT_PORT_OFFSET)
    assert private.home == tmp_path / "private"
    assert (private.kafka_port, private.postgres_port) == (29092, 25432)
    assert (private.prometheus_port, private.mqtt_port, private.kafka_controller_port) == (
        29090,
        21883,
        29093,
    )
    assert private.cache_dir == shared.cache_dir  # downloads are shared, read only


def test_a_private_stack_that_would_share_a_home_or_a_port_is_refused(tmp_path: Path):
    shared = StackSettings(home=tmp_path / "shared")
    with pytest.raises(StackError, match="home"):
        private_settings(shared, tmp_path / "shared", 10_000)
    # 39092 + 3 = 39095 is free, but 39090 + 3 = 39093 is the shared controller's port
    with pytest.raises(StackError, match="overlap"):
        private_settings(shared, tmp_path / "private", 3)
    clash = shared.model_copy(update={"home": tmp_path / "p", "postgres_port": shared.kafka_port})
    with pytest.raises(StackError, match="overlap"):
        check_apart(shared, clash)


def test_a_row_that_changed_names_the_columns_that_changed():
    difference = first_difference(snapshot(t=[("e1", "03:45")]), snapshot(t=[("e1", "06:00")]))
    assert difference is not None
    assert difference.describe() == (
        "t: 1 row(s) missing, 1 extra; first missing (a=e1) vs first extra differ in "
        "b: 03:45 -> 06:00"
    )


def test_an_alert_judged_at_another_time_is_neither_lost_nor_doubled_but_a_missing_one_is():
    def alerts(identity: list[tuple[object, ...]], history: list[tuple[object, ...]]) -> Snapshot:
        parts = {p: Part.of(("a", "b"), []) for p in IDENTITY_PARTS}
        parts["alert_history.identity"] = Part.of(("a", "b"), identity)
        parts["alert_history"] = Part.of(("a", "b"), history)
        return Snapshot(parts)

    reference = alerts([("e1", "resolved")], [("e1", "03:45")])
    assert not lost_or_doubled(reference, alerts([("e1", "resolved")], [("e1", "06:00")]))
    assert lost_or_doubled(reference, alerts([], []))
    assert lost_or_doubled(reference, alerts([("e1", "resolved")] * 2, [("e1", "03:45")] * 2))
