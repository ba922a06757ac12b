"""MQTT ingest: enterprises' IoT gateways publish readings to the broker; this adapter
validates them, publishes them to Kafka and answers each upload.

Topics (MQTT 3.1.1, QoS 1; ``<prefix>`` is ``EW_MQTT_TOPIC_PREFIX``, one topic level):

- ``<prefix>/<credit code>/readings``: an upload, one reading object or a JSON array of them in
  the format ``ingest.validation.check_reading`` documents (``meter_id, period_start,
  interval_seconds, unit, value, counter``).
- ``<prefix>/<credit code>/acks``: the answer, one entry per item in upload order::

      {"sha256": "<hex digest of the upload's bytes>",
       "items": [{"index": 0, "status": "accepted"},
                 {"index": 1, "status": "rejected", "kind": "wrong_unit", "reason": "..."}]}

  An upload refused as a whole (not JSON, sender not in the register) is answered with
  ``"items": []`` and ``"error": {"kind": ..., "reason": ...}``. ``sha256`` lets the sender
  match answers to uploads (MQTT 3.1.1 has no correlation data).

Who sent an upload: the topic's middle level. The broker's ACL lets an account write only
under its own username, which is the enterprise's credit code, so that level is authenticated.

Delivery is at least once. The gateway keeps a persistent session (clean_session=False and
the fixed client id ``energywatch-ingest-mqtt.<prefix>``), so the broker queues uploads while it
is away. Acknowledgements to the broker are manual: an upload's PUBACK goes back only after
Kafka has acknowledged (acks=all) every accepted reading and every dead letter and the answer
is published. A crash or a Kafka failure before that leaves the upload unacknowledged; the
gateway reconnects and the broker delivers it again, so its readings can reach Kafka twice
(the storage writes are idempotent on meter and period). aiomqtt 2.5 has no public switch for
this yet (aiomqtt issue #345, draft PR #346), so the gateway sets paho-mqtt's ``manual_ack``
on the client underneath (``Client._client``) before connecting, and acknowledges with its
``ack(mid, qos)``; ``tests/test_mqtt_gateway.py`` proves the redelivery on a real broker.
"""

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

import aiomqtt
from aiokafka.errors import KafkaError
from pydantic import SecretStr

from contracts.readings import Reading, encode_reading
from energywatch.kafka_topics import ensure_topics
from energywatch.settings import Settings
from ingest.metrics import IngestMetrics
from ingest.publisher import KafkaPublisher
from ingest.validation import Accepted, Rejection, check_reading
from plans.register import Register

CHANNEL: Final = "mqtt"
#: Kinds for uploads refused as a whole (the items' kinds are ``validation.REJECTION_KINDS``).
PAYLOAD_KINDS: Final = ("not_json", "unknown_sender")
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_RETRY_FIRST_S: Final = 1.0
_RETRY_MAX_S: Final = 30.0

log = logging.getLogger(__name__)


# --- judging one upload (pure) -----------------------------------------------------------


@dataclass(frozen=True)
class ItemOutcome:
    """One item of an upload: accepted, or rejected with the bytes to dead-letter."""

    index: int
    result: Accepted | Rejection
    raw: bytes


@dataclass(frozen=True)
class Upload:
    """One MQTT message, judged. ``refused`` is set when the payload as a whole is refused."""

    sender: str
    raw: bytes
    items: tuple[ItemOutcome, ...] = ()
    refused: Rejection | None = None

    @property
    def readings(self) -> list[Reading]:
        return [i.result.reading for i in self.items if isinstance(i.result, Accepted)]

    def dead_letters(self) -> list[tuple[Rejection, bytes]]:
        """What to dead-letter: each rejected item, or the whole payload when refused."""
        if self.refused is not None:
            reason = f"{self.sender}: {self.refused.reason}"
            return [(Rejection(self.refused.kind, reason), self.raw)]
        return [
            (Rejection(i.result.kind, f"{self.sender} item {i.index}: {i.result.reason}"), i.raw)
            for i in self.items
            if isinstance(i.result, Rejection)
        ]

    def answer(self) -> dict[str, Any]:
        """The acknowledgement published to the sender's ``acks`` topic."""
        body: dict[str, Any] = {"sha256": hashlib.sha256(self.raw).hexdigest(), "items": []}
        if self.refused is not None:
            body["error"] = {"kind": self.refused.kind, "reason": self.refused.reason}
            return body
        for item in self.items:
            entry: dict[str, Any] = {"index": item.index}
            if isinstance(item.result, Accepted):
                entry["status"] = "accepted"
                if item.result.warnings:
                    entry["warnings"] = list(item.result.warnings)
            else:
                entry.update(status="rejected", kind=item.result.kind, reason=item.result.reason)
            body["items"].append(entry)
        return body


