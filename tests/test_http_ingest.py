"""The HTTPS ingest API against real Kafka (and, for "lands once", the real worker and
TimescaleDB). The server runs in-process on a free loopback port."""

import asyncio
import json
import ssl
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from contracts.dead_letters import decode_dead_letter
from contracts.readings import EnergyType, decode_reading
from ingest.http_server import serve_http
from ingest.metrics import IngestMetrics
from simulators.credentials import register_for_fleet, simulated_token
from simulators.fleet import load_fleet
from tests.conftest import free_port, wait_until
from tests.pipeline import read_topic, stored_count

pytestmark = pytest.mark.services
FLEET = load_fleet(
    Path(__file__).resolve().parent.parent / "scenarios/fleets/yuncheng-industrial.yaml"
)
REGISTER = register_for_fleet(FLEET)
STEEL = FLEET.enterprise("hj-steel")
CEMENT = FLEET.enterprise("jx-cement")


def token(enterprise) -> str:
    return simulated_token(FLEET.seed, enterprise.code)


def reading(meter: str, minutes: int, value: float = 100.0, unit: str = "kWh") -> dict[str, Any]:
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=1)
    start -= timedelta(minutes=start.minute % 15)
    at = start + timedelta(minutes=minutes)
    return {"meter_id": meter, "period_start": at.isoformat(), "unit": unit, "value": value}


class Gateway:
    def __init__(self, settings, tls: tuple[Path, Path] | None = None) -> None:
        update: dict[str, Any] = {"http_port": free_port()}
        if tls:
            update |= {"http_tls_cert": tls[0], "http_tls_key": tls[1]}
        self.settings = settings.model_copy(update=update)
        self.servers: list[Any] = []
        self.thread = threading.Thread(
            target=lambda: asyncio.run(
                serve_http(
                    self.settings,
                    REGISTER,
                    IngestMetrics.create(CollectorRegistry()),
                    started=self.servers.append,
                )
            ),
            daemon=True,
        )
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.settings.http_port}"

    def __enter__(self) -> "Gateway":
        self.thread.start()
        wait_until(lambda: self.servers and self.servers[0].started, 20, what="the HTTP gateway")
        return self

    def __exit__(self, *exc) -> None:
        self.servers[0].should_exit = True
        self.thread.join(10)


@pytest.fixture
def settings(pipeline_settings):
    return pipeline_settings.model_copy(
        update={"production_topic": f"{pipeline_settings.readings_topic}.production"}
    )


def post(
    gateway: Gateway, path: str, items: list[Any], enterprise=STEEL, **headers: str
) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}{path}",
        json={"items": items},
        headers={"Authorization": f"Bearer {token(enterprise)}", **headers},
        timeout=30,
    )


def test_each_item_is_answered_good_ones_reach_kafka_and_bad_ones_the_dead_letter_topic(settings):
    electricity = STEEL.meter(EnergyType.ELECTRICITY).meter_id
    items = [
        reading(electricity, 0),
        reading(CEMENT.meter(EnergyType.ELECTRICITY).meter_id, 0),  # another enterprise's meter
        reading(electricity, 15, unit="GJ"),
        reading(STEEL.meter(EnergyType.COKE).meter_id, 15, value=2.5, unit="t"),
        "not an object",
    ]
    with Gateway(settings) as gateway:
        response = post(gateway, "/v1/readings", items)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [i["status"] for i in body["items"]] == [
        "accepted",
        "rejected",
        "rejected",
        "accepted",
        "rejected",
    ]
    assert [i["kind"] for i in body["items"]] == [
        None,
        "not_your_meter",
        "wrong_unit",
        None,
        "wrong_schema",
    ]
    assert (body["accepted"], body["rejected"]) == (2, 3)
    records = read_topic(settings, settings.readings_topic, 2)
    stored = [decode_reading(r.value) for r in records]
    assert {r.meter_id for r in stored} == {electricity, STEEL.meter(EnergyType.COKE).meter_id}
    assert {r.key for r in records} == {STEEL.code.encode()}  # partitioned by unit
    assert all(r.source == "https" for r in stored)
    letters = [
        decode_dead_letter(r.value) for r in read_topic(settings, settings.dead_letter_topic, 3)
    ]
    assert sorted(letter.kind for letter in letters) == [
        "not_your_meter",
        "wrong_schema",
        "wrong_unit",
    ]
    assert all(letter.stage == "ingest.http" for letter in letters)


