"""MQTT ingest against the real local broker (mosquitto, run by `energywatch stack up`) and real
Kafka. The gateway runs in-process, as an asyncio task on a loop of its own thread; enterprises
are paho clients that log in with their credit codes.

Each test has its own topic prefix (``EW_MQTT_TOPIC_PREFIX``): the broker's ACL is
prefix-agnostic, so a test needs no broker change to be isolated, and its gateway's persistent
session (client id ``energywatch-ingest-mqtt.<prefix>``) is its own and removed at the end.
"""

import asyncio
import hashlib
import json
import queue
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import CollectorRegistry

from contracts.dead_letters import DeadLetter, decode_dead_letter
from contracts.identifiers import CHINA_STANDARD_TIME, uscc_check_character
from contracts.readings import EnergyType, Reading, decode_reading
from energywatch.settings import Settings
from ingest.metrics import IngestMetrics
from ingest.mqtt_gateway import MqttGateway, broker_login, create_mqtt_gateway, judge_upload
from plans.register import EnterpriseEntry, MeterEntry, Register, salted_digest
from stack import down, up
from stack.mqtt_accounts import remove_enterprise_account, set_enterprise_password
from tests.conftest import wait_until
from tests.pipeline import read_topic

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def credit_code() -> str:
    first17 = "91110000" + "".join(secrets.choice(_USCC_CHARS) for _ in range(9))
    return first17 + uscc_check_character(first17)


def enterprise(code: str, name: str) -> EnterpriseEntry:
    salt = secrets.token_hex(8)
    return EnterpriseEntry(
        code=code,
        name=name,
        city="运城市",
        county="140802",
        industry="steel",
        token_salt=salt,
        token_sha256=salted_digest(salt, f"{code}.{secrets.token_urlsafe(16)}"),
    )


# Fresh codes per run: concurrent runs never share (or reset) an enterprise's broker account.
A_CODE, B_CODE = credit_code(), credit_code()
A_POWER, A_GAS, B_POWER = f"{A_CODE}-E1", f"{A_CODE}-G1", f"{B_CODE}-E1"
REGISTER = Register(
    name="mqtt-test",
    enterprises=(enterprise(A_CODE, "Steel works A"), enterprise(B_CODE, "Cement works B")),
    meters=(
        MeterEntry(meter_id=A_POWER, enterprise_code=A_CODE, energy_type=EnergyType.ELECTRICITY),
        MeterEntry(meter_id=A_GAS, enterprise_code=A_CODE, energy_type=EnergyType.NATURAL_GAS),
        MeterEntry(meter_id=B_POWER, enterprise_code=B_CODE, energy_type=EnergyType.ELECTRICITY),
    ),
)


