"""Runs a simulation: fleet energy, production reports and VOC monitors, faults applied,
records released in the order devices would send them.

    per interval:  meter samples --value faults--> JSON --delivery faults--> emission queue
                   day / month ends -> production reports ----------------->      |
                   each VOC monitor's minutes (and hours) ------------------>      |
                   release everything due by the end of the interval  <-----------+

Pure apart from what it is given: no wall clock, no IO. The same plan gives the same records.
"""

import heapq
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

from contracts.identifiers import CHINA_STANDARD_TIME
from contracts.production import (
    AnyProductionReport,
    EnergyTotalReport,
    encode_production_report,
)
from contracts.readings import READING_MODELS, EnergyType
from contracts.voc import VocSample, encode_voc_sample
from simulators.emission import EmissionQueue
from simulators.energy import EnergyModel
from simulators.faults import FaultInjector, FaultSpec
from simulators.fleet import Enterprise
from simulators.reading_json import encode_sample
from simulators.records import Channel, SimRecord
from simulators.voc import VocMonitorProfile, voc_samples

#: How long after a period's end the enterprise's system uploads the day or month report.
REPORT_DELAY = timedelta(hours=1)
_FOREVER_MINUTES = 60 * 24 * 366 * 20


def energy_totals(
    enterprise: Enterprise, month_start: datetime, month_use: dict[str, float], whole: bool
) -> list[EnergyTotalReport]:
    """The unit's monthly figure for each energy type it meters, from its meters' true
    consumption (``month_use``, which this resets); none for a month the simulation did not
    see ``whole``: a figure for part of a month would read as a deviation."""
    by_type: dict[EnergyType, float] = {}
    for meter in enterprise.meters:
        used = month_use[meter.meter_id]
        month_use[meter.meter_id] = 0.0
        by_type[meter.energy_type] = by_type.get(meter.energy_type, 0.0) + used
    if not whole:
        return []
    return [
        EnergyTotalReport.model_validate(
            {
                "enterprise_code": enterprise.code,
                "energy_type": energy_type,
                "period": "month",
                "period_start": month_start.astimezone(UTC),
                f"consumption_{READING_MODELS[energy_type].physical_unit.lower()}": round(used, 3),
            }
        )
        for energy_type, used in sorted(by_type.items())
    ]


def _emit_time(record: SimRecord) -> datetime:
    return record.emit_at


def _upload_offset(device_id: str) -> timedelta:
    """Each device uploads a few seconds after its interval ends, always the same few."""
    return timedelta(seconds=5 + zlib.crc32(device_id.encode()) % 55)


@dataclass
class SimulationPlan:
    energy: EnergyModel
    start: datetime
    end: datetime | None = None
    faults: list[FaultSpec] = field(default_factory=list)
    voc_monitors: list[VocMonitorProfile] = field(default_factory=list)
    production_reports: bool = True


