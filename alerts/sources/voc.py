"""VOC limits over stored data: each limited pollutant's single readings (minute samples) from
the change on, and the hourly averages (``voc_hourly``, valid by the 75% rule) of the hours
from the one before the change's, once they are over (from the hour of the monitor's last
minute before the change, when its data resumes after a silence of an hour or more). The
subject names the monitor and the pollutant (``YCVOC0001.a24088``), the rule id the kind and
the pollutant."""

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal

import psycopg
from psycopg.rows import TupleRow

from alerts.rules.condition import Condition
from alerts.rules.voc_limits import evaluate_voc
from alerts.sources.context import Lookup
from alerts.sources.periods import previous_start
from contracts.voc import DataFlag, PollutantValue, VocSample
from storage.alert_inputs import (
    VocValue,
    monitors_minute_before,
    voc_hourly_values,
    voc_minute_values,
)
from stream.windows import WindowSize, window_start

_HOUR = timedelta(hours=1)


def _complete_hours(hourly: list[VocSample], minutes: list[VocSample]) -> list[VocSample]:
    """On the data clock, the hours each monitor's own data has passed: a minute of a later
    hour is stored (a monitor's samples are stored in the order sent), so the hour's average
    is final. A replay is far behind the wall clock, so "the hour is over" by the wall says
    nothing, and judging a part of an hour made the alert's first value depend on where
    the worker's batches happened to end."""
    latest: dict[str, datetime] = {}
    for minute in minutes:
        known = latest.get(minute.monitor_id)
        if known is None or minute.data_time > known:
            latest[minute.monitor_id] = minute.data_time
    return [
        h
        for h in hourly
        if h.monitor_id in latest
        and h.data_time + _HOUR <= window_start(latest[h.monitor_id], WindowSize.HOUR)
    ]


def _samples(values: Iterable[VocValue], interval_seconds: Literal[60, 3600]) -> list[VocSample]:
    """Stored values as the samples the rule judges, one per monitor and interval start."""
    grouped: dict[tuple[str, datetime], tuple[str, dict[str, PollutantValue]]] = {}
    for v in values:
        _, codes = grouped.setdefault((v.monitor_id, v.data_time), (v.enterprise_code, {}))
        codes[v.pollutant] = PollutantValue.model_construct(avg=v.avg, flag=DataFlag(v.flag))
    # read back from rows the contract's checks let in: no need to validate them again
    return [
        VocSample.model_construct(
            monitor_id=monitor,
            enterprise_code=enterprise,
            data_time=at,
            interval_seconds=interval_seconds,
            values=codes,
        )
        for (monitor, at), (enterprise, codes) in grouped.items()
    ]


async def judge_voc(
    conn: psycopg.AsyncConnection[TupleRow],
    lookup: Lookup,
    since: Mapping[str, datetime],
    now: datetime,
) -> list[Condition]:
    """The single-reading and hourly conditions of the limited monitors of the units whose
    VOC data changed from ``since[code]`` on."""
    minutes: dict[str, datetime] = {}
    for code, first in since.items():
        for monitor in lookup.monitors.get(code, ()):
            if monitor.mn in lookup.voc.by_monitor:
                minutes[monitor.mn] = first
    if not minutes:
        return []
    pollutants = lookup.limited_pollutants
    hours = {mn: previous_start(first, WindowSize.HOUR) for mn, first in minutes.items()}
    # an hour the monitor fell silent in was not over when its last minutes came, and the
    # data that ends the silence starts an hour or more later: judge from that hour
    for before in await monitors_minute_before(conn, minutes):
        hours[before.device] = min(
            hours[before.device], window_start(before.period_start, WindowSize.HOUR)
        )
    last_hour = window_start(now, WindowSize.HOUR) - _HOUR  # the last hour that is over
    samples = _samples(await voc_minute_values(conn, minutes, pollutants), 60)
    hourly = _samples(await voc_hourly_values(conn, hours, last_hour, pollutants), 3600)
    if lookup.context.data_clock:
        hourly = _complete_hours(hourly, samples)
    samples += hourly
    # one alert per monitor and pollutant: the subject names both (YCVOC0001.a24088)
    return [
        replace(c, subject=f"{c.subject}.{c.rule_id.rsplit('.', 1)[1]}")
        for sample in samples
        for c in evaluate_voc(sample, lookup.voc)
    ]