def reading(meter: str, quarter: int = 0, value: Any = 120.5, unit: str = "kWh") -> dict[str, Any]:
    """A 15-minute reading of yesterday, stamped in China Standard Time as sites send them."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=1)
    start -= timedelta(minutes=start.minute % 15)
    at = (start + timedelta(minutes=15 * quarter)).astimezone(CHINA_STANDARD_TIME)
    return {"meter_id": meter, "period_start": at.isoformat(), "unit": unit, "value": value}


# --- the broker's side ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def passwords(local_stack, stack_settings) -> Iterator[dict[str, str]]:
    """Broker accounts for both enterprises, removed afterwards."""
    chosen = {code: secrets.token_urlsafe(18) for code in (A_CODE, B_CODE)}
    for code, password in chosen.items():
        set_enterprise_password(stack_settings, code, password)
    yield chosen
    for code in chosen:
        remove_enterprise_account(stack_settings, code)


@pytest.fixture
def settings(pipeline_settings: Settings) -> Settings:
    return pipeline_settings.model_copy(
        update={"mqtt_topic_prefix": f"ew-test-{uuid.uuid4().hex[:10]}"}
    )


def uploads(settings: Settings, code: str) -> str:
    return f"{settings.mqtt_topic_prefix}/{code}/readings"


def answers(settings: Settings, code: str) -> str:
    return f"{settings.mqtt_topic_prefix}/{code}/acks"


class Site:
    """An enterprise's on-site system: logs in, uploads at QoS 1 and collects answers."""

    def __init__(
        self,
        settings: Settings,
        username: str | None,
        password: str | None,
        protocol: int = mqtt.MQTTv311,
    ) -> None:
        url = urlsplit(settings.mqtt_url)
        self.address = (url.hostname, url.port)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"ew-test-site-{uuid.uuid4().hex[:8]}",
            protocol=protocol,
        )
        self.client.username_pw_set(username, password)
        self.connacks: queue.Queue[ReasonCode] = queue.Queue()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.pubacks: dict[int, ReasonCode] = {}
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client.on_connect = lambda _c, _u, _f, code, _p: self.connacks.put(code)
        self.client.on_subscribe = lambda _c, _u, _m, codes, _p: self.subacks.put(codes)
        self.client.on_publish = lambda _c, _u, mid, code, _p: self.pubacks.__setitem__(mid, code)
        self.client.on_message = lambda _c, _u, m: self.received.put((m.topic, m.payload))

    def connect(self) -> ReasonCode:
        self.client.connect(*self.address, keepalive=30)
        self.client.loop_start()
        return self.connacks.get(timeout=10)

    def subscribe(self, topic: str) -> list[ReasonCode]:
        self.client.subscribe(topic, qos=1)
        return self.subacks.get(timeout=10)

    def upload(self, topic: str, payload: bytes | list[Any] | dict[str, Any]) -> ReasonCode:
        """Publish at QoS 1 and return the broker's PUBACK reason."""
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = self.client.publish(topic, raw, qos=1)
        info.wait_for_publish(timeout=10)
        said: ReasonCode = wait_until(lambda: self.pubacks.get(info.mid), 10, what="the PUBACK")
        return said

    def answer(self, timeout: float = 30) -> dict[str, Any]:
        _topic, payload = self.received.get(timeout=timeout)
        answer: dict[str, Any] = json.loads(payload)
        return answer

    def nothing_received(self, seconds: float) -> bool:
        try:
            self.received.get(timeout=seconds)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def site(settings, passwords) -> Iterator[Callable[..., Site]]:
    """Log an enterprise in, subscribed to its own answers; logged out afterwards."""
    opened: list[Site] = []

    def open_site(code: str, protocol=mqtt.MQTTv311) -> Site:
        connected = Site(settings, code, passwords[code], protocol)
        assert not connected.connect().is_failure
        opened.append(connected)
        assert not connected.subscribe(answers(settings, code))[0].is_failure
        return connected

    yield open_site
    for one in opened:
        one.close()


# --- the gateway, in-process ---------------------------------------------------------------


class RunningGateway:
    """``create_mqtt_gateway`` + ``run()`` as a task on an event loop of its own thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self.gateway: MqttGateway | None = None
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._thread, daemon=True)

    def _thread(self) -> None:
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as error:
            self.failure = error
        finally:
            self.ready.set()

    async def _main(self) -> None:
        self.gateway = create_mqtt_gateway(
            self.settings,
            REGISTER,
            IngestMetrics.create(self.registry),
            clock=lambda: datetime.now(UTC),
        )
        task = asyncio.create_task(self.gateway.run())
        ready = asyncio.create_task(self.gateway.ready.wait())
        await asyncio.wait({task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        self.ready.set()
        await task

    def __enter__(self) -> "RunningGateway":
        self.thread.start()
        assert self.ready.wait(40), "the gateway did not start"
        assert self.failure is None, self.failure
        assert self.gateway is not None
        assert self.gateway.ready.is_set(), "not subscribed within 30s"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.gateway is not None
        self.loop.call_soon_threadsafe(self.gateway.stop)
        self.thread.join(30)
        assert not self.thread.is_alive(), "the gateway did not stop"
        self.loop.close()
        assert self.failure is None, self.failure

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, {"channel": "mqtt", **labels}) or 0.0


@pytest.fixture
def forget_gateway_session(settings) -> Iterator[None]:
    """Removes the test gateway's persistent session from the broker at the end."""
    yield
    login = broker_login(settings)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=login.client_id, clean_session=True)
    client.username_pw_set(login.username, login.password.get_secret_value())
    client.connect(login.host, login.port)
    client.loop_start()
    wait_until(client.is_connected, 10, what="a clean-session login")
    client.disconnect()
    client.loop_stop()


