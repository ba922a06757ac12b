"""The probes of the alert-latency benchmark (pure): a VOC monitor reading that must cause a
notification on its own, the samples that clear it again, and matching what the webhook heard
to the probe that caused it.

The rule: **GB 37822-2019's single-reading limit for NMHC inside the plant (30 mg/m³)**,
``voc-single.a24088``. It judges one minute sample alone: no window to fill, no pending time
(the lifecycle's default ``pending_for`` is zero), no watermark to wait for. Each probe is a
minute sample above the line on one of a dedicated unit's monitors; half a probe cycle later
a sample well inside it (clear of the hysteresis margin) resolves that alert, so the monitor's
next probe starts a new one. Probes rotate over the monitors, and each monitor keeps its own
minute timeline (one minute per sample, ending just before the wall clock), so every sample is
newer than the last judged on its monitor and never old enough to count as a replay.

A probe is told apart by its alert's subject (``<monitor>.a24088``) and event time (the end of
its minute); its value (``100 + seq`` mg/m³) names it too, for a reader of the webhook log.
"""

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from contracts.alert_events import AlertEvent, AlertKind
from contracts.identifiers import uscc_check_character
from contracts.voc import DataFlag, PollutantValue, VocSample
from plans.register import EnterpriseEntry, Register, VocLimit, VocMonitorEntry, salted_digest
from simulators.regions import load_regions

POLLUTANT: Final = "a24088"  # non-methane hydrocarbons (NMHC)
STANDARD: Final = "GB 37822-2019"
SINGLE_LIMIT_MG_M3: Final = 30.0  # any single reading inside the plant
HOURLY_LIMIT_MG_M3: Final = 10.0  # never reached: probe hours are far from 75% valid
RULE_ID: Final = f"voc-single.{POLLUTANT}"
CLEAR_MG_M3: Final = 1.0  # far inside the 5% hysteresis margin
PROBE_BASE_MG_M3: Final = 100.0
SOURCE: Final = "bench-probe"
#: How far each monitor's timeline may run (event time, minutes): well inside the lifecycle's
#: six hours, past which data counts as a replay and is not delivered.
MAX_TIMELINE_MINUTES: Final = 120
_MINUTE: Final = timedelta(minutes=1)


@dataclass(frozen=True)
class ProbeSite:
    """The unit the probes belong to and its monitors (nobody else's data reaches them)."""

    enterprise_code: str
    name: str
    city: str
    county: str
    monitors: tuple[str, ...]


def monitors_needed(probe_rate: float, seconds: float) -> int:
    """Enough monitors (an even number, at least 16: a probe's alert then stays firing for
    eight probe periods) that two minutes of event time per probe stay within
    ``MAX_TIMELINE_MINUTES`` on each."""
    probes = probe_rate * seconds
    needed = max(16, math.ceil(2 * probes / MAX_TIMELINE_MINUTES))
    return needed + needed % 2


def probe_site(monitors: int, tag: str = "0001") -> ProbeSite:
    """A unit in the first seed city's first county, with ``monitors`` VOC monitors."""
    city = load_regions().cities[0]
    county = city.counties[0]
    first17 = "91" + county.division + f"PR0BE{tag}"[:9].ljust(9, "0")
    code = first17 + uscc_check_character(first17)
    return ProbeSite(
        enterprise_code=code,
        name="latency probe unit (benchmark)",
        city=city.code,
        county=county.division,
        monitors=tuple(f"EWPROBE{n:04d}" for n in range(monitors)),
    )


def with_probe_site(register: Register, site: ProbeSite, industry: str) -> Register:
    """``register`` plus the probe unit and its monitors (with the limits probes break)."""
    salt = hashlib.sha256(site.enterprise_code.encode()).hexdigest()[:16]
    unit = EnterpriseEntry(
        code=site.enterprise_code,
        name=site.name,
        city=site.city,
        county=site.county,
        industry=industry,
    )
    monitors = tuple(
        VocMonitorEntry(
            mn=mn,
            enterprise_code=site.enterprise_code,
            password_salt=salt,
            # nobody logs in: the probes go straight to Kafka
            password_sha256=salted_digest(salt, f"unused-{mn}"),
            standard=STANDARD,
            limits={
                POLLUTANT: VocLimit(
                    hourly_avg_mg_m3=HOURLY_LIMIT_MG_M3, single_mg_m3=SINGLE_LIMIT_MG_M3
                )
            },
        )
        for mn in site.monitors
    )
    return register.model_copy(
        update={
            "enterprises": (*register.enterprises, unit),
            "voc_monitors": (*register.voc_monitors, *monitors),
        }
    )


