"""The main job: the local stack, a simulated city's enterprises, real aggregates and alerts.

    stack up -> a fresh demo database and topics -> the scenario's register and recipients
      -> worker + alert evaluator + notifier (child processes), two webhook receivers (the
         city's energy-supervision office, and one enterprise)
      -> the heavy-pollution declaration the scenario calls for (an operator's command)
      -> the scenario's meter readings, VOC samples and production reports into Kafka
      -> wait until everything is stored, judged and notified
      -> print the alerts, whether each expected outcome happened, who was told what, the
         counties' energy, and a summary; exit 1 if anything expected did not happen

The demo database (``energywatch_demo``) is recreated at the start and kept afterwards, so
the Alerts API and dashboards can look at the result. Scenario data lies in the past, so its
alerts are replays; the demo asks for them to be sent anyway (``EW_SEND_REPLAYS``), and
judges silent devices on the data's own clock (``EW_EVALUATOR_CLOCK=data``).
"""

import asyncio
import secrets
import time
from collections import Counter
from dataclasses import dataclass
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
        supervisor_secret, enterprise_secret = secrets.token_hex(16), secrets.token_hex(16)
        with (
            WebhookReceiver(supervisor_secret.encode()) as supervisor,
            WebhookReceiver(enterprise_secret.encode()) as enterprise,
        ):
            (workdir / "register.yaml").write_text(
                yaml.safe_dump(
                    demo.scenario_register(scenario).model_dump(mode="json"),
                    allow_unicode=True,
                    sort_keys=False,
                ),
                encoding="utf-8",
            )
            recipients, told_enterprise = demo.recipients_document(
                scenario,
                (supervisor.url, supervisor_secret),
                (enterprise.url, enterprise_secret),
            )
            path = workdir / "recipients.yaml"
            path.write_text(yaml.safe_dump(recipients, allow_unicode=True), encoding="utf-8")
            path.chmod(0o600)  # it holds the webhook secrets
            env = {
                **settings.as_env(),
                "EW_REGISTER_PATH": str(workdir / "register.yaml"),
                "EW_RECIPIENTS_PATH": str(workdir / "recipients.yaml"),
                "EW_SEND_REPLAYS": "true",
                "EW_EVALUATOR_CLOCK": "data",
                "EW_EVALUATOR_SWEEP_SECONDS": "5",
                **{
                    f"EW_{name}_METRICS_PORT": "0"
                    for name in ("WORKER", "NOTIFIER", "EVALUATOR", "SIMULATOR")
                },
            }
            services = [
                ServiceProcess(["worker"], env, logs / "demo-worker.log").start(),
                ServiceProcess(["alerts", "evaluate"], env, logs / "demo-evaluator.log").start(),
                ServiceProcess(["notify"], env, logs / "demo-notifier.log").start(),
            ]
            try:
                return self._drive(
                    settings, scenario, services, supervisor, enterprise, told_enterprise, started
                )
            finally:
                for service in services:
                    service.stop()

    # -- set-up ------------------------------------------------------------------------------

    def _demo_settings(self, settings: Settings) -> Settings:
        """The local stack's settings, on the demo's own database and topics."""
        url = recreate_database(settings.database_url.get_secret_value(), DEMO_DATABASE)
        demo = settings.model_copy(
            update={
                "database_url": SecretStr(url),
                "readings_topic": f"{DEMO_PREFIX}.readings",
                "voc_topic": f"{DEMO_PREFIX}.voc",
                "production_topic": f"{DEMO_PREFIX}.production",
                "alerts_topic": f"{DEMO_PREFIX}.alerts",
                "dead_letter_topic": f"{DEMO_PREFIX}.dead-letters",
                "worker_app_id": f"{DEMO_PREFIX}-worker",
                "notifier_group_id": f"{DEMO_PREFIX}-notifier",
            }
        )
        recreate_topics(demo)  # an earlier run's records would be consumed again
        return demo

    # -- the run -----------------------------------------------------------------------------

    def _drive(
        self,
        settings: Settings,
        scenario: Scenario,
        services: list[ServiceProcess],
        supervisor: WebhookReceiver,
        enterprise: WebhookReceiver,
        told_enterprise: str,
        started: float,
    ) -> int:
        asyncio.run(demo.declare_emergencies(settings, scenario))
        with Progress(console=self.console, transient=True) as bar:
            task = bar.add_task(f"simulating {scenario.config.name}", total=1.0)
            produced = demo.produce(settings, scenario, lambda f: bar.update(task, completed=f))
        self.console.print(
            "simulator produced "
            + ", ".join(f"{n:,} {channel}" for channel, n in sorted(produced.items()))
        )
        produce_started = time.monotonic()
        final = asyncio.run(self._wait(settings, produced, services))
        pipeline_seconds = time.monotonic() - produce_started
        events = asyncio.run(demo.alert_history(settings))
        checks = check_outcomes(scenario, events)
        self._print_alerts(events)
        self._print_checks(checks)
        self._print_recipients(supervisor, enterprise, told_enterprise)
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
        complete = final.readings >= produced.get("readings", 0) and not final.unpublished
        if missed or not complete:
            self.console.print(
                f"[red]{len(missed)} expected outcome(s) missed"
                f"{'' if complete else ', and the pipeline did not finish in time'}[/red]: see "
                ".local/logs/demo-worker.log, demo-evaluator.log and demo-notifier.log"
            )
            return 1
        self.console.print("[green]every expected outcome happened[/green]")
        return 0

    async def _wait(
        self, settings: Settings, produced: Counter[str], services: list[ServiceProcess]
    ) -> demo.DemoProgress:
        """Until everything is stored, nothing is left to judge or publish, and nothing new has
        happened for a few seconds (or the timeout)."""
        deadline = time.monotonic() + self.timeout_seconds
        quiet_since = time.monotonic()
        last: demo.DemoProgress | None = None
        async with await psycopg.AsyncConnection.connect(
            settings.database_url.get_secret_value(), autocommit=True
        ) as conn:
            with self.console.status("waiting for the pipeline") as status:
                while time.monotonic() < deadline:
                    dead = [" ".join(s.command) for s in services if not s.alive()]
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
                    if settled and time.monotonic() - quiet_since > 8:
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

    def _print_recipients(
        self, supervisor: WebhookReceiver, enterprise: WebhookReceiver, told: str
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
        own = enterprise.unique_alerts()
        table.add_row(
            f"enterprise {told}",
            str(len(enterprise.notifications)),
            str(len(own)),
            "yes" if all(e.enterprise_code == told for e in own) else "[red]NO[/red]",
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
