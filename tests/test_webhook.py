"""Webhook signing: receivers can verify a notification came from EnergyWatch, unaltered, and
keep one copy of it."""

from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from alerts.channels.render import render_alerts
from alerts.channels.targets import WebhookTarget
from alerts.channels.webhook import (
    SIGNATURE_HEADER,
    WebhookNotification,
    build_webhook_request,
    sign,
    verify,
)
from alerts.rate_limit import Release
from tests.strategies import alert_events

URL = "http://127.0.0.1:9/hook"
secrets = st.text(st.characters(codec="utf-8"), min_size=1, max_size=32)


@given(st.lists(alert_events(), min_size=1, max_size=3), secrets)
def test_a_signed_request_verifies_with_the_same_secret_only(events, secret):
    target = WebhookTarget(url=URL, secret=SecretStr(secret))
    request = build_webhook_request(target, render_alerts(events), "k", "1700000000")
    signature = request.headers[SIGNATURE_HEADER]
    key = secret.encode()
    assert verify(key, "1700000000", request.body, signature)
    assert not verify(key + b"x", "1700000000", request.body, signature)
    assert not verify(key, "1700000001", request.body, signature)
    assert not verify(key, "1700000000", request.body + b" ", signature)


@given(st.lists(alert_events(), min_size=1, max_size=3, unique_by=lambda e: e.event_id))
def test_the_body_carries_every_event_and_the_idempotency_key_of_the_release(events):
    release = Release("r", tuple(events))
    request = build_webhook_request(
        WebhookTarget(url=URL), render_alerts(events), release.idempotency_key, "0"
    )
    body = WebhookNotification.model_validate_json(request.body)
    assert request.headers["Idempotency-Key"] == body.idempotency_key == release.idempotency_key
    assert body.events == tuple(events)
    assert body.digest == (len(events) > 1)
    if len(events) == 1:
        assert body.idempotency_key == events[0].event_id


@given(alert_events())
def test_requests_are_unsigned_when_no_secret_is_configured(event):
    request = build_webhook_request(WebhookTarget(url=URL), render_alerts([event]), "k", "0")
    assert SIGNATURE_HEADER not in request.headers
    assert sign(b"k", "0", b"body").startswith("sha256=")


def test_a_timestamp_is_fresh_within_five_minutes_of_the_receivers_clock():
    from alerts.channels.webhook import TOLERANCE_SECONDS, is_fresh

    assert TOLERANCE_SECONDS == 300
    assert is_fresh("1700000000", 1700000000 + 300)
    assert is_fresh("1700000000", 1700000000 - 300)  # a sender's clock a little ahead
    assert not is_fresh("1700000000", 1700000000 + 301)
    assert not is_fresh("1700000000", 1700000000 - 301)
    assert not is_fresh("", 1700000000)
    assert not is_fresh("17e8", 1700000000)
