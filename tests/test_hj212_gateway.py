"""The HJ 212 TCP gateway with real sockets and real Kafka: devices connect, upload minute
data, get their 9014 replies, and the samples arrive in Kafka; bad input is dead-lettered and
the gateway keeps serving; every connection is bounded."""

import asyncio
import contextlib
import random
import socket
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from contracts.dead_letters import decode_dead_letter
from contracts.voc import decode_voc_sample
from ingest.hj212 import decode_frame
from ingest.hj212_server import RAW_HEADER, ConnectionLimits, serve_hj212
from ingest.metrics import IngestMetrics
from tests.conftest import free_port, wait_until
from tests.hj212_devices import MONITOR, PASSWORD, REGISTER, minute_packets, packet
from tests.pipeline import read_topic

pytestmark = pytest.mark.services


class Gateway:
    def __init__(self, settings, limits: ConnectionLimits | None = None) -> None:
        self.settings = settings.model_copy(
            update={"hj212_port": free_port(), "voc_topic": f"{settings.readings_topic}.voc"}
        )
        self.metrics = IngestMetrics.create(CollectorRegistry())
        self.loop = asyncio.new_event_loop()
        self.servers: list[asyncio.Server] = []
        self.limits = limits or ConnectionLimits()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.task = self.loop.create_task(
            serve_hj212(self.settings, REGISTER, self.metrics, self.limits, self.servers.append)
        )
        with contextlib.suppress(asyncio.CancelledError):
            self.loop.run_until_complete(self.task)

    def __enter__(self) -> "Gateway":
        self.thread.start()
        wait_until(lambda: self.servers, 30, what="the HJ 212 gateway")
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(10)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.settings.hj212_port), timeout=10)

    def rejected(self, kind: str) -> float:
        value = self.metrics.rejected.labels(channel="hj212", kind=kind)._value.get()
        return float(value)


def read_reply(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_a_device_uploads_minute_data_gets_each_9014_and_the_samples_arrive_in_kafka(
    pipeline_settings,
):
    packets = minute_packets(30)
    with Gateway(pipeline_settings) as gateway, gateway.connect() as device:
        for raw in packets:
            device.sendall(raw)
            reply = decode_frame(read_reply(device))
            assert (reply.cn, reply.qn) == ("9014", decode_frame(raw).qn)
        records = read_topic(gateway.settings, gateway.settings.voc_topic, 30)
    samples = [decode_voc_sample(r.value) for r in records]
    assert [s.data_time for s in samples] == [decode_frame(p).data_time for p in packets]
    assert {s.monitor_id for s in samples} == {MONITOR.monitor_id}
    assert {r.key for r in records} == {s.enterprise_code.encode() for s in samples}  # by unit
    raw = dict(records[0].headers)[RAW_HEADER]
    assert PASSWORD.encode() not in raw
    assert raw.replace(b"*" * len(PASSWORD), PASSWORD.encode()) == packets[0]


def test_unknown_devices_and_wrong_passwords_get_no_reply_and_are_dead_lettered(pipeline_settings):
    with Gateway(pipeline_settings) as gateway, gateway.connect() as device:
        device.sendall(packet("2051", mn="NOBODY123"))
        device.sendall(packet("2051", password="123456"))
        device.sendall(packet("9021"))  # the connection still works for a good frame
        assert decode_frame(read_reply(device)).cn == "9013"
        letters = [
            decode_dead_letter(r.value)
            for r in read_topic(gateway.settings, gateway.settings.dead_letter_topic, 2)
        ]
        assert gateway.metrics.auth_failures.labels(channel="hj212")._value.get() == 2
    assert sorted(letter.kind for letter in letters) == ["unknown_device", "wrong_password"]
    assert all(b"123456" not in letter.raw for letter in letters)


def test_an_oversized_frame_closes_the_connection_and_is_dead_lettered(pipeline_settings):
    limits = ConnectionLimits(max_frame_bytes=2048)
    with Gateway(pipeline_settings, limits) as gateway, gateway.connect() as device:
        device.sendall(b"##" + b"9" * 5000)
        assert device.recv(10) == b""  # closed by the gateway
        letters = read_topic(gateway.settings, gateway.settings.dead_letter_topic, 1)
    assert decode_dead_letter(letters[0].value).kind == "too_long"


def test_idle_connections_are_closed_and_extra_connections_refused(pipeline_settings):
    limits = ConnectionLimits(idle_timeout_seconds=1, max_connections=2)
    with Gateway(pipeline_settings, limits) as gateway:
        first, second = gateway.connect(), gateway.connect()
        wait_until(
            lambda: gateway.metrics.connections.labels(channel="hj212")._value.get() == 2,
            10,
            what="two open connections",
        )
        third = gateway.connect()
        assert third.recv(10) == b""  # refused: closed at once
        started = time.monotonic()
        assert first.recv(10) == b""  # idle: closed after a second
        assert time.monotonic() - started < 5
        for sock in (first, second, third):
            sock.close()
        assert gateway.rejected("too_many_connections") == 1


def test_a_flooding_device_is_slowed_to_its_packet_rate(pipeline_settings):
    limits = ConnectionLimits(packets_per_second=20)
    packets = minute_packets(21)
    with Gateway(pipeline_settings, limits) as gateway, gateway.connect() as device:
        started = time.monotonic()
        device.sendall(b"".join(packets))
        for _ in packets:
            read_reply(device)
        elapsed = time.monotonic() - started
    assert elapsed >= 0.95  # 21 packets at 20/s take at least a second


def _mutate(raw: bytes, rng: random.Random) -> bytes:
    data = bytearray(raw.rstrip(b"\r\n"))
    for _ in range(rng.randint(1, 4)):
        how = rng.random()
        position = rng.randrange(len(data)) if data else 0
        if how < 0.4 and data:
            data[position] = rng.randrange(256)
        elif how < 0.6 and data:
            del data[position : position + rng.randint(1, 20)]
        elif how < 0.8:
            data[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 10)))
        else:
            data = data[: rng.randrange(len(data) + 1)]
    return bytes(data).replace(b"\n", b" ") + b"\r\n"


def test_one_hundred_thousand_mutated_packets_do_not_stop_the_gateway(pipeline_settings):
    rng = random.Random(212)
    seeds = [*minute_packets(20), packet("9021"), packet("2011")]
    limits = ConnectionLimits(packets_per_second=1_000_000)
    with Gateway(pipeline_settings, limits) as gateway:

        def blast(count: int, seed: int) -> None:
            local = random.Random(seed)
            with gateway.connect() as device:
                device.settimeout(60)
                payload = b"".join(_mutate(local.choice(seeds), local) for _ in range(count))
                device.sendall(payload)
                device.shutdown(socket.SHUT_WR)
                while device.recv(65536):
                    pass  # drain replies until the gateway has handled everything

        workers = [
            threading.Thread(target=blast, args=(10_000, rng.randrange(1 << 30))) for _ in range(10)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(600)
        received = gateway.metrics.received.labels(channel="hj212")._value.get()
        assert received >= 100_000
        with gateway.connect() as device:  # still serving, still right
            good = minute_packets(1)[0]
            device.sendall(good)
            assert decode_frame(read_reply(device)).cn == "9014"
