"""What the Alerts API reads and answers (``alerts.api``), as they appear in its OpenAPI
document. Times are UTC; a request's times may carry any offset and are normalised."""

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.alert_events import AlertEvent, AlertSeverity, AlertStatus
from contracts.identifiers import UtcDatetime


class Problem(BaseModel):
    detail: str


#: What every route but ``/healthz`` may answer besides its own codes.
ANSWERS: Final[dict[int | str, dict[str, Any]]] = {
    401: {"model": Problem, "description": "No token, or one nobody holds"}
}
NOT_FOUND: Final[dict[str, Any]] = {
    "model": Problem,
    "description": "Not there, or not visible to this token (the two are not told apart)",
}


class AlertOut(BaseModel):
    """One alert's latest state; ``latest`` is its most recent event."""

    model_config = ConfigDict(from_attributes=True)
    alert_id: str
    rule_id: str
    subject: str
    enterprise_code: str | None
    region_code: str | None
    status: AlertStatus
    severity: AlertSeverity
    started_at: UtcDatetime = Field(description="when the condition first held (event time)")
    last_event_at: UtcDatetime = Field(description="wall time of the latest event")
    resolved_at: UtcDatetime | None
    acknowledged_by: str | None
    ack_comment: str | None
    ack_expires_at: UtcDatetime | None
    replay: bool = Field(description="raised while replaying old data")
    latest: AlertEvent


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null: done")


class HistoryPage(BaseModel):
    alert_id: str
    items: list[AlertEvent]
    next_cursor: str | None


class AcknowledgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field(default="", max_length=1000)
    expires_in_minutes: int = Field(
        default=240,
        ge=1,
        le=7 * 24 * 60,
        description="repeats resume after this (or at once if the alert escalates)",
    )


class SilenceRequest(BaseModel):
    """Patterns are shell-style (``voc-*``). Enterprises may leave ``enterprise`` out (it is
    their own code); supervisors name a unit of their region, or leave it out and name one
    exact subject of their region."""

    model_config = ConfigDict(extra="forbid")
    silence_kind: Literal["silence", "maintenance"] = Field(
        default="silence",
        description="silence: mute notifications (wall time); maintenance: ignore a device's "
        "data from this period (event time)",
    )
    rule: str = Field(default="*", min_length=1, max_length=128)
    subject: str = Field(default="*", min_length=1, max_length=128)
    enterprise: str | None = Field(default=None, min_length=1, max_length=128)
    starts_at: UtcDatetime | None = Field(default=None, description="default: now")
    ends_at: UtcDatetime
    comment: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _ends_after_start(self) -> "SilenceRequest":
        if self.starts_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class EmergencyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    city: str = Field(
        pattern=r"^[a-z]+$",
        max_length=40,
        description="the city's id as the register and plans name it, e.g. yuncheng",
    )
    level: Literal["yellow", "orange", "red"] | None = Field(description="null lifts it")
    at: UtcDatetime | None = Field(default=None, description="when it takes effect; default now")
    lead_time_hours: float | None = Field(default=None, ge=0, le=168)


class CommandAccepted(BaseModel):
    command_id: int
    kind: str
    status_url: str


class SilenceAccepted(CommandAccepted):
    silence_id: str


class SilenceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    silence_id: str
    kind: Literal["silence", "maintenance"]
    rule: str
    subject: str
    enterprise: str
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    created_by: str
    comment: str
    removed_at: UtcDatetime | None


class SilenceList(BaseModel):
    items: list[SilenceOut]


class CommandStatus(BaseModel):
    command_id: int
    kind: str
    state: Literal["pending", "applied", "failed"]
    requested_by: str
    requested_at: UtcDatetime
    applied_at: UtcDatetime | None
    error: str | None
    payload: dict[str, Any]


class Health(BaseModel):
    status: Literal["ok", "database unavailable"]
