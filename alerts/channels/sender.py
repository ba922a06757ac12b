"""One entry point for every channel: ``await sender.send(target, message, key)``.

Built once per process by its composition root with the shared HTTP client and the SMTP
settings, and passed down; nothing here connects at import time. Building one makes httpx's
request log leave out query strings, where chat robots keep their credentials.
"""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from alerts.channels.delivery import (
    DeliveryResult,
    FailedAttemptHook,
    RetryPolicy,
    Sleep,
    redact_http_client_logs,
)
from alerts.channels.dingtalk import send_dingtalk
from alerts.channels.mail import SmtpSettings, send_email
from alerts.channels.render import RenderedMessage
from alerts.channels.targets import (
    ChannelTarget,
    DingTalkTarget,
    EmailTarget,
    WebhookTarget,
    WeComTarget,
)
from alerts.channels.webhook import send_webhook
from alerts.channels.wecom import send_wecom


def utc_now() -> datetime:
    return datetime.now(UTC)


class ChannelSender:
    """Sends rendered messages over any configured channel, retrying transient failures."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        smtp: SmtpSettings | None = None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utc_now,
        sleep: Sleep = asyncio.sleep,
        on_failed_attempt: FailedAttemptHook | None = None,
    ) -> None:
        self._client = client
        self._smtp = smtp
        self._policy = policy or RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._on_failed_attempt = on_failed_attempt
        redact_http_client_logs()

    async def send(
        self, target: ChannelTarget, message: RenderedMessage, idempotency_key: str
    ) -> DeliveryResult:
        """Deliver ``message`` to ``target``; never raises for a failed delivery, the result
        says what happened (``permanent`` when retrying later cannot help either)."""
        sleep, hook, policy = self._sleep, self._on_failed_attempt, self._policy
        match target:
            case WebhookTarget():
                return await send_webhook(
                    self._client, target, message, idempotency_key, policy,
                    clock=self._clock, sleep=sleep, on_failed_attempt=hook,
                )  # fmt: skip
            case EmailTarget():
                if self._smtp is None:
                    return DeliveryResult("email", False, 0, "no SMTP server configured", True)
                return await send_email(
                    self._smtp, target, message, idempotency_key, policy,
                    clock=self._clock, sleep=sleep, on_failed_attempt=hook,
                )  # fmt: skip
            case DingTalkTarget():
                return await send_dingtalk(
                    self._client, target, message, policy,
                    clock=self._clock, sleep=sleep, on_failed_attempt=hook,
                )  # fmt: skip
            case WeComTarget():
                return await send_wecom(
                    self._client, target, message, policy, sleep=sleep, on_failed_attempt=hook
                )
