"""Every Prometheus series the notifier exposes, created against an injected registry."""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass(frozen=True)
class NotifierMetrics:
    alerts_consumed: Counter
    notifications_sent: Counter
    notifications_skipped: Counter
    notification_failures: Counter
    dead_letters: Counter
    delivery_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "NotifierMetrics":
        return cls(
            alerts_consumed=Counter(
                "energywatch_alerts_consumed_total",
                "Alert events read from the alerts topic",
                registry=registry,
            ),
            notifications_sent=Counter(
                "energywatch_alerts_notifications_sent_total",
                "Alerts delivered, by channel",
                ["channel"],
                registry=registry,
            ),
            notifications_skipped=Counter(
                "energywatch_alerts_notifications_skipped_total",
                "Alerts not sent again because they had been delivered already",
                ["channel"],
                registry=registry,
            ),
            notification_failures=Counter(
                "energywatch_alerts_notification_failures_total",
                "Failed delivery attempts (each is retried), by channel",
                ["channel"],
                registry=registry,
            ),
            dead_letters=Counter(
                "energywatch_alerts_dead_letters_total",
                "Alert events that could not be decoded or delivered, by kind",
                ["kind"],
                registry=registry,
            ),
            delivery_seconds=Histogram(
                "energywatch_alerts_delivery_seconds",
                "Time from reading the alert event to its delivery",
                registry=registry,
            ),
        )
