"""Bad input on the readings topic goes to the dead-letter topic; the worker keeps going."""

import json
from datetime import UTC, datetime

import pytest

from contracts.dead_letters import decode_dead_letter
from contracts.readings import ElectricityReading, encode_reading
from tests.conftest import wait_until
from tests.pipeline import metric_value, produce_raw, read_topic, stored_count

pytestmark = pytest.mark.services
CODE = "91350100M000100Y43"


def test_bad_records_are_dead_lettered_with_reason_and_raw_bytes_and_the_worker_keeps_running(
    pipeline_settings, start_service
):
    settings = pipeline_settings
    good = [
        ElectricityReading(
            enterprise_code=CODE,
            meter_id=f"M{i}",
            period_start=datetime(2026, 11, 1, tzinfo=UTC),
            consumption_kwh=10,
        )
        for i in range(3)
    ]
    wrong_schema = json.dumps({"energy_type": "electricity", "meter_id": "M9"}).encode()
    not_json = b"\x00\x01 not json"
    worker = start_service("worker", settings)
    produce_raw(
        settings,
        [
            (b"M0", encode_reading(good[0])),
            (b"x", not_json),
            (b"M1", encode_reading(good[1])),
            (b"y", wrong_schema),
            (b"z", None),
            (b"M2", encode_reading(good[2])),
        ],
    )

    letters = [
        decode_dead_letter(r.value) for r in read_topic(settings, settings.dead_letter_topic, 3)
    ]
    by_raw = {letter.raw: letter for letter in letters}
    assert set(by_raw) == {not_json, wrong_schema, b""}
    assert by_raw[not_json].kind == "not_json"
    assert by_raw[wrong_schema].kind == "wrong_schema"
    assert "enterprise_code" in by_raw[wrong_schema].reason
    assert by_raw[b""].kind == "empty"
    assert all(letter.source_topic == settings.readings_topic for letter in letters)

    wait_until(lambda: stored_count(settings) == 3, 60, what="the good readings stored")
    assert worker.alive()
    assert (
        metric_value(
            settings.worker_metrics_port,
            "energywatch_stream_dead_letters_total",
            {"kind": "not_json"},
        )
        == 1
    )
