"""Validation at the edge: the same checks whichever channel a reading arrives by.

Pure. Takes one uploaded item (parsed JSON), who sent it, the register and the current time;
returns the contract reading, or a ``Rejection`` whose ``kind`` is one of ``REJECTION_KINDS``
(fit for a metric label) and whose ``reason`` tells the sender exactly what was wrong.

Liberal in what it accepts: convertible units (MWh, kg, MJ, Nm3 ...) are converted to the
contract's unit, numbers sent as strings are read, timestamps without an offset are taken as
China Standard Time (with a warning). Exact about the rest.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from pydantic import ValidationError

from contracts.identifiers import CHINA_STANDARD_TIME
from contracts.readings import READING_MODELS, EnergyType, Reading
from plans.register import Register

#: Every reason an item can be refused; metrics use these as label values.
REJECTION_KINDS: Final = (
    "wrong_schema",
    "unknown_meter",
    "not_your_meter",
    "wrong_unit",
    "not_numeric",
    "negative",
    "out_of_range",
    "bad_timestamp",
    "future_timestamp",
    "too_old",
    "bad_interval",
    "bad_period",
)
ALLOWED_INTERVALS: Final = frozenset({300, 900, 1800, 3600, 86_400})
FUTURE_TOLERANCE: Final = timedelta(minutes=5)
OLDEST_ACCEPTED: Final = timedelta(days=400)

#: Units accepted per energy type, as factors to the contract's unit (the first listed).
UNITS: Final[dict[EnergyType, dict[str, float]]] = {
    EnergyType.ELECTRICITY: {"kwh": 1.0, "mwh": 1000.0, "wh": 0.001},
    EnergyType.NATURAL_GAS: {"m3": 1.0, "nm3": 1.0, "10^4m3": 10_000.0},
    EnergyType.RAW_COAL: {"t": 1.0, "kg": 0.001},
    EnergyType.COKE: {"t": 1.0, "kg": 0.001},
    EnergyType.STEAM: {"t": 1.0, "kg": 0.001},
    EnergyType.HEAT: {"gj": 1.0, "mj": 0.001},
    EnergyType.DIESEL: {"t": 1.0, "kg": 0.001},
    EnergyType.WATER: {"m3": 1.0, "t": 1.0},
}
#: The most one meter can plausibly measure in an hour, in the contract's unit: a 2 GW plant,
#: the largest gas and coal feeds of a steel works, and so on. Anything above is a bad value.
HOURLY_CEILING: Final[dict[EnergyType, float]] = {
    EnergyType.ELECTRICITY: 2_000_000.0,
    EnergyType.NATURAL_GAS: 1_000_000.0,
    EnergyType.RAW_COAL: 2_000.0,
    EnergyType.COKE: 1_000.0,
    EnergyType.STEAM: 5_000.0,
    EnergyType.HEAT: 50_000.0,
    EnergyType.DIESEL: 100.0,
    EnergyType.WATER: 100_000.0,
}


@dataclass(frozen=True)
class Rejection:
    kind: str
    reason: str


@dataclass(frozen=True)
class Accepted:
    reading: Reading
    warnings: tuple[str, ...] = field(default=())


def _reject(kind: str, reason: str) -> Rejection:
    assert kind in REJECTION_KINDS, kind
    return Rejection(kind, reason)


def _number(item: Mapping[str, Any], key: str) -> float | Rejection | None:
    value = item.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return _reject("not_numeric", f"{key} must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        return _reject("not_numeric", f"{key} must be a number, not {shown}")
    if not math.isfinite(number):
        return _reject("not_numeric", f"{key} must be a finite number, not {value!r}")
    if number < 0:
        return _reject(
            "negative", f"{key} is {number:g}: consumption and counters are never negative"
        )
    return number


def _timestamp(
    item: Mapping[str, Any], now: datetime
) -> tuple[datetime, tuple[str, ...]] | Rejection:
    raw = item.get("period_start")
    if not isinstance(raw, str):
        return _reject(
            "bad_timestamp", "period_start is missing: ISO 8601, e.g. 2026-03-02T08:15:00+08:00"
        )
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        return _reject("bad_timestamp", f"period_start {raw!r} is not ISO 8601")
    warnings: tuple[str, ...] = ()
    if at.tzinfo is None:
        at = at.replace(tzinfo=CHINA_STANDARD_TIME)
        warnings = (f"period_start {raw} has no offset: taken as China Standard Time (+08:00)",)
    if at > now + FUTURE_TOLERANCE:
        return _reject(
            "future_timestamp", f"period_start {raw} is in the future (now {now.isoformat()})"
        )
    if at < now - OLDEST_ACCEPTED:
        return _reject(
            "too_old", f"period_start {raw} is more than {OLDEST_ACCEPTED.days} days old"
        )
    return at, warnings


def check_reading(
    item: Any,
    *,
    register: Register,
    sender: str | None,
    now: datetime,
    source: str,
) -> Accepted | Rejection:
    """One uploaded reading: ``{"meter_id", "period_start", "interval_seconds", "unit",
    "value" and/or "counter"}``. ``sender`` is the authenticated enterprise code (None when the
    channel authenticates per device instead)."""
    if not isinstance(item, Mapping):
        return _reject("wrong_schema", f"a reading is a JSON object, not {type(item).__name__}")
    unknown = sorted(
        set(item) - {"meter_id", "period_start", "interval_seconds", "unit", "value", "counter"}
    )
    if unknown:
        return _reject("wrong_schema", f"unexpected field(s): {', '.join(unknown)}")
    meter_id = item.get("meter_id")
    if not isinstance(meter_id, str) or not meter_id:
        return _reject("wrong_schema", "meter_id is missing")
    meter = register.meters_by_id.get(meter_id)
    if meter is None:
        return _reject("unknown_meter", f"meter {meter_id} is not in the register")
    if sender is not None and meter.enterprise_code != sender:
        return _reject("not_your_meter", f"meter {meter_id} belongs to another enterprise")
    unit = item.get("unit")
    factors = UNITS[meter.energy_type]
    factor = factors.get(unit.replace(" ", "").lower()) if isinstance(unit, str) else None
    if factor is None:
        accepted = ", ".join(factors)
        return _reject(
            "wrong_unit",
            f"unit {unit!r} is not a unit of {meter.energy_type.value}: use one of {accepted}",
        )
    value = _number(item, "value")
    if isinstance(value, Rejection):
        return value
    counter = _number(item, "counter")
    if isinstance(counter, Rejection):
        return counter
    if value is None and counter is None:
        return _reject("wrong_schema", "a reading needs value, counter or both")
    interval = item.get("interval_seconds", 900)
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int)
        or interval not in ALLOWED_INTERVALS
    ):
        allowed = ", ".join(str(s) for s in sorted(ALLOWED_INTERVALS))
        return _reject("bad_interval", f"interval_seconds {interval!r} is not one of {allowed}")
    stamped = _timestamp(item, now)
    if isinstance(stamped, Rejection):
        return stamped
    period_start, warnings = stamped
    if value is not None:
        value *= factor
        ceiling = HOURLY_CEILING[meter.energy_type] * interval / 3600
        if value > ceiling:
            return _reject(
                "out_of_range",
                f"value {value:g} {next(iter(factors))} in {interval} s is beyond any single "
                f"{meter.energy_type.value} meter (at most {ceiling:g})",
            )
    if counter is not None:
        counter *= factor
    model = READING_MODELS[meter.energy_type]
    suffix = model.physical_unit.lower()
    try:
        reading = model(
            enterprise_code=meter.enterprise_code,
            meter_id=meter_id,
            period_start=period_start,
            interval_seconds=interval,
            source=source,
            **{f"consumption_{suffix}": value, f"counter_{suffix}": counter},
        )
    except ValidationError as exc:  # the register holds only valid codes: a defect if reached
        return _reject("wrong_schema", str(exc.errors()[0]["msg"]))
    return Accepted(reading, warnings)
