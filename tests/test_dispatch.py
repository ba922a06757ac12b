"""The notifier's decisions, without Kafka or a database: who is offered each event, what is
skipped and why, and a snapshot that resumes exactly (held events, pending releases, records
already taken)."""

from datetime import UTC, datetime, timedelta

from alerts.channels.targets import EmailTarget
from alerts.dispatch import Dispatcher, DispatchState, Skip
from alerts.rate_limit import RateLimit
from alerts.routing import EnterpriseRecipient, RoutingConfig, SupervisorRecipient
from contracts.alert_events import AlertEvent, AlertKind, AlertSeverity

T0 = datetime(2026, 11, 1, tzinfo=UTC)
STEEL = "9114088212JX9EJR64"  # county 140882
EMAIL = (EmailTarget(address="x@y.example"),)
ROUTING = RoutingConfig(
    default_rate_limit=RateLimit(max_messages=1, per_seconds=60),
    recipients=(
        EnterpriseRecipient(id="steel", name="steel", enterprise_code=STEEL, channels=EMAIL),
        SupervisorRecipient(id="county", name="county", region_code="140882", channels=EMAIL),
    ),
)


def event(
    n: int, enterprise: str | None = STEEL, region: str | None = None, **update
) -> AlertEvent:
    return AlertEvent(
        event_id=f"{n:032x}",
        alert_id=f"{n:032x}",
        kind=AlertKind.FIRED,
        rule_id="r",
        subject=f"M{n}",
        enterprise_code=enterprise,
        region_code=region,
        severity=AlertSeverity.WARNING,
        message="m",
        started_at=T0,
        at=T0,
        emitted_at=T0,
    ).model_copy(update=update)


def test_an_event_is_offered_to_its_enterprise_and_its_supervisors():
    releases = Dispatcher(ROUTING, {}).accept(event(1), T0)
    assert [(r.recipient_id, r.idempotency_key) for r in releases] == [
        ("steel", event(1).event_id),
        ("county", event(1).event_id),
    ]


def test_skipped_events_say_why():
    dispatcher = Dispatcher(ROUTING, {})
    assert dispatcher.accept(event(1, deliver=False), T0) is Skip.NOT_FOR_DELIVERY
    assert dispatcher.accept(event(2, enterprise=None, region="610402"), T0) is Skip.NO_RECIPIENT
    assert dispatcher.accept(event(3), T0) != []
    assert dispatcher.accept(event(3), T0) is Skip.DUPLICATE


def test_only_the_latest_event_ids_are_remembered():
    dispatcher = Dispatcher(ROUTING, {}, remember=2)
    for n in (1, 2, 3):
        dispatcher.accept(event(n, deliver=False), T0)
    assert dispatcher.accept(event(3, deliver=False), T0) is Skip.DUPLICATE
    assert dispatcher.accept(event(1, deliver=False), T0) is Skip.NOT_FOR_DELIVERY  # forgotten


def test_a_snapshot_resumes_held_events_pending_releases_and_taken_records():
    running = Dispatcher(ROUTING, {})
    for offset in range(3):
        running.take("alerts", 1, offset)
    first = running.accept(event(1), T0)
    assert running.accept(event(2), T0 + timedelta(seconds=1)) == []  # held: 1 per minute
    saved = running.snapshot(pending=first).model_dump_json()

    restarted = Dispatcher(ROUTING, {}, DispatchState.model_validate_json(saved))
    assert restarted.pending == first
    assert restarted.taken("alerts", 1, 2)
    assert not restarted.taken("alerts", 1, 3)
    assert not restarted.taken("alerts", 0, 0)
    assert restarted.accept(event(1), T0) is Skip.DUPLICATE
    assert restarted.held_count() == 2  # event 2, for both recipients
    assert restarted.next_due() == T0 + timedelta(seconds=60)
    late = restarted.due(T0 + timedelta(seconds=60))
    assert [(r.recipient_id, r.event_ids) for r in late] == [
        ("steel", (event(2).event_id,)),
        ("county", (event(2).event_id,)),
    ]