def dead_letters(settings: Settings, expected: int, timeout_s: float = 30) -> list[DeadLetter]:
    records = read_topic(settings, settings.dead_letter_topic, expected, timeout_s)
    return [decode_dead_letter(r.value) for r in records]


def readings(settings: Settings, expected: int, timeout_s: float = 30) -> list[Reading]:
    records = read_topic(settings, settings.readings_topic, expected, timeout_s)
    return [decode_reading(r.value) for r in records]


# --- through the real broker and Kafka -----------------------------------------------------


@pytest.mark.services
def test_a_batch_is_split_into_readings_dead_letters_and_a_per_item_answer(
    settings, site, forget_gateway_session
):
    batch = [
        reading(A_POWER, 0),
        reading(A_GAS, 0, value=35.0, unit="m3"),
        reading(A_POWER, 1, unit="GJ"),
        reading(A_POWER, 2, value=-3),
        reading("NO-SUCH-METER", 0),
    ]
    payload = json.dumps(batch).encode()
    with RunningGateway(settings) as running:
        a = site(A_CODE)
        a.upload(uploads(settings, A_CODE), payload)
        answer = a.answer()

        assert answer["sha256"] == hashlib.sha256(payload).hexdigest()
        assert answer["items"][:2] == [
            {"index": 0, "status": "accepted"},
            {"index": 1, "status": "accepted"},
        ]
        rejected = answer["items"][2:]
        assert [(i["index"], i["status"], i["kind"]) for i in rejected] == [
            (2, "rejected", "wrong_unit"),
            (3, "rejected", "negative"),
            (4, "rejected", "unknown_meter"),
        ]
        assert "GJ" in rejected[0]["reason"]

        stored = readings(settings, 2)
        assert {(r.meter_id, r.enterprise_code, r.source) for r in stored} == {
            (A_POWER, A_CODE, "mqtt"),
            (A_GAS, A_CODE, "mqtt"),
        }
        assert {r.physical_quantity for r in stored} == {120.5, 35.0}

        letters = dead_letters(settings, 3)
        assert [(d.stage, d.kind) for d in letters] == [
            ("ingest.mqtt", "wrong_unit"),
            ("ingest.mqtt", "negative"),
            ("ingest.mqtt", "unknown_meter"),
        ]
        # Each item is dead-lettered on its own, with the sender, its index and the reason.
        assert [json.loads(d.raw) for d in letters] == batch[2:]
        assert letters[0].reason.startswith(f"{A_CODE} item 2: ")
        assert letters[0].reason.endswith(rejected[0]["reason"])

        assert running.metric("energywatch_ingest_received_total") == 5
        assert running.metric("energywatch_ingest_accepted_total") == 2
        assert running.metric("energywatch_ingest_rejected_total", kind="negative") == 1
        assert running.metric("energywatch_ingest_dead_letters_total") == 3


@pytest.mark.services
def test_a_meter_of_another_enterprise_sent_on_a_s_topic_is_rejected_as_not_your_meter(
    settings, site, forget_gateway_session
):
    b_meter = json.dumps(reading(B_POWER)).encode()
    with RunningGateway(settings):
        a = site(A_CODE)
        a.upload(uploads(settings, A_CODE), b_meter)
        (item,) = a.answer()["items"]
        assert (item["status"], item["kind"]) == ("rejected", "not_your_meter")
        (letter,) = dead_letters(settings, 1)
        assert letter.kind == "not_your_meter"
        assert letter.raw == b_meter  # a lone object is dead-lettered as it was sent
    assert readings(settings, 1, timeout_s=3) == []


