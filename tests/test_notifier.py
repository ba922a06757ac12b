"""The notifier against real Kafka and TimescaleDB.

Every receiver is a server this file runs on 127.0.0.1: enterprises' webhooks are
``WebhookReceiver``s (signature checked, copies told apart by ``Idempotency-Key``), a
supervisor's mailbox is an aiosmtpd SMTP server, and a DingTalk robot is a local HTTP stand-in
that checks the 加签 signature the way DingTalk documents it and answers with an ``errcode``.
Events are produced to an isolated alerts topic; the notifier runs in a thread of the test
(``create_notifier``, as the CLI builds it) with a clock the test may move, and once as the
``energywatch notify`` command.
"""

import asyncio
import base64
import contextlib
import email
import email.policy
import hashlib
import hmac
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from aiosmtpd.controller import Controller
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from alerts.courier import Undelivered
from alerts.metrics import NotifierMetrics
from alerts.notifier import Notifier, create_notifier, notifier_config
from alerts.webhook_receiver import WebhookReceiver
from contracts.alert_events import AlertEvent, AlertKind, AlertSeverity, encode_alert
from contracts.dead_letters import decode_dead_letter
from energywatch.settings import Settings
from tests.conftest import free_port, wait_until
from tests.pipeline import metric_value, read_topic

HEJIN_STEEL = "9114088212JX9EJR64"  # registered in county 140882 (河津), city 140800 (运城)
JISHAN_CEMENT = "91140824ENX1MWJ09E"  # county 140824 (稷山), same city
T0 = datetime(2026, 11, 1, 8, tzinfo=UTC)
DING_SECRET = "SEC-test-robot-secret"


def event(
    n: int,
    *,
    enterprise: str | None = None,
    region: str | None = None,
    kind: AlertKind = AlertKind.FIRED,
    deliver: bool = True,
) -> AlertEvent:
    return AlertEvent(
        event_id=f"{n:032x}",
        alert_id=f"a{n:031x}",
        kind=kind,
        rule_id="electricity-interval-kwh" if enterprise else "county-barometer",
        subject=f"M{n}" if enterprise else f"county-{region}",
        enterprise_code=enterprise,
        region_code=region,
        severity=AlertSeverity.WARNING,
        value=7000,
        threshold=6000,
        unit="kWh",
        message=f"event {n}",
        started_at=T0,
        at=T0,
        emitted_at=T0,
        deliver=deliver,
        suppressed_by=None if deliver else "maintenance-1",
    )


def produce(settings: Settings, payloads: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for key, value in payloads:
        producer.send(settings.alerts_topic, key=key, value=value)
    producer.flush()
    producer.close()


def produce_events(settings: Settings, events: list[AlertEvent]) -> None:
    produce(settings, [(e.partition_key, encode_alert(e)) for e in events])


def notification_rows(settings: Settings) -> list[tuple[str, str, str, list[str]]]:
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        return conn.execute(
            "SELECT recipient_id, channel, idempotency_key, event_ids FROM alert_notifications "
            "ORDER BY delivered_at"
        ).fetchall()


class Clock:
    """The notifier's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Crash(Exception):
    """Raised inside the notifier to stop it dead, as a killed process would."""


class Running:
    """A notifier running in a thread with its own event loop."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self.error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self.notifier.run())
        except BaseException as exc:  # reported to the test
            self.error = exc
        finally:
            self._loop.close()

    def start(self) -> "Running":
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 30) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed just now
                self._loop.call_soon_threadsafe(self.notifier.stop)
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the notifier did not stop"


@dataclass
class Notifiers:
    settings: Settings
    started: list[Running] = field(default_factory=list)

    def start(self, clock=None, on_delivered=None, **settings) -> tuple[Running, CollectorRegistry]:
        registry = CollectorRegistry()
        extra = {"clock": clock} if clock else {}
        notifier = create_notifier(
            self.settings.model_copy(update=settings),
            NotifierMetrics.create(registry),
            on_delivered=on_delivered,
            **extra,
        )
        running = Running(notifier).start()
        self.started.append(running)
        return running, registry


@pytest.fixture
def notifiers(pipeline_settings) -> Iterator[Notifiers]:
    started = Notifiers(pipeline_settings)
    yield started
    for running in started.started:
        running.stop()
    unexpected = [r.error for r in started.started if r.error and not isinstance(r.error, Crash)]
    assert not unexpected, f"a notifier failed: {unexpected!r}"


