"""The whole pipeline on the demo scenario, as `make run` drives it: simulator -> Kafka ->
worker -> TimescaleDB -> alert evaluator -> alerts topic -> notifier -> webhooks, with the
operators acting in the middle (acknowledgements through the Alerts API's command path, the
amended register and plans read by a restarted evaluator).

Real Kafka, TimescaleDB and Prometheus, every service a child process. The webhook receivers
are servers this test runs, standing in for the city supervision office's and the
enterprises' endpoints (third-party systems that cannot run here)."""

import asyncio
import contextlib
import secrets
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from alerts.webhook_receiver import WebhookReceiver
from contracts.alert_events import AlertKind
from energywatch import demo
from simulators.outcomes import check_outcomes
from simulators.scenario import load_scenario
from stream.app import app_id
from tests.conftest import free_port, wait_until
from tests.pipeline import prometheus_value

pytestmark = pytest.mark.services
SCENARIO = load_scenario(Path(__file__).parent.parent / "scenarios" / "demo.yaml")
#: The rule types the demo stages, each expected to fire, be told, acknowledged and resolved.
STAGED = {
    "energy-budget.unit.pace",
    "energy-budget.county.pace",
    "budget-forecast.unit",
    "budget-forecast.county",
    "voc-single",
    "voc-hourly",
    "product-energy",
    "data-quality.gap",
    "data-quality.completeness",
    "data-quality.offline",
    "heavy-pollution.response",
}


async def _read(settings, query) -> Any:
    async with await psycopg.AsyncConnection.connect(
        settings.database_url.get_secret_value(), autocommit=True
    ) as conn:
        return await query(conn)


def settle(settings, readings: int, timeout: float) -> demo.DemoProgress:
    """Until every reading sent is stored, nothing is left to judge, publish or apply, for 3 s."""
    state: dict[str, Any] = {"last": None, "since": time.monotonic()}

    async def read(conn) -> tuple[demo.DemoProgress, int]:
        return await demo.pipeline_progress(conn), await demo.commands_pending(conn)

    def quiet() -> demo.DemoProgress | None:
        now, commands = asyncio.run(_read(settings, read))
        if now != state["last"]:
            state["last"], state["since"] = now, time.monotonic()
        done = now.readings >= readings and now.dirty == now.unpublished == commands == 0
        return now if done and time.monotonic() - float(state["since"]) > 3 else None

    settled: demo.DemoProgress = wait_until(quiet, timeout, interval=0.5, what="settling")
    return settled


