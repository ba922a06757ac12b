"""The pieces of a demo run that the main job and the end-to-end test share: a scenario's
register, plans and recipients (and their amended revisions), the operator's commands
(emergency declarations, acknowledgements), producing the scenario into Kafka in two parts
around the operators' moment, and reading back what the pipeline made of it, per rule.

A demo runs like this: everything up to the scenario's ``operator.at`` is produced and
judged; the operators acknowledge every alert then firing through the Alerts API's command
path (``storage.alert_store.queue_command``), so the acknowledgement is told like any event;
the amended register and plans are written and the evaluator restarted to read them (an
amendment takes effect as any change of those files does); then the rest is produced. Each
expected alert has then fired, been told to its unit and the city's office, acknowledged and
resolved, once (``lifecycle_report``).
"""

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import psycopg
import yaml
from psycopg.rows import TupleRow

from alerts.webhook_receiver import WebhookReceiver
from contracts.alert_commands import Acknowledge, DeclareEmergency
from contracts.alert_events import AlertEvent, AlertKind
from energywatch.settings import Settings
from plans.register import EnergyBudget, Register
from plans.targets import (
    CITY_PLANS_DIR,
    CityPlan,
    ConsumptionCap,
    PlanPeriod,
    dump_city_plan,
    load_city_plans,
)
from simulators.credentials import register_for_fleet
from simulators.fleet import Enterprise
from simulators.kafka_sink import KafkaRecordSink
from simulators.outcomes import OutcomeCheck, check_outcomes, resolve_subject
from simulators.records import Channel, SimRecord
from simulators.runner import Simulation
from simulators.scenario import (
    BudgetAmendment,
    CapAmendment,
    HeavyPollutionAlert,
    Scenario,
    is_division,
)
from storage import alert_store
from storage.migrate import migrate
from storage.reference_data import sync_reference_data

SUPERVISOR_ID = "city-energy-office"
SUPERVISOR_PRINCIPAL: Final = f"supervisor:{SUPERVISOR_ID}"
#: Plan years the demo's copy of a seed plan covers: the seeds' plans end in 2025, the demo
#: runs in 2026 (the next five-year period, for which no seed exists).
_DEMO_PERIOD_YEARS: Final = 5


@dataclass(frozen=True)
class DemoProgress:
    readings: int
    voc_samples: int
    reports: int
    dirty: int
    unpublished: int
    events: int
    notifications: int


def scenario_register(scenario: Scenario, amended: bool = False) -> Register:
    """The register of the scenario's fleet and monitors, with budgets for its years; with
    ``amended``, its next revision: the operator's budget amendments applied."""
    years = range(scenario.config.start.year, scenario.end.year + 1)
    register = register_for_fleet(scenario.fleet, scenario.plan.voc_monitors, years)
    if not amended or scenario.config.operator is None:
        return register
    factors = {
        (scenario.fleet.enterprise(a.enterprise).code, a.year): a
        for a in scenario.config.operator.amendments
        if isinstance(a, BudgetAmendment)
    }
    enterprises = []
    for entry in register.enterprises:
        budgets = []
        for budget in entry.energy_budgets:
            amendment = factors.get((entry.code, budget.year))
            if amendment is not None:
                budget = EnergyBudget(
                    year=budget.year,
                    budget_tce=round(budget.budget_tce * amendment.factor, 1),
                    source=f"{budget.source}; amended x{amendment.factor}: {amendment.reason}",
                )
            budgets.append(budget)
        enterprises.append(entry.model_copy(update={"energy_budgets": tuple(budgets)}))
    return register.model_copy(
        update={"name": f"{register.name} (amended)", "enterprises": tuple(enterprises)}
    )


