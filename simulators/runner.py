"""Runs a simulation: fleet energy, production reports and VOC monitors, faults applied,
records released in the order devices would send them.

    per interval:  meter samples --value faults--> JSON --delivery faults--> emission queue
                   day / month ends -> production reports ----------------->      |
                   each VOC monitor's minutes (and hours) ------------------>      |
                   release everything due by the end of the interval  <-----------+

Pure apart from what it is given: no wall clock, no IO. The same plan gives the same records.
"""

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from contracts.production import encode_production_report
from contracts.readings import EnergyType
from contracts.voc import VocSample, encode_voc_sample
from simulators.emission import EmissionQueue
from simulators.energy import EnergyModel
from simulators.faults import FaultInjector, FaultSpec
from simulators.fleet import Enterprise
from simulators.production import CHINA_STANDARD_TIME
from simulators.reading_json import encode_sample
from simulators.records import Channel, SimRecord
from simulators.voc import VocMonitorProfile, voc_samples

#: How long after a period's end the enterprise's system uploads the day or month report.
REPORT_DELAY = timedelta(hours=1)
_FOREVER_MINUTES = 60 * 24 * 366 * 20


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
        offsets: dict[str, timedelta] = {}
        by_code = {e.code: e for e in energy.fleet.enterprises}
        day_tce = dict.fromkeys(by_code, 0.0)
        month_tce = dict.fromkeys(by_code, 0.0)
        kgce: dict[tuple[str, int], float] = {}
        voc = [self._voc_stream(monitor) for monitor in plan.voc_monitors]
        pending_voc: list[VocSample | None] = [next(stream, None) for stream in voc]
        at = plan.start
        for samples in energy.interval_samples(plan.start):
            if plan.end is not None and at >= plan.end:
                break
            interval_end = at + interval
            for sample in samples:
                meter_id = sample.meter_id
                offset = offsets.get(meter_id)
                if offset is None:
                    offset = offsets[meter_id] = _upload_offset(meter_id)
                if sample.energy_type is not EnergyType.WATER and sample.consumption:
                    key = (meter_id, at.year)
                    factor = kgce.get(key)
                    if factor is None:
                        factor = kgce[key] = energy.factors.kgce_per_unit(
                            sample.energy_type, at.date()
                        )[0]
                    baseline = sample.consumption / energy.adjustment(
                        by_code[sample.enterprise_code].id, at
                    )
                    day_tce[sample.enterprise_code] += baseline * factor / 1000
                if meter_id in faulty:
                    bent = injector.apply_value_faults(sample)
                    record = SimRecord(
                        interval_end + offset, Channel.READINGS, meter_id, encode_sample(bent)
                    )
                    queue.push(injector.apply_delivery_faults(record, at))
                else:
                    queue.push(
                        (
                            SimRecord(
                                interval_end + offset,
                                Channel.READINGS,
                                meter_id,
                                encode_sample(sample),
                            ),
                        )
                    )
            for index, stream in enumerate(voc):
                minute = pending_voc[index]
                while minute is not None and minute.data_time < interval_end:
                    self._push_voc(queue, minute)
                    minute = next(stream, None)
                pending_voc[index] = minute
            if plan.production_reports:
                self._reports(queue, by_code, day_tce, month_tce, interval_end)
            for record in queue.release_until(interval_end):
                self.counts[record.channel] += 1
                yield record
            at = interval_end
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
        interval_end: datetime,
    ) -> None:
        """At a China-local midnight: each unit's daily product output; on the 1st, last
        month's output value."""
        local_end = interval_end.astimezone(CHINA_STANDARD_TIME)
        if local_end.hour or local_end.minute:
            return
        day_start = local_end - timedelta(days=1)
        for code, enterprise in by_code.items():
            for report in self.plan.energy.production_reports(enterprise, day_start, day_tce[code]):
                queue.push(
                    (
                        SimRecord(
                            interval_end + REPORT_DELAY,
                            Channel.PRODUCTION,
                            code,
                            encode_production_report(report),
                        ),
                    )
                )
            month_tce[code] += day_tce[code]
            day_tce[code] = 0.0
            if local_end.day == 1:
                month_start = day_start.replace(day=1)
                report_value = self.plan.energy.output_value(
                    enterprise, month_start, month_tce[code]
                )
                queue.push(
                    (
                        SimRecord(
                            interval_end + REPORT_DELAY,
                            Channel.PRODUCTION,
                            code,
                            encode_production_report(report_value),
                        ),
                    )
                )
                month_tce[code] = 0.0
