"""The heavy-pollution response (重污染天气应急): do listed units cut as their grade requires?

When a city declares a yellow, orange or red alert, each listed enterprise carries out its
pre-agreed measures by performance grade (A–D), e.g. cement clinker grade B: −20% at orange,
stop at red (DOMAIN.md §8). Electricity shows whether it did: the observed cut is the fall
against a same-hour-of-week baseline (the caller's), judged only after the plan's ramp-down
lead time. A stop is verified as a fall of more than ``stop_cut`` (75%: stopped plants keep
auxiliaries running), so no required cut is judged stricter than that.

While a city changes level, the old requirement holds until the new lead time has passed,
and the lower of the two applies meanwhile (an upgrade cannot be demanded before its lead
time; a downgrade relaxes at once). Declarations are explicit state (``snapshot``/``restore``).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from alerts.rules.condition import Condition, Severity

RESPONSE_RULE = "heavy-pollution.response"


class EmergencyLevel(StrEnum):
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"


@dataclass(frozen=True)
class Declaration:
    city: str
    level: EmergencyLevel
    declared_at: datetime
    lead_time: timedelta
    ended_at: datetime | None = None

    @property
    def binding_from(self) -> datetime:
        return self.declared_at + self.lead_time


@dataclass(frozen=True)
class ListedUnit:
    """A unit on a city's emergency list and the cut its grade's measures require, as a
    fraction of baseline energy per level (1.0: stop; a level not listed: no cut)."""

    code: str
    city: str
    grade: str
    required_cuts: Mapping[EmergencyLevel, float]


@dataclass(frozen=True)
class HourlyEnergy:
    """A unit's energy over one period and the baseline for the same hour of the week."""

    unit: str
    period_start: datetime
    energy: float
    baseline: float
    period_seconds: int = 3600


def _default_severities() -> dict[EmergencyLevel, Severity]:
    return {
        EmergencyLevel.YELLOW: Severity.WARNING,
        EmergencyLevel.ORANGE: Severity.WARNING,
        EmergencyLevel.RED: Severity.CRITICAL,
    }


@dataclass(frozen=True)
class HeavyPollutionConfig:
    stop_cut: float = 0.75
    #: A unit is short only when its cut misses the requirement by more than this (a share):
    #: the same-hour baseline has a few percent of noise of its own. Not applied to a stop,
    #: whose ``stop_cut`` already allows for auxiliaries.
    tolerance: float = 0.05
    default_lead_time: timedelta = timedelta(hours=12)
    severity_by_level: Mapping[EmergencyLevel, Severity] = field(
        default_factory=_default_severities
    )


