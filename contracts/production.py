"""Production reports: what enterprises upload beside meter readings (DOMAIN.md §5).

Daily output of each product with an energy limit (so product energy per tonne can be judged),
and monthly output value. ``period_start`` is the China-local start of the day or month,
stored in UTC like every instant in the contracts.
"""

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from contracts.identifiers import EnterpriseCode, UtcDatetime

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


ProductionReport = Annotated[ProductOutputReport | OutputValueReport, Field(discriminator="kind")]
_adapter: TypeAdapter[ProductOutputReport | OutputValueReport] = TypeAdapter(ProductionReport)


def decode_production_report(raw: bytes) -> ProductOutputReport | OutputValueReport:
    return _adapter.validate_json(raw)


def encode_production_report(report: ProductOutputReport | OutputValueReport) -> bytes:
    return report.model_dump_json().encode()
