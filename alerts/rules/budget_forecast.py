"""The year-end forecast: will this budget be crossed by the end of the year?

Projected year-end consumption = used so far / expected share of the year so far (the same
seasonal profile as the budget's pace). The forecast warns while there is still time to act,
before the budget itself is crossed; once it is, ``energy_budget``'s critical share says so
and the forecast keeps firing alongside it (it is still true). Early in the year a projection
from a few days is noise, so nothing is forecast until a configured share of the year is
expected to be gone; until then the condition has no line (and resolves last year's alert).

That share is the budget's pace threshold (2%, about a week), measured like pace over the
monitored span: a projection over the budget is the same arithmetic as pace above the
warning ratio, so the two agree from the same day. Waiting for a month's share (1/12, as
before) left a unit that joined monitoring in March without a forecast until April, weeks
after its pace said it was over.
"""

from dataclasses import dataclass, field

from alerts.rules.condition import Condition, Severity
from alerts.rules.energy_budget import BudgetUse
from alerts.rules.seasonal_profile import SeasonalProfile


@dataclass(frozen=True)
class ForecastConfig:
    #: Warn when the projection is above the budget times this.
    warning_ratio: float = 1.0
    #: Forecast once this share of the year's energy is expected to be gone (about a week),
    #: as ``BudgetConfig.min_expected_share_for_pace``.
    min_expected_share: float = 0.02
    severity: Severity = Severity.WARNING
    profile: SeasonalProfile = field(default_factory=SeasonalProfile)


def forecast_rule(use: BudgetUse) -> str:
    return f"budget-forecast.{use.scope.value}"


def projected_year_end_tce(use: BudgetUse, profile: SeasonalProfile) -> float | None:
    """Consumption by the end of the year if the rest follows the profile (None at the very
    start of the year, when nothing is expected yet). A unit monitored only since
    ``monitored_from`` is projected from its rate since then."""
    expected = use.expected_share(profile)
    return use.used_tce / expected if expected > 0 else None


def evaluate_forecast(use: BudgetUse, config: ForecastConfig) -> Condition:
    """The forecast condition (rule ``budget-forecast.<scope>``) of one budget at ``use.at``:
    value the projected year-end tce, threshold the budget times ``warning_ratio``."""
    expected = use.expected_share(config.profile)
    who = f"{use.scope.value} {use.subject}"
    projected = projected_year_end_tce(use, config.profile)
    if expected < config.min_expected_share or projected is None:
        return Condition(
            rule_id=forecast_rule(use),
            subject=use.subject,
            at=use.at,
            severity=None,
            value=None,
            threshold=None,
            unit="tce",
            message=f"{who}: too early in the year to forecast ({expected:.1%} expected)",
            enterprise_code=use.enterprise_code,
        )
    line = use.annual_budget_tce * config.warning_ratio
    over = projected > line
    return Condition(
        rule_id=forecast_rule(use),
        subject=use.subject,
        at=use.at,
        severity=config.severity if over else None,
        value=projected,
        threshold=line,
        unit="tce",
        message=(
            f"{who} is projected to use {projected:,.0f} tce this year 预计全年用能 "
            f"({'above' if over else 'within'} its budget of {use.annual_budget_tce:,.0f} tce)"
        ),
        enterprise_code=use.enterprise_code,
    )
