"""Simulated online VOC monitors (涉VOCs重点排污单位的在线监测), speaking HJ 212.

Pure and deterministic: the same profile, start, length and seed give the same samples and
the same packets, byte for byte. Randomness comes from ``random.Random`` instances seeded from
the seed and the monitor id through SHA-256 (never Python's salted ``hash()``): one stream for
the minute-by-minute noise, and one per China Standard Time day for that day's events, so a
day's calibrations, faults and episodes do not depend on when the run started.

What a monitor reports, per minute:

- NMHC (a24088) and aromatics (a25002 benzene, a25003 toluene, a25004 ethylbenzene, a25005
  xylenes) follow production: high on the day shift (08:00–20:00 CST), lower at night, with
  a bump around 06:30 when the morning inversion traps the night's emissions, 15% lower at
  weekends; the noise is log-normal and autocorrelated (an AR(1) process in log space shared
  by NMHC and aromatics, plus a little white noise of each's own).
- Methane (a05002) stays near its ambient baseline (1.2–2 mg/m³) with a small inversion bump.
- Flow (a00000, m³/s; ``cou`` m³), temperature (a01012, diurnal and seasonal), pressure
  (a01013, ~100–102 kPa with the semi-diurnal tide), humidity (a01014, 30–90%) and O2
  (a19001, 19–20.5%, lower when production burns or dilutes more).

What goes wrong, on the VOC analyser's codes only (the parameter unit always reports N):

- Calibration (C) on a schedule, daily at a fixed CST minute: zero gas for the first half,
  span gas for the second, so counting C values would be visibly wrong. Optionally also
  unscheduled ones.
- Maintenance (M): the analyser is off, values are empty on the wire; 30 min to 4 h, started
  during the day shift.
- Faults (D): the values stick at the last normal reading; 5 min to 6 h.
  Overlaps resolve D over M over C.
- Exceedance episodes: random (at most one per day, day shift, 20–180 min) or forced in the
  profile. During one, NMHC reads ``factor`` × the highest NMHC limit (single reading if set,
  else hourly), so every minute of the episode is over both limits; the aromatics rise in
  proportion. Flags stay N: an exceedance is real data.

Every full hour also yields the hourly sample built from that hour's minutes by
``hourly_sample``. ``voc_packet`` turns a sample into its HJ 212 frame.
"""

import hashlib
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from contracts.identifiers import EnterpriseCode, UtcDatetime
from contracts.voc import DataFlag, MonitorId, PollutantCode, PollutantValue, VocSample
from ingest.hj212 import (
    CN_DAILY_DATA,
    CN_HOURLY_DATA,
    CN_MINUTE_DATA,
    FLAG_ACK_WANTED,
    FLAG_VERSION_2017,
    ST_VOCS,
    CpSegment,
    Packet,
    data_time_cst,
    encode_packet,
    format_number,
    qn_for,
)
from simulators.electricity import simulated_enterprise_code
from stream.voc_averages import VALID_SHARE, average

NMHC: Final = "a24088"
METHANE: Final = "a05002"
AROMATICS: Final = ("a25002", "a25003", "a25004", "a25005")
#: The codes the VOC analyser measures; a profile's baselines may name these only.
ANALYSER_CODES: Final = (NMHC, METHANE, *AROMATICS)
FLOW, TEMPERATURE, PRESSURE, HUMIDITY, OXYGEN = "a00000", "a01012", "a01013", "a01014", "a19001"
PARAMETER_CODES: Final = (FLOW, TEMPERATURE, PRESSURE, HUMIDITY, OXYGEN)

#: Decimals each code is reported with (what analysers and data loggers typically show).
DECIMALS: Final = {code: 3 for code in ANALYSER_CODES} | {
    FLOW: 3,
    TEMPERATURE: 1,
    PRESSURE: 2,
    HUMIDITY: 1,
    OXYGEN: 2,
}
_COU_DECIMALS: Final = 2
# How far a minute's min and max stray from its average, relative to it: the analyser's
# readings scatter; the parameters barely move within a minute.
_SPREAD: Final = dict.fromkeys(ANALYSER_CODES, 0.12) | {
    FLOW: 0.03,
    TEMPERATURE: 0.01,
    PRESSURE: 0.0005,
    HUMIDITY: 0.02,
    OXYGEN: 0.004,
}