@pytest.mark.services
@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5], ids=["mqtt3.1.1", "mqtt5"])
def test_an_enterprise_cannot_publish_on_another_enterprise_s_topic(
    settings, site, forget_gateway_session, protocol
):
    with RunningGateway(settings):
        a, b = site(A_CODE, protocol), site(B_CODE)
        said = a.upload(uploads(settings, B_CODE), [reading(B_POWER, 0)])
        if protocol == mqtt.MQTTv5:  # MQTT 3.1.1 has no way to say it: the broker drops it
            assert str(said) == "Not authorized"
        # A fence: A's own upload after the forged one. Once it is in Kafka, the forged one
        # would have been too (one gateway, one session, handled in order).
        a.upload(uploads(settings, A_CODE), [reading(A_POWER, 0)])
        assert [i["status"] for i in a.answer()["items"]] == ["accepted"]
        stored = readings(settings, 2, timeout_s=5)
        assert [(r.meter_id, r.enterprise_code) for r in stored] == [(A_POWER, A_CODE)]
        assert b.nothing_received(1.0), "B got an answer to an upload it never sent"


@pytest.mark.services
def test_an_enterprise_reads_only_its_own_answers(settings, site, forget_gateway_session):
    with RunningGateway(settings):
        b = site(B_CODE)
        # The broker grants a wildcard subscription but delivers only what the ACL lets B read.
        assert not b.subscribe(answers(settings, "+"))[0].is_failure
        a = site(A_CODE)
        a.upload(uploads(settings, A_CODE), reading(A_POWER))
        assert a.answer()["items"][0]["status"] == "accepted"
        b.upload(uploads(settings, B_CODE), reading(B_POWER))
        topic, payload = b.received.get(timeout=30)
        assert topic == answers(settings, B_CODE)
        assert json.loads(payload)["items"][0]["status"] == "accepted"
        assert b.nothing_received(1.0)


@pytest.mark.services
def test_a_payload_that_is_not_json_is_dead_lettered_and_the_gateway_keeps_serving(
    settings, site, forget_gateway_session
):
    garbage = b"\xff\xfeMETER=A1;kWh=12\x00"
    with RunningGateway(settings) as running:
        a = site(A_CODE)
        a.upload(uploads(settings, A_CODE), garbage)
        answer = a.answer()
        assert answer["items"] == []
        assert answer["error"]["kind"] == "not_json"
        (letter,) = dead_letters(settings, 1)
        assert (letter.kind, letter.raw) == ("not_json", garbage)

        a.upload(uploads(settings, A_CODE), b"[[[[[[[[[[[[[[[[[[[[[[[[[" * 4000)  # too deep
        assert a.answer()["error"]["kind"] == "not_json"
        a.upload(uploads(settings, A_CODE), [reading(A_POWER)])
        assert a.answer()["items"] == [{"index": 0, "status": "accepted"}]
        assert [r.meter_id for r in readings(settings, 1)] == [A_POWER]
        assert running.metric("energywatch_ingest_rejected_total", kind="not_json") == 2


@pytest.mark.services
def test_a_wrong_password_an_unknown_user_and_no_login_cannot_connect(settings, passwords):
    for username, password in [
        (A_CODE, passwords[A_CODE] + "x"),
        (B_CODE, passwords[A_CODE]),
        (credit_code(), "anything"),
        (None, None),
    ]:
        refused = Site(settings, username, password)
        try:
            assert str(refused.connect()) == "Not authorized", username
        finally:
            refused.close()


@pytest.mark.services
def test_an_upload_received_but_never_acknowledged_is_delivered_again(
    settings, site, forget_gateway_session
):
    gateway = create_mqtt_gateway(
        settings, REGISTER, IngestMetrics.create(CollectorRegistry()), lambda: datetime.now(UTC)
    )

    async def subscribe_and_leave() -> None:
        async with gateway.mqtt_client() as client:
            await client.subscribe(gateway.uploads_filter, qos=1)

    async def take_and_crash() -> bytes:
        # A gateway that dies after the broker delivered the upload, before Kafka had it.
        async with gateway.mqtt_client() as client:
            message = await asyncio.wait_for(anext(aiter(client.messages)), 10)
            return bytes(message.payload)

    asyncio.run(subscribe_and_leave())  # the session now exists while no gateway runs
    a = site(A_CODE)
    a.upload(uploads(settings, A_CODE), [reading(A_POWER, 3)])  # kept by the broker
    assert json.loads(asyncio.run(take_and_crash()))[0]["meter_id"] == A_POWER

    with RunningGateway(settings):
        assert a.answer()["items"] == [{"index": 0, "status": "accepted"}]
        (stored,) = readings(settings, 1)
    assert stored.meter_id == A_POWER
    assert readings(settings, 2, timeout_s=3) == [stored], "delivered once more, not twice"


