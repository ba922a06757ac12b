"""The main job: the local stack, a simulated city's enterprises, real aggregates and alerts.

    stack up -> a fresh demo database and topics -> the scenario's register, plans and
      recipients
      -> worker + alert evaluator + notifier (child processes), webhook receivers for the
         city's energy-supervision office and for each unit the scenario expects alerts about
      -> the heavy-pollution declaration the scenario calls for (an operator's command)
      -> the scenario's meter readings, VOC samples and production reports into Kafka, up to
         the operators' moment (``operator.at``); wait until it is stored, judged and told
      -> the operators acknowledge every alert firing (the Alerts API's command path), the
         amended register and plans are written and the evaluator restarted on them
      -> the rest of the scenario; wait again
      -> print the alerts, per expected alert whether it was raised, notified (office and
         unit), acknowledged and resolved (each once, in its window), who was told what, the
         counties' energy, and a summary; exit 1 if anything expected did not happen

The demo database (``energywatch_demo``) is recreated at the start and kept afterwards, so
the Alerts API and dashboards can look at the result. Scenario data lies in the past, so its
alerts are replays; the demo asks for them to be sent anyway (``EW_SEND_REPLAYS``), and
judges silent devices on the data's own clock (``EW_EVALUATOR_CLOCK=data``).
"""

import asyncio
import contextlib
import secrets
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Final

import psycopg
import yaml
from pydantic import SecretStr
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from alerts.webhook_receiver import WebhookReceiver
from contracts.alert_events import AlertEvent
from contracts.identifiers import CHINA_STANDARD_TIME
from energywatch import demo
from energywatch.kafka_topics import recreate_topics
from energywatch.service_process import ServiceProcess
from energywatch.settings import Settings
from simulators.outcomes import OutcomeCheck, check_outcomes
from simulators.scenario import Scenario, load_scenario
from stack import StackError, StackSettings
from stack import up as stack_up
from storage.rollup_queries import SubjectKind, rollups
from storage.scratch_databases import recreate_database
from stream.windows import WindowSize

DEMO_DATABASE: Final = "energywatch_demo"
DEMO_PREFIX: Final = "energywatch-demo"


