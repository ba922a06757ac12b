"""Webhook signing: receivers can verify an alert came from EnergyWatch, unaltered."""

from hypothesis import given
from hypothesis import strategies as st

from alerts.webhook import SIGNATURE_HEADER, build_request, sign, verify
from tests.strategies import alert_events


@given(alert_events(), st.binary(min_size=1, max_size=64))
def test_a_signed_request_verifies_with_the_same_secret_only(alert, secret):
    request = build_request(alert, secret, "1700000000")
    signature = request.headers[SIGNATURE_HEADER]
    assert verify(secret, "1700000000", request.body, signature)
    assert not verify(secret + b"x", "1700000000", request.body, signature)
    assert not verify(secret, "1700000001", request.body, signature)
    assert not verify(secret, "1700000000", request.body + b" ", signature)


@given(alert_events())
def test_the_idempotency_key_is_the_alert_id(alert):
    assert build_request(alert, None, "0").headers["Idempotency-Key"] == alert.alert_id


@given(alert_events())
def test_requests_are_unsigned_when_no_secret_is_configured(alert):
    assert SIGNATURE_HEADER not in build_request(alert, None, "0").headers
    assert sign(b"k", "0", b"body").startswith("sha256=")
