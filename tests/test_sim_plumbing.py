"""The simulator's plumbing: fast reading JSON, emission order, record files, pacing."""

import gzip
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.readings import EnergyType, decode_reading, encode_reading
from simulators.emission import EmissionQueue
from simulators.pacing import Speed, paced
from simulators.reading_json import encode_sample, to_reading
from simulators.record_file import RecordFileError, decode_line, read_records, write_records
from simulators.records import Channel, MeterSample, SimRecord
from tests.strategies import aware_datetimes, enterprise_codes, meter_ids

T0 = datetime(2026, 11, 2, tzinfo=UTC)
values = st.one_of(
    st.none(),
    st.floats(min_value=0, max_value=1e14, allow_nan=False),
    st.floats(min_value=0, max_value=1e-6),
    st.floats(min_value=1e15, max_value=1e300),
)


@st.composite
def samples(draw: st.DrawFn) -> MeterSample:
    consumption = draw(values)
    counter = draw(values if consumption is not None else values.filter(lambda v: v is not None))
    return MeterSample(
        enterprise_code=draw(enterprise_codes()),
        meter_id=draw(meter_ids),
        energy_type=draw(st.sampled_from(EnergyType)),
        period_start=draw(aware_datetimes),
        interval_seconds=draw(st.sampled_from([900, 1800, 3600, 86400])),
        consumption=consumption,
        counter=counter,
    )


@given(samples())
def test_the_fast_reading_json_is_byte_identical_to_the_contracts_encoder(sample):
    fast = encode_sample(sample)
    assert fast == encode_reading(to_reading(sample))
    assert decode_reading(fast) == to_reading(sample)


def record(minutes: float, key: str = "M1", payload: bytes = b"{}") -> SimRecord:
    return SimRecord(T0 + timedelta(minutes=minutes), Channel.READINGS, key, payload)


def test_the_emission_queue_releases_in_emit_order_and_keeps_ties_in_generation_order():
    queue = EmissionQueue()
    queue.push([record(30, "late"), record(15, "a"), record(15, "b"), record(45, "later")])
    assert [r.key for r in queue.release_until(T0 + timedelta(minutes=30))] == ["a", "b", "late"]
    assert len(queue) == 1
    assert [r.key for r in queue.drain()] == ["later"]


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=1e6),
            meter_ids,
            st.binary(max_size=40),
            st.booleans(),
        ),
        max_size=20,
    )
)
def test_a_record_survives_a_line_round_trip_whether_json_or_raw_bytes(rows):
    for minutes, key, raw, malformed in rows:
        payload = raw if malformed else b'{"x":1}'
        original = SimRecord(
            T0 + timedelta(minutes=minutes), Channel.VOC, key, payload, malformed=malformed
        )
        from simulators.record_file import encode_line

        assert decode_line(encode_line(original)) == original


def test_record_files_are_byte_identical_when_written_twice_even_gzipped(tmp_path):
    records = [record(i, f"M{i % 3}", f'{{"n":{i}}}'.encode()) for i in range(100)]
    for name in ("a.jsonl.gz", "b.jsonl.gz", "c.jsonl"):
        write_records(tmp_path / name, records)
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()
    assert (
        gzip.decompress((tmp_path / "a.jsonl.gz").read_bytes())
        == (tmp_path / "c.jsonl").read_bytes()
    )
    assert list(read_records(tmp_path / "a.jsonl.gz")) == records


def test_a_line_that_is_not_a_record_names_its_line_number():
    with pytest.raises(RecordFileError, match="line 7"):
        decode_line(b'{"hello": "world"}', 7)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_at_60x_an_hour_of_emission_takes_a_minute():
    clock = FakeClock()
    records = [record(m) for m in (0, 15, 30, 45, 60)]
    assert list(paced(records, Speed.parse("60x"), clock=clock, sleep=clock.sleep)) == records
    assert clock.now == pytest.approx(60.0)


def test_max_speed_never_sleeps_but_a_rate_limit_does():
    clock = FakeClock()
    records = [record(m) for m in range(10)]
    list(paced(records, Speed.parse("max"), clock=clock, sleep=clock.sleep))
    assert clock.sleeps == []
    list(paced(records, Speed.parse("max"), max_rate=5, clock=clock, sleep=clock.sleep))
    assert clock.now == pytest.approx(9 / 5)


@pytest.mark.parametrize("text", ["fast", "0x", "-2x", "x", ""])
def test_a_bad_speed_is_refused_with_the_accepted_forms(text):
    with pytest.raises(ValueError, match="max, realtime"):
        Speed.parse(text)