#: An hour's value is valid (flag N) when at least this share of its minutes is N.
HOURLY_VALID_SHARE: Final = VALID_SHARE

# Span gases of the calibration's second half: propane-equivalent NMHC, methane, and each
# aromatic, mg/m³. Far above normal readings on purpose.
_SPAN_MG_M3: Final = {NMHC: 50.0, METHANE: 20.0} | dict.fromkeys(AROMATICS, 5.0)
_MINUTES_PER_DAY: Final = 1440
_CST_OFFSET_MINUTES: Final = 480
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE: Final = timedelta(minutes=1)
# AR(1) log-noise shared by NMHC and aromatics: x ← φx + N(0, σ²); stationary variance
# σ²/(1−φ²), subtracted by half so the noise factor averages 1.
_AR_PHI: Final = 0.9
_AR_SIGMA: Final = 0.1
_AR_HALF_VARIANCE: Final = _AR_SIGMA**2 / (1 - _AR_PHI**2) / 2
_FLAG_PRECEDENCE: Final = (DataFlag.FAULT, DataFlag.MAINTENANCE, DataFlag.CALIBRATION)


class ConcentrationLimit(BaseModel):
    """A pollutant's emission limit under the monitor's standard: an hourly average, and for
    some standards (GB 37822) also a limit on any single reading."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hourly_avg_mg_m3: float = Field(gt=0, allow_inf_nan=False)
    single_mg_m3: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @property
    def highest_mg_m3(self) -> float:
        return max(self.hourly_avg_mg_m3, self.single_mg_m3 or 0.0)


#: GB 37822-2019 fugitive NMHC inside the plant: 10 mg/m³ hourly, 30 single (special 6/20).
GB_37822_NMHC: Final = ConcentrationLimit(hourly_avg_mg_m3=10, single_mg_m3=30)
GB_37822_NMHC_SPECIAL: Final = ConcentrationLimit(hourly_avg_mg_m3=6, single_mg_m3=20)
#: GB 31571-2015 petrochemical stacks: benzene 4, toluene 15, xylenes 20 mg/m³, NMHC 120 for
#: wastewater-treatment off-gas.
GB_31571_STACK: Final = {
    NMHC: ConcentrationLimit(hourly_avg_mg_m3=120),
    "a25002": ConcentrationLimit(hourly_avg_mg_m3=4),
    "a25003": ConcentrationLimit(hourly_avg_mg_m3=15),
    "a25005": ConcentrationLimit(hourly_avg_mg_m3=20),
}


class ExceedanceEpisode(BaseModel):
    """A forced exceedance: from ``start`` for ``duration``, NMHC reads ``factor`` × the
    highest NMHC limit (minutes partly inside count as inside)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: UtcDatetime
    duration: timedelta = Field(gt=timedelta(0))
    factor: float = Field(gt=1, le=100, allow_inf_nan=False)


class FlagProbabilities(BaseModel):
    """Probability per China Standard Time day that one such event starts that day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    maintenance_per_day: float = Field(default=0.03, ge=0, le=1)
    fault_per_day: float = Field(default=0.02, ge=0, le=1)
    unscheduled_calibration_per_day: float = Field(default=0.0, ge=0, le=1)


class CalibrationSchedule(BaseModel):
    """The daily automatic calibration: at ``minute_of_day_cst`` for ``duration_minutes``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    minute_of_day_cst: int = Field(default=3 * 60, ge=0, lt=_MINUTES_PER_DAY)
    duration_minutes: int = Field(default=12, ge=1, le=60)


