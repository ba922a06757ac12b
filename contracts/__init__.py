"""The one wire contract of EnergyWatch.

Every Kafka payload and alert event is a pydantic v2 model defined here: frozen, versioned with
``schema_version``, timezone-aware, units in field names. Nothing in this package does IO.
"""

from contracts.alert_events import AlertEvent, AlertSeverity, AlertStatus
from contracts.dead_letters import DeadLetter
from contracts.readings import (
    ElectricityReading,
    EnergyType,
    MeterReading,
    NaturalGasReading,
    Reading,
    decode_reading,
    encode_reading,
)

__all__ = [
    "AlertEvent",
    "AlertSeverity",
    "AlertStatus",
    "DeadLetter",
    "ElectricityReading",
    "EnergyType",
    "MeterReading",
    "NaturalGasReading",
    "Reading",
    "decode_reading",
    "encode_reading",
]
