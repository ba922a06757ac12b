-- Alerts raised by the stream, written in the same transaction as the readings that raised them
-- (a transactional outbox): published_at stays NULL until the alerts topic has acknowledged
-- the event, so a crash between the two re-publishes instead of losing the alert.
CREATE TABLE alert_events (
    alert_id         text             PRIMARY KEY,
    rule_id          text             NOT NULL,
    status           text             NOT NULL,
    severity         text             NOT NULL,
    enterprise_code  text             NOT NULL,
    subject          text             NOT NULL,
    period_start     timestamptz      NOT NULL,
    window_seconds   integer          NOT NULL,
    observed_value   double precision NOT NULL,
    threshold_value  double precision NOT NULL,
    value_unit       text             NOT NULL,
    message          text             NOT NULL,
    raised_at        timestamptz      NOT NULL,
    payload          jsonb            NOT NULL,
    published_at     timestamptz
);

CREATE INDEX alert_events_unpublished_idx ON alert_events (raised_at) WHERE published_at IS NULL;
CREATE INDEX alert_events_enterprise_idx ON alert_events (enterprise_code, raised_at DESC);

-- One row per alert and notification channel once delivered, so a redelivered event
-- (at-least-once from Kafka) is not notified twice.
CREATE TABLE alert_deliveries (
    alert_id      text        NOT NULL,
    channel       text        NOT NULL,
    delivered_at  timestamptz NOT NULL DEFAULT now(),
    attempts      integer     NOT NULL,
    PRIMARY KEY (alert_id, channel)
);
