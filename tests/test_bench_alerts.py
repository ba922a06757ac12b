"""The alert-latency benchmark's core (``energywatch bench alerts``): its probe schedule and
percentiles (pure), and a few seconds of the real thing at tiny rates.

The service test runs the real worker, evaluator and notifier against the real Kafka and
TimescaleDB; the webhook receiver in the test process stands in for an enterprise's endpoint
(a third party's system that cannot run here)."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import alert_probes as probes
from benchmarks.alerts import AlertBenchConfig, measure
from energywatch.settings import Settings
from stream.voc_agent import voc_batch_settings

NOW = datetime(2026, 11, 21, 4, 30, 17, tzinfo=UTC)


@given(monitors=st.integers(1, 12).map(lambda n: 2 * n), count=st.integers(1, 120))
def test_each_probe_follows_a_clear_on_a_monitor_whose_minutes_only_move_forward(
    monitors: int, count: int
) -> None:
    site = probes.probe_site(monitors)
    schedule = probes.ProbeSchedule.ending_near(site, count, NOW)
    sent: list[tuple[str, datetime, float]] = []
    for _ in range(count):
        _seq, probe = schedule.next_probe()
        sent.append((probe.monitor_id, probe.data_time, probe.values[probes.POLLUTANT].avg or 0))
        clear = schedule.next_clear()
        if clear is not None:
            sent.append(
                (clear.monitor_id, clear.data_time, clear.values[probes.POLLUTANT].avg or 0)
            )
    sent += [(c.monitor_id, c.data_time, probes.CLEAR_MG_M3) for c in schedule.clear_all()]

    timelines: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for monitor, at, value in sent:
        timelines[monitor].append((at, value))
    for timeline in timelines.values():
        times = [at for at, _ in timeline]
        assert times == sorted(set(times)), "a monitor's minutes repeat or go back"
        values = [value for _, value in timeline]
        # above and inside the limit alternate: every probe starts a new alert
        assert all(v > probes.SINGLE_LIMIT_MG_M3 for v in values[0::2])
        assert all(v < probes.SINGLE_LIMIT_MG_M3 * 0.95 for v in values[1::2])
        assert len(values) % 2 == 0, "a probe was left firing"
        assert times[-1] < NOW, "a minute in the future"
        assert NOW - times[0] < timedelta(hours=6), "old enough to count as a replay"


def test_a_fired_notification_matches_the_probe_of_its_monitor_and_minute_only() -> None:
    site = probes.probe_site(2)
    schedule = probes.ProbeSchedule.ending_near(site, 2, NOW)
    sent = []
    for seq in range(2):
        _, sample = schedule.next_probe()
        value = sample.values[probes.POLLUTANT].avg or 0
        sent.append(probes.Probe(seq, sample.monitor_id, sample.data_time, value, NOW))
    first = sent[0]

    def arrival(subject: str, at: datetime, after: float) -> probes.Arrival:
        from contracts.alert_events import AlertEvent, AlertKind, AlertSeverity

        event = AlertEvent(
            event_id="e" * 16,
            alert_id="a" * 16,
            kind=AlertKind.FIRED,
            rule_id=probes.RULE_ID,
            subject=subject,
            severity=AlertSeverity.CRITICAL,
            message="above",
            started_at=at,
            at=at,
            emitted_at=NOW,
        )
        return probes.Arrival(event, NOW + timedelta(seconds=after), "e" * 16, False)

    outcomes = probes.match(
        sent,
        [
            arrival(first.subject, first.alert_at, 0.4),
            arrival(first.subject, first.alert_at + timedelta(minutes=1), 0.1),
        ],
    )
    assert [len(o.told) for o in outcomes] == [1, 0]
    assert outcomes[0].latency_seconds == pytest.approx(0.4)
    assert probes.unmatched_fired(sent, [arrival(first.subject, NOW, 0.1)]) == 1


@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=200))
def test_percentiles_lie_between_the_extremes_in_order(values: list[float]) -> None:
    got = probes.summary(values)
    assert got["count"] == len(values)
    p50, p90, p99, top = (float(got[k] or 0) for k in ("p50", "p90", "p99", "max"))
    assert round(min(values), 3) <= p50 <= p90 <= p99 <= top == round(max(values), 3)


def test_voc_batches_close_sooner_than_readings_batches_but_never_later() -> None:
    # a VOC sample above its single-reading limit is an alert: it should not wait out the
    # readings' batch timer (the largest part of its Kafka-to-stored time, bench alerts)
    assert voc_batch_settings(Settings(worker_batch_seconds=0.5)).worker_batch_seconds == 0.1
    assert voc_batch_settings(Settings(worker_batch_seconds=0.05)).worker_batch_seconds == 0.05


@pytest.mark.services
def test_every_probe_is_told_exactly_once_under_a_little_background_load(
    pipeline_settings, tmp_path
) -> None:
    config = AlertBenchConfig(
        seconds=4,
        background_rate=50,
        probe_rate=2,
        units=5,
        lead_in_seconds=1,
        drain_seconds=30,
        warmup_timeout_seconds=90,
    )
    run = measure(pipeline_settings, config, tmp_path, lambda _message: None)

    assert len(run.outcomes) == 8
    once = [sum(not a.duplicate for a in o.told) for o in run.outcomes]
    assert once == [1] * 8, run.results["probes"]
    assert run.results["probes"]["lost"] == 0
    assert run.results["probes"]["fired_events_matching_no_probe"] == 0
    latency = run.results["latency_seconds"]
    assert latency["count"] == 8
    assert 0 < latency["p50"] <= latency["max"]
    # the stored timestamps account for every told probe, stage by stage
    assert all(s["count"] == 8 for s in run.results["stages_seconds"].values())
    assert run.results["background"]["produce_failures"] == 0
    assert run.results["background"]["achieved_rate"] > 25
