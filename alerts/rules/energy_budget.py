"""Energy budgets (用能预算管理): how much of a unit's or county's annual budget is gone, and
how fast it is going against a seasonal profile.

No regulation fixes the alert points (DOMAIN.md §3); the defaults are notice at 80% of the
annual budget or pace > 1.0, warning at 90% or pace > 1.1, critical at 100%, where

    pace = used so far / (budget × expected share of the year so far).

Share and pace are two conditions (rules ``energy-budget.<scope>.share`` and
``...pace``), each one number against its own lines, so the lifecycle's hysteresis has one
value to hold an alert by. Early in the year the expected share is tiny and pace swings
wildly (a cold 1 January is "pace 3"), so pace is judged only once a configured share of the
year is expected to be gone; before that its condition has no line and resolves any alert
left from the year before.
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from alerts.rules.condition import Condition, Severity, graded
from alerts.rules.seasonal_profile import SeasonalProfile
from contracts.identifiers import CHINA_STANDARD_TIME


class BudgetScope(StrEnum):
    UNIT = "unit"  # a key energy-using unit, by its unified social credit code
    COUNTY = "county"  # a county or district (区县), by its administrative code


@dataclass(frozen=True)
class BudgetUse:
    """Energy counted against a budget from the start of the China-local year to ``at``
    (exclusions such as feedstock and new renewables already taken out by the caller).

    ``monitored_from`` is when the subject's data begins, for a unit that joined online
    monitoring during the year: pace then compares use with the share expected since then,
    not since New Year (the share of the annual budget used is still the plain share)."""

    subject: str
    scope: BudgetScope
    at: datetime
    used_tce: float
    annual_budget_tce: float
    enterprise_code: str | None = None
    monitored_from: datetime | None = None

    def __post_init__(self) -> None:
        if self.annual_budget_tce <= 0:
            raise ValueError(f"{self.subject}: an annual budget must be positive")

    def expected_share(self, profile: SeasonalProfile) -> float:
        """The share of the year's energy expected to be used over the monitored part of the
        year up to ``at`` (from New Year, or from ``monitored_from`` if later that year)."""
        expected = profile.expected_share(self.at)
        start = self.monitored_from
        if start is not None and start < self.at:
            this_year = self.at.astimezone(CHINA_STANDARD_TIME).year
            if start.astimezone(CHINA_STANDARD_TIME).year == this_year:
                expected -= profile.expected_share(start)
        return expected


@dataclass(frozen=True)
class BudgetConfig:
    notice_share: float = 0.80
    warning_share: float = 0.90
    critical_share: float = 1.00
    notice_pace: float = 1.0
    warning_pace: float = 1.1
    #: Pace is judged once this share of the year's energy is expected to be gone.
    min_expected_share_for_pace: float = 0.02
    profile: SeasonalProfile = field(default_factory=SeasonalProfile)


def share_rule(scope: BudgetScope) -> str:
    return f"energy-budget.{scope.value}.share"


def pace_rule(scope: BudgetScope) -> str:
    return f"energy-budget.{scope.value}.pace"


def evaluate_budget(use: BudgetUse, config: BudgetConfig) -> list[Condition]:
    """The share condition and the pace condition of one budget at ``use.at``.

    Share levels are reached *at* their line (80% used is a notice); pace levels only
    *above* theirs (pace exactly 1.0 is on plan)."""
    share = use.used_tce / use.annual_budget_tce
    share_severity, share_line = graded(
        share,
        (
            (config.notice_share, Severity.NOTICE),
            (config.warning_share, Severity.WARNING),
            (config.critical_share, Severity.CRITICAL),
        ),
        inclusive=True,
    )
    who = f"{use.scope.value} {use.subject}"
    conditions = [
        Condition(
            rule_id=share_rule(use.scope),
            subject=use.subject,
            at=use.at,
            severity=share_severity,
            value=share,
            threshold=share_line,
            unit="share",
            message=(
                f"{who} has used {share:.1%} of its annual energy budget 年度用能预算已用 "
                f"({use.used_tce:,.1f} of {use.annual_budget_tce:,.1f} tce); line {share_line:.0%}"
            ),
            enterprise_code=use.enterprise_code,
        )
    ]
    expected = use.expected_share(config.profile)
    if expected < config.min_expected_share_for_pace:
        conditions.append(
            Condition(
                rule_id=pace_rule(use.scope),
                subject=use.subject,
                at=use.at,
                severity=None,
                value=None,
                threshold=None,
                unit="pace",
                message=f"{who}: too early in the year to judge pace ({expected:.1%} expected)",
                enterprise_code=use.enterprise_code,
            )
        )
        return conditions
    pace = use.used_tce / (use.annual_budget_tce * expected)
    pace_severity, pace_line = graded(
        pace, ((config.notice_pace, Severity.NOTICE), (config.warning_pace, Severity.WARNING))
    )
    conditions.append(
        Condition(
            rule_id=pace_rule(use.scope),
            subject=use.subject,
            at=use.at,
            severity=pace_severity,
            value=pace,
            threshold=pace_line,
            unit="pace",
            message=(
                f"{who} uses energy at pace {pace:.2f} 用能进度 (used {share:.1%} of the budget "
                f"where {expected:.1%} was expected by now); line {pace_line:.2f}"
            ),
            enterprise_code=use.enterprise_code,
        )
    )
    return conditions
