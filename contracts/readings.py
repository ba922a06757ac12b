"""Meter readings: what a meter measured over one interval.

A reading's natural key is ``(meter_id, period_start)``: the same reading delivered twice is the
same row. ``period_start`` labels the *start* of the interval, as the national online-monitoring
platform does (DOMAIN.md §5).

Each energy type is its own model so the physical unit sits in the field name
(``consumption_kwh``, ``consumption_m3``); ``MeterReading`` is the discriminated union of them.
"""

from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from contracts.identifiers import EnterpriseCode, MeterId, UtcDatetime

READING_SCHEMA_VERSION: Final = 1


class EnergyType(StrEnum):
    ELECTRICITY = "electricity"
    NATURAL_GAS = "natural_gas"


class _ReadingBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = READING_SCHEMA_VERSION
    enterprise_code: EnterpriseCode
    meter_id: MeterId
    period_start: UtcDatetime
    interval_seconds: int = Field(default=900, gt=0, le=86_400 * 31)
    source: str = Field(default="simulator", pattern=r"^[a-z0-9_.\-]{1,32}$")

    @property
    def physical_quantity(self) -> float:
        """The consumption in the energy type's own unit (see ``physical_unit``)."""
        raise NotImplementedError

    @property
    def physical_unit(self) -> str:
        raise NotImplementedError


class ElectricityReading(_ReadingBase):
    """Active energy consumed over the interval, in kWh."""

    energy_type: Literal[EnergyType.ELECTRICITY] = EnergyType.ELECTRICITY
    consumption_kwh: float = Field(ge=0, allow_inf_nan=False)

    @property
    def physical_quantity(self) -> float:
        return self.consumption_kwh

    @property
    def physical_unit(self) -> str:
        return "kWh"


class NaturalGasReading(_ReadingBase):
    """Natural gas consumed over the interval, in cubic metres at standard conditions."""

    energy_type: Literal[EnergyType.NATURAL_GAS] = EnergyType.NATURAL_GAS
    consumption_m3: float = Field(ge=0, allow_inf_nan=False)

    @property
    def physical_quantity(self) -> float:
        return self.consumption_m3

    @property
    def physical_unit(self) -> str:
        return "m3"


MeterReading = Annotated[ElectricityReading | NaturalGasReading, Field(discriminator="energy_type")]

_reading_adapter: TypeAdapter[ElectricityReading | NaturalGasReading] = TypeAdapter(MeterReading)


class ReadingDecodeError(ValueError):
    """A payload that is not a valid reading.

    ``kind`` is one of a small fixed set (``not_json``, ``wrong_schema``, ``empty``) fit for a
    metric label; ``reason`` says exactly what was wrong, for the sender and the dead letter.
    """

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def decode_reading(raw: bytes) -> ElectricityReading | NaturalGasReading:
    """Parse one JSON payload into a reading, or raise ``ReadingDecodeError`` with the reason."""
    try:
        return _reading_adapter.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        kind = "not_json" if first["type"] == "json_invalid" else "wrong_schema"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        what = "not JSON" if kind == "not_json" else "wrong schema"
        raise ReadingDecodeError(kind, f"{what}: {where}: {first['msg']}{more}") from exc


def encode_reading(reading: ElectricityReading | NaturalGasReading) -> bytes:
    """The reading's wire form: compact JSON, UTF-8."""
    return reading.model_dump_json().encode()
