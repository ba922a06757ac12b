"""Energy per tonne of product against its limit (warning) and its benchmark (information).

A limit is the most a unit may use per tonne (a plan's retrofit line, such as Yuncheng's
cement clinker ≤ 110 kgce/t, or the national baseline 基准水平); the benchmark (标杆水平) is
the advanced level. Above the limit is a warning (such units are restricted first when power
is rationed, DOMAIN.md §3); between benchmark and limit is information: legal, with room to
improve. Lines come from the caller's plan data, one per product; the rule id carries the
product (``product-energy.<product>``) so a unit with two products has two alerts.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from alerts.rules.condition import Condition, Severity, graded


@dataclass(frozen=True)
class ProductEnergyLimit:
    product: str  # e.g. "cement-clinker"
    limit_per_t: float
    benchmark_per_t: float | None = None
    unit: str = "kgce/t"  # electrolytic aluminium is judged in kWh/t
    source: str = ""

    def __post_init__(self) -> None:
        if self.benchmark_per_t is not None and self.benchmark_per_t >= self.limit_per_t:
            raise ValueError(f"{self.product}: the benchmark must be below the limit")


@dataclass(frozen=True)
class ProductEnergyConfig:
    limits: Mapping[str, ProductEnergyLimit] = field(default_factory=dict)  # by product
    limit_severity: Severity = Severity.WARNING
    benchmark_severity: Severity = Severity.INFO


@dataclass(frozen=True)
class ProductOutput:
    """One unit's energy and output of one product over a period ending at ``at``."""

    subject: str  # the unit's unified social credit code
    product: str
    at: datetime
    energy: float  # in the numerator unit of the product's limit (kgce, or kWh)
    output_t: float


def evaluate_product_energy(output: ProductOutput, config: ProductEnergyConfig) -> Condition | None:
    """The condition for one period's energy per tonne, or None when the product has no
    limit configured or nothing was produced (no tonnes, no ratio)."""
    limit = config.limits.get(output.product)
    if limit is None or output.output_t <= 0:
        return None
    per_t = output.energy / output.output_t
    lines = [(limit.limit_per_t, config.limit_severity)]
    if limit.benchmark_per_t is not None:
        lines.append((limit.benchmark_per_t, config.benchmark_severity))
    severity, line = graded(per_t, tuple(lines))
    if severity is None:
        verdict = "within the benchmark" if limit.benchmark_per_t is not None else "within"
    elif line == limit.limit_per_t:
        verdict = "above the limit 超过限额"
    else:
        verdict = "above the benchmark 高于标杆水平"
    return Condition(
        rule_id=f"product-energy.{output.product}",
        subject=output.subject,
        at=output.at,
        severity=severity,
        value=per_t,
        threshold=line,
        unit=limit.unit,
        message=(
            f"{output.product} at {output.subject}: {per_t:,.1f} {limit.unit}, {verdict} "
            f"(line {line:,.1f} {limit.unit}{'; ' + limit.source if limit.source else ''})"
        ),
        enterprise_code=output.subject,
    )
