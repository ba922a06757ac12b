"""The static threshold rule: a meter using more electricity in one interval than allowed.

Pure: takes readings and a clock value, returns alert events. Normalised to a 15-minute
interval so meters reporting every 30 or 60 minutes are judged on the same scale.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from contracts.alert_events import AlertEvent, AlertSeverity, AlertStatus, alert_id_for
from contracts.readings import ElectricityReading, Reading

REFERENCE_INTERVAL_SECONDS = 900


@dataclass(frozen=True)
class StaticThreshold:
    limit_kwh_per_interval: float
    rule_id: str = "electricity-interval-kwh"
    severity: AlertSeverity = AlertSeverity.WARNING

    def evaluate(self, readings: Iterable[Reading], now: datetime) -> list[AlertEvent]:
        """One firing alert per electricity reading whose 15-minute rate exceeds the limit."""
        alerts = []
        for reading in readings:
            if not isinstance(reading, ElectricityReading) or reading.consumption_kwh is None:
                continue
            per_interval = (
                reading.consumption_kwh * REFERENCE_INTERVAL_SECONDS / reading.interval_seconds
            )
            if per_interval <= self.limit_kwh_per_interval:
                continue
            alerts.append(
                AlertEvent(
                    alert_id=alert_id_for(
                        self.rule_id, reading.meter_id, reading.period_start, AlertStatus.FIRING
                    ),
                    rule_id=self.rule_id,
                    severity=self.severity,
                    enterprise_code=reading.enterprise_code,
                    subject=reading.meter_id,
                    period_start=reading.period_start,
                    window_seconds=reading.interval_seconds,
                    observed_value=round(per_interval, 3),
                    threshold_value=self.limit_kwh_per_interval,
                    value_unit=f"kWh/{REFERENCE_INTERVAL_SECONDS}s",
                    message=(
                        f"meter {reading.meter_id} used {per_interval:,.1f} kWh in 15 min, "
                        f"above the limit of {self.limit_kwh_per_interval:,.1f} kWh"
                    ),
                    raised_at=now,
                )
            )
        return alerts
