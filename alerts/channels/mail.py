"""The e-mail channel: a UTF-8 message with plain-text and HTML parts, sent over SMTP with
``aiosmtplib``; STARTTLS (or implicit TLS) and login when configured.

The idempotency key becomes the ``Message-ID``, so a message retried after an unclear
failure carries the same id and mail systems can recognise the copy.
"""

import email.utils
import ssl
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Literal

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from alerts.channels.delivery import (
    DeliveryResult,
    FailedAttemptHook,
    PermanentFailure,
    RetryPolicy,
    Sleep,
    TransientFailure,
    deliver_with_retries,
)
from alerts.channels.render import RenderedMessage
from alerts.channels.targets import EmailTarget


class SmtpSettings(BaseModel):
    """The outgoing mail server, one per process (the password is never printed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    sender: str = Field(pattern=r"^[^@\s<>]+@[^@\s<>]+$", description="the From address")
    sender_name: str = "EnergyWatch 能耗在线监测"
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="STARTTLS on a plain port, TLS from the start, or none"
    )
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = Field(
        default=None, description="trust this CA bundle instead of the system's"
    )
    timeout_seconds: float = Field(default=10.0, gt=0)


def build_email(
    smtp: SmtpSettings,
    target: EmailTarget,
    message: RenderedMessage,
    idempotency_key: str,
    now: datetime,
) -> EmailMessage:
    """The e-mail for one message (pure): subject, both parts in UTF-8, a stable Message-ID."""
    mail = EmailMessage()
    mail["Subject"] = message.title
    mail["From"] = email.utils.formataddr((smtp.sender_name, smtp.sender))
    mail["To"] = target.address
    mail["Date"] = email.utils.format_datetime(now)
    domain = smtp.sender.rpartition("@")[2]
    mail["Message-ID"] = f"<{idempotency_key}@{domain}>"
    mail.set_content(message.text, charset="utf-8")
    mail.add_alternative(message.html, subtype="html", charset="utf-8")
    return mail


def _tls_context(smtp: SmtpSettings) -> ssl.SSLContext | None:
    if smtp.security == "none":
        return None
    return ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)


def _classify(exc: Exception) -> PermanentFailure | TransientFailure:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in exc.recipients]
        reason = f"SMTP recipient refused ({', '.join(map(str, codes))})"
        if all(400 <= code < 500 for code in codes):
            return TransientFailure(reason)
        return PermanentFailure(reason)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reason = f"SMTP {exc.code} {exc.message}"[:300]
        return TransientFailure(reason) if 400 <= exc.code < 500 else PermanentFailure(reason)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return PermanentFailure(f"SMTP server does not support it: {exc}"[:300])  # e.g. STARTTLS
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentFailure(f"SMTP server certificate not trusted: {exc.verify_message}")
    return TransientFailure(type(exc).__name__)


async def send_email(
    smtp: SmtpSettings,
    target: EmailTarget,
    message: RenderedMessage,
    idempotency_key: str,
    policy: RetryPolicy,
    *,
    clock: Callable[[], datetime],
    sleep: Sleep,
    on_failed_attempt: FailedAttemptHook | None = None,
) -> DeliveryResult:
    async def attempt() -> None:
        mail = build_email(smtp, target, message, idempotency_key, clock())
        try:
            await aiosmtplib.send(
                mail,
                sender=smtp.sender,
                recipients=[target.address],
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username,
                password=smtp.password.get_secret_value() if smtp.password else None,
                use_tls=smtp.security == "tls",
                start_tls=smtp.security == "starttls",
                tls_context=_tls_context(smtp),
                timeout=smtp.timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise _classify(exc) from exc

    return await deliver_with_retries(
        "email", attempt, policy, sleep=sleep, on_failed_attempt=on_failed_attempt
    )