class VocMonitorProfile(BaseModel):
    """One simulated VOC monitor and the rules it is held to.

    ``limits`` maps a pollutant code to its ``ConcentrationLimit`` (the standard's hourly
    average and, where the standard has one, single-reading limit); NMHC must have one.
    ``baseline_mg_m3`` names the analyser codes the monitor measures (NMHC required, see
    ``ANALYSER_CODES``) with their typical daytime concentration.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    monitor_id: MonitorId
    enterprise_code: EnterpriseCode
    password: SecretStr
    standard: str = Field(default="GB 37822-2019", min_length=1, max_length=64)
    limits: dict[PollutantCode, ConcentrationLimit]
    baseline_mg_m3: dict[PollutantCode, float]
    flow_m3_s: float = Field(gt=0, allow_inf_nan=False)
    exceedance_probability_per_day: float = Field(default=0.0, ge=0, le=1)
    flag_probabilities: FlagProbabilities = FlagProbabilities()
    calibration: CalibrationSchedule | None = CalibrationSchedule()
    exceedance_episodes: tuple[ExceedanceEpisode, ...] = ()

    @model_validator(mode="after")
    def _measures_what_it_can(self) -> Self:
        unknown = sorted(set(self.baseline_mg_m3) - set(ANALYSER_CODES))
        if unknown:
            raise ValueError(f"the simulated analyser cannot measure {', '.join(unknown)}")
        if NMHC not in self.baseline_mg_m3 or NMHC not in self.limits:
            raise ValueError(f"a VOC monitor measures NMHC ({NMHC}) and has a limit for it")
        if any(not 0 < value < math.inf for value in self.baseline_mg_m3.values()):
            raise ValueError("baselines are positive, finite concentrations")
        return self


def _stable_seed(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _epoch_minute(at: datetime) -> int:
    return (at - _EPOCH) // _MINUTE


@dataclass(frozen=True, slots=True)
class _Span:
    """Epoch minutes ``[start, end)`` with what happens in them."""

    start: int
    end: int
    flag: DataFlag = DataFlag.NORMAL
    factor: float = 1.0


@dataclass(frozen=True, slots=True)
class _DayPlan:
    events: tuple[_Span, ...]
    episodes: tuple[_Span, ...]


def _day_plan(profile: VocMonitorProfile, seed: int, cst_day: int) -> _DayPlan:
    """The events of one CST day. Every draw happens whatever the probabilities, so raising
    one probability does not reshuffle the other events."""
    rng = random.Random(_stable_seed(seed, profile.monitor_id, "day", cst_day))
    midnight = cst_day * _MINUTES_PER_DAY - _CST_OFFSET_MINUTES
    rates = profile.flag_probabilities
    events = []
    if profile.calibration is not None:
        begin = midnight + profile.calibration.minute_of_day_cst
        events.append(
            _Span(begin, begin + profile.calibration.duration_minutes, DataFlag.CALIBRATION)
        )
    draws = [
        (rates.unscheduled_calibration_per_day, 0, 24 * 60, 10, 15, DataFlag.CALIBRATION),
        (rates.maintenance_per_day, 8 * 60, 18 * 60, 30, 240, DataFlag.MAINTENANCE),
        (rates.fault_per_day, 0, 24 * 60, 5, 360, DataFlag.FAULT),
    ]
    for probability, earliest, latest, shortest, longest, flag in draws:
        chance, begin = rng.random(), midnight + rng.randrange(earliest, latest)
        # log-uniform: most events are short, a few last long
        length = round(math.exp(rng.uniform(math.log(shortest), math.log(longest))))
        if chance < probability:
            events.append(_Span(begin, begin + length, flag))
    chance, begin = rng.random(), midnight + rng.randrange(8 * 60, 18 * 60)
    length, factor = rng.randint(20, 180), rng.uniform(1.1, 2.0)
    episodes = []
    if chance < profile.exceedance_probability_per_day:
        episodes.append(_Span(begin, begin + length, factor=factor))
    return _DayPlan(tuple(events), tuple(episodes))


def _production(hour: float) -> float:
    """Relative production at CST ``hour``: 1 on the day shift, 0.45 at night, 1 h ramps."""
    if 8 <= hour < 20:
        return 1.0
    if 7 <= hour < 8:
        return 0.45 + 0.55 * (hour - 7)
    if 20 <= hour < 21:
        return 1.0 - 0.55 * (hour - 20)
    return 0.45


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def _inversion(hour: float) -> float:
    """The morning inversion bump, largest at 06:30 CST."""
    return math.exp(-(((hour - 6.5) / 1.2) ** 2) / 2)


class _Monitor:
    """The state of one monitor while it generates: noise stream, day plans, held values."""

    def __init__(self, profile: VocMonitorProfile, seed: int) -> None:
        self.profile = profile
        self.seed = seed
        self.rng = random.Random(_stable_seed(seed, profile.monitor_id, "noise"))
        self.log_noise = 0.0
        self.held: dict[str, float] = {}
        self.plans: dict[int, _DayPlan] = {}
        self.top_nmhc_limit = profile.limits[NMHC].highest_mg_m3
        self.forced = tuple(
            _Span(
                _epoch_minute(episode.start),
                -(-(episode.start + episode.duration - _EPOCH) // _MINUTE),
                factor=episode.factor,
            )
            for episode in profile.exceedance_episodes
        )

    def _plan(self, cst_day: int) -> _DayPlan:
        if cst_day not in self.plans:
            self.plans = {d: p for d, p in self.plans.items() if d >= cst_day - 1}
            self.plans[cst_day] = _day_plan(self.profile, self.seed, cst_day)
        return self.plans[cst_day]

    def _situation(self, minute: int, cst_day: int) -> tuple[_Span | None, float]:
        """The event in force (by precedence) and the exceedance factor at ``minute``."""
        # yesterday's events may run past midnight
        plans = (self._plan(cst_day - 1), self._plan(cst_day))
        active = [e for plan in plans for e in plan.events if e.start <= minute < e.end]
        event = None
        for flag in _FLAG_PRECEDENCE:
            event = next((e for e in active if e.flag is flag), None)
            if event is not None:
                break
        episodes = [e for plan in plans for e in plan.episodes] + list(self.forced)
        factor = max((e.factor for e in episodes if e.start <= minute < e.end), default=0.0)
        return event, factor

    def _spread(self, value: float, relative: float, decimals: int) -> tuple[float, float]:
        low = value * (1 - relative * self.rng.random())
        high = value * (1 + relative * self.rng.random())
        return round(min(low, high), decimals), round(max(low, high), decimals)

    def _analyser(
        self, minute: int, hour: float, weekend: bool, event: _Span | None, factor: float
    ) -> dict[str, PollutantValue]:
        gauss = self.rng.gauss
        baseline = self.profile.baseline_mg_m3
        shape = (_production(hour) + 0.35 * _inversion(hour)) * (0.85 if weekend else 1.0)
        self.log_noise = _AR_PHI * self.log_noise + gauss(0, _AR_SIGMA)
        common = self.log_noise - _AR_HALF_VARIANCE
        normal = baseline[NMHC] * shape * math.exp(common + gauss(0, 0.05))
        nmhc = normal
        if factor:
            nmhc = max(normal, factor * self.top_nmhc_limit * (1 + abs(gauss(0, 0.05))))
        truth = {NMHC: nmhc}
        for code in AROMATICS:
            if code in baseline:
                noise = math.exp(common + gauss(0, 0.12))
                truth[code] = baseline[code] * shape * noise * nmhc / normal
        if METHANE in baseline:
            methane = baseline[METHANE] * (1 + 0.12 * _inversion(hour) + gauss(0, 0.02))
            truth[METHANE] = max(0.0, methane)

        flag = DataFlag.NORMAL if event is None else event.flag
        values = {}
        for code in baseline:
            decimals = DECIMALS[code]
            if flag is DataFlag.MAINTENANCE:
                values[code] = PollutantValue(flag=flag)
                continue
            if flag is DataFlag.FAULT:
                stuck = self.held.get(code, round(truth[code], decimals))
                values[code] = PollutantValue(avg=stuck, min=stuck, max=stuck, flag=flag)
                continue
            reading = truth[code]
            if event is not None and flag is DataFlag.CALIBRATION:
                zero_phase = (minute - event.start) * 2 < event.end - event.start
                reading = abs(gauss(0, 0.02)) if zero_phase else _SPAN_MG_M3[code]
                reading *= 1 + gauss(0, 0.01)
            avg = round(reading, decimals)
            low, high = self._spread(reading, _SPREAD[code], decimals)
            values[code] = PollutantValue(avg=avg, min=min(low, avg), max=max(high, avg), flag=flag)
            if flag is DataFlag.NORMAL:
                self.held[code] = avg
        return values

    def _parameters(self, hour: float, day_of_year: int) -> dict[str, PollutantValue]:
        gauss = self.rng.gauss
        production = _production(hour)
        season = math.cos(2 * math.pi * (day_of_year - 15) / 365)  # 1 in mid-January
        diurnal = math.sin(2 * math.pi * (hour - 9) / 24)  # 1 at 15:00
        tide = math.sin(2 * math.pi * (hour - 7) / 12)
        truth = {
            FLOW: self.profile.flow_m3_s * (0.6 + 0.4 * production) * (1 + gauss(0, 0.02)),
            TEMPERATURE: 14 - 13 * season + 6 * diurnal + gauss(0, 0.3),
            # the atmospheric tide peaks near 10:00 and 22:00
            PRESSURE: _clamp(101 + 0.5 * season + 0.15 * tide + gauss(0, 0.03), 100, 102),
            HUMIDITY: _clamp(62 - 18 * diurnal + 8 * season + gauss(0, 2), 30, 90),
            OXYGEN: _clamp(20.4 - 0.9 * production + gauss(0, 0.1), 19, 20.5),
        }
        values = {}
        for code, reading in truth.items():
            decimals = DECIMALS[code]
            avg = round(reading, decimals)
            low, high = self._spread(reading, _SPREAD[code], decimals)
            cou = round(reading * 60, _COU_DECIMALS) if code == FLOW else None
            values[code] = PollutantValue(
                avg=avg, min=min(low, avg), max=max(high, avg), cou=cou, flag=DataFlag.NORMAL
            )
        return values

    def minute_sample(self, at: datetime) -> VocSample:
        minute = _epoch_minute(at)
        cst_minute = minute + _CST_OFFSET_MINUTES
        cst_day, minute_of_day = divmod(cst_minute, _MINUTES_PER_DAY)
        hour = minute_of_day / 60
        weekend = (cst_day + 3) % 7 >= 5  # 1970-01-01 was a Thursday
        local_date = (at + timedelta(minutes=_CST_OFFSET_MINUTES)).date()
        event, factor = self._situation(minute, cst_day)
        values = self._analyser(minute, hour, weekend, event, factor)
        values |= self._parameters(hour, local_date.timetuple().tm_yday)
        return VocSample(
            monitor_id=self.profile.monitor_id,
            enterprise_code=self.profile.enterprise_code,
            data_time=at,
            interval_seconds=60,
            values=values,
        )


def voc_samples(
    profile: VocMonitorProfile, start: datetime, minutes: int, seed: int
) -> Iterator[VocSample]:
    """Minute samples for ``minutes`` minutes from ``start`` (aware, on a whole minute), and
    after the last minute of each hour the run covers fully, that hour's sample."""
    if start.tzinfo is None or start.second or start.microsecond:
        raise ValueError(f"start must be timezone-aware and on a whole minute, not {start}")
    monitor = _Monitor(profile, seed)
    hour: list[VocSample] = []
    for step in range(minutes):
        at = start + step * _MINUTE
        sample = monitor.minute_sample(at)
        yield sample
        if at.minute == 0:
            hour = []
        hour.append(sample)
        if at.minute == 59 and hour[0].data_time.minute == 0:
            yield hourly_sample(hour)


