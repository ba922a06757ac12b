"""Bad input: fuzzed HJ 212 packets and malformed HTTPS and MQTT uploads against the real
gateways, and an account of every one of them (issue 8, part 3).

    a seeded mutator (pure) -> frames, each with what was done to it, and what the gateway's
      own pure core says it must become (accepted, a rejection kind, or a notice it answers)
    -> ``energywatch ingest hj212`` as a child process, over several TCP connections
    -> afterwards: the gateway still answers a valid packet; its /metrics count, by kind,
       exactly what the core predicted; received = accepted + rejections + notices; the
       dead-letter topic holds one letter per rejection, with its reason, and the raw bytes
       of each (a per-kind fingerprint of the bytes, which must match what was sent)

The HTTPS and MQTT gateways get malformed uploads the same way (bodies that are not JSON, not
a batch, items of every wrong shape, huge numbers, unicode, deep nesting), predicted by
``ingest.validation.check_reading`` and ``ingest.mqtt_gateway.judge_upload``.

The gateways run exactly as deployed (``energywatch ingest ...``) on their own topics, ports
and register, with one setting changed: the HJ 212 per-connection packet rate, which would
otherwise slow the fuzzer to 100 packets/s per connection.
"""

import asyncio
import base64
import contextlib
import hashlib
import json
import random
import re
import secrets
import socket
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import yaml
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.ingest import free_port
from contracts.dead_letters import decode_dead_letter
from energywatch.kafka_topics import delete_topics, ensure_topics
from energywatch.service_process import ServiceProcess
from energywatch.settings import REPO_ROOT, Settings
from ingest.hj212 import crc16_hj212, crc_hex
from ingest.hj212_core import handle_frame, mask_password
from ingest.mqtt_gateway import judge_upload
from ingest.validation import Rejection, check_reading
from plans.register import Register
from simulators.credentials import register_for_fleet, simulated_token
from simulators.scenario import load_scenario
from simulators.voc import voc_packet, voc_samples

Progress = Callable[[str], None]
MUTATIONS: Final = (
    "valid",
    "bit_flip",
    "truncation",
    "crc",
    "length",
    "field_name",
    "field_value",
    "huge_number",
    "unicode",
    "garbage",
)
#: What a frame becomes besides a rejection kind: published, or answered with nothing to store.
ACCEPTED: Final = "accepted"
NOTICE: Final = "notice"
SCENARIO: Final = REPO_ROOT / "scenarios" / "voc-exceedance.yaml"
_FIELD = re.compile(rb"([A-Za-z][A-Za-z0-9-]*)=([^;,&]*)")
_UNICODE: Final = ("温度", "µg/m³", "\u200b", "\ufeff", "😀", "Ω", "\u202e", "é", "\x85")
_ODD_VALUES: Final = (
    b"",
    b"-1",
    b"NaN",
    b"inf",
    b"-inf",
    b"1e999",
    b"0x1F",
    b"1,5",
    b"20261301250000",
    b"99999999999999",
    b"  ",
    b"N",
    b"--",
    b".",
    b"1.2.3",
    b"+5",
)


# --- what to send (pure) ----------------------------------------------------------------


def seal(data: bytes) -> bytes:
    """A frame around ``data`` with a right length field (modulo 10000) and CRC."""
    return b"##%04d%b%b\r\n" % (len(data) % 10_000, data, crc_hex(crc16_hj212(data)).encode())


