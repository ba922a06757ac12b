"""A seasonal profile: what share of a year's energy is expected to be used by a given time.

Energy budgets, the year-end forecast and pace all compare use so far with the share of the
year that should be gone by now. A heating city uses more in winter, so the share is not the
share of calendar time: the profile weights each month (a plan's or a unit's own history),
and within a month the share accrues evenly. Plan years are calendar years in China Standard
Time (DOMAIN.md §5), so instants are turned into China-local time here.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.identifiers import CHINA_STANDARD_TIME


def _month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=CHINA_STANDARD_TIME)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=CHINA_STANDARD_TIME)
    return start, end


@dataclass(frozen=True)
class SeasonalProfile:
    """Relative weights of the twelve months (any positive scale); None weights every month
    by its length, which is the share of calendar time."""

    monthly_weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        weights = self.monthly_weights
        if weights is not None and (len(weights) != 12 or any(w < 0 for w in weights)):
            raise ValueError("a seasonal profile has twelve non-negative monthly weights")
        if weights is not None and sum(weights) <= 0:
            raise ValueError("a seasonal profile needs some weight in some month")

    def _weights(self, year: int) -> list[float]:
        if self.monthly_weights is not None:
            return list(self.monthly_weights)
        bounds = (_month_bounds(year, month) for month in range(1, 13))
        return [(end - start) / timedelta(days=1) for start, end in bounds]

    def expected_share(self, at: datetime) -> float:
        """The share (0–1) of its China-local calendar year's energy expected by ``at``."""
        if at.tzinfo is None:
            raise ValueError("expected_share needs a timezone-aware time")
        local = at.astimezone(CHINA_STANDARD_TIME)
        weights = self._weights(local.year)
        total = sum(weights)
        start, end = _month_bounds(local.year, local.month)
        month_fraction = (local - start) / (end - start)
        before = sum(weights[: local.month - 1])
        return (before + weights[local.month - 1] * month_fraction) / total
