"""Which periods a change touches, and when a period is over: China-local years, months,
days and hours as UTC instants (``stream.windows`` cuts days and months at CST midnight).

A dirty mark says a unit's data changed from ``since`` on. Re-judged are the periods from the
one *before* ``since``'s up to the last one settled by ``now`` (ended at least ``settle``
ago, so data within the stream's watermark grace has arrived). The period before matters
because a period is judged only once it is over: a meter silent at the end of a day sends
nothing more for that day, and the day is judged on the first change of the next one.

The stream's watermark is its slowest partition's, so a unit's newest periods may still be
unsettled at its last change and settle later with no change of the unit: ``Unsettled``
keeps such units, and a pass judges them again when a window of each size ends (``due``).
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from contracts.identifiers import CHINA_STANDARD_TIME
from stream.windows import WindowSize, window_end, window_start

_INSTANT = timedelta(microseconds=1)


def year_of(at: datetime) -> int:
    """The China-local year ``at`` falls in."""
    return at.astimezone(CHINA_STANDARD_TIME).year


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """A China-local calendar year as UTC instants ``[start, end)``."""
    start = datetime(year, 1, 1, tzinfo=CHINA_STANDARD_TIME).astimezone(UTC)
    end = datetime(year + 1, 1, 1, tzinfo=CHINA_STANDARD_TIME).astimezone(UTC)
    return start, end


def last_instant(end: datetime) -> datetime:
    """The last instant before ``end``: a year judged as a whole is dated here, because its
    end already belongs to the next year (whose expected share is zero)."""
    return end - _INSTANT


def previous_start(at: datetime, size: WindowSize) -> datetime:
    """The start of the window before the one containing ``at``."""
    return window_start(window_start(at, size) - _INSTANT, size)


def windows(
    first: datetime, settled: datetime, size: WindowSize
) -> Iterator[tuple[datetime, datetime]]:
    """The ``size`` windows from the one containing ``first`` whose end is at or before
    ``settled``, as (start, end)."""
    start = window_start(first, size)
    while True:
        end = window_end(start, size)
        if end > settled:
            return
        yield start, end
        start = end


def touched(
    since: datetime, settled: datetime, size: WindowSize
) -> list[tuple[datetime, datetime]]:
    """The settled ``size`` windows a change from ``since`` re-judges: from the window before
    ``since``'s on (see the module docstring)."""
    return list(windows(previous_start(since, size), settled, size))


def cst_date(at: datetime) -> date:
    """The China-local date of ``at``."""
    return at.astimezone(CHINA_STANDARD_TIME).date()


@dataclass(frozen=True)
class Unsettled:
    """A unit whose newest data lies past the settled time its periods were last judged at:
    the periods between wait for the stream's watermark, which may pass them after the unit's
    last change (its partitions ran ahead of others, the end of a replay), so they are judged
    when it does, not on the unit's next change."""

    judged_to: datetime
    newest: datetime


def due(
    unsettled: Mapping[str, Unsettled], settled: datetime, size: WindowSize
) -> dict[str, datetime]:
    """The units with a ``size`` window ended since their last judgement (by ``settled``), each
    with the time to judge again from (``touched`` takes it as a change's ``since``)."""
    now = window_start(settled, size)
    return {
        code: unit.judged_to
        for code, unit in unsettled.items()
        if now > window_start(unit.judged_to, size)
    }


def judged(
    unsettled: Mapping[str, Unsettled],
    newest: Mapping[str, datetime],
    settled: datetime,
) -> dict[str, Unsettled]:
    """``unsettled`` after judging its units and the changed units (``newest``: each changed
    unit's newest data) at ``settled``: a unit is kept while the month of its newest data, the
    longest period a rule judges, is not over by ``settled``."""
    after: dict[str, Unsettled] = {}
    for code in unsettled.keys() | newest.keys():
        times = [newest[code]] if code in newest else []
        if code in unsettled:
            times.append(unsettled[code].newest)
        latest = max(times)
        if window_end(window_start(latest, WindowSize.MONTH), WindowSize.MONTH) > settled:
            after[code] = Unsettled(judged_to=settled, newest=latest)
    return after