class HeavyPollutionResponse:
    """Each city's emergency declarations, and the response condition of listed units."""

    def __init__(self, config: HeavyPollutionConfig) -> None:
        self.config = config
        self._declarations: dict[str, list[Declaration]] = {}

    def declare(
        self,
        city: str,
        level: EmergencyLevel,
        at: datetime,
        lead_time: timedelta | None = None,
    ) -> None:
        """``city`` is at ``level`` from ``at`` (a change of level ends the previous one)."""
        history = self._declarations.setdefault(city, [])
        at = at.astimezone(UTC)
        if history and at < history[-1].declared_at:
            raise ValueError(f"{city}: declarations come in order; {at} is before the last")
        self.lift(city, at)
        lead = self.config.default_lead_time if lead_time is None else lead_time
        history.append(Declaration(city, level, at, lead))

    def lift(self, city: str, at: datetime) -> None:
        """End ``city``'s declaration in force at ``at`` (nothing if none is)."""
        history = self._declarations.get(city, [])
        if history and history[-1].ended_at is None:
            history[-1] = replace(history[-1], ended_at=at.astimezone(UTC))

    def prune(self, before: datetime) -> None:
        """Forget declarations that ended before ``before`` (no late data will need them)."""
        for city, history in list(self._declarations.items()):
            kept = [d for d in history if d.ended_at is None or d.ended_at >= before]
            if kept:
                self._declarations[city] = kept
            else:
                del self._declarations[city]

    def _cut(self, unit: ListedUnit, declaration: Declaration) -> float:
        return min(unit.required_cuts.get(declaration.level, 0.0), self.config.stop_cut)

    def requirement(
        self, unit: ListedUnit, start: datetime, end: datetime
    ) -> tuple[float, Declaration] | None:
        """The cut required of ``unit`` over [start, end) and the declaration behind it;
        None when no declaration is binding over the whole period."""
        history = self._declarations.get(unit.city, [])
        for index, current in enumerate(history):
            if not current.declared_at <= start or (current.ended_at or end) < end:
                continue
            if start >= current.binding_from:
                return self._cut(unit, current), current
            before = history[index - 1] if index else None
            if before and before.ended_at == current.declared_at and start >= before.binding_from:
                old, new = self._cut(unit, before), self._cut(unit, current)
                return (old, before) if old <= new else (new, current)
        return None

    def evaluate(self, unit: ListedUnit, observed: HourlyEnergy) -> Condition | None:
        """The response condition of ``unit`` for one observed period, dated at its end:
        fires when the observed cut is below the required one. No requirement in force gives
        a condition with no line (an alert resolves); no baseline, no condition."""
        if observed.baseline <= 0:
            return None
        end = observed.period_start + timedelta(seconds=observed.period_seconds)
        cut = 1 - observed.energy / observed.baseline
        found = self.requirement(unit, observed.period_start, end)
        required = found[0] if found else 0.0
        if found is None or required <= 0:
            return Condition(
                rule_id=RESPONSE_RULE,
                subject=unit.code,
                at=end,
                severity=None,
                value=cut,
                threshold=None,
                unit="share",
                message=f"{unit.code}: no emergency cut required 无应急减排要求",
                higher_is_worse=False,
                enterprise_code=unit.code,
            )
        declaration = found[1]
        stop = required >= self.config.stop_cut  # a stop's line is already lenient
        line = required if stop else max(0.0, required - self.config.tolerance)
        short = cut < line
        return Condition(
            rule_id=RESPONSE_RULE,
            subject=unit.code,
            at=end,
            severity=self.config.severity_by_level[declaration.level] if short else None,
            value=cut,
            threshold=line,
            unit="share",
            message=(
                f"{unit.code} (grade {unit.grade}) in {unit.city} cut energy by {cut:.0%} "
                f"against a required {required:.0%} at {declaration.level.value} alert "
                f"重污染天气应急减排{'未落实' if short else '已落实'}"
            ),
            higher_is_worse=False,
            enterprise_code=unit.code,
            level=declaration.level.value,
        )

    def snapshot(self) -> dict[str, Any]:
        """The declarations as plain JSON-able data."""
        return {
            "declarations": [
                {
                    "city": d.city,
                    "level": d.level.value,
                    "declared_at": d.declared_at.isoformat(),
                    "lead_seconds": d.lead_time.total_seconds(),
                    "ended_at": d.ended_at.isoformat() if d.ended_at else None,
                }
                for city in sorted(self._declarations)
                for d in self._declarations[city]
            ]
        }

    @classmethod
    def restore(
        cls, config: HeavyPollutionConfig, snapshot: dict[str, Any]
    ) -> "HeavyPollutionResponse":
        """A response tracker continuing from ``snapshot``."""
        response = cls(config)
        for row in snapshot["declarations"]:
            response._declarations.setdefault(row["city"], []).append(
                Declaration(
                    city=row["city"],
                    level=EmergencyLevel(row["level"]),
                    declared_at=datetime.fromisoformat(row["declared_at"]),
                    lead_time=timedelta(seconds=row["lead_seconds"]),
                    ended_at=datetime.fromisoformat(row["ended_at"]) if row["ended_at"] else None,
                )
            )
        return response
