"""Operators' requests to the alert evaluator, written by the Alerts API to ``alert_commands``.

The evaluator is the lifecycle's only writer; the API records what was asked (with who asked,
the token's principal, never the token) and the evaluator applies commands in order, stamping
each ``applied_at`` or ``error``. Times are wall times (UTC); silence patterns are shell-style.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.identifiers import UtcDatetime

_STRICT = ConfigDict(frozen=True, extra="forbid")
_Pattern = Annotated[str, Field(min_length=1, max_length=128)]


class Acknowledge(BaseModel):
    """Stop repeats of a firing alert until ``expires_at`` (an escalation ends it early)."""

    model_config = _STRICT
    kind: Literal["acknowledge"] = "acknowledge"
    alert_id: str = Field(min_length=16, max_length=64, pattern=r"^[0-9a-f]+$")
    user: str = Field(min_length=1, max_length=128)
    comment: str = Field(default="", max_length=1000)
    expires_at: UtcDatetime


class AddSilence(BaseModel):
    """Mute notifications of matching alerts (``silence``, wall time) or ignore data from a
    device under maintenance (``maintenance``, event time). Enterprise principals may only
    silence their own code; the API enforces it before writing."""

    model_config = _STRICT
    kind: Literal["silence"] = "silence"
    silence_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")
    silence_kind: Literal["silence", "maintenance"] = "silence"
    rule: _Pattern = "*"
    subject: _Pattern = "*"
    enterprise: _Pattern = "*"
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    created_by: str = Field(min_length=1, max_length=128)
    comment: str = Field(default="", max_length=1000)


class RemoveSilence(BaseModel):
    model_config = _STRICT
    kind: Literal["unsilence"] = "unsilence"
    silence_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")


class DeclareEmergency(BaseModel):
    """A city declares (or changes) a heavy-pollution alert level (DOMAIN.md §8); ``level``
    None lifts it. ``city`` is the city's id as the register and plans name it (``yuncheng``,
    ``EnterpriseEntry.city``, ``PlanCity.id``)."""

    model_config = _STRICT
    kind: Literal["emergency"] = "emergency"
    city: str = Field(pattern=r"^[a-z]+$", max_length=40)
    level: Literal["yellow", "orange", "red"] | None
    at: UtcDatetime
    lead_time_hours: float | None = Field(default=None, ge=0, le=168)


AlertCommand = Annotated[
    Acknowledge | AddSilence | RemoveSilence | DeclareEmergency, Field(discriminator="kind")
]
