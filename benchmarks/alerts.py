"""How long an alert takes: from a reading entering Kafka to its notification arriving, while
the pipeline carries a steady background load (issue 6: p99 < 1 s at 10,000 readings/s).

    background load (own process): a 500-unit fleet's meter readings at --background-rate/s
    probes (this process): at --probe-rate/s a VOC minute sample above its single-reading limit
        -> Kafka -> ``energywatch worker --stream voc --stream production`` (stores it,
           marks its unit dirty, NOTIFY); the readings have a worker process of their own
        -> ``energywatch alerts evaluate`` (wall clock: one pass, the outbox, the alerts topic)
        -> ``energywatch notify`` (routing, rate limits, HMAC-signed webhook)
        -> a webhook receiver in this process, which notes the arrival time

Latency = arrival − the probe record's Kafka timestamp (one machine, one clock). Every probe
must be told exactly once; one never told by the end is lost. The stored timestamps of each
probe's sample, alert event and delivery break its latency into stages
(``benchmarks.alert_probes.stages``). ``benchmarks.alert_probes`` says why the rule is the VOC
single-reading limit and how probes are told apart.

The services run with their production defaults (batch and sweep times) except what a
benchmark must set: the register (the fleet, plus the probe unit and its monitors), the
recipients file (only the probe unit is told; alerts about the fleet are judged and published
but routed to nobody) and free metrics ports.
"""

import secrets
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import psycopg
import yaml
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from psycopg.rows import TupleRow
from pydantic import SecretStr
from rich.table import Table

from alerts.webhook_receiver import WebhookReceiver
from benchmarks import alert_probes as probes
from benchmarks.background_load import BackgroundLoad, LoadPlan
from benchmarks.ingest import free_port
from benchmarks.simulation import benchmark_fleet
from contracts.voc import VocSample, encode_voc_sample
from energywatch.kafka_topics import recreate_topics
from energywatch.service_process import ServiceProcess
from energywatch.settings import Settings
from simulators.credentials import register_for_fleet
from simulators.fleet import build_fleet
from storage.scratch_databases import recreate_database
from storage.stream_state import records_made_durable

DATABASE: Final = "energywatch_bench_alerts"
PREFIX: Final = "energywatch-bench-alerts"
Report = Callable[[str], None]
#: the readings worker and the VOC/production worker are separate processes (separate
#: consumer groups), as in production: a VOC probe never waits behind the readings backlog
SERVICES: Final = {
    "worker": ["worker", "--stream", "readings"],
    "voc-worker": ["worker", "--stream", "voc", "--stream", "production"],
    "evaluator": ["alerts", "evaluate"],
    "notifier": ["notify"],
}
#: the environment variable each service reads its metrics port from
_PORT_VARIABLES: Final = {
    "worker": "EW_WORKER_METRICS_PORT",
    "voc-worker": "EW_WORKER_METRICS_PORT",
    "evaluator": "EW_EVALUATOR_METRICS_PORT",
    "notifier": "EW_NOTIFIER_METRICS_PORT",
}


@dataclass(frozen=True)
class AlertBenchConfig:
    seconds: float = 60.0  # probing time
    background_rate: float = 10_000.0  # readings/s
    probe_rate: float = 2.0  # probes/s
    units: int = 500
    lead_in_seconds: float = 5.0  # background load before the first probe
    drain_seconds: float = 30.0  # after the last probe, the longest wait for notifications
    warmup_timeout_seconds: float = 120.0  # services up and the first probe told


@dataclass(frozen=True)
class AlertBenchRun:
    results: dict[str, Any]
    outcomes: list[probes.ProbeOutcome]


def bench_settings(base: Settings) -> Settings:
    """The local stack's settings on the benchmark's own database and topics, both recreated
    empty (and kept afterwards, to look at the alert history)."""
    url = recreate_database(base.database_url.get_secret_value(), DATABASE)
    settings = base.named_pipeline(PREFIX, database_url=SecretStr(url))
    recreate_topics(settings)
    return settings