def judge_upload(raw: bytes, *, sender: str, register: Register, now: datetime) -> Upload:
    """Parse an upload and check each item with ``check_reading`` (``source="mqtt"``)."""
    if sender not in register.enterprises_by_code:
        return Upload(
            sender, raw, refused=Rejection("unknown_sender", f"{sender} is not in the register")
        )
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        reason = f"the payload is not JSON: {error}"[:500]
        return Upload(sender, raw, refused=Rejection("not_json", reason))
    if not isinstance(parsed, list):  # a lone object is dead-lettered as it was sent
        return Upload(sender, raw, items=(_judge_item(0, parsed, raw, sender, register, now),))
    items = tuple(
        # An array's item is dead-lettered as compact JSON of its own.
        _judge_item(index, item, _compact(item), sender, register, now)
        for index, item in enumerate(parsed)
    )
    return Upload(sender, raw, items=items)


def _judge_item(
    index: int, item: object, raw: bytes, sender: str, register: Register, now: datetime
) -> ItemOutcome:
    try:
        result = check_reading(item, register=register, sender=sender, now=now, source=CHANNEL)
    except (ArithmeticError, ValueError, TypeError) as error:
        # check_reading is meant to return, never raise; if some input still makes it raise,
        # that item is refused instead of the message coming back forever.
        result = Rejection("wrong_schema", f"the item cannot be checked: {error}"[:500])
    return ItemOutcome(index=index, result=result, raw=raw)


def _compact(item: object) -> bytes:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()


# --- the adapter -------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerLogin:
    """Where the broker is and how the gateway logs in (``EW_MQTT_*``)."""

    host: str
    port: int
    username: str
    password: SecretStr
    client_id: str