def recipients_document(
    site: ProbeSite, url: str, secret: str, probe_rate: float
) -> dict[str, Any]:
    """A recipients file (as data) telling only the probe unit, over one signed webhook,
    with a rate limit no probe run reaches (fired and resolved notices, plus the monitors'
    data-quality notices), so no probe waits in a digest."""
    per_five_seconds = max(50, math.ceil(probe_rate * 5 * 4))
    return {
        "version": 1,
        "default_rate_limit": {"max_messages": per_five_seconds, "per_seconds": 5},
        "recipients": [
            {
                "kind": "enterprise",
                "id": "latency-probe-unit",
                "name": site.name,
                "enterprise_code": site.enterprise_code,
                "channels": [{"kind": "webhook", "url": url, "secret": secret}],
            }
        ],
    }


@dataclass(frozen=True)
class Probe:
    """One probe sample as sent: ``produced_at`` is its Kafka record's timestamp."""

    seq: int
    monitor_id: str
    data_time: datetime
    value_mg_m3: float
    produced_at: datetime
    counted: bool = True  # False for the warm-up probe

    @property
    def subject(self) -> str:
        return f"{self.monitor_id}.{POLLUTANT}"

    @property
    def alert_at(self) -> datetime:
        """The event time of its alert: the end of its minute."""
        return self.data_time + _MINUTE


def sample(site: ProbeSite, monitor_id: str, data_time: datetime, value: float) -> VocSample:
    return VocSample(
        monitor_id=monitor_id,
        enterprise_code=site.enterprise_code,
        data_time=data_time,
        interval_seconds=60,
        values={POLLUTANT: PollutantValue(avg=value, flag=DataFlag.NORMAL)},
        source=SOURCE,
    )


@dataclass
class ProbeSchedule:
    """Which sample to send next. Probes rotate over the site's monitors; the monitor probed
    half a cycle ago is cleared between two probes, so each probe fires a new alert and has
    half a cycle (monitors / 2 / rate seconds) to be told before its alert resolves."""

    site: ProbeSite
    start: datetime  # event time of every monitor's first minute
    _next_minute: dict[str, int] = field(default_factory=dict)
    _open: dict[str, int] = field(default_factory=dict)  # monitor -> probe seq awaiting clear
    _seq: int = 0

    @classmethod
    def ending_near(cls, site: ProbeSite, probes: int, now: datetime) -> "ProbeSchedule":
        """A schedule for ``probes`` probes whose monitors' last minutes end before ``now``."""
        per_monitor = 2 * math.ceil(probes / len(site.monitors)) + 2
        latest = now.astimezone(UTC).replace(second=0, microsecond=0) - 2 * _MINUTE
        return cls(site, latest - per_monitor * _MINUTE)

    def _data_time(self, monitor: str) -> datetime:
        minute = self._next_minute.get(monitor, 0)
        self._next_minute[monitor] = minute + 1
        return self.start + minute * _MINUTE

    def next_probe(self) -> tuple[int, VocSample]:
        """The next probe's sequence number and sample (above the limit)."""
        seq = self._seq
        self._seq += 1
        monitor = self.site.monitors[seq % len(self.site.monitors)]
        self._open[monitor] = seq
        value = PROBE_BASE_MG_M3 + seq
        return seq, sample(self.site, monitor, self._data_time(monitor), value)

    def next_clear(self) -> VocSample | None:
        """The sample that resolves the probe sent half a cycle ago, if any is open."""
        target = self._seq - 1 - len(self.site.monitors) // 2
        if target < 0:
            return None
        monitor = self.site.monitors[target % len(self.site.monitors)]
        if self._open.get(monitor) != target:
            return None
        del self._open[monitor]
        return sample(self.site, monitor, self._data_time(monitor), CLEAR_MG_M3)

    def clear_all(self) -> list[VocSample]:
        """Samples resolving every open probe (at the end of a run)."""
        out = [
            sample(self.site, monitor, self._data_time(monitor), CLEAR_MG_M3)
            for monitor in list(self._open)
        ]
        self._open.clear()
        return out


