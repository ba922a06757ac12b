"""One replay of a scenario through the whole pipeline, on a database and topics of its own.

    scenario records (fixed, in emission order) --Feeder, paced--> Kafka
      -> ``energywatch worker`` (one or two) -> TimescaleDB -> ``energywatch alerts evaluate``
      -> alerts topic -> ``energywatch notify`` -> a webhook receiver in this process

The services are child processes (``ServiceProcess``) the fault suite may SIGKILL, stop and
start; ``supervise`` restarts any that exited on its own, as systemd or Kubernetes would, and
counts it. ``settle`` waits until everything sent is durable, judged, published and told.

The webhook receiver stands in for a supervision office's endpoint, a third party's system
that cannot run here.
"""

import itertools
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final

import psycopg
import yaml
from pydantic import SecretStr

from alerts.webhook_receiver import WebhookReceiver
from energywatch.kafka_topics import delete_topics, ensure_topics
from energywatch.service_process import ServiceProcess
from energywatch.settings import Settings
from proving_ground.kafka_offsets import GroupPosition, OffsetProbe
from simulators.credentials import register_for_fleet
from simulators.kafka_sink import KafkaRecordSink
from simulators.records import Channel, SimRecord
from simulators.runner import Simulation
from simulators.scenario import Scenario, load_scenario
from storage.scratch_databases import drop_database, recreate_database
from storage.stream_state import records_made_durable
from stream.app import worker_groups

COMMANDS: Final = {
    "worker": ["worker"],
    "evaluator": ["alerts", "evaluate"],
    "notifier": ["notify"],
}
#: Nothing changed for this long after everything was told: the run is over.
QUIET_SECONDS: Final = 5.0
#: A service that exited is started again no sooner than this after its last start.
RESTART_BACKOFF_SECONDS: Final = 5.0
Report = Callable[[str], None]


@dataclass(frozen=True)
class Replay:
    """A scenario's records (generated once, replayed by every run) and its register."""

    scenario: Scenario
    records: tuple[SimRecord, ...]
    register_yaml: str

    @classmethod
    def load(cls, path: Path, limit: int | None = None) -> "Replay":
        """The scenario's records, or with ``limit`` the first that many (in emission order,
        so a shorter replay is the beginning of the longer one)."""
        scenario = load_scenario(path)
        records = tuple(itertools.islice(Simulation(scenario.plan).records(), limit))
        years = range(scenario.config.start.year, scenario.end.year + 1)
        register = register_for_fleet(scenario.fleet, scenario.plan.voc_monitors, years)
        text = yaml.safe_dump(register.model_dump(mode="json"), allow_unicode=True)
        return cls(scenario, records, text)

    def counts(self) -> dict[str, int]:
        return dict(Counter(r.channel.value for r in self.records))


class Feeder:
    """Sends the replay's records to Kafka from a thread of its own, at ``rate`` records/s
    (None: as fast as the broker takes them), each tenth of a second's share acknowledged by
    the broker before the next. ``pause`` returns once nothing is in flight (to restart Kafka
    under it); ``resume`` goes on where it stopped."""

    def __init__(self, settings: Settings, records: tuple[SimRecord, ...], rate: float | None):
        self._settings = settings
        self._records = records
        self._rate = rate
        self._running = threading.Event()
        self._running.set()
        self._idle = threading.Event()
        self._stop = threading.Event()
        self.finished = threading.Event()
        self.finished_at: float | None = None  # monotonic
        self.sent = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="prove-feeder", daemon=True)

    @property
    def fraction(self) -> float:
        return self.sent / len(self._records) if self._records else 1.0

    def start(self) -> "Feeder":
        self._thread.start()
        return self

    def pause(self) -> None:
        self._running.clear()
        self._idle.wait()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()
        self._thread.join(30)

    def _run(self) -> None:
        topics = {
            Channel.READINGS: self._settings.readings_topic,
            Channel.VOC: self._settings.voc_topic,
            Channel.PRODUCTION: self._settings.production_topic,
        }
        tick = 0.1
        chunk = len(self._records) if self._rate is None else max(1, int(self._rate * tick))
        try:
            with KafkaRecordSink(self._settings.kafka_bootstrap, topics) as sink:
                started = time.monotonic()
                paused_for = 0.0
                while self.sent < len(self._records) and not self._stop.is_set():
                    if not self._running.is_set():
                        self._idle.set()
                        halted = time.monotonic()
                        self._running.wait()
                        paused_for += time.monotonic() - halted
                        self._idle.clear()
                        continue
                    for record in self._records[self.sent : self.sent + chunk]:
                        sink.send(record)
                    sink.flush()
                    self.sent = min(len(self._records), self.sent + chunk)
                    if self._rate is not None:
                        due = started + paused_for + self.sent / self._rate
                        time.sleep(max(0.0, due - time.monotonic()))
        except BaseException as error:  # reported by the run, which fails on it
            self.error = error
        finally:
            self.finished_at = time.monotonic()
            self._idle.set()
            self.finished.set()


@dataclass
class Restart:
    service: str
    at_seconds: float
    exit_log: str


