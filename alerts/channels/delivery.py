"""What a delivery attempt returns, and retrying transient failures with exponential backoff
and jitter (tenacity), the same way for every channel.

A failure is *transient* (a timeout, a refused connection, HTTP 408/429/5xx, a robot's
rate-limit errcode, an SMTP 4xx reply: worth another try) or *permanent* (any other 4xx, a bad
signature, a refused mailbox: retrying cannot help, so it stops at once).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ConfigDict, Field
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from alerts.channels.targets import ChannelName

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
#: Called after each failed attempt with the channel and the reason, e.g. to count failures.
FailedAttemptHook = Callable[[ChannelName, str], None]


class DeliveryError(Exception):
    """An attempt failed; ``str()`` says why and never contains a URL or a secret."""


class TransientFailure(DeliveryError):
    """Worth another attempt."""


class PermanentFailure(DeliveryError):
    """Retrying will not help."""


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of sending one message over one channel, after any retries."""

    channel: ChannelName
    delivered: bool
    attempts: int
    detail: str = ""
    permanent: bool = False


class RetryPolicy(BaseModel):
    """Attempts and backoff: the n-th retry waits ``initial × 2^(n-1)`` seconds (capped at
    ``max_backoff_seconds``) plus a uniformly random jitter of up to ``jitter_seconds``, so
    many notifiers retrying after one outage do not all come back at the same instant."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_attempts: int = Field(default=5, ge=1)
    initial_backoff_seconds: float = Field(default=0.5, ge=0)
    max_backoff_seconds: float = Field(default=30.0, ge=0)
    jitter_seconds: float = Field(default=0.5, ge=0)


class RedactUrlQueries(logging.Filter):
    """Strips query strings from URLs in the HTTP client's log records: httpx logs every
    request's full URL at INFO, and a chat robot's URL carries its credential (and the
    DingTalk signature) in the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg.copy_with(query=b"<redacted>") if isinstance(arg, httpx.URL) and arg.query
                else arg
                for arg in record.args
            )  # fmt: skip
        return True


def redact_http_client_logs() -> None:
    """Install ``RedactUrlQueries`` on httpx's logger, once (idempotent)."""
    client_log = logging.getLogger("httpx")
    if not any(isinstance(f, RedactUrlQueries) for f in client_log.filters):
        client_log.addFilter(RedactUrlQueries())


def check_http_status(response: httpx.Response) -> None:
    """Raise the failure an HTTP status means; return quietly on 2xx."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status in (408, 425, 429) or status >= 500:
        raise TransientFailure(f"HTTP {status}")
    raise PermanentFailure(f"HTTP {status}")


def check_robot_errcode(response: httpx.Response, platform: str, transient: frozenset[int]) -> None:
    """Raise unless a robot API's JSON answer has ``errcode`` 0."""
    try:
        answer = response.json()
        errcode = int(answer["errcode"])
    except (ValueError, KeyError, TypeError) as exc:
        raise TransientFailure(f"{platform} answered without an errcode") from exc
    if errcode == 0:
        return
    reason = f"{platform} errcode {errcode}: {str(answer.get('errmsg', ''))[:200]}"
    raise TransientFailure(reason) if errcode in transient else PermanentFailure(reason)


def transport_failure(exc: httpx.HTTPError) -> TransientFailure:
    """A network-level error as a transient failure, named by its type only (httpx messages
    can carry the request URL, which for chat robots holds a credential)."""
    return TransientFailure(f"{type(exc).__name__}")


async def deliver_with_retries(
    channel: ChannelName,
    attempt: Callable[[], Awaitable[None]],
    policy: RetryPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
    on_failed_attempt: FailedAttemptHook | None = None,
) -> DeliveryResult:
    """Run ``attempt`` until it returns, raises ``PermanentFailure`` or the attempts run out."""
    attempts = 0

    async def counted() -> None:
        nonlocal attempts
        attempts += 1
        try:
            await attempt()
        except DeliveryError as exc:
            log.warning("%s delivery attempt %d failed: %s", channel, attempts, exc)
            if on_failed_attempt is not None:
                on_failed_attempt(channel, str(exc))
            raise

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=wait_exponential(
            multiplier=policy.initial_backoff_seconds, max=policy.max_backoff_seconds
        )
        + wait_random(0, policy.jitter_seconds),
        retry=retry_if_exception_type(TransientFailure),
        sleep=sleep,
    )
    try:
        await retrying(counted)
    except PermanentFailure as exc:
        return DeliveryResult(channel, False, attempts, str(exc), permanent=True)
    except RetryError as exc:
        return DeliveryResult(channel, False, attempts, str(exc.last_attempt.exception()))
    return DeliveryResult(channel, True, attempts)
