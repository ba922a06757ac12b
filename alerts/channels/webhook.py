"""The webhook channel: a signed JSON POST to the recipient's own endpoint.

Signing is ``alerts.webhook``'s (``X-EnergyWatch-Signature`` over ``<timestamp>.<body>``),
re-done with a fresh timestamp on every attempt so a retried request is not rejected as
stale. ``Idempotency-Key`` stays the same across attempts, so the receiver keeps one copy.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Final, Literal

import httpx
from pydantic import BaseModel, ConfigDict

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
from alerts.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookRequest, sign
from contracts.alert_events import AlertEvent

NOTIFICATION_SCHEMA_VERSION: Final = 1


class WebhookNotification(BaseModel):
    """The body of a notification webhook: one alert or a digest of several, with the text a
    person would read and every alert event it covers."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: Literal[1] = NOTIFICATION_SCHEMA_VERSION
    idempotency_key: str
    digest: bool
    title: str
    text: str
    alerts: tuple[AlertEvent, ...]


def build_webhook_request(
    target: WebhookTarget, message: RenderedMessage, idempotency_key: str, timestamp: str
) -> WebhookRequest:
    """The request for one attempt (pure): body, idempotency key and, with a secret, signature."""
    notification = WebhookNotification(
        idempotency_key=idempotency_key,
        digest=message.is_digest,
        title=message.title,
        text=message.text,
        alerts=message.alerts,
    )
    body = notification.model_dump_json().encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Idempotency-Key": idempotency_key,
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