@dataclass
class Simulation:
    plan: SimulationPlan

    def __post_init__(self) -> None:
        self.injector = FaultInjector(
            self.plan.faults,
            seed=self.plan.energy.fleet.seed,
            counter_lookup=lambda meter, at: self.plan.energy.counter_before(
                meter, at, self.plan.start
            ),
        )
        self.counts: dict[Channel, int] = dict.fromkeys(Channel, 0)

    def records(self) -> Iterator[SimRecord]:
        """Every record in emission order, until ``plan.end`` (event time) or forever."""
        plan = self.plan
        energy = plan.energy
        interval = energy.interval
        queue = EmissionQueue()
        injector = self.injector
        faulty = injector.targets()
        fleet = energy.fleet
        offsets = {
            m.meter_id: _upload_offset(m.meter_id) for e in fleet.enterprises for m in e.meters
        }
        by_code = {e.code: e for e in fleet.enterprises}
        day_tce = dict.fromkeys(by_code, 0.0)
        month_tce = dict.fromkeys(by_code, 0.0)
        # each meter's true consumption this month: the unit's own monthly figure (its bills,
        # its ledger) counts what was used, whatever the meter failed to deliver
        month_use = dict.fromkeys((m.meter_id for e in fleet.enterprises for m in e.meters), 0.0)
        # a counter-only meter's use is its register's advance; its first interval has no
        # earlier register, for the unit's books as for the meter's readers
        registers: dict[str, float] = {}
        reports_on = plan.production_reports
        voc = [self._voc_stream(monitor) for monitor in plan.voc_monitors]
        pending_voc: list[VocSample | None] = [next(stream, None) for stream in voc]
        readings = Channel.READINGS
        push = queue.push
        by_emit = _emit_time
        # Records sent on time skip the queue's heap: each meter has a fixed slot in emission
        # order (by upload offset, ties in fleet order), so an interval's records need no sort.
        # Only delayed, duplicated, report and VOC records pass through the heap.
        meter_ids = [m.meter_id for e in fleet.enterprises for m in e.meters]
        order = sorted(range(len(meter_ids)), key=lambda i: (offsets[meter_ids[i]], i))
        distinct = sorted(set(offsets.values()))
        # per meter: its slot in emission order and which of the few upload offsets it uses;
        # the interval's emit times are then built once and shared (their hashes too)
        place = {
            meter_ids[i]: (position, distinct.index(offsets[meter_ids[i]]))
            for position, i in enumerate(order)
        }
        empty: list[SimRecord | None] = [None] * len(meter_ids)
        new_record = tuple.__new__  # the named tuple's own constructor is Python-level: slower
        on_time: list[SimRecord] = []
        at = plan.start
        for units in energy.unit_intervals(plan.start):
            if plan.end is not None and at >= plan.end:
                break
            interval_end = at + interval
            due_on_time = on_time
            slots = empty.copy()
            emit_times = [interval_end + offset for offset in distinct]
            for samples, baseline_tce in units:
                day_tce[samples[0].enterprise_code] += baseline_tce
                if reports_on:
                    for sample in samples:
                        used = sample.consumption
                        if used is None and sample.counter is not None:
                            before = registers.get(sample.meter_id, sample.counter)
                            registers[sample.meter_id] = sample.counter
                            used = sample.counter - before
                        if used is not None:
                            month_use[sample.meter_id] += used
                for sample in samples:
                    meter_id = sample.meter_id
                    if meter_id in faulty:
                        bent = injector.apply_value_faults(sample)
                        record = SimRecord(
                            interval_end + offsets[meter_id],
                            readings,
                            meter_id,
                            encode_sample(bent),
                        )
                        push(injector.apply_delivery_faults(record, at))
                    else:
                        position, emit_index = place[meter_id]
                        slots[position] = new_record(
                            SimRecord,
                            (
                                emit_times[emit_index],
                                readings,
                                meter_id,
                                encode_sample(sample),
                                False,
                            ),
                        )
            # every slot is filled unless a meter has faults (its records went to the heap)
            on_time = (
                [r for r in slots if r is not None] if faulty else cast(list[SimRecord], slots)
            )
            for index, stream in enumerate(voc):
                minute = pending_voc[index]
                while minute is not None and minute.data_time < interval_end:
                    self._push_voc(queue, minute)
                    minute = next(stream, None)
                pending_voc[index] = minute
            if reports_on:
                self._reports(queue, by_code, day_tce, month_tce, month_use, interval_end)
            # last interval's on-time records are all due by now (uploads take < 1 interval)
            queued = list(queue.release_until(interval_end))
            if queued:
                for record in queued:
                    self.counts[record.channel] += 1
                yield from heapq.merge(due_on_time, queued, key=by_emit)
            else:
                yield from due_on_time
            self.counts[readings] += len(due_on_time)
            at = interval_end
        queue.push(on_time)
        for record in queue.drain():
            self.counts[record.channel] += 1
            yield record

    def _voc_stream(self, monitor: VocMonitorProfile) -> Iterator[VocSample]:
        start = self.plan.start.replace(second=0, microsecond=0)
        minutes = _FOREVER_MINUTES
        if self.plan.end is not None:
            minutes = int((self.plan.end - start).total_seconds() // 60)
        return voc_samples(monitor, start, minutes, self.plan.energy.fleet.seed)

    def _push_voc(self, queue: EmissionQueue, sample: VocSample) -> None:
        sent_at = (
            sample.data_time
            + timedelta(seconds=sample.interval_seconds)
            + _upload_offset(sample.monitor_id)
        )
        record = SimRecord(sent_at, Channel.VOC, sample.monitor_id, encode_voc_sample(sample))
        if sample.monitor_id in self.injector.targets():
            queue.push(self.injector.apply_delivery_faults(record, sample.data_time))
        else:
            queue.push((record,))

    def _reports(
        self,
        queue: EmissionQueue,
        by_code: dict[str, Enterprise],
        day_tce: dict[str, float],
        month_tce: dict[str, float],
        month_use: dict[str, float],
        interval_end: datetime,
    ) -> None:
        """At a China-local midnight: each unit's daily product output; on the 1st, last
        month's output value and, for a month the simulation saw whole, its energy totals."""
        local_end = interval_end.astimezone(CHINA_STANDARD_TIME)
        if local_end.hour or local_end.minute:
            return
        day_start = local_end - timedelta(days=1)
        sent_at = interval_end + REPORT_DELAY
        for code, enterprise in by_code.items():
            reports: list[AnyProductionReport] = [
                *self.plan.energy.production_reports(enterprise, day_start, day_tce[code])
            ]
            month_tce[code] += day_tce[code]
            day_tce[code] = 0.0
            if local_end.day == 1:
                month_start = day_start.replace(day=1)
                reports.append(
                    self.plan.energy.output_value(enterprise, month_start, month_tce[code])
                )
                month_tce[code] = 0.0
                whole = month_start >= self.plan.start.astimezone(CHINA_STANDARD_TIME)
                reports += energy_totals(enterprise, month_start, month_use, whole)
            for report in reports:
                record = SimRecord(
                    sent_at, Channel.PRODUCTION, code, encode_production_report(report)
                )
                queue.push((record,))