@dataclass(frozen=True)
class Arrival:
    """One alert event as the webhook received it (``arrived_at``: wall clock)."""

    event: AlertEvent
    arrived_at: datetime
    idempotency_key: str
    duplicate: bool

    @property
    def in_digest(self) -> bool:
        return self.idempotency_key.startswith("digest-")


@dataclass(frozen=True)
class ProbeOutcome:
    probe: Probe
    told: tuple[Arrival, ...]  # its fired event, each time it arrived (duplicates included)

    @property
    def first(self) -> Arrival | None:
        return min(self.told, key=lambda a: a.arrived_at) if self.told else None

    @property
    def latency_seconds(self) -> float | None:
        first = self.first
        return (
            None if first is None else (first.arrived_at - self.probe.produced_at).total_seconds()
        )


def match(probes: Sequence[Probe], arrivals: Iterable[Arrival]) -> list[ProbeOutcome]:
    """Each probe with the fired notifications of its alert (same subject and event time)."""
    by_key: dict[tuple[str, datetime], list[Arrival]] = {}
    for arrival in arrivals:
        event = arrival.event
        if event.rule_id == RULE_ID and event.kind is AlertKind.FIRED:
            by_key.setdefault((event.subject, event.at), []).append(arrival)
    return [ProbeOutcome(p, tuple(by_key.get((p.subject, p.alert_at), ()))) for p in probes]


def unmatched_fired(probes: Sequence[Probe], arrivals: Iterable[Arrival]) -> int:
    """Fired probe-rule events that belong to no probe sent (must be 0)."""
    keys = {(p.subject, p.alert_at) for p in probes}
    return sum(
        1
        for a in arrivals
        if a.event.rule_id == RULE_ID
        and a.event.kind is AlertKind.FIRED
        and (a.event.subject, a.event.at) not in keys
    )


def quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted values, interpolated linearly between ranks."""
    if not ordered:
        raise ValueError("no values")
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Iterable[float]) -> dict[str, float | int | None]:
    """Count, p50, p90, p99, max and mean of seconds (rounded to the millisecond)."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    return {
        "count": len(ordered),
        **{f"p{int(q * 100)}": round(quantile(ordered, q), 3) for q in (0.5, 0.9, 0.99)},
        "max": round(ordered[-1], 3),
        "mean": round(sum(ordered) / len(ordered), 3),
    }


def stages(
    outcomes: Sequence[ProbeOutcome],
    stored_at: Mapping[tuple[str, datetime], datetime],
    judged: Mapping[tuple[str, datetime], tuple[datetime, datetime | None]],
) -> dict[str, dict[str, float | int | None]]:
    """Where each told probe's time went, from stored timestamps:

    * ``kafka_to_stored``: record timestamp → the worker's transaction that stored the sample
      (``voc_samples.ingested_at``, the transaction's start);
    * ``stored_to_judged``: → the evaluator pass that raised the alert (``emitted_at``, the
      pass's start): the worker's commit and NOTIFY, and the evaluator finishing a pass;
    * ``judged_to_published``: → ``published_at``: the pass itself, its commit and the send
      to the alerts topic;
    * ``published_to_arrived``: → the webhook: the notifier's consume, routing, state saves
      and the signed POST.

    ``stored_at`` is keyed by (monitor, data_time); ``judged`` by (subject, alert time) with
    (emitted_at, published_at)."""
    parts: dict[str, list[float]] = {
        "kafka_to_stored": [],
        "stored_to_judged": [],
        "judged_to_published": [],
        "published_to_arrived": [],
    }
    for outcome in outcomes:
        first, probe = outcome.first, outcome.probe
        stored = stored_at.get((probe.monitor_id, probe.data_time))
        times = judged.get((probe.subject, probe.alert_at))
        if first is None or stored is None or times is None or times[1] is None:
            continue
        emitted, published = times[0], times[1]
        for name, (a, b) in {
            "kafka_to_stored": (probe.produced_at, stored),
            "stored_to_judged": (stored, emitted),
            "judged_to_published": (emitted, published),
            "published_to_arrived": (published, first.arrived_at),
        }.items():
            parts[name].append((b - a).total_seconds())
    return {name: summary(values) for name, values in parts.items()}
