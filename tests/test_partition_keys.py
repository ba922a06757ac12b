"""Every topic is partitioned by unit: a record's Kafka key is the enterprise code its payload
names, whatever the channel; bytes that name no unit still get a key, never an error."""

import json
from datetime import timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from contracts.partition_keys import unit_key
from simulators.records import Channel
from simulators.runner import Simulation
from simulators.scenario import load_scenario

SCENARIOS = Path(__file__).parent.parent / "scenarios"


def test_every_simulated_record_is_keyed_by_the_unit_its_payload_names():
    plan = load_scenario(SCENARIOS / "demo.yaml").plan
    plan.end = plan.start + timedelta(days=1, hours=1)  # past a midnight: production reports
    seen: dict[Channel, int] = dict.fromkeys(Channel, 0)
    for record in Simulation(plan).records():
        if record.malformed:
            assert unit_key(record.payload, record.key) == record.key.encode()
            continue
        unit = json.loads(record.payload)["enterprise_code"]
        assert unit_key(record.payload, record.key) == unit.encode(), record
        assert record.channel is Channel.PRODUCTION or unit != record.key  # a device, not a unit
        seen[record.channel] += 1
    assert all(seen.values()), seen  # readings, VOC samples and production reports alike


@given(st.binary(max_size=300), st.text(min_size=1, max_size=20))
def test_any_bytes_get_a_non_empty_key_and_never_an_error(raw, fallback):
    key = unit_key(raw, fallback)
    assert key
    if b'"enterprise_code":"' not in raw:
        assert key == fallback.encode()


def test_a_payload_with_an_empty_code_is_keyed_by_its_device():
    assert unit_key(b'{"enterprise_code":"","meter_id":"M1"}', "M1") == b"M1"
