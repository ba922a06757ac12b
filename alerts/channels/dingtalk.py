"""The DingTalk channel: a group's custom robot (自定义机器人), markdown messages.

Signing (加签): ``string_to_sign = timestamp_ms + "\\n" + secret``, HMAC-SHA256 keyed with the
secret, base64, URL-encoded, appended to the webhook URL as ``&timestamp=…&sign=…``. DingTalk
rejects a timestamp more than an hour off, so every attempt signs afresh.

DingTalk answers HTTP 200 even when it refuses a message; the JSON ``errcode`` says whether it
was accepted (0). ``130101`` means "sending too fast" (a robot takes about 20 messages a
minute) and is retried; any other errcode (bad signature, keyword or IP check failed, robot
removed) is final.
"""

import base64
import hashlib
import hmac
import urllib.parse
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

import httpx

from alerts.channels.delivery import (
    DeliveryResult,
    FailedAttemptHook,
    RetryPolicy,
    Sleep,
    check_http_status,
    check_robot_errcode,
    deliver_with_retries,
    transport_failure,
)
from alerts.channels.render import RenderedMessage
from alerts.channels.targets import DingTalkTarget

#: errcodes worth another attempt: sending too fast, and the platform being busy.
TRANSIENT_ERRCODES: Final = frozenset({130101, -1})


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The base64 signature (before URL-encoding) for a robot's secret and a timestamp."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_url(webhook_url: str, secret: str | None, timestamp_ms: int) -> str:
    """The webhook URL with ``timestamp`` and ``sign`` appended when a secret is set."""
    if secret is None:
        return webhook_url
    sign = urllib.parse.quote(dingtalk_sign(secret, timestamp_ms), safe="")
    separator = "&" if "?" in webhook_url else "?"
    return f"{webhook_url}{separator}timestamp={timestamp_ms}&sign={sign}"


def dingtalk_payload(message: RenderedMessage, at_mobiles: tuple[str, ...] = ()) -> dict[str, Any]:
    """A markdown message; DingTalk only notifies the people whose ``@mobile`` is in the text."""
    text = message.markdown
    if at_mobiles:
        text += "\n\n" + " ".join(f"@{mobile}" for mobile in at_mobiles)
    return {
        "msgtype": "markdown",
        "markdown": {"title": message.title, "text": text},
        "at": {"atMobiles": list(at_mobiles), "isAtAll": False},
    }


async def send_dingtalk(
    client: httpx.AsyncClient,
    target: DingTalkTarget,
    message: RenderedMessage,
    policy: RetryPolicy,
    *,
    clock: Callable[[], datetime],
    sleep: Sleep,
    on_failed_attempt: FailedAttemptHook | None = None,
) -> DeliveryResult:
    """Send to the robot; DingTalk has no idempotency key, so a retry after a lost answer can
    show a message twice (rare, and better than never)."""
    payload = dingtalk_payload(message, target.at_mobiles)
    secret = target.secret.get_secret_value() if target.secret else None

    async def attempt() -> None:
        timestamp_ms = int(clock().timestamp() * 1000)
        url = signed_url(target.webhook_url.get_secret_value(), secret, timestamp_ms)
        try:
            response = await client.post(url, json=payload)
        except httpx.HTTPError as exc:
            raise transport_failure(exc) from exc
        check_http_status(response)
        check_robot_errcode(response, "DingTalk", TRANSIENT_ERRCODES)

    return await deliver_with_retries(
        "dingtalk", attempt, policy, sleep=sleep, on_failed_attempt=on_failed_attempt
    )
