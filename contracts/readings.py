"""Meter readings: what a meter measured over one interval.

A reading's natural key is ``(meter_id, period_start)``: the same reading delivered twice is the
same row. ``period_start`` labels the *start* of the interval, as the national online-monitoring
platform does (DOMAIN.md §5).

Each energy type is its own model so the physical unit sits in the field names
(``consumption_kwh``, ``counter_kwh``; ``consumption_m3`` ...); ``MeterReading`` is the
discriminated union of them. A reading carries the interval's consumption, the meter's
cumulative counter at the end of the interval, or both: meters that only report a counter
leave turning it into consumption (resets, rollovers) to the stream processors.
"""

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    model_validator,
)

from contracts.decoding import DecodeError, decode_json
from contracts.identifiers import EnterpriseCode, MeterId, UtcDatetime

READING_SCHEMA_VERSION: Final = 1


class EnergyType(StrEnum):
    ELECTRICITY = "electricity"
    NATURAL_GAS = "natural_gas"
    RAW_COAL = "raw_coal"
    COKE = "coke"
    STEAM = "steam"
    HEAT = "heat"
    DIESEL = "diesel"
    WATER = "water"


Quantity = Annotated[float | None, Field(ge=0, allow_inf_nan=False)]


class _ReadingBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The physical unit of this energy type, as it appears in the field names' suffix.
    physical_unit: ClassVar[str]

    schema_version: Literal[1] = READING_SCHEMA_VERSION
    enterprise_code: EnterpriseCode
    meter_id: MeterId
    period_start: UtcDatetime
    interval_seconds: int = Field(default=900, gt=0, le=86_400 * 31)
    source: str = Field(default="simulator", pattern=r"^[a-z0-9_.\-]{1,32}$")

    #: the names of this type's quantity and counter fields (set per subclass: the stream
    #: reads them for every reading, so they are not rebuilt each time)
    _quantity_field: ClassVar[str] = ""
    _counter_field: ClassVar[str] = ""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._quantity_field = f"consumption_{cls._suffix()}"
        cls._counter_field = f"counter_{cls._suffix()}"

    @property
    def physical_quantity(self) -> float | None:
        """The interval's consumption in ``physical_unit``, if the meter reported it."""
        value: float | None = getattr(self, self._quantity_field)
        return value

    @property
    def physical_counter(self) -> float | None:
        """The cumulative counter at the end of the interval, if the meter reported it."""
        value: float | None = getattr(self, self._counter_field)
        return value

    @classmethod
    def _suffix(cls) -> str:
        return cls.physical_unit.lower()

    @model_validator(mode="after")
    def _has_a_value(self) -> "_ReadingBase":
        if self.physical_quantity is None and self.physical_counter is None:
            suffix = self._suffix()
            raise ValueError(f"a reading needs consumption_{suffix}, counter_{suffix} or both")
        return self


class ElectricityReading(_ReadingBase):
    """Active energy, in kWh."""

    physical_unit: ClassVar[str] = "kWh"
    energy_type: Literal[EnergyType.ELECTRICITY] = EnergyType.ELECTRICITY
    consumption_kwh: Quantity = None
    counter_kwh: Quantity = None


class NaturalGasReading(_ReadingBase):
    """Natural gas, in cubic metres at standard conditions."""

    physical_unit: ClassVar[str] = "m3"
    energy_type: Literal[EnergyType.NATURAL_GAS] = EnergyType.NATURAL_GAS
    consumption_m3: Quantity = None
    counter_m3: Quantity = None


class RawCoalReading(_ReadingBase):
    """Raw coal, in tonnes."""

    physical_unit: ClassVar[str] = "t"
    energy_type: Literal[EnergyType.RAW_COAL] = EnergyType.RAW_COAL
    consumption_t: Quantity = None
    counter_t: Quantity = None


class CokeReading(_ReadingBase):
    """Coke, in tonnes."""

    physical_unit: ClassVar[str] = "t"
    energy_type: Literal[EnergyType.COKE] = EnergyType.COKE
    consumption_t: Quantity = None
    counter_t: Quantity = None


class SteamReading(_ReadingBase):
    """Steam, in tonnes."""

    physical_unit: ClassVar[str] = "t"
    energy_type: Literal[EnergyType.STEAM] = EnergyType.STEAM
    consumption_t: Quantity = None
    counter_t: Quantity = None


class HeatReading(_ReadingBase):
    """Heat (hot water), in gigajoules."""

    physical_unit: ClassVar[str] = "GJ"
    energy_type: Literal[EnergyType.HEAT] = EnergyType.HEAT
    consumption_gj: Quantity = None
    counter_gj: Quantity = None


class DieselReading(_ReadingBase):
    """Diesel, in tonnes."""

    physical_unit: ClassVar[str] = "t"
    energy_type: Literal[EnergyType.DIESEL] = EnergyType.DIESEL
    consumption_t: Quantity = None
    counter_t: Quantity = None


class WaterReading(_ReadingBase):
    """Water, in cubic metres: metered beside energy, never converted to standard coal."""

    physical_unit: ClassVar[str] = "m3"
    energy_type: Literal[EnergyType.WATER] = EnergyType.WATER
    consumption_m3: Quantity = None
    counter_m3: Quantity = None


#: Any reading, whatever its energy type.
Reading = (
    ElectricityReading
    | NaturalGasReading
    | RawCoalReading
    | CokeReading
    | SteamReading
    | HeatReading
    | DieselReading
    | WaterReading
)
MeterReading = Annotated[Reading, Field(discriminator="energy_type")]

READING_MODELS: Final[dict[EnergyType, type[Reading]]] = {
    EnergyType.ELECTRICITY: ElectricityReading,
    EnergyType.NATURAL_GAS: NaturalGasReading,
    EnergyType.RAW_COAL: RawCoalReading,
    EnergyType.COKE: CokeReading,
    EnergyType.STEAM: SteamReading,
    EnergyType.HEAT: HeatReading,
    EnergyType.DIESEL: DieselReading,
    EnergyType.WATER: WaterReading,
}

_reading_adapter: TypeAdapter[Reading] = TypeAdapter(MeterReading)


class ReadingDecodeError(DecodeError):
    """A payload that is not a valid reading (``kind`` and ``reason`` as in ``DecodeError``)."""


def decode_reading(raw: bytes) -> Reading:
    """Parse one JSON payload into a reading, or raise ``ReadingDecodeError`` with the reason."""
    return decode_json(_reading_adapter, raw, ReadingDecodeError)


def encode_reading(reading: Reading) -> bytes:
    """The reading's wire form: compact JSON, UTF-8, fields in declaration order."""
    return reading.model_dump_json().encode()
