"""Alert events: a rule's verdict about one subject, as sent to the alerts topic.

``alert_id`` is deterministic (rule, subject and the period that triggered it), so the same
readings replayed produce the same id and downstream stores can de-duplicate on it.
"""

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.identifiers import EnterpriseCode, UtcDatetime

ALERT_SCHEMA_VERSION: Final = 1


class AlertSeverity(StrEnum):
    NOTICE = "notice"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class AlertEvent(BaseModel):
    """One alert about one subject (a meter, unit or region) of one enterprise or region.

    ``observed_value`` and ``threshold_value`` share the unit named in ``value_unit``
    (for example ``"kWh/900s"``), since one alert contract serves rules over many quantities.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = ALERT_SCHEMA_VERSION
    alert_id: str = Field(min_length=16, max_length=64)
    rule_id: str = Field(min_length=1, max_length=64)
    status: AlertStatus = AlertStatus.FIRING
    severity: AlertSeverity
    enterprise_code: EnterpriseCode
    subject: str = Field(min_length=1, max_length=128)
    period_start: UtcDatetime
    window_seconds: int = Field(gt=0)
    observed_value: float = Field(allow_inf_nan=False)
    threshold_value: float = Field(allow_inf_nan=False)
    value_unit: str = Field(min_length=1, max_length=32)
    message: str = Field(min_length=1, max_length=1000)
    raised_at: UtcDatetime


def alert_id_for(rule_id: str, subject: str, period_start: datetime, status: AlertStatus) -> str:
    """A stable id for one rule's verdict on one subject and period."""
    key = f"{rule_id}|{subject}|{period_start.isoformat()}|{status.value}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def decode_alert(raw: bytes) -> AlertEvent:
    return AlertEvent.model_validate_json(raw)


def encode_alert(alert: AlertEvent) -> bytes:
    return alert.model_dump_json().encode()
