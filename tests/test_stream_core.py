"""The worker's pure core: decoding, dead letters and the static threshold, without Kafka."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from alerts.static_threshold import StaticThreshold
from contracts.readings import ElectricityReading, NaturalGasReading, encode_reading
from stream.batch import RawRecord, process_batch

CODE = "91350100M000100Y43"
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
THRESHOLD = StaticThreshold(limit_kwh_per_interval=1000.0)


def reading(kwh: float, minutes: int = 0, interval_seconds: int = 900) -> ElectricityReading:
    return ElectricityReading(
        enterprise_code=CODE,
        meter_id="M1",
        period_start=datetime(2026, 11, 20, tzinfo=UTC) + timedelta(minutes=minutes),
        consumption_kwh=kwh,
        interval_seconds=interval_seconds,
    )


def records(*payloads: bytes | None) -> list[RawRecord]:
    return [RawRecord(p, "readings", 0, i) for i, p in enumerate(payloads)]


def test_a_reading_over_the_limit_raises_one_alert_and_one_at_the_limit_does_not():
    alerts = THRESHOLD.evaluate([reading(1000.0), reading(1000.5, minutes=15)], NOW)
    assert len(alerts) == 1
    assert alerts[0].observed_value == 1000.5
    assert alerts[0].period_start == datetime(2026, 11, 20, 0, 15, tzinfo=UTC)


def test_hourly_meters_are_judged_on_their_fifteen_minute_rate():
    assert THRESHOLD.evaluate([reading(3900.0, interval_seconds=3600)], NOW) == []
    assert len(THRESHOLD.evaluate([reading(4100.0, interval_seconds=3600)], NOW)) == 1


def test_gas_readings_are_not_judged_by_the_electricity_threshold():
    gas = NaturalGasReading(
        enterprise_code=CODE, meter_id="G1", period_start=NOW, consumption_m3=1e9
    )
    assert THRESHOLD.evaluate([gas], NOW) == []


def test_the_same_reading_judged_twice_gives_the_same_alert_id():
    first = THRESHOLD.evaluate([reading(5000)], NOW)
    again = THRESHOLD.evaluate([reading(5000)], NOW + timedelta(hours=1))
    assert first[0].alert_id == again[0].alert_id


def test_bad_records_become_dead_letters_with_reason_and_raw_bytes_and_good_ones_pass():
    good = encode_reading(reading(5000))
    outcome = process_batch(records(good, b"{oops", None, b'{"energy_type":"x"}'), THRESHOLD, NOW)
    assert len(outcome.readings) == 1
    assert [d.kind for d in outcome.dead_letters] == ["not_json", "empty", "wrong_schema"]
    assert [d.source_offset for d in outcome.dead_letters] == [1, 2, 3]
    assert outcome.dead_letters[0].raw == b"{oops"
    assert len(outcome.alerts) == 1


@given(st.lists(st.one_of(st.binary(max_size=64), st.none()), max_size=20))
def test_no_payload_is_lost_every_record_is_either_a_reading_or_a_dead_letter(payloads):
    outcome = process_batch(records(*payloads), THRESHOLD, NOW)
    assert len(outcome.readings) + len(outcome.dead_letters) == len(payloads)