def hourly_sample(minutes: Sequence[VocSample]) -> VocSample:
    """The hourly sample (CN 2061) of one monitor's minute samples within one hour, by the
    stream's own rule (``stream.voc_averages``), rounded as the data logger displays it."""
    return average(minutes, 3600, decimals=DECIMALS, cou_decimals=_COU_DECIMALS)


_CN_BY_INTERVAL: Final = {60: CN_MINUTE_DATA, 3600: CN_HOURLY_DATA, 86_400: CN_DAILY_DATA}


def _wire(value: float | None) -> str:
    return "" if value is None else format_number(value)


def voc_packet(sample: VocSample, password: str, qn_time: datetime) -> bytes:
    """The sample as the monitor's data logger uploads it: an HJ 212-2017 frame with ST=27,
    CN 2051/2061/2031, ``Flag=5`` (2017 version, reply wanted), ``QN`` from ``qn_time`` and
    per code ``-Avg``, ``-Min``, ``-Max``, ``-Cou`` (when given) and ``-Flag``. Missing values
    go out empty, as loggers send them."""
    pollutants = {}
    for code, value in sample.values.items():
        fields = {"Avg": _wire(value.avg), "Min": _wire(value.min), "Max": _wire(value.max)}
        if value.cou is not None:
            fields["Cou"] = format_number(value.cou)
        fields["Flag"] = value.flag.value
        pollutants[code] = fields
    packet = Packet(
        qn=qn_for(qn_time),
        st=ST_VOCS,
        cn=_CN_BY_INTERVAL[sample.interval_seconds],
        pw=password,
        mn=sample.monitor_id,
        flag=FLAG_VERSION_2017 | FLAG_ACK_WANTED,
        cp=CpSegment.of({"DataTime": data_time_cst(sample.data_time)}, pollutants),
    )
    return encode_packet(packet)


