"""Where one recipient's notifications go: one model per channel, pure configuration.

URLs that carry a credential (a DingTalk robot's ``access_token``, a WeCom robot's ``key``) and
every signing secret are ``SecretStr``: they never appear in a repr, a log line or an error.
"""

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

_STRICT = ConfigDict(frozen=True, extra="forbid")


def _http_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError("the URL must start with http:// or https://")
    return url


class WebhookTarget(BaseModel):
    """A recipient's own HTTP endpoint; requests are HMAC-signed when ``secret`` is set."""

    model_config = _STRICT
    kind: Literal["webhook"] = "webhook"
    url: str
    secret: SecretStr | None = None

    _check_url = field_validator("url")(_http_url)


class EmailTarget(BaseModel):
    """One mailbox; the SMTP server is the process's (``alerts.channels.mail.SmtpSettings``)."""

    model_config = _STRICT
    kind: Literal["email"] = "email"
    address: str = Field(pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$", max_length=254)


class DingTalkTarget(BaseModel):
    """A DingTalk group's custom robot (自定义机器人), signed (加签) when ``secret`` is set."""

    model_config = _STRICT
    kind: Literal["dingtalk"] = "dingtalk"
    webhook_url: SecretStr = Field(description="…/robot/send?access_token=…: a credential")
    secret: SecretStr | None = Field(default=None, description="the robot's SEC… signing secret")
    at_mobiles: tuple[Annotated[str, Field(pattern=r"^\+?\d{5,20}$")], ...] = ()

    @field_validator("webhook_url")
    @classmethod
    def _check_url(cls, value: SecretStr) -> SecretStr:
        _http_url(value.get_secret_value())
        return value


class WeComTarget(BaseModel):
    """A WeCom (企业微信) group robot."""

    model_config = _STRICT
    kind: Literal["wecom"] = "wecom"
    webhook_url: SecretStr = Field(description="…/cgi-bin/webhook/send?key=…: a credential")

    @field_validator("webhook_url")
    @classmethod
    def _check_url(cls, value: SecretStr) -> SecretStr:
        _http_url(value.get_secret_value())
        return value


#: Any channel, told apart by its ``kind`` in configuration files.
ChannelTarget = Annotated[
    WebhookTarget | EmailTarget | DingTalkTarget | WeComTarget, Field(discriminator="kind")
]

#: The label each channel has in metrics (a small fixed set).
ChannelName = Literal["webhook", "email", "dingtalk", "wecom"]


def target_names(targets: Sequence[ChannelTarget]) -> list[str]:
    """Each target's name within its recipient, as deliveries are recorded under it: the
    channel's kind, numbered from the second of a kind on (``email``, ``email-2``). Stable as
    long as the recipient's channels keep their order."""
    seen: dict[str, int] = {}
    names = []
    for target in targets:
        seen[target.kind] = seen.get(target.kind, 0) + 1
        n = seen[target.kind]
        names.append(target.kind if n == 1 else f"{target.kind}-{n}")
    return names
