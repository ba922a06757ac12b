"""Production reports: what enterprises upload beside meter readings (DOMAIN.md §5).

Daily and monthly totals per energy type, output of each product with an energy limit (so
product energy per tonne can be judged), monthly output value and value added.
``period_start`` is the China-local start of the day or month, stored in UTC like every
instant in the contracts.
"""

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from contracts.identifiers import EnterpriseCode, UtcDatetime
from contracts.readings import READING_MODELS, EnergyType

PRODUCTION_SCHEMA_VERSION: Final = 1


class ProductOutputReport(BaseModel):
    """One product's output over a day or month, in tonnes (or MWh for power plants)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = PRODUCTION_SCHEMA_VERSION
    kind: Literal["product_output"] = "product_output"
    enterprise_code: EnterpriseCode
    product_code: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    period: Literal["day", "month"]
    period_start: UtcDatetime
    output_t: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    output_mwh: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_quantity(self) -> "ProductOutputReport":
        if (self.output_t is None) == (self.output_mwh is None):
            raise ValueError("a product output report has exactly one of output_t, output_mwh")
        return self


class OutputValueReport(BaseModel):
    """Gross output value over a month, in yuan (CNY)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = PRODUCTION_SCHEMA_VERSION
    kind: Literal["output_value"] = "output_value"
    enterprise_code: EnterpriseCode
    period: Literal["month"] = "month"
    period_start: UtcDatetime
    output_value_cny: float = Field(ge=0, allow_inf_nan=False)


class ValueAddedReport(BaseModel):
    """Industrial value added over a month, in yuan (CNY): the denominator of intensity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = PRODUCTION_SCHEMA_VERSION
    kind: Literal["value_added"] = "value_added"
    enterprise_code: EnterpriseCode
    period: Literal["month"] = "month"
    period_start: UtcDatetime
    value_added_cny: float = Field(allow_inf_nan=False)


class EnergyTotalReport(BaseModel):
    """A unit's own daily or monthly figure for one energy type, in the contract's unit for it;
    checked against the sum of its 15-minute readings (DOMAIN.md §5: within 5%)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = PRODUCTION_SCHEMA_VERSION
    kind: Literal["energy_total"] = "energy_total"
    enterprise_code: EnterpriseCode
    energy_type: EnergyType
    period: Literal["day", "month"]
    period_start: UtcDatetime
    consumption_kwh: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    consumption_m3: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    consumption_t: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    consumption_gj: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _the_energy_types_unit(self) -> "EnergyTotalReport":
        expected = f"consumption_{READING_MODELS[self.energy_type].physical_unit.lower()}"
        given = [name for name in _CONSUMPTION_FIELDS if getattr(self, name) is not None]
        if given != [expected]:
            raise ValueError(f"a {self.energy_type.value} total has exactly {expected}")
        return self


_CONSUMPTION_FIELDS = ("consumption_kwh", "consumption_m3", "consumption_t", "consumption_gj")

AnyProductionReport = ProductOutputReport | OutputValueReport | ValueAddedReport | EnergyTotalReport
ProductionReport = Annotated[AnyProductionReport, Field(discriminator="kind")]
_adapter: TypeAdapter[AnyProductionReport] = TypeAdapter(ProductionReport)


def decode_production_report(raw: bytes) -> AnyProductionReport:
    return _adapter.validate_json(raw)


def encode_production_report(report: AnyProductionReport) -> bytes:
    return report.model_dump_json().encode()
