"""Every Prometheus series the ingest gateways expose, created against an injected registry.

Labels come from small fixed sets: the channel (``hj212``, ``http``, ``mqtt``) and the
rejection kind (``ingest.validation.REJECTION_KINDS`` and the HJ 212 decoder's kinds).
"""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class IngestMetrics:
    received: Counter
    accepted: Counter
    rejected: Counter
    dead_letters: Counter
    auth_failures: Counter
    connections: Gauge
    publish_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "IngestMetrics":
        return cls(
            received=Counter(
                "energywatch_ingest_received_total",
                "Records (readings, packets, report items) received, by channel",
                ["channel"],
                registry=registry,
            ),
            accepted=Counter(
                "energywatch_ingest_accepted_total",
                "Records validated and published to Kafka, by channel",
                ["channel"],
                registry=registry,
            ),
            rejected=Counter(
                "energywatch_ingest_rejected_total",
                "Records refused, by channel and reason",
                ["channel", "kind"],
                registry=registry,
            ),
            dead_letters=Counter(
                "energywatch_ingest_dead_letters_total",
                "Refused records written to the dead-letter topic, by channel",
                ["channel"],
                registry=registry,
            ),
            auth_failures=Counter(
                "energywatch_ingest_auth_failures_total",
                "Unknown senders and wrong tokens or passwords, by channel",
                ["channel"],
                registry=registry,
            ),
            connections=Gauge(
                "energywatch_ingest_connections",
                "Open device connections, by channel",
                ["channel"],
                registry=registry,
            ),
            publish_seconds=Histogram(
                "energywatch_ingest_publish_seconds",
                "Time until Kafka acknowledged a publish, by channel",
                ["channel"],
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
                registry=registry,
            ),
        )