class PacketMutator:
    """Seeded HJ 212 frames: ``valid_ratio`` of them valid packets as sent, the rest mutated
    one way each (``MUTATIONS``). Frames never hold a ``\\n`` before their end and are at most
    ``max_bytes`` long, so each is one frame on the wire, under the gateway's frame limit."""

    def __init__(
        self, valid: Sequence[bytes], seed: int, valid_ratio: float, max_bytes: int = 4000
    ) -> None:
        self._valid = list(valid)
        self._rng = random.Random(seed)  # noqa: S311 (seeded, deterministic: not cryptography)
        self._valid_ratio = valid_ratio
        self._max_bytes = max_bytes

    def next(self) -> tuple[str, bytes]:
        rng = self._rng
        base = rng.choice(self._valid)
        if rng.random() < self._valid_ratio:
            return "valid", base
        how = rng.choice(MUTATIONS[1:])
        frame = getattr(self, f"_{how}")(base)
        frame = frame.removesuffix(b"\r\n").replace(b"\n", b" ")
        return how, frame[: self._max_bytes - 2] + b"\r\n"

    def _data(self, frame: bytes) -> bytes:
        return frame[6:-6]  # between "##0123" and "ABCD\r\n"

    def _bit_flip(self, frame: bytes) -> bytes:
        data = bytearray(frame.rstrip(b"\r\n"))
        for _ in range(self._rng.randint(1, 4)):
            at = self._rng.randrange(len(data))
            data[at] ^= 1 << self._rng.randrange(8)
        return bytes(data)

    def _truncation(self, frame: bytes) -> bytes:
        return frame[: self._rng.randrange(len(frame) - 2)]

    def _crc(self, frame: bytes) -> bytes:
        wrong = crc_hex((int(frame[-6:-2], 16) + self._rng.randint(1, 0xFFFE)) & 0xFFFF)
        return frame[:-6] + wrong.encode()

    def _length(self, frame: bytes) -> bytes:
        choice = self._rng.random()
        if choice < 0.7:
            field_ = b"%04d" % ((int(frame[2:6]) + self._rng.randint(1, 9998)) % 10_000)
        else:
            field_ = bytes(self._rng.choice(b"0123456789ABCDEF -+x") for _ in range(4))
        return frame[:2] + field_ + frame[6:-2]

    def _fields(self, data: bytes) -> list[Any]:
        return list(_FIELD.finditer(data))

    def _field_name(self, frame: bytes) -> bytes:
        data = self._data(frame)
        found = self._rng.choice(self._fields(data))
        name = found.group(1)
        variants = [
            name.swapcase(),
            name[:-1],
            name + b"x",
            b"",
            bytes(self._rng.choice(b"abcXYZ09-_") for _ in range(self._rng.randint(1, 12))),
            name + b"=" + name,
        ]
        data = data[: found.start(1)] + self._rng.choice(variants) + data[found.end(1) :]
        return seal(data)

    def _field_value(self, frame: bytes) -> bytes:
        data = self._data(frame)
        found = self._rng.choice(self._fields(data))
        value = self._rng.choice(
            [
                *_ODD_VALUES,
                bytes(self._rng.randrange(32, 127) for _ in range(self._rng.randint(1, 30))),
            ]
        )
        data = data[: found.start(2)] + value + data[found.end(2) :]
        return seal(data)

    def _huge_number(self, frame: bytes) -> bytes:
        data = self._data(frame)
        numeric = [f for f in self._fields(data) if f.group(2)[:1].isdigit()]
        found = self._rng.choice(numeric or self._fields(data))
        digits = self._rng.randint(20, 900)
        number = self._rng.choice(
            [b"9" * digits, b"-" + b"9" * digits, b"1" + b"0" * digits, b"0." + b"0" * digits]
        )
        data = data[: found.start(2)] + number + data[found.end(2) :]
        return seal(data)

    def _unicode(self, frame: bytes) -> bytes:
        data = self._data(frame)
        text = "".join(self._rng.choice(_UNICODE) for _ in range(self._rng.randint(1, 5)))
        at = self._rng.randrange(len(data) + 1)
        data = data[:at] + text.encode() + data[at:]
        return seal(data) if self._rng.random() < 0.7 else frame[:6] + data + frame[-6:-2]

    def _garbage(self, frame: bytes) -> bytes:
        size = self._rng.randint(0, 300)
        prefix = b"##" if self._rng.random() < 0.5 else b""
        return prefix + bytes(self._rng.randrange(256) for _ in range(size))


def expected_outcome(frame: bytes, register: Register) -> str:
    """What the gateway must make of ``frame``: ``accepted``, a rejection kind, or
    ``notice`` (answered, nothing to store), as its pure core decides."""
    outcome = handle_frame(frame, register)
    if outcome.rejection is not None:
        return outcome.rejection[0]
    return ACCEPTED if outcome.sample_json is not None else NOTICE


def fingerprint(raw: bytes) -> int:
    """An order-free fingerprint term: fingerprints of a multiset add up (mod 2**64)."""
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big")