@dataclass
class _Services:
    """The demo's workers (readings; VOC and production: a VOC exceedance never waits behind
    the readings), evaluator and notifier; the evaluator restarts on new files."""

    env: dict[str, str]
    logs: Path
    running: dict[str, ServiceProcess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, command in (
            ("worker", ["worker", "--stream", "readings"]),
            ("voc-worker", ["worker", "--stream", "voc", "--stream", "production"]),
            ("evaluator", ["alerts", "evaluate"]),
        ):
            self.running[name] = self._start(name, command, self.env)
        self.running["notifier"] = self._start("notifier", ["notify"], self.env)

    def _start(self, name: str, command: list[str], env: dict[str, str]) -> ServiceProcess:
        return ServiceProcess(command, env, self.logs / f"demo-{name}.log").start()

    def restart_evaluator(self, files: dict[str, str]) -> None:
        self.running["evaluator"].stop()
        self.running["evaluator"] = self._start(
            "evaluator", ["alerts", "evaluate"], {**self.env, **files}
        )

    def dead(self) -> list[str]:
        return [" ".join(s.command) for s in self.running.values() if not s.alive()]

    def stop(self) -> None:
        for service in self.running.values():
            service.stop()


@dataclass
class MainJob:
    scenario_path: Path
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
        scenario = load_scenario(self.scenario_path)
        settings = self._demo_settings(Settings.load())
        workdir = stack_settings.home / "demo"
        workdir.mkdir(parents=True, exist_ok=True)
        logs = stack_settings.home / "logs"
        told = demo.told_enterprises(scenario)
        with contextlib.ExitStack() as receivers:
            supervisor_secret = secrets.token_hex(16)
            supervisor = receivers.enter_context(WebhookReceiver(supervisor_secret.encode()))
            enterprise_secrets = {e.code: secrets.token_hex(16) for e in told}
            enterprises = {
                code: receivers.enter_context(WebhookReceiver(secret.encode()))
                for code, secret in enterprise_secrets.items()
            }
            recipients = demo.recipients_document(
                scenario,
                (supervisor.url, supervisor_secret),
                {code: (enterprises[code].url, enterprise_secrets[code]) for code in enterprises},
            )
            path = workdir / "recipients.yaml"
            path.write_text(yaml.safe_dump(recipients, allow_unicode=True), encoding="utf-8")
            path.chmod(0o600)  # it holds the webhook secrets
            env = {
                **settings.as_env(),
                **demo.write_rule_files(workdir, scenario),
                "EW_RECIPIENTS_PATH": str(path),
                "EW_SEND_REPLAYS": "true",
                "EW_EVALUATOR_CLOCK": "data",
                "EW_EVALUATOR_SWEEP_SECONDS": "2",
                **{
                    f"EW_{name}_METRICS_PORT": "0"
                    for name in ("WORKER", "NOTIFIER", "EVALUATOR", "SIMULATOR")
                },
            }
            services = _Services(env, logs)
            try:
                return self._drive(
                    settings, scenario, services, supervisor, enterprises, workdir, started
                )
            finally:
                services.stop()

    # -- set-up ------------------------------------------------------------------------------

    def _demo_settings(self, settings: Settings) -> Settings:
        """The local stack's settings, on the demo's own database and topics."""
        url = recreate_database(settings.database_url.get_secret_value(), DEMO_DATABASE)
        demo = settings.named_pipeline(DEMO_PREFIX, database_url=SecretStr(url))
        recreate_topics(demo)  # an earlier run's records would be consumed again
        return demo

    # -- the run -----------------------------------------------------------------------------

    def _drive(
        self,
        settings: Settings,
        scenario: Scenario,
        services: _Services,
        supervisor: WebhookReceiver,
        enterprises: Mapping[str, WebhookReceiver],
        workdir: Path,
        started: float,
    ) -> int:
        asyncio.run(demo.sync_reference(settings, scenario))  # what the dashboards join on
        asyncio.run(demo.declare_emergencies(settings, scenario))
        feed = demo.ScenarioFeed(settings, scenario)
        operator = scenario.config.operator
        produce_started = time.monotonic()
        self._send(feed, scenario, operator.at if operator else None)
        final = asyncio.run(self._wait(settings, feed.produced, services))
        if operator is not None:
            at = operator.at.astimezone(CHINA_STANDARD_TIME).strftime("%d %b %H:%M")
            due = asyncio.run(self._wait_for_due(settings, scenario))
            if due:
                self.console.print(f"[red]not firing by {at}:[/red] {', '.join(due)}")
            live = demo.firing(asyncio.run(demo.alert_history(settings)))
            asyncio.run(demo.acknowledge(settings, live))
            self.console.print(f"{at}: the operators acknowledged {len(live)} firing alert(s)")
            asyncio.run(self._wait(settings, feed.produced, services, commands=True))
            if operator.amendments:
                services.restart_evaluator(demo.write_rule_files(workdir, scenario, amended=True))
                asyncio.run(demo.sync_reference(settings, scenario, amended=True))
                self.console.print(
                    f"{at}: {len(operator.amendments)} amendment(s) written; the evaluator "
                    "restarted to read them"
                )
            self.console.print(f"up to {at}: {time.monotonic() - produce_started:.1f}s")
            self._send(feed, scenario, None)
            final = asyncio.run(self._wait(settings, feed.produced, services))
        pipeline_seconds = time.monotonic() - produce_started
        produced = feed.produced
        self.console.print(
            "simulator produced "
            + ", ".join(f"{n:,} {channel}" for channel, n in sorted(produced.items()))
        )
        events = asyncio.run(demo.alert_history(settings))
        deliverable = {e.event_id for e in events if e.deliver}
        supervisor.wait_for_ids(deliverable, timeout=20)
        for code, receiver in enterprises.items():
            own = {e.event_id for e in events if e.deliver and e.enterprise_code == code}
            receiver.wait_for_ids(own, timeout=10)
        checks = check_outcomes(scenario, events)
        lifecycles = demo.lifecycle_report(scenario, events, supervisor, enterprises)
        self._print_alerts(events)
        self._print_checks(checks)
        self._print_lifecycles(lifecycles)
        self._print_recipients(supervisor, enterprises)
        asyncio.run(self._print_counties(settings, scenario))
        table = Table(title="summary", show_header=False)
        for channel in ("readings", "voc", "production"):
            table.add_row(f"{channel} records produced", f"{produced.get(channel, 0):,}")
        table.add_row(
            "stored: readings, VOC samples, reports",
            f"{final.readings:,}, {final.voc_samples:,}, {final.reports:,}",
        )
        table.add_row("alert events in the history", f"{final.events:,}")
        table.add_row("notifications delivered", f"{final.notifications:,}")
        table.add_row("produce -> all stored, judged and told", f"{pipeline_seconds:.1f}s")
        table.add_row("whole job", f"{time.monotonic() - started:.1f}s")
        table.add_row("demo database (kept)", DEMO_DATABASE)
        self.console.print(table)
        missed = [c for c in checks if not c.met]
        broken = [r for r in lifecycles if not r.ok]
        complete = final.readings >= produced.get("readings", 0) and not final.unpublished
        if missed or broken or not complete:
            self.console.print(
                f"[red]{len(missed)} expected outcome(s) missed, {len(broken)} alert(s) not "
                "raised, told, acknowledged and resolved once each"
                f"{'' if complete else ', and the pipeline did not finish in time'}[/red]: see "
                ".local/logs/demo-worker.log, demo-voc-worker.log, demo-evaluator.log and "
                "demo-notifier.log"
            )
            return 1
        self.console.print(
            "[green]every expected outcome happened; every expected alert was raised, told, "
            "acknowledged and resolved once[/green]"
        )
        return 0

    def _send(self, feed: demo.ScenarioFeed, scenario: Scenario, until: datetime | None) -> None:
        with Progress(console=self.console, transient=True) as bar:
            task = bar.add_task(f"simulating {scenario.config.name}", total=1.0)
            feed.send(until, lambda f: bar.update(task, completed=f))

    async def _wait_for_due(self, settings: Settings, scenario: Scenario) -> list[str]:
        """Until every alert expected before the operators act is firing (or the timeout):
        what is still missing."""
        deadline = time.monotonic() + min(self.timeout_seconds, 60)
        while True:
            due = demo.due_by_operator(scenario, await demo.alert_history(settings))
            if not due or time.monotonic() > deadline:
                return due
            await asyncio.sleep(0.5)

    async def _wait(
        self,
        settings: Settings,
        produced: Counter[str],
        services: _Services,
        commands: bool = False,
    ) -> demo.DemoProgress:
        """Until everything sent is stored, nothing is left to judge or publish (nor, with
        ``commands``, to apply), and nothing new has happened for a few seconds (or the
        timeout)."""
        deadline = time.monotonic() + self.timeout_seconds
        quiet_since = time.monotonic()
        last: demo.DemoProgress | None = None
        async with await psycopg.AsyncConnection.connect(
            settings.database_url.get_secret_value(), autocommit=True
        ) as conn:
            with self.console.status("waiting for the pipeline") as status:
                while time.monotonic() < deadline:
                    dead = services.dead()
                    if dead:
                        self.console.print(f"[red]{', '.join(dead)} exited[/red]")
                        break
                    now = await demo.pipeline_progress(conn)
                    status.update(
                        f"stored {now.readings:,}/{produced.get('readings', 0):,} readings, "
                        f"{now.voc_samples:,}/{produced.get('voc', 0):,} VOC samples; "
                        f"{now.events} alert events, {now.notifications} notifications"
                    )
                    if now != last:
                        quiet_since, last = time.monotonic(), now
                    stored = now.readings >= produced.get("readings", 0)
                    settled = stored and now.dirty == 0 and now.unpublished == 0
                    if commands and await demo.commands_pending(conn):
                        settled = False
                    if settled and time.monotonic() - quiet_since > _QUIET_SECONDS:
                        break
                    await asyncio.sleep(0.5)
            return await demo.pipeline_progress(conn)

    # -- the report --------------------------------------------------------------------------

    def _print_alerts(self, events: list[AlertEvent]) -> None:
        by_alert: dict[str, list[AlertEvent]] = {}
        for event in events:
            by_alert.setdefault(event.alert_id, []).append(event)
        table = Table(title=f"alerts raised ({len(by_alert)})")
        for column in ("from (China time)", "rule", "subject", "worst", "events", "now"):
            table.add_column(column)
        alerts = sorted(by_alert.values(), key=lambda es: (es[0].started_at, es[0].rule_id))
        for history in alerts:
            first, last = history[0], history[-1]
            worst = max(history, key=lambda e: _RANK[e.severity.value]).severity.value
            table.add_row(
                first.started_at.astimezone(CHINA_STANDARD_TIME).strftime("%m-%d %H:%M"),
                first.rule_id,
                first.subject,
                worst,
                ", ".join(e.kind.value for e in history),
                last.status.value,
            )
        self.console.print(table)

    def _print_checks(self, checks: list[OutcomeCheck]) -> None:
        table = Table(title="what the scenario expected")
        for column in ("rule", "subject", "expected", "happened", "why"):
            table.add_column(column)
        for check in checks:
            mark = "[green]yes[/green]" if check.met else "[red]no[/red]"
            table.add_row(
                check.expected.rule, check.expected.subject, check.expected.outcome, mark, check.why
            )
        self.console.print(table)

    def _print_lifecycles(self, lifecycles: list[demo.RuleLifecycle]) -> None:
        table = Table(title="each expected alert, end to end")
        for column in ("rule", "subject", "raised", "notified", "acked", "resolved", "ok"):
            table.add_column(column)

        def when(event: AlertEvent | None) -> str:
            if event is None:
                return "-"
            return event.at.astimezone(CHINA_STANDARD_TIME).strftime("%m-%d %H:%M")

        for row in lifecycles:
            check = row.check
            told = "office " + ("yes" if row.office_told else "[red]NO[/red]")
            if row.unit_told is not None:
                told += ", unit " + ("yes" if row.unit_told else "[red]NO[/red]")
            table.add_row(
                check.expected.rule,
                check.expected.subject,
                f"{row.fired}x {when(check.evidence)}",
                told,
                f"{row.acknowledged}x",
                f"{row.resolved}x {when(check.resolution)}",
                "[green]yes[/green]" if row.ok else f"[red]{'; '.join(row.problems)}[/red]",
            )
        self.console.print(table)

    def _print_recipients(
        self, supervisor: WebhookReceiver, enterprises: Mapping[str, WebhookReceiver]
    ) -> None:
        table = Table(title="who was told")
        for column in ("recipient", "messages", "events", "only its own"):
            table.add_column(column)
        supervisor_events = supervisor.unique_alerts()
        table.add_row(
            f"supervisor ({demo.SUPERVISOR_ID})",
            str(len(supervisor.notifications)),
            str(len(supervisor_events)),
            "-",
        )
        for code, receiver in enterprises.items():
            own = receiver.unique_alerts()
            table.add_row(
                f"enterprise {code}",
                str(len(receiver.notifications)),
                str(len(own)),
                "yes" if all(e.enterprise_code == code for e in own) else "[red]NO[/red]",
            )
        self.console.print(table)

    async def _print_counties(self, settings: Settings, scenario: Scenario) -> None:
        counties = sorted({e.county.division for e in scenario.fleet.enterprises})
        table = Table(title="energy by county over the scenario, tce (controlled total)")
        table.add_column("county")
        table.add_column("tce", justify="right")
        table.add_column("of which electricity", justify="right")
        async with await psycopg.AsyncConnection.connect(
            settings.database_url.get_secret_value()
        ) as conn:
            for county in counties:
                rows = await rollups(
                    conn,
                    SubjectKind.COUNTY,
                    county,
                    WindowSize.DAY,
                    scenario.config.start,
                    scenario.end,
                    topic=settings.readings_topic,
                    consumer=settings.worker_app_id,
                )
                total = sum((r.tce_counted for r in rows if r.energy_type == "all"), Decimal(0))
                power = sum(
                    (r.tce_counted for r in rows if r.energy_type == "electricity"), Decimal(0)
                )
                table.add_row(county, f"{total:,.1f}", f"{power:,.1f}")
        self.console.print(table)


_RANK: Final = {"info": 0, "notice": 1, "warning": 2, "critical": 3}
_QUIET_SECONDS: Final = 3.0
