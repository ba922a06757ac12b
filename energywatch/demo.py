"""The pieces of a demo run that the main job and the end-to-end test share: a scenario's
register and recipients, the operator's emergency commands, producing the scenario into
Kafka, and reading back what the pipeline made of it."""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from contracts.alert_commands import DeclareEmergency
from contracts.alert_events import AlertEvent
from energywatch.settings import Settings
from plans.register import Register
from simulators.credentials import register_for_fleet
from simulators.kafka_sink import KafkaRecordSink
from simulators.records import Channel
from simulators.runner import Simulation
from simulators.scenario import HeavyPollutionAlert, Scenario
from storage import alert_store
from storage.migrate import migrate

SUPERVISOR_ID = "city-energy-office"


@dataclass(frozen=True)
class DemoProgress:
    readings: int
    voc_samples: int
    reports: int
    dirty: int
    unpublished: int
    events: int
    notifications: int


def scenario_register(scenario: Scenario) -> Register:
    """The register of the scenario's fleet and monitors, with budgets for its years."""
    years = range(scenario.config.start.year, scenario.end.year + 1)
    return register_for_fleet(scenario.fleet, scenario.plan.voc_monitors, years)


def recipients_document(
    scenario: Scenario,
    supervisor: tuple[str, str],
    enterprise: tuple[str, str],
) -> tuple[dict[str, Any], str]:
    """A recipients file (as data): the scenario's city supervision office at the first
    webhook (url, secret), and the first enterprise the scenario expects an alert about at
    the second; returns it with that enterprise's code."""
    fired = [e for e in scenario.config.expected if e.outcome == "fires"]
    told = scenario.fleet.enterprise(fired[0].subject.split("/")[0])
    city = told.city

    def webhook(target: tuple[str, str]) -> dict[str, str]:
        return {"kind": "webhook", "url": target[0], "secret": target[1]}

    document = {
        "version": 1,
        "default_rate_limit": {"max_messages": 1000, "per_seconds": 60},
        "recipients": [
            {
                "kind": "supervisor",
                "id": SUPERVISOR_ID,
                "name": f"{city.code} energy-conservation supervision office",
                "region_code": city.division,
                "channels": [webhook(supervisor)],
            },
            {
                "kind": "enterprise",
                "id": told.id,
                "name": told.name,
                "enterprise_code": told.code,
                "channels": [webhook(enterprise)],
            },
        ],
    }
    return document, told.code


async def declare_emergencies(settings: Settings, scenario: Scenario) -> int:
    """What a city's operator would do through the Alerts API for the scenario's heavy-
    pollution alerts: declare each, and lift it at its end. Returns the commands queued."""
    commands: list[DeclareEmergency] = []
    for situation in scenario.config.situations:
        if isinstance(situation, HeavyPollutionAlert):
            commands += [
                DeclareEmergency(
                    city=situation.city,
                    level=situation.level,
                    at=situation.start,
                    lead_time_hours=situation.lead_hours,
                ),
                DeclareEmergency(city=situation.city, level=None, at=situation.end),
            ]
    if commands:
        async with await psycopg.AsyncConnection.connect(
            settings.database_url.get_secret_value()
        ) as conn:
            await migrate(conn)
            async with conn.transaction(), conn.cursor() as cur:
                for command in commands:
                    await alert_store.queue_command(cur, command, "admin:demo-operator")
    return len(commands)


def produce(
    settings: Settings,
    scenario: Scenario,
    on_progress: Callable[[float], None] = lambda _fraction: None,
) -> Counter[str]:
    """Send the scenario's records to the pipeline's topics; counts by channel."""
    topics = {
        Channel.READINGS: settings.readings_topic,
        Channel.VOC: settings.voc_topic,
        Channel.PRODUCTION: settings.production_topic,
    }
    produced: Counter[str] = Counter()
    span = (scenario.end - scenario.config.start).total_seconds()
    with KafkaRecordSink(settings.kafka_bootstrap, topics) as sink:
        for record in Simulation(scenario.plan).records():
            sink.send(record)
            produced[record.channel.value] += 1
            if produced.total() % 5000 == 0:
                on_progress((record.emit_at - scenario.config.start).total_seconds() / span)
    return produced


async def _count(conn: psycopg.AsyncConnection[TupleRow], sql: str) -> int:
    try:
        cur = await conn.execute(sql)
        row = await cur.fetchone()
        return int(row[0]) if row else 0
    except psycopg.errors.UndefinedTable:
        return 0  # not migrated yet


async def pipeline_progress(conn: psycopg.AsyncConnection[TupleRow]) -> DemoProgress:
    return DemoProgress(
        readings=await _count(conn, "SELECT count(*) FROM meter_readings"),
        voc_samples=await _count(conn, "SELECT count(*) FROM voc_samples"),
        reports=await _count(conn, "SELECT count(*) FROM product_output_reports"),
        dirty=await _count(conn, "SELECT count(*) FROM alert_dirty"),
        unpublished=await _count(
            conn, "SELECT count(*) FROM alert_history WHERE published_at IS NULL"
        ),
        events=await _count(conn, "SELECT count(*) FROM alert_history"),
        notifications=await _count(conn, "SELECT count(*) FROM alert_notifications"),
    )


async def alert_history(settings: Settings) -> list[AlertEvent]:
    async with await psycopg.AsyncConnection.connect(
        settings.database_url.get_secret_value()
    ) as conn:
        cur = await conn.execute("SELECT payload FROM alert_history ORDER BY emitted_at, event_id")
        rows = await cur.fetchall()
    return [AlertEvent.model_validate(row[0]) for row in rows]
