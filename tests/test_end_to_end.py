"""The whole pipeline on the demo scenario, as `make run` drives it: simulator -> Kafka ->
worker -> TimescaleDB -> alert evaluator -> alerts topic -> notifier -> webhooks.

Real Kafka, TimescaleDB and Prometheus, every service a child process. The two webhook
receivers are servers this test runs, standing in for a city supervision office's and an
enterprise's endpoints (third-party systems that cannot run here)."""

import asyncio
import secrets
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from alerts.webhook_receiver import WebhookReceiver
from contracts.alert_commands import Acknowledge
from contracts.alert_events import AlertKind
from energywatch import demo
from simulators.outcomes import check_outcomes
from simulators.scenario import load_scenario
from storage import alert_store
from tests.conftest import wait_until
from tests.pipeline import prometheus_value

pytestmark = pytest.mark.services
SCENARIO = load_scenario(Path(__file__).parent.parent / "scenarios" / "demo.yaml")


def progress(settings) -> demo.DemoProgress:
    async def read() -> demo.DemoProgress:
        async with await psycopg.AsyncConnection.connect(
            settings.database_url.get_secret_value(), autocommit=True
        ) as conn:
            return await demo.pipeline_progress(conn)

    return asyncio.run(read())


def settle(settings, readings: int, timeout: float) -> demo.DemoProgress:
    """Until every reading is stored and nothing is left to judge or publish, for 3 s."""
    state: dict[str, Any] = {"last": None, "since": time.monotonic()}

    def quiet() -> demo.DemoProgress | None:
        now = progress(settings)
        if now != state["last"]:
            state["last"], state["since"] = now, time.monotonic()
        done = now.readings >= readings and now.dirty == 0 and now.unpublished == 0
        return now if done and time.monotonic() - float(state["since"]) > 3 else None

    settled: demo.DemoProgress = wait_until(quiet, timeout, interval=0.5, what="settling")
    return settled


def test_the_demo_raises_notifies_acknowledges_and_resolves_with_each_party_told_its_own(
    pipeline_settings, start_service, tmp_path, capsys
):
    settings = pipeline_settings
    secret_s, secret_e = secrets.token_hex(8), secrets.token_hex(8)
    with (
        WebhookReceiver(secret_s.encode()) as supervisor,
        WebhookReceiver(secret_e.encode()) as enterprise,
    ):
        register = tmp_path / "register.yaml"
        register.write_text(
            yaml.safe_dump(demo.scenario_register(SCENARIO).model_dump(mode="json")), "utf-8"
        )
        document, told = demo.recipients_document(
            SCENARIO, (supervisor.url, secret_s), (enterprise.url, secret_e)
        )
        recipients = tmp_path / "recipients.yaml"
        recipients.write_text(yaml.safe_dump(document), "utf-8")
        env = {
            "EW_REGISTER_PATH": str(register),
            "EW_RECIPIENTS_PATH": str(recipients),
            "EW_SEND_REPLAYS": "true",
            "EW_EVALUATOR_CLOCK": "data",
            "EW_EVALUATOR_SWEEP_SECONDS": "2",
        }
        for service in ("worker", "alerts evaluate", "notify"):
            start_service(service, settings, **env)
        asyncio.run(demo.declare_emergencies(settings, SCENARIO))
        sent_at = time.monotonic()
        produced = demo.produce(settings, SCENARIO)
        settled = settle(settings, produced["readings"], timeout=240)
        with capsys.disabled():
            print(
                f"\ndemo through the pipeline: {time.monotonic() - sent_at:.1f}s for "
                f"{produced.total():,} records, {settled.events} alert events"
            )
        events = asyncio.run(demo.alert_history(settings))

        # every rule type did what the scenario says, at the time it says
        missed = [c for c in check_outcomes(SCENARIO, events) if not c.met]
        assert missed == [], [(c.expected.rule, c.expected.subject, c.why) for c in missed]
        kinds = {(e.rule_id.split(".")[0], e.kind) for e in events}
        for family in ("voc-single", "voc-hourly", "product-energy", "data-quality"):
            assert (family, AlertKind.RESOLVED) in kinds, f"{family} alerts never resolved"

        # each deliverable event reached the city's office once, and the enterprise its own
        deliverable = {e.event_id for e in events if e.deliver}
        own = {e.event_id for e in events if e.deliver and e.enterprise_code == told}
        assert own, "the scenario's first expected alert is about the enterprise told"
        assert supervisor.wait_for_ids(deliverable, timeout=30)
        assert enterprise.wait_for_ids(own, timeout=30)
        assert {e.event_id for e in enterprise.unique_alerts()} == own
        assert {e.enterprise_code for e in enterprise.unique_alerts()} == {told}
        assert len(supervisor.unique_alerts()) == len(deliverable)
        assert supervisor.rejected == enterprise.rejected == 0

        # the enterprise acknowledges one of its firing alerts: it hears that it was
        firing = [e for e in events if e.enterprise_code == told and e.kind is AlertKind.FIRED]
        latest = {e.alert_id: e for e in events}
        alert = next(e for e in firing if latest[e.alert_id].kind is not AlertKind.RESOLVED)

        async def acknowledge() -> None:
            async with (
                await psycopg.AsyncConnection.connect(
                    settings.database_url.get_secret_value()
                ) as conn,
                conn.transaction(),
                conn.cursor() as cur,
            ):
                command = Acknowledge(
                    alert_id=alert.alert_id,
                    user="energy manager",
                    comment="kiln load reduced",
                    expires_at=alert.emitted_at + timedelta(days=365),
                )
                await alert_store.queue_command(cur, command, f"enterprise:{told}")

        asyncio.run(acknowledge())
        acked = wait_until(
            lambda: [
                e
                for e in enterprise.unique_alerts()
                if e.kind is AlertKind.ACKNOWLEDGED and e.alert_id == alert.alert_id
            ],
            30,
            what="the acknowledgement to reach the enterprise",
        )
        assert acked[0].acknowledgement is not None
        assert acked[0].acknowledgement.comment == "kiln load reduced"

        # the same records again: stored once, judged once, told once
        before = progress(settings)
        heard = len(supervisor.received)
        demo.produce(settings, SCENARIO)
        time.sleep(5)
        after = settle(settings, produced["readings"], timeout=120)
        assert (after.readings, after.events) == (before.readings, before.events)
        assert len(supervisor.received) == heard

    # the local Prometheus found the worker through its target file and scraped it
    assert wait_until(
        lambda: (
            prometheus_value(
                settings,
                f'energywatch_stream_readings_stored_total{{service="{settings.worker_app_id}"}}',
            )
            >= produced["readings"]
        ),
        30,
        what="Prometheus to scrape the worker's stored-readings counter",
    )
