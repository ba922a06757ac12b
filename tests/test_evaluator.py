"""The alert evaluator against real TimescaleDB and Kafka: dirty marks wake it, its passes
record history and the ``alerts`` rows, commands steer the lifecycle, the outbox publishes each
deliverable event once across restarts, and only one evaluator leads at a time.

Times: the test clock starts at ``T0``; a condition "at t" is dated ``T0 + t`` minutes.
"""

import asyncio
import contextlib
import math
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg.types.json import Jsonb

from alerts.evaluator import Evaluator, create_evaluator
from alerts.events import to_alert_event
from alerts.lifecycle import AlertLifecycle, LifecycleConfig, LifecycleEvent
from alerts.metrics import EvaluatorMetrics
from alerts.rules.condition import Condition, Severity
from contracts.alert_commands import (
    Acknowledge,
    AddSilence,
    DeclareEmergency,
    RemoveSilence,
)
from contracts.alert_events import AlertKind, AlertSeverity, decode_alert
from energywatch.service_process import ServiceProcess
from energywatch.settings import Settings
from storage import alert_store
from storage.alert_dirty import Dirty, mark_dirty
from tests.conftest import free_port, wait_until
from tests.pipeline import metric_value, read_topic

services = pytest.mark.services

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
UNIT = "91350100M000100Y43"
OTHER_UNIT = "91350100M000200Y1H"
REGION = "350102"
RULE = "voc-hourly.a24088"
MONITOR = "YCVOC0001"


def minutes(t: float) -> datetime:
    return T0 + timedelta(minutes=t)


def voc(t: float, value: float, code: str = UNIT, subject: str = MONITOR) -> Condition:
    """A VOC-like verdict: warning above 10 mg/m3, critical above 20."""
    if value > 20:
        severity, line = Severity.CRITICAL, 20.0
    elif value > 10:
        severity, line = Severity.WARNING, 10.0
    else:
        severity, line = None, 10.0
    return Condition(
        rule_id=RULE,
        subject=subject,
        at=minutes(t),
        severity=severity,
        value=value,
        threshold=line,
        unit="mg/m3",
        message=f"{value} mg/m3 against {line}",
        enterprise_code=code,
    )


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class ScriptedInputs:
    """A test-local stand-in for ``alerts.sources.RuleInputs`` (a sibling module, not a
    service): answers each dirty unit with the verdicts the test has set for it."""

    verdicts: dict[str, list[Condition]]
    emergencies: dict[str, str | None] = field(default_factory=dict)
    dirty_seen: list[Dirty] = field(default_factory=list)

    async def on_dirty(self, conn, dirty: Sequence[Dirty], now: datetime) -> list[Condition]:
        self.dirty_seen += dirty
        return [c for d in dirty for c in self.verdicts.get(d.enterprise_code, [])]

    async def on_tick(self, conn, now: datetime) -> list[Condition]:
        return []

    def declare_emergency(self, command: DeclareEmergency) -> None:
        if command.city == "nowhere":
            raise ValueError("no plan for city nowhere")
        self.emergencies[command.city] = command.level

    def snapshot(self) -> dict[str, Any]:
        return {"emergencies": dict(sorted(self.emergencies.items()))}


@dataclass
class Harness:
    """One evaluator wired to a test's database and topics, with what it was built from."""

    evaluator: Evaluator
    registry: CollectorRegistry
    inputs: list[ScriptedInputs]  # every RuleInputs the evaluator loaded, latest last

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


def harness(settings: Settings, verdicts: dict[str, list[Condition]], clock: Clock) -> Harness:
    registry = CollectorRegistry()
    loaded: list[ScriptedInputs] = []

    def load(snapshot: Mapping[str, Any] | None) -> ScriptedInputs:
        inputs = ScriptedInputs(verdicts, dict((snapshot or {}).get("emergencies", {})))
        loaded.append(inputs)
        return inputs

    evaluator = Evaluator(
        settings, EvaluatorMetrics.create(registry), load, lambda event: REGION, clock=clock
    )
    return Harness(evaluator, registry, loaded)