def test_requests_without_a_valid_token_are_refused(settings):
    electricity = STEEL.meter(EnergyType.ELECTRICITY).meter_id
    with Gateway(settings) as gateway:
        missing = httpx.post(
            f"{gateway.url}/v1/readings", json={"items": [reading(electricity, 0)]}
        )
        forged = httpx.post(
            f"{gateway.url}/v1/readings",
            json={"items": [reading(electricity, 0)]},
            headers={"Authorization": f"Bearer {STEEL.code}.guessed"},
        )
        other = post(gateway, "/v1/readings", [reading(electricity, 0)], enterprise=CEMENT)
    assert missing.status_code == 401
    assert forged.status_code == 401
    assert "Bearer <credit code>.<secret>" in forged.json()["detail"]
    assert other.json()["items"][0]["kind"] == "not_your_meter"  # a valid token, not its meter


def test_a_batch_resent_with_its_idempotency_key_is_answered_again_but_published_once(settings):
    electricity = STEEL.meter(EnergyType.ELECTRICITY).meter_id
    items = [reading(electricity, m) for m in (0, 15, 30)]
    with Gateway(settings) as gateway:
        first = post(gateway, "/v1/readings", items, **{"Idempotency-Key": "batch-1"})
        again = post(gateway, "/v1/readings", items, **{"Idempotency-Key": "batch-1"})
    assert first.json() == again.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(read_topic(settings, settings.readings_topic, 6, timeout_s=5)) == 3


def test_a_batch_sent_twice_lands_once_in_timescaledb(settings, start_service):
    electricity = STEEL.meter(EnergyType.ELECTRICITY).meter_id
    items = [reading(electricity, m, value=10 + m) for m in range(0, 120, 15)]
    start_service("worker", settings)
    with Gateway(settings) as gateway:
        assert post(gateway, "/v1/readings", items).json()["accepted"] == 8
        assert post(gateway, "/v1/readings", items).json()["accepted"] == 8
    wait_until(lambda: stored_count(settings) >= 8, 60, what="the readings stored")
    assert len(read_topic(settings, settings.readings_topic, 16)) == 16  # both batches published
    assert stored_count(settings) == 8


def test_daily_and_monthly_reports_reach_the_production_topic(settings):
    today = datetime.now(UTC).astimezone().date()
    day = f"{today - timedelta(days=1)}T00:00:00+08:00"
    month = f"{today.replace(day=1)}T00:00:00+08:00"
    items = [
        {
            "kind": "energy_total",
            "period": "day",
            "period_start": day,
            "energy_type": "electricity",
            "value": 812.5,
            "unit": "MWh",
        },
        {
            "kind": "product_output",
            "period": "day",
            "period_start": day,
            "product_code": "crude_steel",
            "value": 5400,
            "unit": "t",
        },
        {
            "kind": "value_added",
            "period": "month",
            "period_start": month,
            "value": 3200,
            "unit": "10^4 CNY",
        },
        {
            "kind": "energy_total",
            "period": "day",
            "period_start": day,
            "energy_type": "electricity",
            "value": 1,
            "unit": "t",
        },
    ]
    with Gateway(settings) as gateway:
        response = post(gateway, "/v1/reports", items)
    body = response.json()
    assert [i["status"] for i in body["items"]] == ["accepted"] * 3 + ["rejected"]
    reports = [json.loads(r.value) for r in read_topic(settings, settings.production_topic, 3)]
    assert {r["kind"] for r in reports} == {"energy_total", "product_output", "value_added"}
    assert next(r for r in reports if r["kind"] == "energy_total")["consumption_kwh"] == 812_500.0


def test_the_api_is_documented_in_openapi(settings):
    with Gateway(settings) as gateway:
        spec = httpx.get(f"{gateway.url}/openapi.json").json()
    assert {"/v1/readings", "/v1/reports", "/v1/health"} <= set(spec["paths"])
    assert "ReadingItem" in json.dumps(spec) or "items" in json.dumps(spec)


def test_tls_is_served_when_a_certificate_is_configured(settings, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    with Gateway(settings, tls=(cert, key)) as gateway:
        assert gateway.url.startswith("https://")
        ok = httpx.get(
            f"{gateway.url}/v1/health", verify=ssl.create_default_context(cafile=str(cert))
        )
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{gateway.url}/v1/health")  # an unknown certificate is not trusted
    assert ok.json() == {"status": "ok"}