@dataclass
class Ledger:
    """What was sent and what it must become, by kind, with the dead letters' fingerprints."""

    sent: int = 0
    mutations: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    prints: Counter[str] = field(default_factory=Counter)

    def add(self, how: str, outcome: str, dead_letter_raw: bytes | None) -> None:
        self.sent += 1
        self.mutations[how] += 1
        self.outcomes[outcome] += 1
        if dead_letter_raw is not None:
            self.prints[outcome] = (self.prints[outcome] + fingerprint(dead_letter_raw)) % 2**64

    @property
    def rejections(self) -> Counter[str]:
        return Counter({k: n for k, n in self.outcomes.items() if k not in (ACCEPTED, NOTICE)})


# --- the world the gateways serve ---------------------------------------------------------


@dataclass(frozen=True)
class World:
    """The register the gateways load (the VOC-exceedance scenario's units and monitors),
    credentials to use it, and valid HJ 212 packets of the last hours."""

    register: Register
    valid_packets: tuple[bytes, ...]
    tokens: dict[str, str]
    meters: dict[str, str]  # enterprise code -> one of its meters

    @classmethod
    def build(cls, packets: int = 150) -> "World":
        scenario = load_scenario(SCENARIO)
        monitors = scenario.plan.voc_monitors
        register = register_for_fleet(scenario.fleet, monitors)
        start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=4)
        frames: list[bytes] = []
        for monitor in monitors:
            password = monitor.password.get_secret_value()
            samples = [
                s for s in voc_samples(monitor, start, packets, seed=8) if s.interval_seconds == 60
            ]
            frames += [voc_packet(s, password, s.data_time) for s in samples[:packets]]
        tokens = {
            e.code: simulated_token(scenario.fleet.seed, e.code) for e in scenario.fleet.enterprises
        }
        meters: dict[str, str] = {}
        for meter in register.meters:
            meters.setdefault(meter.enterprise_code, meter.meter_id)
        return cls(register, tuple(frames), tokens, meters)

    def write(self, directory: Path) -> Path:
        path = directory / "register.yaml"
        document = self.register.model_dump(mode="json")
        path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
        return path


def isolated(settings: Settings, run: str) -> Settings:
    """The stack's settings on topics of this run's own, with free gateway and metrics ports."""
    return settings.named_pipeline(
        f"ew-prove-{run}",
        hj212_port=free_port(),
        http_port=free_port(),
        ingest_metrics_port=free_port(),
        mqtt_topic_prefix=f"ew-prove-{run}",
        prometheus_targets_dir=None,
    )


class GatewayProcess:
    """``energywatch ingest <channel> --register FILE`` as a child process, with its metrics."""

    def __init__(
        self, channel: str, settings: Settings, register_path: Path, logs: Path, **env: str
    ) -> None:
        self.channel = channel
        self.settings = settings
        environment = {**settings.as_env(), **env}
        environment.pop("EW_PROMETHEUS_TARGETS_DIR", None)
        self.process = ServiceProcess(
            ["ingest", channel, "--register", str(register_path), "--loglevel", "error"],
            environment,
            logs / f"prove-ingest-{channel}.log",
        )

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.ingest_metrics_port}/metrics"

    def __enter__(self) -> "GatewayProcess":
        self.process.start()
        deadline = time.monotonic() + 60
        while not self._ready():
            if not self.process.alive() or time.monotonic() > deadline:
                self.process.stop()
                raise RuntimeError(
                    f"the {self.channel} gateway did not start:\n{self.process.log_tail()}"
                )
            time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop()

    def _ready(self) -> bool:
        port = {"hj212": self.settings.hj212_port, "http": self.settings.http_port}.get(
            self.channel
        )
        try:
            self.samples()
            if port is not None:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of the gateway's /metrics: (name, sorted labels) -> value."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as answer:  # noqa: S310
            text = answer.read().decode()
        found = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return found

    def counts(self) -> dict[str, Any]:
        """This channel's received, accepted, rejected by kind, dead letters, auth failures."""
        samples = self.samples()
        channel = ("channel", self.channel)

        def one(name: str) -> int:
            return int(samples.get((name, (channel,)), 0))

        rejected = Counter(
            {
                dict(labels)["kind"]: int(value)
                for (name, labels), value in samples.items()
                if name == "energywatch_ingest_rejected_total" and channel in labels
            }
        )
        return {
            "received": one("energywatch_ingest_received_total"),
            "accepted": one("energywatch_ingest_accepted_total"),
            "rejected": rejected,
            "dead_letters": one("energywatch_ingest_dead_letters_total"),
            "auth_failures": one("energywatch_ingest_auth_failures_total"),
        }

    def rss_kib(self) -> int:
        """The gateway's resident memory (Linux ``/proc``)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1])


def _partitions(consumer: Any, topic: str) -> list[Any]:
    from kafka import TopicPartition

    for _ in range(50):
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        consumer.topics()  # fetches the cluster's metadata
        time.sleep(0.1)
    raise RuntimeError(f"topic {topic} not found: is Kafka up? (energywatch stack status)")


def topic_records(settings: Settings, topic: str) -> Iterator[bytes]:
    """Every record value of ``topic``, from the beginning to its end now."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        consumer_timeout_ms=10_000,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    try:
        partitions = _partitions(consumer, topic)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        left = {tp: end for tp, end in ends.items() if end > 0}
        while left:
            batches = consumer.poll(timeout_ms=2000, max_records=50_000)
            if not batches and all(consumer.position(tp) >= end for tp, end in left.items()):
                break
            for tp, records in batches.items():
                for record in records:
                    if record.offset < ends[tp]:
                        yield record.value
            left = {tp: end for tp, end in left.items() if consumer.position(tp) < end}
    finally:
        consumer.close()


