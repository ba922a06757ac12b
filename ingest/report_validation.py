"""Validation at the edge for daily and monthly reports: energy totals, product output, output
value and value added. Pure, like ``ingest.validation`` whose rejection kinds it shares.

Periods follow the national platform's rule (DOMAIN.md §5): a day starts at 00:00 China time
± 1 minute, a month on the 1st at 00:00 ± 1 day; a start within the tolerance is moved onto the
boundary (with a warning), anything else is refused.
"""

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from pydantic import ValidationError

from contracts.identifiers import CHINA_STANDARD_TIME
from contracts.production import (
    AnyProductionReport,
    EnergyTotalReport,
    OutputValueReport,
    ProductOutputReport,
    ValueAddedReport,
)
from contracts.readings import READING_MODELS, EnergyType
from ingest.validation import FUTURE_TOLERANCE, OLDEST_ACCEPTED, UNITS, Rejection, _number, _reject

DAY_TOLERANCE: Final = timedelta(minutes=1)
MONTH_TOLERANCE: Final = timedelta(days=1)
MONEY_UNITS: Final = {"cny": 1.0, "10^4cny": 10_000.0}
PRODUCT_UNITS: Final = {
    "t": ("output_t", 1.0),
    "kt": ("output_t", 1000.0),
    "mwh": ("output_mwh", 1.0),
}
REPORT_KINDS: Final = ("energy_total", "product_output", "output_value", "value_added")
_FIELDS: Final = {"kind", "period", "period_start", "energy_type", "product_code", "value", "unit"}


def _snap(raw: Any, period: str, now: datetime) -> tuple[datetime, tuple[str, ...]] | Rejection:
    if not isinstance(raw, str):
        return _reject("bad_timestamp", "period_start is missing: e.g. 2026-03-01T00:00:00+08:00")
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        return _reject("bad_timestamp", f"period_start {raw!r} is not ISO 8601")
    if at.tzinfo is None:
        at = at.replace(tzinfo=CHINA_STANDARD_TIME)
    local = at.astimezone(CHINA_STANDARD_TIME)
    if period == "day":
        nearest = (local + timedelta(hours=12)).replace(hour=0, minute=0, second=0, microsecond=0)
        tolerance = DAY_TOLERANCE
    else:
        shifted = local + timedelta(days=15)
        nearest = shifted.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        tolerance = MONTH_TOLERANCE
    if abs(local - nearest) > tolerance:
        return _reject(
            "bad_period",
            f"a {period} starts at {'00:00' if period == 'day' else 'the 1st, 00:00'} China time: "
            f"{raw} is not within {tolerance} of one",
        )
    if nearest > now + FUTURE_TOLERANCE:
        return _reject("future_timestamp", f"period_start {raw} is in the future")
    if nearest < now - OLDEST_ACCEPTED:
        return _reject(
            "too_old", f"period_start {raw} is more than {OLDEST_ACCEPTED.days} days old"
        )
    warnings = () if local == nearest else (f"period_start {raw} moved to {nearest.isoformat()}",)
    return nearest, warnings


def check_report(
    item: Any, *, enterprise_code: str, now: datetime
) -> tuple[AnyProductionReport, tuple[str, ...]] | Rejection:
    """One report item from ``enterprise_code``: ``{"kind", "period", "period_start", "value",
    "unit"}`` plus ``energy_type`` (energy_total) or ``product_code`` (product_output)."""
    if not isinstance(item, Mapping):
        return _reject("wrong_schema", f"a report is a JSON object, not {type(item).__name__}")
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        return _reject("wrong_schema", f"unexpected field(s): {', '.join(unknown)}")
    kind = item.get("kind")
    period = item.get("period", "month")
    if period not in ("day", "month") or (
        kind in ("output_value", "value_added") and period != "month"
    ):
        return _reject("bad_period", f"period {period!r} is not allowed for {kind}")
    value = _number(item, "value")
    if isinstance(value, Rejection):
        return value
    if value is None:
        return _reject("wrong_schema", "value is missing")
    snapped = _snap(item.get("period_start"), str(period), now)
    if isinstance(snapped, Rejection):
        return snapped
    start, warnings = snapped
    unit = str(item.get("unit", "")).replace(" ", "").lower()
    common = {"enterprise_code": enterprise_code, "period_start": start}
    try:
        report: AnyProductionReport
        if kind == "energy_total":
            try:
                energy = EnergyType(str(item.get("energy_type")))
            except ValueError:
                return _reject(
                    "wrong_schema", f"energy_type {item.get('energy_type')!r} is unknown"
                )
            factor = UNITS[energy].get(unit)
            if factor is None:
                return _reject(
                    "wrong_unit", f"unit {item.get('unit')!r} is not a unit of {energy.value}"
                )
            suffix = READING_MODELS[energy].physical_unit.lower()
            report = EnergyTotalReport(
                energy_type=energy,
                period=period,
                **common,
                **{f"consumption_{suffix}": value * factor},
            )
        elif kind == "product_output":
            field = PRODUCT_UNITS.get(unit)
            if field is None:
                return _reject(
                    "wrong_unit", f"unit {item.get('unit')!r}: product output is in t, kt or MWh"
                )
            report = ProductOutputReport(
                product_code=item.get("product_code"),
                period=period,
                **common,
                **{field[0]: value * field[1]},
            )
        elif kind in ("output_value", "value_added"):
            money = MONEY_UNITS.get(unit)
            if money is None:
                return _reject(
                    "wrong_unit", f"unit {item.get('unit')!r}: money is in CNY or 10^4 CNY"
                )
            if kind == "output_value":
                report = OutputValueReport(**common, output_value_cny=value * money)
            else:
                report = ValueAddedReport(**common, value_added_cny=value * money)
        else:
            return _reject(
                "wrong_schema",
                f"kind {kind!r} is not one of {', '.join(REPORT_KINDS)}",
            )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "item"
        return _reject("wrong_schema", f"{where}: {first['msg']}")
    return report, warnings