def measure(
    settings: Settings, config: AlertBenchConfig, workdir: Path, report: Report
) -> AlertBenchRun:
    """Start the services on ``settings`` (a database and topics of the run's own), warm up,
    load, probe, drain; the results and each probe's outcome."""
    fleet = build_fleet(benchmark_fleet(config.units))
    site = probes.probe_site(
        probes.monitors_needed(config.probe_rate, config.seconds + config.lead_in_seconds)
    )
    register = probes.with_probe_site(
        register_for_fleet(fleet), site, industry=fleet.enterprises[0].profile.code
    )
    secret = secrets.token_hex(16)
    workdir.mkdir(parents=True, exist_ok=True)
    with WebhookReceiver(secret.encode()) as receiver:
        register_path, recipients_path = workdir / "register.yaml", workdir / "recipients.yaml"
        register_path.write_text(
            yaml.safe_dump(register.model_dump(mode="json"), allow_unicode=True), "utf-8"
        )
        recipients_path.touch(mode=0o600)  # it holds the webhook's secret
        recipients_path.write_text(
            yaml.safe_dump(
                probes.recipients_document(site, receiver.url, secret, config.probe_rate)
            ),
            "utf-8",
        )
        ports = {name: free_port() for name in SERVICES}
        env = {
            **{k: v for k, v in settings.as_env().items() if k != "EW_PROMETHEUS_TARGETS_DIR"},
            "EW_REGISTER_PATH": str(register_path),
            "EW_RECIPIENTS_PATH": str(recipients_path),
            "EW_EVALUATOR_CLOCK": "wall",
        }
        report("starting the readings worker, the VOC worker, the evaluator and the notifier")
        for name in SERVICES:
            (workdir / f"{name}.log").unlink(missing_ok=True)  # this run's logs only
        services = {
            name: ServiceProcess(
                command, {**env, _PORT_VARIABLES[name]: str(ports[name])}, workdir / f"{name}.log"
            ).start()
            for name, command in SERVICES.items()
        }
        try:
            run = _Run(settings, config, site, receiver, services, ports["evaluator"])
            outcomes, results = run.drive(report)
            results["fleet"] = {
                "units": config.units,
                "meters": fleet.meter_count(),
                "probe_monitors": len(site.monitors),
            }
            results["services"] = _scrape(ports)
            results["logs"] = str(workdir)
            return AlertBenchRun(results, outcomes)
        finally:
            for service in services.values():
                service.stop()


