"""The alert lifecycle: pending → firing → resolved, hysteresis, escalation, repeats,
acknowledgements, silences, replays, deterministic ids and exact restarts.

Timelines: ``t`` is minutes after T0; a condition "at t" is dated T0 + t minutes and, unless
a test says otherwise, observed at that wall time too.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.lifecycle import (
    AlertLifecycle,
    EventKind,
    LifecycleConfig,
    LifecycleEvent,
    RulePolicy,
    Silence,
    SilenceKind,
    UnknownAlert,
)
from alerts.rules.condition import Condition, Severity
from alerts.rules.energy_budget import BudgetConfig, BudgetScope, BudgetUse, evaluate_budget
from contracts.identifiers import CHINA_STANDARD_TIME

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
UNIT = "91350100M000100Y43"
LINE = 10.0  # fires above 10 (warning), above 20 (critical)


def minutes(t: float) -> datetime:
    return T0 + timedelta(minutes=t)


def reading(
    t: float,
    value: float,
    rule: str = "voc-hourly.a24088",
    subject: str = "YCVOC0001",
    replay: bool = False,
) -> Condition:
    """A condition as a VOC-like rule draws it: warning above 10, critical above 20."""
    if value > 2 * LINE:
        severity, line = Severity.CRITICAL, 2 * LINE
    elif value > LINE:
        severity, line = Severity.WARNING, LINE
    else:
        severity, line = None, LINE
    return Condition(
        rule_id=rule,
        subject=subject,
        at=minutes(t),
        severity=severity,
        value=value,
        threshold=line,
        unit="mg/m3",
        message=f"{value} against {line}",
        enterprise_code=UNIT,
        replay=replay,
    )


def kinds(events: list[LifecycleEvent]) -> list[str]:
    return [e.kind.value for e in events]


def run(lifecycle: AlertLifecycle, steps: list[tuple[float, float]]) -> list[LifecycleEvent]:
    events = []
    for t, value in steps:
        events += lifecycle.observe([reading(t, value)], minutes(t))
    return events


def fresh(**policy: object) -> AlertLifecycle:
    return AlertLifecycle(LifecycleConfig(default=RulePolicy(**policy)))


# -- firing and resolving -----------------------------------------------------------------


def test_an_old_verdict_replayed_after_its_alert_resolved_does_not_reopen_it():
    # fired at 0, resolved at 10; the same data judged again (a replay, a re-judged period)
    # brings the verdict of 0 back after that: stale, even across a restart
    lifecycle = fresh()
    assert kinds(run(lifecycle, [(0, 12.0), (10, 9.0)])) == ["fired", "resolved"]
    restored = AlertLifecycle.restore(lifecycle.config, lifecycle.snapshot())
    for again in (lifecycle, restored):
        assert again.observe([reading(0, 12.0)], minutes(20)) == []
        assert again.alerts() == []
    # news from after the resolution still fires
    assert kinds(lifecycle.observe([reading(15, 12.0)], minutes(20))) == ["fired"]


def test_a_condition_fires_at_once_and_resolves_once_clear_of_the_margin():
    # t:      0     5     10
    # value:  12    9.8   9.0      margin 5% of 10 = 0.5: resolve at ≤ 9.5
    # event:  fired  -    resolved
    lifecycle = fresh()
    events = run(lifecycle, [(0, 12.0), (5, 9.8), (10, 9.0)])
    assert kinds(events) == ["fired", "resolved"]
    fired, resolved = events
    assert (fired.severity, fired.value, fired.threshold) == (Severity.WARNING, 12.0, LINE)
    assert (fired.at, fired.emitted_at, fired.deliver) == (minutes(0), minutes(0), True)
    assert resolved.at == minutes(10)
    assert resolved.alert_id == fired.alert_id
    assert resolved.deliver
    assert lifecycle.alerts() == []


def test_pending_fires_only_once_the_condition_held_for_the_duration():
    # t:      0      15     20     30     45     60
    # value:  12     12     9      12     12     12      pending_for 30 min
    # state:  pend   pend   drop   pend   pend   fired   (held since 30: fires at 30 + 30)
    lifecycle = fresh(pending_for=timedelta(minutes=30))
    assert run(lifecycle, [(0, 12.0), (15, 12.0), (20, 9.0), (30, 12.0), (45, 12.0)]) == []
    assert lifecycle.alert("voc-hourly.a24088", "YCVOC0001").status.value == "pending"
    [fired] = run(lifecycle, [(60, 12.0)])
    assert fired.kind is EventKind.FIRED
    assert (fired.started_at, fired.at) == (minutes(30), minutes(60))


def test_a_condition_with_no_line_resolves_without_hysteresis():
    lifecycle = fresh(margin_ratio=0.5)
    run(lifecycle, [(0, 12.0)])
    gone = Condition("voc-hourly.a24088", "YCVOC0001", minutes(5), None, 9.9, None, "x", "m")
    assert kinds(lifecycle.observe([gone], minutes(5))) == ["resolved"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=9.6, max_value=10.4), min_size=1, max_size=60))
def test_a_value_hovering_at_the_line_fires_once_and_never_flaps(values):
    # margin 5% of 10 = 0.5: nothing in 9.6..10.4 is clear of the line once it fired
    lifecycle = fresh()
    events = run(lifecycle, [(0, 10.5)] + [(i + 1, v) for i, v in enumerate(values)])
    assert kinds(events).count("fired") == 1
    assert "resolved" not in kinds(events)
    assert len(lifecycle.alerts()) == 1
    [resolved] = run(lifecycle, [(len(values) + 1, 9.4)])
    assert resolved.kind is EventKind.RESOLVED


def test_without_a_margin_the_same_hovering_value_does_flap():
    # the control for the test above: hysteresis is what keeps it quiet
    events = run(fresh(margin_ratio=0.0), [(0, 10.5), (1, 9.9), (2, 10.1), (3, 9.9)])
    assert kinds(events) == ["fired", "resolved", "fired", "resolved"]


# -- one alert per rule and subject ---------------------------------------------------------

RULES = ["voc-hourly.a24088", "energy-budget.unit.share"]
SUBJECTS = ["A", "B"]
observations = st.tuples(
    st.sampled_from(RULES),
    st.sampled_from(SUBJECTS),
    # values near the lines (10 and 20) as often as anywhere else
    st.one_of(st.sampled_from([5.0, 9.7, 10.3, 12.0, 25.0]), st.floats(0.0, 30.0)),
    st.sampled_from([0, 5, 15, 30, 60, 240]),  # minutes since the previous observation
    st.sampled_from(["live", "live", "live", "flagged", "late"]),  # how the data came
)


@settings(max_examples=150, deadline=None)
@given(st.lists(observations, max_size=60))
def test_there_is_never_more_than_one_active_alert_per_rule_and_subject(steps):
    lifecycle = fresh(repeat_every=timedelta(minutes=30))
    open_alert: dict[tuple[str, str], str | None] = {}
    t = 0.0
    for rule, subject, value, gap, how in steps:
        t += gap
        condition = reading(t, value, rule, subject, replay=how == "flagged")
        for event in lifecycle.observe([condition], minutes(t)):
            key = (event.rule_id, event.subject)
            if event.kind is EventKind.FIRED:
                assert open_alert.get(key) is None  # a second alert while one is open
                open_alert[key] = event.alert_id
            else:
                assert open_alert.get(key) == event.alert_id
                if event.kind is EventKind.RESOLVED:
                    open_alert[key] = None
        firing = [(a.rule_id, a.subject) for a in lifecycle.alerts()]
        assert len(firing) == len(set(firing))
        assert {k for k, v in open_alert.items() if v} == set(firing)


# -- escalation and repeats ---------------------------------------------------------------


def test_notice_warning_critical_escalate_one_alert_and_falling_back_is_not_news():
    lifecycle = fresh(repeat_every=None)  # daily data: no repeats to count here
    use = [(0, 500.0), (1, 800.0), (2, 900.0), (3, 1000.0), (4, 850.0)]
    events = []
    for day, used in use:
        at = datetime(2026, 12, 1, tzinfo=CHINA_STANDARD_TIME) + timedelta(days=day)
        budget = BudgetUse(UNIT, BudgetScope.UNIT, at, used, 1000.0, UNIT)
        events += lifecycle.observe(evaluate_budget(budget, BudgetConfig()), at)
    share = [e for e in events if e.rule_id == "energy-budget.unit.share"]
    assert kinds(share) == ["fired", "escalated", "escalated"]
    assert [e.severity for e in share] == [Severity.NOTICE, Severity.WARNING, Severity.CRITICAL]
    assert [e.previous_severity for e in share] == [None, Severity.NOTICE, Severity.WARNING]
    assert len({e.alert_id for e in share}) == 1
    assert lifecycle.alert("energy-budget.unit.share", UNIT).severity is Severity.CRITICAL


def test_a_still_firing_alert_repeats_every_interval():
    # repeat every 60 min: t 0 fired, t 30 quiet, t 60 repeated, t 90 quiet, t 120 repeated
    lifecycle = fresh(repeat_every=timedelta(minutes=60))
    events = run(lifecycle, [(t, 12.0) for t in (0, 30, 60, 90, 120)])
    assert kinds(events) == ["fired", "repeated", "repeated"]
    assert [e.at for e in events] == [minutes(0), minutes(60), minutes(120)]
    assert len({e.event_id for e in events}) == 3


def test_an_acknowledgement_holds_back_repeats_until_it_expires():
    lifecycle = fresh(repeat_every=timedelta(minutes=60))
    [fired] = run(lifecycle, [(0, 12.0)])
    [ack] = lifecycle.acknowledge(fired.alert_id, "wang", "on it", minutes(150), minutes(10))
    assert ack.kind is EventKind.ACKNOWLEDGED
    assert (ack.acknowledgement.user, ack.acknowledgement.comment) == ("wang", "on it")
    assert ack.deliver
    assert run(lifecycle, [(60, 12.0), (120, 12.0)]) == []  # acknowledged
    assert kinds(run(lifecycle, [(150, 12.0)])) == ["repeated"]  # expired at 150


def test_an_escalation_breaks_through_an_acknowledgement():
    lifecycle = fresh(repeat_every=timedelta(minutes=60))
    [fired] = run(lifecycle, [(0, 12.0)])
    lifecycle.acknowledge(fired.alert_id, "wang", "on it", minutes(600), minutes(1))
    [escalated] = run(lifecycle, [(5, 25.0)])
    assert escalated.kind is EventKind.ESCALATED
    assert escalated.deliver
    assert lifecycle.alert("voc-hourly.a24088", "YCVOC0001").ack is None
    assert kinds(run(lifecycle, [(65, 25.0)])) == ["repeated"]


def test_acknowledging_an_alert_that_is_not_firing_is_refused():
    lifecycle = fresh()
    with pytest.raises(UnknownAlert):
        lifecycle.acknowledge("nope", "wang", "", minutes(60), minutes(0))
    [fired] = run(lifecycle, [(0, 12.0)])
    with pytest.raises(ValueError, match="expires after"):
        lifecycle.acknowledge(fired.alert_id, "wang", "", minutes(0), minutes(0))


# -- silences, maintenance windows and replays ---------------------------------------------


def test_a_silence_holds_back_the_firing_and_it_goes_out_when_the_silence_ends():
    lifecycle = fresh(repeat_every=timedelta(hours=4))
    assert lifecycle.add_silence(Silence("s1", minutes(0), minutes(30), rule="voc-*"), T0) == []
    [fired] = run(lifecycle, [(10, 12.0)])
    assert fired.kind is EventKind.FIRED
    assert (fired.deliver, fired.suppressed_by) == (False, "s1")
    assert run(lifecycle, [(20, 12.0)]) == []
    # first live, unsilenced observation: the receivers hear of it now, not 4 h later
    [caught_up] = run(lifecycle, [(30, 12.0)])
    assert (caught_up.kind, caught_up.deliver) == (EventKind.REPEATED, True)


def test_a_silence_for_another_enterprise_or_subject_does_not_apply():
    lifecycle = fresh()
    lifecycle.add_silence(Silence("s1", T0, minutes(60), enterprise="91000000*"), T0)
    lifecycle.add_silence(Silence("s2", T0, minutes(60), subject="OTHER"), T0)
    [fired] = run(lifecycle, [(5, 12.0)])
    assert fired.deliver


def test_adding_a_silence_over_a_firing_alert_records_who_silenced_it():
    lifecycle = fresh()
    [fired] = run(lifecycle, [(0, 12.0)])
    silence = Silence("s1", minutes(1), minutes(60), subject="YCVOC*", created_by="li")
    [silenced] = lifecycle.add_silence(silence, minutes(1))
    assert (silenced.kind, silenced.alert_id) == (EventKind.SILENCED, fired.alert_id)
    assert (silenced.deliver, silenced.suppressed_by) == (False, "s1")


def test_a_resolution_under_a_silence_is_still_sent_to_whoever_saw_the_firing():
    lifecycle = fresh()
    run(lifecycle, [(0, 12.0)])
    lifecycle.add_silence(Silence("s1", minutes(1), minutes(60)), minutes(1))
    [resolved] = run(lifecycle, [(5, 5.0)])
    assert (resolved.kind, resolved.deliver) == (EventKind.RESOLVED, True)


def test_an_alert_nobody_was_told_of_resolves_without_a_notice_going_out():
    lifecycle = fresh()
    lifecycle.add_silence(Silence("s1", T0, minutes(60)), T0)
    events = run(lifecycle, [(0, 12.0), (5, 5.0)])
    assert kinds(events) == ["fired", "resolved"]
    assert [e.deliver for e in events] == [False, False]


def test_a_maintenance_window_covers_data_from_its_period_whenever_it_arrives():
    lifecycle = fresh(replay_lag=timedelta(days=1))
    window = Silence("m1", minutes(0), minutes(60), kind=SilenceKind.MAINTENANCE)
    lifecycle.add_silence(window, minutes(0))
    # data from t 30 arriving at t 300: inside the window by event time
    [fired] = lifecycle.observe([reading(30, 12.0)], minutes(300))
    assert (fired.deliver, fired.suppressed_by) == (False, "m1")
    # data from t 90, after the window, goes out
    [caught_up] = lifecycle.observe([reading(90, 12.0)], minutes(300))
    assert caught_up.deliver


def test_alerts_raised_from_old_or_flagged_data_are_marked_replay_and_held_back():
    lifecycle = fresh(replay_lag=timedelta(hours=6))
    # data 7 h old
    [old] = lifecycle.observe([reading(0, 12.0)], minutes(7 * 60))
    assert (old.replay, old.deliver) == (True, False)
    [flagged] = fresh().observe([reading(0, 12.0, replay=True)], minutes(0))
    assert (flagged.replay, flagged.deliver) == (True, False)
    asked = AlertLifecycle(LifecycleConfig(send_replays=True))
    [sent] = asked.observe([reading(0, 12.0, replay=True)], minutes(0))
    assert (sent.replay, sent.deliver) == (True, True)


def test_replayed_observations_do_not_repeat_and_live_ones_catch_up():
    lifecycle = fresh(repeat_every=timedelta(minutes=60))
    [fired] = lifecycle.observe([reading(0, 12.0, replay=True)], minutes(0))
    assert (fired.kind, fired.deliver) == (EventKind.FIRED, False)
    assert lifecycle.observe([reading(120, 12.0, replay=True)], minutes(120)) == []
    [live] = lifecycle.observe([reading(130, 12.0)], minutes(130))
    assert (live.kind, live.deliver, live.replay) == (EventKind.REPEATED, True, False)


# -- ids, ordering, policies ----------------------------------------------------------------


def test_the_same_inputs_give_the_same_event_ids():
    steps = [(0, 12.0), (60, 25.0), (300, 25.0), (400, 5.0), (500, 12.0)]
    first, second = run(fresh(), steps), run(fresh(), steps)
    assert [e.event_id for e in first] == [e.event_id for e in second]
    assert len({e.event_id for e in first}) == len(first)
    assert first[0].alert_id != first[-1].alert_id  # a new alert after the resolution


def test_a_condition_older_than_the_alerts_latest_is_ignored():
    lifecycle = fresh()
    run(lifecycle, [(10, 12.0)])
    assert lifecycle.observe([reading(5, 1.0)], minutes(11)) == []
    assert lifecycle.alert("voc-hourly.a24088", "YCVOC0001") is not None


def test_policies_apply_by_rule_id_or_its_dotted_prefix():
    quick = RulePolicy(pending_for=timedelta(0))
    slow = RulePolicy(pending_for=timedelta(hours=1))
    config = LifecycleConfig(
        default=quick, by_rule={"voc-hourly": slow, "voc-hourly.a25002": quick}
    )
    assert config.policy("voc-hourly.a24088") is slow
    assert config.policy("voc-hourly.a25002") is quick
    assert config.policy("energy-budget.unit.share") is quick
    lifecycle = AlertLifecycle(config)
    assert lifecycle.observe([reading(0, 12.0)], minutes(0)) == []  # pending an hour
    assert kinds(lifecycle.observe([reading(0, 12.0, rule="x")], minutes(0))) == ["fired"]


def test_times_must_be_timezone_aware():
    with pytest.raises(ValueError, match="timezone-aware"):
        fresh().observe([], datetime(2026, 1, 1))


# -- snapshot and restore -------------------------------------------------------------------


def test_a_snapshot_survives_json_and_restores_to_the_same_state():
    lifecycle = fresh(repeat_every=timedelta(minutes=60))
    [fired] = run(lifecycle, [(0, 12.0)])
    lifecycle.acknowledge(fired.alert_id, "wang", "看一下", minutes(90), minutes(1))
    lifecycle.add_silence(Silence("s1", minutes(0), minutes(30), rule="x"), minutes(1))
    lifecycle.observe([reading(2, 15.0, subject="B")], minutes(2))
    snapshot = lifecycle.snapshot()
    restored = AlertLifecycle.restore(lifecycle.config, json.loads(json.dumps(snapshot)))
    assert restored.snapshot() == snapshot
    assert restored.alerts() == lifecycle.alerts()
    with pytest.raises(ValueError, match="version"):
        AlertLifecycle.restore(lifecycle.config, {**snapshot, "version": 99})


observe = st.tuples(st.just("observe"), observations)
actions = st.one_of(
    observe,
    observe,
    observe,  # mostly observations, now and then an acknowledgement or a silence
    st.tuples(st.just("ack"), st.integers(min_value=0, max_value=3), st.integers(1, 300)),
    st.tuples(
        st.just("silence"),
        st.sampled_from(["*", "voc-*", "energy-*"]),
        st.integers(0, 120),
        st.sampled_from([SilenceKind.SILENCE, SilenceKind.MAINTENANCE]),
    ),
)


def play(
    lifecycle: AlertLifecycle, script: list[Any], t: float
) -> tuple[list[LifecycleEvent], float]:
    """Run a script of actions; every action moves the wall clock on by one minute."""
    events: list[LifecycleEvent] = []
    for action in script:
        t += 1
        if action[0] == "observe":
            rule, subject, value, gap, how = action[1]
            t += gap
            at = t - 400 if how == "late" else t  # 400 min late: past the 6 h replay lag
            condition = reading(at, value, rule, subject, replay=how == "flagged")
            events += lifecycle.observe([condition], minutes(t))
        elif action[0] == "ack":
            firing = [a for a in lifecycle.alerts() if a.status.value == "firing"]
            if firing:
                alert = firing[action[1] % len(firing)]
                events += lifecycle.acknowledge(
                    alert.alert_id, "wang", "ok", minutes(t + action[2]), minutes(t)
                )
        else:
            _, rule, length, kind = action
            silence = Silence(
                f"s{int(t)}", minutes(t), minutes(t + length + 1), rule=rule, kind=kind
            )
            events += lifecycle.add_silence(silence, minutes(t))
    return events, t


@settings(max_examples=200, deadline=None)
@given(st.lists(actions, min_size=10, max_size=60), st.data())
def test_a_restored_lifecycle_behaves_exactly_like_an_uninterrupted_one(script, data):
    every = timedelta(minutes=45)
    config = LifecycleConfig(
        default=RulePolicy(repeat_every=every),
        by_rule={"voc-hourly": RulePolicy(pending_for=timedelta(minutes=10), repeat_every=every)},
        silence_retention=timedelta(minutes=30),
    )
    cut = data.draw(st.integers(min_value=0, max_value=len(script)))
    whole = AlertLifecycle(config)
    expected, _ = play(whole, script, 0.0)

    first = AlertLifecycle(config)
    before, t = play(first, script[:cut], 0.0)
    snapshot = json.loads(json.dumps(first.snapshot()))
    restored = AlertLifecycle.restore(config, snapshot)
    assert restored.snapshot() == first.snapshot()
    after, _ = play(restored, script[cut:], t)

    assert before + after == expected
    assert restored.snapshot() == whole.snapshot()
