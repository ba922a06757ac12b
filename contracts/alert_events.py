"""Alert events: what happened to one alert, as recorded in history and sent to the alerts topic.

An *alert* is one rule's complaint about one subject (a meter, monitor, unit or region), from
the moment its condition fired until it resolved; ``alert_id`` names it. An *event* is one
thing that happened to it: fired, escalated, repeated, acknowledged, silenced, resolved;
``event_id`` names that. Both are digests of the inputs (``alerts.lifecycle``), so the same
readings replayed give the same ids and every store and receiver can de-duplicate on them.

``enterprise_code`` is None for regional alerts (a county's barometer, a county budget);
``region_code`` is the county (or city) the subject belongs to, for routing to supervisors
and for scoping the Alerts API. ``deliver`` False means the event is recorded but not sent
(a replay, a silence or maintenance window: ``suppressed_by`` says which).
"""

from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.identifiers import EnterpriseCode, UtcDatetime

ALERT_SCHEMA_VERSION: Final = 2

#: A GB/T 2260 administrative division code: province ``140000``, city ``140800``, county
#: ``140882``.
RegionCode = Annotated[str, Field(pattern=r"^\d{6}$")]

_Id = Annotated[str, Field(min_length=16, max_length=64, pattern=r"^[0-9a-f]+$")]


class AlertSeverity(StrEnum):
    """Same values as ``alerts.rules.condition.Severity``; ``info`` is for the record (for
    example a product above the national benchmark but within its limit)."""

    INFO = "info"
    NOTICE = "notice"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertKind(StrEnum):
    FIRED = "fired"
    ESCALATED = "escalated"
    REPEATED = "repeated"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    SILENCED = "silenced"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Acknowledgement(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str = Field(min_length=1, max_length=128)
    comment: str = Field(max_length=1000)
    at: UtcDatetime
    expires_at: UtcDatetime


class AlertEvent(BaseModel):
    """One event of one alert. ``value`` and ``threshold`` share ``unit`` (e.g. ``"mg/m3"``,
    ``"%"``, ``"kgce/t"``); either may be None where a rule has no number (a device silent,
    no emergency in force). ``at`` is the event time of the data behind it, ``emitted_at``
    the wall time the lifecycle produced it, ``started_at`` when the alert's condition first
    held (event time)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[2] = ALERT_SCHEMA_VERSION
    event_id: _Id
    alert_id: _Id
    kind: AlertKind
    rule_id: str = Field(min_length=1, max_length=128)
    subject: str = Field(min_length=1, max_length=128)
    enterprise_code: EnterpriseCode | None = None
    region_code: RegionCode | None = None
    severity: AlertSeverity
    previous_severity: AlertSeverity | None = None
    value: float | None = Field(default=None, allow_inf_nan=False)
    threshold: float | None = Field(default=None, allow_inf_nan=False)
    unit: str = Field(default="", max_length=32)
    level: str | None = Field(default=None, max_length=32)
    message: str = Field(min_length=1, max_length=2000)
    started_at: UtcDatetime
    at: UtcDatetime
    emitted_at: UtcDatetime
    replay: bool = False
    deliver: bool = True
    suppressed_by: str | None = Field(default=None, max_length=128)
    acknowledgement: Acknowledgement | None = None

    @property
    def status(self) -> AlertStatus:
        """Whether the alert this event belongs to is still on after it."""
        return AlertStatus.RESOLVED if self.kind is AlertKind.RESOLVED else AlertStatus.FIRING

    @property
    def partition_key(self) -> bytes:
        """Kafka key: all events of one enterprise (or one region) stay in order."""
        return (self.enterprise_code or self.region_code or self.subject).encode()


def decode_alert(raw: bytes) -> AlertEvent:
    return AlertEvent.model_validate_json(raw)


def encode_alert(alert: AlertEvent) -> bytes:
    return alert.model_dump_json().encode()