def test_each_rule_type_is_raised_told_acknowledged_and_resolved_once_each_party_its_own(
    pipeline_settings, start_service, tmp_path, capsys
):
    settings = pipeline_settings
    operator = SCENARIO.config.operator
    assert operator is not None
    assert operator.amendments
    told = [e.code for e in demo.told_enterprises(SCENARIO)]
    with contextlib.ExitStack() as stack:
        secret = secrets.token_hex(8)
        supervisor = stack.enter_context(WebhookReceiver(secret.encode()))
        keys = {code: secrets.token_hex(8) for code in told}
        units = {code: stack.enter_context(WebhookReceiver(k.encode())) for code, k in keys.items()}
        recipients = tmp_path / "recipients.yaml"
        document = demo.recipients_document(
            SCENARIO, (supervisor.url, secret), {c: (units[c].url, keys[c]) for c in units}
        )
        recipients.write_text(yaml.safe_dump(document), "utf-8")
        env = {
            **demo.write_rule_files(tmp_path, SCENARIO),
            "EW_RECIPIENTS_PATH": str(recipients),
            "EW_SEND_REPLAYS": "true",
            "EW_EVALUATOR_CLOCK": "data",
            "EW_EVALUATOR_SWEEP_SECONDS": "2",
        }
        # the production layout: readings in one worker, VOC and production in another
        start_service("worker --stream readings", settings, **env)
        start_service(
            "worker --stream voc --stream production",
            settings,
            **env,
            EW_WORKER_METRICS_PORT=str(free_port()),
        )
        evaluator = start_service("alerts evaluate", settings, **env)
        start_service("notify", settings, **env)
        asyncio.run(demo.declare_emergencies(settings, SCENARIO))
        sent_at = time.monotonic()
        feed = demo.ScenarioFeed(settings, SCENARIO)

        # up to the operators' moment: what is due then is firing
        feed.send(operator.at)
        settle(settings, feed.produced["readings"], timeout=150)
        due: list[str] = []

        def all_due() -> bool:
            due[:] = demo.due_by_operator(SCENARIO, asyncio.run(demo.alert_history(settings)))
            return not due

        deadline = time.monotonic() + 60
        while not all_due() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert due == [], "not firing by the operators' moment"
        live = demo.firing(asyncio.run(demo.alert_history(settings)))
        assert {_type(e.rule_id) for e in live} >= STAGED
        asyncio.run(demo.acknowledge(settings, live))
        settle(settings, feed.produced["readings"], timeout=60)

        # the amendments take effect as any change of those files does: on a restart
        evaluator.stop()
        amended = {**env, **demo.write_rule_files(tmp_path, SCENARIO, amended=True)}
        start_service("alerts evaluate", settings, **amended)
        feed.send(None)
        settled = settle(settings, feed.produced["readings"], timeout=150)
        with capsys.disabled():
            print(
                f"\ndemo through the pipeline: {time.monotonic() - sent_at:.1f}s for "
                f"{feed.produced.total():,} records, {settled.events} alert events"
            )
        events = asyncio.run(demo.alert_history(settings))
        deliverable = {e.event_id for e in events if e.deliver}
        assert supervisor.wait_for_ids(deliverable, timeout=30)
        for code, receiver in units.items():
            own = {e.event_id for e in events if e.deliver and e.enterprise_code == code}
            assert receiver.wait_for_ids(own, timeout=30), code

        # every expectation met, in its windows (firing and resolution)
        missed = [c for c in check_outcomes(SCENARIO, events) if not c.met]
        assert missed == [], [(c.expected.rule, c.expected.subject, c.why) for c in missed]
        # each staged rule type: fired, told to the office and its unit (only its own),
        # acknowledged and resolved, each exactly once
        report = demo.lifecycle_report(SCENARIO, events, supervisor, units)
        broken = [(r.check.expected.rule, r.check.expected.subject, r.problems) for r in report]
        assert [b for b in broken if b[2]] == []
        resolved = {r.check.expected.rule for r in report if r.resolved == 1}
        assert resolved == STAGED
        for r in report:
            assert (r.fired, r.acknowledged) == (1, 1), r.check.expected
            assert r.office_told
            regional = r.check.expected.subject.isdigit()
            assert r.unit_told is (None if regional else True), r.check.expected
        acks = [e for e in events if e.kind is AlertKind.ACKNOWLEDGED]
        assert {e.alert_id for e in acks} == {e.alert_id for e in live}
        assert all(e.acknowledgement is not None for e in acks)
        for code, receiver in units.items():
            assert {e.enterprise_code for e in receiver.unique_alerts()} == {code}
            heard = [e for e in receiver.unique_alerts() if e.kind is AlertKind.ACKNOWLEDGED]
            assert heard, f"{code} was not told of its acknowledgement"
        assert len(supervisor.unique_alerts()) == len(supervisor.received) == len(deliverable)
        assert supervisor.rejected == 0
        assert all(receiver.rejected == 0 for receiver in units.values())

    # the local Prometheus found the worker through its target file and scraped it
    readings_worker = app_id(settings, ("readings",))
    assert wait_until(
        lambda: (
            prometheus_value(
                settings,
                f'energywatch_stream_readings_stored_total{{service="{readings_worker}"}}',
            )
            >= feed.produced["readings"]
        ),
        30,
        what="Prometheus to scrape the worker's stored-readings counter",
    )


def _type(rule_id: str) -> str:
    """The staged rule type a rule id belongs to (``voc-single.a24088`` -> ``voc-single``)."""
    return next((t for t in STAGED if rule_id == t or rule_id.startswith(f"{t}.")), rule_id)
