"""The real local Prometheus scrapes the running services and evaluates the pipeline's rules.

Worker, alert evaluator, notifier, Alerts API and the HTTPS ingest gateway run as child
processes on an isolated pipeline; each is registered as a scrape target (file-based
discovery, as ``energywatch stack`` sets it up), and the test asks Prometheus's HTTP API what
it scraped and how its rule groups fared. The notifier's webhook URL points at a closed port:
no alert is raised here, so nothing is sent.
"""

import json
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.readings import ElectricityReading, encode_reading
from stack.scrape_targets import write_scrape_target
from tests.conftest import free_port, wait_until
from tests.pipeline import produce_raw, stored_count

pytestmark = pytest.mark.services

REPO_ROOT = Path(__file__).resolve().parent.parent
REGISTER = REPO_ROOT / "plans" / "registers" / "demo.yaml"
RULE_GROUPS = {
    group["name"]
    for path in (REPO_ROOT / "deploy" / "prometheus" / "rules").glob("*.yml")
    for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
}
READINGS = 24


def prometheus(settings, path: str, **params: str) -> Any:
    url = f"{settings.prometheus_url}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def query(settings, promql: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = prometheus(settings, "/api/v1/query", query=promql)["result"]
    return result


def instant(text: str) -> datetime:
    """A time as Prometheus's API writes it (RFC 3339, nanoseconds, ``Z``)."""
    whole, _, fraction = text.removesuffix("Z").partition(".")
    return datetime.fromisoformat(f"{whole}.{(fraction or '0')[:6]:0<6}+00:00")


def readings() -> list[tuple[bytes, bytes]]:
    code = yaml.safe_load(REGISTER.read_text(encoding="utf-8"))["enterprises"][0]["code"]
    return [
        (
            f"M{i}".encode(),
            encode_reading(
                ElectricityReading(
                    enterprise_code=code,
                    meter_id=f"M{i % 4}",
                    period_start=datetime(2026, 11, 1, i // 4, tzinfo=UTC),
                    consumption_kwh=10 + i,
                )
            ),
        )
        for i in range(READINGS)
    ]


@pytest.mark.timeout(120)
def test_prometheus_scrapes_every_service_and_evaluates_the_pipeline_rules(
    pipeline_settings, start_service
):
    started = time.monotonic()
    settings = pipeline_settings.model_copy(
        update={
            "alerts_api_port": free_port(),
            "alerts_api_metrics_port": free_port(),
            "http_port": free_port(),
            "ingest_metrics_port": free_port(),
        }
    )
    targets_dir = settings.prometheus_targets_dir
    assert targets_dir is not None, "the local stack's Prometheus watches no targets folder"
    env = {"EW_REGISTER_PATH": str(REGISTER), "EW_WEBHOOK_URL": "http://127.0.0.1:9/unused"}
    services = {  # component: (command, metrics port)
        "worker": ("worker", settings.worker_metrics_port),
        "evaluator": ("alerts evaluate", settings.evaluator_metrics_port),
        "notifier": ("notify", settings.notifier_metrics_port),
        "alerts-api": ("alerts api", settings.alerts_api_metrics_port),
        "ingest-http": (f"ingest http --register {REGISTER}", settings.ingest_metrics_port),
    }
    names = {component: f"{settings.worker_app_id}-{component}" for component in services}
    files = []
    try:
        for component, (command, port) in services.items():
            start_service(command, settings, **env)
            files.append(
                write_scrape_target(
                    targets_dir, names[component], f"127.0.0.1:{port}", component=component
                )
            )
        produce_raw(settings, [*readings(), (b"bad", b"not json")])

        # ours, and the one the worker wrote itself under its own name
        expected = [*names.values(), settings.worker_app_id]

        def every_target_up() -> bool:
            active = prometheus(settings, "/api/v1/targets", state="active")["activeTargets"]
            health = {t["labels"].get("service"): t["health"] for t in active}
            return all(health.get(name) == "up" for name in expected)

        wait_until(every_target_up, 45, interval=1, what="Prometheus to find every service up")
        for component, name in names.items():
            (up,) = query(settings, f'up{{service="{name}"}}')
            assert up["metric"]["component"] == component
            assert up["metric"]["job"] == "energywatch"
            (build,) = query(settings, f'energywatch_build_info{{service="{name}"}}')
            assert build["value"][1] == "1"

        # the worker registered itself as what it is
        (own,) = query(settings, f'up{{service="{settings.worker_app_id}"}}')
        assert own["metric"]["component"] == "worker"

        # the consumer lag: one series per readings partition, caught up once all is stored
        wait_until(lambda: stored_count(settings) == READINGS, 30, what="the readings stored")
        lag = (
            f'energywatch_stream_consumer_lag_records{{service="{names["worker"]}", '
            f'consumer="{settings.worker_app_id}", topic="{settings.readings_topic}"}}'
        )

        def caught_up() -> list[dict[str, Any]] | None:
            series = query(settings, lag)
            return series if series and all(s["value"][1] == "0" for s in series) else None

        series = wait_until(caught_up, 30, interval=1, what="the lag gauge at 0")
        partitions = {s["metric"]["partition"] for s in series}
        assert partitions == {str(p) for p in range(settings.topic_partitions)}
        worker = f'service="{names["worker"]}"'
        (stored,) = query(settings, f"energywatch_stream_readings_stored_total{{{worker}}}")
        assert float(stored["value"][1]) == READINGS
        (dead,) = query(settings, f"energywatch_stream_dead_letters_total{{{worker}}}")
        assert dead["metric"]["kind"] == "not_json"

        # the evaluator led and passed; the notifier's failure series exist before a failure
        evaluator = f'service="{names["evaluator"]}"'
        (leader,) = query(settings, f"energywatch_evaluator_leader{{{evaluator}}}")
        assert leader["value"][1] == "1"
        (passed,) = query(
            settings, f"energywatch_evaluator_last_pass_timestamp_seconds{{{evaluator}}}"
        )
        assert 0 < float(passed["value"][1]) <= time.time()
        failures = query(
            settings,
            f'energywatch_alerts_notification_failures_total{{service="{names["notifier"]}"}}',
        )
        assert {s["metric"]["channel"] for s in failures} >= {"webhook"}

        # the rule groups are loaded from the repository's files and evaluate without error
        def evaluated() -> list[dict[str, Any]] | None:
            groups: list[dict[str, Any]] = prometheus(settings, "/api/v1/rules")["groups"]
            mine = [g for g in groups if g["name"] in RULE_GROUPS]
            done = all(instant(rule["lastEvaluation"]) > since for g in mine for rule in g["rules"])
            return mine if len(mine) == len(RULE_GROUPS) and done else None

        since = datetime.now(UTC)
        groups = wait_until(evaluated, 20, interval=1, what="every rule evaluated again")
        for group in groups:
            assert group["file"].endswith(".yml")
            for rule in group["rules"]:
                assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))
                assert rule["type"] == "alerting"
        rules = {rule["name"] for group in groups for rule in group["rules"]}
        assert {"EnergyWatchWorkerDown", "EnergyWatchConsumerLagHigh"} <= rules
        assert time.monotonic() - started < 60
    finally:
        for path in files:
            path.unlink(missing_ok=True)
