"""Every service's Prometheus series: one metrics module per service, every series created
against the registry it is given (none in prometheus_client's global one), named and labelled
by the house rules, and documented in ``deploy/prometheus/README.md``."""

import re
from collections.abc import Callable
from pathlib import Path

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from alerts.metrics import (
    CHANNELS,
    FAILURE_REASONS,
    AlertsApiMetrics,
    EvaluatorMetrics,
    NotifierMetrics,
)
from energywatch.metrics_endpoint import describe_process
from ingest.metrics import IngestMetrics
from stream.metrics import ProductionMetrics, VocMetrics, WorkerMetrics

README = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "README.md"

#: the series each service serves: its metrics classes
SERVICES: dict[str, list[Callable[[CollectorRegistry], object]]] = {
    "ingest gateways": [IngestMetrics.create],
    "worker": [WorkerMetrics.create, VocMetrics.create, ProductionMetrics.create],
    "evaluator": [EvaluatorMetrics.create],
    "notifier": [NotifierMetrics.create],
    "alerts API": [AlertsApiMetrics.create],
    "every service": [describe_process],
}

#: labels are small fixed sets; never a meter, device or enterprise id
ALLOWED_LABELS = {
    "channel",
    "kind",
    "reason",
    "trigger",
    "route",
    "method",
    "status",
    "consumer",
    "topic",
    "partition",
    "version",
    "python",
    "stage",  # a readings batch's transaction stages: a dozen names fixed in ledger_writer
}


def registry_of(service: str) -> CollectorRegistry:
    registry = CollectorRegistry()
    for create in SERVICES[service]:
        create(registry)
    return registry


def families(registry: CollectorRegistry) -> list[prometheus_client.Metric]:
    return list(registry.collect())


def exposed_names(family: prometheus_client.Metric) -> set[str]:
    """The names a family's samples carry in the exposition (what PromQL selects)."""
    suffixes = {
        "counter": ["_total"],
        "histogram": ["_bucket", "_sum", "_count"],
        "info": ["_info"],
    }.get(family.type, [""])
    return {family.name + suffix for suffix in suffixes}


def every_series_name() -> set[str]:
    """Every ``energywatch_*`` series name any service exposes."""
    return {
        name
        for service in SERVICES
        for family in families(registry_of(service))
        for name in exposed_names(family)
        if name.startswith("energywatch_")
    }


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_service_s_series_go_to_the_registry_it_is_given_and_nowhere_else(service):
    before = {f.name for f in prometheus_client.REGISTRY.collect()}
    first, second = registry_of(service), registry_of(service)  # twice: no global state
    assert {f.name for f in families(first)} == {f.name for f in families(second)}
    assert {f.name for f in prometheus_client.REGISTRY.collect()} == before


def test_every_project_series_is_named_by_the_house_rules():
    for service in SERVICES:
        for family in families(registry_of(service)):
            if family.name.startswith("process_"):
                continue  # prometheus_client's standard process collector
            assert family.name.startswith("energywatch_"), family.name
            assert family.documentation, family.name
            if family.type == "histogram":
                unit = family.name.rsplit("_", 1)[-1]
                assert unit in {"seconds", "records"}, family.name
            assert not family.name.endswith("_total"), f"{family.name}: counter says _total"


def test_every_label_comes_from_a_small_fixed_set():
    for service in SERVICES:
        registry = registry_of(service)
        for family in families(registry):
            for sample in family.samples:
                assert set(sample.labels) - {"le"} <= ALLOWED_LABELS, (family.name, sample)
        # labels declared but not yet used do not show in samples: ask the collectors
        for collector in list(registry._collector_to_names):  # private, but the only list
            names = getattr(collector, "_labelnames", ())
            assert set(names) <= ALLOWED_LABELS, (collector, names)


def test_the_worker_exposes_consumer_lag_per_consumer_topic_and_partition():
    registry = CollectorRegistry()
    metrics = WorkerMetrics.create(registry)
    metrics.consumer_lag.labels("energywatch-worker", "energywatch.readings", "3").set(42)
    value = registry.get_sample_value(
        "energywatch_stream_consumer_lag_records",
        {"consumer": "energywatch-worker", "topic": "energywatch.readings", "partition": "3"},
    )
    assert value == 42


def test_every_channel_s_notification_failures_read_zero_before_the_first_one():
    registry = CollectorRegistry()
    NotifierMetrics.create(registry)
    for channel in CHANNELS:
        for reason in FAILURE_REASONS:
            labels = {"channel": channel, "reason": reason}
            value = registry.get_sample_value(
                "energywatch_alerts_notification_failures_total", labels
            )
            assert value == 0, labels


def test_the_notifier_knows_every_channel_a_recipient_can_have():
    from alerts.channels import targets

    kinds = {
        cls.model_fields["kind"].default
        for cls in vars(targets).values()
        if isinstance(cls, type) and issubclass(cls, BaseModel) and "kind" in cls.model_fields
    }
    assert kinds == set(CHANNELS)


def test_both_evaluator_triggers_read_zero_before_the_first_pass():
    registry = CollectorRegistry()
    EvaluatorMetrics.create(registry)
    for trigger in ("notify", "sweep"):
        labels = {"trigger": trigger}
        assert registry.get_sample_value("energywatch_evaluator_passes_total", labels) == 0
    assert registry.get_sample_value("energywatch_evaluator_last_pass_timestamp_seconds") == 0


def test_every_endpoint_says_which_build_runs_it():
    registry = CollectorRegistry()
    describe_process(registry)
    (sample,) = [s for f in families(registry) for s in f.samples if s.name.endswith("_info")]
    assert sample.name == "energywatch_build_info"
    assert sample.value == 1
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", sample.labels["version"])
    assert sample.labels["python"].startswith("3.11")
    assert registry.get_sample_value("process_start_time_seconds") is not None


def test_the_metrics_readme_documents_every_series():
    documented = set(re.findall(r"`(energywatch_[a-z0-9_]+)`", README.read_text("utf-8")))
    for service in SERVICES:
        for family in families(registry_of(service)):
            if family.name.startswith("process_"):
                continue
            shown = {family.name} | exposed_names(family)
            assert shown & documented, f"{family.name} is not in {README.name}"
