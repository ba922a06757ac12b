"""What simulators produce: samples (values, before encoding) and records (bytes, ready to send).

A ``MeterSample`` is one meter's value for one interval, cheap to create by the million (a
named tuple: immutable, and several times cheaper to build than a frozen dataclass) and easy
for fault injection to bend. A ``SimRecord`` is what a device would send and when:
``emit_at`` is the wall-clock instant of sending (after delays and faults), the payload is the
wire form. Sinks (Kafka, files, gateways) only ever see records.
"""

from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from contracts.readings import EnergyType


class Channel(StrEnum):
    """Where a record goes: each channel maps to one Kafka topic or ingest gateway."""

    READINGS = "readings"
    PRODUCTION = "production"
    VOC = "voc"


class MeterSample(NamedTuple):
    enterprise_code: str
    meter_id: str
    energy_type: EnergyType
    period_start: datetime
    interval_seconds: int
    consumption: float | None
    counter: float | None

    def with_values(self, consumption: float | None, counter: float | None) -> "MeterSample":
        return self._replace(consumption=consumption, counter=counter)


class SimRecord(NamedTuple):
    """``malformed`` marks payloads a fault corrupted on purpose (they are not JSON)."""

    emit_at: datetime
    channel: Channel
    key: str
    payload: bytes
    malformed: bool = False