@pytest.mark.services
def test_the_gateway_reconnects_by_itself_after_the_broker_restarts(
    settings, site, stack_settings, forget_gateway_session
):
    with RunningGateway(settings) as running:
        assert running.gateway is not None
        gateway = running.gateway
        down(stack_settings, only=["mosquitto"])
        wait_until(lambda: not gateway.ready.is_set(), 15, what="the gateway to notice")
        up(stack_settings)
        wait_until(gateway.ready.is_set, 30, what="the gateway to subscribe again")
        a = site(A_CODE)
        a.upload(uploads(settings, A_CODE), [reading(A_POWER)])
        assert a.answer()["items"] == [{"index": 0, "status": "accepted"}]
        assert [r.meter_id for r in readings(settings, 1)] == [A_POWER]


# --- judging uploads, without services ----------------------------------------------------


NOW = datetime.now(UTC)


def test_an_array_is_judged_item_by_item_in_order():
    gas_in_kwh = reading(A_GAS, unit="kWh")
    upload = judge_upload(
        json.dumps([reading(A_POWER), "text", gas_in_kwh]).encode(),
        sender=A_CODE,
        register=REGISTER,
        now=NOW,
    )
    assert [r.meter_id for r in upload.readings] == [A_POWER]
    assert [(i["index"], i["status"], i.get("kind")) for i in upload.answer()["items"]] == [
        (0, "accepted", None),
        (1, "rejected", "wrong_schema"),
        (2, "rejected", "wrong_unit"),
    ]
    # An array's items are dead-lettered one by one, each as compact JSON.
    assert [raw for _, raw in upload.dead_letters()] == [
        b'"text"',
        json.dumps(gas_in_kwh, separators=(",", ":")).encode(),
    ]


def test_an_upload_from_a_code_outside_the_register_is_refused_whole():
    raw = json.dumps(reading(A_POWER)).encode()
    upload = judge_upload(raw, sender=credit_code(), register=REGISTER, now=NOW)
    assert upload.readings == []
    assert upload.answer()["error"]["kind"] == "unknown_sender"
    ((rejection, letter),) = upload.dead_letters()
    assert (rejection.kind, letter) == ("unknown_sender", raw)


def test_a_timestamp_without_offset_is_accepted_with_a_warning_in_the_answer():
    item = {**reading(A_POWER), "period_start": reading(A_POWER)["period_start"][:19]}
    upload = judge_upload(json.dumps(item).encode(), sender=A_CODE, register=REGISTER, now=NOW)
    (entry,) = upload.answer()["items"]
    assert entry["status"] == "accepted"
    assert "China Standard Time" in entry["warnings"][0]


@pytest.mark.parametrize(
    "payload",
    [b"", b"null", b"42", b"{}", b"[]", b'{"meter_id": "x"', "电表".encode("gbk"), b"NaN"],
)
def test_odd_payloads_are_answered_never_raised(payload):
    upload = judge_upload(payload, sender=A_CODE, register=REGISTER, now=NOW)
    assert upload.readings == []
    assert isinstance(upload.answer()["items"], list)


def test_a_number_too_large_for_a_float_is_rejected_not_raised():
    item = json.loads(json.dumps(reading(A_POWER)).replace("120.5", "9" * 400))
    upload = judge_upload(json.dumps(item).encode(), sender=A_CODE, register=REGISTER, now=NOW)
    (entry,) = upload.answer()["items"]
    assert entry["status"] == "rejected"
