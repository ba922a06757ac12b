"""VOC samples: what an online VOC monitor reported for one minute, hour or day.

A sample is one HJ 212 data upload (CN 2051 minute, 2061 hourly, 2031 daily data) as a
contract: the monitor (HJ 212 ``MN``), the interval it covers (``data_time`` is its *start*,
HJ 212's ``DataTime``) and, per HJ 212 pollutant code, the values and the data flag. Its
natural key is ``(monitor_id, interval_seconds, data_time)``.

Units depend on the pollutant code, so the value fields have neutral names (``avg``, ``min``,
``max``, ``cou``) and ``POLLUTANT_UNITS`` says what each code's values are in. Only values
flagged ``N`` count toward compliance averages (DOMAIN.md §6).
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

from contracts.decoding import DecodeError, decode_json
from contracts.identifiers import EnterpriseCode, UtcDatetime

VOC_SCHEMA_VERSION: Final = 1

#: A monitor's HJ 212 ``MN``: 1–24 letters and digits.
MonitorId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,24}$")]

#: An HJ 212-2017 pollutant code: a letter for the medium and five digits (``a24088``).
PollutantCode = Annotated[str, StringConstraints(pattern=r"^[a-z][0-9]{5}$")]


class DataFlag(StrEnum):
    """HJ 212 data flags. Only ``N`` values count toward compliance averages."""

    NORMAL = "N"
    STOPPED = "F"
    MAINTENANCE = "M"
    MANUAL = "S"
    FAULT = "D"
    CALIBRATION = "C"
    OVER_RANGE = "T"
    COMMUNICATION_FAULT = "B"


@dataclass(frozen=True, slots=True)
class PollutantUnits:
    """What a code's values are in: ``avg``/``min``/``max`` in ``unit``, ``cou`` (the total
    over the interval) in ``cou_unit``, or ``None`` for quantities that have no total."""

    name: str
    name_zh: str
    unit: str
    cou_unit: str | None


#: Units of the HJ 212 codes VOC monitors send. ``cou`` of a concentration is the emitted mass
#: (kg) over the interval; ``cou`` of flow is the volume (m³).
POLLUTANT_UNITS: Final[dict[str, PollutantUnits]] = {
    "a24088": PollutantUnits("non-methane hydrocarbons (NMHC)", "非甲烷总烃", "mg/m3", "kg"),
    "a24087": PollutantUnits("total hydrocarbons", "总烃", "mg/m3", "kg"),
    "a05002": PollutantUnits("methane", "甲烷", "mg/m3", "kg"),
    "a25002": PollutantUnits("benzene", "苯", "mg/m3", "kg"),
    "a25003": PollutantUnits("toluene", "甲苯", "mg/m3", "kg"),
    "a25004": PollutantUnits("ethylbenzene", "乙苯", "mg/m3", "kg"),
    "a25005": PollutantUnits("xylenes", "二甲苯", "mg/m3", "kg"),
    "a00000": PollutantUnits("gas flow", "废气流量", "m3/s", "m3"),
    "a01011": PollutantUnits("flue gas velocity", "烟气流速", "m/s", None),
    "a01012": PollutantUnits("flue gas temperature", "烟气温度", "degC", None),
    "a01013": PollutantUnits("flue gas pressure", "烟气压力", "kPa", None),
    "a01014": PollutantUnits("flue gas humidity", "烟气湿度", "%", None),
    "a19001": PollutantUnits("oxygen", "氧气含量", "%", None),
}

_Number = Annotated[float, Field(allow_inf_nan=False)]


class PollutantValue(BaseModel):
    """One pollutant's values over the interval, in the units ``POLLUTANT_UNITS`` gives.

    Any of the numbers may be missing (HJ 212 allows empty values, e.g. while an analyser is
    under maintenance). They are carried as the monitor reported them: negative values or
    ``min > avg`` are data-quality findings for the stream, not reasons to refuse the sample.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    avg: _Number | None = None
    min: _Number | None = None
    max: _Number | None = None
    cou: _Number | None = None
    flag: DataFlag


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_INTERVAL_ALIGNMENT: Final = {
    60: "a whole minute",
    3600: "a whole hour",
    86_400: "midnight China Standard Time",
}


class VocSample(BaseModel):
    """One monitor's minute (60 s, CN 2051), hourly (3600 s, CN 2061) or daily (86400 s,
    CN 2031) data. ``data_time`` is the interval's start and must sit on its boundary."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = VOC_SCHEMA_VERSION
    monitor_id: MonitorId
    enterprise_code: EnterpriseCode
    data_time: UtcDatetime
    interval_seconds: Literal[60, 3600, 86_400]
    values: dict[PollutantCode, PollutantValue] = Field(min_length=1)
    source: str = Field(default="simulator", pattern=r"^[a-z0-9_.\-]{1,32}$")

    @model_validator(mode="after")
    def _data_time_starts_an_interval(self) -> Self:
        # China Standard Time is UTC+8 whole hours, so minute and hour boundaries agree in
        # both; a CST day starts at 16:00 UTC.
        since_cst_epoch = self.data_time - _EPOCH + timedelta(hours=8)
        if since_cst_epoch % timedelta(seconds=self.interval_seconds):
            where = _INTERVAL_ALIGNMENT[self.interval_seconds]
            raise ValueError(
                f"data_time {self.data_time.isoformat()} of a {self.interval_seconds} s sample"
                f" must be {where}"
            )
        return self


_sample_adapter: Final = TypeAdapter(VocSample)


class VocDecodeError(DecodeError):
    """A payload that is not a valid VOC sample (``kind`` and ``reason`` as in ``DecodeError``)."""


def decode_voc_sample(raw: bytes) -> VocSample:
    """Parse one JSON payload into a VOC sample, or raise ``VocDecodeError`` with the reason."""
    return decode_json(_sample_adapter, raw, VocDecodeError)


def encode_voc_sample(sample: VocSample) -> bytes:
    """The sample's wire form: compact JSON, UTF-8."""
    return sample.model_dump_json().encode()