@dataclass
class Settled:
    seconds: float  # from ``since`` until settled
    ok: bool
    why: str = ""


@dataclass
class RunServices:
    """The run's child processes by name (``worker``, ``worker-2``, ``evaluator``...)."""

    env: dict[str, str]
    logs: Path
    running: dict[str, ServiceProcess] = field(default_factory=dict)
    restarts: list[Restart] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)
    _incarnations: Counter[str] = field(default_factory=Counter)
    _last_start: dict[str, float] = field(default_factory=dict)

    def start(self, name: str) -> ServiceProcess:
        command = COMMANDS[name.split("-")[0]]
        self._incarnations[name] += 1
        log = self.logs / f"{name}-{self._incarnations[name]}.log"
        process = ServiceProcess(command, self.env, log).start()
        self.running[name] = process
        self._last_start[name] = time.monotonic()
        return process

    def kill(self, name: str) -> None:
        self.running[name].kill()

    def stop(self, name: str) -> None:
        self.running.pop(name).stop()

    def supervise(self) -> None:
        """Restart any service that exited without being told to (and note it), at most once
        per ``RESTART_BACKOFF_SECONDS`` each, as a supervisor would."""
        now = time.monotonic()
        for name, process in list(self.running.items()):
            recent = now - self._last_start.get(name, 0.0) < RESTART_BACKOFF_SECONDS
            if not process.alive() and not recent:
                self.restarts.append(
                    Restart(name, round(time.monotonic() - self.started_at, 1), process.log_tail(8))
                )
                self.start(name)

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)


