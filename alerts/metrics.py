"""Every Prometheus series the alert services expose (notifier, evaluator, Alerts API), created
against an injected registry."""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: the notifier's channels (``alerts.channels.targets``' kinds) and why a delivery failed
CHANNELS = ("webhook", "email", "dingtalk", "wecom")
FAILURE_REASONS = ("retried", "refused", "exhausted")

#: from an event's emission to its delivery: seconds normally, minutes for a held digest
DELIVERY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


@dataclass(frozen=True)
class NotifierMetrics:
    events_consumed: Counter
    events_skipped: Counter
    notifications_sent: Counter
    notifications_skipped: Counter
    notification_failures: Counter
    digests: Counter
    held: Gauge
    dead_letters: Counter
    delivery_seconds: Histogram
    session_errors: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "NotifierMetrics":
        return cls(
            events_consumed=Counter(
                "energywatch_alerts_consumed_total",
                "Records read from the alerts topic",
                registry=registry,
            ),
            events_skipped=Counter(
                "energywatch_alerts_events_skipped_total",
                "Alert events sent to nobody, by reason (not_for_delivery, duplicate, "
                "no_recipient, already_taken)",
                ["reason"],
                registry=registry,
            ),
            notifications_sent=Counter(
                "energywatch_alerts_notifications_sent_total",
                "Notifications delivered (one event, or a digest), by channel",
                ["channel"],
                registry=registry,
            ),
            notifications_skipped=Counter(
                "energywatch_alerts_notifications_skipped_total",
                "Notifications not sent again because they had been delivered already",
                ["channel"],
                registry=registry,
            ),
            notification_failures=Counter(
                "energywatch_alerts_notification_failures_total",
                "Failed deliveries by channel and reason: retried (an attempt tried again), "
                "refused (permanent: not retried), exhausted (still failing after every retry)",
                ["channel", "reason"],
                registry=registry,
            ),
            digests=Counter(
                "energywatch_alerts_digests_total",
                "Digests released by the rate limits (several events in one notification)",
                registry=registry,
            ),
            held=Gauge(
                "energywatch_alerts_held",
                "Alert events held by the rate limits for a digest",
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
                "Time from an event's emission (emitted_at) to its delivery, by channel",
                ["channel"],
                buckets=DELIVERY_BUCKETS,
                registry=registry,
            ),
            session_errors=Counter(
                "energywatch_notifier_session_errors_total",
                "Database or Kafka sessions lost: the notifier reconnects, reloads its state "
                "and reads again from its last committed offsets",
                registry=registry,
            ),
        )

    def __post_init__(self) -> None:
        # every channel's series exist from the start: a first failure is an increase from 0
        for channel in CHANNELS:
            self.notifications_sent.labels(channel=channel)
            for reason in FAILURE_REASONS:
                self.notification_failures.labels(channel=channel, reason=reason)


#: a pass reads the dirty units' stored data and judges every rule: milliseconds to seconds
PASS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

#: publishing waits on Kafka's acknowledgement: milliseconds normally, longer after an outage
PUBLISH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class EvaluatorMetrics:
    passes: Counter
    pass_failures: Counter
    conditions: Counter
    events: Counter
    events_rejected: Counter
    events_published: Counter
    publish_seconds: Histogram
    commands_applied: Counter
    commands_failed: Counter
    last_pass_seconds: Gauge
    leader: Gauge
    pass_seconds: Histogram
    last_pass_timestamp: Gauge
    session_errors: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "EvaluatorMetrics":
        return cls(
            passes=Counter(
                "energywatch_evaluator_passes_total",
                "Evaluation passes committed, by what started them (notify or sweep)",
                ["trigger"],
                registry=registry,
            ),
            pass_failures=Counter(
                "energywatch_evaluator_pass_failures_total",
                "Passes rolled back on an error (state reloaded from the last snapshots)",
                registry=registry,
            ),
            conditions=Counter(
                "energywatch_evaluator_conditions_total",
                "Rule verdicts (met or not) fed to the alert lifecycle",
                registry=registry,
            ),
            events=Counter(
                "energywatch_evaluator_events_total",
                "Alert events newly recorded in the history, by kind",
                ["kind"],
                registry=registry,
            ),
            events_rejected=Counter(
                "energywatch_evaluator_events_rejected_total",
                "Lifecycle events the alert contract refused (logged, not recorded)",
                registry=registry,
            ),
            events_published=Counter(
                "energywatch_evaluator_events_published_total",
                "Alert events acknowledged by the alerts topic",
                registry=registry,
            ),
            publish_seconds=Histogram(
                "energywatch_evaluator_publish_latency_seconds",
                "Time from an event's emission to the alerts topic's acknowledgement",
                buckets=PUBLISH_BUCKETS,
                registry=registry,
            ),
            commands_applied=Counter(
                "energywatch_evaluator_commands_applied_total",
                "Operators' commands applied, by kind",
                ["kind"],
                registry=registry,
            ),
            commands_failed=Counter(
                "energywatch_evaluator_commands_failed_total",
                "Operators' commands refused (error stamped on the command), by kind",
                ["kind"],
                registry=registry,
            ),
            last_pass_seconds=Gauge(
                "energywatch_evaluator_last_pass_seconds",
                "Duration of the latest committed pass",
                registry=registry,
            ),
            leader=Gauge(
                "energywatch_evaluator_leader",
                "1 while this evaluator holds the leader lock, 0 while it waits for it",
                registry=registry,
            ),
            pass_seconds=Histogram(
                "energywatch_evaluator_pass_seconds",
                "Duration of committed passes, by what started them (notify or sweep)",
                ["trigger"],
                buckets=PASS_BUCKETS,
                registry=registry,
            ),
            last_pass_timestamp=Gauge(
                "energywatch_evaluator_last_pass_timestamp_seconds",
                "Unix time the latest pass committed (0 before the first): how far behind the "
                "alerts are is time() minus this",
                registry=registry,
            ),
            session_errors=Counter(
                "energywatch_evaluator_session_errors_total",
                "Database sessions lost (connection errors, leadership lost): the evaluator "
                "reconnects and waits to lead again",
                registry=registry,
            ),
        )

    def __post_init__(self) -> None:
        # both triggers exist from the start, so "no pass for ten minutes" reads as 0, not absent
        for trigger in ("notify", "sweep"):
            self.passes.labels(trigger=trigger)
            self.pass_seconds.labels(trigger=trigger)


@dataclass(frozen=True)
class AlertsApiMetrics:
    """The API's Prometheus series; ``route`` is the route's template, never an id."""

    requests: Counter
    request_seconds: Histogram
    auth_failures: Counter
    commands: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "AlertsApiMetrics":
        return cls(
            requests=Counter(
                "energywatch_alerts_api_requests_total",
                "Requests answered, by route template, method and status code",
                ["route", "method", "status"],
                registry=registry,
            ),
            request_seconds=Histogram(
                "energywatch_alerts_api_request_seconds",
                "Time to answer a request, by route template",
                ["route"],
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                registry=registry,
            ),
            auth_failures=Counter(
                "energywatch_alerts_api_auth_failures_total",
                "Requests without a token or with an unknown one",
                registry=registry,
            ),
            commands=Counter(
                "energywatch_alerts_api_commands_total",
                "Commands recorded for the evaluator, by kind",
                ["kind"],
                registry=registry,
            ),
        )
