"""The worker's pure decoding step, without Kafka: every record is a reading or a reason."""

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from contracts.readings import ElectricityReading, ReadingDecodeError, encode_reading
from stream.accounting import decode_records
from stream.batch import RawRecord

CODE = "91350100M000100Y43"


def records(*payloads: bytes | None) -> list[RawRecord]:
    return [RawRecord(p, "readings", 0, i) for i, p in enumerate(payloads)]


def test_bad_records_get_their_reason_and_good_ones_decode():
    good = ElectricityReading(
        enterprise_code=CODE,
        meter_id="M1",
        period_start=datetime(2026, 11, 20, tzinfo=UTC),
        consumption_kwh=5000,
    )
    decoded = decode_records(records(encode_reading(good), b"{oops", None, b'{"energy_type":"x"}'))
    assert decoded[0][1] == good
    errors = [d for _, d in decoded[1:]]
    assert all(isinstance(e, ReadingDecodeError) for e in errors)
    assert [e.kind for e in errors if isinstance(e, ReadingDecodeError)] == [
        "not_json",
        "empty",
        "wrong_schema",
    ]
    assert [r.offset for r, _ in decoded] == [0, 1, 2, 3]


@given(st.lists(st.one_of(st.binary(max_size=64), st.none()), max_size=20))
def test_no_payload_is_lost_every_record_is_either_a_reading_or_a_reason(payloads):
    decoded = decode_records(records(*payloads))
    assert [r.value for r, _ in decoded] == payloads
