"""Replay into real Kafka: a meter's records keep their order, payloads (event time) are intact."""

import json
from collections import defaultdict

import pytest
from typer.testing import CliRunner

from contracts.partition_keys import unit_key
from energywatch.cli import app
from simulators.kafka_sink import EMIT_AT_HEADER
from simulators.record_file import read_records
from tests.conftest import settings_env
from tests.pipeline import read_topic

pytestmark = pytest.mark.services


def test_replaying_a_scenario_file_into_kafka_keeps_every_meters_order_and_event_time(
    pipeline_settings, tmp_path
):
    settings = pipeline_settings.model_copy(
        update={
            "production_topic": f"{pipeline_settings.readings_topic}.production",
            "voc_topic": f"{pipeline_settings.readings_topic}.voc",
        }
    )
    env = settings_env(settings)
    recording = tmp_path / "faults.jsonl.gz"
    made = CliRunner().invoke(
        app,
        [
            "simulate",
            "--scenario",
            "scenarios/misbehaving-meters.yaml",
            "--duration",
            "6h",
            "--to",
            str(recording),
        ],
        env=env,
    )
    assert made.exit_code == 0, made.output
    records = [r for r in read_records(recording) if r.channel.value == "readings"]
    assert len(records) > 1000

    replayed = CliRunner().invoke(app, ["replay", str(recording), "--speed", "max"], env=env)
    assert replayed.exit_code == 0, replayed.output

    arrived = read_topic(settings, settings.readings_topic, len(records), timeout_s=60)
    assert len(arrived) == len(records)
    sent_by_key: dict[bytes, list[bytes]] = defaultdict(list)
    for record in records:
        sent_by_key[unit_key(record.payload, record.key)].append(record.payload)
    got_by_key: dict[bytes, list[bytes]] = defaultdict(list)
    for message in arrived:
        got_by_key[message.key].append(message.value)
        emit_at = dict(message.headers)[EMIT_AT_HEADER].decode()
        assert emit_at.startswith("2026-03-0")
    assert got_by_key == sent_by_key  # same bytes, same order, unit by unit
    units = {
        json.loads(p)["enterprise_code"].encode() for r in records if (p := r.payload)[:1] == b"{"
    }
    assert units <= set(got_by_key)  # keyed by unit, not by meter
    # event time is inside the untouched payloads; late and out-of-order ones stay so
    first_key = unit_key(records[0].payload, records[0].key)
    first_payload = next(p for p in got_by_key[first_key] if not p.startswith(b"\x00"))
    assert json.loads(first_payload)["period_start"].startswith("2026-03-0")


def test_paced_replay_takes_the_time_its_speed_says(pipeline_settings, tmp_path):
    env = settings_env(pipeline_settings)
    recording = tmp_path / "short.jsonl"
    made = CliRunner().invoke(
        app,
        [
            "simulate",
            "--fleet",
            "scenarios/fleets/one-of-each.yaml",
            "--duration",
            "1h",
            "--to",
            str(recording),
        ],
        env=env,
    )
    assert made.exit_code == 0, made.output
    records = list(read_records(recording))
    span = (records[-1].emit_at - records[0].emit_at).total_seconds()
    import time

    started = time.monotonic()
    result = CliRunner().invoke(app, ["replay", str(recording), "--speed", "900x"], env=env)
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert elapsed >= span / 900 * 0.95
    assert elapsed < span / 900 + 10
