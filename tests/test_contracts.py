"""The wire contracts: JSON round trips, UTC normalisation, and exact rejection reasons."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from pydantic import ValidationError

from contracts.alert_events import AlertEvent, decode_alert, encode_alert
from contracts.dead_letters import DeadLetter, decode_dead_letter, encode_dead_letter
from contracts.identifiers import uscc_check_character
from contracts.readings import (
    ElectricityReading,
    ReadingDecodeError,
    decode_reading,
    encode_reading,
)
from tests.strategies import alert_events, readings

CODE = "91350100M000100Y43"  # a published example of a valid unified social credit code


@given(readings)
def test_every_reading_survives_a_json_round_trip(reading):
    assert decode_reading(encode_reading(reading)) == reading


@given(readings)
def test_readings_are_stored_in_utc_whatever_offset_they_were_sent_with(reading):
    assert reading.period_start.utcoffset() == timedelta(0)


@given(alert_events())
def test_every_alert_event_survives_a_json_round_trip(alert):
    assert decode_alert(encode_alert(alert)) == alert


def test_dead_letters_carry_the_raw_bytes_exactly():
    raw = b"\x00\xffnot json at all\n"
    letter = DeadLetter(
        stage="stream.readings",
        kind="not_json",
        reason="not JSON",
        raw_base64=DeadLetter.encode_raw(raw),
        rejected_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert decode_dead_letter(encode_dead_letter(letter)).raw == raw


def test_china_time_and_utc_for_the_same_instant_are_the_same_reading():
    cst = timezone(timedelta(hours=8))
    a = ElectricityReading(
        enterprise_code=CODE,
        meter_id="m",
        period_start=datetime(2026, 1, 1, 8, tzinfo=cst),
        consumption_kwh=1,
    )
    b = ElectricityReading(
        enterprise_code=CODE,
        meter_id="m",
        period_start=datetime(2026, 1, 1, 0, tzinfo=UTC),
        consumption_kwh=1,
    )
    assert a == b
    assert encode_reading(a) == encode_reading(b)


def test_contracts_are_frozen():
    reading = ElectricityReading(
        enterprise_code=CODE,
        meter_id="m",
        period_start=datetime(2026, 1, 1, tzinfo=UTC),
        consumption_kwh=1,
    )
    with pytest.raises(ValidationError):
        reading.consumption_kwh = 2  # type: ignore[misc]


def test_a_naive_timestamp_is_rejected_with_the_field_named():
    payload = {
        "enterprise_code": CODE,
        "meter_id": "m",
        "period_start": "2026-01-01T00:00:00",
        "energy_type": "electricity",
        "consumption_kwh": 1,
    }
    with pytest.raises(ReadingDecodeError) as err:
        decode_reading(json.dumps(payload).encode())
    assert err.value.kind == "wrong_schema"
    assert "period_start" in err.value.reason


@pytest.mark.parametrize(
    ("raw", "kind", "mentions"),
    [
        (b"not json", "not_json", "not JSON"),
        (b'{"energy_type": "electricity"}', "wrong_schema", "enterprise_code"),
        (b'{"energy_type": "plutonium"}', "wrong_schema", "energy_type"),
        (b"[]", "wrong_schema", "payload"),
    ],
)
def test_bad_payloads_say_exactly_what_was_wrong(raw, kind, mentions):
    with pytest.raises(ReadingDecodeError) as err:
        decode_reading(raw)
    assert err.value.kind == kind
    assert mentions in err.value.reason


def test_negative_consumption_and_a_wrong_check_character_are_rejected():
    base = {
        "enterprise_code": CODE,
        "meter_id": "m",
        "period_start": "2026-01-01T00:00:00Z",
        "energy_type": "electricity",
        "consumption_kwh": 1,
    }
    decode_reading(json.dumps(base).encode())  # the valid one passes
    with pytest.raises(ReadingDecodeError, match="consumption_kwh"):
        decode_reading(json.dumps({**base, "consumption_kwh": -1}).encode())
    with pytest.raises(ReadingDecodeError, match="check character"):
        decode_reading(json.dumps({**base, "enterprise_code": CODE[:17] + "4"}).encode())


def test_the_check_character_matches_a_published_example():
    assert uscc_check_character(CODE[:17]) == CODE[17]


def test_unknown_fields_are_rejected_rather_than_silently_dropped():
    alert = AlertEvent.model_json_schema()
    assert alert["additionalProperties"] is False