def scenario_plans(scenario: Scenario, amended: bool = False) -> list[CityPlan]:
    """The seed plans as the scenario runs them: the plan of each city with a county cap in
    ``county_caps`` carried into the scenario's five-year period with those caps (simulated
    data, so labelled in each cap's source and the plan's title); with ``amended``, the next
    revision, the operator's cap amendments applied. Other plans as the seeds give them."""
    plans = load_city_plans(CITY_PLANS_DIR)
    caps = scenario.config.county_caps
    if not caps:
        return list(plans.values())
    factors: dict[tuple[str, int], CapAmendment] = {}
    if amended and scenario.config.operator is not None:
        factors = {
            (a.county, a.year): a
            for a in scenario.config.operator.amendments
            if isinstance(a, CapAmendment)
        }
    first = min(cap.year for cap in caps)
    by_city: dict[str, list[ConsumptionCap]] = {}
    for cap in caps:
        amendment = factors.get((cap.county, cap.year))
        tce, source = cap.cap_tce, cap.source
        if amendment is not None:
            tce, source = round(tce * amendment.factor, 1), f"{source}; {amendment.reason}"
        city = next(p.city.id for p in plans.values() if cap.county in _counties(p))
        by_city.setdefault(city, []).append(
            ConsumptionCap(year=cap.year, county=cap.county, cap_tce=tce, source=source)
        )
    result = []
    for city, plan in plans.items():
        if city in by_city:
            total = plan.targets.total_consumption.model_copy(update={"caps": tuple(by_city[city])})
            plan = plan.model_copy(
                update={
                    "revision": plan.revision + (1 if factors else 0),
                    "document": plan.document.model_copy(
                        update={"title": f"{plan.document.title} (demo: SIMULATED caps)"}
                    ),
                    "period": PlanPeriod(
                        base_year=first - 1,
                        first_year=first,
                        last_year=first + _DEMO_PERIOD_YEARS - 1,
                    ),
                    "targets": plan.targets.model_copy(update={"total_consumption": total}),
                }
            )
        result.append(plan)
    return result


def _counties(plan: CityPlan) -> set[str]:
    return {county.division for county in plan.counties}