class MqttGateway:
    """Subscribes to every enterprise's uploads and handles them one at a time, in order."""

    def __init__(
        self,
        *,
        login: BrokerLogin,
        prefix: str,
        readings_topic: str,
        register: Register,
        metrics: IngestMetrics,
        clock: Callable[[], datetime],
        publisher: Callable[[], Awaitable[KafkaPublisher]],
    ) -> None:
        self._login = login
        self._prefix = prefix
        self._readings_topic = readings_topic
        self._register = register
        self._metrics = metrics
        self._clock = clock
        # Built in run(): aiokafka's producer belongs to the event loop that creates it.
        self._new_publisher = publisher
        self._publisher: KafkaPublisher | None = None
        self._stopping = asyncio.Event()
        #: Set while the gateway is subscribed; tests and health checks wait for it.
        self.ready = asyncio.Event()

    @property
    def uploads_filter(self) -> str:
        return f"{self._prefix}/+/readings"

    def answers_topic(self, sender: str) -> str:
        return f"{self._prefix}/{sender}/acks"

    def stop(self) -> None:
        """Finish the upload in hand, then leave ``run`` (safe to call from a signal handler)."""
        self._stopping.set()

    async def run(self) -> None:
        """Serve until ``stop()``; after a lost broker or Kafka failure, reconnect with backoff."""
        self._publisher = await self._new_publisher()
        await self._publisher.start()
        pause = _RETRY_FIRST_S
        try:
            while not self._stopping.is_set():
                try:
                    await self._serve()
                except (aiomqtt.MqttError, KafkaError) as error:
                    if self.ready.is_set():  # it was serving: start the backoff afresh
                        pause = _RETRY_FIRST_S
                    self.ready.clear()
                    log.warning("MQTT ingest interrupted (%s); reconnecting in %.0fs", error, pause)
                    await self._sleep(pause)
                    pause = min(pause * 2, _RETRY_MAX_S)
        finally:
            self.ready.clear()
            await self._publisher.stop()

    def mqtt_client(self) -> aiomqtt.Client:
        """A client on the gateway's persistent session, acknowledging messages manually."""
        client = aiomqtt.Client(
            self._login.host,
            self._login.port,
            username=self._login.username,
            password=self._login.password.get_secret_value(),
            identifier=self._login.client_id,
            clean_session=False,
            keepalive=30,
            timeout=30,
            # Answers and PUBACKs are small packets sent one after another: with Nagle's
            # algorithm each waits for the TCP ACK of the previous one (delayed ACK, ~40 ms).
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        # aiomqtt has no public manual-ack switch yet (see the module docstring).
        client._client.manual_ack_set(True)
        return client

    async def _serve(self) -> None:
        async with self.mqtt_client() as client:
            await client.subscribe(self.uploads_filter, qos=1)
            self.ready.set()
            log.info("MQTT ingest subscribed to %s", self.uploads_filter)
            messages = aiter(client.messages)
            stopping = asyncio.ensure_future(self._stopping.wait())
            try:
                while True:
                    arrival = asyncio.ensure_future(anext(messages))
                    await asyncio.wait({arrival, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    if not arrival.done():
                        arrival.cancel()
                        return
                    await self._handle(client, arrival.result())
            finally:
                stopping.cancel()

    async def _handle(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        sender = self._sender(message.topic.value)
        if sender is not None:
            raw = _payload_bytes(message.payload)
            now = self._clock()
            upload = judge_upload(raw, sender=sender, register=self._register, now=now)
            await self._forward(upload, now)
            answer = json.dumps(upload.answer(), ensure_ascii=False).encode()
            await client.publish(self.answers_topic(sender), answer, qos=1)
        else:  # the subscription filter makes this unreachable; never block the session on it
            log.warning("ignoring a message on unexpected topic %s", message.topic.value)
        # Only now does the broker learn that the upload is handled (see the module docstring).
        client._client.ack(message.mid, message.qos)

    async def _forward(self, upload: Upload, now: datetime) -> None:
        """Kafka first: accepted readings, then dead letters; each awaited until durable."""
        assert self._publisher is not None, "run() builds the publisher first"
        received = self._metrics.received.labels(channel=CHANNEL)
        received.inc(len(upload.items) if upload.refused is None else 1)
        messages = [(r.enterprise_code.encode(), encode_reading(r)) for r in upload.readings]
        await self._publisher.publish(CHANNEL, self._readings_topic, messages)
        for rejection, raw in upload.dead_letters():
            self._metrics.rejected.labels(channel=CHANNEL, kind=rejection.kind).inc()
            if rejection.kind == "unknown_sender":
                self._metrics.auth_failures.labels(channel=CHANNEL).inc()
            await self._publisher.dead_letter(CHANNEL, rejection.kind, rejection.reason, raw, now)

    def _sender(self, topic: str) -> str | None:
        levels = topic.split("/")
        if len(levels) == 3 and levels[0] == self._prefix and levels[2] == "readings":
            return levels[1]
        return None

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less when ``stop()`` is called meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


def _payload_bytes(payload: str | bytes | bytearray | int | float | None) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()


def broker_login(settings: Settings) -> BrokerLogin:
    """The broker address and login from ``EW_MQTT_URL``, ``_USERNAME`` and ``_PASSWORD``."""
    url = urlsplit(settings.mqtt_url)
    if url.scheme != "mqtt" or not url.hostname:
        raise ValueError(f"EW_MQTT_URL {settings.mqtt_url!r}: use mqtt://host:port")
    if settings.mqtt_password is None:
        raise ValueError("EW_MQTT_PASSWORD is not set: `energywatch stack up` writes it")
    if not _PREFIX.match(settings.mqtt_topic_prefix):
        raise ValueError(
            f"EW_MQTT_TOPIC_PREFIX {settings.mqtt_topic_prefix!r}: one topic level of letters, "
            "digits, '_', '.', '-' (the broker's ACL expects <prefix>/<code>/readings)"
        )
    return BrokerLogin(
        host=url.hostname,
        port=url.port or 1883,
        username=settings.mqtt_username,
        password=settings.mqtt_password,
        # Fixed per prefix, so the broker keeps this gateway's session across restarts.
        client_id=f"energywatch-ingest-mqtt.{settings.mqtt_topic_prefix}",
    )


def create_mqtt_gateway(
    settings: Settings,
    register: Register,
    metrics: IngestMetrics,
    clock: Callable[[], datetime],
) -> MqttGateway:
    """The composition root of ``energywatch ingest mqtt``. Connects nothing until ``run()``.

    Raises ValueError, saying which setting to fix, for an unusable MQTT configuration.
    """
    return MqttGateway(
        login=broker_login(settings),
        prefix=settings.mqtt_topic_prefix,
        readings_topic=settings.readings_topic,
        register=register,
        metrics=metrics,
        clock=clock,
        publisher=lambda: _kafka_publisher(settings, metrics),
    )


async def _kafka_publisher(settings: Settings, metrics: IngestMetrics) -> KafkaPublisher:
    # The topics must exist, or publishing would wait out Kafka's metadata timeout.
    await asyncio.to_thread(ensure_topics, settings)
    return KafkaPublisher(settings, metrics)