class _Run:
    """One measurement: the probes' producer, the background load, the receiver's arrivals."""

    def __init__(
        self,
        settings: Settings,
        config: AlertBenchConfig,
        site: probes.ProbeSite,
        receiver: WebhookReceiver,
        services: dict[str, ServiceProcess],
        evaluator_port: int,
    ) -> None:
        self.settings, self.config, self.site = settings, config, site
        self.receiver, self.services = receiver, services
        self.evaluator_port = evaluator_port
        self.passes: list[tuple[float, float]] = []  # (passes so far, last pass seconds)
        self.evaluator: dict[str, Any] = {}
        planned = int(config.probe_rate * config.seconds) + 2
        self.schedule = probes.ProbeSchedule.ending_near(site, planned, datetime.now(UTC))
        self.sent: list[probes.Probe] = []
        # the receiver notes arrivals on the monotonic clock; Kafka stamps wall time
        self.wall_minus_monotonic = time.time() - time.monotonic()

    def drive(self, report: Report) -> tuple[list[probes.ProbeOutcome], dict[str, Any]]:
        config = self.config
        producer = KafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap, acks="all", linger_ms=0
        )
        url = self.settings.database_url.get_secret_value()
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                warmup = self._warm_up(producer, report)
                load = BackgroundLoad(self._load_plan()).start()
                try:
                    lag = self._probe(producer, conn, load, report)
                finally:
                    load.stop()
                for clear in self.schedule.clear_all():
                    self._send(producer, clear)
                self._drain(report)
                arrivals = self._arrivals()
                counted = [p for p in self.sent if p.counted]
                outcomes = probes.match(counted, arrivals)
                report("reading the stages from the stored timestamps")
                stages = probes.stages(outcomes, *_stored_times(conn, self.site))
        finally:
            producer.close()
        told = [o for o in outcomes if o.told]
        results: dict[str, Any] = {
            "question": "reading produced to Kafka -> its notification arriving at a webhook, "
            "under steady background load",
            "rule": {
                "id": probes.RULE_ID,
                "why": "GB 37822-2019's single-reading NMHC limit judges one minute sample "
                "alone: no window, no pending time, no watermark to wait for",
                "limit_mg_m3": probes.SINGLE_LIMIT_MG_M3,
                "probe": "a minute sample of 100+seq mg/m3 on one of the probe unit's "
                "monitors, cleared half a rotation later so each probe fires a new alert",
            },
            "config": {
                "seconds": config.seconds,
                "background_rate": config.background_rate,
                "probe_rate": config.probe_rate,
                "lead_in_seconds": config.lead_in_seconds,
                "worker_batch_seconds": self.settings.worker_batch_seconds,
                "worker_batch_size": self.settings.worker_batch_size,
                "evaluator_sweep_seconds": self.settings.evaluator_sweep_seconds,
                "evaluator_clock": "wall",
            },
            "probes": {
                "sent": len(outcomes),
                "told": len(told),
                "lost": len(outcomes) - len(told),
                "told_more_than_once": sum(
                    1 for o in outcomes if sum(not a.duplicate for a in o.told) > 1
                ),
                "delivered_again": sum(a.duplicate for o in outcomes for a in o.told),
                "told_in_a_digest": sum(1 for o in told if o.first and o.first.in_digest),
                "fired_events_matching_no_probe": probes.unmatched_fired(self.sent, arrivals),
                "other_notifications": sum(
                    1 for a in arrivals if a.event.rule_id != probes.RULE_ID
                ),
            },
            "latency_seconds": probes.summary(
                o.latency_seconds for o in outcomes if o.latency_seconds is not None
            ),
            "stages_seconds": stages,
            "background": lag,
            "evaluator": self.evaluator,
            "warmup_seconds": round(warmup, 3),
        }
        return outcomes, results

    # -- sending ------------------------------------------------------------------------------

    def _send(self, producer: KafkaProducer, sample: VocSample) -> datetime:
        """Send one sample, wait for the broker; its record's timestamp (CreateTime)."""
        metadata = producer.send(
            self.settings.voc_topic,
            key=sample.enterprise_code.encode(),
            value=encode_voc_sample(sample),
        ).get(timeout=30)
        return datetime.fromtimestamp(metadata.timestamp / 1000, UTC)

    def _send_probe(self, producer: KafkaProducer, counted: bool = True) -> probes.Probe:
        seq, sample = self.schedule.next_probe()
        produced_at = self._send(producer, sample)
        value = sample.values[probes.POLLUTANT].avg
        assert value is not None
        probe = probes.Probe(seq, sample.monitor_id, sample.data_time, value, produced_at, counted)
        self.sent.append(probe)
        return probe

    def _warm_up(self, producer: KafkaProducer, report: Report) -> float:
        """One probe through the idle pipeline (the services' start-up included): proves the
        path works before anything is measured. Its seconds."""
        report("warm-up: the first probe through the idle pipeline")
        started = time.monotonic()
        probe = self._send_probe(producer, counted=False)
        deadline = started + self.config.warmup_timeout_seconds
        while not probes.match([probe], self._arrivals())[0].told:
            self._check_services()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "the warm-up probe was not told within "
                    f"{self.config.warmup_timeout_seconds:.0f} s: see the logs below and in "
                    f"{self.services['worker'].log_path.parent}\n" + self._log_tails()
                )
            time.sleep(0.05)
        for clear in self.schedule.clear_all():
            self._send(producer, clear)
        return time.monotonic() - started

    def _load_plan(self) -> LoadPlan:
        # the readings' event time ends about now, however long the run: a fleet's interval
        # is one reading per meter, so the run walks through rate x seconds / meters intervals
        meters = build_fleet(benchmark_fleet(self.config.units)).meter_count()
        total = self.config.background_rate * (
            self.config.seconds + self.config.lead_in_seconds + self.config.drain_seconds
        )
        span = timedelta(minutes=15) * (int(total / max(meters, 1)) + 1)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        start = now - span - timedelta(minutes=now.minute % 15)
        return LoadPlan(
            self.settings.kafka_bootstrap,
            self.settings.readings_topic,
            self.config.units,
            self.config.background_rate,
            start,
        )

    def _probe(
        self,
        producer: KafkaProducer,
        conn: psycopg.Connection[TupleRow],
        load: BackgroundLoad,
        report: Report,
    ) -> dict[str, Any]:
        """Lead-in, then a probe and a clearing sample per probe period while the load runs;
        the background's numbers."""
        config = self.config
        lead_in_end = time.monotonic() + config.lead_in_seconds
        lags: list[int] = []
        while time.monotonic() < lead_in_end:
            self._check_services(load)
            lags.append(self._lag(conn, load))
            self._sample_evaluator()
            report(f"lead-in: background load at {config.background_rate:,.0f} readings/s")
            time.sleep(0.5)
        passes_before = len(self.passes)
        produced_before, stored_before = (
            load.counters.produced.value,
            _stored(conn, self.settings.readings_topic),
        )
        half_period = 0.5 / config.probe_rate
        started = time.monotonic()
        ticks = int(config.seconds * config.probe_rate * 2)
        next_report = started
        for tick in range(ticks):
            due = started + tick * half_period
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if tick % 2 == 0:
                self._send_probe(producer)
            elif (clear := self.schedule.next_clear()) is not None:
                self._send(producer, clear)
            if time.monotonic() >= next_report:
                self._check_services(load)
                lags.append(self._lag(conn, load))
                self._sample_evaluator()
                report(self._progress(time.monotonic() - started, lags[-1]))
                next_report += 1.0
        elapsed = time.monotonic() - started
        produced = load.counters.produced.value - produced_before
        stored = _stored(conn, self.settings.readings_topic) - stored_before
        lag_end = self._lag(conn, load)
        rate = load.achieved_rate()
        self.evaluator = self._evaluator_summary(passes_before, elapsed)
        return {
            "target_rate": config.background_rate,
            "achieved_rate": round(rate),
            "produced_while_probing": produced,
            "produce_rate_while_probing": round(produced / elapsed),
            "worker_stored_rate_while_probing": round(stored / elapsed),
            "produce_failures": load.counters.failed.value,
            "schedule_dropped_readings": load.counters.dropped_backlog.value,
            "worker_lag_readings": {"max": max(lags, default=0), "at_end": lag_end},
            "worker_behind_seconds_at_end": round(lag_end / rate, 1) if rate else None,
        }

    def _progress(self, elapsed: float, lag: int) -> str:
        arrivals = self._arrivals()
        counted = [p for p in self.sent if p.counted]
        latencies = [
            o.latency_seconds for o in probes.match(counted, arrivals) if o.latency_seconds
        ]
        p50 = probes.summary(latencies)["p50"]
        return (
            f"probing {elapsed:.0f}/{self.config.seconds:.0f} s: {len(counted)} probes, "
            f"{len(latencies)} told, p50 {p50 if p50 is not None else '-'} s, "
            f"worker lag {lag:,} readings"
        )

    def _drain(self, report: Report) -> None:
        """Until every probe is told, or ``drain_seconds`` pass."""
        deadline = time.monotonic() + self.config.drain_seconds
        counted = [p for p in self.sent if p.counted]
        while time.monotonic() < deadline:
            told = sum(1 for o in probes.match(counted, self._arrivals()) if o.told)
            report(f"draining: {told}/{len(counted)} probes told")
            if told == len(counted):
                return
            time.sleep(0.1)

    # -- observing ----------------------------------------------------------------------------

    def _arrivals(self) -> list[probes.Arrival]:
        with self.receiver._lock:  # the receiver's own lock: a consistent copy
            received = list(self.receiver.received)
        offset = self.wall_minus_monotonic
        return [
            probes.Arrival(
                r.event,
                datetime.fromtimestamp(r.received_at_monotonic + offset, UTC),
                r.idempotency_key,
                r.duplicate,
            )
            for r in received
        ]

    def _lag(self, conn: psycopg.Connection[TupleRow], load: BackgroundLoad) -> int:
        return max(0, load.counters.produced.value - _stored(conn, self.settings.readings_topic))

    def _sample_evaluator(self) -> None:
        """The evaluator's pass count and last pass's seconds, when a pass has ended since
        the last look (a sample of pass times: the service keeps only a gauge)."""
        values = _scrape({"evaluator": self.evaluator_port}).get("evaluator")
        if not isinstance(values, dict):
            return
        count = sum(v for k, v in values.items() if k.startswith(_PASSES))
        if not self.passes or count > self.passes[-1][0]:
            self.passes.append((count, values.get(f"{_EVALUATOR}_last_pass_seconds", 0.0)))

    def _evaluator_summary(self, first: int, elapsed: float) -> dict[str, Any]:
        window = self.passes[max(first - 1, 0) :]
        passes = window[-1][0] - window[0][0] if len(window) > 1 else 0
        return {
            "passes_per_second": round(passes / elapsed, 2),
            "pass_seconds_sampled": probes.summary(seconds for _, seconds in window[1:]),
            "how": "the last pass's seconds (a gauge), read about once a second while probing",
        }

    def _check_services(self, load: BackgroundLoad | None = None) -> None:
        stopped = [name for name, service in self.services.items() if not service.alive()]
        if stopped:
            raise RuntimeError(f"{', '.join(stopped)} stopped:\n{self._log_tails()}")
        if load is not None and not load.alive():
            raise RuntimeError("the background load process stopped")

    def _log_tails(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{service.log_tail(15)}" for name, service in self.services.items()
        )


