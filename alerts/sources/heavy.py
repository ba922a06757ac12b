"""The heavy-pollution response over stored data: a listed unit's electricity in an hour
against the same hour of the week over the ``baseline_weeks`` weeks before (their mean).

Electricity shows whether a plant cut (DOMAIN.md §8). Hours are judged while a declaration of
the unit's city is on record, from its declaration to an hour after it ended (that hour has
no line, so an alert left firing resolves): after a change, the unit's settled hours from the
one before the change's; on a tick, the last settled hour. An hour with no data is not
judged: a silent meter is device silence's business, not proof of a stop.
"""

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from statistics import fmean
from typing import Final

import psycopg
from psycopg.rows import TupleRow

from alerts.rules.condition import Condition
from alerts.rules.heavy_pollution import HeavyPollutionResponse, HourlyEnergy, ListedUnit
from alerts.sources.context import Lookup
from alerts.sources.periods import touched
from storage.alert_inputs import unit_hourly_quantity
from stream.windows import WindowSize, window_start

_HOUR: Final = timedelta(hours=1)
_WEEK: Final = timedelta(weeks=1)
_ELECTRICITY: Final = "electricity"
#: a tick judges at most this many hours back (a watermark that jumps further, e.g. a replay
#: started cold, leaves the older hours to the changes that carried them)
MAX_TICK_HOURS: Final = 48

Span = tuple[datetime, datetime | None]  # declared, ended (None: in force)


def declaration_spans(response: HeavyPollutionResponse) -> dict[str, list[Span]]:
    """Each city's declarations on record, as (declared at, ended at)."""
    spans: dict[str, list[Span]] = {}
    for row in response.snapshot()["declarations"]:
        ended = datetime.fromisoformat(row["ended_at"]) if row["ended_at"] else None
        spans.setdefault(row["city"], []).append(
            (datetime.fromisoformat(row["declared_at"]), ended)
        )
    return spans


def _relevant(hour: datetime, spans: Iterable[Span]) -> bool:
    return any(
        hour + _HOUR > declared and (ended is None or hour < ended + _HOUR)
        for declared, ended in spans
    )


def hours_after_changes(
    lookup: Lookup,
    response: HeavyPollutionResponse,
    since: Mapping[str, datetime],
    settled: datetime,
) -> dict[str, list[datetime]]:
    """The hours to judge for each listed unit whose readings changed."""
    spans = declaration_spans(response)
    hours: dict[str, list[datetime]] = {}
    for unit in lookup.listed_units(set(spans)):
        first = since.get(unit.code)
        if first is not None:
            windows = touched(first, settled, WindowSize.HOUR)
            hours[unit.code] = [h for h, _ in windows if _relevant(h, spans[unit.city])]
    return hours


def settled_hours(
    lookup: Lookup,
    response: HeavyPollutionResponse,
    settled: datetime,
    after: datetime | None = None,
) -> dict[str, list[datetime]]:
    """For each listed unit of a city with a declaration on record, the hours settled by
    ``settled`` and not by ``after`` (the previous tick's settled time; None: only the last
    settled hour), at most ``MAX_TICK_HOURS`` back. A tick thereby judges every hour the
    stream's watermark passed since the one before, however far it jumped: the hour after a
    lift, which resolves an alert left firing, is judged even if no reading of the unit comes
    after the watermark passes it (the end of a replay, a lane of partitions running ahead)."""
    last = window_start(settled, WindowSize.HOUR) - _HOUR
    first = last if after is None else window_start(after, WindowSize.HOUR)
    first = max(first, last - (MAX_TICK_HOURS - 1) * _HOUR)
    hours = []
    hour = first
    while hour <= last:
        hours.append(hour)
        hour += _HOUR
    spans = declaration_spans(response)
    judged = {}
    for unit in lookup.listed_units(set(spans)):
        relevant = [h for h in hours if _relevant(h, spans[unit.city])]
        if relevant:
            judged[unit.code] = relevant
    return judged


async def judge_heavy_pollution(
    conn: psycopg.AsyncConnection[TupleRow],
    lookup: Lookup,
    response: HeavyPollutionResponse,
    hours: Mapping[str, list[datetime]],
) -> list[Condition]:
    """The response conditions of the listed units in ``hours`` (unit code -> hour starts)."""
    hours = {code: starts for code, starts in hours.items() if starts}
    if not hours:
        return []
    weeks = range(1, lookup.context.baseline_weeks + 1)
    wanted = {h - n * _WEEK for starts in hours.values() for h in starts for n in (0, *weeks)}
    energy = await unit_hourly_quantity(conn, sorted(hours), _ELECTRICITY, sorted(wanted))
    units: dict[str, ListedUnit] = {
        u.code: u for u in lookup.listed_units(set(declaration_spans(response)))
    }
    conditions = []
    for code, starts in sorted(hours.items()):
        for hour in starts:
            used = energy.get((code, hour))
            before = [
                energy[code, b] for b in (hour - n * _WEEK for n in weeks) if (code, b) in energy
            ]
            if used is None or not before:
                continue
            condition = response.evaluate(
                units[code], HourlyEnergy(code, hour, used, fmean(before))
            )
            if condition is not None:
                conditions.append(condition)
    return conditions
