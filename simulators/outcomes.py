"""Does what EnergyWatch concluded match what a scenario expected? (pure)

A scenario's ``expected`` names rules by id prefix and subjects the way people think of them
(``jx-cement``, ``hj-steel/electricity``, ``YCVOC0001``); alerts name subjects by credit code,
meter id, or monitor MN with a pollutant (``YCVOC0001.a24088``). ``resolve_subject`` turns the
first into the second, and ``check_outcomes`` judges each expectation against fired alerts:

* ``fires``: some alert of the rule about the subject fired (or escalated) on data dated in
  [after, before); if a severity is expected, reached at least it; and, if a resolution
  window is given, that alert resolved on data dated in [resolved_after, resolved_before);
* ``silent``: no alert of the rule about the subject fired at all.

A county is named by its division code (``140882``), which is also its alerts' subject.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from contracts.alert_events import AlertEvent, AlertKind
from simulators.fleet import Fleet
from simulators.scenario import ExpectedOutcome, Scenario, is_division

_RANK = {"info": 0, "notice": 1, "warning": 2, "critical": 3}
_RAISED = (AlertKind.FIRED, AlertKind.ESCALATED)


@dataclass(frozen=True)
class Subject:
    """Who an expectation is about: alert subjects equal to, or dotted under, ``ids``; or,
    for a whole enterprise, any alert whose subject is its code."""

    ref: str
    ids: tuple[str, ...]


@dataclass(frozen=True)
class OutcomeCheck:
    expected: ExpectedOutcome
    met: bool
    evidence: AlertEvent | None  # the alert that fired (for fires) or should not have
    why: str
    resolution: AlertEvent | None = None  # its resolved event, when one was expected

    @property
    def alert_id(self) -> str | None:
        """The alert an expected firing found (None for silence, or when none fired)."""
        if self.expected.outcome != "fires" or self.evidence is None:
            return None
        return self.evidence.alert_id


def resolve_subject(fleet: Fleet, monitors: Iterable[str], ref: str) -> Subject:
    if ref in set(monitors) or is_division(ref):
        return Subject(ref, (ref,))
    enterprise_id, _, energy = ref.partition("/")
    enterprise = fleet.enterprise(enterprise_id)
    if energy:
        return Subject(ref, tuple(m.meter_id for m in enterprise.meters if m.energy_type == energy))
    return Subject(ref, (enterprise.code,))


def _about(event: AlertEvent, subject: Subject) -> bool:
    return any(event.subject == i or event.subject.startswith(f"{i}.") for i in subject.ids)


def _of_rule(event: AlertEvent, rule: str) -> bool:
    return event.rule_id == rule or event.rule_id.startswith(f"{rule}.")


def _check(
    expected: ExpectedOutcome, subject: Subject, events: Sequence[AlertEvent]
) -> OutcomeCheck:
    raised = [e for e in events if e.kind in _RAISED and _of_rule(e, expected.rule)]
    raised = [e for e in raised if _about(e, subject)]
    if expected.outcome == "silent":
        if raised:
            return OutcomeCheck(expected, False, raised[0], f"fired: {raised[0].message}")
        return OutcomeCheck(expected, True, None, "silent, as expected")
    in_time = [
        e
        for e in raised
        if (expected.after is None or e.at >= expected.after)
        and (expected.before is None or e.at < expected.before)
    ]
    if not in_time:
        why = "never fired" if not raised else f"fired only outside the window ({raised[0].at})"
        return OutcomeCheck(expected, False, raised[0] if raised else None, why)
    worst = max(in_time, key=lambda e: _RANK[e.severity.value])
    if expected.severity is not None and _RANK[worst.severity.value] < _RANK[expected.severity]:
        return OutcomeCheck(expected, False, worst, f"reached only {worst.severity.value}")
    first = min(in_time, key=lambda e: e.at)
    fired = f"fired on data of {first.at.isoformat()}"
    if expected.resolved_after is None:
        return OutcomeCheck(expected, True, first, fired)
    return _resolution(expected, first, events, fired)


def _resolution(
    expected: ExpectedOutcome, fired: AlertEvent, events: Sequence[AlertEvent], why: str
) -> OutcomeCheck:
    resolved = [e for e in events if e.alert_id == fired.alert_id and e.kind is AlertKind.RESOLVED]
    after, before = expected.resolved_after, expected.resolved_before
    in_time = [
        e
        for e in resolved
        if (after is None or e.at >= after) and (before is None or e.at < before)
    ]
    if not in_time:
        late = f"resolved only outside the window ({resolved[0].at})" if resolved else ""
        return OutcomeCheck(expected, False, fired, f"{why}, but {late or 'never resolved'}")
    end = in_time[0]
    return OutcomeCheck(
        expected, True, fired, f"{why}, resolved on data of {end.at.isoformat()}", end
    )


def check_outcomes(scenario: Scenario, events: Sequence[AlertEvent]) -> list[OutcomeCheck]:
    """Each of the scenario's expectations (``meter-flag.*`` ones are not about alerts and
    are left out) judged against ``events``."""
    monitors = [m.monitor_id for m in scenario.plan.voc_monitors]
    return [
        _check(expected, resolve_subject(scenario.fleet, monitors, expected.subject), events)
        for expected in scenario.config.expected
        if not expected.rule.startswith("meter-flag.")
    ]
