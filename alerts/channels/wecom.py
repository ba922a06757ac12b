"""The WeCom (企业微信) channel: a group robot, markdown messages.

The robot takes ``{"msgtype": "markdown", "markdown": {"content": …}}`` with at most 4096
bytes of UTF-8 content; longer content is cut on a character boundary and marked as cut.
Like DingTalk it answers HTTP 200 with an ``errcode``: 45009 (too many calls; a robot takes
about 20 messages a minute) and -1 (busy) are retried, anything else is final.
"""

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
from alerts.channels.targets import WeComTarget

MARKDOWN_MAX_BYTES: Final = 4096
TRANSIENT_ERRCODES: Final = frozenset({45009, -1})
TRUNCATION_MARK: Final = "\n\n……（内容过长，已截断）"


def truncate_utf8(text: str, max_bytes: int, mark: str = TRUNCATION_MARK) -> str:
    """``text`` if it fits in ``max_bytes`` of UTF-8, else its longest prefix that fits with
    ``mark`` appended; never splits a character."""
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    room = max_bytes - len(mark.encode())
    if room < 0:
        raise ValueError("the truncation mark alone is longer than the limit")
    # a cut inside a multi-byte sequence leaves an incomplete tail, which "ignore" drops
    return encoded[:room].decode("utf-8", errors="ignore") + mark


def wecom_payload(message: RenderedMessage) -> dict[str, Any]:
    return {
        "msgtype": "markdown",
        "markdown": {"content": truncate_utf8(message.markdown, MARKDOWN_MAX_BYTES)},
    }


async def send_wecom(
    client: httpx.AsyncClient,
    target: WeComTarget,
    message: RenderedMessage,
    policy: RetryPolicy,
    *,
    sleep: Sleep,
    on_failed_attempt: FailedAttemptHook | None = None,
) -> DeliveryResult:
    """Send to the robot; WeCom has no idempotency key either (see ``send_dingtalk``)."""
    payload = wecom_payload(message)

    async def attempt() -> None:
        try:
            response = await client.post(target.webhook_url.get_secret_value(), json=payload)
        except httpx.HTTPError as exc:
            raise transport_failure(exc) from exc
        check_http_status(response)
        check_robot_errcode(response, "WeCom", TRANSIENT_ERRCODES)

    return await deliver_with_retries(
        "wecom", attempt, policy, sleep=sleep, on_failed_attempt=on_failed_attempt
    )
