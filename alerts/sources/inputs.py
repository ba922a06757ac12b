"""``RuleInputs``: reads what the rules need from TimescaleDB and returns their conditions.

Two entry points, both taking a connection and the time judged at (UTC-aware):

* ``on_dirty`` after each stream batch, for the units the batch marked (``storage.alert_dirty``):
  only what those changes can affect is re-judged, with one query per concern for all the
  units at once;
* ``on_tick`` periodically, for what changes without new data: silent devices, the
  heavy-pollution response (the hours settled since the last tick), the regional barometer,
  and the periods of units that were not yet settled at the units' last change.

``now`` is the time judged at: it decides which periods are over (settled) and how long a
device has been silent. Budgets and the barometer are judged as far as their data goes.

The two stateful rules (device silence: what was last heard from each device; the
heavy-pollution declarations) are held here as explicit state: ``snapshot()`` is plain JSON
and ``RuleInputs.restore`` continues from it. Conditions come back ordered by event time, so
the lifecycle sees a subject's verdicts in order.
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any, Final

import psycopg
from psycopg.rows import TupleRow

from alerts.rules.condition import Condition
from alerts.rules.device_silence import DeviceSilence
from alerts.rules.heavy_pollution import EmergencyLevel, HeavyPollutionResponse
from alerts.sources.barometer import judge_barometer
from alerts.sources.budgets import judge_budgets
from alerts.sources.context import Lookup, RuleContext
from alerts.sources.heavy import hours_after_changes, judge_heavy_pollution, settled_hours
from alerts.sources.periods import Unsettled, due, judged
from alerts.sources.products import judge_products
from alerts.sources.quality import judge_completeness, judge_monthly_deviation
from alerts.sources.voc import judge_voc
from contracts.alert_commands import DeclareEmergency
from storage.alert_dirty import Dirty, earliest_by_unit
from storage.alert_inputs import (
    LastHeard,
    meters_first_heard,
    meters_last_heard,
    monitors_first_heard,
    monitors_last_heard,
)
from storage.rollup_queries import stream_watermark
from stream.windows import WindowSize

SNAPSHOT_VERSION: Final = 1
READINGS: Final = "readings"
VOC: Final = "voc"
PRODUCTION: Final = "production"


def _earliest(dirty: Iterable[Dirty], sources: set[str]) -> dict[str, datetime]:
    """Per unit, the earliest change among ``sources``."""
    return earliest_by_unit(
        (mark.enterprise_code, mark.since.astimezone(UTC))
        for mark in dirty
        if mark.source in sources
    )


def earliest(*sinces: Mapping[str, datetime]) -> dict[str, datetime]:
    """Per unit, the earliest of its times in ``sinces``."""
    return earliest_by_unit(chain.from_iterable(since.items() for since in sinces))


def _in_order(conditions: list[Condition]) -> list[Condition]:
    return sorted(conditions, key=lambda c: (c.at, c.rule_id, c.subject))


class RuleInputs:
    """Reads what the rules need from TimescaleDB and returns their conditions. Holds the
    stateful rules (device silence, heavy-pollution declarations) as explicit state."""

    def __init__(self, context: RuleContext) -> None:
        self.context = context
        self._lookup = Lookup(context)
        self._silence = DeviceSilence(context.silence, context.calendar)
        self._heavy = HeavyPollutionResponse(context.heavy)
        # devices the register lists are looked up once per process, so a device that went
        # silent before the evaluator started is watched too
        self._primed = False
        #: the settled time of the last tick: the next judges the hours settled since
        self._ticked: datetime | None = None
        #: units whose newest periods were not yet settled when last judged
        self._unsettled: dict[str, Unsettled] = {}

    # -- after a stream batch -------------------------------------------------------------

    async def on_dirty(
        self, conn: psycopg.AsyncConnection[TupleRow], dirty: Sequence[Dirty], now: datetime
    ) -> list[Condition]:
        """The conditions the changes in ``dirty`` can affect, judged at ``now``; records
        what was heard from the units' devices."""
        readings = _earliest(dirty, {READINGS})
        voc = _earliest(dirty, {VOC})
        energy_or_output = _earliest(dirty, {READINGS, PRODUCTION})
        mark = await self._watermark(conn)
        stream_now = now if mark is None else min(now, mark)
        settled = stream_now - self.context.settle
        conditions = await judge_voc(conn, self._lookup, voc, now)
        conditions += await judge_budgets(conn, self._lookup, readings, now)
        newest = await self._hear(conn, readings, voc)
        for code, at in _earliest(dirty, {PRODUCTION}).items():
            newest[code] = max(at, newest.get(code, at))
        conditions += await self._judge_periods(conn, readings, energy_or_output, newest, settled)
        if self.context.data_clock:  # time moves with the data: silences are judged as it does
            conditions += await self._silences_on_the_data_clock(conn, stream_now, mark)
        return _in_order(conditions)

    async def _judge_periods(
        self,
        conn: psycopg.AsyncConnection[TupleRow],
        readings: Mapping[str, datetime],
        energy_or_output: Mapping[str, datetime],
        newest: Mapping[str, datetime],
        settled: datetime,
        hours: Mapping[str, list[datetime]] | None = None,
    ) -> list[Condition]:
        """The settled-period rules (product energy, completeness, monthly deviation, the
        heavy-pollution response, plus ``hours`` to judge of it): for the changed units from
        their change on, and for the units left unsettled at their last judgement once a
        window has ended since (``periods.Unsettled``)."""
        lookup, waiting = self._lookup, self._unsettled
        days = due(waiting, settled, WindowSize.DAY)
        months = due(waiting, settled, WindowSize.MONTH)
        changed_hours = due(waiting, settled, WindowSize.HOUR)
        conditions = await judge_products(conn, lookup, earliest(energy_or_output, days), settled)
        conditions += await judge_completeness(conn, lookup, earliest(readings, days), settled)
        conditions += await judge_monthly_deviation(
            conn, lookup, earliest(energy_or_output, months), settled
        )
        judged_hours = hours_after_changes(
            lookup, self._heavy, earliest(readings, changed_hours), settled
        )
        for code, starts in (hours or {}).items():
            judged_hours[code] = sorted(set(judged_hours.get(code, [])) | set(starts))
        conditions += await judge_heavy_pollution(conn, lookup, self._heavy, judged_hours)
        self._unsettled = judged(waiting, newest, settled)
        return conditions

    async def _watermark(self, conn: psycopg.AsyncConnection[TupleRow]) -> datetime | None:
        """The readings stream's watermark (None: unknown, or no topic configured): a period
        is settled only once the stream has passed it (a replay, a lagging stream)."""
        topic = self.context.readings_topic
        if topic is None:
            return None
        return await stream_watermark(conn, topic, self.context.stream_consumer)

    async def _silences_on_the_data_clock(
        self, conn: psycopg.AsyncConnection[TupleRow], now: datetime, mark: datetime | None
    ) -> list[Condition]:
        """Device silence at ``now`` on the data clock; gaps of meters too, at the readings
        watermark ``mark`` when it is known. Every meter is heard again first, after the
        watermark was read: a batch stored since this pass claimed its dirty marks moved the
        watermark, and its meters must not look silent up to it."""
        if mark is None:
            return self._silence.evaluate(now, data_clock=True)
        everyone = dict.fromkeys(self._lookup.enterprises)
        await self._hear(conn, everyone, {})
        return self._silence.evaluate(now, data_clock=True, passed={READINGS: mark})

    async def _hear(
        self,
        conn: psycopg.AsyncConnection[TupleRow],
        readings: Mapping[str, datetime | None],
        voc: Mapping[str, datetime | None],
    ) -> dict[str, datetime]:
        """Record what was last heard from these units' devices; returns each unit's newest
        reading period (of the meters that have any)."""
        meters = {
            meter.meter_id: first
            for code, first in readings.items()
            for meter in self._lookup.meters.get(code, ())
        }
        monitors = {
            monitor.mn: first
            for code, first in voc.items()
            for monitor in self._lookup.monitors.get(code, ())
        }
        latest = await meters_last_heard(conn, meters)
        self._heard(latest, await meters_first_heard(conn, self._holes(latest)), READINGS)
        newest: dict[str, datetime] = {}
        for row in latest:
            seen = newest.get(row.enterprise_code)
            newest[row.enterprise_code] = (
                row.period_start if seen is None else max(seen, row.period_start)
            )
        latest = await monitors_last_heard(conn, monitors)
        self._heard(latest, await monitors_first_heard(conn, self._holes(latest)), VOC)
        return newest

    def _holes(self, latest: Iterable[LastHeard]) -> dict[str, datetime]:
        """Devices whose newest data leaves a hole after what was last heard from them, and
        where that hole begins: where to look for the first data after it."""
        holes = {}
        for row in latest:
            end = self._silence.expected_next(row.device, row.period_start)
            if end is not None:
                holes[row.device] = end
        return holes

    def _heard(
        self, latest: Iterable[LastHeard], first_after_holes: Iterable[LastHeard], feed: str
    ) -> None:
        first = {row.device: row.period_start for row in first_after_holes}
        for row in latest:
            self._silence.heard(
                row.device,
                row.period_start,
                row.interval_seconds,
                row.enterprise_code,
                feed,
                first_after=first.get(row.device),
            )

    # -- periodically ------------------------------------------------------------------------

    async def on_tick(
        self, conn: psycopg.AsyncConnection[TupleRow], now: datetime
    ) -> list[Condition]:
        """Device silence, the heavy-pollution response and the barometer at ``now`` (or, with
        ``context.data_clock``, at the latest data time heard, if earlier)."""
        if not self._primed:
            everyone: dict[str, datetime | None] = dict.fromkeys(self._lookup.enterprises)
            await self._hear(conn, everyone, everyone)
            self._primed = True
        mark = await self._watermark(conn)
        stream_now = now if mark is None else min(now, mark)
        settled = stream_now - self.context.settle
        if self.context.data_clock:
            now = stream_now
            conditions = await self._silences_on_the_data_clock(conn, now, mark)
        else:
            conditions = self._silence.evaluate(now)
        self._heavy.prune(now - self.context.declaration_retention)
        hours = settled_hours(self._lookup, self._heavy, settled, self._ticked)
        conditions += await self._judge_periods(conn, {}, {}, {}, settled, hours)
        self._ticked = settled if self._ticked is None else max(self._ticked, settled)
        conditions += await judge_barometer(conn, self._lookup, settled)
        return _in_order(conditions)

    # -- operators' commands -----------------------------------------------------------------

    def declare_emergency(self, command: DeclareEmergency) -> None:
        """Apply a city's declaration (or, with no level, its lift). Declarations of a city
        come in time order; an earlier one is a ValueError. The next tick judges again the
        settled hours from the command's time on (as far back as a tick looks)."""
        if self._ticked is not None:
            self._ticked = min(self._ticked, command.at)
        if command.level is None:
            self._heavy.lift(command.city, command.at)
            return
        lead = None if command.lead_time_hours is None else timedelta(hours=command.lead_time_hours)
        self._heavy.declare(command.city, EmergencyLevel(command.level), command.at, lead)

    # -- state -------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The stateful rules' state as plain JSON-able data."""
        return {
            "version": SNAPSHOT_VERSION,
            "silence": self._silence.snapshot(),
            "heavy_pollution": self._heavy.snapshot(),
            "ticked": None if self._ticked is None else self._ticked.isoformat(),
            "unsettled": [
                {"unit": code, "judged_to": u.judged_to.isoformat(), "newest": u.newest.isoformat()}
                for code, u in sorted(self._unsettled.items())
            ],
        }

    @classmethod
    def restore(cls, context: RuleContext, snapshot: Mapping[str, Any]) -> "RuleInputs":
        """Inputs continuing from ``snapshot``; devices the register no longer lists are
        forgotten."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unknown rule-inputs snapshot version {snapshot.get('version')!r}")
        inputs = cls(context)
        silence = dict(snapshot["silence"])
        known = set(context.register.meters_by_id) | set(context.register.monitors_by_mn)
        silence["devices"] = [d for d in silence["devices"] if d["device"] in known]
        silence["met"] = [m for m in silence.get("met", []) if m["device"] in known]
        inputs._silence = DeviceSilence.restore(context.silence, context.calendar, silence)
        inputs._heavy = HeavyPollutionResponse.restore(
            context.heavy, dict(snapshot["heavy_pollution"])
        )
        ticked = snapshot.get("ticked")  # absent from snapshots older than it
        inputs._ticked = None if ticked is None else datetime.fromisoformat(ticked)
        inputs._unsettled = {  # absent from snapshots older than it
            row["unit"]: Unsettled(
                datetime.fromisoformat(row["judged_to"]), datetime.fromisoformat(row["newest"])
            )
            for row in snapshot.get("unsettled", [])
            if row["unit"] in context.register.enterprises_by_code
        }
        return inputs
