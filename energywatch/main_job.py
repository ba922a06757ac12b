"""The main job: the local stack with simulated enterprises producing real aggregates and alerts.

stack up -> topics -> webhook receiver -> worker + notifier (child processes)
         -> simulator produces N units x M intervals -> wait until every reading is stored
         and every alert delivered -> print the alerts and a summary -> stop the services
"""

import asyncio
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from rich.console import Console
from rich.table import Table

from alerts.webhook_receiver import WebhookReceiver
from contracts.alert_events import AlertEvent
from energywatch.kafka_topics import ensure_topics
from energywatch.service_process import ServiceProcess
from energywatch.settings import Settings
from simulators.electricity import INTERVAL, electricity_readings, simulated_fleet
from simulators.kafka_runner import produce_readings
from stack import StackError, StackSettings
from stack import up as stack_up
from storage.alert_outbox import alerts_for_subjects
from storage.readings import StoredSummary, count_readings, stored_summary

CST = timedelta(hours=8)


@dataclass
class MainJob:
    units: int
    intervals: int
    seed: int
    timeout_seconds: float
    console: Console

    def run(self) -> int:
        started = time.monotonic()
        stack_settings = StackSettings()
        try:
            with self.console.status("starting the local stack") as status:
                stack_up(stack_settings, progress=lambda m: status.update(m))
        except StackError as exc:
            self.console.print(f"[red]the local stack did not come up:[/red] {exc}")
            return 1
        self.console.print(f"stack up in {time.monotonic() - started:.1f}s")
        settings = Settings.load()
        ensure_topics(settings)
        secret = secrets.token_hex(16)
        logs = stack_settings.home / "logs"
        with WebhookReceiver(secret.encode()) as receiver:
            env = {
                "EW_WEBHOOK_URL": receiver.url,
                "EW_WEBHOOK_SECRET": secret,
                "EW_WORKER_METRICS_PORT": "0",
                "EW_NOTIFIER_METRICS_PORT": "0",
            }
            services = [
                ServiceProcess(["worker"], env, logs / "worker.log").start(),
                ServiceProcess(["notifier"], env, logs / "notifier.log").start(),
            ]
            try:
                return self._drive(settings, receiver, services, started)
            finally:
                for service in services:
                    service.stop()

    def _drive(
        self,
        settings: Settings,
        receiver: WebhookReceiver,
        services: list[ServiceProcess],
        started: float,
    ) -> int:
        now = datetime.now(UTC)
        first = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
        first -= self.intervals * INTERVAL
        fleet = simulated_fleet(self.units, self.seed)
        meters = [u.meter_id for u in fleet]
        readings = list(electricity_readings(fleet, first, self.intervals, self.seed))
        # the same seed within the same quarter-hour gives the same readings: their alerts were
        # raised and delivered by that earlier run and, rightly, are not delivered again
        earlier = {a.alert_id for a, _ in asyncio.run(self._stored_alerts(settings, meters))}
        produce_started = time.monotonic()
        sent = produce_readings(settings.kafka_bootstrap, settings.readings_topic, readings)
        self.console.print(
            f"simulator produced {sent} readings ({self.units} units x {self.intervals} intervals)"
        )
        stored, alerts = asyncio.run(self._wait_for_pipeline(settings, meters, sent, services))
        pipeline_seconds = time.monotonic() - produce_started
        new_alerts = {a.alert_id for a, _ in alerts} - earlier
        delivered_all = receiver.wait_for_ids(new_alerts, timeout=30)
        if earlier:
            self.console.print(
                f"{len(earlier)} alert(s) for these readings were raised and delivered by an "
                "earlier run with the same seed; they are not sent again"
            )
        self._print_alerts(receiver, set(meters))
        summary = asyncio.run(self._summary(settings))
        table = Table(title="what was stored", show_header=False)
        table.add_row("readings produced / stored", f"{sent} / {stored}")
        delivered = new_alerts & {a.alert_id for a in receiver.unique_alerts()}
        table.add_row("new alerts raised / delivered", f"{len(new_alerts)} / {len(delivered)}")
        table.add_row(
            "database, all runs: readings, meters, enterprises",
            f"{summary.readings}, {summary.meters}, {summary.enterprises}",
        )
        for unit, total in summary.total_by_unit.items():
            table.add_row(f"database, all runs: total {unit}", f"{total:,.0f}")
        table.add_row(
            "produce -> all stored",
            f"{pipeline_seconds:.1f}s ({sent / pipeline_seconds:,.0f} readings/s)",
        )
        table.add_row("whole job", f"{time.monotonic() - started:.1f}s")
        self.console.print(table)
        if stored != sent or not delivered_all:
            self.console.print(
                "[red]the pipeline did not finish in time[/red]: see .local/logs/worker.log and "
                ".local/logs/notifier.log"
            )
            return 1
        return 0

    async def _wait_for_pipeline(
        self, settings: Settings, meters: list[str], expected: int, services: list[ServiceProcess]
    ) -> tuple[int, list[tuple[AlertEvent, bool]]]:
        deadline = time.monotonic() + self.timeout_seconds
        async with await psycopg.AsyncConnection.connect(
            settings.database_url.get_secret_value()
        ) as conn:
            stored = 0
            with self.console.status("waiting for the worker to store every reading") as status:
                while time.monotonic() < deadline:
                    dead = [s.command[0] for s in services if not s.alive()]
                    if dead:
                        self.console.print(f"[red]{', '.join(dead)} exited[/red]")
                        break
                    try:
                        stored = await count_readings(conn, meters)
                    except psycopg.errors.UndefinedTable:
                        await conn.rollback()  # the worker has not migrated yet
                    status.update(f"stored {stored} of {expected} readings")
                    if stored >= expected:
                        break
                    await asyncio.sleep(0.5)
                while time.monotonic() < deadline:
                    alerts = await alerts_for_subjects(conn, meters)
                    if all(published for _a, published in alerts):
                        return stored, list(alerts)
                    await asyncio.sleep(0.5)
            return stored, list(await alerts_for_subjects(conn, meters))

    async def _stored_alerts(
        self, settings: Settings, meters: list[str]
    ) -> list[tuple[AlertEvent, bool]]:
        async with await psycopg.AsyncConnection.connect(
            settings.database_url.get_secret_value()
        ) as conn:
            try:
                return await alerts_for_subjects(conn, meters)
            except psycopg.errors.UndefinedTable:
                return []  # a fresh database: the worker has not migrated it yet

    async def _summary(self, settings: Settings) -> StoredSummary:
        async with await psycopg.AsyncConnection.connect(
            settings.database_url.get_secret_value()
        ) as conn:
            return await stored_summary(conn)

    def _print_alerts(self, receiver: WebhookReceiver, meters: set[str]) -> None:
        """The alerts this run's meters raised (others may arrive from earlier runs' data)."""
        alerts = sorted(
            (a for a in receiver.unique_alerts() if a.subject in meters),
            key=lambda a: (a.period_start, a.subject),
        )
        table = Table(title=f"alerts delivered to the webhook ({len(alerts)})")
        for column in (
            "period (China time)",
            "enterprise",
            "meter",
            "observed",
            "limit",
            "severity",
        ):
            table.add_column(column)
        for alert in alerts:
            table.add_row(
                (alert.period_start + CST).strftime("%Y-%m-%d %H:%M"),
                alert.enterprise_code,
                alert.subject.removeprefix(f"{alert.enterprise_code}-"),
                f"{alert.observed_value:,.0f} kWh",
                f"{alert.threshold_value:,.0f} kWh",
                alert.severity.value,
            )
        self.console.print(table)
