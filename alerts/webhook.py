"""What a webhook delivery looks like on the wire (pure: no HTTP client here).

Receivers verify ``X-EnergyWatch-Signature`` (HMAC-SHA256 of ``<timestamp>.<body>`` with the
shared secret, as Stripe and GitHub do) and de-duplicate on ``Idempotency-Key``, the alert id.
"""

import hashlib
import hmac
from dataclasses import dataclass

from contracts.alert_events import AlertEvent, encode_alert

SIGNATURE_HEADER = "X-EnergyWatch-Signature"
TIMESTAMP_HEADER = "X-EnergyWatch-Timestamp"


@dataclass(frozen=True)
class WebhookRequest:
    body: bytes
    headers: dict[str, str]


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def build_request(alert: AlertEvent, secret: bytes | None, timestamp: str) -> WebhookRequest:
    body = encode_alert(alert)
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": alert.alert_id,
        TIMESTAMP_HEADER: timestamp,
        "User-Agent": "energywatch-notifier",
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
    return WebhookRequest(body=body, headers=headers)