class ReplayRun:
    """A database and topics of the run's own on ``base`` (a stack's settings), the services,
    a webhook receiver and a feeder; ``with`` it, and everything is cleaned up after.

    ``keep_database``: the database is named ``prove_<name>``, recreated at the start and kept
    afterwards for a look; otherwise it is a throw-away one, dropped at the end."""

    def __init__(
        self,
        base: Settings,
        replay: Replay,
        workdir: Path,
        name: str,
        *,
        extra_env: Mapping[str, str] | None = None,
        keep_database: bool = True,
        rate: float | None = None,
    ) -> None:
        self.base = base
        self.replay = replay
        self.name = name
        self.workdir = workdir / name
        self.extra_env = dict(extra_env or {})
        self.keep_database = keep_database
        self.rate = rate
        self.database = f"prove_{name.replace('-', '_')}"
        if not keep_database:
            self.database += f"_{uuid.uuid4().hex[:8]}"
        run = f"prove-{name}-{uuid.uuid4().hex[:6]}"
        self.settings = base.named_pipeline(
            run,
            # a killed worker's partitions move after this long (Kafka's minimum)
            worker_session_timeout_seconds=6.0,
        )
        self._receiver: WebhookReceiver | None = None
        self.drain_from: float | None = None  # a fault sets it: settling is timed from here
        self.services: RunServices | None = None
        self.feeder: Feeder | None = None

    # -- set-up and tear-down ----------------------------------------------------------------

    def __enter__(self) -> "ReplayRun":
        admin_url = self.base.database_url.get_secret_value()
        url = recreate_database(admin_url, self.database)
        self.settings = self.settings.model_copy(update={"database_url": SecretStr(url)})
        ensure_topics(self.settings)
        self.workdir.mkdir(parents=True, exist_ok=True)
        for old in self.workdir.glob("*.log"):
            old.unlink()
        register = self.workdir / "register.yaml"
        register.write_text(self.replay.register_yaml, encoding="utf-8")
        secret = secrets.token_hex(16)
        self._receiver = WebhookReceiver(secret.encode()).__enter__()
        env = {
            **self.settings.as_env(),
            **self.extra_env,
            "EW_REGISTER_PATH": str(register),
            "EW_WEBHOOK_URL": self.receiver.url,
            "EW_WEBHOOK_SECRET": secret,
            # the scenario's data lies in the past: judge it on its own clock, and tell it
            "EW_SEND_REPLAYS": "true",
            "EW_EVALUATOR_CLOCK": "data",
            "EW_EVALUATOR_SWEEP_SECONDS": "2",
            "EW_WORKER_METRICS_PORT": "0",
            "EW_EVALUATOR_METRICS_PORT": "0",
            "EW_NOTIFIER_METRICS_PORT": "0",
        }
        self.services = RunServices(env, self.workdir)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.feeder is not None:
                self.feeder.stop()
            if self.services is not None:
                self.services.stop_all()
        finally:
            if self._receiver is not None:
                self._receiver.__exit__(None, None, None)
            targets = self.settings.prometheus_targets_dir
            if targets is not None:  # a SIGKILLed worker could not remove its own
                for service in (self.settings.worker_app_id, self.settings.notifier_group_id):
                    (targets / f"{service}.json").unlink(missing_ok=True)
            try:
                delete_topics(self.settings)
            finally:
                if not self.keep_database:
                    drop_database(self.base.database_url.get_secret_value(), self.database)

    @property
    def receiver(self) -> WebhookReceiver:
        assert self._receiver is not None, "use the run in a with block"
        return self._receiver

    # -- driving -----------------------------------------------------------------------------

    def start_pipeline(self) -> None:
        """The worker, the evaluator and the notifier."""
        assert self.services is not None
        for name in COMMANDS:
            self.services.start(name)

    def start_feed(self) -> Feeder:
        self.feeder = Feeder(self.settings, self.replay.records, self.rate).start()
        return self.feeder

    def wait_for_feed(self, fraction: float, report: Report, timeout: float = 900) -> None:
        """Until ``fraction`` of the records are sent (supervising meanwhile)."""
        assert self.feeder is not None
        assert self.services is not None
        deadline = time.monotonic() + timeout
        while self.feeder.fraction < fraction and not self.feeder.finished.is_set():
            self.services.supervise()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the feed did not reach {fraction:.0%} in {timeout:.0f} s")
            report(f"{self.name}: feed {self.feeder.fraction:.0%}")
            time.sleep(0.1)

    def worker_position(self) -> GroupPosition | None:
        with OffsetProbe(self.settings.kafka_bootstrap, worker_groups(self.settings)) as probe:
            return probe.try_position()

    def readings_progress(self) -> int | None:
        """Readings made durable so far (the worker's stored offsets), or None when the
        database cannot answer."""
        try:
            with psycopg.connect(
                self.settings.database_url.get_secret_value(), autocommit=True, connect_timeout=2
            ) as conn:
                return records_made_durable(
                    conn, self.settings.readings_topic, self.settings.worker_app_id
                )
        except psycopg.Error:
            return None

    def settle(self, report: Report, since: float, timeout: float) -> Settled:
        """Wait until every record sent is durable (the worker's group has committed up to
        the end of its topics, which hold every record of the replay), nothing is left to
        judge, publish or apply, the notifier has committed the whole alerts topic, the
        receiver has every deliverable event, and nothing has changed for ``QUIET_SECONDS``.
        ``since``: the monotonic time to measure the settling from."""
        assert self.services is not None
        assert self.feeder is not None
        total = len(self.replay.records)
        deadline = time.monotonic() + timeout
        last: tuple[object, ...] | None = None
        quiet_since = time.monotonic()
        why = "not started"
        with (
            OffsetProbe(self.settings.kafka_bootstrap, worker_groups(self.settings)) as worker,
            OffsetProbe(
                self.settings.kafka_bootstrap,
                {self.settings.notifier_group_id: [self.settings.alerts_topic]},
            ) as notifier,
        ):
            while time.monotonic() < deadline:
                self.services.supervise()
                if self.feeder.error is not None:
                    return Settled(time.monotonic() - since, False, f"feed: {self.feeder.error}")
                state = self._state(worker, notifier)
                if state != last:
                    last, quiet_since = state, time.monotonic()
                why = self._pending(state, total)
                report(f"{self.name}: {why or 'quiet'}")
                if not why and time.monotonic() - quiet_since >= QUIET_SECONDS:
                    return Settled(quiet_since - since, True)
                time.sleep(0.5)
        return Settled(time.monotonic() - since, False, f"not settled in {timeout:.0f} s: {why}")

    def _state(self, worker: OffsetProbe, notifier: OffsetProbe) -> tuple[object, ...]:
        assert self.feeder is not None
        position = worker.try_position()
        told = notifier.try_position()
        db: tuple[int, ...] | None = None
        try:
            with psycopg.connect(
                self.settings.database_url.get_secret_value(), autocommit=True, connect_timeout=2
            ) as conn:
                row = conn.execute(
                    "SELECT (SELECT count(*) FROM alert_dirty),"
                    " (SELECT count(*) FROM alert_history WHERE published_at IS NULL),"
                    " (SELECT count(*) FROM alert_commands WHERE applied_at IS NULL),"
                    " (SELECT count(*) FROM alert_history),"
                    " (SELECT count(*) FROM alert_history WHERE deliver),"
                    " (SELECT count(*) FROM meter_readings)"
                ).fetchone()
                db = tuple(int(v) for v in row) if row else None
        except psycopg.Error:
            db = None
        heard = len(self.receiver.received)
        return (self.feeder.finished.is_set(), position, told, db, heard)

    def _pending(self, state: tuple[object, ...], total: int) -> str:
        finished, position, told, db, heard = state
        if not finished:
            return "feeding"
        if not isinstance(position, GroupPosition):
            return "Kafka does not answer"
        if position.end != total:
            return f"the input topics hold {position.end:,} records, the replay {total:,}"
        if position.lag:
            return f"worker lag {position.lag:,} records"
        if not isinstance(db, tuple):
            return "the database does not answer"
        dirty, unpublished, commands, _events, deliverable, _readings = db
        if dirty or unpublished or commands:
            return f"{dirty} units to judge, {unpublished} events to publish"
        if not isinstance(told, GroupPosition) or told.lag:
            return "the notifier is behind the alerts topic"
        if (
            not isinstance(heard, int)
            or len({r.event.event_id for r in self.receiver.received}) < deliverable
        ):
            return f"the webhook has {heard} of {deliverable} events"
        return ""