def dead_letter_account(settings: Settings, stage: str) -> dict[str, Any]:
    """The dead letters of one stage: count and fingerprint by kind, and whether each has a
    reason and its raw bytes."""
    counts: Counter[str] = Counter()
    prints: Counter[str] = Counter()
    without_reason = without_raw = 0
    for value in topic_records(settings, settings.dead_letter_topic):
        letter = decode_dead_letter(value)
        if letter.stage != stage:
            continue
        counts[letter.kind] += 1
        prints[letter.kind] = (prints[letter.kind] + fingerprint(letter.raw)) % 2**64
        without_reason += not letter.reason
        without_raw += not letter.raw_base64
    return {
        "by_kind": counts,
        "prints": prints,
        "without_reason": without_reason,
        "without_raw": without_raw,
    }


def topic_size(settings: Settings, topic: str) -> int:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        partitions = _partitions(consumer, topic)
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


# --- HJ 212 -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FuzzConfig:
    packets: int = 1_000_000
    connections: int = 32
    valid_ratio: float = 0.1
    seed: int = 212
    http_requests: int = 2_000
    mqtt_messages: int = 2_000


async def _blast(
    port: int,
    count: int,
    mutator: PacketMutator,
    first: bytes,
    register: Register,
    ledger: Ledger,
    sent: list[int],
) -> None:
    """One connection: a valid packet first (it logs the connection in), then ``count - 1``
    frames from ``mutator``; read every reply; end when the gateway has handled all."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def drain_replies() -> None:
        while await reader.read(65536):
            pass

    replies = asyncio.create_task(drain_replies())
    batch: list[bytes] = []
    for index in range(count):
        how, frame = ("valid", first) if index == 0 else mutator.next()
        outcome = expected_outcome(frame, register)
        ledger.add(how, outcome, None if outcome in (ACCEPTED, NOTICE) else mask_password(frame))
        batch.append(frame)
        if len(batch) >= 200:
            writer.write(b"".join(batch))
            sent[0] += len(batch)
            batch.clear()
            await writer.drain()
    writer.write(b"".join(batch))
    sent[0] += len(batch)
    await writer.drain()
    writer.write_eof()
    await replies  # the gateway closes once it has handled the last frame
    writer.close()


async def _answers_a_valid_packet(port: int, frame: bytes) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(frame)
        await writer.drain()
        reply = await asyncio.wait_for(reader.readuntil(b"\n"), 10)
        return b"CN=9014" in reply
    finally:
        writer.close()


def fuzz_hj212(
    gateway: GatewayProcess, world: World, config: FuzzConfig, progress: Progress
) -> dict[str, Any]:
    """Send ``config.packets`` frames over ``config.connections`` connections; account for
    every one of them."""
    ledger = Ledger()
    sent = [0]
    share, extra = divmod(config.packets, config.connections)
    port = gateway.settings.hj212_port

    async def main() -> float:
        started = time.perf_counter()
        tasks = [
            asyncio.create_task(
                _blast(
                    port,
                    share + (1 if i < extra else 0),
                    PacketMutator(world.valid_packets, config.seed * 1000 + i, config.valid_ratio),
                    world.valid_packets[i % len(world.valid_packets)],
                    world.register,
                    ledger,
                    sent,
                )
            )
            for i in range(config.connections)
            if share + (1 if i < extra else 0) > 0
        ]
        while not all(t.done() for t in tasks):
            await asyncio.wait(tasks, timeout=1.0)
            progress(f"HJ 212: {sent[0]:,}/{config.packets:,} frames sent")
        for task in tasks:
            task.result()
        return time.perf_counter() - started

    seconds = asyncio.run(main())
    last = world.valid_packets[-1]
    alive = asyncio.run(_answers_a_valid_packet(port, last))
    ledger.add("valid", expected_outcome(last, world.register), None)
    progress("HJ 212: reading the gateway's metrics and the dead-letter topic")
    counts = gateway.counts()
    letters = dead_letter_account(gateway.settings, "ingest.hj212")
    published = topic_size(gateway.settings, gateway.settings.voc_topic)
    expected_rejected = ledger.rejections
    frame_rejections = Counter({k: counts["rejected"].get(k, 0) for k in expected_rejected})
    connection_refusals = {
        k: n for k, n in counts["rejected"].items() if k not in expected_rejected and n
    }
    notices = counts["received"] - counts["accepted"] - sum(frame_rejections.values())
    checks = {
        "alive: answers a valid packet afterwards": alive,
        "received = sent": counts["received"] == ledger.sent,
        "accepted = predicted": counts["accepted"] == ledger.outcomes[ACCEPTED],
        "rejections by kind = predicted": frame_rejections == expected_rejected,
        "received = accepted + rejections + notices": notices == ledger.outcomes[NOTICE],
        "no connection refused or closed early": not connection_refusals,
        "published to the VOC topic = accepted": published == counts["accepted"],
        "dead letters by kind = rejections": letters["by_kind"] == expected_rejected,
        "dead letters' raw bytes = the frames sent (fingerprint by kind)": (
            letters["prints"] == +ledger.prints
        ),
        "every dead letter has a reason and raw bytes": (
            letters["without_reason"] == 0 and letters["without_raw"] == 0
        ),
    }
    return {
        "packets": ledger.sent,
        "connections": config.connections,
        "seconds": round(seconds, 2),
        "packets_per_second": round(ledger.sent / seconds, 1) if seconds else None,
        "mutations": dict(ledger.mutations.most_common()),
        "predicted": dict(ledger.outcomes.most_common()),
        "gateway": {
            "received": counts["received"],
            "accepted": counts["accepted"],
            "rejected_by_kind": dict(frame_rejections.most_common()),
            "notices": notices,
            "connection_refusals": connection_refusals,
            "dead_letters_metric": counts["dead_letters"],
            "auth_failures": counts["auth_failures"],
        },
        "dead_letter_topic": dict(letters["by_kind"].most_common()),
        "voc_topic_records": published,
        "checks": checks,
    }


# --- HTTPS --------------------------------------------------------------------------------

_JUNK_JSON: Final[tuple[Any, ...]] = (
    None,
    True,
    0,
    -1,
    1e308,
    "x",
    "",
    [],
    {},
    [[]],
    {"a": {"b": {"c": []}}},
    "温度",
    "\u0000",
    10**40,
)


def _junk(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.random()
    if depth > 2 or choice < 0.5:
        return rng.choice(_JUNK_JSON)
    if choice < 0.75:
        return [_junk(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["meter_id", "value", "unit", "x", "温"]): _junk(rng, depth + 1)}


def reading_items(world: World, code: str, rng: random.Random, count: int) -> list[Any]:
    """Readings for ``code``'s meter, mostly broken one way each; about one in five valid."""
    meter = world.meters[code]
    other = next(m for c, m in world.meters.items() if c != code)
    base_time = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    items: list[Any] = []
    for n in range(count):
        at = base_time + timedelta(minutes=15 * rng.randrange(96))
        item: dict[str, Any] = {
            "meter_id": meter,
            "period_start": at.isoformat(),
            "unit": "kWh",
            "value": round(rng.uniform(0, 500), 3),
        }
        how = rng.randrange(12)
        if how == 1:
            item["meter_id"] = other
        elif how == 2:
            item["meter_id"] = "NO-SUCH-" + str(n)
        elif how == 3:
            item["unit"] = rng.choice(["furlongs", "kW", "", "温度", 7])
        elif how == 4:
            item["value"] = rng.choice(["12,5", "abc", None, [], {"v": 1}, True])
        elif how == 5:
            item["value"] = -rng.uniform(1, 100)
        elif how == 6:
            item["value"] = rng.choice([1e300, 10**400, 9.9e99])
        elif how == 7:
            item["period_start"] = rng.choice(["yesterday", "2026-13-45T00:00:00", "", 17])
        elif how == 8:
            item["period_start"] = (datetime.now(UTC) + timedelta(days=30)).isoformat()
        elif how == 9:
            item["interval_seconds"] = rng.choice([7, -900, "15m", 0])
        elif how == 10:
            items.append(_junk(rng))
            continue
        elif how == 11:
            del item[rng.choice(list(item))]
        items.append(item)
    return items


