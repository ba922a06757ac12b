"""What a rule returns: a ``Condition``, one rule's verdict on one subject at one time.

A condition that is not met (``severity`` None) still travels to the lifecycle, because that
is how a firing alert learns it may resolve. ``threshold`` is the line the verdict was drawn
against: the line of the level reached, or, when nothing is met, the lowest line (the one
the value would have to cross to fire). A condition with no line at all (``threshold`` None,
for example no emergency in force) resolves an alert outright, without hysteresis.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final


class Severity(StrEnum):
    """How bad a met condition is. Values match ``contracts.alert_events.AlertSeverity``
    where the two overlap; ``info`` (for example above a benchmark, still within the limit)
    has no counterpart there."""

    INFO = "info"
    NOTICE = "notice"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Order of seriousness: info 0 … critical 3 (string order would be alphabetical)."""
        return _RANK[self]


_RANK: Final = {Severity.INFO: 0, Severity.NOTICE: 1, Severity.WARNING: 2, Severity.CRITICAL: 3}


def highest(*severities: Severity | None) -> Severity | None:
    """The most serious of ``severities``, None when none is given."""
    present = [s for s in severities if s is not None]
    return max(present, key=lambda s: s.rank) if present else None


@dataclass(frozen=True)
class Condition:
    """One rule's verdict on one subject (a meter, monitor, unit or region) at event time
    ``at`` (UTC-aware: the end of the data it judged, or the time it was judged at).

    ``higher_is_worse`` says which side of ``threshold`` is bad, so the lifecycle knows
    which way to apply its hysteresis margin. ``level`` names a graded level where a rule
    has named ones (the barometer's "red"). ``replay`` marks a verdict on replayed data.
    """

    rule_id: str
    subject: str
    at: datetime
    severity: Severity | None
    value: float | None
    threshold: float | None
    unit: str
    message: str
    higher_is_worse: bool = True
    enterprise_code: str | None = None
    level: str | None = None
    replay: bool = False

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError(f"{self.rule_id}/{self.subject}: condition time must be tz-aware")

    @property
    def met(self) -> bool:
        return self.severity is not None


def exceeds(value: float, line: float, higher_is_worse: bool, inclusive: bool) -> bool:
    """Whether ``value`` is on the bad side of ``line`` (on it counts when ``inclusive``)."""
    if higher_is_worse:
        return value >= line if inclusive else value > line
    return value <= line if inclusive else value < line


def graded(
    value: float,
    lines: tuple[tuple[float, Severity], ...],
    higher_is_worse: bool = True,
    inclusive: bool = False,
) -> tuple[Severity | None, float]:
    """The most serious level whose line ``value`` crosses, and that line; when none is
    crossed, (None, the least serious line). ``lines`` may come in any order."""
    if not lines:
        raise ValueError("a graded check needs at least one line")
    ordered = sorted(lines, key=lambda pair: pair[1].rank)
    reached: tuple[Severity | None, float] = (None, ordered[0][0])
    for line, severity in ordered:
        if exceeds(value, line, higher_is_worse, inclusive):
            reached = (severity, line)
    return reached
