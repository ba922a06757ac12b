"""Faults on demand: each fault type shows up exactly where it was scheduled, and nowhere else.

Timeline of the test meter, one interval per column (15 min each, starting 00:00 UTC):

    interval   0    1    2    3    4    5    6    7    8    9
    true kWh   10   11   12   13   14   15   16   17   18   19
    fault           ^ scheduled here (interval 3), for one interval unless said otherwise
"""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from contracts.readings import EnergyType
from simulators.faults import FaultEvent, FaultInjector, FaultSpec, FaultType
from simulators.records import Channel, MeterSample, SimRecord

T0 = datetime(2026, 11, 2, tzinfo=UTC)
STEP = timedelta(minutes=15)
AT = T0 + 3 * STEP


def true_samples(meter: str = "M1") -> list[MeterSample]:
    counter = 1000.0
    out = []
    for i in range(10):
        consumption = 10.0 + i
        counter += consumption
        out.append(
            MeterSample(
                "91350100M000100Y43",
                meter,
                EnergyType.ELECTRICITY,
                T0 + i * STEP,
                900,
                consumption,
                counter,
            )
        )
    return out


def counter_before(meter: str, at: datetime) -> float:
    counters = [s.counter for s in true_samples(meter) if s.period_start < at]
    assert counters[-1] is not None
    return counters[-1]


def run(*specs: FaultSpec) -> tuple[list[MeterSample], list[SimRecord], FaultInjector]:
    injector = FaultInjector(list(specs), seed=1, counter_lookup=counter_before)
    reported, records = [], []
    for sample in true_samples():
        bent = injector.apply_value_faults(sample)
        reported.append(bent)
        emitted = SimRecord(
            sample.period_start + STEP,
            Channel.READINGS,
            sample.meter_id,
            f'{{"i":{sample.consumption}}}'.encode(),
        )
        records.extend(injector.apply_delivery_faults(emitted, sample.period_start))
    return reported, records, injector


def one(type_: FaultType, **kw) -> FaultSpec:
    return FaultSpec(type=type_, target="M1", start=AT, end=AT + STEP, **kw)


def test_a_gap_drops_exactly_the_scheduled_interval():
    _, records, injector = run(one(FaultType.GAP))
    assert len(records) == 9
    assert all(r.emit_at != AT + STEP for r in records)
    assert injector.events == [FaultEvent(FaultType.GAP, "M1", AT)]


def test_a_stuck_meter_repeats_the_last_good_value_for_the_window():
    spec = FaultSpec(type=FaultType.STUCK, target="M1", start=AT, end=AT + 3 * STEP)
    reported, _, injector = run(spec)
    assert [s.consumption for s in reported] == [10, 11, 12, 12, 12, 12, 16, 17, 18, 19]
    assert [s.counter for s in reported][2:6] == [1033.0] * 4
    assert [e.period_start for e in injector.events] == [AT, AT + STEP, AT + 2 * STEP]


def test_a_spike_multiplies_one_interval_and_moves_the_counter_with_it():
    reported, _, _ = run(one(FaultType.SPIKE, factor=10))
    assert reported[3].consumption == 130.0
    assert reported[2].consumption == 12.0
    assert reported[4].consumption == 14.0
    assert reported[3].counter == 1046.0 + 117.0


def test_a_counter_reset_restarts_the_register_at_the_scheduled_interval():
    reported, _, _ = run(FaultSpec(type=FaultType.COUNTER_RESET, target="M1", start=AT))
    counters = [s.counter for s in reported]
    assert counters[2] == 1033.0
    assert counters[3] == 13.0  # just this interval's consumption
    assert counters[4] == 27.0
    assert [s.consumption for s in reported] == [10.0 + i for i in range(10)]


def test_a_counter_rollover_wraps_the_register_exactly_at_the_scheduled_interval():
    reported, _, injector = run(
        FaultSpec(type=FaultType.COUNTER_ROLLOVER, target="M1", start=AT, modulus=1e6)
    )
    counters = [s.counter for s in reported]
    assert all(c is not None and c > 999_900 for c in counters[:3])  # near the maximum
    assert counters[2] == pytest.approx(1e6 - 1)
    assert counters[3] == pytest.approx(13.0 - 1)
    assert counters[4] == pytest.approx(27.0 - 1)
    assert injector.events == [FaultEvent(FaultType.COUNTER_ROLLOVER, "M1", AT)]


def test_a_duplicate_sends_the_same_bytes_twice_the_second_time_later():
    _, records, _ = run(one(FaultType.DUPLICATE, delay_seconds=600))
    copies = [r for r in records if r.payload == b'{"i":13.0}']
    assert [c.emit_at for c in copies] == [AT + STEP, AT + STEP + timedelta(seconds=600)]


def test_a_late_record_is_sent_after_its_delay():
    _, records, _ = run(one(FaultType.LATE, delay_seconds=7200))
    late = next(r for r in records if r.payload == b'{"i":13.0}')
    assert late.emit_at == AT + STEP + timedelta(hours=2)


def test_out_of_order_delays_only_the_window_and_can_reorder_it():
    spec = FaultSpec(
        type=FaultType.OUT_OF_ORDER,
        target="M1",
        start=AT,
        end=AT + 4 * STEP,
        max_jitter_seconds=3600,
    )
    _, records, _ = run(spec)
    on_time = [r for r in records if r.emit_at - STEP in {T0 + i * STEP for i in range(10)}]
    assert len(on_time) >= 6  # everything outside the window leaves on time
    order = sorted(records, key=lambda r: r.emit_at)
    assert [r.payload for r in order] != [r.payload for r in records]


def test_clock_drift_slides_timestamps_off_the_period_start_from_the_schedule_on():
    spec = FaultSpec(type=FaultType.CLOCK_DRIFT, target="M1", start=AT, drift_seconds_per_day=9600)
    reported, _, _ = run(spec)
    assert reported[2].period_start == T0 + 2 * STEP
    assert reported[3].period_start == AT
    assert reported[4].period_start == AT + STEP + timedelta(seconds=100)


def test_a_malformed_record_is_corrupted_and_marked_so():
    _, records, _ = run(one(FaultType.MALFORMED))
    bad = [r for r in records if r.malformed]
    assert len(bad) == 1
    assert bad[0].emit_at == AT + STEP
    assert bad[0].payload != b'{"i":13.0}'


def test_probability_faults_are_deterministic_for_a_seed():
    spec = FaultSpec(type=FaultType.GAP, target="M1", probability=0.5)
    first = [r.emit_at for r in run(spec)[1]]
    assert first == [r.emit_at for r in run(spec)[1]]
    assert 0 < len(first) < 10


def test_other_meters_are_untouched():
    spec = FaultSpec(type=FaultType.SPIKE, target="M2", start=T0)
    reported, records, injector = run(spec)
    assert reported == true_samples()
    assert len(records) == 10
    assert injector.events == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "gap", "target": "M1"}, "give a start, a probability, or both"),
        ({"type": "counter_reset", "target": "M1", "probability": 0.1}, "happens once"),
        (
            {
                "type": "gap",
                "target": "M1",
                "start": "2026-11-02T01:00:00Z",
                "end": "2026-11-02T00:00:00Z",
            },
            "end must be after start",
        ),
        ({"type": "smoke", "target": "M1", "start": "2026-11-02T00:00:00Z"}, "type"),
    ],
)
def test_an_incoherent_fault_is_refused_with_a_clear_message(fields, message):
    with pytest.raises(ValidationError, match=message):
        FaultSpec.model_validate(fields)