def write_recipients(
    path: Path, recipients: list[dict[str, Any]], rate_limit: tuple[int, int] = (100, 60)
) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "default_rate_limit": {"max_messages": rate_limit[0], "per_seconds": rate_limit[1]},
                "recipients": recipients,
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    return path


def webhook(receiver: WebhookReceiver, secret: str) -> dict[str, str]:
    return {"kind": "webhook", "url": receiver.url, "secret": secret}


# --- servers the tests run ---------------------------------------------------------------


@dataclass
class Inbox:
    """The supervisor's mailbox: what the local SMTP server received."""

    messages: list[email.message.EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        )
        return "250 OK"

    def keys(self) -> list[str]:
        """The idempotency keys of the mails, from their Message-IDs."""
        return [m["Message-ID"].strip("<>").partition("@")[0] for m in self.messages]


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


class DingTalkRobot:
    """A stand-in for a DingTalk group robot: checks ``timestamp`` and ``sign`` against its
    secret with DingTalk's published recipe, written out here on its own; answers errcode 0
    and keeps the message, or errcode 310000 (sign not match)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.accepted: list[dict[str, Any]] = []
        self.refused = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/robot/send?access_token=t0k"

    def __enter__(self) -> "DingTalkRobot":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _signed(self, query: str) -> bool:
        fields = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
        timestamp = fields.get("timestamp", "")
        digest = hmac.new(
            self.secret.encode(), f"{timestamp}\n{self.secret}".encode(), hashlib.sha256
        ).digest()
        expected = urllib.parse.quote_plus(base64.b64encode(digest))
        return bool(timestamp) and hmac.compare_digest(fields.get("sign", ""), expected)

    def texts(self) -> list[str]:
        with self._lock:
            return [m["markdown"]["text"] for m in self.accepted]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with robot._lock:
                    if robot._signed(self.path.partition("?")[2]):
                        robot.accepted.append(json.loads(body))
                        answer = {"errcode": 0, "errmsg": "ok"}
                    else:
                        robot.refused += 1
                        answer = {"errcode": 310000, "errmsg": "sign not match"}
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def event_ids_in(texts: list[str]) -> list[str]:
    """Event ids quoted in rendered messages (``事件编号 Event ID：…``)."""
    marker = "事件编号 Event ID**："
    return [text.split(marker, 1)[1].split()[0] for text in texts if marker in text]


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


# --- tests --------------------------------------------------------------------------------


@pytest.mark.services
def test_each_recipient_hears_of_its_own_events_over_each_of_its_channels(notifiers, tmp_path):
    steel_events = [event(1, enterprise=HEJIN_STEEL), event(2, enterprise=HEJIN_STEEL)]
    cement_event = event(3, enterprise=JISHAN_CEMENT)
    hejin_regional = event(4, region="140882")  # a county's barometer: no enterprise
    jishan_regional = event(5, region="140824")
    muted = event(6, enterprise=HEJIN_STEEL, deliver=False)  # under maintenance
    with (
        WebhookReceiver(b"steel-secret") as steel,
        WebhookReceiver(b"cement-secret") as cement,
        smtp_server() as (inbox, smtp_port),
        DingTalkRobot(DING_SECRET) as robot,
    ):
        recipients = write_recipients(
            tmp_path / "recipients.yaml",
            [
                {
                    "kind": "enterprise",
                    "id": "steel",
                    "name": "河津钢铁示例",
                    "enterprise_code": HEJIN_STEEL,
                    "channels": [webhook(steel, "steel-secret")],
                },
                {
                    "kind": "enterprise",
                    "id": "cement",
                    "name": "稷山水泥",
                    "enterprise_code": JISHAN_CEMENT,
                    "channels": [webhook(cement, "cement-secret")],
                },
                {
                    "kind": "supervisor",
                    "id": "hejin-county",
                    "name": "河津市发展和改革局",
                    "region_code": "140882",
                    "channels": [{"kind": "email", "address": "jieneng@hejin.example"}],
                },
                {
                    "kind": "supervisor",
                    "id": "yuncheng-city",
                    "name": "运城市节能监察支队",
                    "region_code": "140800",
                    "channels": [
                        {"kind": "dingtalk", "webhook_url": robot.url, "secret": DING_SECRET}
                    ],
                },
            ],
        )
        everything = [*steel_events, cement_event, hejin_regional, jishan_regional, muted]
        produce_events(notifiers.settings, everything)
        _, registry = notifiers.start(
            recipients_path=recipients,
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            smtp_security="none",
            smtp_sender="alerts@energywatch.example",
        )

        city_ids = {e.event_id for e in everything if e is not muted}
        wait_until(lambda: set(event_ids_in(robot.texts())) == city_ids, 60, what="the city")
        assert steel.wait_for(2, timeout=30)
        assert cement.wait_for(1, timeout=30)
        wait_until(lambda: len(inbox.messages) >= 3, 30, what="the county's mail")
        wait_until(
            lambda: sample(
                registry, "energywatch_alerts_events_skipped_total", reason="not_for_delivery"
            ),
            30,
            what="the muted event to be skipped",
        )

    # (a) each enterprise hears of its own events only, signed
    assert [e.event_id for e in steel.unique_alerts()] == [e.event_id for e in steel_events]
    assert [e.event_id for e in cement.unique_alerts()] == [cement_event.event_id]
    assert steel.rejected == cement.rejected == 0
    # (b) the county's supervisor hears of its county's events, the regional one included
    assert sorted(inbox.keys()) == sorted(
        [*(e.event_id for e in steel_events), hejin_regional.event_id]
    )
    assert any("河津钢铁示例" in m["Subject"] for m in inbox.messages)
    # (c) the city's robot, every event of its counties; every request correctly signed
    assert robot.refused == 0
    assert sorted(event_ids_in(robot.texts())) == sorted(city_ids)
    # the muted event went nowhere
    assert muted.event_id not in {*inbox.keys(), *event_ids_in(robot.texts())}
    assert sample(registry, "energywatch_alerts_notifications_sent_total", channel="webhook") == 3
    assert sample(registry, "energywatch_alerts_notifications_sent_total", channel="email") == 3
    assert sample(registry, "energywatch_alerts_notifications_sent_total", channel="dingtalk") == 5
    assert sample(registry, "energywatch_alerts_delivery_seconds_count", channel="email") == 3
    assert len(notification_rows(notifiers.settings)) == 11


@pytest.mark.services
def test_a_restart_between_delivering_and_committing_sends_nothing_twice(notifiers, tmp_path):
    events = [event(n, enterprise=HEJIN_STEEL if n % 2 else JISHAN_CEMENT) for n in range(10)]
    events += [event(10, region="140882")]

    async def crash() -> None:
        raise Crash("stopped after delivering, before committing")

    with WebhookReceiver(b"k") as steel, WebhookReceiver(b"k") as supervisor:
        recipients = write_recipients(
            tmp_path / "recipients.yaml",
            [
                {
                    "kind": "enterprise",
                    "id": "steel",
                    "name": "河津钢铁示例",
                    "enterprise_code": HEJIN_STEEL,
                    "channels": [webhook(steel, "k")],
                },
                {
                    "kind": "supervisor",
                    "id": "yuncheng-city",
                    "name": "运城市",
                    "region_code": "140800",
                    "channels": [webhook(supervisor, "k")],
                },
            ],
        )
        produce_events(notifiers.settings, events)
        first, _ = notifiers.start(recipients_path=recipients, on_delivered=crash)
        wait_until(lambda: not first.alive(), 60, what="the first notifier to crash")
        assert isinstance(first.error, Crash)
        delivered_before = len(supervisor.notifications) + len(steel.notifications)
        assert delivered_before > 0

        _, registry = notifiers.start(recipients_path=recipients)
        assert supervisor.wait_for(len(events), timeout=60)
        assert steel.wait_for(5, timeout=30)
        # the records the first run had taken are read again (their offsets were not committed)
        wait_until(
            lambda: sample(
                registry, "energywatch_alerts_events_skipped_total", reason="already_taken"
            ),
            30,
            what="the uncommitted records to be read again",
        )

    for receiver in (steel, supervisor):  # nothing arrived twice
        keys = [n.idempotency_key for n in receiver.notifications]
        assert len(keys) == len(set(keys))
        assert not any(r.duplicate for r in receiver.received)
    assert {e.event_id for e in supervisor.unique_alerts()} == {e.event_id for e in events}
    # what the first run had sent was found recorded, not sent again
    assert (
        sample(registry, "energywatch_alerts_notifications_skipped_total", channel="webhook") >= 1
    )
    rows = notification_rows(notifiers.settings)
    assert len(rows) == len(events) + 5


@pytest.mark.services
def test_a_lost_database_session_is_survived_and_nothing_is_sent_twice(notifiers, tmp_path):
    # PostgreSQL restarting (or an administrator) ends the notifier's session: it reconnects,
    # reloads its state and goes on, instead of exiting and waiting for someone to restart it
    first_batch = [event(n, region="140882") for n in range(4)]
    second_batch = [event(n, region="140882") for n in range(4, 8)]
    with WebhookReceiver(b"k") as supervisor:
        recipients = write_recipients(
            tmp_path / "recipients.yaml",
            [
                {
                    "kind": "supervisor",
                    "id": "hejin",
                    "name": "河津市",
                    "region_code": "140882",
                    "channels": [webhook(supervisor, "k")],
                }
            ],
        )
        running, registry = notifiers.start(recipients_path=recipients)
        produce_events(notifiers.settings, first_batch)
        assert supervisor.wait_for(len(first_batch), timeout=60)

        with psycopg.connect(
            notifiers.settings.database_url.get_secret_value(), autocommit=True
        ) as conn:
            ended = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        assert ended is not None
        assert ended[0] >= 1
        produce_events(notifiers.settings, second_batch)

        assert supervisor.wait_for(len(first_batch) + len(second_batch), timeout=60)
        wait_until(
            lambda: sample(registry, "energywatch_notifier_session_errors_total") >= 1,
            30,
            what="the lost session to be counted",
        )
        assert running.alive()
        assert running.error is None
    keys = [n.idempotency_key for n in supervisor.notifications]
    assert len(keys) == len(set(keys))
    assert {e.event_id for e in supervisor.unique_alerts()} == {
        e.event_id for e in first_batch + second_batch
    }


@pytest.mark.services
def test_a_storm_is_three_singles_then_digests_of_all_the_rest_even_across_a_restart(
    notifiers, tmp_path
):
    storm = [event(n, enterprise=HEJIN_STEEL) for n in range(50)]
    clock = Clock(datetime.now(UTC))
    with WebhookReceiver(b"k") as steel:
        recipients = write_recipients(
            tmp_path / "recipients.yaml",
            [
                {
                    "kind": "enterprise",
                    "id": "steel",
                    "name": "河津钢铁示例",
                    "enterprise_code": HEJIN_STEEL,
                    "channels": [webhook(steel, "k")],
                    "rate_limit": {"max_messages": 3, "per_seconds": 60},
                }
            ],
        )
        first, registry = notifiers.start(clock=clock, recipients_path=recipients)
        produce_events(notifiers.settings, storm)
        wait_until(
            lambda: (
                len(steel.notifications) == 3 and sample(registry, "energywatch_alerts_held") == 47
            ),
            60,
            what="three singles sent and 47 events held",
        )
        first.stop()  # what is held must survive a restart

        _, registry = notifiers.start(clock=clock, recipients_path=recipients)
        clock.advance(61)  # the first slot frees up
        assert steel.wait_for(50, timeout=30)
        wait_until(
            lambda: sample(registry, "energywatch_alerts_digests_total") == 1, 10, what="a digest"
        )

    bodies = [n.notification for n in steel.notifications]
    assert [b.digest for b in bodies] == [False, False, False, True]
    sent = [e.event_id for b in bodies for e in b.events]
    assert sent == [e.event_id for e in storm]  # all of them, once each, in order
    assert bodies[3].title.startswith("告警汇总 Digest：47 条")


@pytest.mark.services
def test_bad_bytes_and_a_channel_that_refuses_for_good_cost_dead_letters_and_nothing_else(
    notifiers, tmp_path
):
    good = event(1, enterprise=HEJIN_STEEL)
    with WebhookReceiver(b"k") as steel, DingTalkRobot("the robot's own secret") as robot:
        recipients = write_recipients(
            tmp_path / "recipients.yaml",
            [
                {
                    "kind": "supervisor",
                    "id": "yuncheng-city",
                    "name": "运城市",
                    "region_code": "140800",
                    "channels": [
                        {"kind": "dingtalk", "webhook_url": robot.url, "secret": "a wrong secret"}
                    ],
                },
                {
                    "kind": "enterprise",
                    "id": "steel",
                    "name": "河津钢铁示例",
                    "enterprise_code": HEJIN_STEEL,
                    "channels": [webhook(steel, "k")],
                },
            ],
        )
        produce(notifiers.settings, [(b"x", b"{not an alert"), (b"x", b'{"kind": "fired"}')])
        produce_events(notifiers.settings, [good])
        running, registry = notifiers.start(recipients_path=recipients)
        letters = [
            decode_dead_letter(r.value)
            for r in read_topic(notifiers.settings, notifiers.settings.dead_letter_topic, 3, 60)
        ]
        assert steel.wait_for_ids({good.event_id}, timeout=30)
        assert running.alive()

    by_kind = {letter.kind: letter for letter in letters}
    assert set(by_kind) == {"not_json", "wrong_schema", "undeliverable"}
    assert by_kind["not_json"].raw == b"{not an alert"
    assert by_kind["wrong_schema"].raw == b'{"kind": "fired"}'
    refused = by_kind["undeliverable"]
    assert "yuncheng-city/dingtalk" in refused.reason
    assert "310000" in refused.reason
    assert Undelivered.model_validate_json(refused.raw).events == (good,)
    assert robot.refused == 1  # refused for good: not retried
    assert sample(registry, "energywatch_alerts_dead_letters_total", kind="not_json") == 1
    assert (
        sample(
            registry,
            "energywatch_alerts_notification_failures_total",
            channel="dingtalk",
            reason="refused",
        )
        == 1
    )
    assert [(r[0], r[1]) for r in notification_rows(notifiers.settings)] == [("steel", "webhook")]


@pytest.mark.services
def test_the_notify_command_sends_everything_to_the_one_webhook_without_a_recipients_file(
    pipeline_settings, start_service
):
    settings = pipeline_settings
    events = [event(1, enterprise=HEJIN_STEEL), event(2, region="610402")]
    with WebhookReceiver(b"the-secret") as receiver:
        notifier = start_service(
            "notify", settings, EW_WEBHOOK_URL=receiver.url, EW_WEBHOOK_SECRET="the-secret"
        )
        produce_events(settings, [*events, events[0]])  # the first one published twice
        assert receiver.wait_for(2, timeout=60), notifier.log_tail()
        wait_until(
            lambda: (
                metric_value(
                    settings.notifier_metrics_port,
                    "energywatch_alerts_events_skipped_total",
                    {"reason": "duplicate"},
                )
                == 1
            ),
            30,
            what="the repeated event to be skipped",
        )
        assert notifier.alive()
    assert {e.event_id for e in receiver.unique_alerts()} == {e.event_id for e in events}
    assert len(receiver.notifications) == 2
    assert receiver.rejected == 0


# --- configuration (no services) -----------------------------------------------------------


def test_without_recipients_or_a_webhook_there_is_nobody_to_notify():
    with pytest.raises(ValueError, match="nobody to notify"):
        notifier_config(Settings(recipients_path=None, webhook_url=None))


def test_e_mail_channels_need_an_smtp_server(tmp_path):
    recipients = write_recipients(
        tmp_path / "r.yaml",
        [
            {
                "kind": "supervisor",
                "id": "county",
                "name": "county",
                "region_code": "140882",
                "channels": [{"kind": "email", "address": "a@b.example"}],
            }
        ],
    )
    with pytest.raises(ValueError, match="county have e-mail channels"):
        notifier_config(Settings(recipients_path=recipients, smtp_host=None))
    config = notifier_config(Settings(recipients_path=recipients, smtp_host="127.0.0.1"))
    assert config.smtp is not None
    assert config.smtp.host == "127.0.0.1"


def test_the_one_webhook_and_the_register_make_a_working_configuration():
    register = Path(__file__).resolve().parent.parent / "plans" / "registers" / "demo.yaml"
    config = notifier_config(
        Settings(
            webhook_url="http://127.0.0.1:9/hook",
            webhook_secret="s",
            register_path=register,
            recipients_path=None,
            smtp_host=None,
        )
    )
    [operator] = config.routing.recipients
    assert operator.kind == "operator"
    assert config.county_of[HEJIN_STEEL] == "140882"
    assert config.enterprise_names[HEJIN_STEEL] == "河津钢铁示例"
    assert config.smtp is None
