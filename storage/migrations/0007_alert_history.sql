-- Alerting v2 (issue 6). The stream no longer raises alerts itself: the alert evaluator
-- (alerts/evaluator.py) runs the rules over stored data and the lifecycle over their verdicts,
-- and is the only writer of alert state. The v1 outbox of single-reading alerts goes.
DROP TABLE IF EXISTS alert_deliveries;
DROP TABLE IF EXISTS alert_events;

-- Every lifecycle event (contracts/alert_events.py), kept for good: the alert history.
-- ``event_id`` is a digest of the inputs, so a replay inserts nothing new. The evaluator
-- writes events in the same transaction as its state (alert_lifecycle_state); published_at
-- stays NULL until the alerts topic has acknowledged the event (a transactional outbox).
CREATE TABLE alert_history (
    event_id         text        PRIMARY KEY,
    alert_id         text        NOT NULL,
    kind             text        NOT NULL,
    rule_id          text        NOT NULL,
    subject          text        NOT NULL,
    enterprise_code  text,
    region_code      text,
    severity         text        NOT NULL,
    at               timestamptz NOT NULL,  -- event time of the data behind the event
    emitted_at       timestamptz NOT NULL,  -- wall time
    replay           boolean     NOT NULL,
    deliver          boolean     NOT NULL,
    payload          jsonb       NOT NULL,  -- the whole AlertEvent
    published_at     timestamptz
);
CREATE INDEX alert_history_alert_idx ON alert_history (alert_id, emitted_at);
CREATE INDEX alert_history_enterprise_idx ON alert_history (enterprise_code, emitted_at DESC);
CREATE INDEX alert_history_region_idx ON alert_history (region_code, emitted_at DESC);
CREATE INDEX alert_history_unpublished_idx ON alert_history (emitted_at)
    WHERE published_at IS NULL;

-- One row per alert with its latest state, for the Alerts API and dashboards: maintained by
-- the evaluator from the events it writes (same transaction).
CREATE TABLE alerts (
    alert_id         text        PRIMARY KEY,
    rule_id          text        NOT NULL,
    subject          text        NOT NULL,
    enterprise_code  text,
    region_code      text,
    status           text        NOT NULL CHECK (status IN ('firing', 'resolved')),
    severity         text        NOT NULL,
    started_at       timestamptz NOT NULL,
    last_event_at    timestamptz NOT NULL,  -- wall time of the latest event
    resolved_at      timestamptz,           -- event time it resolved at
    acknowledged_by  text,
    ack_comment      text,
    ack_expires_at   timestamptz,
    replay           boolean     NOT NULL,
    latest           jsonb       NOT NULL   -- the latest AlertEvent
);
CREATE INDEX alerts_enterprise_idx ON alerts (enterprise_code, status, last_event_at DESC);
CREATE INDEX alerts_region_idx ON alerts (region_code, status, last_event_at DESC);

-- The lifecycle's whole state (alerts.lifecycle snapshot), and any rule state, by name.
CREATE TABLE alert_lifecycle_state (
    name        text        PRIMARY KEY,
    snapshot    jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- Operators' requests (contracts/alert_commands.py) from the Alerts API: the evaluator,
-- the lifecycle's only writer, applies them in id order and stamps applied_at (or error).
CREATE TABLE alert_commands (
    command_id   bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('acknowledge', 'silence', 'unsilence', 'emergency')),
    payload      jsonb       NOT NULL,
    requested_by text        NOT NULL,  -- the token's principal, never the token
    requested_at timestamptz NOT NULL DEFAULT now(),
    applied_at   timestamptz,
    error        text
);
CREATE INDEX alert_commands_pending_idx ON alert_commands (command_id) WHERE applied_at IS NULL;

-- Silences and maintenance windows as operators set them (the lifecycle holds the live copy).
CREATE TABLE alert_silences (
    silence_id   text        PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('silence', 'maintenance')),
    rule         text        NOT NULL,
    subject      text        NOT NULL,
    enterprise   text        NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    created_by   text        NOT NULL,
    comment      text        NOT NULL DEFAULT '',
    removed_at   timestamptz
);

-- One row per notification that reached a recipient's channel, keyed by the idempotency key
-- of what was sent (an event, or a digest of events), so a redelivered event is not sent twice.
CREATE TABLE alert_notifications (
    recipient_id     text        NOT NULL,
    channel          text        NOT NULL,  -- the target's name within the recipient
    idempotency_key  text        NOT NULL,
    event_ids        text[]      NOT NULL,
    delivered_at     timestamptz NOT NULL DEFAULT now(),
    attempts         integer     NOT NULL,
    PRIMARY KEY (recipient_id, channel, idempotency_key)
);

-- The notifier's rate-limiter state (alerts.rate_limit snapshot), so held alerts survive a
-- restart.
CREATE TABLE notifier_state (
    name        text        PRIMARY KEY,
    snapshot    jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- What changed since the evaluator last looked: every stream batch marks the units it touched
-- (same transaction as its rows) and NOTIFYs energywatch_dirty; the evaluator claims rows
-- (DELETE ... RETURNING, in its own transaction), so a crash on either side loses nothing.
-- ``since`` is the earliest event time touched, so only periods from there are re-judged.
CREATE TABLE alert_dirty (
    enterprise_code  text        NOT NULL,
    source           text        NOT NULL CHECK (source IN ('readings', 'voc', 'production')),
    since            timestamptz NOT NULL,
    marked_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (enterprise_code, source)
);