def _stored(conn: psycopg.Connection[TupleRow], topic: str) -> int:
    """Readings the worker has made durable (the sum of its partitions' next offsets)."""
    return records_made_durable(conn, topic)


def _stored_times(
    conn: psycopg.Connection[TupleRow], site: probes.ProbeSite
) -> tuple[
    dict[tuple[str, datetime], datetime],
    dict[tuple[str, datetime], tuple[datetime, datetime | None]],
]:
    """When each probe sample was stored, and when each probe alert was raised and
    published (see ``alert_probes.stages``)."""
    samples = conn.execute(
        "SELECT monitor_id, data_time, ingested_at FROM voc_samples WHERE interval_seconds = 60"
        " AND pollutant = %s AND monitor_id = ANY(%s)",
        (probes.POLLUTANT, list(site.monitors)),
    ).fetchall()
    events = conn.execute(
        "SELECT subject, at, emitted_at, published_at FROM alert_history"
        " WHERE rule_id = %s AND kind = 'fired'",
        (probes.RULE_ID,),
    ).fetchall()
    return (
        {(m, t): at for m, t, at in samples},
        {(subject, at): (emitted, published) for subject, at, emitted, published in events},
    )


_EVALUATOR: Final = "energywatch_evaluator"
_PASSES: Final = f"{_EVALUATOR}_passes_total"
#: What the services say about themselves at the end (metric name -> label to split by).
_METRICS: Final[dict[str, dict[str, str | None]]] = {
    "worker": {"energywatch_stream_readings_stored_total": None},
    "voc-worker": {"energywatch_voc_samples_stored_total": None},
    "evaluator": {
        "energywatch_evaluator_passes_total": "trigger",
        "energywatch_evaluator_conditions_total": None,
        "energywatch_evaluator_events_published_total": None,
        "energywatch_evaluator_last_pass_seconds": None,
    },
    "notifier": {
        "energywatch_alerts_consumed_total": None,
        "energywatch_alerts_notifications_sent_total": None,
        "energywatch_alerts_digests_total": None,
    },
}


