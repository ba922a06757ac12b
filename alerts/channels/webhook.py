"""The webhook channel: a signed JSON POST of a ``WebhookNotification`` to the recipient's own
endpoint.

Receivers verify ``X-EnergyWatch-Signature`` (HMAC-SHA256 of ``<timestamp>.<body>`` with the
shared secret, as Stripe and GitHub do) and de-duplicate on ``Idempotency-Key``. The
signature is re-done with a fresh timestamp on every attempt so a retried request is not
rejected as stale; the key stays the same across attempts, so the receiver keeps one copy.
"""

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from alerts.channels.delivery import (
    DeliveryResult,
    FailedAttemptHook,
    RetryPolicy,
    Sleep,
    check_http_status,
    deliver_with_retries,
    transport_failure,
)
from alerts.channels.render import RenderedMessage
from alerts.channels.targets import WebhookTarget
from contracts.alert_events import AlertEvent

NOTIFICATION_SCHEMA_VERSION: Final = 2
SIGNATURE_HEADER: Final = "X-EnergyWatch-Signature"
TIMESTAMP_HEADER: Final = "X-EnergyWatch-Timestamp"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"


class WebhookNotification(BaseModel):
    """The body of a notification webhook: one alert event, or a digest of several held back
    by a rate limit, with the text a person would read and every event it covers.

    ``idempotency_key`` is the event id of a single notification, or a digest of the event ids
    for a digest; it is also the ``Idempotency-Key`` header."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: Literal[2] = NOTIFICATION_SCHEMA_VERSION
    idempotency_key: str = Field(min_length=1, max_length=128)
    digest: bool
    title: str
    text: str
    events: tuple[AlertEvent, ...] = Field(min_length=1)


@dataclass(frozen=True)
class WebhookRequest:
    body: bytes
    headers: dict[str, str]


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


#: how far a request's timestamp may be from the receiver's clock: a captured request
#: replayed later than this is refused (Stripe's libraries default to the same five minutes)
TOLERANCE_SECONDS: Final = 300


def verify(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """Whether ``signature`` is ours over ``timestamp`` and ``body`` (not whether it is fresh)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def is_fresh(timestamp: str, now: float, tolerance: float = TOLERANCE_SECONDS) -> bool:
    """Whether ``timestamp`` (Unix seconds, as sent) is within ``tolerance`` of ``now``."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    return abs(now - sent) <= tolerance


def build_webhook_request(
    target: WebhookTarget, message: RenderedMessage, idempotency_key: str, timestamp: str
) -> WebhookRequest:
    """The request for one attempt (pure): body, idempotency key and, with a secret, signature."""
    notification = WebhookNotification(
        idempotency_key=idempotency_key,
        digest=message.is_digest,
        title=message.title,
        text=message.text,
        events=message.events,
    )
    body = notification.model_dump_json().encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        IDEMPOTENCY_HEADER: idempotency_key,
        TIMESTAMP_HEADER: timestamp,
        "User-Agent": "energywatch-notifier",
    }
    if target.secret is not None:
        headers[SIGNATURE_HEADER] = sign(target.secret.get_secret_value().encode(), timestamp, body)
    return WebhookRequest(body=body, headers=headers)


async def send_webhook(
    client: httpx.AsyncClient,
    target: WebhookTarget,
    message: RenderedMessage,
    idempotency_key: str,
    policy: RetryPolicy,
    *,
    clock: Callable[[], datetime],
    sleep: Sleep,
    on_failed_attempt: FailedAttemptHook | None = None,
) -> DeliveryResult:
    async def attempt() -> None:
        timestamp = str(int(clock().timestamp()))
        request = build_webhook_request(target, message, idempotency_key, timestamp)
        try:
            response = await client.post(target.url, content=request.body, headers=request.headers)
        except httpx.HTTPError as exc:
            raise transport_failure(exc) from exc
        check_http_status(response)

    return await deliver_with_retries(
        "webhook", attempt, policy, sleep=sleep, on_failed_attempt=on_failed_attempt
    )