def write_rule_files(directory: Path, scenario: Scenario, amended: bool = False) -> dict[str, str]:
    """Write the register and plans the evaluator reads (their amended revisions with
    ``amended``) under ``directory``; the environment that names them."""
    name = "amended" if amended else "initial"
    plans_dir = directory / f"plans-{name}"
    plans_dir.mkdir(parents=True, exist_ok=True)
    for plan in scenario_plans(scenario, amended):
        (plans_dir / f"{plan.city.id}.yaml").write_text(dump_city_plan(plan), encoding="utf-8")
    register = directory / f"register-{name}.yaml"
    register.write_text(
        yaml.safe_dump(
            scenario_register(scenario, amended).model_dump(mode="json"),
            allow_unicode=True,
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    return {"EW_REGISTER_PATH": str(register), "EW_PLANS_DIR": str(plans_dir)}


async def sync_reference(
    settings: Settings, scenario: Scenario, amended: bool = False
) -> dict[str, int]:
    """Fill the dashboards' reference tables from the register and plans the evaluator reads
    (their amended revisions with ``amended``); the rows written per table."""
    return await sync_reference_data(
        settings.database_url.get_secret_value(),
        scenario_register(scenario, amended),
        {plan.city.id: plan for plan in scenario_plans(scenario, amended)},
        now=datetime.now(UTC),
    )


def told_enterprises(scenario: Scenario) -> list[Enterprise]:
    """The enterprises the scenario expects an alert about (of a unit, its meter or its VOC
    monitor), in the order first named: each gets a webhook of its own in a demo."""
    monitors = {m.monitor_id: m.enterprise_code for m in scenario.plan.voc_monitors}
    by_code = {e.code: e for e in scenario.fleet.enterprises}
    told: dict[str, Enterprise] = {}
    for expected in scenario.config.expected:
        if expected.outcome != "fires" or is_division(expected.subject):
            continue
        if expected.subject in monitors:
            enterprise = by_code[monitors[expected.subject]]
        else:
            enterprise = scenario.fleet.enterprise(expected.subject.split("/")[0])
        told.setdefault(enterprise.code, enterprise)
    return list(told.values())


def recipients_document(
    scenario: Scenario,
    supervisor: tuple[str, str],
    enterprises: Mapping[str, tuple[str, str]],
) -> dict[str, Any]:
    """A recipients file (as data): the scenario's city supervision office at the
    ``supervisor`` webhook (url, secret), and each enterprise in ``enterprises`` (credit
    code -> webhook) at its own."""
    city = scenario.fleet.enterprises[0].city
    by_code = {e.code: e for e in scenario.fleet.enterprises}

    def webhook(target: tuple[str, str]) -> dict[str, str]:
        return {"kind": "webhook", "url": target[0], "secret": target[1]}

    recipients: list[dict[str, Any]] = [
        {
            "kind": "supervisor",
            "id": SUPERVISOR_ID,
            "name": f"{city.code} energy-conservation supervision office",
            "region_code": city.division,
            "channels": [webhook(supervisor)],
        }
    ]
    for code, target in enterprises.items():
        enterprise = by_code[code]
        recipients.append(
            {
                "kind": "enterprise",
                "id": enterprise.id,
                "name": enterprise.name,
                "enterprise_code": code,
                "channels": [webhook(target)],
            }
        )
    return {
        "version": 1,
        "default_rate_limit": {"max_messages": 1000, "per_seconds": 60},
        "recipients": recipients,
    }


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


class ScenarioFeed:
    """The scenario's records, sent to the pipeline's topics in parts: ``send(until)`` sends
    those emitted before ``until`` (None: all that are left). ``produced`` counts by channel."""

    def __init__(self, settings: Settings, scenario: Scenario) -> None:
        self._settings = settings
        self._scenario = scenario
        self._records: Iterator[SimRecord] = Simulation(scenario.plan).records()
        self._held: SimRecord | None = None
        self.produced: Counter[str] = Counter()

    def send(
        self,
        until: datetime | None = None,
        on_progress: Callable[[float], None] = lambda _fraction: None,
    ) -> Counter[str]:
        """Send the next part; what it sent, by channel."""
        settings, scenario = self._settings, self._scenario
        topics = {
            Channel.READINGS: settings.readings_topic,
            Channel.VOC: settings.voc_topic,
            Channel.PRODUCTION: settings.production_topic,
        }
        sent: Counter[str] = Counter()
        span = (scenario.end - scenario.config.start).total_seconds()
        with KafkaRecordSink(settings.kafka_bootstrap, topics) as sink:
            while True:
                record = self._held if self._held is not None else next(self._records, None)
                self._held = None
                if record is None:
                    break
                if until is not None and record.emit_at >= until:
                    self._held = record
                    break
                sink.send(record)
                sent[record.channel.value] += 1
                if sent.total() % 5000 == 0:
                    on_progress((record.emit_at - scenario.config.start).total_seconds() / span)
        self.produced.update(sent)
        return sent


def produce(
    settings: Settings,
    scenario: Scenario,
    on_progress: Callable[[float], None] = lambda _fraction: None,
) -> Counter[str]:
    """Send all the scenario's records to the pipeline's topics; counts by channel."""
    return ScenarioFeed(settings, scenario).send(None, on_progress)


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


#: Within one pass (one ``emitted_at``) an alert's events happened in this order.
_KIND_ORDER: Final = {
    kind: i
    for i, kind in enumerate(
        (
            AlertKind.FIRED,
            AlertKind.ESCALATED,
            AlertKind.REPEATED,
            AlertKind.ACKNOWLEDGED,
            AlertKind.SILENCED,
            AlertKind.RESOLVED,
        )
    )
}


async def alert_history(settings: Settings) -> list[AlertEvent]:
    """Every recorded alert event, in the order they happened: by pass (``emitted_at``), then
    event time, then kind (an alert that fired and resolved in one pass fired first)."""
    async with await psycopg.AsyncConnection.connect(
        settings.database_url.get_secret_value()
    ) as conn:
        cur = await conn.execute("SELECT payload FROM alert_history ORDER BY emitted_at, event_id")
        rows = await cur.fetchall()
    events = [AlertEvent.model_validate(row[0]) for row in rows]
    return sorted(events, key=lambda e: (e.emitted_at, e.at, _KIND_ORDER.get(e.kind, 9)))


# -- the operators' moment ------------------------------------------------------------------


def firing(events: Sequence[AlertEvent]) -> list[AlertEvent]:
    """The latest event of every alert that is firing after ``events`` (in history order)."""
    latest: dict[str, AlertEvent] = {}
    raised: set[str] = set()
    for event in events:
        latest[event.alert_id] = event
        if event.kind in (AlertKind.FIRED, AlertKind.ESCALATED):
            raised.add(event.alert_id)
    return [e for a, e in latest.items() if a in raised and e.kind is not AlertKind.RESOLVED]


def due_by_operator(scenario: Scenario, events: Sequence[AlertEvent]) -> list[str]:
    """The expected alerts that should fire before the operators act (their window ends by
    ``operator.at``) and are not firing yet, as ``rule subject``: a demo waits for none."""
    operator = scenario.config.operator
    if operator is None:
        return []
    live = {e.alert_id for e in firing(events)}
    missing = []
    for check in check_outcomes(scenario, events):
        expected = check.expected
        due = expected.outcome == "fires" and expected.before is not None
        if not due or expected.before is None or expected.before > operator.at:
            continue
        if check.alert_id is None or check.alert_id not in live:
            missing.append(f"{expected.rule} {expected.subject}")
    return missing


async def acknowledge(settings: Settings, alerts: Sequence[AlertEvent]) -> int:
    """Acknowledge each of ``alerts`` as the Alerts API does for its principal: a unit's
    energy manager its own, the city's supervision office a region's. Returns how many."""
    async with (
        await psycopg.AsyncConnection.connect(settings.database_url.get_secret_value()) as conn,
        conn.transaction(),
        conn.cursor() as cur,
    ):
        for alert in alerts:
            own = alert.enterprise_code is not None
            command = Acknowledge(
                alert_id=alert.alert_id,
                user="energy manager" if own else "duty officer",
                comment="taken in hand (demo)",
                expires_at=alert.emitted_at + timedelta(days=365),
            )
            principal = f"enterprise:{alert.enterprise_code}" if own else SUPERVISOR_PRINCIPAL
            await alert_store.queue_command(cur, command, principal)
    return len(alerts)


async def commands_pending(conn: psycopg.AsyncConnection[TupleRow]) -> int:
    """Operators' commands not yet applied (or refused) by the evaluator."""
    return await _count(conn, "SELECT count(*) FROM alert_commands WHERE applied_at IS NULL")


# -- what happened, per rule ----------------------------------------------------------------


@dataclass(frozen=True)
class RuleLifecycle:
    """What became of one expected alert: its check, and how often it fired, was
    acknowledged and resolved (across every alert of its rule and subject: once each, and
    not resolved at all where the scenario expects no resolution), whether each of
    its deliverable events reached the city's office exactly once and its unit's webhook
    exactly once (no other unit's), and ``problems`` in words (none: all as it should be)."""

    check: OutcomeCheck
    fired: int
    acknowledged: int
    resolved: int
    office_told: bool
    unit_told: bool | None  # None: no enterprise to tell (a regional alert)
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _deliveries(receiver: WebhookReceiver, event_id: str) -> int:
    return sum(1 for r in receiver.received if r.event.event_id == event_id)


def lifecycle_report(
    scenario: Scenario,
    events: Sequence[AlertEvent],
    supervisor: WebhookReceiver,
    enterprises: Mapping[str, WebhookReceiver],
) -> list[RuleLifecycle]:
    """Each expected firing's lifecycle (see ``RuleLifecycle``), in the scenario's order."""
    monitors = [m.monitor_id for m in scenario.plan.voc_monitors]
    report = []
    for check in check_outcomes(scenario, events):
        expected = check.expected
        if expected.outcome != "fires":
            continue
        subject = resolve_subject(scenario.fleet, monitors, expected.subject)
        mine = [
            e
            for e in events
            if (e.rule_id == expected.rule or e.rule_id.startswith(f"{expected.rule}."))
            and any(e.subject == i or e.subject.startswith(f"{i}.") for i in subject.ids)
        ]
        counts = Counter(e.kind for e in mine)
        problems = [] if check.met else [check.why]
        resolves = expected.resolved_after is not None
        for kind, name, once in (
            (AlertKind.FIRED, "fired", 1),
            (AlertKind.ACKNOWLEDGED, "acknowledged", 1),
            (AlertKind.RESOLVED, "resolved", 1 if resolves else 0),
        ):
            if counts[kind] != once:
                problems.append(f"{name} {counts[kind]} times")
        told = [e for e in mine if e.deliver]
        office = all(_deliveries(supervisor, e.event_id) == 1 for e in told)
        if not office:
            problems.append("the office was not told each event exactly once")
        unit_told: bool | None = None
        codes = {e.enterprise_code for e in mine} - {None}
        if codes:
            unit_told = all(
                _deliveries(receiver, e.event_id) == (1 if code == e.enterprise_code else 0)
                for e in told
                for code, receiver in enterprises.items()
            ) and bool(codes & set(enterprises))
            if not unit_told:
                problems.append("its unit was not told each event exactly once (or another was)")
        report.append(
            RuleLifecycle(
                check=check,
                fired=counts[AlertKind.FIRED],
                acknowledged=counts[AlertKind.ACKNOWLEDGED],
                resolved=counts[AlertKind.RESOLVED],
                office_told=office and bool(told),
                unit_told=unit_told,
                problems=tuple(problems),
            )
        )
    return report
