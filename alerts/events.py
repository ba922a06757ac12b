"""From the lifecycle's events to the wire contract (pure): ``LifecycleEvent`` → ``AlertEvent``.

The lifecycle knows what happened to an alert; the contract adds where (``region_code``, for
routing and for scoping the Alerts API) and the schema version. Severity, kind and the
acknowledgement map by value. Free text is cut to the contract's lengths and a value that is
not a finite number becomes None, so a rule's odd output still makes a valid event; an
identifier the contract refuses (a malformed credit code) raises ``ValidationError``.
"""

import math
from typing import Final

from alerts.lifecycle import LifecycleEvent
from alerts.rules.condition import Severity
from contracts.alert_events import Acknowledgement, AlertEvent, AlertKind, AlertSeverity

_MESSAGE_MAX: Final = 2000
_UNIT_MAX: Final = 32
_LEVEL_MAX: Final = 32
_SUPPRESSOR_MAX: Final = 128


def alert_severity(severity: Severity) -> AlertSeverity:
    """The contract's severity for the rules' one (same values)."""
    return AlertSeverity(severity.value)


def to_alert_event(event: LifecycleEvent, region_code: str | None) -> AlertEvent:
    """The contract's event for a lifecycle event about a subject in ``region_code``."""
    ack = event.acknowledgement
    return AlertEvent(
        event_id=event.event_id,
        alert_id=event.alert_id,
        kind=AlertKind(event.kind.value),
        rule_id=event.rule_id,
        subject=event.subject,
        enterprise_code=event.enterprise_code,
        region_code=region_code,
        severity=alert_severity(event.severity),
        previous_severity=(
            alert_severity(event.previous_severity) if event.previous_severity else None
        ),
        value=_finite(event.value),
        threshold=_finite(event.threshold),
        unit=event.unit[:_UNIT_MAX],
        level=event.level[:_LEVEL_MAX] if event.level is not None else None,
        message=_message(event),
        started_at=event.started_at,
        at=event.at,
        emitted_at=event.emitted_at,
        replay=event.replay,
        deliver=event.deliver,
        suppressed_by=(
            event.suppressed_by[:_SUPPRESSOR_MAX] if event.suppressed_by is not None else None
        ),
        acknowledgement=(
            Acknowledgement(
                user=ack.user, comment=ack.comment[:1000], at=ack.at, expires_at=ack.expires_at
            )
            if ack is not None
            else None
        ),
    )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _message(event: LifecycleEvent) -> str:
    text = event.message.strip()
    if not text:  # the contract wants words; a rule that gave none still gets its event said
        text = f"{event.rule_id}: {event.kind.value} for {event.subject}"
    if len(text) > _MESSAGE_MAX:
        text = text[: _MESSAGE_MAX - 1] + "…"
    return text