def _scrape(ports: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for service, wanted in _METRICS.items():
        if service not in ports:
            continue
        try:
            url = f"http://127.0.0.1:{ports[service]}/metrics"
            body = urllib.request.urlopen(url, timeout=5).read().decode()
        except OSError as exc:
            out[service] = f"not scraped: {exc}"
            continue
        values: dict[str, Any] = {}
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name not in wanted:
                    continue
                label = wanted[sample.name]
                key = sample.name if label is None else f"{sample.name}{{{sample.labels[label]}}}"
                values[key] = round(values.get(key, 0) + sample.value, 3)  # summed over labels
        out[service] = values
    return out


def run(base: Settings, config: AlertBenchConfig, workdir: Path, report: Report) -> dict[str, Any]:
    """The command: recreate the benchmark's database and topics, measure."""
    report("recreating the benchmark's database and topics")
    settings = bench_settings(base)
    results = measure(settings, config, workdir, report).results
    results["database"] = DATABASE
    return results


def results_table(results: dict[str, Any]) -> Table:
    """The headline numbers, for the console."""
    table = Table(title="reading in Kafka -> notification at the webhook (seconds)")
    table.add_column("stage")
    for column in ("n", "p50", "p90", "p99", "max"):
        table.add_column(column, justify="right", no_wrap=True)

    def row(name: str, summary: dict[str, Any]) -> None:
        cells = [summary.get(k) for k in ("count", "p50", "p90", "p99", "max")]
        table.add_row(name, *("-" if c is None else str(c) for c in cells))

    row("[bold]end to end[/bold]", results["latency_seconds"])
    for stage, summary in results["stages_seconds"].items():
        row(f"  {stage.replace('_', ' ')}", summary)
    p, b, e = results["probes"], results["background"], results["evaluator"]
    table.caption = (
        f"probes sent {p['sent']}, told {p['told']}, lost {p['lost']}, told twice "
        f"{p['told_more_than_once']}; background {b['achieved_rate']:,}/s of "
        f"{b['target_rate']:,.0f}/s, worker stored {b['worker_stored_rate_while_probing']:,}/s, "
        f"lag at end {b['worker_lag_readings']['at_end']:,} readings; evaluator "
        f"{e['passes_per_second']} passes/s, pass p50 {e['pass_seconds_sampled']['p50']} s"
    )
    return table