@pytest.fixture
def settings(pipeline_settings: Settings) -> Settings:
    # sweeps an hour apart: within a test, only notifications start passes
    return pipeline_settings.model_copy(update={"evaluator_sweep_seconds": 3600.0})


async def eventually(
    check: Callable[[], Awaitable[Any]], within: float = 15.0, what: str = "condition"
) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(h: Harness) -> AsyncIterator[None]:
    """The evaluator's service loop as a task, leading and past its first (catch-up) pass."""
    task = asyncio.create_task(h.evaluator.run())
    try:
        await eventually(
            _true(lambda: h.metric("energywatch_evaluator_passes_total", trigger="sweep") >= 1),
            what="the evaluator to lead and sweep once",
        )
        yield
    finally:
        h.evaluator.stop()
        await asyncio.wait_for(task, 30)


def _true(predicate: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return predicate()

    return check


async def judged(h: Harness, marks: int) -> None:
    """Wait until the rule inputs have been asked about ``marks`` dirty marks in all."""
    await eventually(
        _true(lambda: len(h.inputs[-1].dirty_seen) >= marks), what=f"{marks} judged marks"
    )


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await psycopg.AsyncConnection.connect(
        settings.database_url.get_secret_value(), autocommit=True
    )
    try:
        yield conn
    finally:
        await conn.close()


async def mark(db: psycopg.AsyncConnection[Any], *codes: str) -> None:
    """What a stream batch does: mark units dirty (and NOTIFY) in its transaction."""
    async with db.transaction():
        await mark_dirty(db.cursor(), "voc", {code: T0 for code in codes})


async def command(db: psycopg.AsyncConnection[Any], cmd: alert_store.Command) -> int:
    """What the Alerts API does: queue a command (and NOTIFY)."""
    async with db.transaction():
        return await alert_store.queue_command(db.cursor(), cmd, "tester")


async def rows(db: psycopg.AsyncConnection[Any], query: str, *params: Any) -> list[tuple[Any, ...]]:
    cur = await db.execute(query, params)
    return await cur.fetchall()


async def history(db: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
    """(kind, severity, deliver, suppressed_by, region, published) per event, in order."""
    return await rows(
        db,
        "SELECT kind, severity, deliver, payload->>'suppressed_by', region_code, "
        "published_at IS NOT NULL FROM alert_history ORDER BY emitted_at, at, "
        "array_position(ARRAY['fired','escalated','repeated','acknowledged','silenced',"
        "'resolved'], kind)",
    )


async def alert_row(db: psycopg.AsyncConnection[Any]) -> tuple[Any, ...]:
    (row,) = await rows(
        db,
        "SELECT status, severity, region_code, resolved_at, acknowledged_by, ack_comment, "
        "ack_expires_at, latest->>'kind' FROM alerts",
    )
    return row


def topic_events(settings: Settings, expected: int, timeout_s: float = 20):
    return [
        (record.key, decode_alert(record.value))
        for record in read_topic(settings, settings.alerts_topic, expected, timeout_s)
    ]


# -- the mapping to the contract (pure) ---------------------------------------------------


def test_lifecycle_events_become_contract_events_with_severity_kind_and_ack_by_value():
    lifecycle = AlertLifecycle(LifecycleConfig())
    events = lifecycle.observe([voc(0, 15)], minutes(0))
    events += lifecycle.observe([voc(10, 25)], minutes(10))
    events += lifecycle.acknowledge(
        events[0].alert_id, "duty", "looking", minutes(120), minutes(11)
    )
    events += lifecycle.observe([voc(20, 1)], minutes(20))

    mapped = [to_alert_event(event, REGION) for event in events]

    assert [e.kind for e in mapped] == [
        AlertKind.FIRED,
        AlertKind.ESCALATED,
        AlertKind.ACKNOWLEDGED,
        AlertKind.RESOLVED,
    ]
    assert [e.severity for e in mapped] == [
        AlertSeverity.WARNING,
        AlertSeverity.CRITICAL,
        AlertSeverity.CRITICAL,
        AlertSeverity.CRITICAL,
    ]
    assert mapped[1].previous_severity is AlertSeverity.WARNING
    assert mapped[2].acknowledgement.user == "duty"
    assert mapped[2].acknowledgement.expires_at == minutes(120)
    assert {e.region_code for e in mapped} == {REGION}
    assert {e.event_id for e in mapped} == {e.event_id for e in events}
    assert mapped[0].partition_key == UNIT.encode()


@pytest.mark.parametrize("severity", list(Severity))
def test_every_rule_severity_has_the_contract_severity_of_the_same_value(severity):
    (event,) = AlertLifecycle(LifecycleConfig()).observe(
        [replace(voc(0, 15), severity=severity)], minutes(0)
    )
    assert to_alert_event(event, None).severity.value == severity.value


def test_an_event_without_words_or_with_a_non_number_still_makes_a_valid_contract_event():
    (event,) = AlertLifecycle(LifecycleConfig()).observe(
        [replace(voc(0, 15), message="", value=math.nan)], minutes(0)
    )
    regional: LifecycleEvent = replace(event, enterprise_code=None)

    alert = to_alert_event(regional, REGION)

    assert alert.message == f"{RULE}: fired for {MONITOR}"
    assert alert.value is None
    assert alert.partition_key == REGION.encode()


# -- the service against the real database and Kafka --------------------------------------


@services
def test_a_dirty_mark_wakes_the_evaluator_within_a_second_and_records_the_fired_alert(settings):
    h = harness(settings, {UNIT: [voc(0, 15)]}, Clock())

    async def scenario():
        async with running(h), database(settings) as db:
            loop = asyncio.get_running_loop()
            await mark(db, UNIT)
            marked = loop.time()
            await eventually(lambda: history(db), within=5, what="the fired event")
            elapsed = loop.time() - marked
            await eventually(
                _true(lambda: h.metric("energywatch_evaluator_events_published_total") == 1),
                what="the event to be published",
            )
            return elapsed, await history(db), await alert_row(db)

    elapsed, events, alert = asyncio.run(scenario())

    assert elapsed < 1.0
    assert events == [("fired", "warning", True, None, REGION, True)]
    assert alert[:3] == ("firing", "warning", REGION)
    assert h.metric("energywatch_evaluator_passes_total", trigger="notify") >= 1
    assert h.metric("energywatch_evaluator_events_total", kind="fired") == 1
    assert h.metric("energywatch_evaluator_conditions_total") == 1
    ((key, event),) = topic_events(settings, 1)
    assert key == UNIT.encode()
    assert (event.kind, event.region_code, event.subject) == (AlertKind.FIRED, REGION, MONITOR)


@services
def test_the_same_conditions_judged_again_record_no_duplicate_events(settings):
    verdicts = {UNIT: [voc(0, 15)]}
    clock = Clock()
    h = harness(settings, verdicts, clock)

    async def scenario():
        async with running(h), database(settings) as db:
            await mark(db, UNIT)
            await eventually(lambda: history(db), what="the fired event")
            await mark(db, UNIT)  # the same verdict again, redelivered say
            await judged(h, 2)
            clock.now = minutes(15)
            verdicts[UNIT] = [voc(15, 16)]  # still a warning, a quarter of an hour on
            await mark(db, UNIT)
            await eventually(
                _true(lambda: len(h.inputs[-1].dirty_seen) == 3), what="three judged marks"
            )
            return await history(db), await rows(db, "SELECT count(*) FROM alerts")

    events, alert_count = asyncio.run(scenario())

    assert events == [("fired", "warning", True, None, REGION, True)]
    assert alert_count == [(1,)]
    assert h.metric("energywatch_evaluator_events_total", kind="fired") == 1
    assert h.metric("energywatch_evaluator_conditions_total") == 3


@services
def test_an_acknowledge_command_is_applied_and_shows_on_the_alert(settings):
    clock = Clock()
    h = harness(settings, {UNIT: [voc(0, 15)]}, clock)

    async def scenario():
        async with running(h), database(settings) as db:
            await mark(db, UNIT)
            await eventually(lambda: history(db), what="the fired event")
            alert_id = h.evaluator.lifecycle.alerts()[0].alert_id
            clock.now = minutes(5)
            command_id = await command(
                db,
                Acknowledge(
                    alert_id=alert_id,
                    user="duty-officer",
                    comment="on it",
                    expires_at=minutes(120),
                ),
            )
            await eventually(
                lambda: rows(
                    db,
                    "SELECT applied_at, error FROM alert_commands "
                    "WHERE command_id = %s AND applied_at IS NOT NULL",
                    command_id,
                ),
                what="the command to be applied",
            )
            return (
                await rows(db, "SELECT error FROM alert_commands"),
                await history(db),
                await alert_row(db),
            )

    errors, events, alert = asyncio.run(scenario())

    assert errors == [(None,)]
    assert [e[0] for e in events] == ["fired", "acknowledged"]
    status, _, _, _, acked_by, comment, expires, latest = alert
    assert (status, acked_by, comment, expires, latest) == (
        "firing",
        "duty-officer",
        "on it",
        minutes(120),
        "acknowledged",
    )
    assert h.metric("energywatch_evaluator_commands_applied_total", kind="acknowledge") == 1
    assert h.evaluator.lifecycle.alerts()[0].ack.user == "duty-officer"


@services
def test_a_silence_command_records_but_does_not_deliver_what_it_covers(settings):
    verdicts = {UNIT: [voc(0, 15)]}
    clock = Clock()
    h = harness(settings, verdicts, clock)

    async def scenario():
        async with running(h), database(settings) as db:
            await mark(db, UNIT)
            await eventually(lambda: history(db), what="the fired event")
            await command(
                db,
                AddSilence(
                    silence_id="night-works",
                    rule="voc-hourly.*",
                    starts_at=T0,
                    ends_at=T0 + timedelta(days=1),
                    created_by="operator",
                    comment="stack cleaning",
                ),
            )
            await eventually(
                _true(
                    lambda: (
                        h.metric("energywatch_evaluator_commands_applied_total", kind="silence")
                        == 1
                    )
                ),
                what="the silence",
            )
            clock.now = minutes(60)
            verdicts[UNIT] = [voc(60, 25)]  # worse: an escalation, under the silence
            await mark(db, UNIT)
            await eventually(
                _true(lambda: h.metric("energywatch_evaluator_events_total", kind="escalated") > 0),
                what="the escalation",
            )
            return (
                await history(db),
                await rows(db, "SELECT silence_id, rule, removed_at FROM alert_silences"),
                await alert_row(db),
            )

    events, silences, alert = asyncio.run(scenario())

    assert events == [
        ("fired", "warning", True, None, REGION, True),
        ("silenced", "warning", False, "night-works", REGION, True),
        ("escalated", "critical", False, "night-works", REGION, True),
    ]
    assert silences == [("night-works", "voc-hourly.*", None)]
    assert alert[1] == "critical"
    published = topic_events(settings, 3, timeout_s=5)
    assert [event.kind for _, event in published] == [AlertKind.FIRED]


@services
def test_a_condition_that_clears_resolves_the_alert_and_both_events_are_delivered(settings):
    verdicts = {UNIT: [voc(0, 15)]}
    clock = Clock()
    h = harness(settings, verdicts, clock)

    async def scenario():
        async with running(h), database(settings) as db:
            await mark(db, UNIT)
            await eventually(lambda: history(db), what="the fired event")
            clock.now = minutes(60)
            verdicts[UNIT] = [voc(60, 4)]
            await mark(db, UNIT)
            await eventually(
                _true(lambda: h.metric("energywatch_evaluator_events_published_total") == 2),
                what="the resolve to be published",
            )
            return await history(db), await alert_row(db)

    events, alert = asyncio.run(scenario())

    assert [(kind, deliver) for kind, _, deliver, *_ in events] == [
        ("fired", True),
        ("resolved", True),
    ]
    status, _, _, resolved_at, *_ = alert
    assert (status, resolved_at) == ("resolved", minutes(60))
    assert h.evaluator.lifecycle.alerts() == []
    assert [event.kind for _, event in topic_events(settings, 2)] == [
        AlertKind.FIRED,
        AlertKind.RESOLVED,
    ]


@services
def test_each_event_reaches_the_topic_exactly_once_across_a_crash_between_commit_and_publish(
    settings,
):
    verdicts = {UNIT: [voc(0, 15)], OTHER_UNIT: [voc(0, 12, code=OTHER_UNIT, subject="M2")]}
    clock = Clock()
    first = harness(settings, verdicts, clock)

    async def before_the_crash():
        async with first.evaluator.leading(), database(settings) as db:
            await command(db, DeclareEmergency(city="yuncheng", level="orange", at=T0))
            await mark(db, UNIT)
            await first.evaluator.evaluate()
            assert await first.evaluator.publish_pending() == 1  # the fired event
            clock.now = minutes(30)
            verdicts[UNIT] = [voc(30, 25)]
            await mark(db, UNIT, OTHER_UNIT)
            recorded = await first.evaluator.evaluate()
            # ...and the process dies here: committed, not published
            assert {e.kind for e in recorded} == {AlertKind.ESCALATED, AlertKind.FIRED}
            return first.evaluator.lifecycle.snapshot()

    second = harness(settings, verdicts, clock)

    async def after_the_restart():
        async with database(settings) as db:
            unpublished = await rows(
                db, "SELECT count(*) FROM alert_history WHERE published_at IS NULL"
            )
            async with running(second):
                restored = second.evaluator.lifecycle.snapshot()
                await eventually(
                    lambda: rows(
                        db,
                        "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM alert_history "
                        "WHERE published_at IS NULL)",
                    ),
                    what="the pending events to be published",
                )
                await mark(db, UNIT, OTHER_UNIT)  # the same verdicts again
                await eventually(
                    _true(lambda: len(second.inputs[-1].dirty_seen) == 2),
                    what="the marks to be judged",
                )
                ids = await rows(db, "SELECT event_id FROM alert_history WHERE deliver")
            return unpublished, restored, second.inputs[-1].emergencies, ids

    before = asyncio.run(before_the_crash())
    unpublished, restored, emergencies, ids = asyncio.run(after_the_restart())

    assert unpublished == [(2,)]
    assert restored == before
    assert emergencies == {"yuncheng": "orange"}
    assert second.metric("energywatch_evaluator_events_published_total") == 2
    assert second.metric("energywatch_evaluator_events_total", kind="fired") == 0
    published = Counter(event.event_id for _, event in topic_events(settings, 10, timeout_s=5))
    assert set(published) == {event_id for (event_id,) in ids}
    assert len(ids) == 3
    assert set(published.values()) == {1}


@services
def test_a_second_evaluator_waits_for_the_leader_lock_and_takes_over_when_the_leader_dies(
    settings,
):
    verdicts = {UNIT: [voc(0, 15)], OTHER_UNIT: [voc(0, 12, code=OTHER_UNIT, subject="M2")]}
    clock = Clock()
    leader = harness(settings, verdicts, clock)
    follower = harness(settings, verdicts, clock)

    async def scenario():
        async with running(leader), database(settings) as db:
            waiting = asyncio.create_task(follower.evaluator.run())
            try:
                await asyncio.sleep(1.0)
                assert follower.metric("energywatch_evaluator_leader") == 0
                await mark(db, UNIT)
                await eventually(lambda: history(db), what="the leader's pass")
                await asyncio.sleep(0.3)
                assert follower.metric("energywatch_evaluator_passes_total", trigger="sweep") == 0
                # the leader's session dies (as when its process is killed)
                await db.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND objid = %s AND granted",
                    (alert_store.LEADER_LOCK,),
                )
                await eventually(
                    _true(lambda: follower.metric("energywatch_evaluator_leader") == 1),
                    what="the follower to take over",
                )
                await mark(db, OTHER_UNIT)
                await eventually(
                    _true(
                        lambda: (
                            follower.metric("energywatch_evaluator_events_total", kind="fired") == 1
                        )
                    ),
                    what="the new leader's pass",
                )
                return (
                    leader.metric("energywatch_evaluator_leader"),
                    [e[0] for e in await history(db)],
                )
            finally:
                follower.evaluator.stop()
                await asyncio.wait_for(waiting, 30)

    old_leader_leads, kinds = asyncio.run(scenario())

    assert old_leader_leads == 0
    assert kinds == ["fired", "fired"]
    # the new leader continued from the old one's state: the first alert is still firing
    assert {a.subject for a in follower.evaluator.lifecycle.alerts()} == {MONITOR, "M2"}


@services
def test_malformed_commands_get_an_error_and_the_loop_goes_on(settings):
    h = harness(settings, {UNIT: [voc(0, 15)]}, Clock())
    bad = [
        ("acknowledge", {"alert_id": "not hex!", "user": ""}),
        ("acknowledge", {"alert_id": "ab" * 16, "user": "u", "expires_at": "2026-03-02T10:00:00Z"}),
        (
            "silence",
            {
                "silence_id": "backwards",
                "starts_at": "2026-03-02T10:00:00Z",
                "ends_at": "2026-03-02T09:00:00Z",
                "created_by": "operator",
            },
        ),
        ("emergency", {"city": "nowhere", "level": "red", "at": "2026-03-02T08:00:00Z"}),
        ("unsilence", ["not", "an", "object"]),
        ("unsilence", {"kind": "silence", "silence_id": "x"}),
    ]

    async def scenario():
        async with running(h), database(settings) as db:
            for kind, payload in bad:
                await db.execute(
                    "INSERT INTO alert_commands (kind, payload, requested_by) "
                    "VALUES (%s, %s, 'tester')",
                    (kind, Jsonb(payload)),
                )
            good = await command(db, RemoveSilence(silence_id="nothing-to-remove"))
            await eventually(
                lambda: rows(
                    db,
                    "SELECT 1 FROM alert_commands WHERE command_id = %s AND applied_at IS NOT NULL",
                    good,
                ),
                what="the commands to be dealt with",
            )
            await mark(db, UNIT)
            await eventually(lambda: history(db), what="a pass after the bad commands")
            return (
                await rows(
                    db,
                    "SELECT kind, applied_at IS NOT NULL, error FROM alert_commands "
                    "ORDER BY command_id",
                ),
                await rows(db, "SELECT count(*) FROM alert_silences"),
            )

    outcomes, silences = asyncio.run(scenario())

    assert all(applied for _, applied, _ in outcomes)
    errors = [error for _, _, error in outcomes]
    assert errors[-1] is None
    assert all(errors[:-1]), errors
    assert "alert_id" in errors[0]
    assert "user" in errors[0]
    assert errors[1] == f"no firing alert {'ab' * 16}"
    assert "ends before it starts" in errors[2]
    assert "nowhere" in errors[3]
    assert silences == [(0,)]  # nothing recorded of the refused silence
    assert h.metric("energywatch_evaluator_commands_failed_total", kind="acknowledge") == 2
    assert h.metric("energywatch_evaluator_commands_applied_total", kind="unsilence") == 1
    assert h.metric("energywatch_evaluator_pass_failures_total") == 0


@services
def test_the_real_rule_inputs_take_declarations_and_resume_them_after_a_restart(settings):
    """``alerts.sources.RuleInputs`` wired by ``create_evaluator`` (no register: an empty
    one): its queries run on an empty database, declarations go into its snapshot, and a
    restarted evaluator continues from it (an older declaration is refused as out of order)."""
    clock = Clock()

    def build() -> Harness:
        registry = CollectorRegistry()
        evaluator = create_evaluator(settings, EvaluatorMetrics.create(registry), clock=clock)
        return Harness(evaluator, registry, [])

    first, second = build(), build()

    async def scenario():
        async with database(settings) as db:
            async with running(first):
                declared = await command(
                    db,
                    DeclareEmergency(city="yuncheng", level="orange", at=T0, lead_time_hours=2),
                )
                await mark(db, UNIT)
                await eventually(
                    lambda: rows(
                        db,
                        "SELECT 1 FROM alert_commands WHERE command_id = %s "
                        "AND applied_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM alert_dirty)",
                        declared,
                    ),
                    what="the declaration and the mark to be dealt with",
                )
                (snapshot,) = await rows(
                    db, "SELECT snapshot FROM alert_lifecycle_state WHERE name = 'rule_inputs'"
                )
            async with running(second):
                stale = await command(
                    db,
                    DeclareEmergency(city="yuncheng", level="red", at=T0 - timedelta(hours=1)),
                )
                await eventually(
                    lambda: rows(
                        db,
                        "SELECT 1 FROM alert_commands WHERE command_id = %s "
                        "AND applied_at IS NOT NULL",
                        stale,
                    ),
                    what="the stale declaration to be dealt with",
                )
            return snapshot[0], await rows(
                db, "SELECT kind, error FROM alert_commands ORDER BY command_id"
            )

    snapshot, outcomes = asyncio.run(scenario())

    (declaration,) = snapshot["heavy_pollution"]["declarations"]
    assert (declaration["city"], declaration["level"]) == ("yuncheng", "orange")
    assert declaration["lead_seconds"] == 7200
    assert outcomes[0] == ("emergency", None)
    assert "declarations come in order" in outcomes[1][1]
    assert first.metric("energywatch_evaluator_passes_total", trigger="notify") >= 1
    assert first.metric("energywatch_evaluator_pass_failures_total") == 0


@services
def test_killed_evaluator_process_is_replaced_by_the_one_waiting_for_the_lock(settings, tmp_path):
    """``energywatch alerts evaluate`` twice: the second waits; SIGKILL the first and the
    second leads; SIGTERM stops it cleanly."""
    ports = [free_port(), free_port()]
    processes = [
        ServiceProcess(
            ["alerts", "evaluate"],
            {
                **settings.as_env(),
                "EW_EVALUATOR_METRICS_PORT": str(port),
                "EW_PROMETHEUS_TARGETS_DIR": str(tmp_path),  # not the local Prometheus's
            },
            tmp_path / f"evaluator-{n}.log",
        )
        for n, port in enumerate(ports)
    ]

    def leads(n: int) -> bool:
        try:
            return metric_value(ports[n], "energywatch_evaluator_leader") == 1
        except OSError:
            return False

    first, second = processes
    try:
        first.start()
        wait_until(lambda: leads(0), 30, what="the first evaluator to lead")
        second.start()
        wait_until(
            lambda: "waiting for the leader lock" in second.log_tail(),
            30,
            what="the second evaluator to wait",
        )
        assert not leads(1)
        first.kill()
        wait_until(lambda: leads(1), 15, what="the second evaluator to take over")
        assert second.stop() == 0, second.log_tail()
    finally:
        for process in processes:
            process.kill()