def simulated_voc_monitors(count: int, seed: int) -> list[VocMonitorProfile]:
    """``count`` monitors at key VOC emitters: about three in four measure fugitive NMHC in
    the plant under GB 37822-2019 (a quarter of those under its special limits), the rest sit
    on petrochemical stacks under GB 31571-2015 and measure all aromatics."""
    rng = random.Random(seed)
    monitors = []
    for index in range(count):
        code = simulated_enterprise_code(rng)
        monitor_id = f"{code[2:8]}VOC{index:04d}{rng.randrange(10_000):04d}"
        password = SecretStr(f"{rng.randrange(1_000_000):06d}")
        if rng.random() < 0.75:
            nmhc = GB_37822_NMHC_SPECIAL if rng.random() < 0.25 else GB_37822_NMHC
            standard, limits = "GB 37822-2019", {NMHC: nmhc}
            level = nmhc.hourly_avg_mg_m3 * rng.uniform(0.15, 0.3)
            baseline = {NMHC: level, METHANE: rng.uniform(1.2, 1.9)}
            baseline |= {"a25002": level * 0.01, "a25003": level * 0.05, "a25005": level * 0.04}
        else:
            standard, limits = "GB 31571-2015", dict(GB_31571_STACK)
            level = rng.uniform(15, 40)
            baseline = {NMHC: level, METHANE: rng.uniform(1.5, 2.0)}
            baseline |= {"a25002": 0.3 + level * 0.01, "a25003": level * 0.08}
            baseline |= {"a25004": level * 0.03, "a25005": level * 0.1}
        monitors.append(
            VocMonitorProfile(
                monitor_id=monitor_id,
                enterprise_code=code,
                password=password,
                standard=standard,
                limits=limits,
                baseline_mg_m3={k: round(v, 3) for k, v in baseline.items()},
                flow_m3_s=round(rng.uniform(5, 60), 1),
                exceedance_probability_per_day=0.05,
                calibration=CalibrationSchedule(
                    minute_of_day_cst=rng.randrange(0, 6 * 60), duration_minutes=rng.randint(10, 15)
                ),
            )
        )
    return monitors