@dataclass
class HttpCase:
    path: str
    body: bytes
    headers: dict[str, str]
    #: predicted (kind, count) per outcome; ``None`` for requests refused unauthenticated
    outcomes: Counter[str] | None
    dead_letter_raws: list[tuple[str, bytes]]


def http_cases(world: World, count: int, seed: int, now: datetime) -> Iterator[HttpCase]:
    """Malformed HTTPS uploads, each with what the gateway must count for it."""
    rng = random.Random(seed)  # noqa: S311 (seeded, deterministic: not cryptography)
    codes = sorted(world.meters)
    for _ in range(count):
        code = rng.choice(codes)
        headers = {
            "Authorization": f"Bearer {world.tokens[code]}",
            "Content-Type": "application/json",
        }
        kind = rng.random()
        if kind < 0.1:  # not JSON at all
            body = rng.choice([b"{", b"\xff\xfe{]", b"items=1", b'{"items": [1,}', b"\x00" * 9])
            yield HttpCase("/v1/readings", body, headers, Counter(not_json=1), [("not_json", body)])
        elif kind < 0.2:  # JSON, but not a batch
            document = rng.choice([[], {"items": "x"}, {"item": []}, 7, {"items": {"a": 1}}])
            body = json.dumps(document).encode()
            yield HttpCase(
                "/v1/readings", body, headers, Counter(wrong_schema=1), [("wrong_schema", body)]
            )
        elif kind < 0.25:  # an unknown sender: refused before anything is looked at
            bad = dict(headers, Authorization=f"Bearer {code}.{secrets.token_hex(8)}")
            yield HttpCase("/v1/readings", b"{", bad, None, [])
        else:
            items = reading_items(world, code, rng, rng.randint(1, 40))
            expected: Counter[str] = Counter()
            letters: list[tuple[str, bytes]] = []
            for item in items:
                checked = check_reading(
                    item, register=world.register, sender=code, now=now, source="https"
                )
                if isinstance(checked, Rejection):
                    expected[checked.kind] += 1
                    raw = json.dumps(item, ensure_ascii=False, default=str).encode()
                    letters.append((checked.kind, raw))
                else:
                    expected[ACCEPTED] += 1
            body = json.dumps({"items": items}, ensure_ascii=False).encode()
            yield HttpCase("/v1/readings", body, headers, expected, letters)


def fuzz_http(
    gateway: GatewayProcess, world: World, config: FuzzConfig, progress: Progress
) -> dict[str, Any]:
    import httpx

    now = datetime.now(UTC)
    ledger = Ledger()
    statuses: Counter[int] = Counter()
    unauthenticated = 0
    url = f"http://127.0.0.1:{gateway.settings.http_port}"
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=30) as client:
        for n, case in enumerate(http_cases(world, config.http_requests, config.seed, now)):
            answer = client.post(case.path, content=case.body, headers=case.headers)
            statuses[answer.status_code] += 1
            if case.outcomes is None:
                unauthenticated += 1
                continue
            for kind, times in case.outcomes.items():
                for _ in range(times):
                    ledger.add("upload", kind, None)
            for kind, raw in case.dead_letter_raws:
                ledger.prints[kind] = (ledger.prints[kind] + fingerprint(raw)) % 2**64
            if n % 100 == 0:
                progress(f"HTTPS: {n:,}/{config.http_requests:,} requests")
        alive = client.get("/v1/health").status_code == 200
    seconds = time.perf_counter() - started
    counts = gateway.counts()
    letters = dead_letter_account(gateway.settings, "ingest.http")
    rejected = Counter({k: n for k, n in counts["rejected"].items() if n})
    checks = {
        "alive: /v1/health answers afterwards": alive,
        "no 5xx answer": not any(s >= 500 for s in statuses),
        "received = accepted + rejections": counts["received"]
        == counts["accepted"] + sum(rejected.values()),
        "accepted = predicted": counts["accepted"] == ledger.outcomes[ACCEPTED],
        "rejections by kind = predicted": rejected == ledger.rejections,
        "unknown senders counted as auth failures": counts["auth_failures"] == unauthenticated,
        "dead letters by kind = rejections": letters["by_kind"] == ledger.rejections,
        "dead letters' raw bytes = what was sent (fingerprint by kind)": (
            letters["prints"] == +ledger.prints
        ),
    }
    return {
        "requests": config.http_requests,
        "items": ledger.sent,
        "seconds": round(seconds, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "predicted": dict(ledger.outcomes.most_common()),
        "gateway": {
            "received": counts["received"],
            "accepted": counts["accepted"],
            "rejected_by_kind": dict(rejected.most_common()),
            "auth_failures": counts["auth_failures"],
        },
        "dead_letter_topic": dict(letters["by_kind"].most_common()),
        "checks": checks,
    }


# --- MQTT ---------------------------------------------------------------------------------


def mqtt_payloads(world: World, code: str, count: int, seed: int) -> Iterator[bytes]:
    """Malformed MQTT uploads: not JSON, deep nesting, lone objects, arrays of bad items."""
    rng = random.Random(seed)  # noqa: S311 (seeded, deterministic: not cryptography)
    for _ in range(count):
        kind = rng.random()
        if kind < 0.15:
            yield bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        elif kind < 0.2:
            depth = rng.choice([100, 5_000, 100_000])
            yield b"[" * depth + b"]" * depth
        elif kind < 0.4:
            yield json.dumps(_junk(rng), ensure_ascii=False).encode()
        elif kind < 0.55:
            yield json.dumps(reading_items(world, code, rng, 1)[0], ensure_ascii=False).encode()
        else:
            items = reading_items(world, code, rng, rng.randint(1, 30))
            yield json.dumps(items, ensure_ascii=False).encode()


def fuzz_mqtt(
    gateway: GatewayProcess, world: World, config: FuzzConfig, progress: Progress
) -> dict[str, Any]:
    """Publish malformed uploads as one enterprise (a broker account made for the run) and
    wait for the gateway's answer to each."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from ingest.mqtt_gateway import broker_login
    from stack import StackSettings
    from stack.mqtt_accounts import remove_enterprise_account, set_enterprise_password

    settings = gateway.settings
    code = sorted(world.meters)[0]
    password = secrets.token_urlsafe(16)
    stack_settings = StackSettings()
    set_enterprise_password(stack_settings, code, password)
    login = broker_login(settings)
    prefix = settings.mqtt_topic_prefix
    answers: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"prove-{uuid.uuid4().hex[:8]}")
    client.username_pw_set(code, password)
    client.on_message = lambda _c, _u, message: answers.append(bytes(message.payload))
    ledger = Ledger()
    try:
        client.connect(login.host, login.port)
        client.loop_start()
        client.subscribe(f"{prefix}/{code}/acks", qos=1)
        time.sleep(0.5)
        started = time.perf_counter()
        for n, payload in enumerate(mqtt_payloads(world, code, config.mqtt_messages, config.seed)):
            now = datetime.now(UTC)
            upload = judge_upload(payload, sender=code, register=world.register, now=now)
            if upload.refused is None:
                for item in upload.items:
                    kind = item.result.kind if isinstance(item.result, Rejection) else ACCEPTED
                    ledger.add("upload", kind, None)
            else:
                ledger.add("upload", upload.refused.kind, None)
            for rejection, raw in upload.dead_letters():
                total = ledger.prints[rejection.kind] + fingerprint(raw)
                ledger.prints[rejection.kind] = total % 2**64
            client.publish(f"{prefix}/{code}/readings", payload, qos=1).wait_for_publish(30)
            if n % 100 == 0:
                progress(f"MQTT: {n:,}/{config.mqtt_messages:,} uploads")
        deadline = time.monotonic() + 120
        while len(answers) < config.mqtt_messages and time.monotonic() < deadline:
            time.sleep(0.2)
        seconds = time.perf_counter() - started
    finally:
        client.loop_stop()
        client.disconnect()
        remove_enterprise_account(stack_settings, code)
    counts = gateway.counts()
    letters = dead_letter_account(settings, "ingest.mqtt")
    rejected = Counter({k: n for k, n in counts["rejected"].items() if n})
    checks = {
        "alive: every upload answered": len(answers) == config.mqtt_messages,
        "received = accepted + rejections": counts["received"]
        == counts["accepted"] + sum(rejected.values()),
        "accepted = predicted": counts["accepted"] == ledger.outcomes[ACCEPTED],
        "rejections by kind = predicted": rejected == ledger.rejections,
        "dead letters by kind = rejections": letters["by_kind"] == ledger.rejections,
        "dead letters' raw bytes = what was sent (fingerprint by kind)": (
            letters["prints"] == +ledger.prints
        ),
    }
    return {
        "messages": config.mqtt_messages,
        "items": ledger.sent,
        "seconds": round(seconds, 2),
        "answers": len(answers),
        "predicted": dict(ledger.outcomes.most_common()),
        "gateway": {
            "received": counts["received"],
            "accepted": counts["accepted"],
            "rejected_by_kind": dict(rejected.most_common()),
        },
        "dead_letter_topic": dict(letters["by_kind"].most_common()),
        "checks": checks,
    }


# --- the suite ----------------------------------------------------------------------------


def run_fuzz(
    settings: Settings,
    config: FuzzConfig,
    logs: Path,
    progress: Progress = lambda message: None,
    channels: Sequence[str] = ("hj212", "http", "mqtt"),
) -> dict[str, Any]:
    """The whole suite on topics of its own (deleted afterwards): results by channel, each
    with its ``checks`` (name -> passed)."""
    run = uuid.uuid4().hex[:10]
    settings = isolated(settings, run)
    world = World.build()
    results: dict[str, Any] = {"seed": config.seed, "valid_ratio": config.valid_ratio}
    ensure_topics(settings)
    try:
        with tempfile.TemporaryDirectory(prefix="ew-prove-") as directory:
            register_path = world.write(Path(directory))
            rate = {"EW_HJ212_PACKETS_PER_SECOND": "1000000000"}
            if "hj212" in channels:
                with GatewayProcess("hj212", settings, register_path, logs, **rate) as gateway:
                    results["hj212"] = fuzz_hj212(gateway, world, config, progress)
            if "http" in channels:
                with GatewayProcess("http", settings, register_path, logs) as gateway:
                    results["http"] = fuzz_http(gateway, world, config, progress)
            if "mqtt" in channels:
                with GatewayProcess("mqtt", settings, register_path, logs) as gateway:
                    results["mqtt"] = fuzz_mqtt(gateway, world, config, progress)
    finally:
        with contextlib.suppress(Exception):
            delete_topics(settings)
    results["passed"] = all(
        all(part["checks"].values()) for name, part in results.items() if isinstance(part, dict)
    )
    return results


def encode_for_json(results: dict[str, Any]) -> dict[str, Any]:
    """Results as plain JSON (Counters as dicts, bytes as base64)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, bytes):
            return base64.b64encode(value).decode()
        return value

    return {k: plain(v) for k, v in results.items()}
